// The fast-check the tests import (jest.config.js maps it to
// test/support/fast-check.ts): a fixed seed unless RQCAST_FC_SEED says
// otherwise, runs scaled by RQCAST_FC_RUNS.
import fc from 'fast-check';
import { DEFAULT_SEED, paramsFor, runsScaleFrom, seedFrom } from './fast-check';

describe('fast-check for the tests', () => {
  test('by default every property gets the fixed seed and its own runs; its own seed wins', () => {
    expect(seedFrom({})).toBe(DEFAULT_SEED);
    expect(paramsFor({}, { numRuns: 50 })).toEqual({ numRuns: 50, seed: DEFAULT_SEED });
    expect(paramsFor({}, undefined)).toEqual({ seed: DEFAULT_SEED });
    expect(paramsFor({}, { seed: 7 })).toEqual({ seed: 7 });
  });

  test('RQCAST_FC_SEED=random leaves the draw to fast-check; a number replays it; anything else is refused', () => {
    expect(paramsFor({ RQCAST_FC_SEED: 'random' }, { numRuns: 5 })).toEqual({ numRuns: 5 });
    expect(paramsFor({ RQCAST_FC_SEED: '-123' }, {})).toEqual({ seed: -123 });
    expect(() => seedFrom({ RQCAST_FC_SEED: '1.5' })).toThrow(/RQCAST_FC_SEED/);
    expect(() => seedFrom({ RQCAST_FC_SEED: 'often' })).toThrow(/RQCAST_FC_SEED/);
  });

  test('RQCAST_FC_RUNS multiplies every property\'s runs (fast-check\'s 100 when it gives none)', () => {
    expect(paramsFor({ RQCAST_FC_RUNS: '20' }, { numRuns: 50 }).numRuns).toBe(1000);
    expect(paramsFor({ RQCAST_FC_RUNS: '0.5' }, {}).numRuns).toBe(50);
    expect(paramsFor({ RQCAST_FC_RUNS: '0.001' }, { numRuns: 3 }).numRuns).toBe(1);
    expect(() => runsScaleFrom({ RQCAST_FC_RUNS: '0' })).toThrow(/RQCAST_FC_RUNS/);
    expect(() => runsScaleFrom({ RQCAST_FC_RUNS: 'x' })).toThrow(/RQCAST_FC_RUNS/);
  });

  test('the tests\' `fast-check` is this one: a property without a seed runs with the environment\'s, as many times as it scales to', () => {
    const seen: number[] = [];
    const out = fc.check(
      fc.property(fc.integer(), (x) => {
        seen.push(x);
      }),
      { numRuns: 10 },
    );
    expect(out.numRuns).toBe(Math.max(1, Math.round(10 * runsScaleFrom(process.env))));
    const seed = seedFrom(process.env);
    if (seed !== undefined) {
      expect(out.seed).toBe(seed);
      // The same seed draws the same cases.
      const again: number[] = [];
      fc.check(fc.property(fc.integer(), (x) => void again.push(x)), { numRuns: 10 });
      expect(again).toEqual(seen);
    }
  });
});
