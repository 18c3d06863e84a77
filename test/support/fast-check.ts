/**
 * fast-check as the tests see it: jest.config.js maps `fast-check` here, so
 * `import fc from 'fast-check'` in a test gets the real module with two
 * changes to `fc.assert` and `fc.check`:
 *
 * - **A fixed seed by default**, so `npm test` runs the same cases every
 *   time and a landing never depends on the draw (two landings failed on a
 *   rare case of a property whose own bookkeeping was wrong). A property
 *   that gives its own seed keeps it.
 * - **Exploration on demand**: `RQCAST_FC_SEED=random` draws a new seed per
 *   property, `RQCAST_FC_SEED=N` replays seed N (fast-check prints the seed
 *   and path of a failure), and `RQCAST_FC_RUNS=X` multiplies every
 *   property's runs by X. `npm run test:properties` runs every property
 *   with random seeds and 20 times the runs (tools/test-properties.js).
 */
import type * as FastCheck from 'fast-check';
import * as path from 'path';

// The package's CommonJS build by its path: `fast-check` would map back to
// this file, and the package exports no subpath but its package.json.
const real: typeof FastCheck = require(path.join(path.dirname(require.resolve('fast-check/package.json')), 'lib/cjs/fast-check.js'));

/** The seed of `npm test` (any fixed number; changing it is a new set of cases). */
export const DEFAULT_SEED = 20_261_205;

/** The seed every property without its own gets under `env` (undefined: fast-check draws one). */
export function seedFrom(env: NodeJS.ProcessEnv): number | undefined {
  const v = env.RQCAST_FC_SEED;
  if (v === undefined || v === '') return DEFAULT_SEED;
  if (v === 'random') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`RQCAST_FC_SEED must be an integer or "random", not ${JSON.stringify(v)}`);
  return n;
}

/** What every property's runs are multiplied by under `env`. */
export function runsScaleFrom(env: NodeJS.ProcessEnv): number {
  const v = env.RQCAST_FC_RUNS;
  if (v === undefined || v === '') return 1;
  const x = Number(v);
  if (!(Number.isFinite(x) && x > 0)) throw new Error(`RQCAST_FC_RUNS must be a positive number, not ${JSON.stringify(v)}`);
  return x;
}

/** A property's parameters as run under `env`: its own seed, else the env's; its runs scaled. */
export function paramsFor<T>(env: NodeJS.ProcessEnv, params: FastCheck.Parameters<T> | undefined): FastCheck.Parameters<T> {
  const p: FastCheck.Parameters<T> = { ...params };
  const seed = seedFrom(env);
  if (p.seed === undefined && seed !== undefined) p.seed = seed;
  const scale = runsScaleFrom(env);
  if (scale !== 1) p.numRuns = Math.max(1, Math.round((p.numRuns ?? 100) * scale));
  return p;
}

const fc: typeof FastCheck = {
  ...real,
  assert: ((property: FastCheck.IRawProperty<unknown>, params?: FastCheck.Parameters<unknown>) => real.assert(property, paramsFor(process.env, params))) as typeof real.assert,
  check: ((property: FastCheck.IRawProperty<unknown>, params?: FastCheck.Parameters<unknown>) => real.check(property, paramsFor(process.env, params))) as typeof real.check,
};

export default fc;
