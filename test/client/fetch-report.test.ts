// FetchReport's start-up and tail figures (docs/PROTOCOL.md §10.9's
// --json summary): the tail runs from the latest useful packet of the
// objects verified to the last verification; start-up is the data path's
// first accepted packet, as milliseconds since the process started.
import { PartialBlockBudget } from '../../lib/client/block-budget';
import { newClientStats } from '../../lib/client/events';
import { FetchReport, startupPhases } from '../../lib/client/fetch-report';
import { summaryJson } from '../../lib/client/progress';
import type { ObjectRegistry, RegisteredObject } from '../../lib/client/object-registry';

function object(name: string, lastUsefulAt: number, late = 0): RegisteredObject {
  const stats = { symbolsReceived: 10, symbolsUsed: 10, symbolsDuplicate: 0, symbolsLate: late, blocksResumed: 0, symbolsResumed: 0, symbolsReplayed: 0, blocksDone: 1 };
  return {
    name,
    oti: { transferLength: 1000 },
    sha256: new Uint8Array(32),
    sink: { path: `/out/${name}` },
    receiver: { stats, neededSymbols: 10, heldSymbols: 10, blocks: 1 },
    lastUsefulAt,
    batchMark: -1,
    done: true,
  } as unknown as RegisteredObject;
}

function report(objects: RegisteredObject[], firstPacketMs: number): FetchReport {
  const stats = newClientStats();
  stats.firstPacketMs = firstPacketMs;
  const r = new FetchReport({ objects } as unknown as ObjectRegistry, stats, new PartialBlockBudget(1 << 20));
  r.startedAt = 1_000;
  return r;
}

describe('FetchReport start-up and tail', () => {
  test('the tail runs from the latest useful packet of any object to the last one verified', () => {
    const a = object('a', 5_000);
    const b = object('b', 7_300);
    const r = report([a, b], 41.6);
    expect(r.objectVerified(a, 5_020).tailSeconds).toBeCloseTo(0.02);
    expect(r.objectVerified(b, 7_345).tailSeconds).toBeCloseTo(0.045);
    const s = r.summary(7_350, []);
    expect(s.tailMs).toBe(45);
    expect(s.startupMs).toBe(42);
  });

  test('an object that finished early does not lengthen the tail of a later one', () => {
    const a = object('a', 2_000);
    const b = object('b', 9_000);
    const r = report([a, b], 10);
    r.objectVerified(a, 2_500);
    r.objectVerified(b, 9_010);
    expect(r.summary(9_010, []).tailMs).toBe(10);
  });

  test('symbols that arrived after their block decoded are summed over the objects (symbolsLate)', () => {
    const s = report([object('a', 1_000, 3), object('b', 1_000, 4)], 10).summary(2_000, []);
    expect(s.symbolsLate).toBe(7);
    expect(s.symbolsReceived).toBe(20);
    expect(summaryJson(s).symbolsLate).toBe(7); // fetch --json

  });

  test('no packet, no object: neither figure', () => {
    const s = report([], 0).summary(2_000, []);
    expect(s.startupMs).toBeUndefined();
    expect(s.tailMs).toBeUndefined();
    expect(s.publishedAtMs).toBeUndefined();
    expect(summaryJson(s, 2_100)).not.toHaveProperty('endPhasesMs');
  });
});

describe("the fetch's end (endPhasesMs, summaryAtMs)", () => {
  test('the last object published is timed on the process clock; close and summary add up to the line written', () => {
    const r = report([object('a', 1_000), object('b', 1_000)], 10);
    r.objectVerified(object('a', 1_000), 1_010);
    const between = performance.now();
    r.objectVerified(object('b', 1_000), 1_020);
    const after = performance.now();
    const s = r.summary(1_020, []);
    expect(s.publishedAtMs).toBeGreaterThanOrEqual(between);
    expect(s.publishedAtMs).toBeLessThanOrEqual(after);
    // FetchRun sets closeMs once the transports are closed.
    const json = summaryJson({ ...s, publishedAtMs: 1_000.4, closeMs: 3.7 }, 1_010.2);
    expect(json.endPhasesMs).toEqual({ close: 4, summary: 6 });
    expect(json.summaryAtMs).toBe(1_010);
    // Without the time the line is written (a library caller), neither.
    expect(summaryJson({ ...s, publishedAtMs: 1_000.4, closeMs: 3.7 })).not.toHaveProperty('summaryAtMs');
  });
});

describe('the steps of start-up and tail (startupPhasesMs, tailPhasesMs)', () => {
  function stepped(): ReturnType<typeof newClientStats> {
    const s = newClientStats();
    Object.assign(s, { fetchStartMs: 60.4, helloSentMs: 66.6, cookieMs: 70.2, joinedMs: 72.49, firstPacketMs: 72.51 });
    return s;
  }

  test('each step between two rounded times, in order: they add up to startupMs', () => {
    const s = stepped();
    const p = startupPhases(s, 30.7).startupPhasesMs!;
    expect(p).toEqual({ process: 31, modules: 29, hello: 7, cookie: 3, joined: 2, data: 1 });
    expect(Object.keys(p)).toEqual(['process', 'modules', 'hello', 'cookie', 'joined', 'data']);
    expect(Object.values(p).reduce((a, b) => a + b, 0)).toBe(Math.round(s.firstPacketMs));
  });

  test('without the CLI mark (the library), modules counts from the process start; a mark after the fetch began is not the CLI start', () => {
    expect(startupPhases(stepped(), undefined).startupPhasesMs).toEqual({ modules: 60, hello: 7, cookie: 3, joined: 2, data: 1 });
    expect(startupPhases(stepped(), 61).startupPhasesMs).toEqual({ modules: 60, hello: 7, cookie: 3, joined: 2, data: 1 });
  });

  test('a step that did not happen (no HELLO: a multicast group alone; no data) leaves the steps out', () => {
    for (const missing of ['fetchStartMs', 'helloSentMs', 'cookieMs', 'joinedMs', 'firstPacketMs'] as const) {
      const s = stepped();
      s[missing] = 0;
      expect([missing, startupPhases(s, 30)]).toEqual([missing, {}]);
    }
  });

  test('the summary carries the steps; the tail of the object verified last, solve + write + verify = its tail', () => {
    const a = object('a', 5_000);
    Object.assign(a, { decodedAt: 5_060, writtenAt: 5_075 });
    const r = report([a], 0);
    Object.assign((r as unknown as { stats: ReturnType<typeof newClientStats> }).stats, stepped());
    r.objectVerified(a, 5_100);
    const s = r.summary(5_100, []);
    expect(s.tailPhasesMs).toEqual({ solve: 60, write: 15, verify: 25 });
    expect(s.tailPhasesMs!.solve + s.tailPhasesMs!.write + s.tailPhasesMs!.verify).toBe(s.tailMs);
    expect(s.startupPhasesMs).toMatchObject({ modules: expect.any(Number), hello: 7, cookie: 3, joined: 2, data: 1 });
  });

  test("another object's useful packet after this one's: the steps count from it and still add up to tailMs", () => {
    // b's last packet came while a was solving: the tail starts there.
    const b = object('b', 5_040);
    const a = object('a', 5_000);
    Object.assign(a, { decodedAt: 5_060, writtenAt: 5_075 });
    const r = report([a, b], 0);
    r.objectVerified(b, 5_050);
    r.objectVerified(a, 5_100);
    const s = r.summary(5_100, []);
    expect(s.tailMs).toBe(60);
    expect(s.tailPhasesMs).toEqual({ solve: 20, write: 15, verify: 25 });
    // b's packet after a was already decoded (and written): those steps are 0.
    const c = object('c', 5_000);
    Object.assign(c, { decodedAt: 5_060, writtenAt: 5_075 });
    const d = object('d', 5_080);
    const r2 = report([c, d], 0);
    r2.objectVerified(d, 5_090);
    r2.objectVerified(c, 5_100);
    const s2 = r2.summary(5_100, []);
    expect(s2.tailPhasesMs).toEqual({ solve: 0, write: 0, verify: 20 });
    expect(s2.tailPhasesMs!.solve + s2.tailPhasesMs!.write + s2.tailPhasesMs!.verify).toBe(s2.tailMs);
  });

  test('an object without those times (all of it resumed) gives no tail steps', () => {
    const r = report([object('a', 5_000)], 10);
    r.objectVerified(object('a', 5_000), 5_010);
    expect(r.summary(5_010, []).tailPhasesMs).toBeUndefined();
  });
});
