/**
 * ACK tracker: turns a client's ACKs into the packets to replace.
 *
 * An ACK for a channel reports a window [windowStart, windowEnd) of packet
 * sequence numbers and the ranges that arrived; everything else in the window
 * is lost. With ACK mode on, the server answers each loss with one packet
 * carrying a *fresh* symbol (DESIGN.md, "Transports") — never the old one,
 * and never twice for the same sequence number, however many ACKs repeat it.
 *
 * ACKs are UDP datagrams: they get lost and reordered. Clients therefore
 * report each loss in several consecutive ACKs (overlapping windows,
 * lib/client/ack-reporter.ts), and the tracker is what makes the repeats
 * free: a loss is answered by whichever of those ACKs arrives first, and
 * only then. "Answered" means handed to the server to send; a replacement
 * carries no EXT_RQSEQ, so its own loss is invisible to ACKs and is not
 * chased (the stream's fountain code makes up for it).
 *
 * Per (client, channel) the tracker keeps a floor and a ring bitmap of
 * `windowSize` bits over [floor, floor + windowSize): bit set = loss already
 * answered. The first ACK places the top of that span at its window start,
 * so an older ACK overtaken by it (reordered) still counts. A window that
 * reaches past the top slides the floor up; anything below the floor is
 * treated as answered forever. Memory is windowSize/8 bytes per (client,
 * channel) whatever the ACKs say, and an ACK costs at most windowSize bit
 * tests however long its window.
 *
 * Sequence numbers on the wire are 32-bit and wrap (lib/protocol/ack.ts): each
 * position is its offset from windowStart mod 2^32. The tracker unwraps them
 * into a 53-bit space per stream, relative to the highest window end seen
 * (RFC 1982 serial arithmetic: within 2^31 either way), and hands back wire
 * (32-bit) sequence numbers.
 */

import type { SeqRange } from '../protocol/messages';
import { InvalidServerConfigError } from '../errors';

export interface AckTrackerOptions {
  /** Sequence numbers remembered per (client, channel), a multiple of 8. Default 4096. */
  windowSize?: number;
  /** Most losses answered for one ACK; the rest stay unanswered and can be reported again. Default 256. */
  maxLossesPerAck?: number;
}

export interface AckReport {
  windowStart: number;
  windowEnd: number;
  received: readonly SeqRange[];
}

export type AckVerdict = { ok: true; lost: number[] } | { ok: false; reason: 'malformed' };

interface StreamState {
  /** Unwrapped: every sequence number below it counts as answered. */
  floor: number;
  /** Unwrapped: highest window end seen, the reference for unwrapping. */
  top: number;
  answered: Uint8Array;
}

const SEQ_MOD = 2 ** 32;
const HALF = 2 ** 31;

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < SEQ_MOD;
}

/** (x - y) mod 2^32, in [0, 2^32). */
function offset(x: number, y: number): number {
  return (((x - y) % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
}

/** The unwrapped sequence number nearest `ref` whose low 32 bits are `x`. */
function unwrap(x: number, ref: number): number {
  let d = offset(x, ref);
  if (d >= HALF) d -= SEQ_MOD;
  return ref + d;
}

export class AckTracker<K> {
  readonly windowSize: number;
  readonly maxLossesPerAck: number;
  private readonly streams = new Map<K, Map<number, StreamState>>();

  constructor(options: AckTrackerOptions = {}) {
    this.windowSize = options.windowSize ?? 4096;
    this.maxLossesPerAck = options.maxLossesPerAck ?? 256;
    if (!Number.isInteger(this.windowSize) || this.windowSize <= 0 || this.windowSize % 8 !== 0) {
      throw new InvalidServerConfigError('windowSize must be a positive multiple of 8');
    }
    if (!Number.isInteger(this.maxLossesPerAck) || this.maxLossesPerAck <= 0) {
      throw new InvalidServerConfigError('maxLossesPerAck must be a positive integer');
    }
  }

  /** Number of (client, channel) streams holding state. */
  get streamCount(): number {
    let n = 0;
    for (const m of this.streams.values()) n += m.size;
    return n;
  }

  /**
   * Processes one ACK of `client` on channel `tsi` and returns the sequence
   * numbers newly reported lost, ascending. `sentEnd`, if known, is one past
   * the highest sequence number the server sent on the channel: a window
   * claiming losses beyond it is cut there.
   */
  onAck(client: K, tsi: number, ack: AckReport, sentEnd?: number): AckVerdict {
    if (!isU32(ack.windowStart) || !isU32(ack.windowEnd)) return { ok: false, reason: 'malformed' };
    if (sentEnd !== undefined && !isU32(sentEnd)) return { ok: false, reason: 'malformed' };
    const length = offset(ack.windowEnd, ack.windowStart);
    // Half the sequence space or more cannot be told apart from a window that runs backwards.
    if (length >= HALF) return { ok: false, reason: 'malformed' };
    // Received ranges as offsets from windowStart, clipped to the window.
    const got: SeqRange[] = [];
    for (const r of ack.received) {
      if (!isU32(r.start) || !isU32(r.end)) return { ok: false, reason: 'malformed' };
      const a = offset(r.start, ack.windowStart);
      const b = offset(r.end, ack.windowStart);
      if (b < a || a > length || b > length) return { ok: false, reason: 'malformed' };
      if (b > a) got.push({ start: a, end: b });
    }

    let perClient = this.streams.get(client);
    if (!perClient) this.streams.set(client, (perClient = new Map()));
    let state = perClient.get(tsi);
    if (!state) {
      // Unwrapped numbers start one wrap up, so that the floor can sit a
      // whole windowSize below the first window and stay >= 0.
      const top = ack.windowStart + SEQ_MOD;
      state = { floor: Math.max(0, top - this.windowSize), top, answered: new Uint8Array(this.windowSize / 8) };
      perClient.set(tsi, state);
    }
    const start = unwrap(ack.windowStart, state.top);
    let end = start + length;
    if (sentEnd !== undefined) end = Math.min(end, Math.max(start, unwrap(sentEnd, state.top)));
    if (end > state.top) state.top = end;
    if (end > state.floor + this.windowSize) this.slide(state, end - this.windowSize);

    const lo = Math.max(start, state.floor);
    const hi = end;
    const lost: number[] = [];
    if (lo >= hi) return { ok: true, lost };

    got.sort((x, y) => x.start - y.start);
    const W = this.windowSize;
    const bits = state.answered;
    const take = (from: number, to: number): boolean => {
      for (let seq = Math.max(from, lo); seq < to; seq++) {
        const i = seq % W;
        const mask = 1 << (i & 7);
        if ((bits[i >> 3] & mask) === 0) {
          bits[i >> 3] |= mask;
          lost.push(seq % SEQ_MOD);
          if (lost.length >= this.maxLossesPerAck) return false;
        }
      }
      return true;
    };
    let cursor = lo;
    for (const r of got) {
      const a = Math.min(start + r.start, hi);
      const b = Math.min(start + r.end, hi);
      if (a > cursor && !take(cursor, a)) return { ok: true, lost };
      if (b > cursor) cursor = b;
    }
    take(cursor, hi);
    return { ok: true, lost };
  }

  /**
   * The client became a destination of channel `tsi` when the channel's
   * next packet was `firstSeq`: nothing below it was sent to the client,
   * so no loss below it is answered (the floor starts there). Nothing if
   * the client already has state on the channel (a renewal).
   */
  startAt(client: K, tsi: number, firstSeq: number): void {
    if (!isU32(firstSeq)) return;
    let perClient = this.streams.get(client);
    if (!perClient) this.streams.set(client, (perClient = new Map()));
    if (perClient.has(tsi)) return;
    const top = firstSeq + SEQ_MOD;
    perClient.set(tsi, { floor: top, top, answered: new Uint8Array(this.windowSize / 8) });
  }

  /** Forgets the client's state on one channel (it left the channel). */
  dropChannel(client: K, tsi: number): void {
    const perClient = this.streams.get(client);
    if (perClient?.delete(tsi) && perClient.size === 0) this.streams.delete(client);
  }

  /** Forgets all of the client's state (LEAVE, expiry). */
  dropClient(client: K): void {
    this.streams.delete(client);
  }

  private slide(state: StreamState, newFloor: number): void {
    const W = this.windowSize;
    if (newFloor - state.floor >= W) {
      state.answered.fill(0);
    } else {
      for (let s = state.floor; s < newFloor; s++) {
        const i = s % W;
        state.answered[i >> 3] &= ~(1 << (i & 7));
      }
    }
    state.floor = newFloor;
  }
}
