/**
 * What an independent ALC/LCT dissector (Wireshark's, through tshark) reads
 * in the packets a channel stream builds: both forms of the header
 * (docs/PROTOCOL.md §8.1), 16-bit TSI and TOI (H = 1) where both fit and
 * 32-bit ones where either does not, FDT packets included. Each packet's
 * field sizes, TSI, TOI, header length, SBN and ESI must be what decodeAlc
 * reads. Skipped where tshark is not installed.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { wireOti } from '../../lib/content/catalogue';
import { SymbolAllocator } from '../../lib/content/symbol-allocator';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { type AlcPacket } from '../../lib/protocol/alc';
import { ChannelStream } from '../../lib/stream/channel-stream';
import { writeUdpPcap } from '../support/pcap-write';
import { takePackets } from '../support/stream-packets';

const tshark = ['/usr/bin/tshark', '/usr/local/bin/tshark'].find((p) => fs.existsSync(p));
const PORT = 4433;
const T = 64;
const FIELDS = ['rmt-lct.fsize.tsi', 'rmt-lct.fsize.toi', 'rmt-lct.tsi', 'rmt-lct.toi', 'rmt-lct.hlen', 'rmt-fec.encoding_id', 'rmt-fec.sbn', 'rmt-fec.esi', 'rmt-lct.fdt_instance_id'];

const open: { close(): void }[] = [];
afterAll(() => open.forEach((e) => e.close()));

function encoder(bytes: number): ObjectEncoder {
  const e = new ObjectEncoder(new Uint8Array(bytes).map((_, i) => i * 7), { symbolSize: T, sourceBlocks: 2 });
  open.push(e);
  return e;
}

/** A channel `tsi` carrying objects `tois`: its first `n` packets, as the replicator would send them. */
function packetsOf(tsi: number, tois: number[], n: number): { bytes: Uint8Array; packet: AlcPacket }[] {
  const fdt = encoder(3 * T);
  const stream = new ChannelStream({
    tsi,
    objects: tois.map((toi) => {
      const e = encoder(40 * T);
      return { toi, encoder: e, allocator: SymbolAllocator.forEncoder(e, 'coded') };
    }),
    fdt: { instanceId: 77, encoder: fdt, allocator: SymbolAllocator.forEncoder(fdt, 'coded'), oti: wireOti(fdt.otiInfo) },
    fdtInterval: 8,
  });
  try {
    // takePackets decodes copies; the bytes are the packet's own (payload views into them).
    return takePackets(stream, n).map((packet) => ({ bytes: new Uint8Array(packet.payload.buffer, packet.payload.byteOffset - packet.payloadOffset, packet.payloadOffset + packet.payloadLength), packet }));
  } finally {
    stream.close();
  }
}

(tshark ? describe : describe.skip)('tshark dissects what rqcast sends (RFC 5651 §5.1 field sizes)', () => {
  test('16-bit TSI and TOI where both fit, 32-bit where either does not; the same TSI, TOI, SBN, ESI as decodeAlc', () => {
    const sent = [...packetsOf(3, [1, 65535, 65536], 60), ...packetsOf(70000, [2], 20)];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-tshark-'));
    try {
      const file = path.join(dir, 'alc.pcap');
      writeUdpPcap(file, sent.map((s) => s.bytes), PORT);
      const out = execFileSync(tshark as string, ['-r', file, '-d', `udp.port==${PORT},alc`, '-T', 'fields', '-E', 'separator=,', ...FIELDS.flatMap((f) => ['-e', f])], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const rows = out.trim().split('\n').map((line) => line.split(','));
      expect(rows).toHaveLength(sent.length);
      const forms = new Set<string>();
      rows.forEach((r, i) => {
        const p = sent[i].packet;
        const short = p.tsi <= 0xffff && p.toi <= 0xffffn;
        forms.add(`${short ? 16 : 32}/${p.toi === 0n ? 'fdt' : 'data'}`);
        const want = [short ? 2 : 4, short ? 2 : 4, p.tsi, Number(p.toi), p.header.headerLength, 6, p.sbn, p.esi, p.toi === 0n ? 77 : ''];
        expect({ i, got: r.map((c) => (c === '' ? '' : Number(c))) }).toEqual({ i, got: want });
      });
      // Both forms, of data and FDT packets, went through the dissector.
      expect([...forms].sort()).toEqual(['16/data', '16/fdt', '32/data', '32/fdt']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
