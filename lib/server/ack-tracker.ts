/**
 * ACK tracker: turns a client's ACKs into the packets to replace.
 *
 * An ACK for a channel reports a window [windowStart, windowEnd) of packet
 * sequence numbers and the ranges that arrived; everything else in the window
 * is lost. With ACK mode on, the server answers each loss with one packet
 * carrying a *fresh* symbol (DESIGN.md, "Transports") — never the old one,
 * and never twice for the same sequence number, however many ACKs repeat it.
 *
 * Per (client, channel) the tracker keeps a floor and a ring bitmap of
 * `windowSize` bits over [floor, floor + windowSize): bit set = loss already
 * answered. A window that reaches past the top slides the floor up; anything
 * below the floor is treated as answered forever. Memory is windowSize/8
 * bytes per (client, channel) whatever the ACK says.
 *
 * Sequence numbers are non-negative integers below 2^53 that only grow; a
 * wire format with 32-bit wrap-around must unwrap them before calling.
 */

import type { SeqRange } from '../protocol/messages';
import { InvalidServerConfigError } from './errors';

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
  floor: number;
  answered: Uint8Array;
}

function isSeq(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
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
    const { windowStart } = ack;
    let { windowEnd } = ack;
    if (!isSeq(windowStart) || !isSeq(windowEnd) || windowEnd < windowStart) return { ok: false, reason: 'malformed' };
    for (const r of ack.received) {
      if (!isSeq(r.start) || !isSeq(r.end) || r.end < r.start) return { ok: false, reason: 'malformed' };
    }
    if (sentEnd !== undefined && windowEnd > sentEnd) windowEnd = Math.max(windowStart, sentEnd);

    let perClient = this.streams.get(client);
    if (!perClient) this.streams.set(client, (perClient = new Map()));
    let state = perClient.get(tsi);
    if (!state) perClient.set(tsi, (state = { floor: windowStart, answered: new Uint8Array(this.windowSize / 8) }));
    if (windowEnd > state.floor + this.windowSize) this.slide(state, windowEnd - this.windowSize);

    const lo = Math.max(windowStart, state.floor);
    const hi = windowEnd;
    const lost: number[] = [];
    if (lo >= hi) return { ok: true, lost };

    // Received ranges clipped to [lo, hi), sorted; the gaps between them are the losses.
    const got = ack.received
      .filter((r) => r.end > lo && r.start < hi && r.end > r.start)
      .map((r) => ({ start: Math.max(r.start, lo), end: Math.min(r.end, hi) }))
      .sort((a, b) => a.start - b.start);
    let cursor = lo;
    const W = this.windowSize;
    const bits = state.answered;
    const take = (from: number, to: number): boolean => {
      for (let s = from; s < to; s++) {
        const i = s % W;
        const mask = 1 << (i & 7);
        if ((bits[i >> 3] & mask) === 0) {
          bits[i >> 3] |= mask;
          lost.push(s);
          if (lost.length >= this.maxLossesPerAck) return false;
        }
      }
      return true;
    };
    for (const r of got) {
      if (r.start > cursor && !take(cursor, r.start)) return { ok: true, lost };
      if (r.end > cursor) cursor = r.end;
    }
    take(cursor, hi);
    return { ok: true, lost };
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
