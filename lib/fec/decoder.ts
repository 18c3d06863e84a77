/**
 * ObjectDecoder: collects RFC 6330 packets (4-byte FEC Payload ID + T
 * bytes) in any order, from any mix of sources, and decodes each source
 * block as soon as it holds enough symbols.
 *
 * Packets are untrusted input. A malformed one throws a typed error
 * (BadPacketLengthError, SbnOutOfRangeError, ...) and leaves the decoder
 * as it was; batch calls can instead skip and count them (skipInvalid).
 *
 * Progressive playout and bounded memory: takeBlock(sbn) hands out a
 * decoded block's bytes and frees them; later packets of that block are
 * ignored.
 */
import { awaitNative, callNative } from './errors';
import { loadNative, RawBatchResult, RawCodecBinding, RawDecoder } from '../native';
import { PAYLOAD_ID_SIZE } from './encoder';
import { ObjectLayout, Oti, OtiFields, otiWireBytes, ownOtiBytes } from './oti';

export interface BatchOptions {
  /**
   * Skip malformed packets and count them in `rejected` instead of
   * throwing. When false (default) the batch stops at the first malformed
   * packet and throws its typed error with `index` set; the packets before
   * it are kept.
   */
  skipInvalid?: boolean;
}

export interface BatchResult {
  /** Valid packets, duplicates included. */
  accepted: number;
  /** Malformed packets skipped (skipInvalid). */
  rejected: number;
  /** Blocks that became decoded during this batch. */
  blocksDecoded: number;
  /** The whole object is decoded. */
  complete: boolean;
  /** Code of the first malformed packet (skipInvalid), e.g. ERR_RQ_BAD_PACKET_LENGTH. */
  firstError?: string;
  firstErrorIndex?: number;
}

export interface BlockProgress {
  sbn: number;
  /** Distinct symbols held (at decode time, once decoded). */
  received: number;
  /** K: decoding needs at least this many (usually exactly, rarely 1-2 more). */
  needed: number;
  decoded: boolean;
  /** Handed out by takeBlock()/releaseBlock(). */
  released: boolean;
}

function toResult(r: RawBatchResult): BatchResult {
  const out: BatchResult = {
    accepted: r.accepted,
    rejected: r.rejected,
    blocksDecoded: r.blocksDecoded,
    complete: r.complete,
  };
  if (r.firstError !== undefined) {
    out.firstError = r.firstError;
    out.firstErrorIndex = r.firstErrorIndex;
  }
  return out;
}

export class ObjectDecoder {
  private readonly raw: RawDecoder;
  // The 12 OTI bytes the native constructor accepted; the Oti is built on
  // first use (otiInfo), as in ObjectEncoder.
  private readonly otiBytes: Uint8Array;
  private readonly binding: RawCodecBinding;
  private acceptedOti: Oti | undefined;
  // Async operations run one after the other (the native decoder accepts
  // one at a time); the chain starts with the first of them.
  private queue: Promise<unknown> | undefined;

  constructor(oti: Uint8Array | OtiFields, binding: RawCodecBinding = loadNative()) {
    // The native constructor checks the OTI (as Oti.parse would): one
    // native call, not two. Fields that do not fit their wire widths take
    // Oti.from, which names the bound they break.
    const bytes = oti instanceof Uint8Array ? ownOtiBytes(oti) : otiWireBytes(oti);
    this.binding = binding;
    if (bytes !== undefined) {
      this.raw = callNative(() => new binding.Decoder(bytes));
      this.otiBytes = bytes;
    } else {
      this.acceptedOti = Oti.from(oti as OtiFields, binding);
      const own = this.acceptedOti.toBytes();
      this.raw = callNative(() => new binding.Decoder(own));
      this.otiBytes = own;
    }
  }

  /** The object's OTI (F, T, Z, N, Al). */
  get otiInfo(): Oti {
    return (this.acceptedOti ??= Oti.accepted(this.otiBytes, this.binding));
  }

  /**
   * The block layout (RFC 6330 §4.4.1.2), computed on first use: an
   * encoder or decoder that never asks (a one-block object whose packets
   * go straight in and out) saves the native call.
   */
  get layout(): ObjectLayout {
    return this.otiInfo.layout;
  }

  get oti(): Uint8Array {
    return this.otiInfo.toBytes();
  }
  /** Z */
  get sourceBlocks(): number {
    return this.otiInfo.Z;
  }
  /** 4 + T: the only valid packet length. */
  get packetSize(): number {
    return PAYLOAD_ID_SIZE + this.otiInfo.T;
  }
  get complete(): boolean {
    return callNative(() => this.raw.complete());
  }
  get blocksDecoded(): number {
    return callNative(() => this.raw.blocksDecoded());
  }

  /** Adds one packet; true once the whole object is decoded. */
  push(packet: Uint8Array): boolean {
    return callNative(() => this.raw.push(packet));
  }

  /** Adds `buf.length / packetSize` packets laid back to back (e.g. from recvmmsg). */
  pushBatch(buf: Uint8Array, packetSize: number = this.packetSize, options: BatchOptions = {}): BatchResult {
    return toResult(callNative(() => this.raw.pushBatch(buf, packetSize, options.skipInvalid ?? false)));
  }

  /** Adds an array of packets in one native call. */
  pushMany(packets: readonly Uint8Array[], options: BatchOptions = {}): BatchResult {
    return toResult(callNative(() => this.raw.pushArray(packets as Uint8Array[], options.skipInvalid ?? false)));
  }

  /**
   * Like pushBatch, but the blocks that become decodable are solved on a
   * worker thread. Calls are queued: `buf` is read when this call's turn
   * comes, so do not reuse it before the promise settles.
   */
  pushBatchAsync(buf: Uint8Array, packetSize: number = this.packetSize, options: BatchOptions = {}): Promise<BatchResult> {
    const skip = options.skipInvalid ?? false;
    return this.enqueue(() => this.raw.pushBatchAsync(buf, packetSize, skip));
  }

  /** Like pushMany, solving off the JS thread; queued like pushBatchAsync. */
  pushManyAsync(packets: readonly Uint8Array[], options: BatchOptions = {}): Promise<BatchResult> {
    const skip = options.skipInvalid ?? false;
    return this.enqueue(() => this.raw.pushArrayAsync(packets as Uint8Array[], skip));
  }

  /**
   * Adds `count` packets (4 + T bytes each) found at `offsets` in `buf`,
   * without solving: packets read where they were received, no copy before
   * the decoder's own. Returns how many were malformed (skipped). Allowed
   * while an async operation runs, but not for a block being solved (the
   * call would wait for it).
   */
  addPackets(buf: Uint8Array, offsets: Uint32Array, count: number = offsets.length): number {
    return callNative(() => this.raw.addPackets(buf, offsets, count));
  }

  /** Tries to decode blocks `sbns` now, on this thread. */
  solve(sbns: readonly number[]): void {
    callNative(() => this.raw.solve(Uint32Array.from(sbns)));
  }

  /** Tries to decode blocks `sbns` on a worker thread; queued like pushBatchAsync. */
  solveAsync(sbns: readonly number[]): Promise<BatchResult> {
    const list = Uint32Array.from(sbns);
    return this.enqueue(() => this.raw.solveAsync(list));
  }

  private enqueue(op: () => Promise<RawBatchResult>): Promise<BatchResult> {
    const run = (this.queue ?? Promise.resolve()).then(() => awaitNative(op)).then(toResult);
    this.queue = run.catch(() => undefined);
    return run;
  }

  blockDecoded(sbn: number): boolean {
    return callNative(() => this.raw.blockDecoded(sbn));
  }

  /** A decoded block's bytes (blockLength(sbn) of them); the decoder keeps its copy. */
  copyBlock(sbn: number): Uint8Array {
    return callNative(() => this.raw.copyBlock(sbn));
  }

  /** A decoded block's bytes; the decoder frees its copy and ignores the block from now on. */
  takeBlock(sbn: number): Uint8Array {
    return callNative(() => this.raw.takeBlock(sbn));
  }

  /**
   * Gives back a Buffer from takeBlock, whole, once nothing uses its bytes
   * any more (written, hashed, no write in flight): its memory goes back
   * to the codec's cache at once, for the next block, instead of when the
   * garbage collector finds it. The Buffer is detached: it and every view
   * of it read as empty from then on. Throws BlockReleasedError for
   * anything else (a view of part of a block, a block given back already).
   */
  returnBlock(data: Uint8Array): void {
    callNative(() => this.raw.returnBlock(data));
  }

  /** Blocks given back by returnBlock. */
  get returnedBlocks(): number {
    return this.raw.returnedBlocks();
  }

  /**
   * Frees a block without copying it: a decoded block is then finished (as
   * after takeBlock); an undecoded one drops its symbols and starts over.
   */
  releaseBlock(sbn: number): void {
    callNative(() => this.raw.releaseBlock(sbn));
  }

  /**
   * Drops the symbols of a block that is not decoded yet, so that a receiver
   * can stay within a memory budget; the block can be received again from
   * scratch. A decoded block is left alone. Returns whether symbols were held.
   */
  discardBlock(sbn: number): boolean {
    return callNative(() => this.raw.discardBlock(sbn));
  }

  /**
   * Heap bytes block `sbn` holds in the native decoder now (its source
   * buffer, parked repair symbols and their bookkeeping; the K*T decoded
   * bytes once decoded, until taken). A solve's working memory is not
   * included.
   */
  heldBytes(sbn: number): number {
    return callNative(() => this.raw.heldBytes(sbn));
  }

  /** Symbols held and needed per block, in one native call. */
  get progress(): BlockProgress[] {
    const received = callNative(() => this.raw.received());
    const out: BlockProgress[] = [];
    for (let sbn = 0; sbn < received.length; sbn++) {
      out.push({
        sbn,
        received: received[sbn],
        needed: this.layout.sourceSymbols(sbn),
        decoded: this.raw.blockDecoded(sbn),
        released: this.raw.blockReleased(sbn),
      });
    }
    return out;
  }

  /** The whole object, exactly F bytes. Throws NeedMoreSymbolsError before completion, BlockReleasedError after takeBlock. */
  result(): Uint8Array {
    return callNative(() => this.raw.result());
  }

  /** Frees everything now; later calls throw CodecClosedError. */
  close(): void {
    this.raw.close();
  }
}
