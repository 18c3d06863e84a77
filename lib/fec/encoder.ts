/**
 * ObjectEncoder: turns one object into RFC 6330 encoding packets
 * (4-byte FEC Payload ID + T bytes), any ESI of any block, on demand.
 *
 * The object's bytes are not copied: the native encoder keeps a reference
 * to `data`, which must not be modified while the encoder lives (a
 * detached/transferred buffer is detected and refused).
 *
 * A block is "prepared" (its intermediate symbols solved, RFC 6330
 * §5.3.3.4) on first use; prepareBlockAsync does that off the JS thread,
 * so a server can prepare the next block while sending the current one.
 */
import { awaitNative, callNative } from '../errors';
import { loadNative, RawCodecBinding, RawEncoder } from '../native';
import { DeriveOptions, ObjectLayout, Oti, OtiFields } from './oti';

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

/** Picks the OTI for an object of F bytes from encoder options. */
export function chooseOti(F: number, options: EncoderOptions, binding: RawCodecBinding): Oti {
  if (options.oti !== undefined) {
    return options.oti instanceof Uint8Array ? Oti.parse(options.oti, binding) : Oti.from(options.oti, binding);
  }
  const T = options.symbolSize;
  const alignment = options.alignment ?? (T === undefined || T % 4 === 0 ? 4 : 1);
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

export class ObjectEncoder {
  readonly otiInfo: Oti;
  readonly layout: ObjectLayout;
  private readonly raw: RawEncoder;
  private readonly preparing = new Map<number, Promise<void>>();

  constructor(data: Uint8Array, options: EncoderOptions = {}, binding: RawCodecBinding = loadNative()) {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    this.otiInfo = chooseOti(data.byteLength, options, binding);
    const oti = this.otiInfo.toBytes();
    this.raw = callNative(() => new binding.Encoder(data, oti));
    this.layout = this.otiInfo.layout;
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

  /** Prepares block sbn now, on this thread. */
  prepareBlock(sbn: number): void {
    callNative(() => this.raw.prepareBlock(sbn));
  }

  /**
   * Prepares block sbn on a worker thread. Concurrent calls for the same
   * block share one promise; packets of other blocks can be produced
   * meanwhile.
   */
  prepareBlockAsync(sbn: number): Promise<void> {
    const pending = this.preparing.get(sbn);
    if (pending !== undefined) return pending;
    const p = awaitNative(() => this.raw.prepareBlocksAsync([sbn])).finally(() => {
      this.preparing.delete(sbn);
    });
    this.preparing.set(sbn, p);
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

  /** Frees everything now; later calls throw CodecClosedError. */
  close(): void {
    this.raw.close();
  }
}
