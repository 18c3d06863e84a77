/**
 * A reader of classic pcap files (what `tcpdump -w` writes) that gives back
 * the IPv4 TCP segments in them, for tests that check what went on the wire
 * (e.g. that a retransmitted segment carried other symbols than its
 * original). Link types: Ethernet (1), raw IPv4 (101, 228), Linux cooked
 * capture v1 (113) and v2 (276). Anything else in the file (ARP, IPv6, UDP,
 * fragments) is skipped; a truncated capture (snaplen) is an error, since a
 * test that reads payloads must see them whole.
 */
import * as fs from 'fs';

export interface TcpSegmentRecord {
  /** Capture time in seconds. */
  time: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10). */
  flags: number;
  payload: Buffer;
  /**
   * Whether the TCP checksum (RFC 9293 §3.1, over the pseudo-header) is
   * right. A capture on the sender's side sees it unfilled when the device
   * finishes it (checksum offload): test it only where it was computed
   * before the capture (offload off).
   */
  checksumOk: boolean;
}

/** RFC 1071 sum of the TCP segment at frame[tcp, end) with its IPv4 pseudo-header: 0xffff when the checksum is right. */
function tcpChecksumOk(frame: Buffer, ip: number, tcp: number, end: number): boolean {
  let sum = 6 + (end - tcp);
  for (let i = ip + 12; i < ip + 20; i += 2) sum += frame.readUInt16BE(i);
  let i = tcp;
  for (; i + 1 < end; i += 2) sum += frame.readUInt16BE(i);
  if (i < end) sum += frame[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum === 0xffff;
}

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_IPV4 = 228;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_LINUX_SLL2 = 276;

function ipv4Text(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** Where the network-layer packet starts in a frame of `linkType`, and whether it is IPv4 (undefined: skip the frame). */
function ipv4Offset(frame: Buffer, linkType: number): number | undefined {
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      if (frame.length < 14) return undefined;
      let at = 12;
      let type = frame.readUInt16BE(at);
      // 802.1Q tags
      while (type === 0x8100 && frame.length >= at + 6) {
        at += 4;
        type = frame.readUInt16BE(at);
      }
      return type === 0x0800 ? at + 2 : undefined;
    }
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
      return frame.length > 0 && frame[0] >> 4 === 4 ? 0 : undefined;
    case LINKTYPE_LINUX_SLL:
      return frame.length >= 16 && frame.readUInt16BE(14) === 0x0800 ? 16 : undefined;
    case LINKTYPE_LINUX_SLL2:
      return frame.length >= 20 && frame.readUInt16BE(0) === 0x0800 ? 20 : undefined;
    default:
      throw new Error(`pcap: link type ${linkType} not supported`);
  }
}

/** Every IPv4 TCP segment of the capture at `file`, in capture order. */
export function readTcpSegments(file: string): TcpSegmentRecord[] {
  const b = fs.readFileSync(file);
  if (b.length < 24) throw new Error(`pcap: ${file} is shorter than a file header`);
  const magic = b.readUInt32LE(0);
  let le: boolean;
  let nanos = false;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) {
    le = true;
    nanos = magic === 0xa1b23c4d;
  } else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) {
    le = false;
    nanos = magic === 0x4d3cb2a1;
  } else {
    throw new Error(`pcap: ${file} is not a classic pcap file (magic ${magic.toString(16)})`);
  }
  const u32 = (at: number): number => (le ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const linkType = u32(20) & 0x0fffffff;
  const out: TcpSegmentRecord[] = [];
  let at = 24;
  while (at + 16 <= b.length) {
    const sec = u32(at);
    const frac = u32(at + 4);
    const caplen = u32(at + 8);
    const origlen = u32(at + 12);
    at += 16;
    if (at + caplen > b.length) throw new Error('pcap: the last record is cut short');
    const frame = b.subarray(at, at + caplen);
    at += caplen;
    const ip = ipv4Offset(frame, linkType);
    if (ip === undefined) continue;
    if (caplen < origlen) throw new Error(`pcap: a packet was captured short (${caplen} of ${origlen} bytes): capture with -s 0`);
    if (frame.length < ip + 20 || frame[ip] >> 4 !== 4) continue;
    const ihl = (frame[ip] & 0x0f) * 4;
    const total = frame.readUInt16BE(ip + 2);
    const fragment = frame.readUInt16BE(ip + 6) & 0x3fff;
    if (frame[ip + 9] !== 6 || fragment !== 0 || ihl < 20) continue;
    const tcp = ip + ihl;
    const end = Math.min(frame.length, ip + total);
    if (end < tcp + 20) continue;
    const dataOffset = (frame[tcp + 12] >> 4) * 4;
    if (end < tcp + dataOffset) continue;
    out.push({
      time: sec + frac / (nanos ? 1e9 : 1e6),
      src: ipv4Text(frame, ip + 12),
      dst: ipv4Text(frame, ip + 16),
      srcPort: frame.readUInt16BE(tcp),
      dstPort: frame.readUInt16BE(tcp + 2),
      seq: frame.readUInt32BE(tcp + 4),
      ack: frame.readUInt32BE(tcp + 8),
      flags: frame[tcp + 13],
      payload: Buffer.from(frame.subarray(tcp + dataOffset, end)),
      checksumOk: tcpChecksumOk(frame, ip, tcp, end),
    });
  }
  return out;
}
