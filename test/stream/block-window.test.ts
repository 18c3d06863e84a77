// The server's bounded memory: BlockCache (which blocks stay prepared) and
// ChannelStream's sliding window (which blocks a stream sends at a time).
import { randomBytes } from 'node:crypto';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { AlcPacket, decodeAlc } from '../../lib/protocol/alc';
import { BlockCache, PreparableSource } from '../../lib/content/block-cache';
import { wireOti } from '../../lib/content/catalogue';
import { BlockPins, ChannelStream, SymbolSource, windowFor } from '../../lib/stream/channel-stream';
import { fdtIntervalFor } from '../../lib/server/server';
import { SymbolAllocator } from '../../lib/content/symbol-allocator';
import { codecPacket, takePackets } from '../support/stream-packets';

const T = 64;
const open: { close(): void }[] = [];
afterAll(() => open.forEach((e) => e.close()));

function decode(p: Uint8Array): AlcPacket {
  const r = decodeAlc(p);
  if (!r.ok) throw new Error(`decodeAlc refused: ${r.reason}`);
  return r.packet;
}

/** Pins that record what is pinned; readiness decided by the test. */
class RecordingPins implements BlockPins {
  readonly pinned = new Map<string, number>();
  maxPinned = 0;
  notReady = new Set<string>();
  key(src: SymbolSource, sbn: number): string {
    return `${src === this.first ? 'a' : 'b'}:${sbn}`;
  }
  constructor(private readonly first: SymbolSource) {}
  pin(src: SymbolSource, sbn: number): void {
    const k = this.key(src, sbn);
    this.pinned.set(k, (this.pinned.get(k) ?? 0) + 1);
    this.maxPinned = Math.max(this.maxPinned, this.pinned.size);
  }
  unpin(src: SymbolSource, sbn: number): void {
    const k = this.key(src, sbn);
    const n = this.pinned.get(k);
    if (n === undefined) throw new Error(`unpin of ${k}, not pinned`);
    if (n === 1) this.pinned.delete(k);
    else this.pinned.set(k, n - 1);
  }
  ready(src: SymbolSource, sbn: number): boolean {
    return !this.notReady.has(this.key(src, sbn));
  }
}

function setup(blocks: number, windowBlocks: number, passOverhead = 0.25) {
  const data = randomBytes(blocks * 40 * T - 17);
  const encoder = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: blocks });
  const fdtEncoder = new ObjectEncoder(new TextEncoder().encode('<FDT-Instance/>'), { symbolSize: T });
  open.push(encoder, fdtEncoder);
  const pins = new RecordingPins(encoder);
  const stream = new ChannelStream({
    tsi: 1,
    objects: [{ toi: 1, encoder, allocator: SymbolAllocator.forEncoder(encoder) }],
    fdt: { instanceId: 1, encoder: fdtEncoder, allocator: SymbolAllocator.forEncoder(fdtEncoder), oti: wireOti(fdtEncoder.otiInfo) },
    windowBlocks,
    passOverhead,
    pins,
  });
  return { data, encoder, stream, pins };
}

describe('ChannelStream sliding window', () => {
  test('W blocks at a time, each gets ceil(K(1+overhead)) packets per pass, W+1 pinned at most, every block decodes', () => {
    const { data, encoder, stream, pins } = setup(6, 2);
    expect(stream.sliding).toBe(true);
    expect(stream.windowBlocks).toBe(2);
    const quotas = [0, 1, 2, 3, 4, 5].map((sbn) => Math.ceil(encoder.sourceSymbols(sbn) * 1.25));
    const total = quotas.reduce((a, b) => a + b, 0);
    // Two full passes (plus FDT packets, 1 in 32).
    const packets = takePackets(stream, Math.ceil(((2 * total) * 32) / 31) + 64);
    const data1 = packets.filter((p) => p.toi === 1n);
    // A block's packets come in one run per pass (it is out of the window
    // in between); the first run of each block is exactly its quota.
    const runs = new Map<number, number[]>();
    const lastAt = new Map<number, number>();
    for (let i = 0; i < data1.length; i++) {
      const sbn = data1[i].sbn;
      const r = runs.get(sbn) ?? [];
      const prev = lastAt.get(sbn);
      if (prev === undefined || i - prev > 16) r.push(0);
      r[r.length - 1]++;
      runs.set(sbn, r);
      lastAt.set(sbn, i);
      // At most W blocks at once (W + 1 across the moment one replaces another).
      const recent = new Set(data1.slice(Math.max(0, i - 7), i + 1).map((p) => p.sbn));
      expect(recent.size).toBeLessThanOrEqual(3);
    }
    for (let sbn = 0; sbn < 6; sbn++) {
      expect(runs.get(sbn)![0]).toBe(quotas[sbn]);
      expect(runs.get(sbn)!.length).toBeGreaterThanOrEqual(2);
    }
    expect(pins.maxPinned).toBe(3);
    expect(stream.counters.windowStalls).toBe(0);
    expect(stream.counters.windowAdvances).toBeGreaterThanOrEqual(6);
    // The first pass alone (ESIs below the quota) decodes every block: the quota exceeds K.
    const dec = new ObjectDecoder(encoder.oti);
    open.push(dec);
    for (const p of data1) if (p.esi < quotas[p.sbn]) dec.push(codecPacket(p));
    expect(dec.complete).toBe(true);
    expect(Buffer.from(dec.result()).equals(data)).toBe(true);
    stream.close();
    expect(pins.pinned.size).toBe(0);
  });

  test('a block waits in the window past its quota while the next one is not prepared; no packet of an unready block is sent', () => {
    const { encoder, stream, pins } = setup(4, 1, 0);
    pins.notReady.add('a:1');
    const K0 = encoder.sourceSymbols(0);
    const first = takePackets(stream, 3 * K0).filter((p) => p.toi === 1n);
    expect(first.every((p) => p.sbn === 0)).toBe(true);
    expect(first.length).toBeGreaterThan(K0);
    expect(stream.counters.windowStalls).toBeGreaterThan(0);
    pins.notReady.delete('a:1');
    const next = takePackets(stream, 64).filter((p) => p.toi === 1n);
    expect(next.some((p) => p.sbn === 1)).toBe(true);
  });

  test('ACK replacements only for blocks still prepared', () => {
    const { encoder, stream, pins } = setup(4, 1, 0);
    const seqs: number[] = [];
    const K0 = encoder.sourceSymbols(0);
    stream.fill(K0 + 40, (buf, size, count) => {
      for (let i = 0; i < count; i++) {
        const p = decode(buf.subarray(i * size, (i + 1) * size));
        if (p.toi === 1n && p.sbn === 0) seqs.push(p.sequence!);
      }
      return count;
    });
    expect(stream.freshPackets([seqs[3]]).length).toBe(1);
    pins.notReady.add('a:0'); // block 0 left the window and was released
    expect(stream.freshPackets([seqs[4]]).length).toBe(0);
    expect(stream.counters.freshSkipped).toBe(1);
  });

  test('W >= blocks: plain round-robin over everything, no window movement', () => {
    const { stream, pins } = setup(3, 5);
    expect(stream.sliding).toBe(false);
    takePackets(stream, 500);
    expect(stream.counters.windowAdvances).toBe(0);
    expect(pins.pinned.size).toBe(3);
  });
});

describe('fdtIntervalFor', () => {
  test('an FDT packet per 10 ms of the rate, the whole FDT within 1 s, never more than 1 in 32', () => {
    const pps200 = 200e6 / 8 / 1308; // 19113 packets/s
    expect(fdtIntervalFor(pps200, 1)).toBe(191);
    expect(fdtIntervalFor(pps200, 160)).toBe(119); // 160 symbols in 1 s
    expect(fdtIntervalFor(955, 1)).toBe(32); // 10 Mbit/s
    expect(fdtIntervalFor(955, 500)).toBe(32);
    expect(fdtIntervalFor(1e6, 1)).toBe(10000);
  });
});

describe('windowFor', () => {
  test('everything when it fits, else what fits beside the block prepared ahead', () => {
    expect(windowFor([10, 10, 10], 30)).toBe(3);
    expect(windowFor([10, 10, 10, 10, 10], 40)).toBe(2);
    expect(windowFor([10, 10, 10, 10], 5)).toBe(1);
    expect(windowFor([10, 20, 10, 10], 45)).toBe(1);
    expect(windowFor([10, 20, 10, 10, 10, 10, 10, 10], 80)).toBe(2);
    expect(windowFor([100], 5)).toBe(1);
  });
});

/** A source whose preparations the test completes by hand. */
class ManualSource implements PreparableSource {
  readonly waiting = new Map<number, { resolve(): void; reject(e: Error): void }>();
  readonly released: number[] = [];
  prepareBlockAsync(sbn: number): Promise<void> {
    return new Promise((resolve, reject) => this.waiting.set(sbn, { resolve, reject }));
  }
  finish(sbn: number): void {
    this.waiting.get(sbn)!.resolve();
    this.waiting.delete(sbn);
  }
  releaseBlock(sbn: number): void {
    this.released.push(sbn);
  }
  blockMemory(): number {
    return 100;
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('BlockCache', () => {
  test('preparations start while they fit the budget (one always runs); unpinned blocks are released oldest first to make room', async () => {
    const src = new ManualSource();
    const ready: number[] = [];
    // Blocks of 100 bytes, 200 while being prepared.
    const cache = new BlockCache({ budgetBytes: 450, onReady: (_s, sbn) => ready.push(sbn) });
    for (const sbn of [0, 1, 2, 3]) cache.pin(src, sbn);
    cache.pin(src, 0); // twice: one preparation
    const all = cache.whenPinnedReady();
    expect([...src.waiting.keys()]).toEqual([0, 1]); // 400; a third would make 600
    expect(cache.ready(src, 0)).toBe(false);
    src.finish(0);
    await tick();
    expect([...src.waiting.keys()]).toEqual([1]); // 300 + 200 > 450: block 2 waits
    src.finish(1);
    await tick();
    expect([...src.waiting.keys()]).toEqual([2]); // 200 + 200
    src.finish(2);
    await tick();
    expect([...src.waiting.keys()]).toEqual([3]); // 300 + 200 > 450, but nothing else runs
    src.finish(3);
    await all;
    expect(ready).toEqual([0, 1, 2, 3]);
    expect(cache.stats).toMatchObject({ preparedBlocks: 4, preparedBytes: 400, preparedBytesPeak: 500, prepares: 4 });
    // Pinned blocks stay; unpinned ones stay while they fit.
    cache.unpin(src, 0);
    cache.unpin(src, 0);
    cache.unpin(src, 2);
    cache.unpin(src, 1);
    expect(src.released).toEqual([]);
    // A new block needs 200: the least recently unpinned go first (0, then 2).
    cache.pin(src, 4);
    expect(src.released).toEqual([0, 2]);
    expect([...src.waiting.keys()]).toEqual([4]);
    expect(cache.ready(src, 1)).toBe(true);
    // Pinning a kept block again needs no preparation.
    cache.pin(src, 1);
    expect([...src.waiting.keys()]).toEqual([4]);
    expect(() => cache.unpin(src, 7)).toThrow(RangeError);
  });

  test('a block unpinned while it waits for room is not prepared', async () => {
    const src = new ManualSource();
    const cache = new BlockCache({ budgetBytes: 200 });
    cache.pin(src, 0);
    cache.pin(src, 1);
    expect([...src.waiting.keys()]).toEqual([0]);
    cache.unpin(src, 1);
    src.finish(0);
    await tick();
    expect(src.waiting.size).toBe(0);
    expect(cache.stats.prepares).toBe(1);
  });

  test('beforePrepare runs before each preparation; its rejection is that preparation\'s failure and nothing is read (a file changed since announced)', async () => {
    const src = new ManualSource();
    const errors: unknown[] = [];
    let allowed = true;
    const checked: number[] = [];
    const cache = new BlockCache({
      budgetBytes: 1000,
      onError: (e) => errors.push(e),
      beforePrepare: async (_s, sbn) => {
        checked.push(sbn);
        if (!allowed) throw new Error('changed');
      },
    });
    cache.pin(src, 0);
    await tick();
    expect([...src.waiting.keys()]).toEqual([0]);
    src.finish(0);
    await tick();
    allowed = false;
    cache.pin(src, 1);
    await tick();
    await tick();
    expect(checked).toEqual([0, 1]);
    expect(src.waiting.size).toBe(0);
    expect(errors.map((e) => (e as Error).message)).toEqual(['changed']);
    expect(cache.stats.prepareErrors).toBe(1);
    expect(cache.ready(src, 1)).toBe(false);
  });

  test('a failed preparation is reported and the block can be pinned again', async () => {
    const src = new ManualSource();
    const errors: number[] = [];
    const cache = new BlockCache({ budgetBytes: 1000, onError: (_e, _s, sbn) => errors.push(sbn) });
    cache.pin(src, 5);
    const w = cache.whenPinnedReady();
    src.waiting.get(5)!.reject(new Error('EIO'));
    await expect(w).rejects.toThrow('EIO');
    await tick();
    expect(errors).toEqual([5]);
    expect(cache.stats.prepareErrors).toBe(1);
    expect(cache.ready(src, 5)).toBe(false);
  });

  test('a block unpinned before its preparation finishes counts as prepared and obeys the budget', async () => {
    const src = new ManualSource();
    const cache = new BlockCache({ budgetBytes: 0 });
    cache.pin(src, 0);
    cache.unpin(src, 0);
    src.finish(0);
    await tick();
    expect(src.released).toEqual([0]);
    expect(cache.stats.preparedBytes).toBe(0);
  });
});
