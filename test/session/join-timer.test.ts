import fc from 'fast-check';
import { JoinTimer } from '../../lib/session/join-timer';
import { InvalidTimeError } from '../../lib/errors';

/** The obvious model: a map, scanned and sorted on every expire. */
class NaiveTimer {
  private readonly live = new Map<number, { at: number; seq: number }>();
  private seq = 0;
  schedule(id: number, at: number): void {
    this.live.set(id, { at, seq: this.seq++ });
  }
  reschedule(id: number, at: number): boolean {
    if (!this.live.has(id)) return false;
    this.schedule(id, at);
    return true;
  }
  cancel(id: number): boolean {
    return this.live.delete(id);
  }
  expire(now: number): number[] {
    const due = Array.from(this.live)
      .filter(([, e]) => e.at <= now)
      .sort((a, b) => a[1].at - b[1].at || a[1].seq - b[1].seq)
      .map(([id]) => id);
    for (const id of due) this.live.delete(id);
    return due;
  }
  next(): number | undefined {
    let best: number | undefined;
    for (const e of this.live.values()) if (best === undefined || e.at < best) best = e.at;
    return best;
  }
  get size(): number {
    return this.live.size;
  }
}

type Op =
  | { op: 'schedule'; id: number; at: number }
  | { op: 'reschedule'; id: number; at: number }
  | { op: 'cancel'; id: number }
  | { op: 'expire'; dt: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('schedule' as const), id: fc.nat(40), at: fc.nat(2000) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('reschedule' as const), id: fc.nat(40), at: fc.nat(2000) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cancel' as const), id: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('expire' as const), dt: fc.nat(300) }) },
);

describe('JoinTimer', () => {
  test('matches a naive model on random schedule/cancel/reschedule/expire sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => {
        const timer = new JoinTimer<number>();
        const model = new NaiveTimer();
        let now = 0;
        for (const o of ops) {
          switch (o.op) {
            case 'schedule':
              // Deadlines may lie in the past relative to `now`: they expire on the next call.
              timer.schedule(o.id, o.at);
              model.schedule(o.id, o.at);
              break;
            case 'reschedule':
              expect(timer.reschedule(o.id, o.at)).toBe(model.reschedule(o.id, o.at));
              break;
            case 'cancel':
              expect(timer.cancel(o.id)).toBe(model.cancel(o.id));
              break;
            case 'expire':
              now += o.dt;
              expect(timer.expire(now)).toEqual(model.expire(now));
              break;
          }
          expect(timer.size).toBe(model.size);
          expect(timer.nextDeadline()).toBe(model.next());
        }
        expect(timer.expire(Number.MAX_SAFE_INTEGER)).toEqual(model.expire(Number.MAX_SAFE_INTEGER));
      }),
      { numRuns: 300 },
    );
  });

  test('deadline and has reflect the latest schedule', () => {
    const t = new JoinTimer<string>();
    t.schedule('a', 100);
    t.schedule('a', 50);
    expect(t.deadline('a')).toBe(50);
    expect(t.expire(49)).toEqual([]);
    expect(t.expire(50)).toEqual(['a']);
    expect(t.has('a')).toBe(false);
    // The stale entry at 100 must not resurrect 'a'.
    expect(t.expire(1000)).toEqual([]);
  });

  test('a renewal to a later time is not expired at the old time', () => {
    const t = new JoinTimer<string>();
    t.schedule('a', 100);
    expect(t.reschedule('a', 200)).toBe(true);
    expect(t.expire(150)).toEqual([]);
    expect(t.expire(200)).toEqual(['a']);
    expect(t.reschedule('a', 300)).toBe(false);
    expect(t.has('a')).toBe(false);
  });

  test('memory stays proportional to live timers however often they are renewed', () => {
    const t = new JoinTimer<number>();
    for (let id = 0; id < 1000; id++) t.schedule(id, 1_000_000 + id);
    for (let round = 0; round < 50; round++) {
      for (let id = 0; id < 1000; id++) t.reschedule(id, 1_000_000 + round * 10 + id);
    }
    expect(t.size).toBe(1000);
    expect(t.heapSize).toBeLessThanOrEqual(2 * 1000 + 1);
    for (let id = 0; id < 1000; id++) t.cancel(id);
    expect(t.size).toBe(0);
    expect(t.heapSize).toBeLessThanOrEqual(64);
    expect(t.nextDeadline()).toBeUndefined();
  });

  test.each([10_000, 100_000])('%i clients expire at exactly their ticks', (n) => {
    // Clients join over time with TTLs between 1 and 300 s (deterministic LCG),
    // a third renew once, a tenth leave; a 1 s tick drives expiry. Each client
    // must come out of exactly the first tick at or after its deadline.
    const t = new JoinTimer<number>();
    let x = 12345;
    const rand = (m: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x % m;
    };
    const deadline = new Map<number, number>();
    for (let id = 0; id < n; id++) {
      const joinedAt = rand(60_000);
      let at = joinedAt + 1_000 + rand(299_000);
      t.schedule(id, at);
      if (id % 3 === 0) {
        at = joinedAt + 1_000 + rand(299_000);
        if (!t.reschedule(id, at)) throw new Error(`reschedule of ${id} refused`);
      }
      if (id % 10 === 1) t.cancel(id);
      else deadline.set(id, at);
    }
    expect(t.size).toBe(deadline.size);
    const seen = new Set<number>();
    let ticks = 0;
    for (let now = 0; now <= 400_000; now += 1_000) {
      ticks++;
      const due = t.expire(now);
      let prev = -Infinity;
      for (const id of due) {
        const at = deadline.get(id);
        if (at === undefined) throw new Error(`client ${id} expired but was never live`);
        // Due now, and not due at the previous tick.
        if (!(at! <= now && at! > now - 1_000)) throw new Error(`client ${id} due at ${at} expired at tick ${now}`);
        if (at! < prev) throw new Error('expired out of order');
        prev = at!;
        if (seen.has(id)) throw new Error(`client ${id} expired twice`);
        seen.add(id);
      }
    }
    expect(ticks).toBe(401);
    expect(seen.size).toBe(deadline.size);
    expect(t.size).toBe(0);
  });

  test('refuses a non-finite deadline', () => {
    const t = new JoinTimer<number>();
    expect(() => t.schedule(1, NaN)).toThrow(InvalidTimeError);
    expect(() => t.schedule(1, Infinity)).toThrow(InvalidTimeError);
  });
});
