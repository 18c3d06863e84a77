/**
 * What a JOIN asks for, checked (docs/PROTOCOL.md §6.2): the channels it
 * names, resolved to their TSIs, which of them the client receives from
 * their multicast group instead of by unicast, and the absolute time its
 * session runs out. A refusal names the ERROR code and reason to answer
 * with and the counter to bump; the caller changes nothing when it gets one.
 *
 * The multicast bitmap (JOIN flag 0x02, §4.5) is a wish, never a reason to
 * refuse: a bit for a channel that has no group is accepted and ignored
 * (the client stays a unicast member of it, as without the bit), so a
 * client may set every bit without knowing which channels have groups.
 *
 * Checks run in the order §6.2 gives, so the ERROR a client sees does not
 * depend on anything but its own JOIN: too many channels, then the first
 * unknown name in JOIN order, then the time value.
 */
import { ErrorCode, type JoinMessage, type TimeValue } from '../protocol/messages';
import type { ChannelDirectory, ChannelGroup, ChannelInfo } from './channel-directory';
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
  /** Channel name -> its group, for each wanted channel that has one (what JOINED announces). */
  groups: Map<string, ChannelGroup>;
  /**
   * The wanted channels the client receives from their group: its bit set
   * and the channel has a group. It is no unicast destination of these.
   */
  viaGroup: Set<string>;
  /** Bits set for channels without a group: accepted, ignored. */
  bitsWithoutGroup: number;
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
  const groups = new Map<string, ChannelGroup>();
  /** As the JOIN names them: the bitmap names channels the same way. */
  const named = new Map<string, ChannelInfo>();
  for (const name of msg.channels) {
    const info = limits.channels.lookup(name);
    if (!info) {
      return { code: ErrorCode.UnknownChannel, reason: `unknown channel ${asciiSafe(name)}`, counter: 'joinUnknownChannel' };
    }
    wanted.set(info.name, info.tsi);
    if (info.multicast) groups.set(info.name, info.multicast);
    named.set(name, info);
  }
  const expiresAtMs = expiryOf(msg.until, now, limits.maxTtlMs);
  if (expiresAtMs === undefined) {
    return { code: ErrorCode.BadTime, reason: 'time value not in the future', counter: 'joinBadTime' };
  }
  const viaGroup = new Set<string>();
  let bitsWithoutGroup = 0;
  // The decoder only yields names of the JOIN (bad-multicast-bitmap
  // otherwise); a name that is not one, from an in-process caller, asks
  // for nothing.
  for (const name of new Set(msg.multicast ?? [])) {
    const info = named.get(name);
    if (!info) continue;
    if (info.multicast) viaGroup.add(info.name);
    else bitsWithoutGroup++;
  }
  return { wanted, groups, viaGroup, bitsWithoutGroup, expiresAtMs };
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
