/**
 * Frames of a byte stream as batches read in place, from storage the
 * socket reads into (net.Socket's `onread`): each read becomes one delivery
 * (Datagrams) of the whole frames it completes, as offsets into that
 * storage, so a client at a few hundred Mbit/s makes no object per packet
 * and copies no byte of the stream (docs/PROTOCOL.md §3 framing;
 * protocol/framing.ts's scanFrames is the rule, which FrameDecoder also
 * applies, copying each frame, for the server's few control messages).
 *
 * The storage (DEFAULT_FRAME_STORAGE_BYTES) is filled read after read;
 * a frame cut by a read's end is completed in place by the next one. Once
 * less than `minRead` bytes are left after the bytes held, the next read
 * goes to fresh storage, and only the one partial frame is copied there.
 * Storage is never read into twice while a delivery's views may be held (a
 * packet kept before JOINED, an ALC packet of a TOI not yet in an FDT):
 * they stay valid, as the UDP receiver's batches do. But when the owner
 * says, after each delivery from it, that nothing of it was kept
 * (release()), the storage is read into again from its start (only the
 * partial frame moved there): no fresh memory, so no page faults, per MiB
 * read (8 % of the fetch's main thread at 1 % loss, docs/BENCHMARKS.md,
 * 2026-12-05), and the reads land in memory still in cache.
 *
 * The reader this replaces took Node's 'data' chunks (fresh 64 KiB each)
 * and joined the partial frame with the next chunk (Buffer.concat): that
 * copied nearly every chunk: 20 % of the fetch's main-thread samples at 0 % loss
 * (docs/BENCHMARKS.md, 2026-12-05).
 *
 * A zero length is a framing error: `failed` is set and nothing more is read.
 */
import { FRAME_HEADER_SIZE, FRAME_MAX_PAYLOAD, scanFrames } from '../../protocol/framing';
import type { Datagrams } from '../client-transport';

/** Storage read into, per allocation. */
export const DEFAULT_FRAME_STORAGE_BYTES = 1 << 20;
/** The least room a read is given (Node's own read size). */
export const DEFAULT_MIN_READ_BYTES = 64 * 1024;
/** The longest frame, header included: a partial frame is always shorter. */
const FRAME_MAX_BYTES = FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD;

/** One read's whole frames, every one from `address`:`port` (the connection's server). */
export class FrameBatch implements Datagrams {
  readonly truncated = 0;
  readonly reusable = true;
  constructor(
    readonly data: Buffer,
    private readonly offsets: number[],
    private readonly lengths: number[],
    private readonly from: string,
    private readonly fromPort: number,
  ) {}
  get count(): number {
    return this.offsets.length;
  }
  offset(i: number): number {
    return this.offsets[i];
  }
  length(i: number): number {
    return this.lengths[i];
  }
  datagram(i: number): Buffer {
    return this.data.subarray(this.offsets[i], this.offsets[i] + this.lengths[i]);
  }
  address(_i: number): string {
    return this.from;
  }
  port(_i: number): number {
    return this.fromPort;
  }
}

export interface FrameBatcherOptions {
  /** Bytes per storage allocation; at least 65 537 + minReadBytes. Default DEFAULT_FRAME_STORAGE_BYTES. */
  storageBytes?: number;
  /** The least room a read is given. Default DEFAULT_MIN_READ_BYTES. */
  minReadBytes?: number;
}

/**
 * The read side of one connection: readBuffer() is where the next read
 * goes, filled(n) takes the n bytes read there. The two alternate.
 */
export class FrameBatcher {
  private readonly storageBytes: number;
  private readonly minRead: number;
  private storage: Buffer;
  /** Where the frame not yet whole starts (= `end` when none). */
  private start = 0;
  /** The end of the bytes read. */
  private end = 0;
  private failure: 'empty-frame' | undefined;
  /** Deliveries from this storage not released: while any, it is not read into again. */
  private unreleased = 0;

  constructor(
    private readonly address: string,
    private readonly port: number,
    o: FrameBatcherOptions = {},
  ) {
    this.minRead = o.minReadBytes ?? DEFAULT_MIN_READ_BYTES;
    this.storageBytes = o.storageBytes ?? DEFAULT_FRAME_STORAGE_BYTES;
    if (!Number.isInteger(this.minRead) || this.minRead < 1 || !Number.isInteger(this.storageBytes) || this.storageBytes < FRAME_MAX_BYTES + this.minRead) {
      throw new RangeError(`frame storage must hold a whole frame (${FRAME_MAX_BYTES} bytes) and a read of at least 1 byte`);
    }
    this.storage = Buffer.allocUnsafeSlow(this.storageBytes);
  }

  get failed(): 'empty-frame' | undefined {
    return this.failure;
  }

  /** Bytes held that are not yet a whole frame. */
  get buffered(): number {
    return this.end - this.start;
  }

  /**
   * Where the next read goes: the storage after the bytes held (fresh
   * storage, the partial frame copied to its start, when less than
   * minReadBytes is left). The same until filled() is called.
   */
  readBuffer(): Buffer {
    const full = this.storageBytes - this.end < this.minRead;
    // Nothing read here is held: the same storage again, from its start.
    const again = this.unreleased === 0 && this.start > 0 && (full || this.start === this.end);
    if (again || full) {
      // Only the partial frame moves (Buffer.copy allows the overlap of `again`).
      const target = again ? this.storage : Buffer.allocUnsafeSlow(this.storageBytes);
      this.storage.copy(target, 0, this.start, this.end);
      this.storage = target;
      this.end -= this.start;
      this.start = 0;
      this.unreleased = 0;
    }
    return this.storage.subarray(this.end);
  }

  /**
   * The last delivery's views are no longer held (nothing of it was kept
   * past its handling): once every delivery from the storage is released,
   * the storage may be read into again.
   */
  release(): void {
    if (this.unreleased > 0) this.unreleased--;
  }

  /**
   * `n` bytes were read into readBuffer(): the whole frames they complete
   * (undefined if none), read in place. Nothing after a zero-length frame.
   */
  filled(n: number): FrameBatch | undefined {
    if (this.failure !== undefined) return undefined;
    if (!Number.isInteger(n) || n < 0 || n > this.storageBytes - this.end) throw new RangeError(`a read of ${n} bytes does not fit the read buffer`);
    this.end += n;
    const view = this.storage.subarray(this.start, this.end);
    const { offsets, lengths, end, emptyFrame } = scanFrames(view);
    if (emptyFrame) this.failure = 'empty-frame';
    this.start += end;
    if (offsets.length === 0) return undefined;
    this.unreleased++;
    return new FrameBatch(view, offsets, lengths, this.address, this.port);
  }
}
