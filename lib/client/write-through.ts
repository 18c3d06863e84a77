/**
 * WriteThrough: source symbols handed to the sink as they arrive
 * (BlockSink.prewrite), before their block decodes.
 *
 * With one sub-block (N = 1), source symbol ESI of block sbn is the
 * object's bytes at blockOffset(sbn) + ESI * T (RFC 6330 §4.4.1.2), so it
 * can be written where it belongs at once. This moves the cost of writing
 * the object (page-cache allocation) from the end of the transfer, when
 * every block of a round-robin stream decodes at once, to the time the
 * symbols arrive. Consecutive source symbols of a block are gathered into
 * one write of at most PREWRITE_BYTES.
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
 *   its earlier writes have landed.
 */
import type { ObjectLayout } from '../fec/oti';
import type { BlockSink, ByteRange } from './sinks/sink';

/**
 * Bytes of source symbols gathered per block before one write-through: at
 * most 160 KiB per block being received, whatever T (128 symbols at
 * T = 1280), beyond the first LARGE_RUNS blocks.
 */
export const PREWRITE_BYTES = 160 * 1024;
/**
 * The first LARGE_RUNS blocks with symbols gathered (all of them, with a
 * stream that sends blocks in order) gather up to LARGE_PREWRITE_BYTES
 * each: every write-through costs a write call and, in a resumable sink, a
 * journal record and its hash, so fewer larger runs cost less CPU per byte
 * (a 256 MiB fetch at 200 Mbit/s: about a tenth of the client's CPU
 * between 160 KiB and 1 MiB runs). At most LARGE_RUNS · 1 MiB more memory
 * than small runs alone.
 */
export const LARGE_PREWRITE_BYTES = 1024 * 1024;
export const LARGE_RUNS = 8;
/** Run buffers of each size kept for the next runs once their write has landed. */
const SPARE_BUFFERS = 4;

/** A run of consecutive source symbols of one block, for one prewrite. */
interface PrewriteRun {
  firstEsi: number;
  count: number;
  bytes: Buffer;
  /** Symbols it may hold (its buffer's size over T). */
  capacity: number;
  large: boolean;
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
  /** Per block, the source symbols gathered for the next write. */
  private readonly runs: (PrewriteRun | undefined)[];
  /** Per block, its prewrites (sinks that say whether they landed). */
  private readonly writes: (BlockWrites | undefined)[];
  private readonly smallSymbols: number;
  private readonly largeSymbols: number;
  /** Runs gathering into a large buffer now (at most LARGE_RUNS). */
  private largeOpen = 0;
  /**
   * Run buffers whose write has landed (or that were never written), for
   * the next runs: no fresh memory (page faults, external memory for the
   * garbage collector) per run. Only with a sink whose prewrite says when
   * it is done with the bytes (a promise).
   */
  private readonly spare: { small: Buffer[]; large: Buffer[] } = { small: [], large: [] };

  constructor(
    private readonly sink: Required<Pick<BlockSink, 'prewrite'>>,
    private readonly layout: Pick<ObjectLayout, 'blockOffset' | 'blockLength'>,
    private readonly T: number,
    blocks: number,
  ) {
    this.runs = new Array<PrewriteRun | undefined>(blocks);
    this.writes = new Array<BlockWrites | undefined>(blocks);
    this.smallSymbols = Math.max(1, Math.floor(PREWRITE_BYTES / T));
    this.largeSymbols = Math.max(this.smallSymbols, Math.floor(LARGE_PREWRITE_BYTES / T));
  }

  /**
   * Adds source symbol `esi` of block sbn (T bytes at buf[at]) to the
   * block's run; writes the run when it ends. `trusted`: the decoder holds
   * (or will hold) this very symbol; false for one taken while its block is
   * being solved.
   */
  gather(sbn: number, esi: number, buf: Uint8Array, at: number, trusted = true): void {
    const T = this.T;
    let run = this.runs[sbn];
    if (run !== undefined && (run.firstEsi + run.count !== esi || run.count === run.capacity)) {
      this.runs[sbn] = undefined;
      this.write(sbn, run);
      run = undefined;
    }
    // A buffer per run: the last one is the write's until it lands.
    if (run === undefined) this.runs[sbn] = run = this.newRun(esi);
    if (!trusted) run.trusted = false;
    // Buffer.copy: no view object per symbol.
    if (Buffer.isBuffer(buf)) buf.copy(run.bytes, run.count * T, at, at + T);
    else run.bytes.set(buf.subarray(at, at + T), run.count * T);
    run.count++;
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

  /** Run buffers kept for the next runs (tests). */
  get spareBuffers(): number {
    return this.spare.small.length + this.spare.large.length;
  }

  /** A run starting at `esi`: large while fewer than LARGE_RUNS are, in a spare buffer if there is one. */
  private newRun(esi: number): PrewriteRun {
    const large = this.largeOpen < LARGE_RUNS;
    if (large) this.largeOpen++;
    const capacity = large ? this.largeSymbols : this.smallSymbols;
    const bytes = (large ? this.spare.large : this.spare.small).pop() ?? Buffer.allocUnsafe(capacity * this.T);
    return { firstEsi: esi, count: 0, bytes, capacity, large, trusted: true };
  }

  /** The run of block `sbn`, if any, is not written: its buffer is free at once. */
  private discard(sbn: number): void {
    const run = this.runs[sbn];
    if (run === undefined) return;
    this.runs[sbn] = undefined;
    this.close(run);
    this.recycle(run);
  }

  /** A run stops gathering. */
  private close(run: PrewriteRun): void {
    if (run.large) this.largeOpen--;
  }

  private recycle(run: PrewriteRun): void {
    const pool = run.large ? this.spare.large : this.spare.small;
    if (pool.length < SPARE_BUFFERS) pool.push(run.bytes);
  }

  private write(sbn: number, run: PrewriteRun): void {
    this.close(run);
    const start = run.firstEsi * this.T;
    // The last block's last symbol is padded past the object's end.
    const length = Math.min(run.count * this.T, this.layout.blockLength(sbn) - start);
    if (run.count === 0 || length <= 0) {
      this.recycle(run);
      return;
    }
    const offset = this.layout.blockOffset(sbn) + start;
    const result = this.sink.prewrite(offset, run.bytes.subarray(0, length));
    // A sink that returns nothing may still hold the bytes: the buffer is not used again.
    if (!isPromise(result)) return;
    // A failed write is one the block write must not skip; it never rejects the block's.
    const landed = result.then(
      (ok) => ok === true,
      () => false,
    );
    // The sink is done with the bytes once its promise settles.
    void landed.then(() => this.recycle(run));
    const w = (this.writes[sbn] ??= { issued: [], ranges: [], tainted: false });
    w.issued.push(landed);
    if (run.trusted && !w.tainted) w.ranges.push({ offset, length, landed });
  }
}
