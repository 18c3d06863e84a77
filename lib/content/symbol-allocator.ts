/**
 * Encoding Symbol ID allocation (RFC 6330 §3.2: ESI, 24 bits per source block).
 *
 * One allocator per object, shared by every channel that carries the object:
 * each source block has ONE server-wide counter, and a channel takes its next
 * ESIs from it. So two channels never send the same symbol of a block (a
 * client on both gets no duplicates), and a fresh symbol sent to replace a
 * lost packet has an ESI that no stream used before.
 *
 * Coded mode (default): the counter starts at 0, so the first pass over a
 * block sends its K source symbols (ESI 0..K-1) and then repair symbols
 * (ESI >= K, RFC 6330 §5.3.2). ESIs are 24 bits: after 2^24 - 1 the counter
 * restarts at K, not 0 — source symbols went out once, and repair symbols
 * are all equally useful. ESIs repeat only after 2^24 - K symbols of one
 * block (about 21 GB of one block at T = 1280).
 *
 * No-code mode: the counter cycles over 0..K-1 (a plain carousel of the
 * source symbols, no repair symbol is ever produced).
 *
 * A range handed out never crosses a wrap point, so it is always a run of
 * consecutive ESIs (one batch call to the encoder).
 */
import { MAX_ESI } from '../fec/encoder';

export type AllocationMode = 'coded' | 'carousel';

export interface EsiRange {
  firstEsi: number;
  count: number;
}

export class SymbolAllocator {
  readonly mode: AllocationMode;
  private readonly K: number[];
  private readonly next: number[];
  /** Times block sbn's counter wrapped. */
  private readonly wrapCount: number[];

  /** `sourceSymbols[sbn]` = K of block sbn. */
  constructor(sourceSymbols: readonly number[], mode: AllocationMode = 'coded') {
    if (sourceSymbols.length === 0 || sourceSymbols.length > 256) throw new RangeError('1..256 source blocks');
    for (const k of sourceSymbols) {
      if (!Number.isInteger(k) || k < 1 || k > MAX_ESI) throw new RangeError('K must be 1..2^24-1');
    }
    this.mode = mode;
    this.K = sourceSymbols.slice();
    this.next = sourceSymbols.map(() => 0);
    this.wrapCount = sourceSymbols.map(() => 0);
  }

  /** For an ObjectEncoder (or anything giving K per block). */
  static forEncoder(encoder: { sourceBlocks: number; sourceSymbols(sbn: number): number }, mode: AllocationMode = 'coded'): SymbolAllocator {
    const ks: number[] = [];
    for (let sbn = 0; sbn < encoder.sourceBlocks; sbn++) ks.push(encoder.sourceSymbols(sbn));
    return new SymbolAllocator(ks, mode);
  }

  get sourceBlocks(): number {
    return this.K.length;
  }

  sourceSymbols(sbn: number): number {
    return this.K[sbn];
  }

  /** The ESI the next take(sbn) starts at. */
  peek(sbn: number): number {
    return this.next[sbn];
  }

  wraps(sbn: number): number {
    return this.wrapCount[sbn];
  }

  /** Takes up to `max` (>= 1) consecutive ESIs of block sbn; returns at least one. */
  take(sbn: number, max: number): EsiRange {
    const first = this.next[sbn];
    if (first === undefined) throw new RangeError(`sbn ${sbn} out of range`);
    const end = this.mode === 'coded' ? MAX_ESI + 1 : this.K[sbn];
    const count = Math.max(1, Math.min(max, end - first));
    let n = first + count;
    if (n >= end) {
      n = this.mode === 'coded' ? this.K[sbn] : 0;
      // A block with K = 2^24 - 1 would wrap to itself: no repair space; never happens for K' <= 56403.
      this.wrapCount[sbn]++;
    }
    this.next[sbn] = n;
    return { firstEsi: first, count };
  }
}
