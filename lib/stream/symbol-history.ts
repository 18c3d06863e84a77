/**
 * SymbolHistory: which symbol slot (source, SBN, ESI) each recently sent
 * transport sequence number carried. The one structure that both answers to
 * loss need:
 * - an ACK (docs/PROTOCOL.md §10.5) names lost stream packets by their
 *   EXT_RQSEQ; each is replaced by a fresh symbol of the same block;
 * - a TCP retransmission (DESIGN.md, Transports) keeps the lost segment's
 *   sequence numbers and length but carries fresh symbols of the same
 *   blocks: it asks which slots sequence range [a, b) carried.
 * No packet bytes are kept, only the slots.
 *
 * A segment is a run of `count` slots of one block whose ESIs are firstEsi,
 * firstEsi + esiStride, …, each slot `width` sequence numbers long (1 per
 * packet for EXT_RQSEQ; a TCP sender counting bytes passes the framed
 * packet's length). Segments are recorded in sequence order at unwrapped
 * positions (0, 1, …, beyond 2^32); lookups take 32-bit sequence numbers
 * (mod 2^32, as both EXT_RQSEQ and TCP carry them) and unwrap them against
 * the end of what was recorded: a lost number was sent before it. The ring
 * forgets the oldest segments beyond its capacity.
 */
import { InvalidServerConfigError } from '../errors';

/** Default capacity of a stream's history, in segments. */
export const DEFAULT_HISTORY_SEGMENTS = 16384;

const SEQ_MOD = 2 ** 32;

/** One symbol a sequence number carried. */
export interface CarriedSlot {
  /** The caller's key for the block's source (ChannelStream: its object index, -1 for the FDT). */
  source: number;
  sbn: number;
  esi: number;
}

export class SymbolHistory {
  private readonly start: Float64Array;
  private readonly count: Uint32Array;
  private readonly width: Uint32Array;
  private readonly source: Int32Array;
  private readonly sbn: Uint8Array;
  private readonly esi: Uint32Array;
  private readonly esiStride: Uint32Array;
  /** Index of the oldest segment. */
  private head = 0;
  private size = 0;
  /** Unwrapped position just past the last recorded segment. */
  private endPosition = 0;

  constructor(capacity: number = DEFAULT_HISTORY_SEGMENTS) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new InvalidServerConfigError('historySegments must be >= 1');
    this.start = new Float64Array(capacity);
    this.count = new Uint32Array(capacity);
    this.width = new Uint32Array(capacity);
    this.source = new Int32Array(capacity);
    this.sbn = new Uint8Array(capacity);
    this.esi = new Uint32Array(capacity);
    this.esiStride = new Uint32Array(capacity);
  }

  /** Segments remembered at most. */
  get capacity(): number {
    return this.start.length;
  }

  /** Unwrapped position just past the last segment recorded (0 before any). */
  get end(): number {
    return this.endPosition;
  }

  /**
   * Records that positions start .. start + count * width - 1 carried
   * `count` slots of block `sbn` of `source`, with ESIs firstEsi + i *
   * esiStride. `start` is unwrapped and not before the end of the last one.
   */
  record(start: number, count: number, source: number, sbn: number, firstEsi: number, esiStride = 1, width = 1): void {
    const cap = this.start.length;
    let i: number;
    if (this.size < cap) {
      i = (this.head + this.size) % cap;
      this.size++;
    } else {
      i = this.head;
      this.head = (this.head + 1) % cap;
    }
    this.start[i] = start;
    this.count[i] = count;
    this.width[i] = width;
    this.source[i] = source;
    this.sbn[i] = sbn;
    this.esi[i] = firstEsi;
    this.esiStride[i] = esiStride;
    this.endPosition = start + count * width;
  }

  /** The slot sequence number `seq` (mod 2^32) carried, if it is still remembered. */
  at(seq: number): CarriedSlot | undefined {
    const u = this.unwrap(seq);
    if (u === undefined) return undefined;
    const index = this.segmentAt(u);
    if (index === undefined) return undefined;
    const slot = Math.floor((u - this.start[index]) / this.width[index]);
    if (slot >= this.count[index]) return undefined;
    return this.slot(index, slot);
  }

  /**
   * The slots that sequence numbers [first, first + length) (mod 2^32)
   * overlapped, in sequence order, as far as they are still remembered.
   */
  carried(first: number, length: number): CarriedSlot[] {
    const u = this.unwrap(first);
    if (u === undefined || !(length > 0)) return [];
    const until = Math.min(u + length, this.endPosition);
    const cap = this.start.length;
    let k = this.segmentIndexAtOrBefore(u);
    const out: CarriedSlot[] = [];
    for (; k < this.size; k++) {
      const index = (this.head + k) % cap;
      const s = this.start[index];
      if (s >= until) break;
      const w = this.width[index];
      const from = Math.max(0, Math.floor((u - s) / w));
      const to = Math.min(this.count[index], Math.ceil((until - s) / w));
      for (let slot = from; slot < to; slot++) out.push(this.slot(index, slot));
    }
    return out;
  }

  private slot(index: number, slot: number): CarriedSlot {
    return { source: this.source[index], sbn: this.sbn[index], esi: this.esi[index] + slot * this.esiStride[index] };
  }

  /** The unwrapped position of 32-bit `seq`: the latest one before the end. */
  private unwrap(seq: number): number | undefined {
    if (!Number.isInteger(seq) || seq < 0 || seq >= SEQ_MOD || this.size === 0) return undefined;
    const back = (((this.endPosition - seq) % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
    if (back === 0) return undefined;
    return this.endPosition - back;
  }

  /** The ring index of the segment holding position u, if remembered. */
  private segmentAt(u: number): number | undefined {
    if (u < this.start[this.head]) return undefined;
    return (this.head + this.segmentIndexAtOrBefore(u)) % this.start.length;
  }

  /** k (0 = oldest) of the last segment starting at or before u; 0 if u is before them all. */
  private segmentIndexAtOrBefore(u: number): number {
    const cap = this.start.length;
    let lo = 0;
    let hi = this.size - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.start[(this.head + mid) % cap] <= u) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
