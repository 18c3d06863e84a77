/**
 * Object Transmission Information (RFC 6330 §3.3.2-3): F (transfer length,
 * 40 bits), T (symbol size, 16 bits), Z (source blocks, 8 bits, 0 = 256),
 * N (sub-blocks, 16 bits), Al (alignment, 8 bits), 12 bytes on the wire.
 *
 * Every bound is checked once, in the native core (oti_validate); this
 * class only carries the fields, so a JS OTI and a C++ OTI can never
 * disagree about what is valid.
 */
import { callNative } from './errors';
import { loadNative, RawCodecBinding } from '../native';
import { encodeOti, MAX_SOURCE_BLOCKS, readOtiFields } from '../protocol/oti';

export interface OtiFields {
  /** Transfer length in bytes, 1 ..= 946270874880. */
  readonly F: number;
  /** Symbol size in bytes, a multiple of Al, <= 65535. */
  readonly T: number;
  /** Number of source blocks, 1 ..= 256. */
  readonly Z: number;
  /** Number of sub-blocks per source block, 1 ..= T/Al. */
  readonly N: number;
  /** Symbol alignment in bytes, 1 ..= 255. */
  readonly Al: number;
}

/** Inputs of the RFC 6330 §4.3 derivation. */
export interface DeriveOptions {
  /** P': the payload (symbol) size budget in bytes; T = P' rounded down to a multiple of Al. Default 1280. */
  payloadSize?: number;
  /** Al, default 4 (RFC 6330 §4.3 recommends 4 or 8 on modern CPUs). */
  alignment?: number;
  /**
   * SS: lower bound on the sub-symbol size, in units of Al (RFC 6330 §4.3).
   * Default T/Al, i.e. no sub-blocking: a block is decoded in one piece.
   */
  subSymbolSize?: number;
  /** WS: the largest sub-block, in bytes, a receiver decodes in working memory. Default 16 MiB. */
  maxSubBlockSize?: number;
}

export const DEFAULT_PAYLOAD_SIZE = 1280;
export const DEFAULT_ALIGNMENT = 4;
export const DEFAULT_MAX_SUB_BLOCK_SIZE = 16 * 1024 * 1024;
export const OTI_SIZE = 12;
/** F is bytes 0-4, then the reserved byte, T, Z, N, Al (RFC 6330 §3.3.2-3). */
const OTI_RESERVED_BYTE = 5;


/** A copy of received OTI bytes with the reserved byte (ignored on receipt, written as zero: RFC 6330 §3.3.2) cleared. */
export function ownOtiBytes(bytes: Uint8Array): Uint8Array {
  const own = new Uint8Array(bytes); // a copy (a Buffer's slice() would be a view)
  if (own.length > OTI_RESERVED_BYTE) own[OTI_RESERVED_BYTE] = 0;
  return own;
}

/**
 * The 12 wire bytes of `fields`, written here, when every field is an
 * integer that fits its field (F: 1 ..< 2^40, T and N: 16 bits, Z: 1..256,
 * Al: 8 bits); undefined otherwise. No other bound is checked: the bytes
 * are for a native Encoder or Decoder, whose constructor checks every
 * bound (oti_decode) and throws the typed error Oti.from would, and then
 * Oti.accepted. That saves Oti.from's native call, 20-odd µs right after
 * a full garbage collection (bench:codec collects before each repetition).
 */
export function otiWireBytes(fields: OtiFields): Uint8Array | undefined {
  const { F, T, Z, N, Al } = fields;
  const fits = (x: number, lo: number, hi: number): boolean => Number.isInteger(x) && x >= lo && x <= hi;
  if (!fits(F, 1, 2 ** 40 - 1) || !fits(T, 0, 0xffff) || !fits(Z, 1, MAX_SOURCE_BLOCKS)) return undefined;
  if (!fits(N, 0, 0xffff) || !fits(Al, 0, 0xff)) return undefined;
  return encodeOti({ transferLength: F, symbolSize: T, sourceBlocks: Z, subBlocks: N, alignment: Al });
}

/** The layout of an object's blocks (RFC 6330 §4.4.1.2). */
export class ObjectLayout {
  /** Kt = ceil(F/T), source symbols of the whole object. */
  readonly totalSymbols: number;
  /** KL, KS: source symbols of the larger / smaller blocks; ZL, ZS: how many of each. */
  readonly KL: number;
  readonly KS: number;
  readonly ZL: number;
  readonly ZS: number;
  /** Sub-symbol sizes TL, TS (in units of Al) and sub-block counts NL, NS. */
  readonly TL: number;
  readonly TS: number;
  readonly NL: number;
  readonly NS: number;

  /** `raw` is the native otiLayout: [F, T, Z, N, Al, Kt, KL, KS, ZL, ZS, TL, TS, NL, NS]. */
  constructor(
    readonly oti: Oti,
    raw: Float64Array,
  ) {
    this.totalSymbols = raw[5];
    this.KL = raw[6];
    this.KS = raw[7];
    this.ZL = raw[8];
    this.ZS = raw[9];
    this.TL = raw[10];
    this.TS = raw[11];
    this.NL = raw[12];
    this.NS = raw[13];
  }

  /** K of block sbn: the first ZL blocks hold KL symbols, the rest KS. */
  sourceSymbols(sbn: number): number {
    this.checkSbn(sbn);
    return sbn < this.ZL ? this.KL : this.KS;
  }

  /** Byte offset of block sbn in the object. */
  blockOffset(sbn: number): number {
    this.checkSbn(sbn);
    const symbols = sbn < this.ZL ? sbn * this.KL : this.ZL * this.KL + (sbn - this.ZL) * this.KS;
    return symbols * this.oti.T;
  }

  /** Bytes of the object in block sbn (the last block may be short of K*T). */
  blockLength(sbn: number): number {
    const start = this.blockOffset(sbn);
    return Math.min(this.sourceSymbols(sbn) * this.oti.T, this.oti.F - start);
  }

  private checkSbn(sbn: number): void {
    if (!Number.isInteger(sbn) || sbn < 0 || sbn >= this.oti.Z) {
      throw new RangeError(`sbn ${sbn} is not in [0, ${this.oti.Z})`);
    }
  }
}

export class Oti implements OtiFields {
  readonly F: number;
  readonly T: number;
  readonly Z: number;
  readonly N: number;
  readonly Al: number;
  private readonly bytes: Uint8Array;
  private cachedLayout?: ObjectLayout;

  // The fields one by one, not as an object: no object of a fresh shape
  // per OTI (see readOtiFields).
  private constructor(
    F: number,
    T: number,
    Z: number,
    N: number,
    Al: number,
    bytes: Uint8Array,
    private readonly binding: RawCodecBinding,
  ) {
    this.F = F;
    this.T = T;
    this.Z = Z;
    this.N = N;
    this.Al = Al;
    this.bytes = bytes;
  }

  /** Builds an OTI from its fields; throws a typed error for any bound. */
  static from(fields: OtiFields, binding: RawCodecBinding = loadNative()): Oti {
    const bytes = callNative(() => binding.otiEncode(fields.F, fields.T, fields.Z, fields.N, fields.Al));
    return new Oti(fields.F, fields.T, fields.Z, fields.N, fields.Al, bytes, binding);
  }

  /** Parses the 12-byte encoding; throws a typed error for any bound. */
  static parse(bytes: Uint8Array, binding: RawCodecBinding = loadNative()): Oti {
    const raw = callNative(() => binding.otiDecode(bytes));
    // The core checked every field; what it would encode from them is the
    // input with the reserved byte cleared, so no second native call.
    return new Oti(raw[0], raw[1], raw[2], raw[3], raw[4], ownOtiBytes(bytes), binding);
  }

  /**
   * The OTI of 12 bytes the core has accepted already: a native Encoder or
   * Decoder was just constructed from them (its constructor checks every
   * bound with oti_decode, as otiDecode does), so the fields are read here
   * without a native call. `bytes` (from ownOtiBytes or otiWireBytes)
   * becomes the OTI's own.
   */
  static accepted(bytes: Uint8Array, binding: RawCodecBinding = loadNative()): Oti {
    const w = readOtiFields(bytes, 0);
    return new Oti(w.transferLength, w.symbolSize, w.sourceBlocks, w.subBlocks, w.alignment, bytes, binding);
  }

  /** RFC 6330 §4.3: T, Z, N for an object of F bytes. */
  static derive(F: number, options: DeriveOptions = {}, binding: RawCodecBinding = loadNative()): Oti {
    const Al = options.alignment ?? DEFAULT_ALIGNMENT;
    const P = options.payloadSize ?? DEFAULT_PAYLOAD_SIZE;
    // Without an explicit SS, one sub-symbol spans the whole symbol (N = 1).
    const SS = options.subSymbolSize ?? Math.max(1, Math.floor(P / Al));
    const WS = options.maxSubBlockSize ?? DEFAULT_MAX_SUB_BLOCK_SIZE;
    const fields = callNative(() => binding.otiDerive(F, P, Al, SS, WS));
    return Oti.from(fields, binding);
  }

  /** The 12-byte RFC 6330 encoding (a fresh copy). */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }

  get layout(): ObjectLayout {
    if (this.cachedLayout === undefined) {
      const bytes = this.bytes;
      this.cachedLayout = new ObjectLayout(this, callNative(() => this.binding.otiLayout(bytes)));
    }
    return this.cachedLayout;
  }

  equals(other: OtiFields): boolean {
    return this.F === other.F && this.T === other.T && this.Z === other.Z && this.N === other.N && this.Al === other.Al;
  }

  toJSON(): OtiFields {
    return { F: this.F, T: this.T, Z: this.Z, N: this.N, Al: this.Al };
  }
}
