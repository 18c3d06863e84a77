/**
 * How the two wrappers of the replicator binding (replicator.ts and
 * udp/receiver.ts) call into it: every call through callReplicatorNative, so
 * a failure comes back as its typed class (errors.ts), and every optional
 * argument checked first, so a value of the wrong type is the shared
 * InvalidArgumentError naming it rather than whatever the binding makes of
 * it. Internal: not exported from lib/transport.
 */
import { InvalidArgumentError } from '../fec/errors';
import { fromReplicatorNative } from './errors';

/** Runs a call into the replicator binding and rethrows its error typed. */
export function callReplicatorNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromReplicatorNative(e);
  }
}

/** An optional non-negative integer argument, or `fallback` when absent. */
export function uintArgument(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`invalid argument: ${name} must be a non-negative integer`);
  }
  return value;
}

/** An optional boolean argument, or `fallback` when absent. */
export function boolArgument(value: boolean | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`invalid argument: ${name} must be a boolean`);
  return value;
}

/** An optional string argument (absent stays absent). */
export function stringArgument(value: string | undefined, name: string): string | undefined {
  if (value !== undefined && typeof value !== 'string') throw new InvalidArgumentError(`invalid argument: ${name} must be a string`);
  return value;
}
