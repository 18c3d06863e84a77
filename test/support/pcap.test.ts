import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readTcpSegments } from './pcap';

/** An IPv4 + TCP packet (checksums left zero: the reader does not check them). */
function ipv4Tcp(seq: number, payload: Buffer, flags = 0x18): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 20 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 6;
  Buffer.from([10, 0, 0, 1]).copy(ip, 12);
  Buffer.from([10, 0, 0, 2]).copy(ip, 16);
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(4433, 0);
  tcp.writeUInt16BE(50000, 2);
  tcp.writeUInt32BE(seq, 4);
  tcp.writeUInt32BE(7, 8);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  return Buffer.concat([ip, tcp, payload]);
}

function pcapFile(linkType: number, frames: Buffer[], snap?: number): string {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(linkType, 20);
  const records = frames.map((f, i) => {
    const kept = snap === undefined ? f : f.subarray(0, snap);
    const r = Buffer.alloc(16);
    r.writeUInt32LE(100 + i, 0);
    r.writeUInt32LE(500_000, 4);
    r.writeUInt32LE(kept.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, kept]);
  });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-pcap-')), 'c.pcap');
  fs.writeFileSync(file, Buffer.concat([header, ...records]));
  return file;
}

describe('readTcpSegments', () => {
  it('reads segments behind Ethernet headers, skipping other ethertypes', () => {
    const eth = (type: number, body: Buffer): Buffer => {
      const h = Buffer.alloc(14);
      h.writeUInt16BE(type, 12);
      return Buffer.concat([h, body]);
    };
    const file = pcapFile(1, [eth(0x0800, ipv4Tcp(1000, Buffer.from('abc'))), eth(0x0806, Buffer.alloc(28)), eth(0x0800, ipv4Tcp(1003, Buffer.alloc(0), 0x10))]);
    const segs = readTcpSegments(file);
    expect(segs).toHaveLength(2);
    expect(segs[0]).toMatchObject({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 4433, dstPort: 50000, seq: 1000, ack: 7, flags: 0x18, time: 100.5 });
    expect(segs[0].payload.toString()).toBe('abc');
    expect(segs[1]).toMatchObject({ seq: 1003, flags: 0x10 });
    expect(segs[1].payload.length).toBe(0);
  });

  it('reads Linux cooked captures (v1 and v2)', () => {
    const sll = Buffer.alloc(16);
    sll.writeUInt16BE(0x0800, 14);
    const sll2 = Buffer.alloc(20);
    sll2.writeUInt16BE(0x0800, 0);
    expect(readTcpSegments(pcapFile(113, [Buffer.concat([sll, ipv4Tcp(5, Buffer.from('x'))])]))[0].seq).toBe(5);
    expect(readTcpSegments(pcapFile(276, [Buffer.concat([sll2, ipv4Tcp(6, Buffer.from('y'))])]))[0].payload.toString()).toBe('y');
  });

  it('refuses a capture whose packets were cut by the snap length', () => {
    expect(() => readTcpSegments(pcapFile(101, [ipv4Tcp(1, Buffer.alloc(100))], 60))).toThrow(/captured short/);
  });

  it('refuses a file that is not pcap', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-pcap-')), 'x');
    fs.writeFileSync(file, Buffer.alloc(40, 7));
    expect(() => readTcpSegments(file)).toThrow(/not a classic pcap/);
  });
});
