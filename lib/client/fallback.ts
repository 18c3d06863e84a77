/**
 * TransportFallback: which transport each channel is received by, and when
 * to give one up for the next (docs/PROTOCOL.md §10.10). I/O-free and
 * clock-free, like session.ts: the caller passes in the time, the packets
 * that arrived and the transports that failed, and takes out the decisions
 * and the next time to call tick().
 *
 * A chain is the transports to try, in order: 'auto' is multicast, then
 * UDP unicast, then TCP (issue 9: for receivers behind networks that pass
 * only TCP); 'multicast', 'udp' and 'tcp' are one step each, so they never
 * fall back (a fetch that gets nothing then times out as it always has).
 * A channel without a group starts at the UDP step; so does every channel
 * before the session's first JOINED, so that a network that drops all UDP
 * (no COOKIE, no JOINED ever) still reaches TCP within fallbackAfterMs.
 *
 * Every step but the last is watched: a channel moves to the next step when
 * - nothing of it has arrived by that step's transport within
 *   `fallbackAfterMs` of starting it ('no-data'),
 * - it has gone that long without a packet since the last one ('silent'),
 * - or the transport could not be opened at all ('failed': at once);
 * and never once the channel's transfer is over (finished()). The last
 * step is not watched: there is nothing to fall back to, and the fetch's
 * own timeout applies. Moving on never drops what arrived: the caller
 * keeps the old transport open and its symbols count.
 */
import type { ClientTransportKind } from '../transport/client-transport';

/** Why a channel is received the way it is. */
export type TransportReason =
  /** JOINED announced the channel's group, and it was joined. */
  | 'group-announced'
  /** The channel has no group: unicast, as without multicast. */
  | 'no-group'
  /** --transport udp: no group is joined. */
  | 'transport-udp'
  /** --transport tcp: one TCP connection carries the session and its channels. */
  | 'transport-tcp'
  /** Fell back: nothing arrived within fallbackAfterMs of starting the transport. */
  | 'no-data'
  /** Fell back: nothing arrived for fallbackAfterMs after packets had come. */
  | 'silent'
  /** Fell back: the transport could not be opened (e.g. the kernel refused the membership). */
  | 'failed'
  /** Back on UDP: the TCP connection the chain's last step asked for could not be made. */
  | 'tcp-failed';

/** The 'transport' event: channel `channel` is now received by `transport`, because of `reason`. */
export interface TransportEvent {
  channel: string;
  transport: ClientTransportKind;
  reason: TransportReason;
}

/** `transport` mode of a fetch (RqcastClientOptions.transport, `fetch --transport`). */
export type TransportMode = 'auto' | 'multicast' | 'udp' | 'tcp';

export const TRANSPORT_MODES: readonly TransportMode[] = ['auto', 'multicast', 'udp', 'tcp'];

/** The transports a mode tries, in order. */
export function fallbackChain(mode: TransportMode): readonly ClientTransportKind[] {
  switch (mode) {
    case 'multicast':
      return ['multicast'];
    case 'udp':
      return ['udp'];
    case 'tcp':
      return ['tcp'];
    default:
      return ['multicast', 'udp', 'tcp'];
  }
}

/** A decision: `channel` moves from `from` to `to` at `at`. */
export interface FallbackDecision extends TransportEvent {
  from: ClientTransportKind;
  at: number;
}

interface Watched {
  /** Index in the chain. */
  step: number;
  /** When the current step started. */
  since: number;
  /** The last packet by the current step's transport, if any since it started. */
  lastPacket?: number;
  /** The transfer is over: no more silence checks. */
  finished: boolean;
}

export interface TransportFallbackOptions {
  chain: readonly ClientTransportKind[];
  /** A step's bounded wait, ms (> 0). */
  fallbackAfterMs: number;
}

export class TransportFallback {
  private readonly channels = new Map<string, Watched>();

  constructor(private readonly o: TransportFallbackOptions) {
    if (o.chain.length === 0) throw new RangeError('a fallback chain has at least one transport');
    if (!(o.fallbackAfterMs > 0)) throw new RangeError('fallbackAfterMs must be > 0');
  }

  get chain(): readonly ClientTransportKind[] {
    return this.o.chain;
  }

  /**
   * Starts watching `channel` at `now` on `transport` (a step of the chain:
   * a channel without a group starts further down). Undefined, and nothing
   * watched, if the chain does not have it.
   */
  start(channel: string, transport: ClientTransportKind, now: number): ClientTransportKind | undefined {
    const step = this.o.chain.indexOf(transport);
    if (step < 0) return undefined;
    this.channels.set(channel, { step, since: now, finished: false });
    return transport;
  }

  /** The transport `channel` is received by now (undefined if not started). */
  transport(channel: string): ClientTransportKind | undefined {
    const w = this.channels.get(channel);
    return w === undefined ? undefined : this.o.chain[w.step];
  }

  /** Every started channel with its transport now. */
  transports(): { channel: string; transport: ClientTransportKind }[] {
    return [...this.channels].map(([channel, w]) => ({ channel, transport: this.o.chain[w.step] }));
  }

  /** Packets of `channel` arrived by `transport` at `now`. Only the current step's transport counts for its watch. */
  received(channel: string, transport: ClientTransportKind, now: number): void {
    const w = this.channels.get(channel);
    if (w === undefined || this.o.chain[w.step] !== transport) return;
    if (w.lastPacket === undefined || now > w.lastPacket) w.lastPacket = now;
  }

  /** `channel`'s transfer is over: it stays on its transport, whatever arrives or not. */
  finished(channel: string): void {
    const w = this.channels.get(channel);
    if (w) w.finished = true;
  }

  /** `transport` failed for `channel` at `now`: the next step at once, if there is one and it was the current step. */
  failed(channel: string, transport: ClientTransportKind, now: number): FallbackDecision | undefined {
    const w = this.channels.get(channel);
    if (w === undefined || this.o.chain[w.step] !== transport) return undefined;
    return this.advance(channel, w, 'failed', now);
  }

  /** The earliest time tick() may decide something, if any. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const w of this.channels.values()) {
      const due = this.deadline(w);
      if (due !== undefined && (d === undefined || due < d)) d = due;
    }
    return d;
  }

  /** The decisions due at `now`, in the order the channels were started. */
  tick(now: number): FallbackDecision[] {
    const out: FallbackDecision[] = [];
    for (const [channel, w] of this.channels) {
      const due = this.deadline(w);
      if (due === undefined || due > now) continue;
      const d = this.advance(channel, w, w.lastPacket === undefined ? 'no-data' : 'silent', now);
      if (d) out.push(d);
    }
    return out;
  }

  // ---------------------------------------------------------------------

  /** When `w`'s current step times out: never for the last step, nor once the channel's transfer is over. */
  private deadline(w: Watched): number | undefined {
    if (w.step >= this.o.chain.length - 1 || w.finished) return undefined;
    return (w.lastPacket ?? w.since) + this.o.fallbackAfterMs;
  }

  private advance(channel: string, w: Watched, reason: TransportReason, now: number): FallbackDecision | undefined {
    if (w.step >= this.o.chain.length - 1) return undefined;
    const from = this.o.chain[w.step];
    w.step++;
    w.since = now;
    w.lastPacket = undefined;
    return { channel, from, transport: this.o.chain[w.step], reason, at: now };
  }
}
