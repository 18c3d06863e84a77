/**
 * WriteThrough: source symbols handed to the sink as they arrive
 * (BlockSink.prewrite), before their block decodes.
 *
 * With one sub-block (N = 1), source symbol ESI of block sbn is the
 * object's bytes at blockOffset(sbn) + ESI * T (RFC 6330 §4.4.1.2), so it
 * can be written where it belongs at once; writeBlock later writes the same
 * bytes again. This moves the cost of writing the object (page-cache
 * allocation) from the end of the transfer, when every block of a
 * round-robin stream decodes at once, to the time the symbols arrive.
 * Consecutive source symbols of a block are gathered into one write of at
 * most PREWRITE_BYTES.
 */
import type { ObjectLayout } from '../fec/oti';
import type { BlockSink } from './sinks/sink';

/**
 * Bytes of source symbols gathered per block before one write-through: at
 * most 160 KiB per block being received, whatever T (128 symbols at
 * T = 1280).
 */
export const PREWRITE_BYTES = 160 * 1024;

/** A run of consecutive source symbols of one block, for one prewrite. */
interface PrewriteRun {
  firstEsi: number;
  count: number;
  bytes: Uint8Array;
}

export class WriteThrough {
  /** Per block, the source symbols gathered for the next write. */
  private readonly runs: (PrewriteRun | undefined)[];
  private readonly runSymbols: number;

  constructor(
    private readonly sink: Required<Pick<BlockSink, 'prewrite'>>,
    private readonly layout: Pick<ObjectLayout, 'blockOffset' | 'blockLength'>,
    private readonly T: number,
    blocks: number,
  ) {
    this.runs = new Array<PrewriteRun | undefined>(blocks);
    this.runSymbols = Math.max(1, Math.floor(PREWRITE_BYTES / T));
  }

  /** Adds source symbol `esi` of block sbn (T bytes at buf[at]) to the block's run; writes the run when it ends. */
  gather(sbn: number, esi: number, buf: Uint8Array, at: number): void {
    const T = this.T;
    let run = this.runs[sbn];
    if (run !== undefined && (run.firstEsi + run.count !== esi || run.count === this.runSymbols)) {
      this.write(sbn, run);
      run = undefined;
    }
    // A fresh buffer per run: the last one is the write's until it lands.
    if (run === undefined) this.runs[sbn] = run = { firstEsi: esi, count: 0, bytes: Buffer.allocUnsafe(this.runSymbols * T) };
    // Buffer.copy: no view object per symbol.
    if (Buffer.isBuffer(buf)) buf.copy(run.bytes, run.count * T, at, at + T);
    else run.bytes.set(buf.subarray(at, at + T), run.count * T);
    run.count++;
  }

  /** Block `sbn` decoded: its whole block is written now, the symbols gathered need no write of their own. */
  drop(sbn: number): void {
    this.runs[sbn] = undefined;
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

  private write(sbn: number, run: PrewriteRun): void {
    if (run.count === 0) return;
    const start = run.firstEsi * this.T;
    // The last block's last symbol is padded past the object's end.
    const length = Math.min(run.count * this.T, this.layout.blockLength(sbn) - start);
    if (length <= 0) return;
    this.sink.prewrite(this.layout.blockOffset(sbn) + start, run.bytes.subarray(0, length));
  }
}
