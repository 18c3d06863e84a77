/**
 * ResumableFileSink (lib/client/sinks/resumable-sink.ts): a fetch that stops
 * short keeps its blocks; the next fetch of the same object resumes from
 * the verified ones only (a torn block is fetched again), a changed object
 * or --no-resume ('restart') starts over, a digest mismatch keeps nothing,
 * a second fetch of the same destination is refused while the first runs,
 * and debris of earlier versions goes.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DigestMismatchError, UnfetchableObjectError } from '../../../lib/client/errors';
import { FileSinkFactory } from '../../../lib/client/sinks/file-sink';
import { ResumableFileSink, type ResumeMode } from '../../../lib/client/sinks/resumable-sink';
import { blockSpans, parseState, ResumeJournal } from '../../../lib/client/sinks/resume-state';
import type { SinkObject } from '../../../lib/client/sinks/sink';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-rsink-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();
const data = randomBytes(50_000);
const object: SinkObject = { name: 'x.bin', sha256: sha(data), oti: { transferLength: data.length, symbolSize: 256, sourceBlocks: 5, subBlocks: 1, alignment: 4 } };
const spans = blockSpans(object.oti);
const block = (sbn: number): Buffer => data.subarray(spans[sbn].offset, spans[sbn].offset + spans[sbn].length);

function sink(mode: ResumeMode = 'continue', obj = object, warnings: string[] = []): ResumableFileSink {
  const s = new FileSinkFactory({ outputDir: dir, resume: mode, warning: (m) => warnings.push(m) }).open(obj);
  expect(s).toBeInstanceOf(ResumableFileSink);
  return s as ResumableFileSink;
}

/** A first fetch that writes `sbns` and stops short. */
async function interrupted(sbns: number[]): Promise<void> {
  const s = sink();
  expect(await s.resumed).toEqual([]);
  for (const sbn of sbns) await s.writeBlock(sbn, spans[sbn].offset, block(sbn));
  const kept = await s.suspend();
  expect(kept).toMatchObject({ name: 'x.bin', blocksKept: sbns.length, blocks: 5, bytesKept: sbns.reduce((a, b) => a + spans[b].length, 0), bytes: data.length });
}

async function finish(s: ResumableFileSink, sbns: number[]): Promise<void> {
  for (const sbn of sbns) await s.writeBlock(sbn, spans[sbn].offset, block(sbn));
  await s.commit();
  expect((await fs.readFile(path.join(dir, 'x.bin'))).equals(data)).toBe(true);
  // Published: no part file, journal or lock left.
  expect(await fs.readdir(dir)).toEqual(['x.bin']);
}

test('stopped short: part file and journal kept (lock released); the next fetch resumes from those blocks and publishes the verified object', async () => {
  await interrupted([3, 0, 1]);
  expect((await fs.readdir(dir)).sort()).toEqual(['.x.bin.rqcast-part', '.x.bin.rqcast-state']);
  const s = sink();
  expect((await s.resumed).sort()).toEqual([0, 1, 3]);
  await finish(s, [2, 4]);
});

const end = (sbn: number): number => spans[sbn].offset + spans[sbn].length;

test('the block that completes the part file is not recorded (commit follows: no SHA-256 pass over it at the end); suspend records it', async () => {
  const record = jest.spyOn(ResumeJournal.prototype, 'record');
  const recordPrefix = jest.spyOn(ResumeJournal.prototype, 'recordPrefix');
  try {
    const order = [2, 0, 4, 1, 3];
    let s = sink();
    for (const sbn of order) await s.writeBlock(sbn, spans[sbn].offset, block(sbn));
    // Blocks 2 and 4, written past the blocks written from the start, are hashed on their own; 0, then 0–2, are prefixes (the running digest).
    expect(record.mock.calls.map((c) => c[0])).toEqual([2, 4]);
    expect(recordPrefix.mock.calls.map((c) => c[0])).toEqual([end(0), end(2)]);
    await s.commit();
    expect((await fs.readFile(path.join(dir, 'x.bin'))).equals(data)).toBe(true);
    expect(await fs.readdir(dir)).toEqual(['x.bin']);
    // Stopped short after the last write instead: every block is recorded, and all of them resume.
    await fs.rm(path.join(dir, 'x.bin'));
    record.mockClear();
    recordPrefix.mockClear();
    s = sink('restart');
    for (const sbn of order) await s.writeBlock(sbn, spans[sbn].offset, block(sbn));
    expect(await s.suspend()).toMatchObject({ blocksKept: 5 });
    // Block 3 completed the object: the writer kept it for commit's digest (beside the fsync), so suspend hashes it for its record.
    expect(record.mock.calls.map((c) => c[0])).toEqual([2, 4, 3]);
    expect(recordPrefix.mock.calls.map((c) => c[0])).toEqual([end(0), end(2)]);
    expect(s.stats).toMatchObject({ blocksHashed: 3, bytesHashed: spans[2].length + spans[4].length + spans[3].length, prefixRecords: 2 });
    s = sink();
    expect((await s.resumed).sort()).toEqual([0, 1, 2, 3, 4]);
    await finish(s, []);
  } finally {
    record.mockRestore();
    recordPrefix.mockRestore();
  }
});

test('blocks written in order are never hashed by the sink: one prefix record each, from the running digest; the next fetch keeps them all', async () => {
  const s = sink();
  await s.resumed;
  for (const sbn of [0, 1, 2, 3]) await s.writeBlock(sbn, spans[sbn].offset, block(sbn));
  await s.suspend();
  expect(s.stats).toMatchObject({ blocksHashed: 0, bytesHashed: 0, prefixRecords: 4 });
  const p = parseState(await fs.readFile(path.join(dir, '.x.bin.rqcast-state')), object);
  expect(p.blocks.size).toBe(0);
  expect([...p.prefixes.keys()]).toEqual([end(0), end(1), end(2), end(3)]);
  for (const [n, digest] of p.prefixes) expect(digest.equals(sha(data.subarray(0, n)))).toBe(true);
  const next = sink();
  expect(await next.resumed).toEqual([0, 1, 2, 3]);
  // The rewritten journal holds the verified prefix as one record.
  await next.writeBlock(4, spans[4].offset, block(4));
  await next.commit();
  expect((await fs.readFile(path.join(dir, 'x.bin'))).equals(data)).toBe(true);
});

test('every block kept: commit alone publishes it', async () => {
  await interrupted([0, 1, 2, 3, 4]);
  const s = sink();
  expect((await s.resumed).sort()).toEqual([0, 1, 2, 3, 4]);
  await finish(s, []);
});

test('a torn block (its bytes in the part file changed) is not resumed: warned, fetched again, and the object is right', async () => {
  // Block 4 has a block record of its own (block 3 was missing); 0–2 are covered by prefix records.
  await interrupted([0, 1, 2, 4]);
  const h = await fs.open(path.join(dir, '.x.bin.rqcast-part'), 'r+');
  await h.write(Buffer.alloc(100, 0x5a), 0, 100, spans[4].offset + 1000);
  await h.close();
  const warnings: string[] = [];
  const s = sink('continue', object, warnings);
  expect((await s.resumed).sort()).toEqual([0, 1, 2]);
  expect(warnings.join('\n')).toMatch(/1 block of "x.bin" kept by the interrupted fetch did not match its checksum/);
  await finish(s, [3, 4]);
});

test('a torn block inside the recorded prefix: the prefix is kept up to the block before it, the blocks from it on are fetched again', async () => {
  await interrupted([0, 1, 2, 3]);
  const h = await fs.open(path.join(dir, '.x.bin.rqcast-part'), 'r+');
  await h.write(Buffer.alloc(100, 0x5a), 0, 100, spans[1].offset + 1000);
  await h.close();
  const warnings: string[] = [];
  const s = sink('continue', object, warnings);
  expect(await s.resumed).toEqual([0]);
  expect(warnings.join('\n')).toMatch(/3 blocks of "x.bin" kept by the interrupted fetch did not match their checksum/);
  await finish(s, [1, 2, 3, 4]);
});

test('a torn block that is then not fetched again makes no wrong object: the journal no longer lists it', async () => {
  await interrupted([0, 1]);
  const h = await fs.open(path.join(dir, '.x.bin.rqcast-part'), 'r+');
  await h.write(Buffer.from([block(1)[5] ^ 1]), 0, 1, spans[1].offset + 5);
  await h.close();
  const s = sink();
  expect(await s.resumed).toEqual([0]);
  // Stops again before block 1 is fetched: the journal was rewritten with block 0 only (a prefix), and block 4 is recorded.
  await s.writeBlock(4, spans[4].offset, block(4));
  await s.suspend();
  const p = parseState(await fs.readFile(path.join(dir, '.x.bin.rqcast-state')), object);
  expect([...p.blocks.keys()]).toEqual([4]);
  expect([...p.prefixes.keys()]).toEqual([end(0)]);
});

test('a torn last journal record (kill -9 mid-append): the blocks before it resume', async () => {
  await interrupted([0, 1, 2]);
  const state = path.join(dir, '.x.bin.rqcast-state');
  const st = await fs.readFile(state);
  await fs.writeFile(state, st.subarray(0, st.length - 20));
  const s = sink();
  expect((await s.resumed).sort()).toEqual([0, 1]);
  await finish(s, [2, 3, 4]);
});

test('the object changed on the server (another digest): the old part file and journal are discarded, with a warning', async () => {
  await interrupted([0, 1, 2]);
  const other = randomBytes(data.length);
  const changed: SinkObject = { ...object, sha256: sha(other) };
  const warnings: string[] = [];
  const s = sink('continue', changed, warnings);
  expect(await s.resumed).toEqual([]);
  expect(warnings.join('\n')).toMatch(/changed \(digest or OTI\).*starting over/);
  expect((await fs.readdir(dir)).sort()).toEqual(['.x.bin.rqcast-lock']);
  for (let sbn = 0; sbn < 5; sbn++) await s.writeBlock(sbn, spans[sbn].offset, other.subarray(spans[sbn].offset, spans[sbn].offset + spans[sbn].length));
  await s.commit();
  expect((await fs.readFile(path.join(dir, 'x.bin'))).equals(other)).toBe(true);
});

test('a new version (the object replaced on the server) opened while the old one is being taken back waits for it (SinkObject.after): neither touches the other\'s files', async () => {
  const factory = new FileSinkFactory({ outputDir: dir, resume: 'continue' });
  const old = factory.open(object) as ResumableFileSink;
  expect(await old.resumed).toEqual([]);
  for (const sbn of [0, 1, 2]) await old.writeBlock(sbn, spans[sbn].offset, block(sbn));
  const other = randomBytes(data.length);
  // As the registry does: the old sink's abort starts, and the new version's sink is opened at once.
  const released = old.abort();
  const next = factory.open({ ...object, sha256: sha(other), after: released }) as ResumableFileSink;
  expect(await next.resumed).toEqual([]);
  for (let sbn = 0; sbn < 5; sbn++) await next.writeBlock(sbn, spans[sbn].offset, other.subarray(spans[sbn].offset, spans[sbn].offset + spans[sbn].length));
  await next.commit();
  expect((await fs.readFile(path.join(dir, 'x.bin'))).equals(other)).toBe(true);
  expect(await fs.readdir(dir)).toEqual(['x.bin']);
});

test('another OTI (same digest) is another version too', async () => {
  await interrupted([0]);
  const s = sink('continue', { ...object, oti: { ...object.oti, sourceBlocks: 4 } });
  expect(await s.resumed).toEqual([]);
  await s.abort();
  expect(await fs.readdir(dir)).toEqual([]);
});

test("'restart' (--no-resume) discards what was kept and starts over; it is itself resumable", async () => {
  await interrupted([0, 1, 2]);
  const s = sink('restart');
  expect(await s.resumed).toEqual([]);
  await s.writeBlock(4, spans[4].offset, block(4));
  expect(await s.suspend()).toMatchObject({ blocksKept: 1 });
  const again = sink();
  expect(await again.resumed).toEqual([4]);
  await finish(again, [0, 1, 2, 3]);
});

test('a digest mismatch at commit leaves nothing: no part file, journal or lock', async () => {
  const wrong: SinkObject = { ...object, sha256: Buffer.alloc(32, 7) };
  const s = sink('continue', wrong);
  for (let sbn = 0; sbn < 5; sbn++) await s.writeBlock(sbn, spans[sbn].offset, block(sbn));
  await expect(s.commit()).rejects.toBeInstanceOf(DigestMismatchError);
  expect(await fs.readdir(dir)).toEqual([]);
});

test('abort takes everything back', async () => {
  await interrupted([0, 1]);
  const s = sink();
  await s.resumed;
  await s.writeBlock(2, spans[2].offset, block(2));
  await s.abort();
  expect(await fs.readdir(dir)).toEqual([]);
});

test('stopped before any block: nothing is left behind', async () => {
  const s = sink();
  await s.resumed;
  expect(await s.suspend()).toBeUndefined();
  expect(await fs.readdir(dir)).toEqual([]);
});

test('a second fetch of the same destination is refused while the first runs (its pid named), and its end leaves the first one’s files; after it, it resumes', async () => {
  const first = sink();
  await first.resumed;
  await first.writeBlock(0, spans[0].offset, block(0));
  // Another fetch (another factory: another RqcastClient) of the same destination, while the first holds it.
  const second = new FileSinkFactory({ outputDir: dir, resume: 'continue' }).open(object) as ResumableFileSink;
  await expect(second.resumed).rejects.toBeInstanceOf(UnfetchableObjectError);
  await expect(second.resumed).rejects.toThrow(new RegExp(`pid ${process.pid}\\) is writing .*x\\.bin; wait for it to end`));
  expect(await second.suspend()).toBeUndefined();
  await first.suspend();
  const third = sink();
  expect(await third.resumed).toEqual([0]);
  await finish(third, [1, 2, 3, 4]);
});

test('a lock left by a killed fetch is taken over, and the random-named temporary files of earlier versions are removed', async () => {
  await interrupted([1]);
  await fs.writeFile(path.join(dir, '.x.bin.rqcast-lock'), '4194305\n');
  await fs.writeFile(path.join(dir, '.x.bin.rqcast-tmp-deadbeef'), Buffer.alloc(data.length));
  const warnings: string[] = [];
  const s = sink('continue', object, warnings);
  expect(await s.resumed).toEqual([1]);
  expect(warnings.join('\n')).toMatch(/removed 1 temporary file an interrupted fetch left/);
  await finish(s, [0, 2, 3, 4]);
});

test('a symlink planted at the part file is not followed', async () => {
  await interrupted([0]);
  const target = path.join(dir, 'elsewhere');
  await fs.writeFile(target, Buffer.alloc(data.length));
  await fs.rm(path.join(dir, '.x.bin.rqcast-part'));
  await fs.symlink(target, path.join(dir, '.x.bin.rqcast-part'));
  const s = sink();
  expect(await s.resumed).toEqual([]);
  for (let sbn = 0; sbn < 5; sbn++) await s.writeBlock(sbn, spans[sbn].offset, block(sbn));
  await s.commit();
  expect((await fs.readFile(path.join(dir, 'x.bin'))).equals(data)).toBe(true);
  expect((await fs.readFile(target)).equals(Buffer.alloc(data.length))).toBe(true);
  expect((await fs.readdir(dir)).sort()).toEqual(['elsewhere', 'x.bin']);
});

describe('source symbols written through (blocks not decoded yet)', () => {
  const T = object.oti.symbolSize;

  test('recorded once written; the next fetch hands back the verified ones, not those of kept blocks, not a torn one', async () => {
    const first = sink();
    await first.resumed;
    // Block 0 decoded (its symbols were written through first); blocks 1 and 4 only have runs.
    first.prewrite(spans[0].offset, block(0).subarray(0, 4 * T));
    await first.writeBlock(0, spans[0].offset, block(0));
    const r1 = { offset: spans[1].offset + 2 * T, length: 10 * T };
    const r2 = { offset: spans[1].offset + 20 * T, length: 5 * T };
    const r4 = { offset: spans[4].offset + T, length: spans[4].length - T };
    for (const r of [r1, r2, r4]) first.prewrite(r.offset, data.subarray(r.offset, r.offset + r.length));
    const kept = await first.suspend();
    expect(kept).toMatchObject({ blocksKept: 1, symbolBytesKept: r1.length + r2.length + r4.length });
    // r2 torn.
    const h = await fs.open(path.join(dir, '.x.bin.rqcast-part'), 'r+');
    await h.write(Buffer.from([data[r2.offset + 7] ^ 0x80]), 0, 1, r2.offset + 7);
    await h.close();

    const second = sink();
    expect(await second.resumed).toEqual([0]);
    const got: [number, Buffer][] = [];
    expect(await second.resumeSymbols((offset, bytes) => got.push([offset, Buffer.from(bytes)]))).toBe(r1.length + r4.length);
    // prewrite does not wait, so the runs' records may land in either order.
    got.sort((a, b) => a[0] - b[0]);
    expect(got.map(([o, b]) => [o, b.length])).toEqual([
      [r1.offset, r1.length],
      [r4.offset, r4.length],
    ]);
    for (const [o, b] of got) expect(b.equals(data.subarray(o, o + b.length))).toBe(true);
    await finish(second, [1, 2, 3, 4]);
  });

  test('runs are hashed only for blocks not written by the time they are recorded: a decoded block\'s runs never are', async () => {
    // Runs wait for the fetch to stop (no delay elapses here).
    const first = new ResumableFileSink(object, path.join(dir, 'x.bin'), { mode: 'continue', runRecordDelayMs: Infinity });
    await first.resumed;
    const r0 = { offset: spans[0].offset, length: 20 * T };
    const r1 = { offset: spans[1].offset + 2 * T, length: 10 * T };
    const r2 = { offset: spans[2].offset, length: 3 * T };
    const landed = [r0, r1, r2].map((r) => first.prewrite(r.offset, data.subarray(r.offset, r.offset + r.length)));
    expect(await Promise.all(landed)).toEqual([true, true, true]);
    // Blocks 0 and 1 decode: their runs are covered by the blocks' records.
    await first.writeBlock(0, spans[0].offset, block(0));
    await first.writeBlock(1, spans[1].offset, block(1));
    const kept = await first.suspend();
    expect(kept).toMatchObject({ blocksKept: 2, symbolBytesKept: r2.length });
    // Nothing hashed but block 2's run (the blocks are prefixes of the running digest).
    expect(first.stats).toMatchObject({ runsHashed: 1, runsSkipped: 2, blocksHashed: 0, bytesHashed: r2.length });
    const p = parseState(await fs.readFile(path.join(dir, '.x.bin.rqcast-state')), object);
    expect(p.runs.map((r) => [r.offset, r.length])).toEqual([[r2.offset, r2.length]]);
    expect(p.runs[0].digest.equals(sha(data.subarray(r2.offset, r2.offset + r2.length)))).toBe(true);
    const second = sink();
    expect(await second.resumed).toEqual([0, 1]);
    expect(await second.resumeSymbols(() => undefined)).toBe(r2.length);
    await finish(second, [2, 3, 4]);
  });

  test('a run due while its block is still not written is recorded without a stop (what a kill -9 keeps), hashed as the part file holds it', async () => {
    const s = new ResumableFileSink(object, path.join(dir, 'x.bin'), { mode: 'continue', runRecordDelayMs: 0 });
    await s.resumed;
    const r = { offset: spans[3].offset + T, length: 7 * T };
    expect(await s.prewrite(r.offset, data.subarray(r.offset, r.offset + r.length))).toBe(true);
    await s.recordDueRuns();
    expect(s.stats).toMatchObject({ runsHashed: 1, bytesHashed: r.length });
    // The journal's group write follows the part file's fdatasync: read it until the record is there (no stop).
    let p = parseState(await fs.readFile(path.join(dir, '.x.bin.rqcast-state')), object);
    while (p.runs.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      p = parseState(await fs.readFile(path.join(dir, '.x.bin.rqcast-state')), object);
    }
    expect(p.runs.map((x) => [x.offset, x.length])).toEqual([[r.offset, r.length]]);
    expect(p.runs[0].digest.equals(sha(data.subarray(r.offset, r.offset + r.length)))).toBe(true);
    // Recorded once: the stop records nothing more.
    await s.suspend();
    expect(s.stats.runsHashed).toBe(1);
  });

  test('only runs kept (no block decoded): the part file and journal stay, and the next fetch resumes them', async () => {
    const first = sink();
    await first.resumed;
    const r = { offset: spans[2].offset, length: 8 * T };
    first.prewrite(r.offset, data.subarray(r.offset, r.offset + r.length));
    expect(await first.suspend()).toMatchObject({ blocksKept: 0, symbolBytesKept: r.length });
    const second = sink();
    expect(await second.resumed).toEqual([]);
    let n = 0;
    await second.resumeSymbols(() => n++);
    expect(n).toBe(1);
    await finish(second, [0, 1, 2, 3, 4]);
  });
});

test('an object named like another object’s part file, journal or lock is refused (hostile FDT): it could be published over them', async () => {
  const f = new FileSinkFactory({ outputDir: dir, resume: 'continue' });
  for (const name of ['.x.bin.rqcast-part', 'sub/.x.bin.rqcast-state', '.x.bin.rqcast-state.new', '.x.bin.rqcast-lock', '.x.bin.rqcast-tmp-0123abcd']) {
    expect(() => f.open({ ...object, name })).toThrow(/temporary files of a fetch/);
  }
  // Names that merely resemble them are fine.
  for (const name of ['x.rqcast-part', '.x.rqcast-partial', '.rqcast-lock', 'notes.rqcast-state.txt']) {
    const s = f.open({ ...object, name }) as ResumableFileSink;
    expect(await s.resumed).toEqual([]);
    await s.abort();
  }
  expect(await fs.readdir(dir)).toEqual([]);
});

describe('a fresh destination (nothing left by an earlier fetch)', () => {
  test('no lock until the first write; a second fetch of it is then refused at its first write, and its abort leaves the first one’s files alone', async () => {
    const first = sink();
    const second = sink();
    expect(await first.resumed).toEqual([]);
    expect(await second.resumed).toEqual([]);
    expect(await fs.readdir(dir)).toEqual([]);
    await first.writeBlock(0, spans[0].offset, block(0));
    expect((await fs.readdir(dir)).sort()).toEqual(['.x.bin.rqcast-lock', '.x.bin.rqcast-part', '.x.bin.rqcast-state']);
    await expect(second.writeBlock(1, spans[1].offset, block(1))).rejects.toThrow(new RegExp(`another rqcast fetch \\(pid ${process.pid}\\)`));
    await second.abort();
    expect((await fs.readdir(dir)).sort()).toEqual(['.x.bin.rqcast-lock', '.x.bin.rqcast-part', '.x.bin.rqcast-state']);
    await finish(first, [1, 2, 3, 4]);
  });

  test('debris of earlier versions is swept at the first write, the directory listed once for every object of the fetch', async () => {
    await fs.writeFile(path.join(dir, '.a.rqcast-tmp-00000001'), 'debris');
    await fs.writeFile(path.join(dir, '.b.rqcast-tmp-00000002'), 'debris');
    const spy = jest.spyOn(fs, 'readdir');
    const f = new FileSinkFactory({ outputDir: dir, resume: 'continue' });
    const sinks = ['a', 'b', 'c'].map((name) => f.open({ ...object, name }) as ResumableFileSink);
    for (const s of sinks) {
      await s.resumed;
      await s.writeBlock(0, spans[0].offset, block(0));
    }
    expect(spy.mock.calls.filter(([d]) => path.resolve(String(d)) === path.resolve(dir))).toHaveLength(1);
    spy.mockRestore();
    for (const s of sinks) await s.abort();
    expect(await fs.readdir(dir)).toEqual([]);
  });
});
