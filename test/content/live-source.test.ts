// LiveSource alone: a Readable in, segments on disk out. Segment closes are
// counted against a clock the test moves (Jest's fake timers drive the
// block timer), so no assertion depends on how fast this machine is.
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { LiveSegment, LiveSource } from '../../lib/content/live-source';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-live-'));
});
afterEach(async () => {
  jest.useRealTimers();
  await fs.rm(dir, { recursive: true, force: true });
});

/** Lets the source's promise chain (file writes) run. */
let current: LiveSource | undefined;
async function settle(): Promise<void> {
  const tick = (): Promise<void> => new Promise((r) => jest.requireActual<typeof import('timers')>('timers').setImmediate(r));
  for (let i = 0; i < 5; i++) {
    await tick();
    await current?.whenStored();
  }
}

function source(blockBytes: number, blockMs = 500, keepMs = 60_000): { live: LiveSource; input: PassThrough; segments: LiveSegment[]; dropped: LiveSegment[]; now: { t: number } } {
  const now = { t: 1_000_000 };
  const live = new LiveSource({ name: 'cam', dir, blockBytes, blockMs, keepMs, clock: () => now.t });
  current = live;
  const input = new PassThrough();
  const segments: LiveSegment[] = [];
  const dropped: LiveSegment[] = [];
  live.on('segment', (s) => segments.push(s));
  live.on('dropped', (s) => dropped.push(s));
  return { live, input, segments, dropped, now };
}

test('a segment closes when full: the bytes are cut at blockBytes, stored, hashed, in order', async () => {
  const { live, input, segments } = source(1000);
  await live.start(input);
  const data = Buffer.alloc(3500);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  input.write(data.subarray(0, 1700));
  input.write(data.subarray(1700));
  await settle();
  expect(segments.map((s) => [s.seq, s.streamOffset, s.length, s.closedBy])).toEqual([
    [0, 0, 1000, 'size'],
    [1, 1000, 1000, 'size'],
    [2, 2000, 1000, 'size'],
  ]);
  for (const s of segments) {
    const bytes = await fs.readFile(s.path);
    expect(bytes.equals(data.subarray(s.streamOffset, s.streamOffset + s.length))).toBe(true);
    expect(Buffer.from(s.sha256).equals(createHash('sha256').update(bytes).digest())).toBe(true);
  }
  await live.close();
});

test('a stalled input: the open segment closes on time; nothing closes while no byte comes; the end closes a short segment', async () => {
  jest.useFakeTimers();
  const { live, input, segments, now } = source(1000, 500);
  await live.start(input);
  input.write(Buffer.alloc(10, 1));
  await settle();
  now.t += 499;
  jest.advanceTimersByTime(499);
  await settle();
  expect(segments).toHaveLength(0);
  now.t += 1;
  jest.advanceTimersByTime(1);
  await settle();
  expect(segments.map((s) => [s.length, s.closedBy])).toEqual([[10, 'time']]);
  // Stalled: ten block times without a byte close nothing.
  now.t += 5000;
  jest.advanceTimersByTime(5000);
  await settle();
  expect(segments).toHaveLength(1);
  expect(live.stats.closedByTime).toBe(1);
  // Input ends mid-segment: the 7 bytes are the last segment, then 'end'.
  let ended = false;
  live.on('end', () => (ended = true));
  input.end(Buffer.alloc(7, 2));
  await settle();
  expect(segments.map((s) => [s.seq, s.length, s.closedBy])).toEqual([
    [0, 10, 'time'],
    [1, 7, 'end'],
  ]);
  expect(ended).toBe(true);
  expect(live.ended).toBe(true);
  await live.close();
});

test('segments older than keepMs are dropped from the list and from disk; the newest stays while the input runs', async () => {
  jest.useFakeTimers();
  const { live, input, segments, dropped, now } = source(100, 500, 2000);
  await live.start(input);
  for (let i = 0; i < 6; i++) {
    input.write(Buffer.alloc(100, i));
    await settle();
    now.t += 1000;
    jest.advanceTimersByTime(1000);
    await settle();
  }
  expect(segments).toHaveLength(6);
  // Closed at t0, t0+1000, …, t0+5000; now = t0+6000: those closed before t0+4000 are gone.
  expect(dropped.map((s) => s.seq)).toEqual([0, 1, 2, 3]);
  expect(live.segments.map((s) => s.seq)).toEqual([4, 5]);
  for (const s of dropped) await expect(fs.stat(s.path)).rejects.toThrow();
  for (const s of live.segments) expect((await fs.stat(s.path)).size).toBe(100);
  expect(await live.read(0)).toBeUndefined();
  expect((await live.read(5))?.[0]).toBe(5);
  now.t += 100_000;
  jest.advanceTimersByTime(100_000);
  await settle();
  expect(live.segments.map((s) => s.seq)).toEqual([5]);
  await live.close();
  expect(await fs.readdir(dir)).toEqual([]);
});

test('bad names and sizes are refused with what to use', () => {
  expect(() => new LiveSource({ name: '../x', dir, blockBytes: 10 })).toThrow(/A-Z a-z 0-9/);
  expect(() => new LiveSource({ name: 'a b', dir, blockBytes: 10 })).toThrow(/A-Z a-z 0-9/);
  expect(() => new LiveSource({ name: 'cam', dir, blockBytes: 0 })).toThrow(/blockBytes/);
  expect(() => new LiveSource({ name: 'cam', dir, blockBytes: 10, blockMs: 0 })).toThrow(/blockMs/);
});
