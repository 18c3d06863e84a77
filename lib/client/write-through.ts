/**
 * WriteThrough: source symbols handed to the sink as they arrive
 * (BlockSink.prewrite), before their block decodes.
 *
 * With one sub-block (N = 1), source symbol ESI of block sbn is the
 * object's bytes at blockOffset(sbn) + ESI * T (RFC 6330 §4.4.1.2), so it
 * can be written where it belongs at once. This moves the cost of writing
 * the object (page-cache allocation) from the end of the transfer, when
 * every block of a round-robin stream decodes at once, to the time the
 * symbols arrive. Ascending source symbols of a block are gathered into
 * one write of at most a slab (below), past small holes (MAX_HOLE).
 *
 * Each byte is written once: when a block decodes, settle() waits for
 * every write made for it and returns the ranges that landed whole (the
 * sink's prewrite resolved true); the block's write then skips them
 * (BlockSink.writeBlock's inPlace) and writes only the symbols that were
 * recovered or still gathered. A range counts only if its bytes are the
 * ones the decoder holds, so that the file matches the decoded block the
 * digest is taken from: a symbol the receiver took is the decoder's symbol
 * of that ESI (a received source symbol is kept as is by the decoder,
 * RFC 6330 §5.4.2, and a source ESI is taken once), except
 * - a symbol taken while its block was being solved (`trusted` false): if
 *   the solve succeeds the decoder never sees it and regenerates that
 *   symbol, which a forged packet could make differ;
 * - every symbol of a block that was evicted (forget): the block starts
 *   again from other symbols, and a write from before the eviction may
 *   land after a later one. Such a block is written whole, after all of
 *   its earlier writes have landed;
 * - a symbol for an ESI an earlier write covered with filler (a hole):
 *   that write may land after this one's.
 */
import type { ObjectLayout } from '../fec/oti';
import type { BlockSink, ByteRange } from './sinks/sink';

/**
 * Each block gathers its source symbols into a buffer of its own (a
 * slab) in arrival order: a run of consecutive ESIs is written when the
 * next symbol does not continue it or the slab is full, and the next run
 * goes on in the same slab. So a lossy stream, whose runs break at every
 * lost symbol, costs one slab per PREWRITE_BYTES (or LARGE_PREWRITE_BYTES)
 * received, not one buffer per run. Slabs are PREWRITE_BYTES: at most
 * 160 KiB per block being received, whatever T (128 symbols at T = 1280),
 * beyond the first LARGE_RUNS blocks.
 */
export const PREWRITE_BYTES = 160 * 1024;
/**
 * The first LARGE_RUNS blocks gathering (all of them, with a stream that
 * sends blocks in order) take slabs of LARGE_PREWRITE_BYTES: every
 * write-through costs a write call and, in a resumable sink, a journal
 * record, so fewer larger runs cost less CPU per byte. At most
 * LARGE_RUNS · 1 MiB more memory than small slabs alone.
 */
export const LARGE_PREWRITE_BYTES = 1024 * 1024;
export const LARGE_RUNS = 8;
/** Slabs of each size kept for the next ones once every write from them has landed. */
const SPARE_SLABS = 8;
/**
 * Most bytes of slabs in use at once (open, or with writes not landed):
 * writes that land late (a disk or a thread pool that falls behind, a
 * machine short of CPU) would otherwise take a fresh slab, its pages
 * faulted in, per MiB received. Beyond it, source symbols are not written
 * through until a slab is free: they stay the decoder's, and the block's
 * own write puts them in the file.
 */
export const MAX_SLAB_BYTES = 16 << 20;
/**
 * A run goes on past up to this many lost symbols (an in-order stream
 * with loss): their place in the slab, and in the write, holds filler
 * that the block's own write replaces (BlockSink.prewrite's `symbols`).
 * So a lossy stream still takes one write per slab, not one per loss.
 */
export const MAX_HOLE = 64;

/** A buffer a block gathers its source symbols into, run after run. */
interface Slab {
  bytes: Buffer;
  /** Symbols it holds. */
  capacity: number;
  /** Symbols taken so far. */
  used: number;
  large: boolean;
  /** Still its block's slab (more runs may take room in it). */
  open: boolean;
  /** Writes from it not settled yet. */
  pending: number;
  /** Given back to the spares, or a sink that returns nothing may keep its bytes: never given back (again). */
  spent: boolean;
  /** No longer counted in use (slabBytes). */
  released: boolean;
}

/**
 * A run of ascending source symbols of one block, for one prewrite: `span`
 * ESIs from firstEsi at symbol `at` of its slab, some of them holes
 * (lost: filler).
 */
interface PrewriteRun {
  firstEsi: number;
  span: number;
  /** [first, count] of each hole, in symbols from the run's start. */
  holes: [number, number][];
  slab: Slab;
  at: number;
  /** It started past every ESI its block gathered before: its holes hold nothing written. */
  atFrontier: boolean;
  /** Every symbol of it is the decoder's (gathered while its block was not being solved). */
  trusted: boolean;
}

/** What was written through for one block since its first symbol. */
interface BlockWrites {
  /** Every prewrite made for the block: its own write waits for all of them. */
  issued: Promise<boolean>[];
  /** The trusted ones: where they write and whether they landed whole. */
  ranges: { offset: number; length: number; landed: Promise<boolean> }[];
  /** Evicted since: nothing of it may be skipped. */
  tainted: boolean;
}

/** Whether `v` is a promise (a sink that reports whether its prewrite landed). */
function isPromise(v: unknown): v is Promise<boolean> {
  return typeof (v as Promise<boolean> | undefined)?.then === 'function';
}

export class WriteThrough {
  /** Per block, the run being gathered. */
  private readonly runs: (PrewriteRun | undefined)[];
  /** Per block, the slab its runs are gathered into. */
  private readonly slabs: (Slab | undefined)[];
  /** Per block, its prewrites (sinks that say whether they landed). */
  private readonly writes: (BlockWrites | undefined)[];
  /** Per block, one past the highest ESI gathered. */
  private readonly frontier: number[];
  /** Per block, a bit per ESI written as filler (a hole): a symbol that comes later for it is not skipped. */
  private readonly holeBits: (Uint8Array | undefined)[];
  private readonly smallSymbols: number;
  private readonly largeSymbols: number;
  /** Open large slabs (at most LARGE_RUNS). */
  private largeOpen = 0;
  /**
   * Slabs no block uses any more and whose writes have landed, for the
   * next ones: no fresh memory (page faults, external memory for the
   * garbage collector) per slab. Only with a sink whose prewrite says when
   * it is done with the bytes (a promise).
   */
  private readonly spare: { small: Buffer[]; large: Buffer[] } = { small: [], large: [] };
  /** Bytes of the slabs in use (at most maxSlabBytes). */
  private usedSlabBytes = 0;
  /** Source symbols not written through because every slab allowed was in use. */
  symbolsNotGathered = 0;

  constructor(
    private readonly sink: Required<Pick<BlockSink, 'prewrite'>>,
    private readonly layout: Pick<ObjectLayout, 'blockOffset' | 'blockLength'>,
    private readonly T: number,
    blocks: number,
    /** Lost symbols a run goes on past (MAX_HOLE); 0: a run is consecutive ESIs only. */
    private readonly maxHole = MAX_HOLE,
    /** MAX_SLAB_BYTES. */
    private readonly maxSlabBytes = MAX_SLAB_BYTES,
  ) {
    this.runs = new Array<PrewriteRun | undefined>(blocks);
    this.slabs = new Array<Slab | undefined>(blocks);
    this.writes = new Array<BlockWrites | undefined>(blocks);
    this.frontier = new Array<number>(blocks).fill(0);
    this.holeBits = new Array<Uint8Array | undefined>(blocks);
    this.smallSymbols = Math.max(1, Math.floor(PREWRITE_BYTES / T));
    this.largeSymbols = Math.max(this.smallSymbols, Math.floor(LARGE_PREWRITE_BYTES / T));
  }

  /**
   * Adds source symbol `esi` of block sbn (T bytes at buf[at]) to the
   * block's run; writes the run when it ends (the next symbol does not
   * continue it, or its slab is full). `trusted`: the decoder holds (or
   * will hold) this very symbol; false for one taken while its block is
   * being solved.
   */
  gather(sbn: number, esi: number, buf: Uint8Array, at: number, trusted = true): void {
    const T = this.T;
    let run = this.runs[sbn];
    if (run !== undefined) {
      const hole = esi - (run.firstEsi + run.span);
      // Symbols ahead of a run at the frontier, within MAX_HOLE and the slab's room, continue it.
      if (hole < 0 || (hole > 0 && !run.atFrontier) || hole > this.maxHole || run.at + run.span + hole >= run.slab.capacity) {
        this.runs[sbn] = undefined;
        this.write(sbn, run);
        run = undefined;
      } else if (hole > 0) {
        const bits = (this.holeBits[sbn] ??= new Uint8Array((Math.ceil(this.layout.blockLength(sbn) / T) + 7) >> 3));
        for (let e = esi - hole; e < esi; e++) bits[e >> 3] |= 1 << (e & 7);
        run.holes.push([run.span, hole]);
        run.span += hole;
        run.slab.used += hole;
      }
    }
    // A symbol for a hole already written as filler: that write may land after this one's.
    const bits = this.holeBits[sbn];
    if (bits !== undefined && (bits[esi >> 3] & (1 << (esi & 7))) !== 0) trusted = false;
    if (run === undefined) {
      let slab = this.slabs[sbn];
      if (slab !== undefined && slab.used === slab.capacity) {
        this.closeSlab(slab);
        this.slabs[sbn] = slab = undefined;
      }
      slab ??= this.newSlab();
      if (slab === undefined) {
        // Every slab allowed is in use: this symbol is left to the block's write.
        this.symbolsNotGathered++;
        return;
      }
      this.slabs[sbn] = slab;
      this.runs[sbn] = run = { firstEsi: esi, span: 0, holes: [], slab, at: slab.used, atFrontier: esi >= this.frontier[sbn], trusted: true };
    }
    if (esi >= this.frontier[sbn]) this.frontier[sbn] = esi + 1;
    if (!trusted) run.trusted = false;
    const slab = run.slab;
    // Buffer.copy: no view object per symbol.
    if (Buffer.isBuffer(buf)) buf.copy(slab.bytes, slab.used * T, at, at + T);
    else slab.bytes.set(buf.subarray(at, at + T), slab.used * T);
    slab.used++;
    run.span++;
  }

  /** Block `sbn` needs no write (a resumed block): what was gathered is dropped, what was written forgotten. */
  drop(sbn: number): void {
    this.discard(sbn);
    this.writes[sbn] = undefined;
  }

  /**
   * Block `sbn` was evicted: its symbols gathered are dropped with the
   * decoder's, and nothing written for it so far may be skipped by its
   * block write.
   */
  forget(sbn: number): void {
    this.discard(sbn);
    const w = this.writes[sbn];
    if (w !== undefined) {
      w.tainted = true;
      w.ranges = [];
    }
  }

  /**
   * Block `sbn` decoded: the symbols still gathered are dropped (its block
   * write covers them). Resolves, once every write made for the block has
   * settled, to the object byte ranges of the block that hold the decoded
   * bytes already, ascending and merged: what the block write may skip.
   */
  async settle(sbn: number): Promise<ByteRange[]> {
    this.discard(sbn);
    const w = this.writes[sbn];
    this.writes[sbn] = undefined;
    if (w === undefined) return [];
    await Promise.all(w.issued);
    if (w.tainted) return [];
    const landed: ByteRange[] = [];
    for (const r of w.ranges) if (await r.landed) landed.push({ offset: r.offset, length: r.length });
    landed.sort((a, b) => a.offset - b.offset);
    const merged: ByteRange[] = [];
    for (const r of landed) {
      const last = merged[merged.length - 1];
      if (last !== undefined && last.offset + last.length >= r.offset) {
        last.length = Math.max(last.length, r.offset + r.length - last.offset);
      } else {
        merged.push({ ...r });
      }
    }
    return merged;
  }

  /**
   * Writes every run gathered so far (the fetch is stopping: a resumable
   * sink keeps what is written, ObjectSink.suspend).
   */
  flush(): void {
    for (let sbn = 0; sbn < this.runs.length; sbn++) {
      const run = this.runs[sbn];
      if (run === undefined) continue;
      this.runs[sbn] = undefined;
      this.write(sbn, run);
    }
  }

  /** Slabs kept for the next ones (tests). */
  get spareBuffers(): number {
    return this.spare.small.length + this.spare.large.length;
  }

  /** Bytes of the slabs in use: open, or with writes not landed (at most MAX_SLAB_BYTES). */
  get slabBytes(): number {
    return this.usedSlabBytes;
  }

  /**
   * A slab: large while fewer than LARGE_RUNS are open, a spare one if
   * there is one; undefined if it would take the slabs in use past
   * maxSlabBytes.
   */
  private newSlab(): Slab | undefined {
    const large = this.largeOpen < LARGE_RUNS;
    const capacity = large ? this.largeSymbols : this.smallSymbols;
    if (this.usedSlabBytes + capacity * this.T > this.maxSlabBytes) return undefined;
    if (large) this.largeOpen++;
    const bytes = (large ? this.spare.large : this.spare.small).pop() ?? Buffer.allocUnsafe(capacity * this.T);
    this.usedSlabBytes += bytes.length;
    return { bytes, capacity, used: 0, large, open: true, pending: 0, spent: false, released: false };
  }

  /** No more runs go into `slab`; it is spare once its writes have landed. */
  private closeSlab(slab: Slab): void {
    if (!slab.open) return;
    slab.open = false;
    if (slab.large) this.largeOpen--;
    this.recycle(slab);
  }

  private recycle(slab: Slab): void {
    if (slab.open || slab.pending > 0) return;
    if (!slab.released) {
      slab.released = true;
      this.usedSlabBytes -= slab.bytes.length;
    }
    if (slab.spent) return;
    slab.spent = true;
    const pool = slab.large ? this.spare.large : this.spare.small;
    if (pool.length < SPARE_SLABS) pool.push(slab.bytes);
  }

  /** Block `sbn`'s run, if any, is not written, and its slab is left. */
  private discard(sbn: number): void {
    this.runs[sbn] = undefined;
    this.frontier[sbn] = 0;
    this.holeBits[sbn] = undefined;
    const slab = this.slabs[sbn];
    this.slabs[sbn] = undefined;
    if (slab !== undefined) this.closeSlab(slab);
  }

  private write(sbn: number, run: PrewriteRun): void {
    const T = this.T;
    const start = run.firstEsi * T;
    // The last block's last symbol is padded past the object's end.
    const length = Math.min(run.span * T, this.layout.blockLength(sbn) - start);
    if (run.span === 0 || length <= 0) return;
    const offset = this.layout.blockOffset(sbn) + start;
    const slab = run.slab;
    // The symbols' ranges (object offsets) between the holes, within `length`.
    const symbols: ByteRange[] = [];
    let from = 0;
    for (const [first, count] of [...run.holes, [run.span, 0] as [number, number]]) {
      const to = Math.min(first * T, length);
      if (to > from) symbols.push({ offset: offset + from, length: to - from });
      from = (first + count) * T;
    }
    const data = slab.bytes.subarray(run.at * T, run.at * T + length);
    const result = run.holes.length === 0 ? this.sink.prewrite(offset, data) : this.sink.prewrite(offset, data, symbols);
    if (!isPromise(result)) {
      slab.spent = true;
      return;
    }
    slab.pending++;
    // A failed write is one the block write must not skip; it never rejects the block's.
    const landed = result.then(
      (ok) => ok === true,
      () => false,
    );
    // The sink is done with the bytes once its promise settles.
    void landed.then(() => {
      slab.pending--;
      this.recycle(slab);
    });
    const w = (this.writes[sbn] ??= { issued: [], ranges: [], tainted: false });
    w.issued.push(landed);
    if (run.trusted && !w.tainted) for (const r of symbols) w.ranges.push({ offset: r.offset, length: r.length, landed });
  }
}
