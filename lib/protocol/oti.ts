/**
 * RaptorQ Object Transmission Information on the wire (RFC 6330 §3.3).
 *
 * Common FEC OTI (§3.3.2), 8 bytes:      Scheme-Specific FEC OTI (§3.3.3), 4 bytes:
 *   [0..5)  F, transfer length, 40 bits    [0]     Z, source blocks, 8 bits
 *   [5]     reserved (0; ignored)          [1..3)  N, sub-blocks, 16 bits
 *   [6..8)  T, symbol size, 16 bits        [3]     Al, symbol alignment, 8 bits
 *
 * The 12-byte concatenation is what EXT_FTI (lct.ts) carries; the FDT carries
 * the pieces as attributes, the scheme-specific 4 bytes in base64 (fdt.ts).
 *
 * Z = 256: the SBN is 8 bits, so 256 blocks exist, and the largest legal F
 * (946270874880 = 56403 * 256 * 65535) needs them; the 8-bit Z field then
 * holds 0, which no valid object otherwise uses. Same rule as the codec
 * (native/fec/oti.cc), and the same bounds are checked here.
 */

export const MAX_TRANSFER_LENGTH = 946_270_874_880; // RFC 6330 §4.4.1.2
export const MAX_K_PRIME = 56_403; // RFC 6330 Table 2
export const MAX_SOURCE_BLOCKS = 256; // 8-bit SBN (§3.2)
export const COMMON_OTI_SIZE = 8;
export const SCHEME_SPECIFIC_OTI_SIZE = 4;
export const OTI_SIZE = COMMON_OTI_SIZE + SCHEME_SPECIFIC_OTI_SIZE;

export interface Oti {
  /** F: object size in bytes, 1..946270874880. */
  transferLength: number;
  /** T: symbol size in bytes, 1..65535, a multiple of Al. */
  symbolSize: number;
  /** Z: number of source blocks, 1..256. */
  sourceBlocks: number;
  /** N: number of sub-blocks, 1..65535. */
  subBlocks: number;
  /** Al: symbol alignment, 1..255. */
  alignment: number;
}

const TWO_POW_32 = 0x1_0000_0000;

function isIntIn(v: number, lo: number, hi: number): boolean {
  return Number.isInteger(v) && v >= lo && v <= hi;
}

/** Why this OTI is not one a RaptorQ encoder can produce, or undefined. */
/** Whether two OTIs describe the same object layout, field by field. */
export function sameOti(a: Oti, b: Oti): boolean {
  return (
    a.transferLength === b.transferLength &&
    a.symbolSize === b.symbolSize &&
    a.sourceBlocks === b.sourceBlocks &&
    a.subBlocks === b.subBlocks &&
    a.alignment === b.alignment
  );
}

export function otiProblem(oti: Oti): string | undefined {
  const { transferLength: F, symbolSize: T, sourceBlocks: Z, subBlocks: N, alignment: Al } = oti;
  if (!isIntIn(F, 1, MAX_TRANSFER_LENGTH)) return 'F must be 1..946270874880';
  if (!isIntIn(Al, 1, 255)) return 'Al must be 1..255';
  if (!isIntIn(T, 1, 0xffff)) return 'T must be 1..65535';
  if (T % Al !== 0) return 'T must be a multiple of Al';
  if (!isIntIn(Z, 1, MAX_SOURCE_BLOCKS)) return 'Z must be 1..256';
  if (!isIntIn(N, 1, 0xffff)) return 'N must be 1..65535';
  // §4.4.1.2: each sub-symbol holds floor(T/(Al*N)) * Al bytes; 0 is no symbol.
  if (N > T / Al) return 'N must be at most T/Al';
  const Kt = Math.ceil(F / T);
  if (Z > Kt) return 'Z must be at most ceil(F/T)';
  if (Math.ceil(Kt / Z) > MAX_K_PRIME) return 'blocks of more than 56403 symbols';
  return undefined;
}

/** Writes Z, N, Al (the 4 scheme-specific bytes) at `at`. */
function writeSchemeSpecific(oti: Oti, out: Uint8Array, at: number): void {
  out[at] = oti.sourceBlocks & 0xff; // 256 -> 0
  out[at + 1] = oti.subBlocks >> 8;
  out[at + 2] = oti.subBlocks & 0xff;
  out[at + 3] = oti.alignment;
}

export function encodeSchemeSpecificOti(oti: Oti): Uint8Array {
  const out = new Uint8Array(SCHEME_SPECIFIC_OTI_SIZE);
  writeSchemeSpecific(oti, out, 0);
  return out;
}

/**
 * Writes the 12-byte OTI at `at`. The caller has checked `otiProblem`, or
 * at least that every field is an integer within its wire width (F < 2^40,
 * T and N 16 bits, Z 1..256, Al 8 bits: fec/oti.ts otiWireBytes, whose bytes
 * the codec then checks).
 */
export function writeOti(oti: Oti, out: Uint8Array, at: number): void {
  const F = oti.transferLength;
  const hi = Math.floor(F / TWO_POW_32); // top 8 of the 40 bits
  const lo = F % TWO_POW_32;
  out[at] = hi;
  out[at + 1] = lo >>> 24;
  out[at + 2] = (lo >>> 16) & 0xff;
  out[at + 3] = (lo >>> 8) & 0xff;
  out[at + 4] = lo & 0xff;
  out[at + 5] = 0;
  out[at + 6] = oti.symbolSize >> 8;
  out[at + 7] = oti.symbolSize & 0xff;
  writeSchemeSpecific(oti, out, at + COMMON_OTI_SIZE);
}

export function encodeOti(oti: Oti): Uint8Array {
  const out = new Uint8Array(OTI_SIZE);
  writeOti(oti, out, 0);
  return out;
}

/** The fields of the 12-byte OTI at `at` as they are on the wire, not checked (bounds of `bytes` checked by the caller). */
export function readOtiFields(bytes: Uint8Array, at: number): Oti {
  const F =
    bytes[at] * TWO_POW_32 + ((bytes[at + 1] << 24) >>> 0) + (bytes[at + 2] << 16) + (bytes[at + 3] << 8) + bytes[at + 4];
  // bytes[at + 5] is reserved: ignored on receipt (§3.3.2).
  const T = (bytes[at + 6] << 8) | bytes[at + 7];
  // Fields copied into one literal, not spread: a spread builds its
  // object's shape at run time, and after a full garbage collection
  // (bench:codec's, before each repetition) that shape is gone and is built
  // again, in every encoder's and decoder's constructor.
  const ss = readSchemeSpecific(bytes, at + COMMON_OTI_SIZE);
  return { transferLength: F, symbolSize: T, sourceBlocks: ss.sourceBlocks, subBlocks: ss.subBlocks, alignment: ss.alignment };
}

/** Reads the 12-byte OTI at `at` (bounds checked by the caller) and
 * validates it; undefined if out of bounds. */
export function readOti(bytes: Uint8Array, at: number): Oti | undefined {
  const oti = readOtiFields(bytes, at);
  return otiProblem(oti) === undefined ? oti : undefined;
}

/** Z, N, Al from the 4 scheme-specific bytes at `at`. */
export function readSchemeSpecific(
  bytes: Uint8Array,
  at: number,
): Pick<Oti, 'sourceBlocks' | 'subBlocks' | 'alignment'> {
  const z = bytes[at];
  return {
    sourceBlocks: z === 0 ? MAX_SOURCE_BLOCKS : z,
    subBlocks: (bytes[at + 1] << 8) | bytes[at + 2],
    alignment: bytes[at + 3],
  };
}

export function decodeOti(bytes: Uint8Array): Oti | undefined {
  if (bytes.length !== OTI_SIZE) return undefined;
  return readOti(bytes, 0);
}
