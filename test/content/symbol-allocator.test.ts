import fc from 'fast-check';
import { MAX_ESI } from '../../lib/fec/encoder';
import { AllocationMode, EsiLayout, EsiLayoutError, EsiRange, SymbolAllocator } from '../../lib/content/symbol-allocator';
import type { BlockSealing } from '../../lib/content/block-source';

const ESI_END = 2 ** 24;

/**
 * The allocator as it was before ESI layouts (one counter per block from 0,
 * wrapping to K in coded mode and to 0 in a carousel), kept as the model the
 * default layout must reproduce exactly.
 */
class CounterBeforeLayouts {
  private readonly next: number[];
  readonly wrapCount: number[];
  constructor(
    private readonly K: readonly number[],
    private readonly mode: AllocationMode,
  ) {
    this.next = K.map(() => 0);
    this.wrapCount = K.map(() => 0);
  }
  take(sbn: number, max: number): { firstEsi: number; count: number } {
    const first = this.next[sbn];
    const end = this.mode === 'coded' ? MAX_ESI + 1 : this.K[sbn];
    const count = Math.max(1, Math.min(max, end - first));
    let n = first + count;
    if (n >= end) {
      n = this.mode === 'coded' ? this.K[sbn] : 0;
      this.wrapCount[sbn]++;
    }
    this.next[sbn] = n;
    return { firstEsi: first, count };
  }
  peek(sbn: number): number {
    return this.next[sbn];
  }
}

/** Every ESI of a range. */
function esis(r: EsiRange): number[] {
  return Array.from({ length: r.count }, (_, i) => r.firstEsi + i * r.stride);
}

/** A take's size: mostly small, sometimes most of the 24-bit space (to reach the wrap). */
const takeSize = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: ESI_END }) });
const ks = fc.array(fc.integer({ min: 1, max: 56403 }), { minLength: 1, maxLength: 4 });

describe('SymbolAllocator, default layout', () => {
  test('coded: source symbols first, then repair; ranges consecutive; wrap at 2^24 restarts at K', () => {
    const a = new SymbolAllocator([10, 3]);
    expect(a.take(0, 4)).toEqual({ firstEsi: 0, count: 4, stride: 1 });
    expect(a.take(0, 100)).toEqual({ firstEsi: 4, count: 100, stride: 1 });
    expect(a.take(1, 1)).toEqual({ firstEsi: 0, count: 1, stride: 1 });
    // Drive block 1 to the top of the 24-bit space.
    let last = a.take(1, 2 ** 24);
    expect(last).toEqual({ firstEsi: 1, count: 2 ** 24 - 1, stride: 1 });
    expect(a.wraps(1)).toBe(1);
    last = a.take(1, 5);
    expect(last).toEqual({ firstEsi: 3, count: 5, stride: 1 });
  });

  test('a range never crosses 2^24', () => {
    const a = new SymbolAllocator([5]);
    a.take(0, 2 ** 24 - 7);
    expect(a.take(0, 100)).toEqual({ firstEsi: 2 ** 24 - 7, count: 7, stride: 1 });
    expect(a.peek(0)).toBe(5);
  });

  test('carousel: cycles 0..K-1', () => {
    const a = new SymbolAllocator([5], 'carousel');
    expect(a.take(0, 3)).toEqual({ firstEsi: 0, count: 3, stride: 1 });
    expect(a.take(0, 3)).toEqual({ firstEsi: 3, count: 2, stride: 1 });
    expect(a.take(0, 3)).toEqual({ firstEsi: 0, count: 3, stride: 1 });
  });

  test('property: base 0 / stride 1 hands out exactly what the counter did before layouts, in both modes', () => {
    fc.assert(
      fc.property(
        ks,
        fc.constantFrom<AllocationMode>('coded', 'carousel'),
        fc.array(fc.tuple(fc.nat(3), takeSize), { maxLength: 60 }),
        fc.boolean(),
        (K, mode, takes, explicit) => {
          const layout: EsiLayout = explicit ? { sendsSourceSymbols: true, base: 0, stride: 1 } : {};
          const a = new SymbolAllocator(K, mode, mode === 'coded' ? layout : {});
          const model = new CounterBeforeLayouts(K, mode);
          for (const [b, max] of takes) {
            const sbn = b % K.length;
            expect(a.take(sbn, max)).toEqual({ ...model.take(sbn, max), stride: 1 });
            expect(a.peek(sbn)).toBe(model.peek(sbn));
            expect(a.wraps(sbn)).toBe(model.wrapCount[sbn]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('replacements: coded takes fresh ESIs; a carousel resends the lost ones', () => {
    const coded = new SymbolAllocator([10]);
    coded.take(0, 12);
    expect(coded.replacements(0, [3, 4, 11])).toEqual([{ firstEsi: 12, count: 3, stride: 1 }]);
    expect(coded.peek(0)).toBe(15);
    const top = new SymbolAllocator([10]);
    top.take(0, ESI_END - 2);
    // Across the wrap: two runs, the second from the first repair ESI.
    expect(top.replacements(0, [1, 2, 3])).toEqual([
      { firstEsi: ESI_END - 2, count: 2, stride: 1 },
      { firstEsi: 10, count: 1, stride: 1 },
    ]);
    const carousel = new SymbolAllocator([10], 'carousel');
    carousel.take(0, 4);
    expect(carousel.replacements(0, [7, 2])).toEqual([
      { firstEsi: 7, count: 1, stride: 1 },
      { firstEsi: 2, count: 1, stride: 1 },
    ]);
    expect(carousel.peek(0)).toBe(4);
  });
});

describe('SymbolAllocator, ESI layouts', () => {
  test('base and stride: source symbols only where configured, then base + j * stride from the first >= K', () => {
    const withSource = new SymbolAllocator([10], 'coded', { base: 1, stride: 4 });
    expect(withSource.take(0, 100)).toEqual({ firstEsi: 0, count: 10, stride: 1 });
    expect(withSource.take(0, 3)).toEqual({ firstEsi: 13, count: 3, stride: 4 });
    expect(withSource.peek(0)).toBe(25);
    const repairOnly = new SymbolAllocator([10], 'coded', { sendsSourceSymbols: false, base: 2, stride: 4 });
    expect(repairOnly.take(0, 2)).toEqual({ firstEsi: 10, count: 2, stride: 4 });
    expect(repairOnly.take(0, 1)).toEqual({ firstEsi: 18, count: 1, stride: 4 });
  });

  test('stride > 1 at the top of the 24-bit space: the run stops at the last ESI of the class and wraps to the first repair ESI', () => {
    const a = new SymbolAllocator([10], 'coded', { sendsSourceSymbols: false, base: 3, stride: 4 });
    // Class 3 mod 4 from 11: 11, 15, ..., 2^24 - 1 (= 3 mod 4).
    const perPass = (ESI_END - 1 - 11) / 4 + 1;
    expect(a.take(0, perPass - 2)).toEqual({ firstEsi: 11, count: perPass - 2, stride: 4 });
    expect(a.take(0, 10)).toEqual({ firstEsi: ESI_END - 5, count: 2, stride: 4 });
    expect(a.wraps(0)).toBe(1);
    expect(a.take(0, 1)).toEqual({ firstEsi: 11, count: 1, stride: 4 });
  });

  test('ranges: the spans in order, from K on; wraps to the first repair ESI', () => {
    const a = new SymbolAllocator([10, 150], 'coded', {
      ranges: [
        { first: 0, end: 20 },
        { first: 100, end: 103 },
        { first: 200, end: 202 },
      ],
    });
    // Block 0: source 0..9 and the first span's 10..19 are one run.
    expect(a.take(0, 100)).toEqual({ firstEsi: 0, count: 20, stride: 1 });
    expect(a.take(0, 100)).toEqual({ firstEsi: 100, count: 3, stride: 1 });
    expect(a.take(0, 100)).toEqual({ firstEsi: 200, count: 2, stride: 1 });
    expect(a.wraps(0)).toBe(1);
    expect(a.take(0, 1)).toEqual({ firstEsi: 10, count: 1, stride: 1 });
    // Block 1 (K = 150): the first two spans are source ESIs; repair starts at 200.
    expect(a.take(1, 1000)).toEqual({ firstEsi: 0, count: 150, stride: 1 });
    expect(a.take(1, 1000)).toEqual({ firstEsi: 200, count: 2, stride: 1 });
    expect(a.take(1, 1000)).toEqual({ firstEsi: 200, count: 2, stride: 1 });
    expect(a.wraps(1)).toBe(2);
  });

  test('bad layouts are EsiLayoutErrors: base out of 0..stride-1, mixed, unsorted ranges, none left for a block, no-code with a layout', () => {
    const bad: [readonly number[], AllocationMode, EsiLayout][] = [
      [[10], 'coded', { base: 4, stride: 4 }],
      [[10], 'coded', { stride: 0 }],
      [[10], 'coded', { base: -1, stride: 2 }],
      [[10], 'coded', { ranges: [{ first: 0, end: 10 }], stride: 2 }],
      [[10], 'coded', { ranges: [] }],
      [[10], 'coded', { ranges: [{ first: 50, end: 60 }, { first: 55, end: 70 }] }],
      [[10], 'coded', { ranges: [{ first: 50, end: ESI_END + 1 }] }],
      [[10, 60], 'coded', { ranges: [{ first: 50, end: 60 }] }],
      [[10], 'carousel', { stride: 2 }],
      [[10], 'carousel', { sendsSourceSymbols: false }],
    ];
    for (const [K, mode, layout] of bad) {
      expect(() => new SymbolAllocator(K, mode, layout)).toThrow(EsiLayoutError);
    }
    const refused = ((): unknown => {
      try {
        return new SymbolAllocator([10], 'coded', { stride: 0 });
      } catch (e) {
        return e;
      }
    })();
    expect(refused).toMatchObject({ code: 'ERR_ESI_LAYOUT' });
  });

  test('property: allocators with one K and different bases of one stride never hand out the same ESI', () => {
    fc.assert(
      fc.property(
        ks,
        fc.integer({ min: 2, max: 9 }).chain((stride) =>
          fc.tuple(fc.constant(stride), fc.uniqueArray(fc.nat(stride - 1), { minLength: 2, maxLength: Math.min(stride, 4) }), fc.nat(3)),
        ),
        fc.array(fc.tuple(fc.nat(3), fc.nat(3), fc.integer({ min: 1, max: 30 })), { maxLength: 80 }),
        (K, [stride, bases, sourceSender], takes) => {
          const allocators = bases.map((base, i) => new SymbolAllocator(K, 'coded', { base, stride, sendsSourceSymbols: i === sourceSender % bases.length }));
          const owner = new Map<string, number>();
          for (const [who, b, max] of takes) {
            const i = who % allocators.length;
            const sbn = b % K.length;
            for (const esi of esis(allocators[i].take(sbn, max))) {
              const key = `${sbn}/${esi}`;
              const o = owner.get(key);
              expect(o === undefined || o === i).toBe(true);
              owner.set(key, i);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: the bases of one stride stay disjoint through their wraps', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 56403 }),
        fc.integer({ min: 2, max: 64 }),
        fc.array(takeSize, { minLength: 1, maxLength: 20 }),
        (K, stride, takes) => {
          for (const base of [0, stride - 1]) {
            const a = new SymbolAllocator([K], 'coded', { base, stride, sendsSourceSymbols: base === 0 });
            for (const max of takes) {
              const r = a.take(0, max);
              if (r.firstEsi < K) {
                // Only the source sender hands out ESIs below K, and only in one run of them.
                expect(base).toBe(0);
                expect(r.stride).toBe(1);
                expect(r.firstEsi + r.count).toBeLessThanOrEqual(K);
              } else {
                expect(r.stride).toBe(stride);
                expect(r.firstEsi % stride).toBe(base);
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  const layout: fc.Arbitrary<EsiLayout> = fc.oneof(
    fc.integer({ min: 1, max: 64 }).chain((stride) => fc.record({ sendsSourceSymbols: fc.boolean(), base: fc.nat(stride - 1), stride: fc.constant(stride) })),
    fc
      .uniqueArray(fc.integer({ min: 0, max: ESI_END }), { minLength: 2, maxLength: 8 })
      .map((cuts) => cuts.sort((x, y) => x - y))
      .chain((cuts) =>
        fc.record({
          sendsSourceSymbols: fc.boolean(),
          ranges: fc.constant(Array.from({ length: Math.floor(cuts.length / 2) }, (_, i) => ({ first: cuts[2 * i], end: cuts[2 * i + 1] }))),
        }),
      ),
  );

  test('property: a range never crosses a wrap or a span: all its ESIs are < 2^24 and in one span of the layout', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), layout, fc.array(takeSize, { minLength: 1, maxLength: 30 }), (K, l, takes) => {
        let a: SymbolAllocator;
        try {
          a = new SymbolAllocator([K], 'coded', l);
        } catch (e) {
          // Only a layout that leaves this K no repair ESI is refused.
          expect(e).toBeInstanceOf(EsiLayoutError);
          expect(l.ranges?.every((s) => s.end <= K)).toBe(true);
          return;
        }
        const spans = l.ranges ?? [{ first: 0, end: ESI_END }];
        // Where a wrap restarts: the first ESI >= K of the layout.
        const stride = l.stride ?? 1;
        const base = l.base ?? 0;
        const firstRepair = l.ranges
          ? Math.max(K, l.ranges.find((s) => s.end > K)!.first)
          : base >= K
            ? base
            : base + Math.ceil((K - base) / stride) * stride;
        let wraps = 0;
        for (const max of takes) {
          const r = a.take(0, max);
          expect(r.count).toBeGreaterThanOrEqual(1);
          expect(r.count).toBeLessThanOrEqual(Math.max(1, max));
          const last = r.firstEsi + (r.count - 1) * r.stride;
          expect(last).toBeLessThan(ESI_END);
          if (r.firstEsi < K) {
            expect(l.sendsSourceSymbols).toBe(true);
          } else {
            expect(spans.some((s) => r.firstEsi >= s.first && last < s.end)).toBe(true);
          }
          if (a.wraps(0) > wraps) {
            wraps = a.wraps(0);
            expect(a.peek(0)).toBe(firstRepair);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('SymbolAllocator, blocks sealed over time', () => {
  test('an allocator may start empty; addBlock adds a block once, refuses another K for it', () => {
    const a = new SymbolAllocator([]);
    expect(a.sourceBlocks).toBe(0);
    expect(() => a.take(0, 1)).toThrow(RangeError);
    a.addBlock(2, 7);
    a.addBlock(2, 7);
    expect(a.sourceBlocks).toBe(3);
    expect(a.take(2, 100)).toEqual({ firstEsi: 0, count: 100, stride: 1 });
    expect(() => a.addBlock(2, 8)).toThrow(RangeError);
    expect(() => a.addBlock(256, 8)).toThrow(RangeError);
    expect(() => a.take(1, 1)).toThrow(RangeError);
  });

  test('forEncoder takes the sealed blocks of a source (all of a file\'s)', () => {
    const file = { sourceBlocks: 3, sourceSymbols: (sbn: number) => 10 + sbn };
    const all = SymbolAllocator.forEncoder(file);
    expect([0, 1, 2].map((sbn) => all.sourceSymbols(sbn))).toEqual([10, 11, 12]);
    const sealing: BlockSealing = { isSealed: (sbn) => sbn === 1, ended: false, onSealed: () => () => undefined };
    const live = SymbolAllocator.forEncoder({ ...file, sealing });
    expect(live.sourceSymbols(1)).toBe(11);
    expect(() => live.take(0, 1)).toThrow(RangeError);
  });
});

describe('SymbolAllocator, repairStart (a restarted server does not repeat its repair ESIs)', () => {
  /** A layout whose repair class for K is small enough to walk whole: ranges below 4000, or a stride, its space cut by ranges. */
  const smallLayout: fc.Arbitrary<EsiLayout> = fc
    .uniqueArray(fc.integer({ min: 0, max: 4000 }), { minLength: 2, maxLength: 8 })
    .map((cuts) => cuts.sort((x, y) => x - y))
    .chain((cuts) =>
      fc.record({
        sendsSourceSymbols: fc.boolean(),
        ranges: fc.constant(Array.from({ length: Math.floor(cuts.length / 2) }, (_, i) => ({ first: cuts[2 * i], end: cuts[2 * i + 1] }))),
      }),
    );

  /** The class's repair ESIs in the order repairStart 0 hands them out (one wrap's worth). */
  function repairCycle(K: number, l: EsiLayout): number[] {
    const a = new SymbolAllocator([K], 'coded', { ...l, sendsSourceSymbols: false });
    const out: number[] = [];
    while (a.wraps(0) === 0) out.push(a.take(0, 1).firstEsi);
    return out;
  }

  test('property: source symbols first (if sent), then the repair class rotated by repairStart mod n, over and over; every run inside one span', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1500 }),
        smallLayout,
        fc.nat({ max: 2 ** 40 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 200 }),
        (K, l, j, takes) => {
          let cycle: number[];
          try {
            cycle = repairCycle(K, l);
          } catch (e) {
            expect(e).toBeInstanceOf(EsiLayoutError);
            return;
          }
          const n = cycle.length;
          const a = new SymbolAllocator([K], 'coded', { ...l, repairStart: j });
          const got: number[] = [];
          const spans = l.ranges ?? [];
          // Enough takes to go round the class at least once.
          for (let i = 0; got.length < K + 2 * n + 5; i++) {
            const r = a.take(0, takes[i % takes.length]);
            const run = esis(r);
            if (run[0] >= K || !(l.sendsSourceSymbols ?? true)) {
              expect(spans.some((s) => run[0] >= s.first && run[run.length - 1] < s.end)).toBe(true);
            }
            got.push(...run);
          }
          const source = (l.sendsSourceSymbols ?? true) ? Array.from({ length: K }, (_, i) => i) : [];
          const expected = [...source];
          for (let i = 0; expected.length < got.length; i++) expected.push(cycle[(j + i) % n]);
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('property: with a stride, the first repair ESI is the (repairStart mod n)-th of the class; after the top it wraps to the first; never another base', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 56403 }),
        fc.integer({ min: 1, max: 64 }).chain((stride) => fc.tuple(fc.constant(stride), fc.nat(stride - 1))),
        fc.nat({ max: 2 ** 40 }),
        fc.boolean(),
        (K, [stride, base], j, source) => {
          const a = new SymbolAllocator([K], 'coded', { base, stride, sendsSourceSymbols: source, repairStart: j });
          const firstRepair = K + ((((base - K) % stride) + stride) % stride);
          const n = Math.floor((ESI_END - 1 - firstRepair) / stride) + 1;
          if (source) expect(a.take(0, K)).toEqual({ firstEsi: 0, count: K, stride: 1 });
          const start = firstRepair + (j % n) * stride;
          expect(a.peek(0)).toBe(start);
          const all = a.take(0, ESI_END);
          expect(all).toEqual({ firstEsi: start, count: n - (j % n), stride });
          expect(a.wraps(0)).toBe(1);
          const next = a.take(0, 3);
          expect(next.firstEsi).toBe(firstRepair);
          expect(next.firstEsi % stride).toBe(base);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('repairStart 0 is the old counter; a bad repairStart is an EsiLayoutError; no-code mode ignores it', () => {
    const a = new SymbolAllocator([10], 'coded', { repairStart: 0 });
    expect(a.take(0, 12)).toEqual({ firstEsi: 0, count: 12, stride: 1 });
    expect(() => new SymbolAllocator([10], 'coded', { repairStart: -1 })).toThrow(EsiLayoutError);
    expect(() => new SymbolAllocator([10], 'coded', { repairStart: 1.5 })).toThrow(EsiLayoutError);
    const c = new SymbolAllocator([10], 'carousel', { repairStart: 7 });
    expect(c.take(0, 10)).toEqual({ firstEsi: 0, count: 10, stride: 1 });
  });
});
