/**
 * ObjectEncoder.packetsWithHeader: a run of finished stream packets
 * (header with a stamped 32-bit sequence number, FEC Payload ID, symbol)
 * written by one native call must equal, byte for byte, what the server
 * assembles from packets() and a header template in JavaScript.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { CodecClosedError, EsiOutOfRangeError, InvalidArgumentError, SbnOutOfRangeError, SourceTruncatedError } from '../../lib/fec/errors';
import { MAX_ESI, ObjectEncoder, PAYLOAD_ID_SIZE } from '../../lib/fec/encoder';
import { Rng } from '../../lib/support/rng';

/** The reference: header, sequence number at seqAt (big-endian, mod 2^32), packet. */
function reference(
  enc: ObjectEncoder,
  header: Uint8Array,
  seqAt: number,
  firstSeq: number,
  sbn: number,
  firstEsi: number,
  count: number,
): Buffer {
  const packets = Buffer.from(enc.packets(sbn, firstEsi, count));
  const size = header.length + enc.packetSize;
  const out = Buffer.alloc(count * size);
  for (let i = 0; i < count; i++) {
    const at = i * size;
    out.set(header, at);
    if (seqAt >= 0) out.writeUInt32BE((firstSeq + i) % 2 ** 32, at + seqAt);
    packets.copy(out, at + header.length, i * enc.packetSize, (i + 1) * enc.packetSize);
  }
  return out;
}

describe('ObjectEncoder.packetsWithHeader', () => {
  const data = new Rng(1).bytes(40000);
  // Sub-blocks and a padded last block: any symbol the codec makes.
  const enc = new ObjectEncoder(data, { symbolSize: 96, sourceBlocks: 3, subBlocks: 2 });
  afterAll(() => enc.close());

  it('equals header + sequence number + packets(), byte for byte', () => {
    const T = enc.symbolSize;
    const run = fc
      .record({
        header: fc.uint8Array({ minLength: 0, maxLength: 64 }),
        seqPick: fc.nat(),
        noSeq: fc.boolean(),
        // Near 2^32 often, so that runs wrap around.
        firstSeq: fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 2 ** 32 - 40, max: 2 ** 32 - 1 })),
        sbn: fc.integer({ min: 0, max: 2 }),
        // Source ESIs, repair ESIs, and runs up to the last ESI (2^24 - 1).
        firstEsi: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 5000 }), fc.integer({ min: MAX_ESI - 30, max: MAX_ESI })),
        count: fc.integer({ min: 0, max: 40 }),
        before: fc.integer({ min: 0, max: 9 }),
        after: fc.integer({ min: 0, max: 9 }),
      })
      .map((r) => ({
        ...r,
        count: Math.min(r.count, MAX_ESI + 1 - r.firstEsi),
        seqAt: r.noSeq || r.header.length < 4 ? -1 : r.seqPick % (r.header.length - 3),
      }));
    fc.assert(
      fc.property(run, ({ header, seqAt, firstSeq, sbn, firstEsi, count, before, after }) => {
        const size = header.length + PAYLOAD_ID_SIZE + T;
        // Bytes around the run must be left alone.
        const out = Buffer.alloc(before + count * size + after, 0xc3);
        const written = enc.packetsWithHeader(out, before, header, seqAt, firstSeq, sbn, firstEsi, count);
        expect(written).toBe(count * size);
        const want = reference(enc, header, seqAt, firstSeq, sbn, firstEsi, count);
        expect(Buffer.compare(out.subarray(before, before + written), want)).toBe(0);
        expect(out.subarray(0, before).every((b) => b === 0xc3)).toBe(true);
        expect(out.subarray(before + written).every((b) => b === 0xc3)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('wraps the sequence number at 2^32', () => {
    const header = new Uint8Array(8).fill(0xee);
    const out = Buffer.alloc(3 * (8 + enc.packetSize));
    enc.packetsWithHeader(out, 0, header, 4, 2 ** 32 - 2, 1, 7, 3);
    const size = 8 + enc.packetSize;
    expect([0, 1, 2].map((i) => out.readUInt32BE(i * size + 4))).toEqual([2 ** 32 - 2, 2 ** 32 - 1, 0]);
    expect(out.readUInt32BE(0)).toBe(0xeeeeeeee);
    expect([0, 1, 2].map((i) => out.readUInt32BE(i * size + 8))).toEqual([1 * 2 ** 24 + 7, 1 * 2 ** 24 + 8, 1 * 2 ** 24 + 9]);
  });

  it('takes a header that is a view of its own output buffer', () => {
    const header = Buffer.from('0123456789abcdef');
    const size = header.length + enc.packetSize;
    const out = Buffer.alloc(4 * size);
    out.set(header, 0);
    // The header is the first packet's own first bytes.
    enc.packetsWithHeader(out, 0, out.subarray(0, header.length), 12, 5, 0, 0, 4);
    expect(Buffer.compare(out, reference(enc, header, 12, 5, 0, 0, 4))).toBe(0);
  });

  it('checks its bounds and writes nothing when they fail', () => {
    const header = new Uint8Array(20);
    const size = header.length + enc.packetSize;
    const out = Buffer.alloc(4 * size, 0x5a);
    const untouched = () => expect(out.every((b) => b === 0x5a)).toBe(true);
    // One byte short, from offset 0 and from a later offset.
    expect(() => enc.packetsWithHeader(out.subarray(0, 4 * size - 1), 0, header, 16, 0, 0, 0, 4)).toThrow(InvalidArgumentError);
    expect(() => enc.packetsWithHeader(out, 1, header, 16, 0, 0, 0, 4)).toThrow(InvalidArgumentError);
    expect(() => enc.packetsWithHeader(out, 4 * size + 1, header, 16, 0, 0, 0, 0)).toThrow(InvalidArgumentError);
    untouched();
    // seqAt must leave room for 4 bytes in the header, or be -1.
    expect(() => enc.packetsWithHeader(out, 0, header, 17, 0, 0, 0, 1)).toThrow(InvalidArgumentError);
    expect(() => enc.packetsWithHeader(out, 0, header, -2, 0, 0, 0, 1)).toThrow(InvalidArgumentError);
    expect(() => enc.packetsWithHeader(out, 0, header.subarray(0, 3), 0, 0, 0, 0, 1)).toThrow(InvalidArgumentError);
    expect(() => enc.packetsWithHeader(out, 0, header, 0, 2 ** 32, 0, 0, 1)).toThrow(InvalidArgumentError);
    expect(() => enc.packetsWithHeader(out, 0, header, 0, -1, 0, 0, 1)).toThrow(InvalidArgumentError);
    // The same ESI and SBN bounds as packets().
    expect(() => enc.packetsWithHeader(out, 0, header, 0, 0, 3, 0, 1)).toThrow(SbnOutOfRangeError);
    expect(() => enc.packetsWithHeader(out, 0, header, 0, 0, 0, MAX_ESI, 2)).toThrow(EsiOutOfRangeError);
    expect(() => enc.packetsWithHeader(out, 0, header, 0, 0, 0, MAX_ESI + 1, 0)).toThrow(EsiOutOfRangeError);
    expect(() => enc.packetsWithHeader(new Array(10) as unknown as Uint8Array, 0, header, 0, 0, 0, 0, 0)).toThrow(InvalidArgumentError);
    untouched();
    // Exactly enough room, and an empty run at the very end.
    expect(enc.packetsWithHeader(out, 0, header, 16, 0, 0, 0, 4)).toBe(4 * size);
    expect(enc.packetsWithHeader(out, 4 * size, header, 16, 0, 0, 0, 0)).toBe(0);
  });

  it('prepares the block on demand, as packets() does, from a file too', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-stream-packets-'));
    try {
      const file = path.join(dir, 'object');
      fs.writeFileSync(file, data);
      const disk = ObjectEncoder.fromFile(file, { symbolSize: 96, sourceBlocks: 3, subBlocks: 2 });
      expect(disk.isPrepared(2)).toBe(false);
      const header = new Uint8Array([1, 2, 3, 4, 5, 6]);
      const out = Buffer.alloc(10 * (header.length + disk.packetSize));
      disk.packetsWithHeader(out, 0, header, 2, 99, 2, 400, 10);
      expect(disk.isPrepared(2)).toBe(true);
      expect(Buffer.compare(out, reference(enc, header, 2, 99, 2, 400, 10))).toBe(0);
      fs.truncateSync(file, 100);
      expect(() => disk.packetsWithHeader(out, 0, header, 2, 99, 1, 0, 1)).toThrow(SourceTruncatedError);
      disk.close();
      expect(() => disk.packetsWithHeader(out, 0, header, 2, 99, 2, 0, 1)).toThrow(CodecClosedError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
