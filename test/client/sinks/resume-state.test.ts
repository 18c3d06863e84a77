/**
 * The resume journal (lib/client/sinks/resume-state.ts): the RFC 6330 block
 * partition it checks blocks against, its records read back after a cut at
 * any byte (kill -9 or power loss mid-append), a corrupt record, another
 * object's header, the lock and the debris of earlier versions.
 */
import { createHash, randomBytes } from 'crypto';
import fc from 'fast-check';
import { promises as fs, statSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Oti } from '../../../lib/fec/oti';
import type { Oti as WireOti } from '../../../lib/protocol/oti';
import {
  blockSpans,
  encodeBlockRecord,
  encodePrefixRecord,
  encodeRunRecord,
  encodeStateHeader,
  HEADER_SIZE,
  parseState,
  partialPaths,
  PREFIX_RECORD_SIZE,
  RECORD_SIZE,
  releaseLock,
  removeLegacyTemps,
  ResumeJournal,
  type SymbolRun,
  takeLock,
  verifyBlocks,
  verifyRuns,
} from '../../../lib/client/sinks/resume-state';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-resume-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();
const oti: WireOti = { transferLength: 1_000_003, symbolSize: 1280, sourceBlocks: 7, subBlocks: 1, alignment: 4 };
const id = { oti, sha256: sha(Buffer.from('the object')) };

describe('blockSpans', () => {
  test('agrees with the codec’s RFC 6330 §4.4.1.2 layout, block by block', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40_000_000 }), fc.integer({ min: 1, max: 320 }), fc.integer({ min: 1, max: 256 }), (F, t, zWanted) => {
        const T = t * 4;
        const Kt = Math.ceil(F / T);
        const Z = Math.min(zWanted, Kt);
        // Blocks of at most 56403 symbols (RFC 6330 Table 2): skip what no encoder makes.
        fc.pre(Math.ceil(Kt / Z) <= 56_403);
        const layout = Oti.from({ F, T, Z, N: 1, Al: 4 }).layout;
        const spans = blockSpans({ transferLength: F, symbolSize: T, sourceBlocks: Z, subBlocks: 1, alignment: 4 });
        expect(spans).toHaveLength(Z);
        spans.forEach((s, sbn) => {
          expect(s.offset).toBe(layout.blockOffset(sbn));
          expect(s.length).toBe(layout.blockLength(sbn));
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe('the journal', () => {
  const records: [number, Buffer][] = [
    [3, sha(Buffer.from('3'))],
    [0, sha(Buffer.from('0'))],
    [6, sha(Buffer.from('6'))],
  ];
  const journal = Buffer.concat([encodeStateHeader(id), ...records.map(([s, d]) => encodeBlockRecord(s, d))]);

  test('reads back every record of this object', () => {
    const p = parseState(journal, id);
    expect(p.header).toBe('match');
    expect([...p.blocks.keys()]).toEqual([3, 0, 6]);
    expect(p.blocks.get(6)?.equals(records[2][1])).toBe(true);
    expect(p.validBytes).toBe(journal.length);
  });

  test('cut at any byte (a torn append): exactly the whole records before the cut, never a partial one', () => {
    for (let cut = 0; cut <= journal.length; cut++) {
      const p = parseState(journal.subarray(0, cut), id);
      if (cut < HEADER_SIZE) {
        expect(p.header).toBe('invalid');
        continue;
      }
      const whole = Math.floor((cut - HEADER_SIZE) / RECORD_SIZE);
      expect([...p.blocks.keys()]).toEqual(records.slice(0, whole).map(([s]) => s));
      expect(p.validBytes).toBe(HEADER_SIZE + whole * RECORD_SIZE);
      expect(p.ignoredBytes).toBe(cut - p.validBytes);
    }
  });

  test('a flipped bit in a record ends the journal there; in the header, the journal is not this object’s', () => {
    for (let bit = 0; bit < journal.length * 8; bit += 7) {
      const bad = Buffer.from(journal);
      bad[bit >> 3] ^= 1 << (bit & 7);
      const p = parseState(bad, id);
      const at = bit >> 3;
      if (at < HEADER_SIZE) {
        expect(p.header).not.toBe('match');
        expect(p.blocks.size).toBe(0);
      } else {
        const r = Math.floor((at - HEADER_SIZE) / RECORD_SIZE);
        expect([...p.blocks.keys()]).toEqual(records.slice(0, r).map(([s]) => s));
      }
    }
  });

  test('another digest or OTI: "other", no blocks', () => {
    expect(parseState(journal, { oti, sha256: sha(Buffer.from('changed')) }).header).toBe('other');
    expect(parseState(journal, { oti: { ...oti, transferLength: oti.transferLength + 1 }, sha256: id.sha256 }).header).toBe('other');
    expect(parseState(journal, { oti: { ...oti, symbolSize: 640 }, sha256: id.sha256 }).blocks.size).toBe(0);
  });

  test('a record naming a block the object does not have ends the journal', () => {
    const bad = Buffer.concat([encodeStateHeader(id), encodeBlockRecord(1, sha(Buffer.from('1'))), encodeBlockRecord(7, sha(Buffer.from('7'))), encodeBlockRecord(2, sha(Buffer.from('2')))]);
    expect([...parseState(bad, id).blocks.keys()]).toEqual([1]);
  });

  test('ResumeJournal: the part file is synced before each group of records is written, and records land in order', async () => {
    const statePath = path.join(dir, 'state');
    // The journal's size at each sync of the part file: no record of a group is written before its sync.
    const events: number[] = [];
    const j = await ResumeJournal.write(statePath, id, [[2, sha(Buffer.from('2'))]], async () => {
      events.push(statSync(statePath).size);
    });
    for (const sbn of [4, 1, 5]) j.record(sbn, sha(Buffer.from(String(sbn))));
    await j.idle();
    j.record(0, sha(Buffer.from('0')));
    await j.close();
    const p = parseState(await fs.readFile(statePath), id);
    expect([...p.blocks.keys()]).toEqual([2, 4, 1, 5, 0]);
    // One sync per group (the first record starts a group, those queued meanwhile make the next).
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.length).toBeLessThanOrEqual(4);
    expect(events[0]).toBe(HEADER_SIZE + RECORD_SIZE);
    for (let i = 1; i < events.length; i++) expect(events[i]).toBeGreaterThan(events[i - 1]);
    expect(events[events.length - 1]).toBeLessThan(HEADER_SIZE + 5 * RECORD_SIZE);
    expect(await fs.readdir(dir)).toEqual(['state']);
  });
});

describe('run records (source symbols written through)', () => {
  const mixed: Buffer[] = [
    encodeBlockRecord(1, sha(Buffer.from('1'))),
    encodeRunRecord(1280 * 10, 1280 * 4, sha(Buffer.from('r1'))),
    encodeBlockRecord(5, sha(Buffer.from('5'))),
    encodeRunRecord(oti.transferLength - 3, 3, sha(Buffer.from('r2'))),
  ];
  const journal = Buffer.concat([encodeStateHeader(id), ...mixed]);

  test('mixed with block records, cut at any byte: exactly the whole records before the cut', () => {
    const ends: number[] = [];
    let at = HEADER_SIZE;
    for (const r of mixed) ends.push((at += r.length));
    for (let cut = HEADER_SIZE; cut <= journal.length; cut++) {
      const p = parseState(journal.subarray(0, cut), id);
      const whole = ends.filter((e) => e <= cut).length;
      expect(p.validBytes).toBe(whole === 0 ? HEADER_SIZE : ends[whole - 1]);
      expect(p.blocks.size + p.runs.length).toBe(whole);
    }
    const p = parseState(journal, id);
    expect([...p.blocks.keys()]).toEqual([1, 5]);
    expect(p.runs.map((r) => [r.offset, r.length])).toEqual([
      [12_800, 5120],
      [oti.transferLength - 3, 3],
    ]);
  });

  test('a run past the object’s end, or empty, ends the journal', () => {
    for (const bad of [encodeRunRecord(oti.transferLength - 3, 4, sha(Buffer.from('x'))), encodeRunRecord(0, 0, sha(Buffer.from('x')))]) {
      const p = parseState(Buffer.concat([encodeStateHeader(id), mixed[0], bad, mixed[2]]), id);
      expect([...p.blocks.keys()]).toEqual([1]);
      expect(p.runs).toEqual([]);
    }
  });

  test('verifyRuns keeps the runs that hash to their record, on a symbol boundary, inside one block not kept whole', async () => {
    const small: WireOti = { transferLength: 10_000, symbolSize: 100, sourceBlocks: 4, subBlocks: 1, alignment: 4 };
    const data = randomBytes(small.transferLength);
    const spans = blockSpans(small);
    const part = path.join(dir, 'part');
    await fs.writeFile(part, data);
    const run = (offset: number, length: number): SymbolRun => ({ offset, length, digest: sha(data.subarray(offset, offset + length)) });
    const good = run(spans[1].offset + 300, 500);
    const inKept = run(spans[0].offset, 200);
    const misaligned = run(spans[1].offset + 50, 100);
    const crossing = run(spans[2].offset - 100, 200);
    const torn = { ...run(spans[3].offset, 300), digest: sha(Buffer.from('other bytes')) };
    const last = run(spans[3].offset + spans[3].length - 100, 100);
    const h = await fs.open(part, 'r');
    const v = await verifyRuns(h, small, spans, [good, inKept, misaligned, crossing, torn, last], new Set([0]));
    await h.close();
    expect(v).toEqual([good, last]);
  });
});

describe('verifyBlocks', () => {
  test('keeps the blocks whose bytes hash to their record; a torn one is refetched; the prefix digest covers the leading kept blocks', async () => {
    const small: WireOti = { transferLength: 10_000, symbolSize: 100, sourceBlocks: 4, subBlocks: 1, alignment: 4 };
    const data = randomBytes(small.transferLength);
    const spans = blockSpans(small);
    const part = path.join(dir, 'part');
    await fs.writeFile(part, data);
    const rec = new Map(spans.map((s, sbn) => [sbn, sha(data.subarray(s.offset, s.offset + s.length))] as [number, Buffer]));
    // Block 1 torn: one byte differs on disk.
    const h = await fs.open(part, 'r+');
    await h.write(Buffer.from([data[spans[1].offset + 17] ^ 0xff]), 0, 1, spans[1].offset + 17);
    const v = await verifyBlocks(h, spans, rec);
    await h.close();
    expect(v.kept).toEqual([0, 2, 3]);
    expect(v.torn).toEqual([1]);
    expect(v.prefixBytes).toBe(spans[0].length);
    expect(v.prefix.digest().equals(sha(data.subarray(0, spans[0].length)))).toBe(true);
  });
});

describe('prefix records (the blocks that start the object, from the running digest)', () => {
  const small: WireOti = { transferLength: 10_000, symbolSize: 100, sourceBlocks: 4, subBlocks: 1, alignment: 4 };
  const smallId = { oti: small, sha256: sha(Buffer.from('small')) };
  const spans = blockSpans(small);
  const end = (sbn: number): number => spans[sbn].offset + spans[sbn].length;

  test('read back after a cut at any byte: the whole records before it; past the object or zero ends the journal', () => {
    const ends = [end(0), end(1), end(2)];
    const journal = Buffer.concat([encodeStateHeader(smallId), ...ends.map((n) => encodePrefixRecord(n, sha(Buffer.from(String(n)))))]);
    for (let cut = HEADER_SIZE; cut <= journal.length; cut++) {
      const p = parseState(journal.subarray(0, cut), smallId);
      const whole = Math.floor((cut - HEADER_SIZE) / PREFIX_RECORD_SIZE);
      expect([...p.prefixes.keys()]).toEqual(ends.slice(0, whole));
      expect(p.validBytes).toBe(HEADER_SIZE + whole * PREFIX_RECORD_SIZE);
    }
    for (const bad of [0, small.transferLength + 1]) {
      const j = Buffer.concat([encodeStateHeader(smallId), encodePrefixRecord(end(0), sha(Buffer.from('a'))), encodePrefixRecord(bad, sha(Buffer.from('b')))]);
      expect([...parseState(j, smallId).prefixes.keys()]).toEqual([end(0)]);
    }
  });

  test('verifyBlocks keeps the blocks of the longest recorded prefix that still hashes to its record; the blocks after a torn byte are fetched again, one with a block record of its own is not', async () => {
    const data = randomBytes(small.transferLength);
    const part = path.join(dir, 'part');
    await fs.writeFile(part, data);
    const prefixes = new Map([end(0), end(1), end(2)].map((n) => [n, sha(data.subarray(0, n))] as [number, Buffer]));
    // Block 3 has a block record; a prefix record that is not a block's end is ignored.
    const blocks = new Map([[3, sha(data.subarray(spans[3].offset, end(3)))]]);
    const odd = new Map([...prefixes, [end(1) - 1, sha(data.subarray(0, end(1) - 1))]]);
    let h = await fs.open(part, 'r');
    let v = await verifyBlocks(h, spans, blocks, odd);
    await h.close();
    expect(v).toMatchObject({ kept: [0, 1, 2, 3], torn: [], prefixBytes: end(3) });
    expect(v.prefix.digest().equals(sha(data))).toBe(true);
    // A byte of block 1 changed: the prefix holds up to block 0; blocks 1 and 2 (covered only by the prefix) are torn.
    h = await fs.open(part, 'r+');
    await h.write(Buffer.from([data[spans[1].offset + 3] ^ 0x01]), 0, 1, spans[1].offset + 3);
    v = await verifyBlocks(h, spans, blocks, prefixes);
    await h.close();
    expect(v).toMatchObject({ kept: [0, 3], torn: [1, 2], prefixBytes: end(0) });
    expect(v.prefix.digest().equals(sha(data.subarray(0, end(0))))).toBe(true);
  });

  test('ResumeJournal.write holds the verified prefix as one record, then the other blocks', async () => {
    const statePath = path.join(dir, 'state');
    const j = await ResumeJournal.write(statePath, smallId, [[3, sha(Buffer.from('3'))]], async () => undefined, [], { bytes: end(1), digest: sha(Buffer.from('p')) });
    j.recordPrefix(end(2), sha(Buffer.from('q')));
    await j.close();
    const p = parseState(await fs.readFile(statePath), smallId);
    expect([...p.prefixes.keys()]).toEqual([end(1), end(2)]);
    expect(p.prefixes.get(end(1))?.equals(sha(Buffer.from('p')))).toBe(true);
    expect([...p.blocks.keys()]).toEqual([3]);
  });
});

describe('lock and debris', () => {
  test('a lock held by a live process is refused (its pid returned); one of a dead process is taken over; release removes only ours', async () => {
    const { lock } = partialPaths(path.join(dir, 'x.bin'));
    expect(await takeLock(lock)).toBeUndefined();
    expect(Number(await fs.readFile(lock, 'utf8'))).toBe(process.pid);
    // Held by this process: a second taker here is refused too.
    expect(await takeLock(lock)).toBe(process.pid);
    await releaseLock(lock);
    await expect(fs.stat(lock)).rejects.toThrow(/ENOENT/);
    // Our parent is alive: its lock is respected.
    await fs.writeFile(lock, `${process.ppid}\n`);
    expect(await takeLock(lock)).toBe(process.ppid);
    await releaseLock(lock);
    expect(await fs.readFile(lock, 'utf8')).toBe(`${process.ppid}\n`);
    // A pid no process has (above pid_max's ceiling): taken over.
    await fs.writeFile(lock, '4194305\n');
    expect(await takeLock(lock)).toBeUndefined();
    await releaseLock(lock);
    await expect(fs.stat(lock)).rejects.toThrow(/ENOENT/);
    // Our own pid, not held by this process: left by an earlier process that had our pid (a container's pid 1): taken over.
    await fs.writeFile(lock, `${process.pid}\n`);
    expect(await takeLock(lock)).toBeUndefined();
    await releaseLock(lock);
  });

  test('removeLegacyTemps removes the random-named temporary files of the same destination only', async () => {
    const final = path.join(dir, 'x.bin');
    const names = ['.x.bin.rqcast-tmp-0123abcd', '.x.bin.rqcast-tmp-ffffffff', '.x.bin.rqcast-tmp-nothex!!', '.y.bin.rqcast-tmp-0123abcd', 'x.bin', '.x.bin.rqcast-part'];
    for (const n of names) await fs.writeFile(path.join(dir, n), 'z');
    await fs.mkdir(path.join(dir, '.x.bin.rqcast-tmp-00000000'));
    expect((await removeLegacyTemps(final)).sort()).toEqual(['.x.bin.rqcast-tmp-0123abcd', '.x.bin.rqcast-tmp-ffffffff']);
    expect((await fs.readdir(dir)).sort()).toEqual(['.x.bin.rqcast-part', '.x.bin.rqcast-tmp-00000000', '.x.bin.rqcast-tmp-nothex!!', '.y.bin.rqcast-tmp-0123abcd', 'x.bin']);
  });
});
