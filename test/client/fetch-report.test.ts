// FetchReport's start-up and tail figures (docs/PROTOCOL.md §10.9's
// --json summary): the tail runs from the latest useful packet of the
// objects verified to the last verification; start-up is the data path's
// first accepted packet, as milliseconds since the process started.
import { PartialBlockBudget } from '../../lib/client/block-budget';
import { newClientStats } from '../../lib/client/events';
import { FetchReport } from '../../lib/client/fetch-report';
import type { ObjectRegistry, RegisteredObject } from '../../lib/client/object-registry';

function object(name: string, lastUsefulAt: number): RegisteredObject {
  const stats = { symbolsReceived: 10, symbolsUsed: 10, symbolsDuplicate: 0, blocksResumed: 0, symbolsResumed: 0, symbolsReplayed: 0, blocksDone: 1 };
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

  test('no packet, no object: neither figure', () => {
    const s = report([], 0).summary(2_000, []);
    expect(s.startupMs).toBeUndefined();
    expect(s.tailMs).toBeUndefined();
  });
});
