/**
 * Replacement budget: how many ACK replacements a client, and a channel,
 * may draw.
 *
 * Replacements (docs/PROTOCOL.md §10.5) are charged to the channel's
 * pacing, so every one sent delays the stream every other member of the
 * channel receives. A client that reports every packet lost would otherwise
 * draw as many replacements as the stream has packets and halve the
 * channel's rate for everyone (issue 13, finding 2). Two token buckets, in
 * packets, bound what the ACKs of a channel can take:
 *
 * - per (client, channel): `clientShare` of the channel's packet rate;
 * - per channel, all clients together: `channelShare` of it.
 *
 * Each bucket holds at most `burstMs` worth of its rate (at least one
 * packet, none for a share of 0) and starts full. A loss granted takes one token from both; a loss
 * refused is counted under the bucket that ran out, and is not asked again
 * (the tracker has marked it answered): the stream's later symbols make up
 * for it, as for any replacement lost on the way.
 *
 * No I/O, no clock: the caller passes `now` (ms) and the channel's rate.
 */
import { InvalidServerConfigError } from '../errors';

export interface ReplacementBudgetOptions {
  /** Most of a channel's packet rate one client's replacements may take, 0..1. Default 0.1. */
  clientShare?: number;
  /** Most of a channel's packet rate all its clients' replacements together may take, 0..1. Default 0.25. */
  channelShare?: number;
  /** Bucket depth, in ms of its rate. Default 500. */
  burstMs?: number;
}

export interface ReplacementGrant {
  granted: number;
  /** Refused because the client's own bucket was empty. */
  overClientShare: number;
  /** Refused because the channel's bucket was empty (the client's was not). */
  overChannelShare: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export const DEFAULT_CLIENT_SHARE = 0.1;
export const DEFAULT_CHANNEL_SHARE = 0.25;
export const DEFAULT_BURST_MS = 500;

export class ReplacementBudget<K> {
  readonly clientShare: number;
  readonly channelShare: number;
  readonly burstMs: number;
  private readonly clients = new Map<K, Map<number, Bucket>>();
  private readonly channels = new Map<number, Bucket>();

  constructor(options: ReplacementBudgetOptions = {}) {
    this.clientShare = options.clientShare ?? DEFAULT_CLIENT_SHARE;
    this.channelShare = options.channelShare ?? DEFAULT_CHANNEL_SHARE;
    this.burstMs = options.burstMs ?? DEFAULT_BURST_MS;
    const share = (v: number): boolean => Number.isFinite(v) && v >= 0 && v <= 1;
    if (!share(this.clientShare)) throw new InvalidServerConfigError('replacement clientShare must be between 0 and 1');
    if (!share(this.channelShare)) throw new InvalidServerConfigError('replacement channelShare must be between 0 and 1');
    if (!(Number.isFinite(this.burstMs) && this.burstMs > 0)) throw new InvalidServerConfigError('replacement burstMs must be a positive number');
  }

  /** (client, channel) buckets held. */
  get bucketCount(): number {
    let n = 0;
    for (const m of this.clients.values()) n += m.size;
    return n;
  }

  /**
   * How many of `wanted` replacements `client` gets on channel `tsi` at
   * `now`, with the channel sending `packetRate` stream packets per second.
   */
  take(client: K, tsi: number, wanted: number, packetRate: number, now: number): ReplacementGrant {
    const grant: ReplacementGrant = { granted: 0, overClientShare: 0, overChannelShare: 0 };
    if (wanted <= 0) return grant;
    if (!(Number.isFinite(packetRate) && packetRate > 0)) {
      grant.overChannelShare = wanted;
      return grant;
    }
    let perClient = this.clients.get(client);
    if (!perClient) this.clients.set(client, (perClient = new Map()));
    const mine = this.bucket(perClient, tsi, this.clientShare * packetRate, now);
    const all = this.bucket(this.channels, tsi, this.channelShare * packetRate, now);
    const byClient = Math.floor(mine.tokens);
    const byChannel = Math.floor(all.tokens);
    grant.granted = Math.max(0, Math.min(wanted, byClient, byChannel));
    mine.tokens -= grant.granted;
    all.tokens -= grant.granted;
    const refused = wanted - grant.granted;
    if (refused > 0) {
      if (byClient <= byChannel) grant.overClientShare = refused;
      else grant.overChannelShare = refused;
    }
    return grant;
  }

  /** Forgets the client's bucket on one channel. */
  dropChannel(client: K, tsi: number): void {
    const perClient = this.clients.get(client);
    if (perClient?.delete(tsi) && perClient.size === 0) this.clients.delete(client);
  }

  /** Forgets all of the client's buckets. */
  dropClient(client: K): void {
    this.clients.delete(client);
  }

  /** The bucket of `key` in `map`, refilled at `rate` per second up to its depth. */
  private bucket<T>(map: Map<T, Bucket>, key: T, rate: number, now: number): Bucket {
    const depth = rate > 0 ? Math.max(1, (rate * this.burstMs) / 1000) : 0;
    let b = map.get(key);
    if (!b) {
      b = { tokens: depth, at: now };
      map.set(key, b);
      return b;
    }
    if (now > b.at) {
      b.tokens = Math.min(depth, b.tokens + (rate * (now - b.at)) / 1000);
      b.at = now;
    }
    return b;
  }
}
