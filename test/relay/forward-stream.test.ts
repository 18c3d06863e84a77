/**
 * ForwardStream (lib/relay/forward-stream.ts) without a network: what it
 * sends for an upstream packet (the same FEC Payload ID and symbol bytes
 * under its own TSI, TOI and EXT_RQSEQ), its FDT (the upstream's names,
 * digests and OTIs, its own TOIs; a new instance only when the listing
 * changes, sent as a burst), a packet that arrives before the instance
 * listing its object (held, then sent), and the hostile upstream inputs it
 * drops and counts: a TOI no instance lists, symbols that are not whole
 * T-byte symbols or too long, more packets than it may queue.
 */
import { randomBytes } from 'node:crypto';
import { decodeAlc } from '../../lib/protocol/alc';
import type { FdtFile } from '../../lib/protocol/fdt';
import { ForwardStream } from '../../lib/relay/forward-stream';

const T = 64;
const file = (toi: number, name: string): { name: string; file: FdtFile } => ({
  name,
  file: {
    toi: BigInt(toi),
    contentLocation: name,
    contentLength: 1000,
    transferLength: 1000,
    fecEncodingId: 6,
    oti: { transferLength: 1000, symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 4 },
    sha256: new Uint8Array(32).fill(name.length + name.charCodeAt(name.length - 1)),
  },
});

function drain(s: ForwardStream, max = 1 << 20): Uint8Array[] {
  const out: Uint8Array[] = [];
  s.fill(max, (buf, size, count) => {
    for (let i = 0; i < count; i++) out.push(buf.slice(i * size, (i + 1) * size));
    return count;
  });
  return out;
}

test('an upstream packet goes out with the same SBN, ESI and bytes under the relay\'s TSI, TOI and its own sequence numbers; FDT packets lead', () => {
  const s = new ForwardStream({ tsi: 7, symbolSize: T, channels: [], refill: () => undefined, fdtInterval: 4 });
  s.announce([file(40, 'a.bin'), file(41, 'b.bin')], true, Date.now() + 60_000);
  const sym = [randomBytes(T), randomBytes(T), randomBytes(T), randomBytes(T), randomBytes(T)];
  sym.forEach((b, i) => s.packet(i % 2 === 0 ? 40 : 41, 0, 1000 + i, b));
  const packets = drain(s).map((p) => {
    const d = decodeAlc(p);
    if (!d.ok) throw new Error(d.reason);
    return d.packet;
  });
  // The new instance first, as a burst (its K source symbols and two more), then 4 data packets, another FDT packet, the fifth.
  const burst = packets.findIndex((p) => p.toi !== 0n);
  expect(burst).toBeGreaterThanOrEqual(3);
  expect(packets.slice(burst).map((p) => Number(p.toi))).toEqual([1, 2, 1, 2, 0, 1]);
  expect(packets.map((p) => p.sequence)).toEqual(packets.map((_, i) => i));
  expect(packets.every((p) => p.tsi === 7)).toBe(true);
  const data = packets.filter((p) => p.toi !== 0n);
  expect(data.map((p) => [p.sbn, p.esi])).toEqual(sym.map((_, i) => [0, 1000 + i]));
  data.forEach((p, i) => expect(Buffer.from(p.payload).equals(sym[i])).toBe(true));
  expect(packets[0].fdt?.instanceId).toBe(1);
  expect(s.forward).toMatchObject({ forwarded: 5, unlisted: 0, malformed: 0, overflow: 0, instances: 1 });
});

test('the FDT: the same listing again makes no new instance; a change does, and objects keep their TOI across instances', () => {
  const s = new ForwardStream({ tsi: 1, symbolSize: T, channels: [], refill: () => undefined });
  s.announce([file(5, 'x/0')], false, Date.now() + 60_000);
  s.announce([file(5, 'x/0')], false, Date.now() + 60_000);
  expect(s.forward.instances).toBe(1);
  expect(s.toiOf(5)).toBe(1);
  // The upstream's next instance: a new segment, and (another upstream session) a new TOI for the same object.
  s.announce([file(9, 'x/0'), file(6, 'x/1')], false, Date.now() + 60_000);
  expect(s.forward.instances).toBe(2);
  expect(s.currentInstanceId).toBe(2);
  expect([s.toiOf(9), s.toiOf(6), s.toiOf(5)]).toEqual([1, 2, undefined]);
});

test('a packet that comes before the instance listing its object is held and sent after it; one no instance lists never is', () => {
  const s = new ForwardStream({ tsi: 1, symbolSize: T, channels: [], refill: () => undefined, fdtInterval: 1000 });
  const early = randomBytes(T);
  s.packet(1, 0, 77, early);
  s.packet(9, 0, 78, randomBytes(T));
  expect(s.forward).toMatchObject({ unlisted: 2, forwarded: 0 });
  expect(s.pendingPackets).toBe(0);
  s.announce([file(1, 'a')], true, Date.now() + 60_000);
  s.announce([file(1, 'a'), file(2, 'b')], true, Date.now() + 60_000);
  const packets = drain(s).map((p) => decodeAlc(p)).flatMap((d) => (d.ok ? [d.packet] : []));
  const data = packets.filter((p) => p.toi !== 0n);
  expect(data.map((p) => [Number(p.toi), p.esi])).toEqual([[1, 77]]);
  expect(Buffer.from(data[0].payload).equals(early)).toBe(true);
  // It follows the instance that lists it.
  expect(packets.findIndex((p) => p.toi !== 0n)).toBeGreaterThan(0);
  expect(s.forward).toMatchObject({ released: 1, forwarded: 1, instances: 2 });
});

test('hostile upstream packets are dropped and counted, never sent: a partial symbol, more than a slot, none; an overfull queue drops the oldest', () => {
  const s = new ForwardStream({ tsi: 1, symbolSize: T, channels: [], refill: () => undefined, maxQueued: 8, fdtInterval: 1000 });
  s.announce([file(1, 'a')], true, Date.now() + 60_000);
  drain(s);
  s.packet(1, 0, 0, randomBytes(T - 1));
  s.packet(1, 0, 0, randomBytes(2 * T));
  s.packet(1, 0, 0, new Uint8Array(0));
  expect(s.forward).toMatchObject({ malformed: 3, forwarded: 0 });
  expect(s.pendingPackets).toBe(0);
  const overflowBefore = s.forward.overflow;
  for (let i = 0; i < 20; i++) s.packet(1, 0, i, randomBytes(T));
  // 20 data packets built; only the newest 8 are kept.
  expect(s.forward.overflow - overflowBefore).toBe(12);
  const kept = drain(s).map((p) => decodeAlc(p)).map((d) => (d.ok ? d.packet.esi : -1));
  expect(kept).toEqual([12, 13, 14, 15, 16, 17, 18, 19]);
  // A replacement is never made: the relay holds no symbol of its own.
  expect(s.freshPackets([1, 2, 3])).toEqual([]);
  expect(s.counters.freshSkipped).toBe(3);
});

test('what the ring does not take stays queued, in order, and goes first next time', () => {
  const s = new ForwardStream({ tsi: 1, symbolSize: T, channels: [], refill: () => undefined, fdtInterval: 1000 });
  s.announce([file(1, 'a')], true, Date.now() + 60_000);
  const fdtPackets = drain(s).length;
  for (let i = 0; i < 6; i++) s.packet(1, 0, i, randomBytes(T));
  const first: number[] = [];
  const take = (budget: number) => (buf: Uint8Array, size: number, count: number) => {
    const k = Math.min(budget, count);
    budget -= k;
    for (let i = 0; i < k; i++) {
      const d = decodeAlc(buf.slice(i * size, (i + 1) * size));
      if (d.ok) first.push(d.packet.sequence as number);
    }
    return k;
  };
  expect(s.fill(100, take(3))).toBe(3);
  expect(s.pendingPackets).toBe(3);
  expect(s.fill(100, take(100))).toBe(3);
  expect(first).toEqual([0, 1, 2, 3, 4, 5].map((i) => fdtPackets + i));
});
