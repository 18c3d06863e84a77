/**
 * What a capture of rqcast's TCP sender says about its retransmissions
 * (issue 9's wire check): data segments grouped by connection and sequence
 * number; every segment sent again under a sequence number already used is a
 * retransmission, compared with the first segment sent under it.
 *
 * - boundaries: a retransmission covers exactly the original's byte range and
 *   splits it into frames (u16 length + packet) at the same places; a
 *   segment that starts inside an earlier one (re-segmentation) is counted
 *   as `resegmented`;
 * - symbols: each data frame (an ALC packet of an object, TOI != 0) of a
 *   retransmission is compared with the frame at the same place in every
 *   earlier version: `fresh` if its (TOI, SBN, ESI) differs from all of them;
 * - the segments themselves: how many data segments had a wrong TCP
 *   checksum, and the largest payload (a GSO packet the kernel did not cut
 *   would show as one segment longer than the MSS).
 */
import type { TcpSegmentRecord } from '../support/pcap';
import { decodeAlc } from '../../lib/protocol/alc';

export interface RetransmissionReport {
  connections: number;
  dataSegments: number;
  /** Segments sent again under a sequence number already used (with payload). */
  retransmissions: number;
  /** Of those, the ones whose byte length or frame boundaries differ from the original. */
  boundaryMismatches: number;
  /** Segments starting inside an earlier segment's range, not at its start. */
  resegmented: number;
  /** Retransmissions carrying at least one data frame. */
  dataRetransmissions: number;
  /** Of those, the ones where every data frame carries a symbol no earlier version carried there. */
  freshRetransmissions: number;
  /** Data frames in retransmissions, and those among them that repeat an earlier version's symbol. */
  dataFrames: number;
  staleFrames: number;
  /** Data segments whose TCP checksum is wrong (meaningful only where the capture saw checksums computed). */
  badChecksums: number;
  /** The longest data segment payload. */
  largestPayload: number;
}

/** Frame lengths of a segment's payload (u16 big-endian lengths); undefined if it does not split into whole frames. */
export function frameLengths(payload: Buffer): number[] | undefined {
  const out: number[] = [];
  let at = 0;
  while (at < payload.length) {
    if (payload.length - at < 2) return undefined;
    const len = payload.readUInt16BE(at);
    if (len === 0 || at + 2 + len > payload.length) return undefined;
    out.push(len);
    at += 2 + len;
  }
  return out;
}

/** The symbol each frame carries ("toi/sbn/esi"), or undefined for a frame that is not an object's data packet. */
function frameSymbols(payload: Buffer, lengths: number[]): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  let at = 0;
  for (const len of lengths) {
    const r = decodeAlc(payload.subarray(at + 2, at + 2 + len));
    out.push(r.ok && r.packet.toi !== 0n ? `${r.packet.toi}/${r.packet.sbn}/${r.packet.esi}` : undefined);
    at += 2 + len;
  }
  return out;
}

export function analyzeRetransmissions(segments: TcpSegmentRecord[], serverPort: number): RetransmissionReport {
  const report: RetransmissionReport = {
    connections: 0,
    dataSegments: 0,
    retransmissions: 0,
    boundaryMismatches: 0,
    resegmented: 0,
    dataRetransmissions: 0,
    freshRetransmissions: 0,
    dataFrames: 0,
    staleFrames: 0,
    badChecksums: 0,
    largestPayload: 0,
  };
  interface Versions {
    length: number;
    frames: number[] | undefined;
    symbols: (string | undefined)[][];
  }
  const byConnection = new Map<string, { base: number; starts: Map<number, Versions>; ends: Array<[number, number]> }>();
  for (const s of segments) {
    if (s.srcPort !== serverPort || s.payload.length === 0) continue;
    const key = `${s.dst}:${s.dstPort}`;
    let conn = byConnection.get(key);
    if (!conn) {
      conn = { base: s.seq, starts: new Map(), ends: [] };
      byConnection.set(key, conn);
    }
    report.dataSegments++;
    if (!s.checksumOk) report.badChecksums++;
    report.largestPayload = Math.max(report.largestPayload, s.payload.length);
    const frames = frameLengths(s.payload);
    const symbols = frames ? frameSymbols(s.payload, frames) : [];
    // Offsets from the connection's first data segment (the first sent), so
    // that a sequence space wrapping through 2^32 compares plainly.
    const seq = (s.seq - conn.base) >>> 0;
    const earlier = conn.starts.get(seq);
    if (!earlier) {
      // A new start must not fall inside a range already sent.
      if (conn.ends.some(([a, b]) => seq > a && seq < b)) report.resegmented++;
      conn.starts.set(seq, { length: s.payload.length, frames, symbols: [symbols] });
      conn.ends.push([seq, seq + s.payload.length]);
      continue;
    }
    report.retransmissions++;
    const sameFrames = earlier.frames !== undefined && frames !== undefined && earlier.frames.length === frames.length && earlier.frames.every((l, i) => l === frames[i]);
    if (earlier.length !== s.payload.length || !sameFrames) {
      report.boundaryMismatches++;
      continue;
    }
    const dataAt = symbols.map((sym, i) => (sym === undefined ? -1 : i)).filter((i) => i >= 0);
    if (dataAt.length > 0) {
      report.dataRetransmissions++;
      let fresh = true;
      for (const i of dataAt) {
        report.dataFrames++;
        if (earlier.symbols.some((v) => v[i] === symbols[i])) {
          report.staleFrames++;
          fresh = false;
        }
      }
      if (fresh) report.freshRetransmissions++;
    }
    earlier.symbols.push(symbols);
  }
  report.connections = byConnection.size;
  return report;
}
