import fc from 'fast-check';
import { AckReport, AckReporter } from '../../lib/client/ack-reporter';
import { encodeControl } from '../../lib/protocol/control';
import { decodeControl } from '../../lib/protocol/control';
import { ACK_MAX_RANGES } from '../../lib/protocol/control-header';
import { lostRanges } from '../../lib/protocol/ack';
import { MessageType } from '../../lib/protocol/messages';

const cookie = new Uint8Array(32).fill(7);

/** The report must be a canonical ACK on the wire. */
function wireCheck(r: AckReport): void {
  const bytes = encodeControl({ type: MessageType.Ack, cookie, tsi: 1, windowStart: r.windowStart, windowEnd: r.windowEnd, received: r.received });
  const back = decodeControl(bytes);
  expect(back.ok).toBe(true);
}

const mod = (x: number) => ((x % 2 ** 32) + 2 ** 32) % 2 ** 32;

describe('AckReporter', () => {
  test('nothing recorded, nothing to report', () => {
    expect(new AckReporter().report()).toBeUndefined();
  });

  test('in-order packets: one range, no loss; then the next window', () => {
    const a = new AckReporter();
    for (let s = 100; s < 110; s++) a.record(s);
    expect(a.unreported).toBe(10);
    expect(a.report()).toEqual({ windowStart: 100, windowEnd: 110, received: [{ start: 100, end: 110 }], lost: 0 });
    expect(a.report()).toBeUndefined();
    a.record(110);
    a.record(113);
    const r = a.report() as AckReport;
    expect(r).toEqual({ windowStart: 110, windowEnd: 114, received: [{ start: 110, end: 111 }, { start: 113, end: 114 }], lost: 2 });
    expect(lostRanges(r)).toEqual([{ start: 111, end: 113 }]);
    wireCheck(r);
  });

  test('out-of-order and duplicate arrivals merge into ranges', () => {
    const a = new AckReporter();
    for (const s of [5, 9, 7, 6, 9, 12, 8, 5]) a.record(s);
    expect(a.report()).toEqual({
      windowStart: 5,
      windowEnd: 13,
      received: [{ start: 5, end: 10 }, { start: 12, end: 13 }],
      lost: 2,
    });
  });

  test('a packet older than the reported window is late, not reported again', () => {
    const a = new AckReporter();
    a.record(10);
    a.record(12);
    a.report();
    a.record(11);
    expect(a.late).toBe(1);
    expect(a.report()).toBeUndefined();
  });

  test('wraps modulo 2^32', () => {
    const a = new AckReporter();
    for (const s of [0xfffffffe, 0xffffffff, 1, 2]) a.record(s);
    const r = a.report() as AckReport;
    expect(r).toEqual({
      windowStart: 0xfffffffe,
      windowEnd: 3,
      received: [{ start: 0xfffffffe, end: 0 }, { start: 1, end: 3 }],
      lost: 1,
    });
    wireCheck(r);
  });

  test(`more than ${ACK_MAX_RANGES} gaps: the window ends early and the rest follows`, () => {
    const a = new AckReporter();
    for (let i = 0; i < 100; i++) a.record(i * 2); // 100 ranges, 99 gaps
    const first = a.report() as AckReport;
    expect(first.received).toHaveLength(ACK_MAX_RANGES);
    expect(first.windowEnd).toBe(ACK_MAX_RANGES * 2);
    wireCheck(first);
    const second = a.report() as AckReport;
    expect(second.windowStart).toBe(first.windowEnd);
    expect(second.received).toHaveLength(100 - ACK_MAX_RANGES);
    expect(second.windowEnd).toBe(199);
    wireCheck(second);
  });

  test('the window is capped at maxWindow', () => {
    const a = new AckReporter({ maxWindow: 16 });
    a.record(0);
    a.record(40);
    expect(a.report()).toMatchObject({ windowStart: 0, windowEnd: 16, lost: 15 });
    expect(a.report()).toMatchObject({ windowStart: 16, windowEnd: 32, received: [], lost: 16 });
    expect(a.report()).toMatchObject({ windowStart: 32, windowEnd: 41, received: [{ start: 40, end: 41 }], lost: 8 });
  });

  test('reorderSlack holds back the newest numbers', () => {
    const a = new AckReporter({ reorderSlack: 2 });
    for (const s of [0, 1, 3, 4, 5]) a.record(s);
    expect(a.report()).toEqual({ windowStart: 0, windowEnd: 4, received: [{ start: 0, end: 2 }, { start: 3, end: 4 }], lost: 1 });
  });

  test('model: windows tile the sequence space; every recorded number is reported received exactly once, nothing else is', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.array(fc.record({ gap: fc.nat(5), swap: fc.boolean(), report: fc.nat(9) }), { minLength: 1, maxLength: 400 }),
        fc.integer({ min: 1, max: ACK_MAX_RANGES }),
        (origin, steps, maxRanges) => {
          const a = new AckReporter({ maxRanges });
          // Offsets from origin of the packets that arrive, in arrival order.
          const arrivals: number[] = [];
          let next = 0;
          for (const s of steps) {
            next += s.gap;
            arrivals.push(next++);
            if (s.swap && arrivals.length >= 2) {
              const n = arrivals.length;
              [arrivals[n - 1], arrivals[n - 2]] = [arrivals[n - 2], arrivals[n - 1]];
            }
          }
          const reported = new Map<number, 'received' | 'lost'>();
          let cursor: number | undefined;
          const recorded = new Set<number>();
          const late = new Set<number>();
          const take = () => {
            for (let r = a.report(); r !== undefined; r = a.report()) {
              wireCheck(r);
              const start = mod(r.windowStart - origin);
              const end = start + mod(r.windowEnd - r.windowStart);
              if (cursor !== undefined) expect(start).toBe(cursor);
              cursor = end;
              for (let x = start; x < end; x++) reported.set(x, 'lost');
              for (const g of r.received) {
                const gs = mod(g.start - origin);
                const ge = gs + mod(g.end - g.start);
                for (let x = gs; x < ge; x++) reported.set(x, 'received');
              }
            }
          };
          arrivals.forEach((x, i) => {
            // The first number recorded starts the first window: anything older is late too.
            if (x < (cursor ?? arrivals[0])) late.add(x);
            a.record(mod(origin + x));
            recorded.add(x);
            if (steps[i].report === 0) take();
          });
          take();
          for (const [x, how] of reported) expect(how === 'received').toBe(recorded.has(x) && !late.has(x));
          for (const x of recorded) if (!late.has(x)) expect(reported.get(x)).toBe('received');
          expect(a.late).toBe(late.size);
        },
      ),
      { numRuns: 300 },
    );
  });
});
