/**
 * What a JOIN asks for, checked (docs/PROTOCOL.md §6.2): the channels it
 * names, resolved to their TSIs, and the absolute time its session runs out.
 * A refusal names the ERROR code and reason to answer with and the counter
 * to bump; the caller changes nothing when it gets one.
 *
 * Checks run in the order §6.2 gives, so the ERROR a client sees does not
 * depend on anything but its own JOIN: too many channels, then the first
 * unknown name in JOIN order, then the time value.
 */
import { ErrorCode, type JoinMessage, type TimeValue } from '../protocol/messages';
import type { ChannelDirectory } from './channel-directory';
import type { ClientManagerCounters } from './session-counters';

export interface JoinLimits {
  channels: ChannelDirectory;
  /** Longest a JOIN may keep a client without renewal (ms). */
  maxTtlMs: number;
  /** Most channels in one JOIN. */
  maxChannels: number;
}

export interface JoinGrant {
  /** Channel name -> TSI, in JOIN order. */
  wanted: Map<string, number>;
  expiresAtMs: number;
}

export interface JoinRefusal {
  code: ErrorCode;
  reason: string;
  counter: keyof ClientManagerCounters;
}

/** The grant for a JOIN with at least one channel received at `now`, or why it is refused. */
export function checkJoin(msg: JoinMessage, now: number, limits: JoinLimits): JoinGrant | JoinRefusal {
  if (msg.channels.length > limits.maxChannels) {
    return { code: ErrorCode.TooManyChannels, reason: `at most ${limits.maxChannels} channels`, counter: 'joinTooManyChannels' };
  }
  const wanted = new Map<string, number>();
  for (const name of msg.channels) {
    const info = limits.channels.lookup(name);
    if (!info) {
      return { code: ErrorCode.UnknownChannel, reason: `unknown channel ${asciiSafe(name)}`, counter: 'joinUnknownChannel' };
    }
    wanted.set(info.name, info.tsi);
  }
  const expiresAtMs = expiryOf(msg.until, now, limits.maxTtlMs);
  if (expiresAtMs === undefined) {
    return { code: ErrorCode.BadTime, reason: 'time value not in the future', counter: 'joinBadTime' };
  }
  return { wanted, expiresAtMs };
}

export function isJoinRefusal(r: JoinGrant | JoinRefusal): r is JoinRefusal {
  return 'code' in r;
}

/**
 * Absolute expiry for a JOIN's time value, or undefined if it is not in the
 * future: duration d -> min(now + d, now + maxTtlMs); absolute t -> min(t,
 * now + maxTtlMs) (docs/PROTOCOL.md §6.2).
 */
export function expiryOf(until: TimeValue, now: number, maxTtlMs: number): number | undefined {
  const limit = now + maxTtlMs;
  if (until.kind === 'duration') {
    if (!Number.isFinite(until.ms) || until.ms <= 0) return undefined;
    return Math.min(now + until.ms, limit);
  }
  if (!Number.isFinite(until.unixMs) || until.unixMs <= now) return undefined;
  return Math.min(until.unixMs, limit);
}

/** Channel names are client-supplied: keep error text printable ASCII and short. */
export function asciiSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}
