/**
 * The transport chain of a one-server fetch, as RqcastClient wires it
 * (docs/PROTOCOL.md §10.10, §10.11): which transport each joined channel
 * is received by, and the moves along the chain (fallback.ts decides them,
 * time passed in; this file carries them out).
 *
 * Multicast (transport 'auto', the default, or 'multicast'): JOIN sets
 * every channel's multicast bit; each group JOINED announces is joined on
 * its own membership (group-link.ts), and in 'auto' a channel whose group
 * stays silent for fallbackAfterMs is asked for by unicast (a JOIN with
 * its bit cleared), keeping the membership and every symbol it brought.
 * TCP is the chain's last step: a channel whose UDP stream delivers
 * nothing for fallbackAfterMs (or every channel, when the UDP session gets
 * no JOINED within it) is asked for on a new session over TCP, one per
 * batch of channels that move together; what the earlier transports
 * brought stays. 'transport' events say which transport each channel is
 * on, and why.
 */
import type { JoinedChannel } from '../protocol/messages';
import type { ClientTransportKind, ServerEndpoint } from '../transport/client-transport';
import type { ChannelSummary } from './events';
import { FallbackDecision, fallbackChain, TransportEvent, TransportFallback, TransportReason } from './fallback';
import { groupText } from './fetch-report';
import type { FetchLinks } from './fetch-links';
import type { GroupLink, GroupLinkHost } from './group-link';
import type { ResolvedClientOptions } from './options';
import type { ServerLink, ServerLinkHost } from './server-link';

/**
 * The native socket hands over what arrived in up to 8 ms: at 200 Mbit/s
 * about 150 packets per wake-up instead of one (each a context switch of
 * the receiving thread and of the event loop). Measured on a 256 MiB
 * fetch at 200 Mbit/s: client CPU 11.8 s with no window, 6.0 s at 1 ms,
 * 4.6 s at 3 ms; with the in-place data path, 3.9-4.4 s at 3 ms, 3.2-3.6 s
 * at 8 ms, 3.1-3.4 s at 15 ms. A control reply waits at most 8 ms more;
 * the socket buffer holds far more than 8 ms of stream.
 */
export const RECV_GATHER_MICROS = 8000;

/** A joined channel of a link, and what the fetch knows of how it is received. */
interface JoinedEntry {
  link: ServerLink;
  channel: JoinedChannel;
  transport?: ClientTransportKind;
  group?: GroupLink;
}

/** What TransportChain needs of the client that runs the fetch (it adds one link per move to TCP). */
export interface TransportChainHost extends FetchLinks {
  /** The host of the TCP links the chain opens: their failure is a warning (onTcpFailed), not the fetch's end. */
  readonly tcpFallbackHost: ServerLinkHost;
  tcpEndpoint(): Promise<ServerEndpoint>;
  emit(event: 'transport', t: TransportEvent): boolean;
  emit(event: 'warning', message: string): boolean;
}

export class TransportChain {
  /** Each channel's unicast packet count when the fallback last heard of it. */
  private readonly unicastSeen = new Map<string, number>();
  private readonly groupHost: GroupLinkHost;
  /** Joined channels by name, in JOINED order (one link today: names are unique). */
  private readonly joinedChannels = new Map<string, JoinedEntry>();
  private readonly fallback: TransportFallback;
  private fallbackTimer?: NodeJS.Timeout;
  private fallbackDue = 0;

  constructor(
    private readonly opts: ResolvedClientOptions,
    private readonly host: TransportChainHost,
  ) {
    this.fallback = new TransportFallback({ chain: fallbackChain(this.opts.transport), fallbackAfterMs: this.opts.fallbackAfterMs });
    this.groupHost = {
      groupPackets: (g, _count, now) => this.fallback.received(g.channel, 'multicast', now),
      groupFailed: (g, e) => this.onGroupFailed(g, e),
    };
  }

  /**
   * 'auto': the UDP session is watched from its HELLO: a network that
   * drops UDP gives no JOINED, and its channels move to TCP like silent ones.
   */
  watchUdp(channels: readonly string[]): void {
    const now = Date.now();
    for (const c of channels) this.fallback.start(c, 'udp', now);
    this.armFallback();
  }


  /**
   * The channels of a link's first JOINED: each with a group is received
   * from it (unless unicast is forced), the others by the session's own
   * transport.
   */
  receiveChannels(link: ServerLink, channels: JoinedChannel[]): void {
    for (const channel of channels) {
      // Already moved on to TCP (a UDP session that joined late): its session there is the one watched.
      if (this.fallback.transport(channel.name) === 'tcp') {
        this.host.run.registry.supersede(link.id, channel.tsi);
        continue;
      }
      const entry: JoinedEntry = { link, channel };
      this.joinedChannels.set(channel.name, entry);
      if (this.opts.transport === 'udp') this.setTransport(entry, 'udp', 'transport-udp');
      else if (!channel.multicast) this.setTransport(entry, 'udp', 'no-group');
      else this.joinGroup(entry);
    }
  }

  private joinGroup(entry: JoinedEntry): void {
    const c = entry.channel;
    const m = c.multicast as NonNullable<JoinedChannel['multicast']>;
    // Loaded with the first group, not at the top: a fetch over unicast never needs it (its start-up, fetch --json startupMs).
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { GroupLink: Link } = require('./group-link') as typeof import('./group-link');
    const group = new Link(
      c.name,
      {
        group: m.group,
        port: m.port,
        ...(m.source !== undefined ? { source: m.source } : {}),
        ...(this.opts.multicastInterface !== undefined ? { interface: this.opts.multicastInterface } : {}),
      },
      { tsi: c.tsi, ...(m.source !== undefined ? { source: m.source } : {}) },
      entry.link.dataPath,
      this.groupHost,
      // The group's socket reads like the session's (openTransport): native batches, or dgram when asked.
      { receiveBufferBytes: this.opts.recvBufferBytes, batch: this.opts.recvBatch, gatherMicros: RECV_GATHER_MICROS, useDgram: this.opts.useDgram },
    );
    entry.group = group;
    group.open().then(
      () => {
        if (this.host.ended) return;
        // The fallback's wait starts once the kernel has joined the group.
        this.fallback.start(c.name, 'multicast', Date.now());
        this.setTransport(entry, 'multicast', 'group-announced');
        this.armFallback();
      },
      (e: unknown) => this.onGroupFailed(group, e instanceof Error ? e : new Error(String(e))),
    );
  }

  /** A group could not be joined, or its socket failed: the next transport at once ('auto'), or the fetch fails ('multicast'). */
  private onGroupFailed(group: GroupLink, e: Error): void {
    if (this.host.ended) return;
    const entry = this.joinedChannels.get(group.channel);
    if (!entry) return;
    if (this.opts.transport === 'multicast') {
      this.host.run.fail(e);
      return;
    }
    const now = Date.now();
    // A group that failed before it was ever joined: its step starts now (in 'auto' the channel was watched on UDP since HELLO).
    if (entry.transport === undefined) this.fallback.start(group.channel, 'multicast', now);
    const d = this.fallback.failed(group.channel, 'multicast', now);
    this.host.emit('warning', `channel "${group.channel}": ${e.message}`);
    if (d) this.applyFallbacks([d]);
  }

  /** Wakes up at the fallback's next deadline (it only moves later as packets arrive: checked when it fires). */
  private armFallback(): void {
    const due = this.fallback.nextDeadline();
    if (this.host.ended || due === undefined) return;
    if (this.fallbackTimer && this.fallbackDue <= due) return;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackDue = due;
    this.fallbackTimer = setTimeout(() => {
      this.fallbackTimer = undefined;
      if (this.host.ended) return;
      this.applyFallbacks(this.fallback.tick(Date.now()));
      this.armFallback();
    }, Math.max(0, due - Date.now()));
  }

  /**
   * Channels move on. To UDP: unicast is asked for by a JOIN of its
   * session; its group stays joined and keeps counting. To TCP: the
   * channels decided together get one new session over TCP (a channel the
   * UDP session never joined too); any group stays, and whatever it still
   * brings counts (the UDP session is released once it carries nothing:
   * releaseIdleLinks).
   */
  private applyFallbacks(ds: FallbackDecision[]): void {
    if (this.host.ended) return;
    const toTcp: string[] = [];
    for (const d of ds) {
      const entry = this.joinedChannels.get(d.channel);
      if (d.transport === 'tcp') {
        toTcp.push(d.channel);
        if (entry) this.setTransport(entry, 'tcp', d.reason);
        else this.host.emit('transport', { channel: d.channel, transport: 'tcp', reason: d.reason } satisfies TransportEvent);
        continue;
      }
      if (!entry) continue;
      if (d.transport === 'udp') entry.link.useUnicast(d.channel);
      this.setTransport(entry, d.transport, d.reason);
    }
    if (toTcp.length > 0) this.openTcpLink(toTcp).catch((e: unknown) => this.onTcpFailed(e instanceof Error ? e : new Error(String(e)), toTcp));
  }

  /** A session over TCP for `channels` (the 'auto' chain's last step). */
  private async openTcpLink(channels: string[]): Promise<void> {
    const server = await this.host.tcpEndpoint();
    if (this.host.ended) return;
    const link = this.host.newLink(server, channels, [], this.host.tcpFallbackHost, true);
    // Listed at once: its id is taken, and shutdown() ends it whatever happens next.
    this.host.links.push(link);
    const transport = await this.host.openTransport(server, link);
    if (this.host.ended) {
      await transport.close();
      return;
    }
    link.start(transport);
  }

  /**
   * A TCP session of the 'auto' chain failed: there is nothing to fall
   * back to; the fetch goes on with what it has until its timeout. Channels
   * whose TCP connection could not be made at all (`channels`) are said to
   * be on UDP again ('tcp-failed'), which still carries whatever it brings.
   */
  onTcpFailed(e: Error, channels: string[] = []): void {
    if (this.host.ended) return;
    if (this.opts.transport === 'tcp') {
      this.host.run.fail(e);
      return;
    }
    this.host.emit('warning', `TCP: ${e.message}`);
    for (const name of channels) {
      const entry = this.joinedChannels.get(name);
      if (entry && !this.host.tcpLinks.has(entry.link)) this.setTransport(entry, 'udp', 'tcp-failed');
    }
  }

  /** A TCP session joined: its channels are received by it from now on (what other links brought stays). */
  adoptTcpChannels(link: ServerLink, channels: JoinedChannel[]): void {
    for (const channel of channels) {
      const entry = this.joinedChannels.get(channel.name);
      if (entry) {
        if (entry.link !== link) this.host.run.registry.supersede(entry.link.id, entry.channel.tsi);
        entry.link = link;
        entry.channel = channel;
        entry.transport = 'tcp';
        continue;
      }
      const fresh: JoinedEntry = { link, channel };
      this.joinedChannels.set(channel.name, fresh);
      // 'tcp' says so now; in 'auto' the move was announced when it was decided.
      if (this.opts.transport === 'tcp') this.setTransport(fresh, 'tcp', 'transport-tcp');
      else fresh.transport = 'tcp';
    }
    this.releaseIdleLinks();
  }

  /**
   * A UDP session none of whose channels it still carries (every one moved
   * to TCP, and no group feeds its data path) is of no more use: LEAVE, so
   * the server stops sending a stream that does not arrive; one that never
   * joined (UDP dropped) is ended, so its HELLOs stop.
   */
  private releaseIdleLinks(): void {
    const entries = [...this.joinedChannels.values()];
    // A group feeds the data path of the UDP session it was joined beside.
    if (entries.some((e) => e.group !== undefined)) return;
    for (const l of this.host.links) {
      if (this.host.tcpLinks.has(l) || entries.some((e) => e.link === l)) continue;
      if (l.joined) l.leave();
      else void l.shutdown();
    }
  }

  /** A delivery of `link` was read: a channel it carries by UDP that got packets keeps its UDP watch alive. */
  onDelivered(link: ServerLink, now: number): void {
    if (this.host.tcpLinks.has(link)) return;
    for (const e of this.joinedChannels.values()) {
      if (e.link !== link) continue;
      const name = e.channel.name;
      const n = link.dataPath.unicastPackets(e.channel.tsi);
      if (n === (this.unicastSeen.get(name) ?? 0)) continue;
      this.unicastSeen.set(name, n);
      this.fallback.received(name, 'udp', now);
    }
  }

  private setTransport(entry: JoinedEntry, transport: ClientTransportKind, reason: TransportReason): void {
    entry.transport = transport;
    const event: TransportEvent = { channel: entry.channel.name, transport, reason };
    this.host.emit('transport', event);
  }

  /** Channels whose wanted objects are all decoded: the fallback stops watching them (a group that ends with the transfer is not silent). */
  finishChannels(): void {
    for (const e of this.joinedChannels.values()) {
      const ch = this.host.run.registry.channel(e.link.id, e.channel.tsi);
      if (!ch || !ch.fdtSeen) continue;
      let decoded = true;
      for (const obj of ch.tois.values()) if (!obj.receiver.complete) decoded = false;
      if (decoded) this.fallback.finished(e.channel.name);
    }
  }

  /** Every wanted object decoded: the groups are left too. */
  leaveGroups(): void {
    for (const e of this.joinedChannels.values()) e.group?.leave();
  }

  /** Every joined channel and the transport it is on. */
  channelSummaries(): ChannelSummary[] {
    return [...this.joinedChannels.values()].map((e) => ({
      name: e.channel.name,
      tsi: e.channel.tsi,
      // A group still being joined when the fetch ended: nothing came by it.
      transport: e.transport ?? 'udp',
      ...(e.channel.multicast ? { group: groupText(e.channel.multicast.group, e.channel.multicast.port) } : {}),
    }));
  }

  /** Receive-buffer overflows of every group's socket. */
  groupSocketDrops(): number {
    let n = 0;
    for (const e of this.joinedChannels.values()) n += e.group?.socketDrops() ?? 0;
    return n;
  }

  /** Stops the fallback's timer and closes every group; resolves once closed. */
  async close(): Promise<void> {
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = undefined;
    await Promise.all([...this.joinedChannels.values()].map((e) => e.group?.close()));
  }
}
