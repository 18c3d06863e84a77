/**
 * AckReporter: what one channel's ACKs say (ACK mode, docs/PROTOCOL.md §7).
 *
 * Every stream packet carries EXT_RQSEQ, a per-channel 32-bit sequence
 * number. The reporter records the numbers that arrived and, when asked,
 * produces the next ACK: a window [windowStart, windowEnd) and the ranges
 * received inside it (lib/protocol/ack.ts); the server answers every other
 * number of the window with a packet carrying a fresh symbol.
 *
 * - Overlapping windows: an ACK is a UDP datagram and may be lost, taking
 *   its losses with it. So each ACK reports what is new since the last one
 *   *and* covers again the intervals of the `overlap` ACKs before it: a
 *   loss is reported in overlap + 1 consecutive ACKs, and is answered if
 *   any of them arrives. The server answers each sequence number at most
 *   once however many ACKs report it (lib/session/ack-tracker.ts), so the
 *   repeats cost ACK bytes, not data. With nothing new to report, the
 *   repeats still go out (an ACK covering only earlier intervals), so the
 *   last losses before the stream stops are repeated too.
 * - Limits of the wire: at most ACK_MAX_RANGES ranges and ACK_MAX_WINDOW
 *   packets per ACK. The new part comes first: if it alone needs more, its
 *   window ends early (at the start of the first range that does not fit)
 *   and the rest goes in the next ACK; the repeated part is then cut from
 *   its old end, as far back as the remaining ranges and window allow.
 * - A packet arriving after its interval was first reported is counted
 *   `late`; while that interval is still repeated, the repeats report it
 *   received (so a repeat does not ask for a packet that came after all).
 * - `reorderSlack`: the newest packets are held back this many sequence
 *   numbers, so that a packet merely overtaken is not reported lost.
 * - Sequence numbers wrap modulo 2^32; they are unwrapped against the
 *   highest number seen (RFC 1982 serial arithmetic, within 2^31 either way).
 */
import type { SeqRange } from '../protocol/messages';
import { ACK_MAX_RANGES, ACK_MAX_WINDOW } from '../protocol/control-header';

const SEQ_MOD = 2 ** 32;
const HALF = 2 ** 31;

/** Earlier reports each ACK covers again by default: every loss goes out in 3 ACKs. */
export const DEFAULT_ACK_OVERLAP = 2;

export interface AckReporterOptions {
  /** Default ACK_MAX_RANGES (64). */
  maxRanges?: number;
  /** Default ACK_MAX_WINDOW. */
  maxWindow?: number;
  /** Newest sequence numbers not yet reported. Default 0. */
  reorderSlack?: number;
  /** Earlier reports each ACK covers again (0: windows follow each other). Default DEFAULT_ACK_OVERLAP. */
  overlap?: number;
}

export interface AckReport {
  windowStart: number;
  windowEnd: number;
  received: SeqRange[];
  /** Packets of the window reported lost (repeated part included). */
  lost: number;
  /** Sequence numbers at the front of the window that earlier reports covered already. */
  repeated: number;
}

export class AckReporter {
  /** Sequence numbers recorded and never reported yet. */
  unreported = 0;
  /** Packets that arrived after their interval was first reported. */
  late = 0;
  readonly overlap: number;
  private readonly maxRanges: number;
  private readonly maxWindow: number;
  private readonly slack: number;
  private started = false;
  /** Unwrapped: the next report's new part starts here. */
  private base = 0;
  /** Unwrapped: the oldest number a report may still cover again. */
  private floor = 0;
  /** Unwrapped: where the new parts of the last `overlap` reports started, oldest first. */
  private readonly history: number[] = [];
  /** Unwrapped: the highest number recorded. */
  private highest = 0;
  /** Unwrapped half-open ranges, sorted, disjoint and not touching, all >= floor. */
  private ranges: [number, number][] = [];

  constructor(options: AckReporterOptions = {}) {
    this.maxRanges = options.maxRanges ?? ACK_MAX_RANGES;
    this.maxWindow = options.maxWindow ?? ACK_MAX_WINDOW;
    this.slack = options.reorderSlack ?? 0;
    this.overlap = options.overlap ?? DEFAULT_ACK_OVERLAP;
    if (!Number.isInteger(this.maxRanges) || this.maxRanges < 1 || this.maxRanges > ACK_MAX_RANGES) {
      throw new RangeError(`maxRanges must be 1..${ACK_MAX_RANGES}`);
    }
    if (!Number.isInteger(this.maxWindow) || this.maxWindow < 1 || this.maxWindow > ACK_MAX_WINDOW) {
      throw new RangeError(`maxWindow must be 1..${ACK_MAX_WINDOW}`);
    }
    if (!Number.isInteger(this.slack) || this.slack < 0) throw new RangeError('reorderSlack must be a non-negative integer');
    if (!Number.isInteger(this.overlap) || this.overlap < 0) throw new RangeError('overlap must be a non-negative integer');
  }

  /** Records the arrival of packet `seq` (32-bit). */
  record(seq: number): void {
    if (!this.started) {
      this.started = true;
      this.base = this.floor = this.highest = seq;
      this.ranges.push([seq, seq + 1]);
      this.unreported++;
      return;
    }
    let d = (seq - (this.highest % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
    if (d >= HALF) d -= SEQ_MOD;
    const u = this.highest + d;
    if (u < this.base) {
      this.late++;
      // Still covered by the repeats: they will say it arrived.
      if (u >= this.floor) this.insert(u);
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

  /**
   * The next ACK, or undefined when there is nothing to report: nothing new
   * since the last one and no earlier interval left to repeat.
   */
  report(): AckReport | undefined {
    if (!this.started) return undefined;
    const fresh = this.base;
    const r = this.ranges;
    // The new part [fresh, end) first: it alone decides where the window ends.
    let end = Math.max(fresh, Math.min(this.highest + 1 - this.slack, fresh + this.maxWindow));
    let first = 0; // first range reaching past fresh
    while (first < r.length && r[first][1] <= fresh) first++;
    let used = 0;
    for (let i = first; i < r.length && r[i][0] < end; i++) {
      if (used === this.maxRanges) {
        // No room for this range: the window ends where it starts.
        end = r[i][0];
        break;
      }
      used++;
    }
    // Then the repeated part, back from fresh, as far as ranges and window allow.
    let start = Math.max(this.floor, end - this.maxWindow);
    let from = first; // first range of the window
    while (from > 0 && r[from - 1][1] > start) {
      if (used === this.maxRanges) {
        // The window starts where this range ends (a lost number, or fresh).
        start = r[from - 1][1];
        break;
      }
      used++;
      from--;
    }
    if (end <= start) return undefined;

    const out: SeqRange[] = [];
    let got = 0;
    for (let i = from; i < r.length && r[i][0] < end; i++) {
      const s = Math.max(r[i][0], start);
      const e = Math.min(r[i][1], end);
      got += e - s;
      out.push({ start: s % SEQ_MOD, end: e % SEQ_MOD });
    }

    // The interval just reported is repeated by the next `overlap` reports.
    this.history.push(fresh);
    if (this.history.length > this.overlap) this.history.shift();
    this.base = end;
    this.floor = this.history.length > 0 ? this.history[0] : end;
    while (r.length > 0 && r[0][1] <= this.floor) r.shift();
    if (r.length > 0 && r[0][0] < this.floor) r[0][0] = this.floor;
    this.unreported = 0;
    for (const [s, e] of r) if (e > end) this.unreported += e - Math.max(s, end);
    return {
      windowStart: start % SEQ_MOD,
      windowEnd: end % SEQ_MOD,
      received: out,
      lost: end - start - got,
      repeated: fresh - start,
    };
  }
}
