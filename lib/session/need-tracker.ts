/**
 * NeedTracker: which NEED reports (docs/PROTOCOL.md §4.11, §7a) the client
 * manager lets through to a channel's stream, per (client, channel). No
 * I/O, no clock of its own (the caller passes `now`).
 *
 * What it guards against is a flood: each report costs the stream a binary
 * search of its ledger and one target per block named, so a (client,
 * channel) gets at most `burst` reports at once and `perSecond` after that
 * (a token bucket); the others are dropped and counted. An honest client
 * sends one every ~10 ms, one every 256 packets and one when the packets
 * move to a block new to the stream (lib/client/need-reporter.ts): at
 * 200 Mbit/s about 175 a second,
 * well inside the default 1000. Who may report at all (a cookie for the
 * sender's address, a session, one of its unicast channels) is the
 * manager's check; what a report may claim (blocks the stream sends, needs
 * up to K, a sequence number not older than the last) is the stream's
 * (lib/stream/channel-stream.ts reportNeed, need-table.ts).
 *
 * State: one bucket per (client, channel), dropped with the channel or the
 * client (a JOIN omitting it, LEAVE, expiry), as ack-tracker.ts's.
 */

export interface NeedTrackerOptions {
  /** Reports per second per (client, channel) in the long run. Default 1000. */
  perSecond?: number;
  /** Reports at once. Default 50. */
  burst?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class NeedTracker<K> {
  readonly perSecond: number;
  readonly burst: number;
  private readonly buckets = new Map<K, Map<number, Bucket>>();

  constructor(options: NeedTrackerOptions = {}) {
    this.perSecond = options.perSecond ?? 1000;
    this.burst = options.burst ?? 50;
    if (!(this.perSecond > 0 && Number.isFinite(this.perSecond))) throw new RangeError('perSecond must be a positive number');
    if (!(Number.isInteger(this.burst) && this.burst >= 1)) throw new RangeError('burst must be a positive integer');
  }

  /** (client, channel) pairs with state now. */
  get size(): number {
    let n = 0;
    for (const m of this.buckets.values()) n += m.size;
    return n;
  }

  /** Whether a report of `client` on channel `tsi` at `now` (ms) may go through; takes a token if so. */
  admit(client: K, tsi: number, now: number): boolean {
    let byChannel = this.buckets.get(client);
    if (!byChannel) this.buckets.set(client, (byChannel = new Map()));
    let b = byChannel.get(tsi);
    if (!b) byChannel.set(tsi, (b = { tokens: this.burst, at: now }));
    const elapsed = Math.max(0, now - b.at);
    b.tokens = Math.min(this.burst, b.tokens + (elapsed * this.perSecond) / 1000);
    b.at = Math.max(b.at, now);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  dropChannel(client: K, tsi: number): void {
    const m = this.buckets.get(client);
    if (!m) return;
    m.delete(tsi);
    if (m.size === 0) this.buckets.delete(client);
  }

  dropClient(client: K): void {
    this.buckets.delete(client);
  }
}
