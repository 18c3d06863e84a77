/**
 * The addon's read storage (native/napi/read_storage.cc), which the TCP
 * client's frame storage comes from: the size asked for, arguments checked,
 * and storage recycled only once V8 has collected every view of it. The
 * recycling runs in a child Node with --expose-gc, so that its counters
 * start at zero and gc() can be called.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { loadNative } from '../../../lib/native';

const ADDON_ROOT = path.resolve(__dirname, '../../..');

describe('readStorage', () => {
  test('a writable Buffer of the size asked for; sizes outside 1..64 MiB are refused', () => {
    const n = loadNative();
    for (const bytes of [1, 4096, 2 << 20, 3 * 1024 * 1024 + 5]) {
      const b = n.readStorage(bytes);
      expect(Buffer.isBuffer(b)).toBe(true);
      expect(b.length).toBe(bytes);
      b.fill(0x5a);
      expect(b[0]).toBe(0x5a);
      expect(b[bytes - 1]).toBe(0x5a);
    }
    for (const bad of [0, -1, 1.5, (64 << 20) + 1, Number.NaN]) expect(() => n.readStorage(bad)).toThrow();
    expect(() => (n.readStorage as unknown as (x: unknown) => Buffer)('4096')).toThrow();
  });

  test('storage goes back to the pool only once it and its views are collected, and is taken from there again', () => {
    const script = `
      const n = require('node-gyp-build')(${JSON.stringify(ADDON_ROOT)});
      const tick = () => new Promise((r) => setImmediate(r));
      const SIZE = 2 << 20;
      (async () => {
        const out = {};
        let a = n.readStorage(SIZE);
        let view = a.subarray(10, 20);
        a = undefined;
        for (let i = 0; i < 3; i++) { global.gc(); await tick(); }
        out.whileViewed = n.readStorageCounters();
        view.fill(1);
        view = undefined;
        for (let i = 0; i < 3; i++) { global.gc(); await tick(); }
        out.afterCollected = n.readStorageCounters();
        const b = n.readStorage(SIZE);
        b.fill(2);
        out.afterTake = n.readStorageCounters();
        const c = n.readStorage(SIZE + 64);
        out.otherSize = n.readStorageCounters();
        console.log(JSON.stringify(out), b.length, c.length);
      })();`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    const [json] = r.stdout.trim().split(' ');
    const out = JSON.parse(json) as Record<string, { fresh: number; reused: number; returned: number; pooled: number }>;
    // A view keeps the storage out of the pool.
    expect(out.whileViewed).toMatchObject({ fresh: 1, reused: 0, returned: 0, pooled: 0 });
    expect(out.afterCollected).toMatchObject({ fresh: 1, reused: 0, returned: 1, pooled: 1 });
    // The next storage of that size is the pooled one.
    expect(out.afterTake).toMatchObject({ fresh: 1, reused: 1, returned: 1, pooled: 0 });
    // Another size is not served from it.
    expect(out.otherSize).toMatchObject({ fresh: 2, reused: 1 });
  });
});
