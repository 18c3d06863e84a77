import { randomBytes } from 'crypto';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { BlockSink, ObjectReceiver } from '../../lib/client/object-receiver';
import { PartialBlockBudget } from '../../lib/client/block-budget';
import { encodeAlc, newAlcScan, scanAlcData, type AlcPacket } from '../../lib/protocol/alc';
import { alcPacket, feedLikeAStream, lossyPackets, prng, wireOti } from './support';

class MemorySink implements BlockSink {
  readonly out: Buffer;
  readonly written: number[] = [];
  constructor(length: number) {
    this.out = Buffer.alloc(length);
  }
  async writeBlock(sbn: number, offset: number, data: Uint8Array): Promise<void> {
    this.written.push(sbn);
    this.out.set(data, offset);
  }
}


/** A sink that also records write-through (prewrite) calls. */
class PrewriteSink extends MemorySink {
  readonly pre: Buffer;
  readonly preCalls: { offset: number; length: number }[] = [];
  constructor(length: number) {
    super(length);
    this.pre = Buffer.alloc(length);
  }
  /** Only the symbols: the rest of a write with `symbols` is filler for lost ones. */
  prewrite(offset: number, data: Uint8Array, symbols?: readonly { offset: number; length: number }[]): void {
    for (const r of symbols ?? [{ offset, length: data.length }]) {
      this.preCalls.push({ offset: r.offset, length: r.length });
      this.pre.set(data.subarray(r.offset - offset, r.offset - offset + r.length), r.offset);
    }
  }
}

describe('ObjectReceiver write-through of source symbols', () => {
  test.each([
    ['G = 1', 1],
    ['G = 3', 3],
  ])('source symbols are written at their object offsets before their blocks decode, in runs; repair symbols never (%s)', async (_l, perPacket) => {
    const data = randomBytes(100_003);
    const T = 128;
    const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 3 });
    const sink = new PrewriteSink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    const packets = lossyPackets(enc, prng(11), { loss: 0.1, dup: 0, perPacket });
    await feedLikeAStream(rx, enc, packets, 97, { perPacket });
    expect(sink.out.equals(data)).toBe(true);
    expect(sink.preCalls.length).toBeGreaterThan(0);
    // Every prewritten byte is the object's byte there; nothing past its end.
    let covered = 0;
    for (const c of sink.preCalls) {
      expect(c.offset + c.length).toBeLessThanOrEqual(data.length);
      expect(sink.pre.subarray(c.offset, c.offset + c.length).equals(data.subarray(c.offset, c.offset + c.length))).toBe(true);
      covered += c.length;
    }
    // Runs of consecutive ESIs, at most a 1 MiB slab each; losses break runs.
    expect(Math.max(...sink.preCalls.map((c) => c.length))).toBeLessThanOrEqual(1024 * 1024);
    expect(Math.max(...sink.preCalls.map((c) => c.length))).toBeGreaterThan(T);
    expect(sink.preCalls.length).toBeLessThan(packets.length * perPacket);
    // Symbols gathered when a block decodes are left to its block write.
    expect(covered).toBeLessThan(data.length);
    enc.close();
  });

  test('no write-through for an object with sub-blocks (N > 1): ESIs do not map to one byte range', async () => {
    const data = randomBytes(30_000);
    const enc = new ObjectEncoder(data, { symbolSize: 128, sourceBlocks: 2, subBlocks: 2 });
    const sink = new PrewriteSink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    await feedLikeAStream(rx, enc, lossyPackets(enc, prng(5)));
    expect(sink.out.equals(data)).toBe(true);
    expect(sink.preCalls).toEqual([]);
    enc.close();
  });
});

/**
 * A sink that behaves like a file: prewrites land a turn later (resolving
 * true), block writes skip the ranges said to be in place; every byte
 * handed to the "file" is counted.
 */
class FileLikeSink implements BlockSink {
  readonly file: Buffer;
  /** Bytes of the object handed to the "file": symbols written through and block writes. */
  bytesToFile = 0;
  /** Filler written through in the place of lost symbols (the block writes replace it). */
  fillerBytes = 0;
  blocks = 0;
  constructor(length: number) {
    this.file = Buffer.alloc(length);
  }
  prewrite(offset: number, data: Uint8Array, symbols?: readonly { offset: number; length: number }[]): Promise<boolean> {
    const copy = Buffer.from(data);
    const real = (symbols ?? [{ offset, length: data.length }]).reduce((a, r) => a + r.length, 0);
    return new Promise((resolve) =>
      setImmediate(() => {
        this.file.set(copy, offset);
        this.bytesToFile += real;
        this.fillerBytes += copy.length - real;
        resolve(true);
      }),
    );
  }
  async writeBlock(_sbn: number, offset: number, data: Uint8Array, inPlace: readonly { offset: number; length: number }[] = []): Promise<void> {
    this.blocks++;
    let at = offset;
    for (const r of [...inPlace, { offset: offset + data.length, length: 0 }]) {
      if (r.offset > at) {
        this.file.set(data.subarray(at - offset, r.offset - offset), at);
        this.bytesToFile += r.offset - at;
      }
      at = Math.max(at, r.offset + r.length);
    }
  }
}

describe('ObjectReceiver writes each byte once', () => {
  test.each([
    ['G = 1', 1],
    ['G = 3', 3],
  ])('10%% loss, duplicates: the object\'s bytes handed to the file are the object, each byte once; filler only where symbols were lost (%s)', async (_l, perPacket) => {
    const data = randomBytes(200_003);
    const enc = new ObjectEncoder(data, { symbolSize: 128, sourceBlocks: 3 });
    const sink = new FileLikeSink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    await feedLikeAStream(rx, enc, lossyPackets(enc, prng(21), { loss: 0.1, dup: 0.05, perPacket }), 97, { perPacket });
    expect(sink.blocks).toBe(3);
    expect(sink.file.equals(data)).toBe(true);
    expect(sink.bytesToFile).toBe(data.length);
    enc.close();
  });

  test('in order with 10% loss (what a stream sends): few writes, each byte of the object once, filler no more than the source symbols lost', async () => {
    const T = 1024;
    const data = randomBytes(4_000_000);
    const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 2 });
    const calls: number[] = [];
    const sink = new FileLikeSink(data.length);
    const prewrite = sink.prewrite.bind(sink);
    sink.prewrite = (offset, bytes, symbols) => {
      calls.push(bytes.length);
      return prewrite(offset, bytes, symbols);
    };
    const rx = new ObjectReceiver(wireOti(enc), sink);
    const packets = lossyPackets(enc, prng(4), { loss: 0.1, dup: 0 }).sort((a, b) => a.sbn - b.sbn || a.esi - b.esi);
    let lost = 0;
    for (let sbn = 0; sbn < 2; sbn++) {
      const held = new Set(packets.filter((p) => p.sbn === sbn && p.esi < enc.sourceSymbols(sbn)).map((p) => p.esi));
      lost += enc.sourceSymbols(sbn) - held.size;
    }
    await feedLikeAStream(rx, enc, packets, 97);
    expect(sink.file.equals(data)).toBe(true);
    expect(sink.bytesToFile).toBe(data.length);
    expect(sink.fillerBytes).toBeGreaterThan(0);
    expect(sink.fillerBytes).toBeLessThanOrEqual(lost * T);
    // 3907 source symbols, a tenth lost: one write per 1 MiB slab (1024 symbols) at most, not one per loss.
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.length).toBeLessThanOrEqual(4);
    enc.close();
  });

  test('a forged source symbol taken while its block is being solved is written over by the decoded block', async () => {
    const T = 64;
    const data = randomBytes(40 * T);
    const enc = new ObjectEncoder(data, { symbolSize: T });
    const sink = new FileLikeSink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    // Source ESIs 10 and 20 lost, four repair symbols instead: the solve regenerates 10 and 20.
    for (let esi = 0; esi < 40; esi++) if (esi !== 10 && esi !== 20) rx.add(alcPacket(enc, 0, esi));
    for (let esi = 40; esi < 44; esi++) rx.add(alcPacket(enc, 0, esi));
    rx.commitAll(); // the block holds K + 2: its solve starts
    const forged = (esi: number): AlcPacket => {
      const p = alcPacket(enc, 0, esi);
      p.payload.fill(0xee);
      return p;
    };
    // Taken while the block is solved (deferred), and written through: ESI 20's run is written when 10, behind it, breaks it.
    rx.add(forged(20));
    rx.add(forged(10));
    await rx.done;
    expect(sink.file.equals(data)).toBe(true);
    enc.close();
  });
});

describe('ObjectReceiver', () => {
  test.each([
    ['async solve', true],
    ['sync solve', false],
  ])('multi-block object, out of order, 10%% loss, duplicates (%s)', async (_label, solveAsync) => {
    const data = randomBytes(150_001);
    const enc = new ObjectEncoder(data, { symbolSize: 256, sourceBlocks: 3 });
    const sink = new MemorySink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink, { solveAsync });
    expect(rx.neededSymbols).toBe(Math.ceil(data.length / 256));
    const packets = lossyPackets(enc, prng(7));
    // Several bursts, so blocks decode across batches.
    const fed = await feedLikeAStream(rx, enc, packets);
    expect(rx.complete).toBe(true);
    expect(sink.out.equals(data)).toBe(true);
    expect([...sink.written].sort()).toEqual([0, 1, 2]);
    expect(rx.heldSymbols).toBe(rx.neededSymbols);
    expect(rx.stats.blocksDone).toBe(3);
    expect(rx.stats.symbolsUsed).toBeGreaterThanOrEqual(rx.neededSymbols);
    expect(rx.stats.symbolsReceived).toBeGreaterThanOrEqual(rx.stats.symbolsUsed);
    // Every packet fed is taken, late, surplus or a repeated source symbol (lossyPackets duplicates 5 %).
    expect(rx.stats.symbolsDuplicate).toBeGreaterThan(0);
    expect(rx.stats.symbolsReceived + rx.stats.symbolsLate + rx.stats.symbolsSurplus + rx.stats.symbolsDuplicate).toBe(fed);
    expect(rx.stats.batches).toBeGreaterThan(1);
    expect(rx.stats.batches).toBeLessThan(fed / 10);
    enc.close();
  });

  test('several symbols per ALC packet (G = 4)', async () => {
    const data = randomBytes(40_000);
    const enc = new ObjectEncoder(data, { symbolSize: 128, sourceBlocks: 2 });
    const sink = new MemorySink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    await feedLikeAStream(rx, enc, lossyPackets(enc, prng(3), { perPacket: 4 }), 97, { perPacket: 4 });
    expect(sink.out.equals(data)).toBe(true);
    enc.close();
  });

  test('a block takes K + margin symbols; the rest is surplus, never copied into the decoder', async () => {
    const data = randomBytes(2000);
    const enc = new ObjectEncoder(data, { symbolSize: 100 });
    const sink = new MemorySink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink, { margin: 2 });
    // Repair symbols only, all in one burst.
    for (let esi = 20; esi < 60; esi++) rx.add(alcPacket(enc, 0, esi));
    expect(rx.stats.symbolsReceived).toBe(22);
    expect(rx.stats.symbolsSurplus).toBe(18);
    await rx.done;
    expect(sink.out.equals(data)).toBe(true);
    expect(rx.stats.symbolsUsed).toBe(22);
    enc.close();
  });

  test('one lane or many: same bytes', async () => {
    const data = randomBytes(60_000);
    const enc = new ObjectEncoder(data, { symbolSize: 128, sourceBlocks: 5 });
    for (const lanes of [1, 2, 5]) {
      const sink = new MemorySink(data.length);
      const rx = new ObjectReceiver(wireOti(enc), sink, { lanes });
      await feedLikeAStream(rx, enc, lossyPackets(enc, prng(lanes)));
      expect(sink.out.equals(data)).toBe(true);
      expect([...sink.written].sort()).toEqual([0, 1, 2, 3, 4]);
    }
    enc.close();
  });

  test('symbols that arrive while their block is being solved are late once it decodes; the object still completes', async () => {
    // Every block fills up at once (a round-robin stream): each lane gets a
    // batch that decodes its block, and more symbols of the same blocks wait
    // meanwhile. Whichever lane returns last completes the object and closes
    // the decoders; the waiting symbols must never reach a closed decoder.
    for (let round = 0; round < 20; round++) {
      const data = randomBytes(24_000);
      const enc = new ObjectEncoder(data, { symbolSize: 64, sourceBlocks: 3 });
      // Writes that take a while, as a file's do: completion waits for them.
      const sink = new MemorySink(data.length);
      const slow: BlockSink = {
        writeBlock: async (sbn, offset, bytes) => {
          await new Promise((r) => setTimeout(r, 5));
          await sink.writeBlock(sbn, offset, bytes);
        },
      };
      const rx = new ObjectReceiver(wireOti(enc), slow, { lanes: 3, margin: 8 });
      const K = [0, 1, 2].map((sbn) => enc.sourceSymbols(sbn));
      for (let sbn = 0; sbn < 3; sbn++) for (let esi = 0; esi < K[sbn]; esi++) rx.add(alcPacket(enc, sbn, esi));
      await new Promise((r) => setImmediate(r));
      for (let sbn = 0; sbn < 3; sbn++) for (let esi = K[sbn]; esi < K[sbn] + 4; esi++) rx.add(alcPacket(enc, sbn, esi));
      await rx.done;
      expect(sink.out.equals(data)).toBe(true);
      expect(rx.stats.symbolsReceived + rx.stats.symbolsLate).toBe(K[0] + K[1] + K[2] + 12);
      enc.close();
    }
  });

  test('1-byte object', async () => {
    const data = Buffer.from([0xa5]);
    const enc = new ObjectEncoder(data, { symbolSize: 16 });
    const sink = new MemorySink(1);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    // Only a repair symbol: the source symbol is lost.
    rx.add(alcPacket(enc, 0, 1));
    rx.add(alcPacket(enc, 0, 2));
    rx.add(alcPacket(enc, 0, 3));
    await rx.done;
    expect([...sink.out]).toEqual([0xa5]);
    enc.close();
  });

  test('symbols for a finished block are counted, not decoded', async () => {
    const data = randomBytes(2000);
    const enc = new ObjectEncoder(data, { symbolSize: 100 });
    const sink = new MemorySink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    for (let esi = 0; esi < 20; esi++) rx.add(alcPacket(enc, 0, esi));
    await rx.done;
    rx.add(alcPacket(enc, 0, 50));
    expect(rx.stats.symbolsLate).toBe(1);
    expect(sink.written).toEqual([0]);
    enc.close();
  });

  test('resumed blocks (the sink holds them) are done without symbols: their symbols are late, only the others are decoded and written', async () => {
    const data = randomBytes(150_001);
    const enc = new ObjectEncoder(data, { symbolSize: 256, sourceBlocks: 3 });
    const sink = new MemorySink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    const K = [0, 1, 2].map((sbn) => enc.layout.sourceSymbols(sbn));
    // Some symbols of block 2 arrive before the sink says it holds it: they are dropped with the block.
    for (let esi = 0; esi < 40; esi++) rx.add(alcPacket(enc, 2, esi));
    rx.commitAll();
    expect(rx.resumeBlocks([0, 2, 2, 7, -1])).toBe(2);
    expect(rx.resumeBlocks([0])).toBe(0);
    expect(rx.stats).toMatchObject({ blocksResumed: 2, symbolsResumed: K[0] + K[2], blocksDone: 2 });
    expect(rx.nativeHeldBytes()).toBe(0);
    const fed = await feedLikeAStream(rx, enc, lossyPackets(enc, prng(5), { loss: 0, dup: 0 }));
    await rx.done;
    expect(sink.written).toEqual([1]);
    expect(sink.out.subarray(enc.layout.blockOffset(1), enc.layout.blockOffset(2)).equals(data.subarray(enc.layout.blockOffset(1), enc.layout.blockOffset(2)))).toBe(true);
    // Only block 1's symbols were taken (K + margin at most); every other one was late.
    expect(rx.stats.symbolsReceived - 40).toBeLessThanOrEqual(K[1] + 8);
    expect(rx.stats.symbolsLate).toBeGreaterThan(fed / 2);
    expect(rx.heldSymbols).toBe(rx.neededSymbols);
    enc.close();
  });

  test('every block resumed: done at once, nothing written', async () => {
    const data = randomBytes(9_000);
    const enc = new ObjectEncoder(data, { symbolSize: 100, sourceBlocks: 2 });
    const sink = new MemorySink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    expect(rx.resumeBlocks([1, 0])).toBe(2);
    await rx.decoded;
    await rx.done;
    expect(rx.complete).toBe(true);
    expect(sink.written).toEqual([]);
    rx.add(alcPacket(enc, 0, 3));
    expect(rx.stats.symbolsLate).toBe(1);
    expect(rx.stats.symbolsReceived).toBe(0);
    enc.close();
  });

  test('source bytes the sink kept (addKeptSource) count as symbols of their block, not as received; the rest comes from the stream', async () => {
    const data = randomBytes(100_050);
    const T = 256;
    const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 2 });
    const sink = new PrewriteSink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    const L = enc.layout;
    const K1 = L.sourceSymbols(1);
    // Block 1: its first 30 symbols and its last one (short: the object ends inside it, zero-padded for the decoder).
    const lastEsi = K1 - 1;
    const lastAt = L.blockOffset(1) + lastEsi * T;
    expect(rx.addKeptSource(L.blockOffset(1), data.subarray(L.blockOffset(1), L.blockOffset(1) + 30 * T))).toBe(30);
    expect(rx.addKeptSource(lastAt, data.subarray(lastAt))).toBe(1);
    expect(data.length - lastAt).toBeLessThan(T);
    // Not on a symbol boundary, or past its block: ignored.
    expect(rx.addKeptSource(L.blockOffset(1) + 1, data.subarray(L.blockOffset(1) + 1, L.blockOffset(1) + 1 + T))).toBe(0);
    expect(rx.addKeptSource(L.blockOffset(1) - T, data.subarray(L.blockOffset(1) - T, L.blockOffset(1) + T))).toBe(0);
    expect(rx.stats.symbolsReplayed).toBe(31);
    expect(rx.stats.symbolsReceived).toBe(0);
    // Replayed symbols are not written through again.
    expect(sink.preCalls).toEqual([]);
    // The stream: block 0 whole, block 1 only K1 - 31 symbols, repair ones (ESI >= K).
    for (let esi = 0; esi < L.sourceSymbols(0); esi++) rx.add(alcPacket(enc, 0, esi));
    for (let i = 0; i < K1 - 31 + 2; i++) rx.add(alcPacket(enc, 1, K1 + i));
    await rx.done;
    expect(sink.out.equals(data)).toBe(true);
    expect(rx.stats.symbolsReceived).toBe(L.sourceSymbols(0) + K1 - 31 + 2);
    enc.close();
  });

  test('malformed packets are rejected and counted; decoding still completes', async () => {
    const data = randomBytes(3000);
    const enc = new ObjectEncoder(data, { symbolSize: 100 });
    const other = new ObjectEncoder(randomBytes(3000), { symbolSize: 60 });
    const sink = new MemorySink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink);
    rx.add(alcPacket(other, 0, 0)); // 60-byte symbol for a T = 100 object
    rx.add({ ...alcPacket(enc, 0, 0), sbn: 9 }); // SBN out of range
    expect(rx.stats.rejected).toBe(2);
    for (let esi = 0; esi < 40; esi++) rx.add(alcPacket(enc, 0, esi));
    await rx.done;
    expect(sink.out.equals(data)).toBe(true);
    enc.close();
    other.close();
  });

  test('a full backlog drops symbols (bounded memory)', async () => {
    const data = randomBytes(10_000);
    const enc = new ObjectEncoder(data, { symbolSize: 100 });
    const rx = new ObjectReceiver(wireOti(enc), new MemorySink(data.length), { maxPendingSymbols: 10 });
    for (let esi = 0; esi < 30; esi++) rx.add(alcPacket(enc, 0, esi));
    expect(rx.stats.symbolsDropped).toBe(20);
    expect(rx.stats.symbolsReceived).toBe(10);
    rx.close();
    await expect(rx.done).rejects.toThrow(/closed/);
    enc.close();
  });

  test('a failing sink rejects done', async () => {
    const data = randomBytes(1000);
    const enc = new ObjectEncoder(data, { symbolSize: 100 });
    const rx = new ObjectReceiver(wireOti(enc), { writeBlock: () => Promise.reject(new Error('disk full')) });
    for (let esi = 0; esi < 15; esi++) rx.add(alcPacket(enc, 0, esi));
    await expect(rx.done).rejects.toThrow('disk full');
    enc.close();
  });
});

/**
 * A server's stream of one object, in its block order, forever: symbols
 * with fresh ESIs, each lost with probability `loss`.
 */
function* stream(enc: ObjectEncoder, order: 'round-robin' | { window: number; overhead: number; startAt: number }, loss: number, rand: () => number) {
  const Z = enc.sourceBlocks;
  const esi = new Array<number>(Z).fill(0);
  const send = function* (sbn: number) {
    const e = esi[sbn]++;
    if (rand() >= loss) yield alcPacket(enc, sbn, e);
  };
  if (order === 'round-robin') {
    for (;;) for (let sbn = 0; sbn < Z; sbn++) yield* send(sbn);
  }
  // A sliding window: `window` blocks interleaved, each getting
  // K(1 + overhead) symbols, then the next ones; passes repeat. The receiver
  // joins `startAt` symbols into the first pass.
  let skip = order.startAt;
  for (;;) {
    for (let first = 0; first < Z; first += order.window) {
      const blocks = [];
      for (let b = first; b < Math.min(Z, first + order.window); b++) blocks.push(b);
      const turn = Math.ceil(enc.sourceSymbols(first) * (1 + order.overhead));
      for (let i = 0; i < turn; i++) {
        for (const b of blocks) {
          if (skip > 0) {
            skip--;
            esi[b]++;
            continue;
          }
          yield* send(b);
        }
      }
    }
  }
}

describe('ObjectReceiver within a memory budget of two blocks', () => {
  test.each([
    ['round-robin, 10% loss', 'round-robin' as const, 0.1],
    ['round-robin, 50% loss', 'round-robin' as const, 0.5],
    ['sliding window of 1, loss above the overhead', { window: 1, overhead: 0.05, startAt: 500 }, 0.1],
    ['sliding window of 2, joined mid-pass', { window: 2, overhead: 0.1, startAt: 1001 }, 0.02],
    ['sliding window of 3, 30% loss', { window: 3, overhead: 0.2, startAt: 77 }, 0.3],
  ])('%s: completes bit-exact; reserved and native bytes stay within the budget', async (_label, order, loss) => {
    const data = randomBytes(8 * 320 * 64 - 1000);
    const enc = new ObjectEncoder(data, { symbolSize: 64, sourceBlocks: 8 });
    const sink = new MemorySink(data.length);
    // A budget of 0 is raised to the least allowed: two of the largest blocks.
    const budget = new PartialBlockBudget(0);
    const rx = new ObjectReceiver(wireOti(enc), sink, { budget, lanes: 2 });
    expect(rx.budgetRaised).toBe(true);
    expect(budget.limitBytes).toBe(2 * Math.max(...[...Array(8).keys()].map((sbn) => rx.blockCost(sbn))));
    const packets = stream(enc, order, loss, prng(11));
    let fed = 0;
    while (!rx.complete && fed < 2_000_000) {
      for (let i = 0; i < 64; i++) {
        rx.add(packets.next().value as AlcPacket);
        fed++;
      }
      expect(budget.usedBytes).toBeLessThanOrEqual(budget.limitBytes);
      expect(budget.blocks).toBeLessThanOrEqual(2);
      // The model is an upper bound of what the decoders really hold.
      expect(rx.nativeHeldBytes()).toBeLessThanOrEqual(budget.usedBytes);
      await new Promise((r) => setImmediate(r));
    }
    await rx.done;
    expect(sink.out.equals(data)).toBe(true);
    expect(budget.stats.peakBytes).toBeLessThanOrEqual(budget.limitBytes);
    expect(budget.stats.peakBytes).toBeGreaterThan(budget.limitBytes / 2);
    expect(rx.stats.symbolsOverBudget).toBeGreaterThan(0);
    expect(budget.stats.symbolsDropped).toBe(rx.stats.symbolsOverBudget);
    expect(budget.usedBytes).toBe(0);
    enc.close();
  });

  test('solves are reserved per lane, not per block: a budget of 4 blocks received + 1 solve holds 4 blocks with one lane', async () => {
    const data = randomBytes(8 * 320 * 64);
    const enc = new ObjectEncoder(data, { symbolSize: 64, sourceBlocks: 8 });
    const sink = new MemorySink(data.length);
    const probe = new ObjectReceiver(wireOti(enc), new MemorySink(data.length), { lanes: 1 });
    const receive = Math.max(...[...Array(8).keys()].map((sbn) => probe.receiveCost(sbn)));
    probe.close();
    const budget = new PartialBlockBudget(4 * receive + probe.solveBytes);
    const rx = new ObjectReceiver(wireOti(enc), sink, { budget, lanes: 1 });
    expect(rx.budgetRaised).toBe(false);
    const packets = stream(enc, 'round-robin', 0.1, prng(4));
    let most = 0;
    while (!rx.complete) {
      for (let i = 0; i < 64; i++) rx.add(packets.next().value as AlcPacket);
      most = Math.max(most, budget.blocks);
      expect(budget.usedBytes).toBeLessThanOrEqual(budget.limitBytes);
      expect(rx.nativeHeldBytes()).toBeLessThanOrEqual(budget.usedBytes);
      await new Promise((r) => setImmediate(r));
    }
    await rx.done;
    expect(sink.out.equals(data)).toBe(true);
    // Four blocks at once; reserving a solve for each would have allowed fewer.
    expect(most).toBe(4);
    expect(4 * rx.blockCost(0)).toBeGreaterThan(budget.limitBytes);
    expect(budget.usedBytes).toBe(0);
    enc.close();
  });

  test('a block admitted at the tail of its turn is evicted for the next one; the anchor never is', async () => {
    // Window of 2: blocks 1 and 2 interleaved; block 1 decodes as the
    // turn ends, and the last symbols of block 2 start it with a few
    // symbols. When blocks 3 and 4 come, block 2 is small and stale.
    const data = randomBytes(6 * 300 * 64);
    const enc = new ObjectEncoder(data, { symbolSize: 64, sourceBlocks: 6 });
    const sink = new MemorySink(data.length);
    const budget = new PartialBlockBudget(0);
    const rx = new ObjectReceiver(wireOti(enc), sink, { budget, lanes: 1 });
    const K = enc.sourceSymbols(0);
    const evicted: number[] = [];
    const evict = rx.evict.bind(rx);
    rx.evict = (sbn: number) => {
      evicted.push(sbn);
      evict(sbn);
    };
    // The receiver joins at the end of block 0's turn: block 0 is the anchor.
    for (let esi = 0; esi < 5; esi++) rx.add(alcPacket(enc, 0, 1000 + esi));
    for (let i = 0; i < K + 2; i++) {
      rx.add(alcPacket(enc, 1, i));
      rx.add(alcPacket(enc, 2, i));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    // Block 1 decodes (off the JS thread) while the turn's last symbols of block 2 arrive.
    for (let i = 0; i < 200 && !sink.written.includes(1); i++) await new Promise((r) => setTimeout(r, 5));
    expect(sink.written).toEqual([1]);
    for (let i = K + 2; i < K + 12; i++) rx.add(alcPacket(enc, 2, i));
    expect(rx.symbolsHeld(2)).toBe(10);
    for (let i = 0; i < 2 * K && !rx.complete; i++) {
      rx.add(alcPacket(enc, 3, i));
      rx.add(alcPacket(enc, 4, i));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(evicted).toEqual([2]);
    expect(rx.stats.blocksEvicted).toBe(1);
    expect(budget.stats.blocksEvicted).toBe(1);
    // Then the stream goes on round-robin until everything decodes.
    const rest = stream(enc, 'round-robin', 0.1, prng(5));
    while (!rx.complete) {
      for (let i = 0; i < 64; i++) rx.add(rest.next().value as AlcPacket);
      await new Promise((r) => setImmediate(r));
    }
    await rx.done;
    expect(sink.out.equals(data)).toBe(true);
    expect(evicted).not.toContain(0);
    enc.close();
  });
});

describe('ObjectReceiver data path (symbols read in place)', () => {
  test('symbols handed over as offsets into receive batches: bit-exact, one native call per lane and batch, and no copy of the batch', async () => {
    const data = randomBytes(4 * 150 * 64 - 5);
    const enc = new ObjectEncoder(data, { symbolSize: 64, sourceBlocks: 4 });
    const sink = new MemorySink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink, { lanes: 2 });
    const scan = newAlcScan();
    const rand = prng(9);
    let batches = 0;
    let esi = 0;
    const lanesTouched = new Set<number>();
    let nativeCalls = 0;
    while (!rx.complete && esi < 1000) {
      // A receive batch: 32 packets laid end to end, round-robin over the
      // blocks, 20% lost.
      const parts: Buffer[] = [];
      for (let i = 0; i < 8; i++, esi++) {
        for (let sbn = 0; sbn < 4; sbn++) {
          if (rand() < 0.2) continue;
          const p = alcPacket(enc, sbn, esi);
          parts.push(Buffer.from(encodeAlc({ tsi: 1, toi: 1, sbn, esi, symbols: p.payload, sequence: esi })));
        }
      }
      const batch = Buffer.concat(parts);
      const before = rx.stats.batches;
      lanesTouched.clear();
      let at = 0;
      for (const part of parts) {
        expect(scanAlcData(batch, at, part.length, scan)).toBe(true);
        if (!rx.complete) lanesTouched.add(scan.sbn % 2);
        rx.addSymbols(batch, scan.payloadIdOffset, scan.sbn, scan.esi, scan.payloadLength);
        at += part.length;
      }
      rx.commitAll();
      nativeCalls += rx.stats.batches - before;
      expect(rx.stats.batches - before).toBeLessThanOrEqual(lanesTouched.size);
      // The decoder has its own copy: the batch can be overwritten now.
      batch.fill(0);
      batches++;
      await new Promise((r) => setImmediate(r));
    }
    await rx.done;
    expect(sink.out.equals(data)).toBe(true);
    expect(nativeCalls).toBeLessThanOrEqual(2 * batches);
    enc.close();
  });

  test('a block being solved: its symbols are set aside, then added if the attempt fails or late if it decoded', async () => {
    const data = randomBytes(2 * 200 * 32);
    const enc = new ObjectEncoder(data, { symbolSize: 32, sourceBlocks: 2 });
    const sink = new MemorySink(data.length);
    const rx = new ObjectReceiver(wireOti(enc), sink, { lanes: 1, margin: 8 });
    const K = enc.sourceSymbols(0);
    for (let e = 0; e < K; e++) rx.add(alcPacket(enc, 0, e + 100));
    rx.commitAll(); // block 0 holds K: its solve starts (on a worker)
    // While it runs: more of block 0 (set aside) and of block 1 (added).
    for (let e = 0; e < 4; e++) rx.add(alcPacket(enc, 0, 5000 + e));
    for (let e = 0; e < K; e++) rx.add(alcPacket(enc, 1, e));
    await rx.done;
    expect(sink.out.equals(data)).toBe(true);
    // Each symbol is received or late, exactly once; block 0 decoded from
    // its first K (these ESIs do), so the 4 set aside were late.
    expect(rx.stats.symbolsReceived + rx.stats.symbolsLate).toBe(2 * K + 4);
    expect(rx.stats.symbolsLate).toBe(4);
    enc.close();
  });
});
