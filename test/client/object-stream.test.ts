/**
 * client.stream(name) (lib/client/object-stream.ts): a Readable of the
 * object's bytes in order. Files from the scripted server (fake-server.ts,
 * 16 source blocks): bytes equal the file; a consumer that does not read
 * holds decoded bytes within the client's budget while the symbols that do
 * not fit are dropped (counted), then reads the whole object bit-exact; a
 * digest that does not match errors the stream after the last byte. Live
 * from the real server (LiveSource): a paused consumer makes the client
 * skip the oldest waiting segments (gaps, counted and told), then it reads
 * newer segments in order. No timing thresholds: the tests wait for counts.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough, Readable } from 'stream';
import { RqcastClient } from '../../lib/client/client';
import { BudgetedReceiver, PartialBlockBudget } from '../../lib/client/block-budget';
import { DigestMismatchError, FetchAbortedError, InvalidClientOptionError } from '../../lib/client/errors';
import { LiveGap, LivePlayout } from '../../lib/client/live-playout';
import { ObjectStream, StreamGap } from '../../lib/client/object-stream';
import type { FdtFile } from '../../lib/protocol/fdt-schema';
import { Catalogue } from '../../lib/content/catalogue';
import { LiveSegment, LiveSource } from '../../lib/content/live-source';
import { RqcastServer } from '../../lib/server/server';
import { FakeServer, FakeServerOptions } from './fake-server';

jest.setTimeout(60_000);

let dir: string;
const servers: FakeServer[] = [];
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-object-stream-'));
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function serve(o: FakeServerOptions): Promise<number> {
  const server = new FakeServer(o);
  servers.push(server);
  return server.listen();
}

/** Waits (without a deadline of its own: jest's bounds it) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const FILE = randomBytes(2 * 1024 * 1024);
const BLOCKS = 16;

test('a file: the stream gives its bytes in order, equal to the file, then ends; fetch() resolves with the same run', async () => {
  const port = await serve({ objects: [{ name: 'a.bin', data: FILE }], symbolSize: 1024, sourceBlocks: BLOCKS, burst: 32 });
  const client = new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: dir, timeoutMs: 20_000, retryMs: 20, transport: 'udp' });
  const stream = client.stream('a.bin');
  const [got, summary] = await Promise.all([readAll(stream), client.fetch()]);
  expect(got.equals(FILE)).toBe(true);
  expect(stream.stats.chunksOut).toBe(BLOCKS);
  expect(stream.stats.bytesOut).toBe(FILE.length);
  expect(stream.stats.heldBytes).toBe(0);
  expect(client.budget.heldBytes).toBe(0);
  expect(summary.objects.map((o) => o.name)).toEqual(['a.bin']);
  // Nothing was written to the output directory.
  expect(await fs.readdir(dir)).toEqual([]);
});

test('a consumer that does not read: decoded bytes held stay within the budget, symbols that do not fit are dropped; then the object completes bit-exact', async () => {
  const port = await serve({ objects: [{ name: 'a.bin', data: FILE }], symbolSize: 1024, sourceBlocks: BLOCKS, burst: 32 });
  const client = new RqcastClient(`rqcast://127.0.0.1:${port}/main/a.bin`, {
    outputDir: dir,
    timeoutMs: 20_000,
    retryMs: 20,
    transport: 'udp',
    // Far less than the 2 MiB object (the client raises it to two blocks' worth).
    memoryBytes: 300_000,
  });
  const stream = client.stream('a.bin');
  const budget = client.budget;
  // Nobody reads: decoded blocks wait, the budget fills, and a full pass of symbols is dropped meanwhile.
  await until(() => budget.stats.symbolsDropped >= 2 * (FILE.length / 1024));
  expect(stream.stats.chunksOut).toBe(0);
  expect(stream.stats.heldBytes).toBeGreaterThan(0);
  const limit = budget.limitBytes;
  expect(limit).toBeLessThan(FILE.length / 2);
  // Held bytes count against the budget, which is passed by at most one priority block.
  expect(stream.stats.peakHeldBytes).toBeLessThanOrEqual(limit + budget.stats.peakPriorityBytes);
  expect(budget.stats.peakBytes).toBeLessThanOrEqual(limit + budget.stats.peakPriorityBytes);
  expect(stream.stats.peakHeldBytes).toBeLessThan(FILE.length / 2);
  const heldWhilePaused = stream.stats.peakHeldBytes;
  console.log(
    `object-stream paused: budget ${limit} B, peak held ${heldWhilePaused} B, peak reserved ${budget.stats.peakBytes} B, ` +
      `priority admissions ${budget.stats.priorityAdmissions} (largest ${budget.stats.peakPriorityBytes} B), symbols dropped ${budget.stats.symbolsDropped}`,
  );
  // Reading resumes: the rest decodes from the stream that kept coming.
  const got = await readAll(stream);
  expect(got.equals(FILE)).toBe(true);
  expect(stream.stats.chunksOut).toBe(BLOCKS);
  expect(stream.stats.heldBytes).toBe(0);
  expect(budget.heldBytes).toBe(0);
  expect(heldWhilePaused).toBeLessThanOrEqual(stream.stats.peakHeldBytes);
  await client.fetch();
});

test('a digest that does not match: every byte is handed out in order, then the stream errors with DigestMismatchError', async () => {
  const port = await serve({ objects: [{ name: 'a.bin', data: FILE, sha256: Buffer.alloc(32, 1) }], symbolSize: 1024, sourceBlocks: BLOCKS, burst: 32 });
  const client = new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: dir, timeoutMs: 20_000, retryMs: 20, transport: 'udp' });
  const stream = client.stream('a.bin');
  const fetched = client.fetch().catch((e: unknown) => e);
  const chunks: Buffer[] = [];
  const err = await new Promise<unknown>((resolve) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', resolve);
    stream.on('end', () => resolve(new Error('the stream ended without an error')));
  });
  expect(err).toBeInstanceOf(DigestMismatchError);
  expect(Buffer.concat(chunks).equals(FILE)).toBe(true);
  expect(await fetched).toBeInstanceOf(DigestMismatchError);
});

test('stream() checks its use: a name other than the URL\'s, after fetch(), beside an output file, with resume', async () => {
  const port = await serve({ objects: [{ name: 'a.bin', data: FILE }], symbolSize: 1024, sourceBlocks: BLOCKS });
  const named = new RqcastClient(`rqcast://127.0.0.1:${port}/main/a.bin`, { outputDir: dir });
  expect(() => named.stream('b.bin')).toThrow(/names "a.bin", not "b.bin"/);
  const withFile = new RqcastClient(`rqcast://127.0.0.1:${port}/main/a.bin`, { outputFile: path.join(dir, 'x') });
  expect(() => withFile.stream('a.bin')).toThrow(InvalidClientOptionError);
  const resuming = new RqcastClient(`rqcast://127.0.0.1:${port}/main/a.bin`, { outputDir: dir, resume: 'continue' });
  expect(() => resuming.stream('a.bin')).toThrow(/resume is for files/);
  const started = new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: dir, timeoutMs: 20_000, retryMs: 20, transport: 'udp' });
  const done = started.fetch();
  expect(() => started.stream('a.bin')).toThrow(/before fetch\(\)/);
  await done;
});

test('live: a paused consumer makes the client skip the oldest waiting segments (gaps, counted and told), then newer segments follow in order', async () => {
  const catalogue = await Catalogue.load([]).catch(async () => {
    await fs.writeFile(path.join(dir, 'f.bin'), Buffer.from('x'));
    return Catalogue.load([path.join(dir, 'f.bin')]);
  });
  const input = new PassThrough();
  const SEG = 16 * 1024;
  const source = new LiveSource({ name: 'cam', dir: path.join(dir, 'spool'), blockBytes: SEG, blockMs: 60_000 });
  const segments: LiveSegment[] = [];
  source.on('segment', (s) => segments.push(s));
  await source.start(input);
  const server = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', rateMbps: 50, live: [{ name: 'cam', source }] });
  // Segment i is SEG bytes of the value i (mod 256), so the reader can tell which it got.
  let written = 0;
  const writeSegments = async (n: number): Promise<void> => {
    const target = written + n;
    for (; written < target; written++) input.write(Buffer.alloc(SEG, written % 256));
    await until(() => segments.length >= target);
  };
  try {
    const { port } = await server.listen();
    await writeSegments(1);
    const client = new RqcastClient(`rqcast://127.0.0.1:${port}/cam`, { outputDir: dir, timeoutMs: 20_000, retryMs: 20, transport: 'udp' });
    const stream = client.stream('cam', { maxQueuedSegments: 2 });
    const gaps: StreamGap[] = [];
    stream.on('gap', (g: StreamGap) => gaps.push(g));
    const fetched = client.fetch();
    // Nobody reads while 8 more segments arrive: at most 2 wait, the oldest are skipped.
    await until(() => client.playoutStats !== undefined && client.playoutStats.startSeq >= 0);
    await writeSegments(8);
    await until(() => (client.playoutStats?.segmentsWritten ?? 0) >= 9 - (client.playoutStats?.startSeq ?? 0));
    expect(stream.stats.chunksOut).toBe(0);
    expect(stream.stats.slowConsumerGaps).toBeGreaterThan(0);
    expect(stream.stats.peakQueuedSegments).toBe(2);
    expect(gaps.length).toBe(stream.stats.gaps);
    expect(gaps.every((g) => g.reason === 'slow-consumer')).toBe(true);
    // Reading resumes; 3 newer segments, then the input ends (the FDT completes, the stream ends).
    const reading = readAll(stream);
    await writeSegments(3);
    input.end();
    const got = await reading;
    await fetched;
    expect(got.length % SEG).toBe(0);
    const seqs: number[] = [];
    for (let i = 0; i < got.length; i += SEG) {
      const seg = got.subarray(i, i + SEG);
      expect(seg.every((b) => b === seg[0])).toBe(true);
      seqs.push(seg[0]);
    }
    // In order, the two kept while paused first, then the newer ones, and nothing given without a gap for it.
    const start = client.playoutStats!.startSeq;
    const skipped = gaps.map((g) => g.seq);
    const expected: number[] = [];
    for (let s = start; s < written; s++) if (!skipped.includes(s)) expected.push(s);
    expect(seqs).toEqual(expected);
    expect(seqs.slice(-3)).toEqual([9, 10, 11]);
    expect(skipped.length).toBe(9 - start - 2);
  } finally {
    await server.close();
    source.close?.();
    catalogue.close();
  }
});

test('the consumer destroys the stream: the fetch is aborted (FetchAbortedError) and the bytes it held are given back to the budget', async () => {
  const port = await serve({ objects: [{ name: 'a.bin', data: FILE }], symbolSize: 1024, sourceBlocks: BLOCKS, burst: 32 });
  const client = new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: dir, timeoutMs: 20_000, retryMs: 20, transport: 'udp', memoryBytes: 300_000 });
  const stream = client.stream('a.bin');
  const fetched = client.fetch().catch((e: unknown) => e);
  await until(() => stream.stats.heldBytes > 0);
  stream.destroy();
  expect(await fetched).toBeInstanceOf(FetchAbortedError);
  expect(stream.stats.heldBytes).toBe(0);
  expect(client.budget.heldBytes).toBe(0);
  expect(client.budget.priority).toBeUndefined();
});

describe('PartialBlockBudget hold/priority (what the stream relies on)', () => {
  const owner: BudgetedReceiver = {
    solveSlots: 1,
    solveBytes: 0,
    symbolsHeld: () => 0,
    evictable: () => false,
    lastArrival: () => 0,
    evict: () => undefined,
  };

  test('held bytes keep blocks out; the priority block is admitted past the limit, counted; unhold makes room again', () => {
    const budget = new PartialBlockBudget(1000);
    budget.hold(900);
    expect(budget.tryAdmit(owner, 1, 200, undefined)).toBe(false);
    budget.priority = (_o, sbn) => sbn === 0;
    expect(budget.tryAdmit(owner, 1, 200, undefined)).toBe(false);
    expect(budget.tryAdmit(owner, 0, 200, undefined)).toBe(true);
    expect(budget.usedBytes).toBe(1100);
    expect(budget.stats.priorityAdmissions).toBe(1);
    expect(budget.stats.peakPriorityBytes).toBe(200);
    expect(budget.stats.peakBytes).toBe(1100);
    budget.release(owner, 0);
    budget.unhold(900);
    expect(budget.usedBytes).toBe(0);
    expect(budget.heldBytes).toBe(0);
    expect(budget.tryAdmit(owner, 1, 200, undefined)).toBe(true);
    expect(budget.stats.priorityAdmissions).toBe(1);
  });
});

test('with 20% of packets lost (blocks decode out of order) and a paused consumer, the stream never stalls: the object completes bit-exact within the budget', async () => {
  const port = await serve({ objects: [{ name: 'a.bin', data: FILE }], symbolSize: 1024, sourceBlocks: BLOCKS, burst: 32 });
  const client = new RqcastClient(`rqcast://127.0.0.1:${port}`, {
    outputDir: dir,
    timeoutMs: 20_000,
    retryMs: 20,
    transport: 'udp',
    memoryBytes: 300_000,
    lossRate: 0.2,
    lossSeed: 7,
  });
  const stream = client.stream('a.bin');
  const budget = client.budget;
  await until(() => budget.stats.symbolsDropped >= FILE.length / 1024);
  const got = await readAll(stream);
  expect(got.equals(FILE)).toBe(true);
  expect(stream.stats.peakHeldBytes).toBeLessThanOrEqual(budget.limitBytes + budget.stats.peakPriorityBytes);
  expect(budget.stats.peakBytes).toBeLessThanOrEqual(budget.limitBytes + budget.stats.peakPriorityBytes);
  expect(budget.heldBytes).toBe(0);
  console.log(
    `object-stream 20% loss: budget ${budget.limitBytes} B, peak held ${stream.stats.peakHeldBytes} B, priority admissions ${budget.stats.priorityAdmissions}, symbols dropped ${budget.stats.symbolsDropped}`,
  );
  await client.fetch();
});

test('live, no network: a segment that leaves the window undecoded (LivePlayout) is a gap on the stream; the others come in order', async () => {
  const budget = new PartialBlockBudget(1 << 20);
  let aborted = 0;
  const stream = new ObjectStream(budget, { maxQueuedSegments: 8 }, () => aborted++);
  const gaps: StreamGap[] = [];
  stream.on('gap', (g: StreamGap) => gaps.push(g));
  const told: LiveGap[] = [];
  const p = new LivePlayout({ name: 'cam', target: stream, fromStart: true, onGap: (g) => told.push(g) });
  const bytes = (n: number): Buffer => Buffer.from(`segment ${n};`);
  const decode = async (n: number): Promise<void> => {
    const sink = p.open({
      name: `cam/${n}`,
      oti: { transferLength: bytes(n).length, symbolSize: 16, sourceBlocks: 1, subBlocks: 1, alignment: 4 },
      sha256: createHash('sha256').update(bytes(n)).digest(),
    });
    await sink.writeBlock(0, 0, bytes(n));
    void sink.commit();
    await new Promise((r) => setImmediate(r));
  };
  const seg = (n: number): FdtFile => ({ toi: BigInt(n + 1), contentLocation: `cam/${n}` }) as FdtFile;
  p.instance([seg(0), seg(1), seg(2)], false);
  await decode(0);
  await decode(2);
  // The server dropped segment 1 before it decoded here; then the input ended.
  p.instance([seg(2), seg(3)], true);
  await decode(3);
  stream.finish();
  const got = (await readAll(stream)).toString();
  expect(got).toBe('segment 0;segment 2;segment 3;');
  expect(gaps).toEqual([{ seq: 1, reason: 'left-window' }]);
  expect(told).toEqual([{ seq: 1, reason: 'left-window' }]);
  expect(stream.stats).toMatchObject({ gaps: 1, slowConsumerGaps: 0, chunksOut: 3 });
  expect(aborted).toBe(0);
  p.close();
});
