/**
 * RFC 6330 building blocks of the native core, exposed for tests, tools
 * and interoperability checks. Arguments are checked natively; a bad one
 * throws a typed error (InvalidArgumentError, TooManySourceSymbolsError).
 */
import { callNative } from './errors';
import { loadNative, RawPartition, RawSystematicParams, RawTuple } from '../native';

export type SystematicParams = RawSystematicParams;
export type Tuple = RawTuple;
export type Partition = RawPartition;

/** §5.3.5.1 Rand[y, i, m]. */
export function rfcRand(y: number, i: number, m: number): number {
  return callNative(() => loadNative().rfcRand(y, i, m));
}

/** §5.3.5.2 Deg[v] for a block whose LT symbol count is W. */
export function rfcDeg(v: number, W: number): number {
  return callNative(() => loadNative().rfcDeg(v, W));
}

/** §5.3.5.4 Tuple[K', X], K' being the Table 2 row for K. */
export function rfcTuple(K: number, X: number): Tuple {
  return callNative(() => loadNative().rfcTuple(K, X));
}

/** §5.6 Table 2: the row of the smallest K' >= K, with S, H, W, L, P, P1, U, B. */
export function systematicParams(K: number): SystematicParams {
  return callNative(() => loadNative().systematicParams(K));
}

/** §4.4.1.2 Partition[I, J] = (IL, IS, JL, JS). */
export function rfcPartition(I: number, J: number): Partition {
  return callNative(() => loadNative().rfcPartition(I, J));
}

/** The stable code of every codec Status, indexed by its numeric value. */
export function statusCodes(): string[] {
  return loadNative().statusCodes();
}
