/**
 * A writer of classic pcap files holding UDP datagrams over IPv4 (link type
 * raw IPv4, 101), for tests that hand packets rqcast builds to an
 * independent dissector (tshark) without a network.
 */
import * as fs from 'fs';

const LINKTYPE_RAW = 101;

/** One IPv4 + UDP frame from 127.0.0.1:srcPort to 127.0.0.1:dstPort (checksums 0: UDP's is optional over IPv4). */
function udpFrame(payload: Uint8Array, srcPort: number, dstPort: number): Buffer {
  const f = Buffer.alloc(20 + 8 + payload.length);
  f[0] = 0x45; // IPv4, 5 words of header
  f.writeUInt16BE(f.length, 2);
  f[8] = 64; // TTL
  f[9] = 17; // UDP
  f.set([127, 0, 0, 1], 12);
  f.set([127, 0, 0, 1], 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += f.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  f.writeUInt16BE(~sum & 0xffff, 10);
  f.writeUInt16BE(srcPort, 20);
  f.writeUInt16BE(dstPort, 22);
  f.writeUInt16BE(8 + payload.length, 24);
  f.set(payload, 28);
  return f;
}

/** Writes `payloads` as UDP datagrams to `dstPort`, one a millisecond, to a pcap file at `file`. */
export function writeUdpPcap(file: string, payloads: readonly Uint8Array[], dstPort: number, srcPort = 40000): void {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0); // microsecond timestamps, little-endian
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16); // snaplen
  header.writeUInt32LE(LINKTYPE_RAW, 20);
  const records = payloads.map((p, i) => {
    const frame = udpFrame(p, srcPort, dstPort);
    const r = Buffer.alloc(16);
    r.writeUInt32LE(Math.floor(i / 1000), 0);
    r.writeUInt32LE((i % 1000) * 1000, 4);
    r.writeUInt32LE(frame.length, 8);
    r.writeUInt32LE(frame.length, 12);
    return Buffer.concat([r, frame]);
  });
  fs.writeFileSync(file, Buffer.concat([header, ...records]));
}
