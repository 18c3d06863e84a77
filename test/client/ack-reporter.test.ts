import fc from 'fast-check';
import { AckReport, AckReporter, DEFAULT_ACK_OVERLAP } from '../../lib/client/ack-reporter';
import { encodeControl } from '../../lib/protocol/control';
import { decodeControl } from '../../lib/protocol/control';
import { ACK_MAX_RANGES, ACK_MAX_WINDOW } from '../../lib/protocol/control-header';
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
    const a = new AckReporter({ overlap: 0 });
    for (let s = 100; s < 110; s++) a.record(s);
    expect(a.unreported).toBe(10);
    expect(a.report()).toEqual({ windowStart: 100, windowEnd: 110, received: [{ start: 100, end: 110 }], lost: 0, repeated: 0 });
    expect(a.report()).toBeUndefined();
    a.record(110);
    a.record(113);
    const r = a.report() as AckReport;
    expect(r).toEqual({ windowStart: 110, windowEnd: 114, received: [{ start: 110, end: 111 }, { start: 113, end: 114 }], lost: 2, repeated: 0 });
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
      repeated: 0,
    });
  });

  test('without overlap, a packet older than the reported window is late, not reported again', () => {
    const a = new AckReporter({ overlap: 0 });
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
      repeated: 0,
    });
    wireCheck(r);
  });

  test(`more than ${ACK_MAX_RANGES} gaps: the window ends early and the rest follows`, () => {
    const a = new AckReporter({ overlap: 0 });
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
    const a = new AckReporter({ maxWindow: 16, overlap: 0 });
    a.record(0);
    a.record(40);
    expect(a.report()).toMatchObject({ windowStart: 0, windowEnd: 16, lost: 15 });
    expect(a.report()).toMatchObject({ windowStart: 16, windowEnd: 32, received: [], lost: 16 });
    expect(a.report()).toMatchObject({ windowStart: 32, windowEnd: 41, received: [{ start: 40, end: 41 }], lost: 8 });
  });

  test('reorderSlack holds back the newest numbers', () => {
    const a = new AckReporter({ reorderSlack: 2 });
    for (const s of [0, 1, 3, 4, 5]) a.record(s);
    expect(a.report()).toEqual({ windowStart: 0, windowEnd: 4, received: [{ start: 0, end: 2 }, { start: 3, end: 4 }], lost: 1, repeated: 0 });
  });

  test('model, overlap 0: windows tile the sequence space; every recorded number is reported received exactly once, nothing else is', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.array(fc.record({ gap: fc.nat(5), swap: fc.boolean(), report: fc.nat(9) }), { minLength: 1, maxLength: 400 }),
        fc.integer({ min: 1, max: ACK_MAX_RANGES }),
        (origin, steps, maxRanges) => {
          const a = new AckReporter({ maxRanges, overlap: 0 });
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

  test(`overlap (default ${DEFAULT_ACK_OVERLAP}): each ACK covers the previous intervals again; repeat-only ACKs after the stream stops`, () => {
    const a = new AckReporter();
    expect(a.overlap).toBe(2);
    for (const s of [0, 1, 3]) a.record(s); // 2 lost
    expect(a.report()).toEqual({ windowStart: 0, windowEnd: 4, received: [{ start: 0, end: 2 }, { start: 3, end: 4 }], lost: 1, repeated: 0 });
    for (const s of [4, 6]) a.record(s); // 5 lost
    expect(a.unreported).toBe(2);
    expect(a.report()).toEqual({ windowStart: 0, windowEnd: 7, received: [{ start: 0, end: 2 }, { start: 3, end: 5 }, { start: 6, end: 7 }], lost: 2, repeated: 4 });
    a.record(7);
    expect(a.report()).toEqual({ windowStart: 0, windowEnd: 8, received: [{ start: 0, end: 2 }, { start: 3, end: 5 }, { start: 6, end: 8 }], lost: 2, repeated: 7 });
    a.record(9); // 8 lost
    // The first interval [0, 4) has been in 3 ACKs: no longer covered.
    expect(a.report()).toEqual({ windowStart: 4, windowEnd: 10, received: [{ start: 4, end: 5 }, { start: 6, end: 8 }, { start: 9, end: 10 }], lost: 2, repeated: 4 });
    expect(a.unreported).toBe(0);
    // Nothing new: the last intervals are repeated twice more, then silence.
    expect(a.report()).toMatchObject({ windowStart: 7, windowEnd: 10, lost: 1, repeated: 3 });
    expect(a.report()).toMatchObject({ windowStart: 8, windowEnd: 10, lost: 1, repeated: 2 });
    expect(a.report()).toBeUndefined();
    a.record(10);
    expect(a.report()).toMatchObject({ windowStart: 10, windowEnd: 11, lost: 0, repeated: 0 });
  });

  test('a packet that arrives after its interval was reported is late, and the repeats report it received', () => {
    const a = new AckReporter({ overlap: 1 });
    for (const s of [0, 2]) a.record(s);
    expect(a.report()).toMatchObject({ windowStart: 0, windowEnd: 3, received: [{ start: 0, end: 1 }, { start: 2, end: 3 }] });
    a.record(1);
    expect(a.late).toBe(1);
    expect(a.unreported).toBe(0);
    a.record(3);
    expect(a.report()).toMatchObject({ windowStart: 0, windowEnd: 4, received: [{ start: 0, end: 4 }], lost: 0, repeated: 3 });
    // [0, 3) is no longer repeated: a packet from it is late and forgotten.
    a.record(5);
    expect(a.report()).toMatchObject({ windowStart: 3, windowEnd: 6, received: [{ start: 3, end: 4 }, { start: 5, end: 6 }] });
    expect(a.late).toBe(1);
  });

  test(`the new part has the ranges first; the repeated part is cut from its old end (${ACK_MAX_RANGES} ranges)`, () => {
    const a = new AckReporter();
    for (let i = 0; i < 40; i++) a.record(i * 2); // 40 ranges in [0, 79)
    expect(a.report()).toMatchObject({ windowStart: 0, windowEnd: 79, repeated: 0 });
    for (let i = 40; i < 80; i++) a.record(i * 2); // 40 more in [80, 159)
    const r = a.report() as AckReport;
    wireCheck(r);
    // 40 new ranges and the 24 newest of the old ones: it starts where the 25th newest old one ends.
    expect(r.received).toHaveLength(ACK_MAX_RANGES);
    expect(r.windowEnd).toBe(159);
    expect(r.windowStart).toBe(2 * 15 + 1);
    expect(r.repeated).toBe(79 - 31);
    expect(r.received[0]).toEqual({ start: 32, end: 33 });
    // A new part needing every range: no repeat at all, and it ends early.
    for (let i = 80; i < 80 + ACK_MAX_RANGES + 10; i++) a.record(i * 2);
    const n = a.report() as AckReport;
    wireCheck(n);
    expect(n).toMatchObject({ windowStart: 159, windowEnd: 160 + 2 * ACK_MAX_RANGES, repeated: 0 });
    expect(n.received).toHaveLength(ACK_MAX_RANGES);
  });

  test('the repeated part is cut to keep the window within maxWindow', () => {
    const a = new AckReporter({ maxWindow: 16 });
    a.record(0);
    a.record(9);
    expect(a.report()).toMatchObject({ windowStart: 0, windowEnd: 10, repeated: 0 });
    a.record(13);
    expect(a.report()).toMatchObject({ windowStart: 0, windowEnd: 14, repeated: 10 });
    a.record(20);
    expect(a.report()).toMatchObject({ windowStart: 5, windowEnd: 21, repeated: 9, received: [{ start: 9, end: 10 }, { start: 13, end: 14 }, { start: 20, end: 21 }] });
  });

  test('overlapping windows across the 2^32 wrap', () => {
    const a = new AckReporter();
    for (const s of [0xfffffffc, 0xfffffffe]) a.record(s);
    wireCheck(a.report() as AckReport);
    for (const s of [0xffffffff, 1]) a.record(s);
    const r = a.report() as AckReport;
    wireCheck(r);
    expect(r).toEqual({
      windowStart: 0xfffffffc,
      windowEnd: 2,
      received: [{ start: 0xfffffffc, end: 0xfffffffd }, { start: 0xfffffffe, end: 0 }, { start: 1, end: 2 }],
      lost: 2,
      repeated: 3,
    });
  });

  test('model, any overlap: every window tells the truth; new parts tile; each interval is covered by overlap + 1 ACKs unless a limit cut it', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 2 ** 32 - 600, max: 2 ** 32 - 1 })),
        fc.array(fc.record({ gap: fc.nat(5), swap: fc.boolean(), back: fc.option(fc.nat(40), { freq: 4, nil: 0 }), report: fc.nat(9) }), { minLength: 1, maxLength: 400 }),
        fc.record({
          overlap: fc.nat(4),
          maxRanges: fc.oneof(fc.constant(ACK_MAX_RANGES), fc.integer({ min: 1, max: ACK_MAX_RANGES })),
          maxWindow: fc.oneof(fc.constant(ACK_MAX_WINDOW), fc.integer({ min: 1, max: 200 })),
          reorderSlack: fc.oneof(fc.constant(0), fc.nat(4)),
        }),
        (origin, steps, options) => {
          const a = new AckReporter(options);
          // Arrivals, as offsets from origin, in arrival order: mostly ascending, some swapped, some very late copies.
          const arrivals: number[] = [];
          let next = 0;
          for (const s of steps) {
            next += s.gap;
            arrivals.push(next++);
            if (s.swap && arrivals.length >= 2) {
              const n = arrivals.length;
              [arrivals[n - 1], arrivals[n - 2]] = [arrivals[n - 2], arrivals[n - 1]];
            }
            if (s.back > 0 && s.back < next) arrivals.push(next - 1 - s.back);
          }
          const recorded = new Set<number>();
          const newStarts: number[] = []; // where each report's new part started
          let cursor: number | undefined; // end of the last report's window
          let late = 0;
          let tailRepeats = 0;
          // One report (an ACK timer tick), or all of them until there is nothing left.
          const take = (all: boolean) => {
            for (let r = a.report(); r !== undefined; r = all ? a.report() : undefined) {
              wireCheck(r);
              const start = mod(r.windowStart - origin);
              const end = start + mod(r.windowEnd - r.windowStart);
              const fresh = start + r.repeated;
              // New parts tile the sequence space from the first number recorded.
              expect(fresh).toBe(cursor ?? arrivals[0]);
              expect(end).toBeGreaterThanOrEqual(fresh);
              tailRepeats = end === fresh ? tailRepeats + 1 : 0;
              cursor = end;
              // Repeats reach back to the new part of the report `overlap` before, never further,
              // and exactly there unless the ranges or the window length ran out.
              const oldest = options.overlap === 0 ? fresh : newStarts.length >= options.overlap ? newStarts[newStarts.length - options.overlap] : newStarts[0] ?? fresh;
              expect(start).toBeGreaterThanOrEqual(oldest);
              if (r.received.length < options.maxRanges && end - start < options.maxWindow) expect(start).toBe(oldest);
              newStarts.push(fresh);
              // Every number of the window: received iff recorded before this report.
              let got = 0;
              const inRange = new Set<number>();
              for (const g of r.received) {
                const gs = mod(g.start - origin);
                const ge = gs + mod(g.end - g.start);
                for (let x = gs; x < ge; x++) inRange.add(x);
                got += ge - gs;
              }
              for (let x = start; x < end; x++) expect(inRange.has(x)).toBe(recorded.has(x));
              expect(r.lost).toBe(end - start - got);
              let unreported = 0;
              for (const x of recorded) if (x >= end) unreported++;
              expect(a.unreported).toBe(unreported);
            }
          };
          arrivals.forEach((x, i) => {
            if (x < (cursor ?? arrivals[0])) late++;
            a.record(mod(origin + x));
            recorded.add(x);
            const when = steps[Math.min(i, steps.length - 1)].report;
            if (when <= 1) take(when === 1);
          });
          take(true);
          expect(a.late).toBe(late);
          // After the stream stops: exactly `overlap` repeat-only ACKs (if anything was reported).
          if (newStarts.some((s, i) => i === 0 || s !== newStarts[i - 1])) expect(tailRepeats).toBe(options.overlap);
        },
      ),
      { numRuns: 300 },
    );
  });
});
