/**
 * lib/support/sha256.ts: the native SHA-256 state, fed on this thread or on
 * the thread pool, gives node:crypto's digest for any cut of the bytes;
 * thread-pool jobs run in the order queued; the state is refused to this
 * thread while they run; a bad state is refused.
 */
import { createHash } from 'crypto';
import fc from 'fast-check';
import { loadNative } from '../../lib/native';
import { Sha256 } from '../../lib/support/sha256';

const reference = (b: Uint8Array) => createHash('sha256').update(b).digest();

test('any cut of the bytes, each piece on this thread or the thread pool, queued without waiting: the digest of the whole, and of each prefix at its job', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 12 }), async (bytes, cuts) => {
      const h = Sha256.create();
      const ends = [...new Set(cuts.map(([c]) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      ends.push(bytes.length);
      let at = 0;
      const jobs: Promise<void>[] = [];
      for (let i = 0; i < ends.length; i++) {
        const piece = bytes.subarray(at, ends[i]);
        const end = ends[i];
        // Off the thread unless the cut says this thread and no job is queued (the state is the worker's then).
        if ((cuts[i]?.[1] ?? true) || h.busy) {
          jobs.push(h.updateOffThread(piece).then((d) => expect(d.equals(reference(bytes.subarray(0, end)))).toBe(true)));
        } else {
          h.update(piece);
        }
        at = end;
      }
      await Promise.all(jobs);
      await h.settled();
      expect(h.busy).toBe(false);
      expect(h.digest().equals(reference(bytes))).toBe(true);
    }),
  );
});

test('copy is independent; digest leaves the state to go on', async () => {
  const a = Sha256.create().update(Buffer.from('abc'));
  const b = a.copy();
  expect(a.digest().equals(reference(Buffer.from('abc')))).toBe(true);
  await a.updateOffThread(Buffer.from('def'));
  expect(a.digest().equals(reference(Buffer.from('abcdef')))).toBe(true);
  expect(b.digest().equals(reference(Buffer.from('abc')))).toBe(true);
});

test('a megabyte-sized stream of jobs queued at once: hashed in order', async () => {
  const pieces = Array.from({ length: 40 }, (_, i) => Buffer.alloc(30_000 + i, i));
  const h = Sha256.create();
  const digests = await Promise.all(pieces.map((p) => h.updateOffThread(p)));
  let so = createHash('sha256');
  pieces.forEach((p, i) => {
    so = so.update(p);
    expect(digests[i].equals(so.copy().digest())).toBe(true);
  });
});

test('while jobs are queued this thread may not use the state', async () => {
  const h = Sha256.create();
  const p = h.updateOffThread(Buffer.alloc(100_000, 7));
  expect(h.busy).toBe(true);
  expect(() => h.update(Buffer.from('x'))).toThrow(/in use/);
  expect(() => h.digest()).toThrow(/in use/);
  expect(() => h.copy()).toThrow(/in use/);
  await p;
  expect(h.digest().equals(reference(Buffer.alloc(100_000, 7)))).toBe(true);
});

test('the native calls refuse what is not a state', () => {
  const n = loadNative();
  expect(() => n.sha256Update(new Uint8Array(5), new Uint8Array(1))).toThrow();
  const s = n.sha256Init();
  // The block buffer's fill, past its 64 bytes: refused rather than trusted.
  const bad = s.slice();
  new DataView(bad.buffer).setUint32(bad.length - 8, 1000, true);
  expect(() => n.sha256Digest(bad)).toThrow();
  expect(() => n.sha256UpdateAsync(bad, new Uint8Array(1))).toThrow();
  expect(() => n.sha256Update(s, 'text' as unknown as Uint8Array)).toThrow();
});
