import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import fc from 'fast-check';
import { DigestMismatchError, UnfetchableObjectError } from '../../../lib/client/errors';
import { ObjectFileWriter, safeObjectPath } from '../../../lib/client/sinks/file-writer';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-fw-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

/** Splits `data` into blocks of `size` and returns them shuffled by `order`. */
function blocks(data: Buffer, size: number): { offset: number; bytes: Buffer }[] {
  const out: { offset: number; bytes: Buffer }[] = [];
  for (let o = 0; o < data.length; o += size) out.push({ offset: o, bytes: data.subarray(o, o + size) });
  return out;
}

describe('ObjectFileWriter', () => {
  test('prewrite: bytes written ahead of their blocks change nothing in the result or the accounting; out of range ones are ignored', async () => {
    const data = randomBytes(50_001);
    const final = path.join(dir, 'pre.bin');
    const w = await ObjectFileWriter.create(final, data.length);
    // Source symbols written through as they arrive, in any order, some twice.
    for (const o of [40_000, 0, 12_800, 0, 50_000]) w.prewrite(o, data.subarray(o, o + 1280));
    w.prewrite(49_000, Buffer.alloc(5000)); // past the end: ignored
    w.prewrite(-1, Buffer.alloc(10));
    const parts = blocks(data, 9000).reverse();
    await Promise.all(parts.map((p) => w.writeAt(p.offset, p.bytes)));
    expect(w.bytesWritten).toBe(data.length);
    await w.commit(sha256(data));
    expect((await fs.readFile(final)).equals(data)).toBe(true);
    // After commit: ignored, no throw.
    w.prewrite(0, data.subarray(0, 10));
  });

  test('writeAt: every range left by the ranges in place goes in one native job of one pwrite each; markers in place survive; a fake job sees the ranges', async () => {
    const data = randomBytes(64 * 1280);
    const w = await ObjectFileWriter.create(path.join(dir, 'jobs.bin'), data.length);
    // Every other pair of symbols in place (written through), each marked: 16 ranges in place, 16 left to the block write.
    const inPlace = [];
    for (let s = 2; s < 64; s += 4) inPlace.push({ offset: s * 1280, length: 2 * 1280 });
    for (const r of inPlace) expect(await w.prewrite(r.offset, Buffer.alloc(r.length, 0xee))).toBe(true);
    const before = w.bytesToFile;
    const seen: number[][] = [];
    const real = w.pwriteRanges;
    w.pwriteRanges = (fd, bytes, position, ranges) => {
      seen.push([...ranges]);
      return real(fd, bytes, position, ranges);
    };
    await w.writeAt(0, data, inPlace);
    expect(w.blockWriteJobs).toBe(1);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toHaveLength(2 * 16);
    expect(w.blockWriteCalls).toBe(16);
    expect(w.bytesToFile - before).toBe(data.length - 16 * 2 * 1280);
    const file = await fs.readFile(w.tempPath);
    for (let s = 0; s < 64; s++) {
      const at = s * 1280;
      const inside = s % 4 >= 2;
      expect(file.subarray(at, at + 1280).equals(inside ? Buffer.alloc(1280, 0xee) : data.subarray(at, at + 1280))).toBe(true);
    }
    // Nothing left to write: no job at all.
    await w.writeAt(0, data, [{ offset: 0, length: data.length }]);
    expect(w.blockWriteJobs).toBe(1);
    await w.abort();
  });

  test('writeAt: a failed native job rejects the block write with the errno\'s code', async () => {
    const data = randomBytes(10_000);
    const w = await ObjectFileWriter.create(path.join(dir, 'fail.bin'), data.length);
    // A file open read-only: pwrite fails with EBADF.
    const ro = await fs.open(w.tempPath, 'r');
    try {
      const real = w.pwriteRanges;
      w.pwriteRanges = (_fd, bytes, position, ranges) => real(ro.fd, bytes, position, ranges);
      await expect(w.writeAt(0, data, [{ offset: 100, length: 100 }])).rejects.toMatchObject({ code: 'EBADF', syscall: 'write' });
      expect(w.bytesToFile).toBe(0);
    } finally {
      await ro.close();
      await w.abort();
    }
  });

  test('pwriteRanges refuses ranges that are not ascending, disjoint, non-empty and within the data, and a bad position', async () => {
    const w = await ObjectFileWriter.create(path.join(dir, 'args.bin'), 100);
    const data = Buffer.alloc(100, 1);
    const fd = (await fs.open(w.tempPath, 'r+')) as fs.FileHandle;
    try {
      for (const ranges of [[0, 101], [10, 5], [5, 5], [0, 10, 5, 20], [-1, 4], [0.5, 4], [0, 10, 20]]) {
        expect(() => w.pwriteRanges(fd.fd, data, 0, ranges)).toThrow();
      }
      for (const position of [-1, 1.5, 2 ** 53]) expect(() => w.pwriteRanges(fd.fd, data, position, [0, 1])).toThrow();
      expect(() => w.pwriteRanges(-1, data, 0, [0, 1])).toThrow();
      // A view into a larger buffer writes its own bytes, not the buffer's start.
      const big = Buffer.alloc(300, 0);
      big.fill(7, 200, 300);
      await expect(w.pwriteRanges(fd.fd, big.subarray(200), 0, [0, 100])).resolves.toEqual({ bytes: 100, calls: 1 });
      expect((await fs.readFile(w.tempPath)).equals(Buffer.alloc(100, 7))).toBe(true);
    } finally {
      await fd.close();
      await w.abort();
    }
  });

  test('writeAt skips the ranges in place (written through): the digest and accounting take the whole block, the file gets each byte once', async () => {
    const data = randomBytes(30_000);
    const final = path.join(dir, 'once.bin');
    const w = await ObjectFileWriter.create(final, data.length);
    // Written through already: [1000, 5000) and [9000, 9500) of block [0, 10000), [12000, 30000) of block [10000, 30000).
    const ranges = [
      { offset: 1000, length: 4000 },
      { offset: 9000, length: 500 },
      { offset: 12_000, length: 18_000 },
    ];
    for (const r of ranges) expect(await w.prewrite(r.offset, data.subarray(r.offset, r.offset + r.length))).toBe(true);
    // A marker inside a range in place: a writeAt that wrote it would replace it.
    await w.prewrite(2000, Buffer.alloc(10, 0xee));
    const before = w.bytesToFile;
    await w.writeAt(10_000, data.subarray(10_000), [ranges[2]]);
    await w.writeAt(0, data.subarray(0, 10_000), ranges.slice(0, 2));
    expect(w.bytesToFile - before).toBe(data.length - 4000 - 500 - 18_000);
    expect(w.bytesWritten).toBe(data.length);
    const file = await fs.readFile(w.tempPath);
    expect(file.subarray(2000, 2010).every((b) => b === 0xee)).toBe(true);
    file.set(data.subarray(2000, 2010), 2000);
    expect(file.equals(data)).toBe(true);
    // The digest is the blocks' (memory), the marker put back: it verifies.
    await w.prewrite(2000, data.subarray(2000, 2010));
    await w.commit(sha256(data));
    expect((await fs.readFile(final)).equals(data)).toBe(true);
  });

  test('blocks written out of order at their offsets, verified, renamed', async () => {
    const data = randomBytes(100_003);
    const final = path.join(dir, 'out.bin');
    const w = await ObjectFileWriter.create(final, data.length);
    expect(path.dirname(w.tempPath)).toBe(dir);
    expect(path.basename(w.tempPath)).toMatch(/^\.out\.bin\.rqcast-tmp-[0-9a-f]{8}$/);
    const parts = blocks(data, 7000).reverse();
    await Promise.all(parts.map((p) => w.writeAt(p.offset, p.bytes)));
    expect(w.bytesWritten).toBe(data.length);
    await expect(fs.stat(final)).rejects.toThrow();
    await w.commit(sha256(data));
    expect((await fs.readFile(final)).equals(data)).toBe(true);
    expect(await fs.readdir(dir)).toEqual(['out.bin']);
  });

  test('any block order gives the same file', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 700 }), fc.infiniteStream(fc.double()), async (len, bs, noise) => {
        const data = randomBytes(len);
        const final = path.join(dir, `f${len}-${bs}`);
        const w = await ObjectFileWriter.create(final, len);
        const parts = blocks(data, bs);
        const keyed = parts.map((p) => ({ p, k: noise.next().value as number }));
        keyed.sort((a, b) => a.k - b.k);
        for (const { p } of keyed) await w.writeAt(p.offset, p.bytes);
        await w.commit(sha256(data));
        expect((await fs.readFile(final)).equals(data)).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  test('the running digest agrees with the file for any order, hold budget and rewrites (last write wins)', async () => {
    // A model: each write lands in `model` in the order it completes (one at
    // a time), the commit must accept exactly the model's digest.
    const write = fc.record({ at: fc.nat(), size: fc.integer({ min: 1, max: 900 }), seed: fc.nat(255) });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4000 }),
        fc.integer({ min: 1, max: 500 }),
        fc.infiniteStream(fc.double()),
        fc.array(write, { maxLength: 4 }),
        fc.constantFrom(0, 700, 64 << 20),
        async (len, bs, noise, rewrites, holdBytes) => {
          const data = randomBytes(len);
          const model = Buffer.from(data);
          const w = await ObjectFileWriter.create(path.join(dir, `g${len}-${bs}-${holdBytes}`), len);
          w.holdBytes = holdBytes;
          const parts = blocks(data, bs)
            .map((p) => ({ p, k: noise.next().value as number }))
            .sort((a, b) => a.k - b.k)
            .map((x) => x.p);
          const writes = [...parts];
          for (const r of rewrites) {
            const offset = r.at % len;
            const bytes = Buffer.alloc(Math.min(r.size, len - offset), r.seed);
            // Somewhere among the block writes.
            writes.splice(r.at % (writes.length + 1), 0, { offset, bytes });
          }
          const expected = Buffer.alloc(len);
          for (const x of writes) {
            await w.writeAt(x.offset, x.bytes);
            x.bytes.copy(expected, x.offset);
          }
          model.set(expected);
          await w.commit(sha256(model));
          expect((await fs.readFile(w.finalPath)).equals(model)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  test('a region written twice with different bytes: the digest is of what the file holds', async () => {
    const data = randomBytes(10_000);
    const other = randomBytes(3000);
    const w1 = await ObjectFileWriter.create(path.join(dir, 'twice-old'), data.length);
    for (const p of blocks(data, 3000)) await w1.writeAt(p.offset, p.bytes);
    await w1.writeAt(0, other);
    await expect(w1.commit(sha256(data))).rejects.toBeInstanceOf(DigestMismatchError);
    const w2 = await ObjectFileWriter.create(path.join(dir, 'twice-new'), data.length);
    for (const p of blocks(data, 3000)) await w2.writeAt(p.offset, p.bytes);
    await w2.writeAt(0, other);
    const expected = Buffer.concat([other, data.subarray(3000)]);
    await w2.commit(sha256(expected));
    expect((await fs.readFile(w2.finalPath)).equals(expected)).toBe(true);
  });

  test("a block's write is handed to the kernel before the running digest hashes it (the two overlap)", async () => {
    const data = randomBytes(3 * 40_000);
    const w = await ObjectFileWriter.create(path.join(dir, 'order.bin'), data.length);
    const hashProto = Object.getPrototypeOf(createHash('sha256')) as { update: (...a: unknown[]) => unknown };
    // Spies that keep the real methods: only the order of the calls is read. The write is the block's native job (pwriteRanges).
    const write = jest.spyOn(w, 'pwriteRanges');
    const update = jest.spyOn(hashProto, 'update');
    try {
      for (const p of blocks(data, 40_000)) await w.writeAt(p.offset, p.bytes);
      const calls = [...write.mock.invocationCallOrder.map((n) => ({ n, what: 'write' })), ...update.mock.invocationCallOrder.map((n) => ({ n, what: 'hash' }))];
      // The last block, which completes the object, is hashed by commit (beside the fsync: the next tests).
      expect(calls.sort((a, b) => a.n - b.n).map((c) => c.what)).toEqual(['write', 'hash', 'write', 'hash', 'write']);
    } finally {
      write.mockRestore();
      update.mockRestore();
    }
    await w.commit(sha256(data));
    expect((await fs.readFile(path.join(dir, 'order.bin'))).equals(data)).toBe(true);
  });

  test.each([
    ['in order', [0, 1, 2, 3]],
    ['the first block last (a receiver that joined late), within the hold budget', [1, 2, 3, 0]],
  ])('blocks %s: commit reads nothing back from the file (the digest was computed as they landed)', async (_name, order) => {
    const data = randomBytes(4 * 30_000);
    const w = await ObjectFileWriter.create(path.join(dir, 'noread.bin'), data.length);
    const parts = blocks(data, 30_000);
    for (const i of order) await w.writeAt(parts[i].offset, parts[i].bytes);
    const probe = await fs.open(path.join(dir, 'probe'), 'w');
    const read = jest.spyOn(Object.getPrototypeOf(probe) as { read: (...a: unknown[]) => unknown }, 'read');
    await probe.close();
    try {
      await w.commit(sha256(data));
      expect(read).toHaveBeenCalledTimes(0);
    } finally {
      read.mockRestore();
    }
    expect((await fs.readFile(path.join(dir, 'noread.bin'))).equals(data)).toBe(true);
  });

  test.each([
    ['the first block last (a late joiner)', [1, 2, 3, 0], 0],
    ['in order', [0, 1, 2, 3], 3],
  ])("%s: the block that completes the object, and those held after it, are hashed by commit after it starts the file's fsync; then the rename, then the directory's sync", async (_name, order, held) => {
    const data = randomBytes(4 * 30_000);
    const final = path.join(dir, `done-${held}.bin`);
    const w = await ObjectFileWriter.create(final, data.length);
    const parts = blocks(data, 30_000);
    const expected = sha256(data);
    const probe = await fs.open(path.join(dir, 'probe'), 'w');
    const handleProto = Object.getPrototypeOf(probe) as { sync: (...a: unknown[]) => unknown };
    await probe.close();
    const hashProto = Object.getPrototypeOf(createHash('sha256')) as { update: (...a: unknown[]) => unknown };
    const sync = jest.spyOn(handleProto, 'sync');
    const update = jest.spyOn(hashProto, 'update');
    const rename = jest.spyOn(fs, 'rename');
    try {
      for (const i of order) await w.writeAt(parts[i].offset, parts[i].bytes);
      // Hashed as handed over: the blocks before the one that completes the object, in order (none for the late joiner).
      expect(update.mock.calls.length).toBe(held);
      expect(w.keeps(parts[order[3]].bytes)).toBe(true);
      await w.commit(expected);
      const calls = [
        ...sync.mock.invocationCallOrder.map((n) => ({ n, what: 'sync' })),
        ...update.mock.invocationCallOrder.map((n) => ({ n, what: 'hash' })),
        ...rename.mock.invocationCallOrder.map((n) => ({ n, what: 'rename' })),
      ];
      const afterWrites = calls.sort((a, b) => a.n - b.n).map((e) => e.what).slice(held);
      expect(afterWrites).toEqual(['sync', ...new Array<string>(4 - held).fill('hash'), 'rename', 'sync']);
    } finally {
      sync.mockRestore();
      update.mockRestore();
      rename.mockRestore();
    }
    expect((await fs.readFile(final)).equals(data)).toBe(true);
  });

  test('a late joiner whose bytes do not match: the speculative fsync publishes nothing', async () => {
    const data = randomBytes(4 * 30_000);
    const final = path.join(dir, 'late-bad.bin');
    const w = await ObjectFileWriter.create(final, data.length);
    const parts = blocks(data, 30_000);
    for (const i of [1, 2, 3, 0]) await w.writeAt(parts[i].offset, parts[i].bytes);
    const wrong = Buffer.from(sha256(data));
    wrong[0] ^= 1;
    await expect(w.commit(wrong)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  test('prefixDigest: the SHA-256 of [0, end) at each block end the running digest passed, in any block order; none inside a block, none once a region is written twice; readBack reads what landed', async () => {
    const data = randomBytes(40_000);
    const w = await ObjectFileWriter.create(path.join(dir, 'pfx.bin'), data.length);
    const parts = blocks(data, 10_000);
    // Blocks 2, 0, 1: the digest reaches 10 000 with block 0, then 30 000 with block 1 (block 2 was held).
    await w.writeAt(parts[2].offset, parts[2].bytes);
    expect(w.prefixDigest(30_000)).toBeUndefined();
    await w.writeAt(parts[0].offset, parts[0].bytes);
    await w.writeAt(parts[1].offset, parts[1].bytes);
    expect(w.digestedBytes).toBe(30_000);
    for (const end of [10_000, 20_000, 30_000]) expect(w.prefixDigest(end)?.equals(sha256(data.subarray(0, end)))).toBe(true);
    expect(w.prefixDigest(15_000)).toBeUndefined();
    expect(w.prefixDigest(40_000)).toBeUndefined();
    expect((await w.readBack(12_345, 100))?.equals(data.subarray(12_345, 12_445))).toBe(true);
    expect(await w.readBack(39_990, 100)).toBeUndefined();
    // Block 1 written again: the digest is given up, and with it every prefix digest.
    await w.writeAt(parts[1].offset, parts[1].bytes);
    expect(w.digestDropped).toBe(true);
    expect(w.prefixDigest(10_000)).toBeUndefined();
    await w.writeAt(parts[3].offset, parts[3].bytes);
    await w.commit(sha256(data));
  });

  test('1-byte object', async () => {
    const final = path.join(dir, 'one');
    const w = await ObjectFileWriter.create(final, 1);
    await w.writeAt(0, Uint8Array.of(0x5a));
    await w.commit(sha256(Uint8Array.of(0x5a)));
    expect([...(await fs.readFile(final))]).toEqual([0x5a]);
  });

  test('digest mismatch: no final file, no temp file, DigestMismatchError', async () => {
    const data = randomBytes(5000);
    const final = path.join(dir, 'bad.bin');
    const w = await ObjectFileWriter.create(final, data.length);
    await w.writeAt(0, data);
    const wrong = sha256(data);
    wrong[0] ^= 1;
    await expect(w.commit(wrong, 'bad.bin')).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  test('a block never written (zeros) fails verification', async () => {
    const data = randomBytes(4096);
    const final = path.join(dir, 'hole.bin');
    const w = await ObjectFileWriter.create(final, data.length);
    await w.writeAt(0, data.subarray(0, 2048));
    await expect(w.commit(sha256(data))).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  test('abort removes the temporary file and leaves an existing final file alone', async () => {
    const final = path.join(dir, 'keep.bin');
    await fs.writeFile(final, 'old');
    const w = await ObjectFileWriter.create(final, 10);
    await w.writeAt(0, Buffer.from('0123456789'));
    await w.abort();
    await w.abort();
    expect(await fs.readdir(dir)).toEqual(['keep.bin']);
    expect(await fs.readFile(final, 'utf8')).toBe('old');
    await expect(w.writeAt(0, Buffer.from('x'))).rejects.toThrow(/closed/);
  });

  test('commit replaces an existing final file atomically', async () => {
    const final = path.join(dir, 'replace.bin');
    await fs.writeFile(final, 'old');
    const data = Buffer.from('new contents');
    const w = await ObjectFileWriter.create(final, data.length);
    await w.writeAt(0, data);
    await w.commit(sha256(data));
    expect(await fs.readFile(final, 'utf8')).toBe('new contents');
  });

  test('writes outside the object are refused', async () => {
    const w = await ObjectFileWriter.create(path.join(dir, 'x'), 10);
    await expect(w.writeAt(8, Buffer.alloc(3))).rejects.toThrow(RangeError);
    await expect(w.writeAt(-1, Buffer.alloc(1))).rejects.toThrow(RangeError);
    await w.abort();
  });

  test('creates missing directories', async () => {
    const final = path.join(dir, 'a', 'b', 'c.txt');
    const w = await ObjectFileWriter.create(final, 2);
    await w.writeAt(0, Buffer.from('hi'));
    await w.commit(sha256(Buffer.from('hi')));
    expect(await fs.readFile(final, 'utf8')).toBe('hi');
  });
});

describe('safeObjectPath', () => {
  test('keeps ordinary relative names', () => {
    expect(safeObjectPath('a.txt')).toBe('a.txt');
    expect(safeObjectPath('dir/sub/a.txt')).toBe('dir/sub/a.txt');
    expect(safeObjectPath('./a//b/')).toBe('a/b');
  });
  test('absolute names become relative', () => {
    expect(safeObjectPath('/etc/passwd')).toBe('etc/passwd');
    expect(safeObjectPath('\\\\server\\share\\x')).toBe('server/share/x');
  });
  test('refuses names that leave the directory or hold control characters', () => {
    for (const bad of ['..', '../x', 'a/../../x', 'a\\..\\x', 'C:/x', '', '/', '.', 'a\nb', 'a\x00b']) {
      expect(() => safeObjectPath(bad)).toThrow(UnfetchableObjectError);
    }
  });
  test('the result never escapes the destination', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (name) => {
        let rel: string;
        try {
          rel = safeObjectPath(name);
        } catch (e) {
          expect(e).toBeInstanceOf(UnfetchableObjectError);
          return;
        }
        const base = path.resolve('/dest');
        const full = path.resolve(base, rel);
        expect(full.startsWith(base + path.sep)).toBe(true);
      }),
    );
  });
});
