/**
 * Frames of a byte stream as batches read in place: each chunk the socket
 * hands over becomes one delivery (Datagrams) of the whole frames it
 * completes, as offsets into one buffer, so a client at a few hundred
 * Mbit/s makes no object per packet (docs/PROTOCOL.md §3 framing;
 * protocol/framing.ts's scanFrames is the rule, which FrameDecoder also
 * applies, copying each frame, for the server's few control messages).
 *
 * Only a frame cut by a chunk's end is copied (once, when the next chunk
 * completes it: the partial frame and that chunk are joined). A zero
 * length is a framing error: `failed` is set and nothing more is read.
 */
import { scanFrames } from '../../protocol/framing';
import type { Datagrams } from '../client-transport';

/** One chunk's whole frames, every one from `address`:`port` (the connection's server). */
export class FrameBatch implements Datagrams {
  readonly truncated = 0;
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

export class FrameBatcher {
  private pending: Buffer = Buffer.alloc(0);
  private failure: 'empty-frame' | undefined;

  constructor(
    private readonly address: string,
    private readonly port: number,
  ) {}

  get failed(): 'empty-frame' | undefined {
    return this.failure;
  }

  /** Bytes held that are not yet a whole frame. */
  get buffered(): number {
    return this.pending.length;
  }

  /** The whole frames `chunk` completes (undefined if none); the chunk's storage is read in place and must not be reused by the caller during the delivery. */
  push(chunk: Buffer): FrameBatch | undefined {
    if (this.failure !== undefined) return undefined;
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const { offsets, lengths, end, emptyFrame } = scanFrames(buf);
    if (emptyFrame) {
      this.failure = 'empty-frame';
      this.pending = Buffer.alloc(0);
    } else {
      // The partial frame is copied: the socket may reuse the chunk's memory.
      this.pending = end === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(end));
    }
    return offsets.length > 0 ? new FrameBatch(buf, offsets, lengths, this.address, this.port) : undefined;
  }
}
