/**
 * node:crypto, loaded when first used. A fetch hashes (its objects'
 * SHA-256, the code cache's SHA-1) only once data has arrived, and loading
 * crypto costs about 10 ms of CPU (47 of Node's internal modules), which
 * its start-up to the HELLO (issue 12) no longer pays. Random bytes that
 * are needed sooner come from kernel-random.ts.
 */
import type { Hash } from 'crypto';

let loaded: typeof import('crypto') | undefined;

/** The crypto module, required at the first call. */
export function nodeCrypto(): typeof import('crypto') {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (loaded ??= require('crypto') as typeof import('crypto'));
}

/** crypto.createHash, loading crypto if need be. */
export function createHash(algorithm: string): Hash {
  return nodeCrypto().createHash(algorithm);
}
