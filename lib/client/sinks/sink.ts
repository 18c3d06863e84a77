/**
 * Where an object's decoded source blocks go: the file writer today
 * (file-sink.ts), a playout sink next (progressive playout: each block
 * handed on as soon as it decodes).
 *
 * The object registry opens one sink per wanted object (one FDT File:
 * name, OTI, SHA-256, RFC 6726 §3.4.2) and its ObjectReceiver hands the sink
 * each source block once, at the block's offset in the object (RFC 6330
 * §4.4.1.2 partitioning), in decode order, not in block order.
 */
import type { Oti as WireOti } from '../../protocol/oti';

/** Bytes [offset, offset + length) of the object. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** What a receiver hands decoded data to. */
export interface BlockSink {
  /**
   * Called once per source block, in decode order. `inPlace`: ranges of
   * the block (object offsets, ascending, not overlapping) that a prewrite
   * this sink resolved true for has already written with these very bytes,
   * and that nothing will write again (write-through.ts): a sink may skip
   * them. A sink that keeps the block (a playout) ignores it.
   */
  writeBlock(sbn: number, offset: number, data: Uint8Array, inPlace?: readonly ByteRange[]): Promise<void>;
  /**
   * Optional write-through: source symbols as they arrive, `data` at
   * `offset`, before their block decodes. It moves the cost of writing the
   * object (page-cache allocation) from the end of the transfer, when every
   * block of a round-robin stream decodes at once, to the time the symbols
   * arrive. May fail or land in any order. A sink that returns a promise
   * resolving true once the bytes are in place whole is told so by
   * writeBlock's inPlace, and then writes each byte once; otherwise
   * writeBlock writes the whole block again. Once that promise settles the
   * sink no longer reads `data` (the receiver reuses its memory); a sink
   * that returns nothing may keep it. `symbols`: the ranges of `data`
   * (object offsets, ascending) that are source symbols, when not all of
   * it is; the rest is filler in the place of lost symbols, which the
   * block's write replaces (it is never in writeBlock's inPlace).
   */
  prewrite?(offset: number, data: Uint8Array, symbols?: readonly ByteRange[]): void | Promise<boolean>;
  /**
   * Optional: asked once writeBlock(sbn, …, data) has resolved, whether the
   * sink keeps no reference to `data` any more (written, hashed, nothing
   * held for later). True lets the receiver give the block's memory back
   * to the decoder at once (ObjectDecoder.returnBlock, which detaches it);
   * a sink that answers false, or lacks this, leaves it to the garbage
   * collector.
   */
  doneWithBlock?(sbn: number, data: Uint8Array): boolean;
}

/** The FDT's description of an object a sink receives. */
export interface SinkObject {
  /** Content-Location. */
  name: string;
  oti: WireOti;
  /** rq:Content-SHA-256: what the whole object must hash to. */
  sha256: Uint8Array;
  /**
   * Settles once the sink of this name's previous version (replaced on the
   * server, docs/PROTOCOL.md §10.2) has let go of the destination: a sink
   * touches no file of it (resume files, lock) before then.
   */
  after?: Promise<unknown>;
}

export interface ObjectSink extends BlockSink {
  /** Where the object ends up (ObjectResult.path). */
  readonly path: string;
  /**
   * A resumable sink (resumable-sink.ts): the SBNs of the blocks it already
   * holds from an interrupted fetch, each verified against its recorded
   * checksum; the receiver counts them as decoded. Rejects when the object
   * cannot be written (UnfetchableObjectError: another fetch writes it).
   */
  readonly resumed?: Promise<number[]>;
  /** Every block has been written: verify the object (DigestMismatchError) and publish it. */
  commit(): Promise<void>;
  /** The fetch failed: take back whatever was written. Never rejects. */
  abort(): Promise<void>;
  /**
   * A resumable sink: the fetch stopped short (interrupted, timed out, …);
   * keep the blocks written, and their record, for the next fetch of the
   * same object. What was kept, or undefined if nothing. Never rejects.
   */
  suspend?(): Promise<KeptPartial | undefined>;
  /**
   * A resumable sink: hands `add` the source symbols an interrupted fetch
   * wrote through (BlockSink.prewrite) for blocks it had not decoded, as
   * object bytes at `offset`, verified. Returns the bytes handed over.
   */
  resumeSymbols?(add: (offset: number, bytes: Uint8Array) => void): Promise<number>;
}

/** What a stopped fetch kept of an object for the next one (ObjectSink.suspend). */
export interface KeptPartial {
  name: string;
  /** Where the object will be published. */
  path: string;
  /** The part file and its journal (resume-state.ts). */
  partPath: string;
  statePath: string;
  blocksKept: number;
  blocks: number;
  bytesKept: number;
  /** Bytes of source symbols of the other blocks, written through and recorded. */
  symbolBytesKept: number;
  bytes: number;
}

export interface SinkFactory {
  /** A sink for `object`; throws UnfetchableObjectError if it cannot take it (an unsafe name, a path in use). */
  open(object: SinkObject): ObjectSink;
}
