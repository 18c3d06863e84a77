/**
 * A decoder gives back the object bit for bit from any K(1+ε) symbols of
 * a block, in any order: source symbols lost anywhere, replaced by repair
 * symbols near or far, repair only, duplicates. What the decoder's own
 * paths must keep true: the constraint rows of the LDPC rows and of the
 * received source ISIs copied from the per-K' cache (source_rows_for, for
 * K' <= 8192), built from Tuple[K', X] above it, and the solver emitting
 * its fused plan directly (PlanForm::kFused).
 *
 * The symbols come from the encoder, itself held to a plan built fresh
 * and replayed op by op by test/fec/plan-cache.test.ts.
 */
import fc from 'fast-check';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { Rng } from '../../lib/support/rng';

function encoder(data: Uint8Array, T: number): ObjectEncoder {
  return new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 8 });
}

/**
 * Feeds `esis` (then further repair ESIs one at a time, if K + ε happened
 * to be rank deficient) and returns how many extra symbols it took; fails
 * the test if the bytes differ or 10 extra symbols were not enough (RFC
 * 6330 §5.5: failure at K + 2 is of the order of 1e-6).
 */
function decodeFrom(enc: ObjectEncoder, data: Uint8Array, esis: number[], spare: number): number {
  const dec = new ObjectDecoder(enc.oti);
  try {
    let done = dec.pushMany(esis.map((esi) => enc.packet(0, esi))).complete;
    let extra = 0;
    for (; !done && extra < 10; extra++) done = dec.push(enc.packet(0, spare + extra));
    expect(done).toBe(true);
    expect(Buffer.from(dec.result()).equals(Buffer.from(data))).toBe(true);
    return extra;
  } finally {
    dec.close();
  }
}

describe('decoding from any K(1+ε) symbols in any order', () => {
  it('loses any source symbols, takes repair near or far, any order (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1200 }),
        fc.integer({ min: 1, max: 4 }).map((t) => 8 * t),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 2 }),
        fc.boolean(),
        (K, T, seed, lossRate, epsilon, far) => {
          const rng = new Rng(seed);
          const data = rng.bytes(K * T);
          const enc = encoder(data, T);
          try {
            const kept: number[] = [];
            for (let x = 0; x < K; x++) if (rng.unit() >= lossRate) kept.push(x);
            // Repair ESIs: consecutive from K, or spread up to the 24-bit limit.
            const first = far ? 0xffffff - 4 * (K + 20) : K;
            const step = far ? 3 : 1;
            const repair = Array.from({ length: K - kept.length + epsilon }, (_, j) => first + step * j);
            const esis = rng.shuffle(kept.concat(repair));
            const spare = first + step * repair.length;
            expect(decodeFrom(enc, data, esis, spare)).toBeLessThanOrEqual(10);
          } finally {
            enc.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('decodes from repair symbols only, with duplicates in the mix', () => {
    for (const K of [1, 2, 10, 101, 1000]) {
      const T = 16;
      const rng = new Rng(0x5eed ^ K);
      const data = rng.bytes(K * T);
      const enc = encoder(data, T);
      const repair = Array.from({ length: K + 2 }, (_, j) => K + 7 + 2 * j);
      const esis = rng.shuffle(repair.concat(repair.slice(0, Math.ceil(K / 3))));
      decodeFrom(enc, data, esis, K + 7 + 2 * (K + 2));
      enc.close();
    }
  });

  it('decodes blocks beyond the cached rows (K\' > 8192) from lost source and repair', () => {
    const K = 8300;  // K' = 8311: rows built from Tuple[K', X], not copied
    const T = 8;
    const rng = new Rng(0xb16);
    const data = rng.bytes(K * T);
    const enc = encoder(data, T);
    const kept: number[] = [];
    for (let x = 0; x < K; x++) if (rng.unit() >= 0.1) kept.push(x);
    const repair = Array.from({ length: K - kept.length + 2 }, (_, j) => K + j);
    decodeFrom(enc, data, rng.shuffle(kept.concat(repair)), K + repair.length);
    enc.close();
  });
});
