/**
 * AckReporter: what one channel's ACKs say (ACK mode, docs/PROTOCOL.md).
 *
 * Every stream packet carries EXT_RQSEQ, a per-channel 32-bit sequence
 * number. The reporter records the numbers that arrived and, when asked,
 * produces the next ACK: a window [windowStart, windowEnd) and the ranges
 * received inside it (lib/protocol/ack.ts); the server answers every other
 * number of the window with a packet carrying a fresh symbol.
 *
 * - Windows follow each other: the next one starts where the last ended,
 *   so each packet is reported once (the server answers each loss once
 *   anyway, lib/server/ack-tracker.ts). A packet arriving after its window
 *   was reported is ignored here (its loss was already answered).
 * - Limits of the wire: at most ACK_MAX_RANGES ranges and ACK_MAX_WINDOW
 *   packets per ACK; a window that would need more ends early (at the start
 *   of the first range that does not fit) and the rest goes in the next ACK.
 * - `reorderSlack`: the newest packets are held back this many sequence
 *   numbers, so that a packet merely overtaken is not reported lost.
 * - Sequence numbers wrap modulo 2^32; they are unwrapped against the
 *   highest number seen (RFC 1982 serial arithmetic, within 2^31 either way).
 */
import type { SeqRange } from '../protocol/messages';
import { ACK_MAX_RANGES, ACK_MAX_WINDOW } from '../protocol/control-header';

const SEQ_MOD = 2 ** 32;
const HALF = 2 ** 31;

export interface AckReporterOptions {
  /** Default ACK_MAX_RANGES (64). */
  maxRanges?: number;
  /** Default ACK_MAX_WINDOW. */
  maxWindow?: number;
  /** Newest sequence numbers not yet reported. Default 0. */
  reorderSlack?: number;
}

export interface AckReport {
  windowStart: number;
  windowEnd: number;
  received: SeqRange[];
  /** Packets of the window reported lost. */
  lost: number;
}

export class AckReporter {
  /** Sequence numbers recorded since the last report. */
  unreported = 0;
  /** Packets that arrived after their window was reported. */
  late = 0;
  private readonly maxRanges: number;
  private readonly maxWindow: number;
  private readonly slack: number;
  private started = false;
  /** Unwrapped: the next window starts here. */
  private base = 0;
  /** Unwrapped: the highest number recorded. */
  private highest = 0;
  /** Unwrapped half-open ranges, sorted, disjoint and not touching, all >= base. */
  private ranges: [number, number][] = [];

  constructor(options: AckReporterOptions = {}) {
    this.maxRanges = options.maxRanges ?? ACK_MAX_RANGES;
    this.maxWindow = options.maxWindow ?? ACK_MAX_WINDOW;
    this.slack = options.reorderSlack ?? 0;
    if (!Number.isInteger(this.maxRanges) || this.maxRanges < 1 || this.maxRanges > ACK_MAX_RANGES) {
      throw new RangeError(`maxRanges must be 1..${ACK_MAX_RANGES}`);
    }
    if (!Number.isInteger(this.maxWindow) || this.maxWindow < 1 || this.maxWindow > ACK_MAX_WINDOW) {
      throw new RangeError(`maxWindow must be 1..${ACK_MAX_WINDOW}`);
    }
    if (!Number.isInteger(this.slack) || this.slack < 0) throw new RangeError('reorderSlack must be a non-negative integer');
  }

  /** Records the arrival of packet `seq` (32-bit). */
  record(seq: number): void {
    if (!this.started) {
      this.started = true;
      this.base = seq;
      this.highest = seq;
      this.ranges.push([seq, seq + 1]);
      this.unreported++;
      return;
    }
    let d = (seq - (this.highest % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
    if (d >= HALF) d -= SEQ_MOD;
    const u = this.highest + d;
    if (u < this.base) {
      this.late++;
      return;
    }
    if (u > this.highest) this.highest = u;
    if (this.insert(u)) this.unreported++;
  }

  /** Adds u to the ranges; false if it was already there. */
  private insert(u: number): boolean {
    const r = this.ranges;
    // Packets mostly arrive in order: search from the end.
    let i = r.length - 1;
    while (i >= 0 && r[i][0] > u) i--;
    // r[i] is the last range starting at or before u (or i = -1).
    if (i >= 0 && u < r[i][1]) return false;
    const joinsLeft = i >= 0 && r[i][1] === u;
    const joinsRight = i + 1 < r.length && r[i + 1][0] === u + 1;
    if (joinsLeft && joinsRight) {
      r[i][1] = r[i + 1][1];
      r.splice(i + 1, 1);
    } else if (joinsLeft) {
      r[i][1] = u + 1;
    } else if (joinsRight) {
      r[i + 1][0] = u;
    } else {
      r.splice(i + 1, 0, [u, u + 1]);
    }
    return true;
  }

  /** The next ACK, or undefined when there is nothing new to report. */
  report(): AckReport | undefined {
    if (!this.started) return undefined;
    const start = this.base;
    let end = Math.min(this.highest + 1 - this.slack, start + this.maxWindow);
    if (end <= start) return undefined;
    const out: [number, number][] = [];
    for (const [s, e] of this.ranges) {
      if (s >= end) break;
      if (out.length === this.maxRanges) {
        // No room for this range: the window ends where it starts.
        end = s;
        break;
      }
      out.push([s, Math.min(e, end)]);
    }
    let got = 0;
    for (const [s, e] of out) got += e - s;
    // Drop everything below the new base.
    this.base = end;
    while (this.ranges.length > 0 && this.ranges[0][1] <= end) this.ranges.shift();
    if (this.ranges.length > 0 && this.ranges[0][0] < end) this.ranges[0][0] = end;
    this.unreported = 0;
    for (const [s, e] of this.ranges) this.unreported += e - s;
    return {
      windowStart: start % SEQ_MOD,
      windowEnd: end % SEQ_MOD,
      received: out.map(([s, e]) => ({ start: s % SEQ_MOD, end: e % SEQ_MOD })),
      lost: end - start - got,
    };
  }
}
