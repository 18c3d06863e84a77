/**
 * LCT header templates (RFC 5651 §5.1) for a channel's packets, built once
 * per TOI so that a packet's header is a copy plus, for a stream packet, the
 * 32-bit sequence number stamped into EXT_RQSEQ.
 *
 * Every header: V=1, C=0, PSI=0, Codepoint 6 (RaptorQ, RFC 6330), CCI 0,
 * TSI = channel id, TOI, both of 16 bits (S=0, O=0, H=1) when both fit,
 * else both of 32 bits (S=1, O=1, H=0) (idLengths); extensions in the order EXT_FDT,
 * EXT_FTI (TOI 0 only: RFC 6726 §3.4.1 and the FDT's RaptorQ OTI), then
 * EXT_RQSEQ on stream packets. Replacement packets (answers to ACKs) have the
 * same header without EXT_RQSEQ: they are no stream packet and must not be
 * acknowledged as one. Byte for byte what encodeAlc() builds from the same
 * fields.
 */
import { FEC_ENCODING_ID_RAPTORQ, idLengths } from '../protocol/alc';
import { LctHeaderExtension, fdtExtension, ftiExtension, lctHeaderLength, seqExtension, writeLctHeader } from '../protocol/lct';
import { Oti as WireOti } from '../protocol/oti';

export interface HeaderTemplate {
  bytes: Uint8Array;
  /** Offset of the 32-bit sequence number in the header, or -1. */
  seqAt: number;
}

/** The header of every packet of object `toi` on channel `tsi`, with EXT_RQSEQ (its value stamped per packet) or without. */
export function headerTemplate(tsi: number, toi: number, extensions: readonly LctHeaderExtension[], withSeq: boolean): HeaderTemplate {
  const ext = withSeq ? [...extensions, seqExtension(0)] : [...extensions];
  const fields = { codepoint: FEC_ENCODING_ID_RAPTORQ, psi: 0, tsi, toi: BigInt(toi), ...idLengths(tsi, toi), extensions: ext };
  const bytes = new Uint8Array(lctHeaderLength(fields));
  writeLctHeader(fields, bytes, 0);
  // EXT_RQSEQ is written last: HET, HEL, 2 reserved bytes, then the u32.
  return { bytes, seqAt: withSeq ? bytes.length - 4 : -1 };
}

/** Index of the FDT among a channel's header templates. */
export const FDT_OBJECT = -1;

/**
 * The templates of one channel: for each object (by its index in the
 * channel) and for the FDT (FDT_OBJECT), with and without EXT_RQSEQ.
 */
export class ChannelHeaders {
  private readonly streamHeaders: HeaderTemplate[];
  private readonly freshHeaders: HeaderTemplate[];
  private readonly fdtStream: HeaderTemplate;
  private readonly fdtFresh: HeaderTemplate;

  constructor(tsi: number, tois: readonly number[], fdt: { instanceId: number; oti: WireOti }) {
    this.streamHeaders = tois.map((toi) => headerTemplate(tsi, toi, [], true));
    this.freshHeaders = tois.map((toi) => headerTemplate(tsi, toi, [], false));
    const fdtExt = [fdtExtension(fdt.instanceId), ftiExtension(fdt.oti)];
    this.fdtStream = headerTemplate(tsi, 0, fdtExt, true);
    this.fdtFresh = headerTemplate(tsi, 0, fdtExt, false);
  }

  /** The header of object `obj`'s (or the FDT's) stream packets. */
  stream(obj: number): HeaderTemplate {
    return obj === FDT_OBJECT ? this.fdtStream : this.streamHeaders[obj];
  }

  /** The header of object `obj`'s (or the FDT's) replacement packets: no EXT_RQSEQ. */
  fresh(obj: number): HeaderTemplate {
    return obj === FDT_OBJECT ? this.fdtFresh : this.freshHeaders[obj];
  }
}
