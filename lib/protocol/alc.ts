/**
 * rqcast data packets: ALC (RFC 5775) over LCT (RFC 5651) with the RaptorQ
 * FEC Payload ID (RFC 6330 §3.2).
 *
 *   LCT header (lct.ts), Codepoint = FEC Encoding ID 6
 *   +---------------+-----------------------------------------------+
 *   |      SBN      |              Encoding Symbol ID               |  FEC Payload ID
 *   +---------------+-----------------------------------------------+
 *   | encoding symbol(s): G >= 1 symbols of T bytes, ESIs ESI..ESI+G-1 |
 *
 * FLUTE (RFC 6726) carries the FEC Encoding ID in the LCT Codepoint, so
 * rqcast sends Codepoint 6 and refuses packets with any other codepoint: it
 * could not interpret their FEC Payload ID.
 *
 * rqcast's layout: C = 0 (32-bit CCI, zero), PSI = 0, TSI (the channel)
 * and TOI (the object; 0 = FDT) of 16 bits each (H = 1, S = O = 0) when both
 * fit, else of 32 bits each (S = O = 1, H = 0): see idLengths. Then
 * extensions:
 *   EXT_FDT     on every TOI 0 packet (required by FLUTE);
 *   EXT_FTI     on every TOI 0 packet (objects' OTIs travel in the FDT; the
 *               codec accepts EXT_FTI on any packet);
 *   EXT_RQSEQ   on every stream packet (per-channel 32-bit sequence number
 *               that ACK ranges refer to); a fresh-symbol replacement sent
 *               in answer to an ACK carries none.
 * The decoder accepts any legal LCT layout and skips unknown extensions.
 */
import { catchReject } from './bytes';
import { RejectCounters } from './counters';
import { ProtocolEncodeError } from './errors';
import {
  FdtExtensionValue,
  HET_EXT_FDT,
  HET_EXT_FTI,
  HET_EXT_RQSEQ,
  LctHeader,
  LctHeaderExtension,
  LctHeaderFields,
  LctRejectReason,
  ToiLength,
  TsiLength,
  decodeLctHeader,
  fdtExtension,
  ftiExtension,
  lctHeaderLength,
  parseFdtExtension,
  parseFtiExtension,
  parseSeqExtension,
  seqExtension,
  writeLctHeader,
} from './lct';
import { Oti } from './oti';

export const FEC_ENCODING_ID_RAPTORQ = 6;
export const FEC_PAYLOAD_ID_SIZE = 4;
export const MAX_ESI = 0xff_ffff;
export const FDT_TOI = 0n;

export type AlcRejectReason =
  | LctRejectReason
  /** Codepoint is not FEC Encoding ID 6. */
  | 'unsupported-fec-encoding'
  /** Fewer than 4 bytes after the LCT header. */
  | 'missing-payload-id'
  /** No symbol bytes after the FEC Payload ID. */
  | 'empty-payload'
  /** EXT_FTI present but not a valid RaptorQ OTI. */
  | 'bad-ext-fti'
  /** EXT_RQSEQ of the wrong size. */
  | 'bad-ext-rqseq'
  /** A TOI 0 (FDT) packet without EXT_FDT (RFC 6726 §3.4.1). */
  | 'missing-ext-fdt'
  /** Two EXT_FTI, EXT_FDT or EXT_RQSEQ in one header. */
  | 'duplicate-extension'
  /** EXT_FTI present and the payload is not a whole number of T-byte symbols. */
  | 'bad-payload-length';

export type AlcCounters = RejectCounters<AlcRejectReason>;

export interface AlcPacketFields {
  tsi: number;
  toi: bigint | number;
  sbn: number;
  esi: number;
  /** One or more encoding symbols, concatenated. */
  symbols: Uint8Array;
  /** Adds EXT_FTI. */
  oti?: Oti;
  /** Adds EXT_RQSEQ. */
  sequence?: number;
  /** Adds EXT_FDT (required when toi is 0). */
  fdtInstanceId?: number;
  closeSession?: boolean;
  closeObject?: boolean;
  /** Bytes of TSI and TOI on the wire; neither given: idLengths(tsi, toi). */
  tsiLength?: TsiLength;
  toiLength?: ToiLength;
  cci?: Uint8Array;
  /** Other extensions, written after rqcast's. */
  extensions?: LctHeaderExtension[];
}

export interface AlcPacket {
  header: LctHeader;
  tsi: number;
  toi: bigint;
  /** Source Block Number, 8 bits. */
  sbn: number;
  /** Encoding Symbol ID of the first symbol, 24 bits. */
  esi: number;
  oti?: Oti;
  sequence?: number;
  fdt?: FdtExtensionValue;
  /** Offset and length of the symbol bytes in the decoded buffer. */
  payloadOffset: number;
  payloadLength: number;
  /** View of the symbol bytes (no copy). */
  payload: Uint8Array;
}

export type AlcDecodeResult = { ok: true; packet: AlcPacket } | { ok: false; reason: AlcRejectReason };

/** Largest TSI or TOI of rqcast's 16-bit layout (H = 1). */
export const MAX_SHORT_ID = 0xffff;

/**
 * The TSI and TOI lengths rqcast sends for a packet of channel `tsi`,
 * object `toi`: 2 and 2 bytes (S = 0, O = 0, H = 1) when both fit in 16
 * bits, else 4 and 4 (S = 1, O = 1, H = 0). RFC 5651 §5.1 allows either;
 * the short form saves 4 bytes on every packet. One H bit widens both
 * fields (§5.1), so a TSI or TOI of 2^16 or more takes the long form for
 * both, e.g. a live stream's TOIs once they pass 65535.
 */
export function idLengths(tsi: number, toi: bigint | number): { tsiLength: TsiLength; toiLength: ToiLength } {
  const short = tsi >= 0 && tsi <= MAX_SHORT_ID && toi >= 0 && toi <= MAX_SHORT_ID;
  return short ? { tsiLength: 2, toiLength: 2 } : { tsiLength: 4, toiLength: 4 };
}

function headerFields(p: AlcPacketFields): LctHeaderFields {
  if (!Number.isInteger(p.sbn) || p.sbn < 0 || p.sbn > 0xff) throw new ProtocolEncodeError('sbn must be 0..255');
  if (!Number.isInteger(p.esi) || p.esi < 0 || p.esi > MAX_ESI) throw new ProtocolEncodeError('esi must be 0..2^24-1');
  if (!(p.symbols instanceof Uint8Array) || p.symbols.length === 0) {
    throw new ProtocolEncodeError('a data packet carries at least one symbol byte');
  }
  if (typeof p.toi === 'number' && !Number.isSafeInteger(p.toi)) throw new ProtocolEncodeError('toi must be an integer');
  const toi = BigInt(p.toi);
  if (toi === FDT_TOI && p.fdtInstanceId === undefined) {
    throw new ProtocolEncodeError('a TOI 0 (FDT) packet needs fdtInstanceId (EXT_FDT)');
  }
  if (p.oti !== undefined && p.symbols.length % p.oti.symbolSize !== 0) {
    throw new ProtocolEncodeError('symbols must be a whole number of T-byte symbols');
  }
  const extensions: LctHeaderExtension[] = [];
  if (p.fdtInstanceId !== undefined) extensions.push(fdtExtension(p.fdtInstanceId));
  if (p.oti !== undefined) extensions.push(ftiExtension(p.oti));
  if (p.sequence !== undefined) extensions.push(seqExtension(p.sequence));
  extensions.push(...(p.extensions ?? []));
  // Both lengths given: as given; neither: rqcast's choice; one: the other 4 (32 bits).
  const ids = p.tsiLength === undefined && p.toiLength === undefined ? idLengths(p.tsi, toi) : { tsiLength: p.tsiLength ?? 4, toiLength: p.toiLength ?? 4 };
  return {
    codepoint: FEC_ENCODING_ID_RAPTORQ,
    psi: 0,
    closeSession: p.closeSession ?? false,
    closeObject: p.closeObject ?? false,
    cci: p.cci ?? new Uint8Array(4),
    tsi: p.tsi,
    tsiLength: ids.tsiLength,
    toi,
    toiLength: ids.toiLength,
    extensions,
  };
}

/** Bytes before the symbols: LCT header plus FEC Payload ID. */
export function alcOverhead(p: AlcPacketFields): number {
  return lctHeaderLength(headerFields(p)) + FEC_PAYLOAD_ID_SIZE;
}

const ONE_SYMBOL_BYTE = new Uint8Array(1);

/**
 * Bytes before the symbol of a stream packet of object `toi` on channel
 * `tsi` (LCT header with EXT_RQSEQ, FEC Payload ID): 24 when both fit 16
 * bits, else 28 (idLengths).
 */
export function streamPacketOverhead(tsi: number, toi: number): number {
  return alcOverhead({ tsi, toi, sbn: 0, esi: 0, symbols: ONE_SYMBOL_BYTE, sequence: 0 });
}

/** Builds one data packet. Throws ProtocolEncodeError for unrepresentable fields. */
export function encodeAlc(p: AlcPacketFields): Uint8Array {
  const h = headerFields(p);
  const hl = lctHeaderLength(h);
  const out = new Uint8Array(hl + FEC_PAYLOAD_ID_SIZE + p.symbols.length);
  writeLctHeader(h, out, 0);
  out[hl] = p.sbn;
  out[hl + 1] = p.esi >> 16;
  out[hl + 2] = (p.esi >> 8) & 0xff;
  out[hl + 3] = p.esi & 0xff;
  out.set(p.symbols, hl + FEC_PAYLOAD_ID_SIZE);
  return out;
}

function readAlc(bytes: Uint8Array): AlcPacket | AlcRejectReason {
  const lct = decodeLctHeader(bytes);
  if (!lct.ok) return lct.reason;
  const header = lct.header;
  if (header.codepoint !== FEC_ENCODING_ID_RAPTORQ) return 'unsupported-fec-encoding';
  let oti: Oti | undefined;
  let sequence: number | undefined;
  let fdt: FdtExtensionValue | undefined;
  for (const e of header.extensions) {
    if (e.het === HET_EXT_FTI) {
      if (oti !== undefined) return 'duplicate-extension';
      oti = parseFtiExtension(e);
      if (oti === undefined) return 'bad-ext-fti';
    } else if (e.het === HET_EXT_RQSEQ) {
      if (sequence !== undefined) return 'duplicate-extension';
      sequence = parseSeqExtension(e);
      if (sequence === undefined) return 'bad-ext-rqseq';
    } else if (e.het === HET_EXT_FDT) {
      if (fdt !== undefined) return 'duplicate-extension';
      fdt = parseFdtExtension(e);
    }
    // Anything else: skipped (RFC 5651 §5.2).
  }
  if (header.toi === FDT_TOI && fdt === undefined) return 'missing-ext-fdt';
  const at = header.headerLength;
  if (bytes.length - at < FEC_PAYLOAD_ID_SIZE) return 'missing-payload-id';
  const payloadOffset = at + FEC_PAYLOAD_ID_SIZE;
  const payloadLength = bytes.length - payloadOffset;
  if (payloadLength === 0) return 'empty-payload';
  if (oti !== undefined && payloadLength % oti.symbolSize !== 0) return 'bad-payload-length';
  return {
    header,
    tsi: header.tsi,
    toi: header.toi,
    sbn: bytes[at],
    esi: (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3],
    oti,
    sequence,
    fdt,
    payloadOffset,
    payloadLength,
    payload: bytes.subarray(payloadOffset),
  };
}

/** Parses one data packet. Never throws; the payload is a view into `bytes`. */
export function decodeAlc(bytes: Uint8Array, counters?: AlcCounters): AlcDecodeResult {
  const res = catchReject(() => readAlc(bytes), 'decoder-bug' as AlcRejectReason);
  let out: AlcDecodeResult;
  if (!res.ok) out = res;
  else if (typeof res.value === 'string') out = { ok: false, reason: res.value };
  else out = { ok: true, packet: res.value };
  if (out.ok) counters?.accept();
  else counters?.reject(out.reason);
  return out;
}

/** Where an rqcast data packet's fields are, as scanAlcData reads them in place. */
export interface AlcScan {
  tsi: number;
  /** TOI as a Number: the fast path only takes TOIs of at most 48 bits. */
  toi: number;
  sbn: number;
  esi: number;
  /** EXT_RQSEQ, or -1 when absent (a replacement). */
  sequence: number;
  /** Offset, in the scanned buffer, of the FEC Payload ID (the symbols follow it). */
  payloadIdOffset: number;
  payloadLength: number;
}

/** A reusable AlcScan (scanAlcData fills it; one per caller, nothing allocated per packet). */
export function newAlcScan(): AlcScan {
  return { tsi: 0, toi: 0, sbn: 0, esi: 0, sequence: -1, payloadIdOffset: 0, payloadLength: 0 };
}

/**
 * The data path's parser: reads the object packet at `buf[at, at + length)`
 * in place, without allocating, into `out`. It takes only the packets it
 * can check completely: LCT version 1, Codepoint 6, a TOI other than 0 of
 * at most 48 bits, no EXT_FTI or EXT_FDT, at most one well-formed
 * EXT_RQSEQ (other extensions skipped, RFC 5651 §5.2), a FEC Payload ID
 * and at least one symbol byte. For those it returns true, and every field
 * is what decodeAlc would give; for anything else it returns false and the
 * caller hands the packet to decodeAlc, which decodes or rejects it.
 */
export function scanAlcData(buf: Uint8Array, at: number, length: number, out: AlcScan): boolean {
  if (length < 4) return false;
  const b0 = buf[at];
  const b1 = buf[at + 1];
  const hdrLen = buf[at + 2] * 4;
  if (b0 >> 4 !== 1 || buf[at + 3] !== FEC_ENCODING_ID_RAPTORQ) return false;
  const H = (b1 >> 4) & 1;
  const tsiLength = 4 * (b1 >> 7) + 2 * H;
  const toiLength = 4 * ((b1 >> 5) & 3) + 2 * H;
  if (toiLength > 6) return false;
  let o = at + 4 + 4 * (((b0 >> 2) & 3) + 1);
  if (hdrLen < o - at + tsiLength + toiLength || hdrLen > length) return false;
  let tsi = 0;
  for (let i = 0; i < tsiLength; i++) tsi = tsi * 256 + buf[o++];
  let toi = 0;
  for (let i = 0; i < toiLength; i++) toi = toi * 256 + buf[o++];
  if (toi === 0) return false;
  const end = at + hdrLen;
  let sequence = -1;
  while (o < end) {
    const rem = end - o;
    if (rem < 4) return false;
    const het = buf[o];
    if (het < 128) {
      const hel = buf[o + 1];
      if (hel === 0 || hel * 4 > rem) return false;
      if (het === HET_EXT_FTI) return false;
      if (het === HET_EXT_RQSEQ) {
        if (hel !== 2 || sequence >= 0) return false;
        sequence = buf[o + 4] * 0x100_0000 + ((buf[o + 5] << 16) | (buf[o + 6] << 8) | buf[o + 7]);
      }
      o += hel * 4;
    } else {
      if (het === HET_EXT_FDT) return false;
      o += 4;
    }
  }
  const payloadLength = length - hdrLen - FEC_PAYLOAD_ID_SIZE;
  if (payloadLength <= 0) return false;
  out.tsi = tsi;
  out.toi = toi;
  out.sbn = buf[end];
  out.esi = (buf[end + 1] << 16) | (buf[end + 2] << 8) | buf[end + 3];
  out.sequence = sequence;
  out.payloadIdOffset = end;
  out.payloadLength = payloadLength;
  return true;
}
