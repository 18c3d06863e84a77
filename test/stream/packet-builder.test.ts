// Header templates and packet building, without the codec: a stand-in
// source writes FEC Payload ID + a symbol naming (SBN, ESI), so every byte
// can be compared with encodeAlc's.
import type { BlockSymbols } from '../../lib/content/block-source';
import type { EsiRange } from '../../lib/content/symbol-allocator';
import { encodeAlc } from '../../lib/protocol/alc';
import type { Oti } from '../../lib/protocol/oti';
import { ChannelHeaders, FDT_OBJECT, headerTemplate } from '../../lib/stream/header-template';
import { PacketRun, PendingRuns, RunBuilder, packetSize, replacementPackets, writePackets } from '../../lib/stream/packet-builder';

const T = 8;
const OTI: Oti = { transferLength: 3 * T, symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 4 };

const symbol = (sbn: number, esi: number): Uint8Array => new Uint8Array(T).fill((sbn * 31 + esi) & 0xff);

/** A source whose batch call does what the native one does, and counts its calls. */
class StandIn implements BlockSymbols {
  readonly symbolSize = T;
  readonly sourceBlocks = 4;
  calls = 0;
  sourceSymbols(): number {
    return 10;
  }
  packetsWithHeader(out: Uint8Array, offset: number, header: Uint8Array, seqAt: number, firstSeq: number, sbn: number, firstEsi: number, count: number): number {
    this.calls++;
    let at = offset;
    for (let i = 0; i < count; i++) {
      out.set(header, at);
      if (seqAt >= 0) new DataView(out.buffer, out.byteOffset).setUint32(at + seqAt, (firstSeq + i) % 2 ** 32);
      const esi = firstEsi + i;
      out.set([sbn, esi >> 16, (esi >> 8) & 0xff, esi & 0xff], at + header.length);
      out.set(symbol(sbn, esi), at + header.length + 4);
      at += header.length + 4 + T;
    }
    return at - offset;
  }
}

const range = (firstEsi: number, count: number, stride = 1): EsiRange => ({ firstEsi, count, stride });

/** What encodeAlc builds for the same fields. */
function reference(toi: number, sbn: number, esi: number, sequence?: number, fdt = false): Uint8Array {
  return encodeAlc({
    tsi: 3,
    toi: BigInt(toi),
    sbn,
    esi,
    symbols: symbol(sbn, esi),
    sequence,
    fdtInstanceId: fdt ? 9 : undefined,
    oti: fdt ? OTI : undefined,
  });
}

function split(run: PacketRun): Uint8Array[] {
  return Array.from({ length: run.count }, (_, i) => run.bytes.slice(i * run.packetSize, (i + 1) * run.packetSize));
}

describe('header templates', () => {
  test('with EXT_RQSEQ last (seqAt = its u32), without it for replacements; the FDT with EXT_FDT and EXT_FTI', () => {
    const h = new ChannelHeaders(3, [5, 6], { instanceId: 9, oti: OTI });
    const withSeq = h.stream(1);
    expect(withSeq.seqAt).toBe(withSeq.bytes.length - 4);
    expect(h.fresh(1).seqAt).toBe(-1);
    expect(withSeq.bytes.length - h.fresh(1).bytes.length).toBe(8);
    // 12-byte LCT header (16-bit TSI and TOI) + 8 of EXT_RQSEQ; the FDT adds 4 (EXT_FDT) + 16 (EXT_FTI).
    expect([withSeq.bytes.length, h.stream(FDT_OBJECT).bytes.length]).toEqual([20, 40]);
    expect(packetSize(withSeq, T)).toBe(20 + 4 + T);
    expect(headerTemplate(3, 6, [], true)).toEqual(withSeq);
  });

  test('an object whose TOI passes 65535 takes 32-bit TSI and TOI: 4 bytes more, the FDT and the others unchanged', () => {
    const h = new ChannelHeaders(3, [65535, 65536], { instanceId: 9, oti: OTI });
    expect([h.stream(0), h.stream(1), h.fresh(0), h.fresh(1), h.stream(FDT_OBJECT)].map((t) => t.bytes.length)).toEqual([20, 24, 12, 16, 40]);
    expect([h.stream(0).bytes[1], h.stream(1).bytes[1]]).toEqual([0x10, 0xa0]);
    expect(h.stream(1).seqAt).toBe(20);
    // On a channel whose TSI passes 65535, every header does.
    const wide = new ChannelHeaders(65536, [1], { instanceId: 9, oti: OTI });
    expect([wide.stream(0), wide.stream(FDT_OBJECT)].map((t) => t.bytes.length)).toEqual([24, 44]);
  });
});

describe('writePackets and RunBuilder', () => {
  test('packets equal encodeAlc bytes; sequence numbers stamped; one native call per run of stride 1', () => {
    const src = new StandIn();
    const h = new ChannelHeaders(3, [5], { instanceId: 9, oti: OTI });
    const b = new RunBuilder(packetSize(h.stream(FDT_OBJECT), T), 16);
    b.begin();
    b.write(src, h.stream(FDT_OBJECT), T, 2 ** 32 - 1, 0, range(2, 1));
    b.write(src, h.stream(0), T, 0, 1, range(40, 3));
    b.write(src, h.stream(0), T, 3, 2, range(7, 2));
    b.write(src, h.stream(FDT_OBJECT), T, 5, 0, range(3, 1));
    const runs = b.end();
    expect(src.calls).toBe(4);
    // Runs of one packet size: FDT, 5 data packets, FDT.
    expect(runs.map((r) => [r.packetSize, r.count])).toEqual([
      [40 + 4 + T, 1],
      [20 + 4 + T, 5],
      [40 + 4 + T, 1],
    ]);
    const packets = runs.flatMap(split);
    const want = [
      reference(0, 0, 2, 2 ** 32 - 1, true),
      reference(5, 1, 40, 0),
      reference(5, 1, 41, 1),
      reference(5, 1, 42, 2),
      reference(5, 2, 7, 3),
      reference(5, 2, 8, 4),
      reference(0, 0, 3, 5, true),
    ];
    expect(packets.map((p) => Buffer.from(p).toString('hex'))).toEqual(want.map((p) => Buffer.from(p).toString('hex')));
    // The next batch reuses the staging buffer.
    b.begin();
    b.write(src, h.stream(0), T, 6, 1, range(43, 1));
    const again = b.end();
    expect(again[0].bytes.byteOffset).toBe(runs[0].bytes.byteOffset);
  });

  test('objects of both header forms: a run per packet size, each packet what encodeAlc builds', () => {
    const src = new StandIn();
    const h = new ChannelHeaders(3, [5, 70000], { instanceId: 9, oti: OTI });
    const b = new RunBuilder(packetSize(h.stream(FDT_OBJECT), T), 16);
    b.begin();
    b.write(src, h.stream(0), T, 0, 1, range(40, 2));
    b.write(src, h.stream(1), T, 2, 1, range(40, 2));
    b.write(src, h.stream(0), T, 4, 2, range(7, 1));
    const runs = b.end();
    expect(runs.map((r) => [r.packetSize, r.count])).toEqual([
      [20 + 4 + T, 2],
      [24 + 4 + T, 2],
      [20 + 4 + T, 1],
    ]);
    const want = [reference(5, 1, 40, 0), reference(5, 1, 41, 1), reference(70000, 1, 40, 2), reference(70000, 1, 41, 3), reference(5, 2, 7, 4)];
    expect(runs.flatMap(split).map((p) => Buffer.from(p).toString('hex'))).toEqual(want.map((p) => Buffer.from(p).toString('hex')));
  });

  test('a strided run: one call per packet, ESIs firstEsi + i * stride, consecutive sequence numbers across 2^32', () => {
    const src = new StandIn();
    const h = new ChannelHeaders(3, [5], { instanceId: 9, oti: OTI });
    const size = packetSize(h.stream(0), T);
    const out = new Uint8Array(3 * size);
    expect(writePackets(src, out, 0, h.stream(0), 2 ** 32 - 2, 1, range(11, 3, 4))).toBe(3 * size);
    expect(src.calls).toBe(3);
    const got = [0, 1, 2].map((i) => Buffer.from(out.subarray(i * size, (i + 1) * size)).toString('hex'));
    expect(got).toEqual([reference(5, 1, 11, 2 ** 32 - 2), reference(5, 1, 15, 2 ** 32 - 1), reference(5, 1, 19, 0)].map((p) => Buffer.from(p).toString('hex')));
  });

  test('replacementPackets: no EXT_RQSEQ, one view per packet of one buffer', () => {
    const src = new StandIn();
    const h = new ChannelHeaders(3, [5], { instanceId: 9, oti: OTI });
    const ps = replacementPackets(src, h.fresh(0), T, 2, range(100, 2));
    expect(ps.map((p) => Buffer.from(p).toString('hex'))).toEqual([reference(5, 2, 100), reference(5, 2, 101)].map((p) => Buffer.from(p).toString('hex')));
    expect(ps[0].buffer).toBe(ps[1].buffer);
    const fdt = replacementPackets(src, h.fresh(FDT_OBJECT), T, 0, range(4, 1));
    expect(Buffer.from(fdt[0]).equals(Buffer.from(reference(0, 0, 4, undefined, true)))).toBe(true);
  });
});

describe('PendingRuns', () => {
  const run = (tag: number, packetSize: number, count: number): PacketRun => ({ bytes: new Uint8Array(packetSize * count).fill(tag), packetSize, count });

  test('keep copies what a push did not take (the staging buffer is reused); offer hands it out oldest first', () => {
    const p = new PendingRuns();
    const batch = [run(1, 4, 3), run(2, 6, 2), run(3, 4, 1)];
    p.keep(batch, 0, 1);
    expect(p.packets).toBe(2 + 2 + 1);
    batch.forEach((r) => r.bytes.fill(0));
    const pushed: string[] = [];
    const r = p.offer((bytes, size, count) => {
      pushed.push(`${size}x${count}:${bytes[0]}:${bytes.length}`);
      return count;
    }, 100);
    expect(r).toEqual({ taken: 5, blocked: false });
    expect(pushed).toEqual(['4x2:1:8', '6x2:2:12', '4x1:3:4']);
    expect(p.packets).toBe(0);
  });

  test('offer stops at a push that takes less, keeping the rest, and once `max` packets were taken', () => {
    const p = new PendingRuns();
    p.keep([run(1, 4, 3), run(2, 4, 3), run(3, 4, 3)], 0, 0);
    expect(p.offer((_b, _s, count) => count, 2)).toEqual({ taken: 3, blocked: false });
    expect(p.packets).toBe(6);
    expect(p.offer(() => 1, 100)).toEqual({ taken: 1, blocked: true });
    expect(p.packets).toBe(5);
    const seen: number[] = [];
    p.offer((bytes, _s, count) => {
      seen.push(bytes[0], count);
      return count;
    }, 100);
    expect(seen).toEqual([2, 2, 3, 3]);
  });
});
