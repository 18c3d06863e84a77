/**
 * The encoding plan cache (native/fec/encoding_plan.cc: one solve per K'
 * per process, fused, replayed on every block of that K') against a plan
 * built for the one call and replayed op by op (the native
 * referenceSymbols): bit-identical symbols, source and repair, over K,
 * T, seeds and ESIs. Blocks of a K' already cached go through the cache
 * twice here, once prepared on the JS thread and once on a worker.
 *
 * Also where prepareBlockAsync prepares: blocks over memory of at most
 * 2 MiB and 2 048 symbols whose K' plan is cached on the calling thread
 * (no trip to the worker pool), everything else on a worker. Told apart by ordering, not time: a block
 * a worker is preparing refuses releaseBlock (ERR_RQ_BUSY) until its
 * promise settles; a block prepared inline is prepared when the call
 * returns.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { CodecBusyError } from '../../lib/fec/errors';
import { loadNative } from '../../lib/native';
import { Rng } from '../../lib/support/rng';

const native = loadNative();

/** The symbols of packets (4-byte FEC Payload ID, then T bytes), back to back. */
function symbolsOf(packets: Uint8Array, T: number): Buffer {
  const count = packets.length / (4 + T);
  const out = Buffer.alloc(count * T);
  for (let i = 0; i < count; i++) out.set(packets.subarray(i * (4 + T) + 4, (i + 1) * (4 + T)), i * T);
  return out;
}

function encoder(data: Uint8Array, T: number): ObjectEncoder {
  return new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 8 });
}

describe('cached encoding plan = uncached plan replayed op by op', () => {
  it('gives bit-identical source and repair symbols (property over K, T, seed, ESIs)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2500 }),
        fc.integer({ min: 1, max: 32 }).map((t) => 8 * t),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffff - 64 }),
        async (K, T, seed, farEsi) => {
          const data = new Rng(seed).bytes(K * T);
          const repair = Math.min(40, K);
          // Every source ESI, the first repair ESIs, and a run far out.
          const want = Buffer.concat([
            native.referenceSymbols(data, K, T, 0, K + repair),
            native.referenceSymbols(data, K, T, farEsi, 8),
          ]);
          const sync = encoder(data, T);
          sync.prepareBlock(0);
          const onWorkerOrInline = encoder(data, T);
          await onWorkerOrInline.prepareBlockAsync(0);
          for (const enc of [sync, onWorkerOrInline]) {
            const got = Buffer.concat([
              symbolsOf(enc.packets(0, 0, K + repair), T),
              symbolsOf(enc.packets(0, farEsi, 8), T),
            ]);
            expect(got.equals(want)).toBe(true);
            enc.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('differs from the reference when one source byte differs (the check can fail)', () => {
    const K = 100;
    const T = 64;
    const data = new Rng(7).bytes(K * T);
    const enc = encoder(data, T);
    const other = Uint8Array.from(data);
    other[37 * T + 5] ^= 1;
    const mine = symbolsOf(enc.packets(0, K, 10), T);
    expect(mine.equals(native.referenceSymbols(data, K, T, K, 10))).toBe(true);
    expect(mine.equals(native.referenceSymbols(other, K, T, K, 10))).toBe(false);
    enc.close();
  });
});

describe('prepareBlockAsync: inline or on a worker', () => {
  const T = 1024;

  it('prepares a small block over memory whose plan is cached before returning', async () => {
    const K = 700; // 700 KiB
    const data = new Rng(1).bytes(K * T);
    const warm = encoder(data, T);
    warm.prepareBlock(0); // caches the plan of K'
    const want = warm.packets(0, 0, K + 20);
    warm.close();

    const enc = encoder(data, T);
    const p = enc.prepareBlockAsync(0);
    expect(enc.isPrepared(0)).toBe(true);
    expect(() => enc.releaseBlock(0)).not.toThrow();
    await p;
    expect(Buffer.from(enc.packets(0, 0, K + 20)).equals(Buffer.from(want))).toBe(true);
    enc.close();
  });

  it('sends a block of more than 2 MiB to a worker, plan cached or not', async () => {
    const K = 2100; // 2.05 MiB at T = 1024
    const data = new Rng(2).bytes(K * T);
    const warm = encoder(data, T);
    warm.prepareBlock(0);
    const want = warm.packets(0, K, 20);
    warm.close();

    const enc = encoder(data, T);
    const p = enc.prepareBlockAsync(0);
    expect(() => enc.releaseBlock(0)).toThrow(CodecBusyError);
    await p;
    expect(enc.isPrepared(0)).toBe(true);
    expect(Buffer.from(enc.packets(0, K, 20)).equals(Buffer.from(want))).toBe(true);
    enc.close();
  });

  it('sends a block of more than 2 048 symbols to a worker, however few its bytes', async () => {
    const K = 2100;
    const small = 64; // 131 KiB in all
    const data = new Rng(4).bytes(K * small);
    const warm = encoder(data, small);
    warm.prepareBlock(0);
    const want = warm.packets(0, K, 20);
    warm.close();

    const enc = encoder(data, small);
    const p = enc.prepareBlockAsync(0);
    expect(() => enc.releaseBlock(0)).toThrow(CodecBusyError);
    await p;
    expect(Buffer.from(enc.packets(0, K, 20)).equals(Buffer.from(want))).toBe(true);
    enc.close();
  });

  it('sends a block read from a file to a worker, however small', async () => {
    const K = 50;
    const data = new Rng(3).bytes(K * T);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-plan-'));
    const file = path.join(dir, 'object');
    try {
      fs.writeFileSync(file, data);
      const warm = encoder(data, T);
      warm.prepareBlock(0);
      const want = warm.packets(0, 0, K + 20);
      warm.close();

      const enc = ObjectEncoder.fromFile(file, { symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 8 });
      const p = enc.prepareBlockAsync(0);
      expect(() => enc.releaseBlock(0)).toThrow(CodecBusyError);
      await p;
      expect(Buffer.from(enc.packets(0, 0, K + 20)).equals(Buffer.from(want))).toBe(true);
      enc.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
