/**
 * The LCT header (RFC 5651 §5.1) and its header extensions (§5.2).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------+---+---+-+---+-+---+-+-+---------------+---------------+
 *   |   V   | C |PSI|S| O |H|Res|A|B|   HDR_LEN     | Codepoint (CP)|
 *   +-------+---+---+-+---+-+---+-+-+---------------+---------------+
 *   | CCI, 32*(C+1) bits                                            |
 *   | TSI, 32*S + 16*H bits                                         |
 *   | TOI, 32*O + 16*H bits                                         |
 *   | header extensions, up to HDR_LEN 32-bit words in all          |
 *
 * Every legal flag combination parses: TSI of 0/16/32/48 bits and TOI of
 * 0..112 bits. TSI is a Number (at most 48 bits); TOI is a BigInt.
 *
 * Extensions: HET 0..127 are variable length (HET u8 | HEL u8, HEL counting
 * 32-bit words including HET and HEL); HET 128..255 are one word (HET u8 |
 * 24 bits of content). Receivers skip extensions they do not know (§5.2).
 */
import { ByteReader, ReaderReasons, catchReject } from './bytes';
import { ProtocolEncodeError } from './errors';
import { Oti, otiProblem, readOti, writeOti } from './oti';

export const LCT_VERSION = 1;

export const HET_EXT_NOP = 0; // RFC 5651
export const HET_EXT_AUTH = 1; // RFC 5651
export const HET_EXT_TIME = 2; // RFC 5651
export const HET_EXT_FTI = 64; // RFC 5775 §4.2
/**
 * rqcast packet sequence number, variable-length format:
 *   HET=120 | HEL=2 | reserved u16 (0, ignored) | sequence u32
 * 120 is unassigned in the IANA LCT Header Extension Types registry
 * (64..127: variable length); other receivers skip it per RFC 5651 §5.2.
 */
export const HET_EXT_RQSEQ = 120;
export const HET_EXT_FDT = 192; // RFC 6726 §3.4.1
export const HET_EXT_CENC = 193; // RFC 6726 §3.4.3

/** EXT_FTI for FEC Encoding ID 6: HET | HEL=4 | 12-byte OTI | 2 zero bytes. */
export const EXT_FTI_RAPTORQ_SIZE = 16;
export const EXT_RQSEQ_SIZE = 8;
/** FLUTE version in EXT_FDT for RFC 6726. */
export const FLUTE_VERSION = 2;

export interface LctHeaderExtension {
  /** Header Extension Type. */
  het: number;
  /** For HET < 128: the bytes after HET and HEL (HEL*4 - 2 bytes).
   * For HET >= 128: the 3 bytes after HET. A view into the packet on decode. */
  content: Uint8Array;
}

export type TsiLength = 0 | 2 | 4 | 6;
export type ToiLength = 0 | 2 | 4 | 6 | 8 | 10 | 12 | 14;

/** What an encoder needs; defaults: CCI 32 bits, TSI and TOI 32 bits (alc.ts's idLengths picks rqcast's per packet: 16 bits each where both fit). */
export interface LctHeaderFields {
  codepoint: number;
  /** Protocol-Specific Indication, 0..3; rqcast sends 0. */
  psi?: number;
  closeSession?: boolean;
  closeObject?: boolean;
  /** 4, 8, 12 or 16 bytes; default 4 zero bytes (no congestion control data). */
  cci?: Uint8Array;
  tsi: number;
  /** Bytes of TSI on the wire; default 4. */
  tsiLength?: TsiLength;
  toi: bigint;
  /** Bytes of TOI on the wire; default 4. Must agree with tsiLength on H. */
  toiLength?: ToiLength;
  extensions?: LctHeaderExtension[];
}

export interface LctHeader extends Required<LctHeaderFields> {
  version: number;
  /** Total header length in bytes (HDR_LEN * 4). */
  headerLength: number;
}

export type LctRejectReason =
  /** Shorter than the fixed part the flags announce. */
  | 'lct-truncated'
  /** V is not 1. */
  | 'lct-bad-version'
  /** HDR_LEN smaller than the fixed fields or longer than the packet. */
  | 'lct-bad-header-length'
  /** HEL = 0, or an extension running past HDR_LEN. */
  | 'lct-bad-extension'
  | 'decoder-bug';

const LCT_READER_REASONS: ReaderReasons<LctRejectReason> = {
  truncated: 'lct-truncated',
  unsafeInteger: 'lct-truncated', // not used: no u64 in the LCT header
};

export function lctHeaderLength(h: LctHeaderFields): number {
  const cci = h.cci?.length ?? 4;
  let ext = 0;
  for (const e of h.extensions ?? []) ext += e.het < 128 ? 2 + e.content.length : 4;
  return 4 + cci + (h.tsiLength ?? 4) + (h.toiLength ?? 4) + ext;
}

function checkFields(h: LctHeaderFields): void {
  const tsiLength = h.tsiLength ?? 4;
  const toiLength = h.toiLength ?? 4;
  const cci = h.cci ?? new Uint8Array(4);
  if (![0, 2, 4, 6].includes(tsiLength)) throw new ProtocolEncodeError('tsiLength must be 0, 2, 4 or 6');
  if (!(Number.isInteger(toiLength) && toiLength >= 0 && toiLength <= 14 && toiLength % 2 === 0)) {
    throw new ProtocolEncodeError('toiLength must be an even number 0..14');
  }
  // One H bit adds a half-word to both TSI and TOI (RFC 5651 §5.1).
  if (tsiLength % 4 !== toiLength % 4) throw new ProtocolEncodeError('tsiLength and toiLength disagree on the H flag');
  if (![4, 8, 12, 16].includes(cci.length)) throw new ProtocolEncodeError('cci must be 4, 8, 12 or 16 bytes');
  if (!Number.isInteger(h.codepoint) || h.codepoint < 0 || h.codepoint > 255) {
    throw new ProtocolEncodeError('codepoint must be 0..255');
  }
  const psi = h.psi ?? 0;
  if (!Number.isInteger(psi) || psi < 0 || psi > 3) throw new ProtocolEncodeError('psi must be 0..3');
  if (!Number.isSafeInteger(h.tsi) || h.tsi < 0 || h.tsi >= 2 ** (8 * tsiLength)) {
    throw new ProtocolEncodeError(`tsi does not fit ${tsiLength} bytes`);
  }
  if (typeof h.toi !== 'bigint' || h.toi < 0n || h.toi >= 1n << BigInt(8 * toiLength)) {
    throw new ProtocolEncodeError(`toi does not fit ${toiLength} bytes`);
  }
  for (const e of h.extensions ?? []) {
    if (!Number.isInteger(e.het) || e.het < 0 || e.het > 255) throw new ProtocolEncodeError('HET must be 0..255');
    if (e.het < 128) {
      const words = (2 + e.content.length) / 4;
      if (!Number.isInteger(words) || words > 255) {
        throw new ProtocolEncodeError('variable-length extension content must be 4k+2 bytes, at most 1018');
      }
    } else if (e.content.length !== 3) {
      throw new ProtocolEncodeError('fixed-length extension content must be 3 bytes');
    }
  }
  if (lctHeaderLength(h) > 255 * 4) throw new ProtocolEncodeError('LCT header longer than 1020 bytes');
}

/** Writes the header at `out[at..]`; returns its length. Throws ProtocolEncodeError. */
export function writeLctHeader(h: LctHeaderFields, out: Uint8Array, at: number): number {
  checkFields(h);
  const tsiLength = h.tsiLength ?? 4;
  const toiLength = h.toiLength ?? 4;
  const cci = h.cci ?? new Uint8Array(4);
  const len = lctHeaderLength(h);
  if (at + len > out.length) throw new ProtocolEncodeError('output buffer too small for the LCT header');
  const S = tsiLength >= 4 ? 1 : 0;
  const H = tsiLength % 4 === 2 ? 1 : 0;
  const O = (toiLength - 2 * H) / 4;
  const C = cci.length / 4 - 1;
  out[at] = (LCT_VERSION << 4) | (C << 2) | (h.psi ?? 0);
  out[at + 1] = (S << 7) | (O << 5) | (H << 4) | ((h.closeSession ? 1 : 0) << 1) | (h.closeObject ? 1 : 0);
  out[at + 2] = len / 4;
  out[at + 3] = h.codepoint;
  let o = at + 4;
  out.set(cci, o);
  o += cci.length;
  let tsi = h.tsi;
  for (let i = tsiLength - 1; i >= 0; i--) {
    out[o + i] = tsi % 256;
    tsi = Math.floor(tsi / 256);
  }
  o += tsiLength;
  let toi = h.toi;
  for (let i = toiLength - 1; i >= 0; i--) {
    out[o + i] = Number(toi & 0xffn);
    toi >>= 8n;
  }
  o += toiLength;
  for (const e of h.extensions ?? []) {
    out[o] = e.het;
    if (e.het < 128) {
      out[o + 1] = (2 + e.content.length) / 4;
      out.set(e.content, o + 2);
      o += 2 + e.content.length;
    } else {
      out.set(e.content, o + 1);
      o += 4;
    }
  }
  return len;
}

export function encodeLctHeader(h: LctHeaderFields): Uint8Array {
  checkFields(h);
  const out = new Uint8Array(lctHeaderLength(h));
  writeLctHeader(h, out, 0);
  return out;
}

function readLct(bytes: Uint8Array): LctHeader {
  const r = new ByteReader(bytes, LCT_READER_REASONS);
  const b0 = r.u8();
  const b1 = r.u8();
  const hdrLen = r.u8() * 4;
  const codepoint = r.u8();
  const version = b0 >> 4;
  if (version !== LCT_VERSION) r.fail('lct-bad-version');
  const C = (b0 >> 2) & 3;
  const psi = b0 & 3;
  const S = b1 >> 7;
  const O = (b1 >> 5) & 3;
  const H = (b1 >> 4) & 1;
  // b1 bits 2..3 are Res: ignored on receipt.
  const closeSession = (b1 & 2) !== 0;
  const closeObject = (b1 & 1) !== 0;
  const tsiLength = (4 * S + 2 * H) as TsiLength;
  const toiLength = (4 * O + 2 * H) as ToiLength;
  const fixed = 4 + 4 * (C + 1) + tsiLength + toiLength;
  if (hdrLen < fixed || hdrLen > bytes.length) r.fail('lct-bad-header-length');
  const cci = r.take(4 * (C + 1));
  let tsi = 0;
  for (let i = 0; i < tsiLength; i++) tsi = tsi * 256 + r.u8();
  let toi: bigint;
  if (toiLength <= 6) {
    let t = 0;
    for (let i = 0; i < toiLength; i++) t = t * 256 + r.u8();
    toi = BigInt(t);
  } else {
    toi = 0n;
    for (let i = 0; i < toiLength; i++) toi = (toi << 8n) | BigInt(r.u8());
  }
  const extensions: LctHeaderExtension[] = [];
  const ext = new ByteReader(bytes, LCT_READER_REASONS, r.offset, hdrLen);
  while (ext.remaining > 0) {
    // A well-formed extension area is whole words, so at least one word is left.
    if (ext.remaining < 4) ext.fail('lct-bad-extension');
    const het = ext.u8();
    if (het < 128) {
      const hel = ext.u8();
      if (hel === 0 || hel * 4 - 2 > ext.remaining) ext.fail('lct-bad-extension');
      extensions.push({ het, content: ext.take(hel * 4 - 2) });
    } else {
      extensions.push({ het, content: ext.take(3) });
    }
  }
  return {
    version,
    psi,
    closeSession,
    closeObject,
    codepoint,
    cci,
    tsi,
    tsiLength,
    toi,
    toiLength,
    extensions,
    headerLength: hdrLen,
  };
}

export type LctDecodeResult = { ok: true; header: LctHeader } | { ok: false; reason: LctRejectReason };

/** Parses the LCT header at the start of `bytes`. Never throws; views, no copies. */
export function decodeLctHeader(bytes: Uint8Array): LctDecodeResult {
  const res = catchReject(() => readLct(bytes), 'decoder-bug' as LctRejectReason);
  return res.ok ? { ok: true, header: res.value } : res;
}

// ------------------------------------------------------------- extensions --

/** EXT_FTI carrying the RaptorQ OTI (RFC 5775 §4.2 with RFC 6330 §3.3). */
export function ftiExtension(oti: Oti): LctHeaderExtension {
  const problem = otiProblem(oti);
  if (problem !== undefined) throw new ProtocolEncodeError(`OTI: ${problem}`);
  const content = new Uint8Array(EXT_FTI_RAPTORQ_SIZE - 2);
  writeOti(oti, content, 0); // then 2 bytes of zero padding to the word
  return { het: HET_EXT_FTI, content };
}

/** The OTI in an EXT_FTI, or undefined if it is not a valid RaptorQ OTI. */
export function parseFtiExtension(e: LctHeaderExtension): Oti | undefined {
  if (e.het !== HET_EXT_FTI || e.content.length !== EXT_FTI_RAPTORQ_SIZE - 2) return undefined;
  return readOti(e.content, 0);
}

export function seqExtension(sequence: number): LctHeaderExtension {
  if (!Number.isInteger(sequence) || sequence < 0 || sequence > 0xffff_ffff) {
    throw new ProtocolEncodeError('sequence must be a 32-bit unsigned integer');
  }
  const content = new Uint8Array(EXT_RQSEQ_SIZE - 2);
  new DataView(content.buffer).setUint32(2, sequence);
  return { het: HET_EXT_RQSEQ, content };
}

export function parseSeqExtension(e: LctHeaderExtension): number | undefined {
  if (e.het !== HET_EXT_RQSEQ || e.content.length !== EXT_RQSEQ_SIZE - 2) return undefined;
  const c = e.content;
  return ((c[2] << 24) >>> 0) + (c[3] << 16) + (c[4] << 8) + c[5];
}

export interface FdtExtensionValue {
  /** FLUTE version, 2 for RFC 6726. */
  version: number;
  /** FDT Instance ID, 20 bits. */
  instanceId: number;
}

/** EXT_FDT (RFC 6726 §3.4.1): HET=192 | V (4 bits) | FDT Instance ID (20 bits). */
export function fdtExtension(instanceId: number, version = FLUTE_VERSION): LctHeaderExtension {
  if (!Number.isInteger(instanceId) || instanceId < 0 || instanceId > 0xf_ffff) {
    throw new ProtocolEncodeError('FDT Instance ID must be 0..2^20-1');
  }
  if (!Number.isInteger(version) || version < 0 || version > 15) throw new ProtocolEncodeError('FLUTE version must be 0..15');
  return {
    het: HET_EXT_FDT,
    content: Uint8Array.of((version << 4) | (instanceId >> 16), (instanceId >> 8) & 0xff, instanceId & 0xff),
  };
}

export function parseFdtExtension(e: LctHeaderExtension): FdtExtensionValue | undefined {
  if (e.het !== HET_EXT_FDT || e.content.length !== 3) return undefined;
  const c = e.content;
  return { version: c[0] >> 4, instanceId: ((c[0] & 0xf) << 16) | (c[1] << 8) | c[2] };
}
