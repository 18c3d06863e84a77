// The native RFC 6330 building blocks against TypeScript transcriptions of
// the RFC (test/fec/rfc-reference.ts) and the RFC's own tables.
import fc from 'fast-check';
import {
  InvalidArgumentError,
  TooManySourceSymbolsError,
  rfcDeg,
  rfcPartition,
  rfcRand,
  rfcTuple,
  systematicParams,
} from '../../lib';
import { loadTables, partition, Rfc6330 } from './rfc-reference';

const { tables, reason } = loadTables();
if (tables === undefined) {
  // eslint-disable-next-line no-console
  console.warn(`skipping RFC 6330 table tests: ${reason}`);
}
const describeTables = tables === undefined ? describe.skip : describe;
const rfc = tables === undefined ? undefined : new Rfc6330(tables);
const u32 = fc.integer({ min: 0, max: 0xffffffff });

describeTables('Rand[y, i, m] (RFC 6330 §5.3.5.1)', () => {
  test('equals the V0..V3 formula on edge values', () => {
    const ys = [0, 1, 255, 256, 65535, 65536, 0xffffff, 0x1000000, 0x7fffffff, 0x80000000, 0xffffffff];
    const ms = [1, 2, 3, 255, 256, 2 ** 20, 2 ** 31, 0xffffffff];
    for (const y of ys) {
      for (const i of [0, 1, 5, 127, 255]) {
        for (const m of ms) expect(rfcRand(y, i, m)).toBe(rfc!.rand(y, i, m));
      }
    }
  });

  test('equals the V0..V3 formula on random inputs', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 0xffffffff }), (y, i, m) => {
        expect(rfcRand(y, i, m)).toBe(rfc!.rand(y, i, m));
      }),
      { numRuns: 2000 },
    );
  });

  test('rejects m = 0, i > 255 and non-integers with InvalidArgumentError', () => {
    expect(() => rfcRand(1, 0, 0)).toThrow(InvalidArgumentError);
    expect(() => rfcRand(1, 256, 10)).toThrow(InvalidArgumentError);
    expect(() => rfcRand(1.5, 0, 10)).toThrow(InvalidArgumentError);
    expect(() => rfcRand(-1, 0, 10)).toThrow(InvalidArgumentError);
    expect(() => rfcRand(2 ** 32, 0, 10)).toThrow(InvalidArgumentError);
    expect(() => rfcRand(NaN, 0, 10)).toThrow(InvalidArgumentError);
    expect(() => (rfcRand as (...a: unknown[]) => number)('1', 0, 10)).toThrow(InvalidArgumentError);
  });
});

describeTables('Deg[v] (RFC 6330 §5.3.5.2)', () => {
  test('equals Table 1 at every boundary, for small and large W', () => {
    const f = tables!.deg_f;
    for (const W of [3, 5, 17, 30, 31, 40, 1000, 56403]) {
      for (let j = 1; j < f.length; j++) {
        for (const v of [f[j - 1], f[j] - 1]) {
          if (v >= 2 ** 20) continue;
          expect(rfcDeg(v, W)).toBe(rfc!.deg(v, W));
        }
      }
    }
  });

  test('equals Table 1 on random v', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 20 - 1 }), fc.integer({ min: 3, max: 60000 }), (v, W) => {
        expect(rfcDeg(v, W)).toBe(rfc!.deg(v, W));
      }),
      { numRuns: 2000 },
    );
  });

  test('rejects v >= 2^20', () => {
    expect(() => rfcDeg(2 ** 20, 100)).toThrow(InvalidArgumentError);
  });
});

describeTables('Table 2 (RFC 6330 §5.6)', () => {
  test('every row: K = K\' and K = previous K\' + 1 both land on it', () => {
    const cols = tables!.table2_columns;
    let prev = 0;
    for (const row of tables!.table2) {
      const expected = rfc!.params(row[0]);
      expect(expected.J).toBe(row[cols.indexOf('J_K_prime')]);
      expect(systematicParams(row[0])).toEqual(expected);
      expect(systematicParams(prev + 1)).toEqual(expected);
      prev = row[0];
    }
    expect(prev).toBe(tables!.K_prime_max);
  });

  test('K beyond 56403 is TooManySourceSymbolsError, K = 0 InvalidArgumentError', () => {
    expect(systematicParams(56403).Kprime).toBe(56403);
    expect(() => systematicParams(56404)).toThrow(TooManySourceSymbolsError);
    expect(() => systematicParams(0)).toThrow(InvalidArgumentError);
  });
});

describeTables('Tuple[K\', X] (RFC 6330 §5.3.5.4)', () => {
  test('equals the formula for every K\' at source and repair ISIs', () => {
    const kps = rfc!.kPrimes();
    for (let r = 0; r < kps.length; r += 7) {
      const K = kps[r];
      for (const X of [0, 1, K - 1, K, K + 1, 2 ** 24 - 1, 2 ** 24 + K]) {
        expect(rfcTuple(K, X)).toEqual(rfc!.tuple(K, X));
      }
    }
  });

  test('equals the formula on random (K, X)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 56403 }), fc.integer({ min: 0, max: 2 ** 24 + 56403 }), (K, X) => {
        expect(rfcTuple(K, X)).toEqual(rfc!.tuple(K, X));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('Partition[I, J] (RFC 6330 §4.4.1.2)', () => {
  test('equals the formula and covers I exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 1, max: 70000 }), (I0, J) => {
        // Keep ceil(I/J) within the 32-bit fields of codec.h's Partition.
        const I = I0 % ((2 ** 32 - 1) * J + 1);
        const p = rfcPartition(I, J);
        expect(p).toEqual(partition(I, J));
        expect(p.IL * p.JL + p.IS * p.JS).toBe(I);
        expect(p.JL + p.JS).toBe(J);
      }),
      { numRuns: 2000 },
    );
  });

  test('J = 0 is refused instead of dividing by zero', () => {
    expect(() => rfcPartition(10, 0)).toThrow(InvalidArgumentError);
  });

  test('a quotient beyond the 32-bit fields of codec.h is refused, not truncated', () => {
    expect(rfcPartition(2 ** 32 - 1, 1).IL).toBe(2 ** 32 - 1);
    expect(() => rfcPartition(2 ** 32, 1)).toThrow(InvalidArgumentError);
    expect(rfcPartition(2 ** 32, 2)).toEqual(partition(2 ** 32, 2));
  });
});
