/**
 * Server groups (lib/content/server-group.ts): the ESIs that members of one
 * group hand out never meet, for any group of up to 1024 servers and any
 * block RFC 6330 allows, through any sequence of takes (wraps included).
 *
 * The allocators' ranges are compared by exact arithmetic (two arithmetic
 * progressions meet iff a linear congruence has a solution in bounds),
 * not by enumeration, so a whole class of 2^24 / N ESIs is checked at
 * once; the helper itself is checked against enumeration on small cases.
 */
import fc from 'fast-check';
import { EsiRange, SymbolAllocator } from '../../lib/content/symbol-allocator';
import { checkServerGroup, MAX_GROUP_SERVERS, serverGroupLayout } from '../../lib/content/server-group';
import { InvalidServerConfigError } from '../../lib/errors';

const ESI_END = 2 ** 24;
/** The largest K' of RFC 6330 §5.6 (Table 2): no source block has more source symbols. */
const MAX_K = 56403;

/** x, y, g with a*x + b*y = g = gcd(a, b) (a, b >= 0), in BigInt so that no product overflows. */
function extendedGcd(a: bigint, b: bigint): [bigint, bigint, bigint] {
  if (b === 0n) return [1n, 0n, a];
  const [x, y, g] = extendedGcd(b, a % b);
  return [y, x - (a / b) * y, g];
}

/** Whether some ESI is in both runs: a.firstEsi + i*a.stride = b.firstEsi + j*b.stride, 0 <= i < a.count, 0 <= j < b.count. */
function rangesMeet(a: EsiRange, b: EsiRange): boolean {
  const aLast = a.firstEsi + (a.count - 1) * a.stride;
  const bLast = b.firstEsi + (b.count - 1) * b.stride;
  const lo = Math.max(a.firstEsi, b.firstEsi);
  const hi = Math.min(aLast, bLast);
  if (lo > hi) return false;
  // x = a.first (mod a.stride) and x = b.first (mod b.stride), lo <= x <= hi.
  const sa = BigInt(a.stride);
  const sb = BigInt(b.stride);
  const [p, , g] = extendedGcd(sa, sb);
  const diff = BigInt(b.firstEsi - a.firstEsi);
  if (diff % g !== 0n) return false;
  const lcm = (sa / g) * sb;
  // x0 = a.first + sa * p * diff / g is one solution; all are x0 + k * lcm.
  let x0 = (BigInt(a.firstEsi) + sa * ((p * (diff / g)) % (sb / g))) % lcm;
  if (x0 < 0n) x0 += lcm;
  // The smallest solution >= lo.
  const lowB = BigInt(lo);
  let x = x0;
  if (x < lowB) x += ((lowB - x + lcm - 1n) / lcm) * lcm;
  return x <= BigInt(hi);
}

function esisOf(r: EsiRange): number[] {
  return Array.from({ length: r.count }, (_, i) => r.firstEsi + i * r.stride);
}

/** Every range server `index` of `servers` hands out for a block of K, for the given take sizes. */
function takes(index: number, servers: number, K: number, sizes: readonly number[]): EsiRange[] {
  const layout = serverGroupLayout({ index, servers }, false);
  const a = new SymbolAllocator([K], 'coded', layout);
  return sizes.map((n) => a.take(0, n));
}

/** Take sizes: small runs, and now and then one that asks for everything left (so that allocators wrap). */
const takeSizes = fc.array(fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(ESI_END)), { minLength: 1, maxLength: 12 });

describe('rangesMeet (the checker) agrees with enumeration', () => {
  test('on small runs of any strides', () => {
    const run = fc.record({ firstEsi: fc.integer({ min: 0, max: 60 }), count: fc.integer({ min: 1, max: 12 }), stride: fc.integer({ min: 1, max: 9 }) });
    fc.assert(
      fc.property(run, run, (a, b) => {
        const inA = new Set(esisOf(a));
        expect(rangesMeet(a, b)).toBe(esisOf(b).some((e) => inA.has(e)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('server groups: disjoint ESIs', () => {
  test('any N <= 1024, any block (K), any two members, any takes (wraps included): their ESIs never meet', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: MAX_GROUP_SERVERS }).chain((n) =>
          fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 1, max: MAX_K }), takeSizes, takeSizes),
        ),
        ([n, i, j, K, sizesI, sizesJ]) => {
          fc.pre(i !== j);
          const a = takes(i, n, K, sizesI);
          const b = takes(j, n, K, sizesJ);
          for (const x of a) for (const y of b) expect(rangesMeet(x, y)).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('every member of a small group at once: pairwise disjoint, and together they hand out every ESI of the block', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 1, max: 300 }), (n, K) => {
        // Everything each member has, up to its first wrap: one take of all that is left per progression.
        const all = Array.from({ length: n }, (_, i) => {
          const a = new SymbolAllocator([K], 'coded', serverGroupLayout({ index: i, servers: n }, false));
          const out: EsiRange[] = [];
          while (a.wraps(0) === 0) out.push(a.take(0, ESI_END));
          return out;
        });
        for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) for (const x of all[i]) for (const y of all[j]) expect(rangesMeet(x, y)).toBe(false);
        const total = all.flat().reduce((s, r) => s + r.count, 0);
        expect(total).toBe(ESI_END);
      }),
      { numRuns: 200 },
    );
  });

  test('member 0 sends the source symbols 0..K-1 first; no other member ever sends an ESI below K', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: MAX_GROUP_SERVERS }), fc.integer({ min: 1, max: MAX_K }), takeSizes, (n, K, sizes) => {
        const zero = takes(0, n, K, [K, ...sizes]);
        expect(zero[0]).toEqual({ firstEsi: 0, count: K, stride: 1 });
        for (const r of zero.slice(1)) expect(r.firstEsi).toBeGreaterThanOrEqual(K);
        for (let i = 1; i < Math.min(n, 4); i++) for (const r of takes(i, n, K, sizes)) expect(r.firstEsi).toBeGreaterThanOrEqual(K);
      }),
      { numRuns: 300 },
    );
  });

  test('a member whose class runs out starts its own class again: the ESIs after the wrap are ones it sent before', () => {
    // N = 1024, K = 56403: (2^24 - K) / N = about 16 329 repair ESIs of member 5's class.
    const a = new SymbolAllocator([MAX_K], 'coded', serverGroupLayout({ index: 5, servers: 1024 }, false));
    const first = a.take(0, ESI_END);
    expect(first.stride).toBe(1024);
    expect(first.firstEsi % 1024).toBe(5);
    expect(first.firstEsi + (first.count - 1) * 1024).toBeLessThan(ESI_END);
    expect(first.firstEsi + first.count * 1024).toBeGreaterThanOrEqual(ESI_END);
    expect(a.wraps(0)).toBe(1);
    expect(a.take(0, 3)).toEqual({ firstEsi: first.firstEsi, count: 3, stride: 1024 });
  });
});

describe('serverGroupLayout and checkServerGroup', () => {
  test('no group, a group of one, and no-code mode: the default layout', () => {
    expect(serverGroupLayout(undefined, false)).toBeUndefined();
    expect(serverGroupLayout({ index: 0, servers: 1 }, false)).toBeUndefined();
    expect(serverGroupLayout({ index: 1, servers: 3 }, true)).toBeUndefined();
    expect(serverGroupLayout({ index: 2, servers: 3 }, false)).toEqual({ sendsSourceSymbols: false, base: 2, stride: 3 });
    expect(serverGroupLayout({ index: 0, servers: 3 }, false)).toEqual({ sendsSourceSymbols: true, base: 0, stride: 3 });
  });

  test.each([
    [{ index: 0, servers: 0 }, /1\.\.1024 servers/],
    [{ index: 0, servers: 1025 }, /1\.\.1024 servers/],
    [{ index: 3, servers: 3 }, /0\.\.2 in a group of 3/],
    [{ index: -1, servers: 3 }, /0\.\.2 in a group of 3/],
    [{ index: 0.5, servers: 3 }, /0\.\.2/],
  ])('%j is refused with a message that says the range', (g, message) => {
    expect(() => checkServerGroup(g)).toThrow(InvalidServerConfigError);
    expect(() => checkServerGroup(g)).toThrow(message);
  });
});
