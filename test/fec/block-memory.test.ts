/**
 * The server's block memory, counted (symbolBufferCounters): a file block
 * prepared on a worker (prepareBlockAsync, what BlockCache does) takes its
 * work buffer, which it keeps while prepared, and a copy of its source
 * block for the solve, which the next preparation reuses; so a catalogue
 * kept prepared takes one fresh buffer per block and one copy in all. A
 * block released and prepared again (a sliding window, a budget smaller
 * than the catalogue) takes nothing fresh from the system (fresh memory is
 * what the kernel zeroes on first touch). Packets stay those of the same
 * bytes in memory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { loadNative } from '../../lib/native';
import { Rng } from '../../lib/support/rng';

const T = 1024;
const Z = 4;
// Four blocks of 900 symbols (about 1 MiB each: sizes the cache keeps), the last one padded.
const F = Z * 900 * T - 333;

let dir: string;
let file: string;
let data: Buffer;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-block-memory-'));
  data = Buffer.from(new Rng(5).bytes(F));
  file = path.join(dir, 'object.bin');
  fs.writeFileSync(file, data);
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The buffer cache is the process's: a block Buffer an earlier test in this
 * jest worker dropped goes back to it when the collector finalizes it, which
 * may be in the middle of this test (CI once saw 19.5 MB cached where this
 * test's own copy is 0.9 MB). So collect that garbage, and let Node run its
 * finalizers (on a later turn of the loop), before the counters start.
 */
async function settleEarlierGarbage(): Promise<void> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  }
}

describe('block memory of a file-backed encoder', () => {
  it('keeps one buffer per prepared block, one source copy in all, and reuses released ones', async () => {
    const native = loadNative();
    const disk = ObjectEncoder.fromFile(file, { symbolSize: T, sourceBlocks: Z });
    const mem = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: Z });
    try {
      // The plans of both block sizes first: a plan is no block buffer, but keeps this test about blocks.
      mem.prepareBlock(0);
      mem.prepareBlock(Z - 1);
      await settleEarlierGarbage();
      native.symbolBufferCounters(true, true);
      for (let sbn = 0; sbn < Z; sbn++) await disk.prepareBlockAsync(sbn);
      const first = native.symbolBufferCounters(true);
      let held = 0;
      for (let sbn = 0; sbn < Z; sbn++) held += disk.blockMemory(sbn);
      const copy = disk.sourceSymbols(0) * T;
      expect(first.fresh).toBe(Z + 1);
      expect(first.freshBytes).toBe(held + copy);
      expect(first.reused).toBe(Z - 1);
      expect(first.cachedBytes).toBe(copy);

      for (let pass = 0; pass < 3; pass++) {
        for (let sbn = 0; sbn < Z; sbn++) {
          disk.releaseBlock(sbn);
          await disk.prepareBlockAsync(sbn);
        }
      }
      const window = native.symbolBufferCounters(true);
      expect(window.fresh).toBe(0);
      // A work buffer and a copy per preparation, both from the cache.
      expect(window.reused).toBe(2 * 3 * Z);
      expect(window.freed).toBe(0);

      for (let sbn = 0; sbn < Z; sbn++) {
        const K = disk.sourceSymbols(sbn);
        for (const esi of [0, 1, K - 1, K, K + 1, K + 500]) {
          expect(Buffer.compare(Buffer.from(disk.packet(sbn, esi)), Buffer.from(mem.packet(sbn, esi)))).toBe(0);
        }
      }
    } finally {
      disk.close();
      mem.close();
    }
  });
});
