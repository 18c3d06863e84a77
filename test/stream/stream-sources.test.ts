// ChannelStream over what the content layer can give it beyond a file: a
// source whose blocks are sealed over time (live ingest, relay), and
// allocators with ESI layouts (several servers drawing disjoint symbols).
import { randomBytes } from 'node:crypto';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { decodeAlc } from '../../lib/protocol/alc';
import type { BlockSealing, BlockSymbols } from '../../lib/content/block-source';
import { wireOti } from '../../lib/content/catalogue';
import { EsiLayout, SymbolAllocator } from '../../lib/content/symbol-allocator';
import { ChannelStream, StreamFdt } from '../../lib/stream/channel-stream';
import { codecPacket, takePackets } from '../support/stream-packets';

const T = 64;
const open: { close(): void }[] = [];
afterAll(() => open.forEach((e) => e.close()));

function encoder(data: Uint8Array, blocks: number): ObjectEncoder {
  const e = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: blocks });
  open.push(e);
  return e;
}

function fdt(): StreamFdt {
  const e = encoder(new TextEncoder().encode('<FDT-Instance/>'), 1);
  return { instanceId: 1, encoder: e, allocator: SymbolAllocator.forEncoder(e), oti: wireOti(e.otiInfo) };
}

/** A file's encoder seen as a live source: its blocks are sealed when the test says. */
class SealedByHand implements BlockSymbols, BlockSealing {
  readonly sealed = new Set<number>();
  ended = false;
  private readonly listeners = new Set<(sbn: number) => void>();
  constructor(private readonly inner: ObjectEncoder) {}
  get symbolSize(): number {
    return this.inner.symbolSize;
  }
  get sourceBlocks(): number {
    return this.inner.sourceBlocks;
  }
  get sealing(): BlockSealing {
    return this;
  }
  get listening(): number {
    return this.listeners.size;
  }
  sourceSymbols(sbn: number): number {
    return this.inner.sourceSymbols(sbn);
  }
  packetsWithHeader(out: Uint8Array, offset: number, header: Uint8Array, seqAt: number, firstSeq: number, sbn: number, firstEsi: number, count: number): number {
    if (!this.sealed.has(sbn)) throw new Error(`block ${sbn} is not sealed`);
    return this.inner.packetsWithHeader(out, offset, header, seqAt, firstSeq, sbn, firstEsi, count);
  }
  isSealed(sbn: number): boolean {
    return this.sealed.has(sbn);
  }
  onSealed(listener: (sbn: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  seal(sbn: number): void {
    this.sealed.add(sbn);
    for (const l of this.listeners) l(sbn);
  }
}

describe('ChannelStream over blocks sealed over time', () => {
  test('only sealed blocks are sent; a block sealed later joins the round-robin and the allocator; the object decodes', () => {
    const data = randomBytes(3 * 30 * T - 5);
    const file = encoder(data, 3);
    const live = new SealedByHand(file);
    live.sealed.add(0);
    const allocator = SymbolAllocator.forEncoder(live);
    const s = new ChannelStream({ tsi: 1, objects: [{ toi: 1, encoder: live, allocator }], fdt: fdt() });
    const before = takePackets(s, 100).filter((p) => p.toi === 1n);
    expect(new Set(before.map((p) => p.sbn))).toEqual(new Set([0]));
    live.seal(2);
    expect(allocator.sourceSymbols(2)).toBe(live.sourceSymbols(2));
    live.seal(1);
    const after = takePackets(s, 300).filter((p) => p.toi === 1n);
    expect(new Set(after.map((p) => p.sbn))).toEqual(new Set([0, 1, 2]));
    expect(s.windowBlocks).toBe(3);
    expect(s.windowContents.map((b) => b.sbn)).toEqual([0, 2, 1]);
    const dec = new ObjectDecoder(file.oti);
    open.push(dec);
    for (const p of [...before, ...after]) dec.push(codecPacket(p));
    expect(dec.complete).toBe(true);
    expect(Buffer.from(dec.result()).equals(data)).toBe(true);
    // A second channel on the object follows its sealing too; close() stops both.
    const other = new ChannelStream({ tsi: 2, objects: [{ toi: 1, encoder: live, allocator }], fdt: fdt() });
    expect(live.listening).toBe(2);
    s.close();
    other.close();
    expect(live.listening).toBe(0);
  });
});

describe('ChannelStream with ESI layouts', () => {
  test('two streams (two servers) with one stride and different bases never send the same symbol; together they decode; lookups and replacements keep the layout', () => {
    const data = randomBytes(2 * 40 * T);
    const e = encoder(data, 2);
    const stream = (layout: EsiLayout, tsi: number): { s: ChannelStream; a: SymbolAllocator } => {
      const a = SymbolAllocator.forEncoder(e, 'coded', layout);
      return { s: new ChannelStream({ tsi, objects: [{ toi: 1, encoder: e, allocator: a }], fdt: fdt() }), a };
    };
    const one = stream({ base: 0, stride: 2, sendsSourceSymbols: false }, 1);
    const two = stream({ base: 1, stride: 2, sendsSourceSymbols: false }, 2);
    const fromOne = takePackets(one.s, 60);
    const fromTwo = takePackets(two.s, 60);
    const data1 = fromOne.filter((p) => p.toi === 1n);
    const data2 = fromTwo.filter((p) => p.toi === 1n);
    const K = [e.sourceSymbols(0), e.sourceSymbols(1)];
    expect(data1.every((p) => p.esi >= K[p.sbn] && p.esi % 2 === 0)).toBe(true);
    expect(data2.every((p) => p.esi >= K[p.sbn] && p.esi % 2 === 1)).toBe(true);
    // Within a turn the ESIs step by the stride.
    expect(data1[1].esi - data1[0].esi).toBe(2);
    fromOne.forEach((p, i) => expect(one.s.lookup(i)).toEqual({ toi: Number(p.toi), sbn: p.sbn, esi: p.esi }));
    const fresh = one.s.freshPackets([1, 2, 3]).map((b) => {
      const r = decodeAlc(b);
      if (!r.ok) throw new Error(r.reason);
      return r.packet;
    });
    expect(fresh).toHaveLength(3);
    expect(fresh.every((p) => p.esi % 2 === 0 && p.sequence === undefined)).toBe(true);
    const sent1 = new Set(data1.map((p) => `${p.sbn}/${p.esi}`));
    expect(fresh.some((p) => sent1.has(`${p.sbn}/${p.esi}`))).toBe(false);
    // Repair symbols alone, from both: every block decodes (K + a few of each).
    const more = [...data1, ...data2, ...takePackets(one.s, 40), ...takePackets(two.s, 40)].filter((p) => p.toi === 1n);
    const keys = more.map((p) => `${p.sbn}/${p.esi}`);
    expect(new Set(keys).size).toBe(keys.length);
    const dec = new ObjectDecoder(e.oti);
    open.push(dec);
    for (const p of more) dec.push(codecPacket(p));
    expect(dec.complete).toBe(true);
    expect(Buffer.from(dec.result()).equals(data)).toBe(true);
  });
});
