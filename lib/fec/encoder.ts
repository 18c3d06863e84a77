/**
 * ObjectEncoder: turns one object into RFC 6330 encoding packets
 * (4-byte FEC Payload ID + T bytes), any ESI of any block, on demand.
 *
 * The object's bytes are not copied: the native encoder keeps a reference
 * to `data`, which must not be modified while the encoder lives (a
 * detached/transferred buffer is detected and refused).
 *
 * ObjectEncoder.fromFile serves a file instead, of any size up to the
 * RFC 6330 limit (F < 2^40): a block's bytes are read (on the worker
 * thread that prepares it) when it is prepared and freed when it is
 * released, so the encoder's memory is that of its prepared blocks
 * (blockMemory), not the file's size.
 *
 * A block is "prepared" (its intermediate symbols solved, RFC 6330
 * §5.3.3.4) on first use; prepareBlockAsync does that off the JS thread,
 * so a server can prepare the next block while sending the current one.
 */
import * as fs from 'node:fs';
import { awaitNative, callNative, InvalidArgumentError, OtiOutOfBoundsError } from './errors';
import { loadNative, RawCodecBinding, RawEncoder } from '../native';
import { DeriveOptions, ObjectLayout, Oti, OtiFields, otiWireBytes, ownOtiBytes } from './oti';

export const PAYLOAD_ID_SIZE = 4;
export const MAX_ESI = 0xffffff;

export interface EncoderOptions extends DeriveOptions {
  /**
   * T, the symbol size in bytes. With it, Z and N are still derived
   * (RFC 6330 §4.3) unless sourceBlocks/subBlocks are given too.
   */
  symbolSize?: number;
  /** Z: number of source blocks (1..256). Requires symbolSize. */
  sourceBlocks?: number;
  /** N: number of sub-blocks (1..T/Al). Default 1 when sourceBlocks is given. */
  subBlocks?: number;
  /** A complete OTI (fields or its 12 bytes); overrides everything else. */
  oti?: OtiFields | Uint8Array;
}

/** Al from encoder options: 4 unless a given T is not a multiple of 4. */
function alignmentOf(options: EncoderOptions): number {
  const T = options.symbolSize;
  return options.alignment ?? (T === undefined || T % 4 === 0 ? 4 : 1);
}

/** Picks the OTI for an object of F bytes from encoder options. */
export function chooseOti(F: number, options: EncoderOptions, binding: RawCodecBinding): Oti {
  if (options.oti !== undefined) {
    return options.oti instanceof Uint8Array ? Oti.parse(options.oti, binding) : Oti.from(options.oti, binding);
  }
  const T = options.symbolSize;
  const alignment = alignmentOf(options);
  if (T !== undefined && options.sourceBlocks !== undefined) {
    return Oti.from({ F, T, Z: options.sourceBlocks, N: options.subBlocks ?? 1, Al: alignment }, binding);
  }
  const derived = Oti.derive(F, { ...options, alignment, payloadSize: T ?? options.payloadSize }, binding);
  if (T !== undefined && derived.T !== T) {
    // T is not a multiple of Al: let the core name the violated bound.
    return Oti.from({ F, T, Z: derived.Z, N: derived.N, Al: alignment }, binding);
  }
  if (options.subBlocks !== undefined) {
    return Oti.from({ ...derived.toJSON(), N: options.subBlocks }, binding);
  }
  return derived;
}

/**
 * The OTI bytes for the native Encoder to check (otiWireBytes), when the
 * options give every field (an OTI, or T with Z) so that no §4.3
 * derivation is needed; undefined otherwise (then chooseOti).
 */
function givenOtiBytes(F: number, options: EncoderOptions): Uint8Array | undefined {
  if (options.oti !== undefined) {
    return options.oti instanceof Uint8Array ? ownOtiBytes(options.oti) : otiWireBytes(options.oti);
  }
  const T = options.symbolSize;
  if (T === undefined || options.sourceBlocks === undefined) return undefined;
  return otiWireBytes({ F, T, Z: options.sourceBlocks, N: options.subBlocks ?? 1, Al: alignmentOf(options) });
}

export interface FileEncoderOptions extends EncoderOptions {
  /** F: encode only the file's first `length` bytes (default: its size when opened). */
  length?: number;
}

/** A file opened by fromFile: its descriptor and the F bytes to encode. */
class OpenFile {
  constructor(
    readonly fd: number,
    readonly length: number,
  ) {}
}

export class ObjectEncoder {
  private readonly raw: RawEncoder;
  // The 12 OTI bytes the native constructor accepted; the Oti is built
  // from them on first use (otiInfo). A constructor that does not need it
  // builds fewer objects of new shapes: after a full garbage collection
  // each shape is built again, its map allocated in old space, where the
  // first allocation makes the main thread help the sweeper (bench:codec
  // collects before every repetition; K = 1 000, paired: encode -35 to
  // -47 µs, decode -31 to -68 µs; docs/BENCHMARKS.md, "encoders and
  // decoders build their OTI on first use").
  private readonly otiBytes: Uint8Array;
  private readonly binding: RawCodecBinding;
  private acceptedOti: Oti | undefined;
  // Made by the first prepareBlockAsync, for the same reason.
  private preparing: Map<number, Promise<void>> | undefined;

  constructor(data: Uint8Array, options?: EncoderOptions, binding?: RawCodecBinding);
  constructor(data: Uint8Array | OpenFile, options: EncoderOptions = {}, binding: RawCodecBinding = loadNative()) {
    if (!(data instanceof OpenFile) && !(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    const F = data instanceof OpenFile ? data.length : data.byteLength;
    const source = data instanceof OpenFile ? data.fd : data;
    // With every field given, the native constructor is the OTI's one
    // check: one native call fewer (bench:codec, K = 1 000: ~0.01 ms).
    const given = givenOtiBytes(F, options);
    this.binding = binding;
    if (given !== undefined) {
      this.raw = callNative(() => new binding.Encoder(source, given));
      this.otiBytes = given;
    } else {
      this.acceptedOti = chooseOti(F, options, binding);
      const oti = this.acceptedOti.toBytes();
      this.raw = callNative(() => new binding.Encoder(source, oti));
      this.otiBytes = oti;
    }
  }

  /** The object's OTI (F, T, Z, N, Al). */
  get otiInfo(): Oti {
    return (this.acceptedOti ??= Oti.accepted(this.otiBytes, this.binding));
  }

  /**
   * An encoder of the file at `path` (its first `options.length` bytes, by
   * default all of it), with the OTI chosen as for a buffer of that many
   * bytes. The native encoder keeps its own duplicate of the descriptor
   * until close() (or collection); the file must not shrink meanwhile
   * (preparing a block past its new end fails with SourceTruncatedError).
   */
  static fromFile(path: string, options: FileEncoderOptions = {}, binding: RawCodecBinding = loadNative()): ObjectEncoder {
    const { length, ...encoderOptions } = options;
    const fd = fs.openSync(path, 'r');
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new InvalidArgumentError('not a regular file');
      const F = length ?? st.size;
      if (!Number.isSafeInteger(F) || F < 0 || F > st.size) {
        throw new InvalidArgumentError(`length must be an integer in [1, ${st.size}] (the file's size)`);
      }
      // As for an empty buffer: RFC 6330 has no object of 0 bytes (F >= 1, §3.3.2).
      if (F === 0) throw new OtiOutOfBoundsError('an empty file has no RFC 6330 encoding (F >= 1)');
      // The constructor's hidden branch: OpenFile is not exported, so only
      // this method reaches it.
      return new ObjectEncoder(new OpenFile(fd, F) as unknown as Uint8Array, encoderOptions, binding);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * The block layout (RFC 6330 §4.4.1.2), computed on first use: an
   * encoder or decoder that never asks (a one-block object whose packets
   * go straight in and out) saves the native call.
   */
  get layout(): ObjectLayout {
    return this.otiInfo.layout;
  }

  /** The 12-byte RFC 6330 OTI a decoder needs. */
  get oti(): Uint8Array {
    return this.otiInfo.toBytes();
  }
  /** F */
  get transferLength(): number {
    return this.otiInfo.F;
  }
  /** T */
  get symbolSize(): number {
    return this.otiInfo.T;
  }
  /** 4 + T */
  get packetSize(): number {
    return PAYLOAD_ID_SIZE + this.otiInfo.T;
  }
  /** Z */
  get sourceBlocks(): number {
    return this.otiInfo.Z;
  }

  /** K of block sbn. */
  sourceSymbols(sbn: number): number {
    return callNative(() => this.raw.sourceSymbols(sbn));
  }

  /** One packet: FEC Payload ID (SBN, ESI) then encoding symbol ESI of block sbn. */
  packet(sbn: number, esi: number): Uint8Array {
    return callNative(() => this.raw.packet(sbn, esi));
  }

  /** `count` packets with consecutive ESIs, back to back in one buffer of count*(4+T) bytes. */
  packets(sbn: number, firstEsi: number, count: number): Uint8Array {
    return callNative(() => this.raw.packets(sbn, firstEsi, count));
  }

  /** Like packets(), as an array of views into one buffer. */
  packetList(sbn: number, firstEsi: number, count: number): Uint8Array[] {
    const buf = this.packets(sbn, firstEsi, count);
    const size = this.packetSize;
    const out: Uint8Array[] = new Array(count);
    for (let i = 0; i < count; i++) out[i] = buf.subarray(i * size, (i + 1) * size);
    return out;
  }

  /** Writes `count` packets into `out` at `offset`; returns the bytes written. */
  packetsInto(out: Uint8Array, offset: number, sbn: number, firstEsi: number, count: number): number {
    return callNative(() => this.raw.packetsInto(sbn, firstEsi, count, out, offset));
  }

  /**
   * `count` stream packets back to back in `out` from `offset`: each is
   * `header` (with the 32-bit big-endian sequence number (firstSeq + i)
   * mod 2^32 written at header offset `seqAt`, unless seqAt is -1), the
   * FEC Payload ID (sbn, firstEsi + i) and the encoding symbol, written by
   * one native call with no per-packet copy. Returns the bytes written,
   * count * (header.length + 4 + T); throws InvalidArgumentError, writing
   * nothing, if `out` has less room than that from `offset`.
   */
  packetsWithHeader(
    out: Uint8Array,
    offset: number,
    header: Uint8Array,
    seqAt: number,
    firstSeq: number,
    sbn: number,
    firstEsi: number,
    count: number,
  ): number {
    return callNative(() => this.raw.packetsWithHeader(out, offset, header, seqAt, firstSeq, sbn, firstEsi, count));
  }

  /** Whether block sbn is prepared (holds its intermediate symbols). */
  isPrepared(sbn: number): boolean {
    return callNative(() => this.raw.isPrepared(sbn));
  }

  /**
   * Bytes block sbn holds while prepared, or will hold once prepared:
   * its intermediate symbols, plus its source symbols when the encoder
   * has its own copy (always from a file; from a buffer, for the zero
   * padded last block or with sub-blocks).
   */
  blockMemory(sbn: number): number {
    return callNative(() => this.raw.blockMemory(sbn));
  }

  /** Prepares block sbn now, on this thread. */
  prepareBlock(sbn: number): void {
    callNative(() => this.raw.prepareBlock(sbn));
  }

  /**
   * Prepares block sbn on a worker thread, so that packets of other blocks
   * can be produced meanwhile; concurrent calls for the same block share
   * one promise. A block over memory of at most 2 MiB and 2 048 symbols
   * whose K' plan is already cached is prepared on this thread before the
   * call returns (a replay of the plan, ~0.3 ms at K = 1 000, costs about
   * what the trip to the worker pool does); a file-backed encoder always
   * uses a worker.
   */
  prepareBlockAsync(sbn: number): Promise<void> {
    const preparing = (this.preparing ??= new Map());
    const pending = preparing.get(sbn);
    if (pending !== undefined) return pending;
    const p = awaitNative(() => this.raw.prepareBlocksAsync([sbn])).finally(() => {
      preparing.delete(sbn);
    });
    preparing.set(sbn, p);
    return p;
  }

  /** Prepares every block (each on the worker pool). */
  async prepareAllAsync(): Promise<void> {
    const all: Promise<void>[] = [];
    for (let sbn = 0; sbn < this.sourceBlocks; sbn++) all.push(this.prepareBlockAsync(sbn));
    await Promise.all(all);
  }

  /** Frees block sbn's intermediate symbols (it is prepared again if used). */
  releaseBlock(sbn: number): void {
    callNative(() => this.raw.releaseBlock(sbn));
  }

  /**
   * Frees everything now (a file-backed encoder's descriptor too, once a
   * prepare running on a worker is done); later calls throw
   * CodecClosedError.
   */
  close(): void {
    this.raw.close();
  }
}
