import fc from 'fast-check';
import { AckTracker } from '../../lib/server/ack-tracker';
import { InvalidServerConfigError } from '../../lib/server/errors';

const M = 2 ** 32;

function lostOf(t: AckTracker<string>, windowStart: number, windowEnd: number, received: [number, number][], sentEnd?: number): number[] {
  const v = t.onAck('c', 1, { windowStart, windowEnd, received: received.map(([start, end]) => ({ start, end })) }, sentEnd);
  if (!v.ok) throw new Error(`refused: ${v.reason}`);
  return v.lost;
}

describe('AckTracker', () => {
  test('reports the gaps of the window as lost', () => {
    const t = new AckTracker<string>();
    expect(lostOf(t, 100, 110, [[100, 103], [105, 108]])).toEqual([103, 104, 108, 109]);
  });

  test('each loss is answered once, however often it is reported', () => {
    const t = new AckTracker<string>();
    expect(lostOf(t, 0, 10, [[0, 5]])).toEqual([5, 6, 7, 8, 9]);
    expect(lostOf(t, 0, 10, [[0, 5]])).toEqual([]);
    expect(lostOf(t, 5, 15, [[12, 15]])).toEqual([10, 11]);
    expect(lostOf(t, 0, 20, [[0, 5], [12, 15]])).toEqual([15, 16, 17, 18, 19]);
    // A packet reported received before and lost now was never answered: it is answered now.
    expect(lostOf(t, 0, 20, [[1, 5], [12, 15]])).toEqual([0]);
  });

  test('streams of different clients and channels are independent', () => {
    const t = new AckTracker<string>();
    expect(t.onAck('a', 1, { windowStart: 0, windowEnd: 3, received: [] })).toEqual({ ok: true, lost: [0, 1, 2] });
    expect(t.onAck('a', 2, { windowStart: 0, windowEnd: 3, received: [] })).toEqual({ ok: true, lost: [0, 1, 2] });
    expect(t.onAck('b', 1, { windowStart: 0, windowEnd: 3, received: [] })).toEqual({ ok: true, lost: [0, 1, 2] });
    expect(t.streamCount).toBe(3);
    t.dropChannel('a', 1);
    expect(t.streamCount).toBe(2);
    t.dropClient('a');
    expect(t.streamCount).toBe(1);
  });

  test('losses below the remembered window are never answered again', () => {
    const t = new AckTracker<string>({ windowSize: 64 });
    expect(lostOf(t, 0, 10, [])).toHaveLength(10);
    // The window slides up to [1000-64, 1000); 0..9 fall below it.
    expect(lostOf(t, 990, 1000, [])).toEqual([990, 991, 992, 993, 994, 995, 996, 997, 998, 999]);
    expect(lostOf(t, 0, 1000, [])).toEqual(Array.from({ length: 54 }, (_, i) => 936 + i));
    expect(lostOf(t, 0, 1000, [])).toEqual([]);
  });

  test('at most maxLossesPerAck per ACK; the rest can be reported again', () => {
    const t = new AckTracker<string>({ maxLossesPerAck: 4 });
    expect(lostOf(t, 0, 10, [[2, 3]])).toEqual([0, 1, 3, 4]);
    expect(lostOf(t, 0, 10, [[2, 3]])).toEqual([5, 6, 7, 8]);
    expect(lostOf(t, 0, 10, [[2, 3]])).toEqual([9]);
  });

  test('losses claimed beyond what was sent are cut', () => {
    const t = new AckTracker<string>();
    expect(lostOf(t, 0, 100, [[0, 5]], 8)).toEqual([5, 6, 7]);
    expect(lostOf(t, 0, 100, [[0, 5]], 10)).toEqual([8, 9]);
  });

  test('sequence numbers wrap modulo 2^32', () => {
    const t = new AckTracker<string>();
    expect(lostOf(t, M - 4, 2, [[M - 2, M - 1], [0, 1]])).toEqual([M - 4, M - 3, M - 1, 1]);
    // Same losses reported again across the wrap: nothing new.
    expect(lostOf(t, M - 4, 4, [[M - 2, M - 1], [0, 1]])).toEqual([2, 3]);
    expect(lostOf(t, 0, 6, [[0, 2]])).toEqual([4, 5]);
  });

  test('malformed ACKs are refused and change nothing', () => {
    const t = new AckTracker<string>();
    const bad = [
      { windowStart: -1, windowEnd: 3, received: [] },
      { windowStart: 0, windowEnd: M, received: [] },
      { windowStart: 0, windowEnd: 2 ** 31, received: [] },
      { windowStart: 0, windowEnd: 1.5, received: [] },
      { windowStart: 0, windowEnd: 10, received: [{ start: 5, end: 4 }] },
      { windowStart: 0, windowEnd: 10, received: [{ start: 5, end: 11 }] },
    ];
    for (const b of bad) expect(t.onAck('c', 1, b)).toEqual({ ok: false, reason: 'malformed' });
    expect(t.streamCount).toBe(0);
    expect(lostOf(t, 0, 3, [])).toEqual([0, 1, 2]);
  });

  test('random ACK streams: every loss answered at most once, only real gaps, only inside the remembered window', () => {
    const W = 256;
    const ackArb = fc.record({
      advance: fc.nat(200),
      back: fc.nat(300),
      len: fc.integer({ min: 1, max: 300 }),
      holes: fc.array(fc.nat(299), { maxLength: 20 }),
    });
    fc.assert(
      fc.property(fc.nat(M - 1), fc.array(ackArb, { minLength: 1, maxLength: 40 }), (base, acks) => {
        const t = new AckTracker<string>({ windowSize: W, maxLossesPerAck: 1000 });
        const answered = new Set<number>();
        let head = 0; // unwrapped, relative to base
        let floor: number | undefined; // the model of the tracker's floor
        for (const a of acks) {
          head += a.advance;
          const start = Math.max(0, head - a.back);
          const end = start + a.len;
          const holes = new Set(a.holes.filter((h) => h < a.len).map((h) => start + h));
          // Received ranges: the maximal runs between holes.
          const received: { start: number; end: number }[] = [];
          let runStart: number | undefined;
          for (let s = start; s <= end; s++) {
            const isGot = s < end && !holes.has(s);
            if (isGot && runStart === undefined) runStart = s;
            if (!isGot && runStart !== undefined) {
              received.push({ start: (base + runStart) % M, end: (base + s) % M });
              runStart = undefined;
            }
          }
          const v = t.onAck('c', 7, { windowStart: (base + start) % M, windowEnd: (base + end) % M, received });
          if (!v.ok) throw new Error('refused a well-formed ACK');
          floor = Math.max(floor ?? start, end - W);
          for (const wire of v.lost) {
            const rel = (((wire - base) % M) + M) % M;
            if (!holes.has(rel)) throw new Error(`${rel} answered but not reported lost`);
            if (rel < floor || rel >= end) throw new Error(`${rel} answered outside [${floor}, ${end})`);
            if (answered.has(rel)) throw new Error(`${rel} answered twice`);
            answered.add(rel);
          }
          // Every hole at or above the window's floor that was not answered before is answered now.
          for (const h of holes) if (h >= floor && !answered.has(h)) throw new Error(`loss ${h} never answered`);
          head = Math.max(head, end);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('configuration is checked', () => {
    expect(() => new AckTracker({ windowSize: 12 })).toThrow(InvalidServerConfigError);
    expect(() => new AckTracker({ maxLossesPerAck: 0 })).toThrow(InvalidServerConfigError);
  });
});
