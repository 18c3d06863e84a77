/**
 * RqcastClient: fetches objects from an rqcast server (docs/PROTOCOL.md
 * §10.7). The wiring, the events and the accounting; each job is its own
 * file:
 *
 *   resolve.ts          the URL's host -> the server's address
 *   server-link.ts      one server over one transport (UDP unicast,
 *                       lib/transport/udp/client-socket.ts, or TCP,
 *                       lib/transport/tcp/client-stream.ts): the
 *                       transport, the timers, and
 *     session.ts        the I/O-free session machine (HELLO, COOKIE, JOIN,
 *                       renewal, cookie refresh, LEAVE; time passed in)
 *     data-path.ts      datagrams in: source check, pre-JOIN buffer, loss
 *                       hook, ACK recording, the in-place fast path
 *   object-registry.ts  channels by (session, TSI); objects by name, digest
 *                       and OTI, their symbols combined from every channel;
 *                       the FDTs; packets of TOIs no FDT has listed yet
 *   object-receiver.ts  one object's decoding (block-budget.ts bounds memory)
 *   sinks/              where decoded blocks go: file-sink.ts, or
 *                       playout-sink.ts (in order to a stream, -o -)
 *   group-link.ts       a channel's multicast group (§10.10), joined when
 *                       JOINED announces it, feeding the link's data path
 *   fallback.ts         which transport each channel is on, and when a
 *                       silent group gives way to UDP, and silent UDP to
 *                       TCP
 *   fetch-run.ts        the registry with its sinks, the report
 *                       (fetch-report.ts: progress, object results, the
 *                       summary), and how the fetch ends
 *
 * The fetch LEAVEs once every wanted object is decoded (the stream is of no
 * more use while the last blocks are written and verified), and ends when
 * every joined channel has delivered an FDT and every wanted object is
 * verified.
 *
 * Multicast (transport 'auto', the default, or 'multicast'): JOIN sets
 * every channel's multicast bit; each group JOINED announces is joined on
 * its own membership, and in 'auto' a channel whose group stays silent for
 * fallbackAfterMs is asked for by unicast (a JOIN with its bit cleared),
 * keeping the membership and every symbol it brought. 'transport' events
 * say which transport each channel is on, and why.
 *
 * TCP (issue 9): 'tcp' runs the one session over a TCP connection
 * (lib/transport/tcp/client-stream.ts) to the URL's host and port, or
 * --tcp HOST:PORT. In 'auto', TCP is the chain's last step: a channel
 * whose UDP stream delivers nothing for fallbackAfterMs (or every channel,
 * when the UDP session gets no JOINED within it: a network that drops
 * UDP) is asked for on a new session over TCP, one per batch of channels
 * that move together; what the earlier transports brought stays (objects
 * are the registry's, whichever link fed them). Over TCP the client sends
 * no ACKs: TCP recovers its losses itself, with fresh symbols.
 *
 * Several servers (issue 11, docs/PROTOCOL.md §10.12): given several URLs
 * (all naming the same object, or none), the fetch runs one session per
 * server, each over UDP unicast (TCP with transport 'tcp'; no multicast and
 * no fallback chain), every link feeding the one registry, where objects
 * are matched by name, digest and OTI: symbols of every server combine.
 * A SymbolTally counts each server's symbols and the duplicates, a
 * ServerWatch drops a server that stops sending for fallbackAfterMs (its
 * channels no longer owe an FDT) or whose session fails, and the fetch
 * carries on with the others; only the last server's failure is the
 * fetch's.
 *
 * Errors end the fetch: JoinRefusedError (the CLI's exit 3),
 * FetchTimeoutError (4), DigestMismatchError (5), ServerLeftError (7: the
 * server said it is leaving and stopped, server-link.ts, and no other link
 * serves the fetch), ObjectWithdrawnError (1: a newer FDT instance dropped
 * an object being fetched). Temp files are removed on every failure.
 */
import { randomBytes } from 'crypto';
import { EventEmitter } from 'events';
import type { JoinedChannel } from '../protocol/messages';
import { Rng } from '../support/rng';
import type { ClientTransport, ClientTransportKind, ServerEndpoint } from '../transport/client-transport';
import { openUdpClientTransport } from '../transport/udp/client-socket';
import { openTcpClientTransport } from '../transport/tcp/client-stream';
import { PartialBlockBudget } from './block-budget';
import { FetchAbortedError, FetchTimeoutError, InvalidClientOptionError, ServerLeftError } from './errors';
import { ChannelSummary, ClientStats, FetchSummary, newClientStats, ObjectResult, PacketInfo, ProgressInfo } from './events';
import type { KeptPartial } from './sinks/sink';
import { FallbackDecision, fallbackChain, TransportEvent, TransportFallback, TransportReason } from './fallback';
import { groupText } from './fetch-report';
import { FetchRun } from './fetch-run';
import { GroupLink, GroupLinkHost } from './group-link';
import { ObjectStream, ObjectStreamOptions } from './object-stream';
import { ResolvedClientOptions, resolveClientOptions, RqcastClientOptions } from './options';
import { resolveServer } from './resolve';
import { ServerLink, ServerLinkHost, stallAfter } from './server-link';
import { ServerWatch } from './server-watch';
import { ClientSession } from './session';
import { SymbolTally } from './symbol-tally';
import { formatRqcastUrl, joinChannels, parseRqcastUrl, RqcastUrl } from './url';
import type { ServerSummary } from './events';

export type { RqcastClientOptions } from './options';
export type {
  ChannelSummary,
  ClientStats,
  FetchSummary,
  ObjectProgress,
  ObjectResult,
  PacketInfo,
  ProgressInfo,
  ServerSummary,
  TransportEvent,
  TransportReason,
} from './events';

export declare interface RqcastClient {
  on(event: 'joined', listener: (info: { channels: JoinedChannel[]; expiresAtMs: number }) => void): this;
  on(event: 'progress', listener: (p: ProgressInfo) => void): this;
  on(event: 'object', listener: (o: ObjectResult) => void): this;
  on(event: 'done', listener: (s: FetchSummary) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'warning', listener: (message: string) => void): this;
  on(event: 'packet', listener: (p: PacketInfo) => void): this;
  on(event: 'transport', listener: (t: TransportEvent) => void): this;
  /** Live playout gave up on a segment (it is skipped, never written). */
  on(event: 'gap', listener: (g: { seq: number; reason: string; object: string }) => void): this;
  /** The fetch failed with `resume` on: what was kept for the next fetch (before 'error'). */
  on(event: 'partial', listener: (kept: KeptPartial[]) => void): this;
}

/** A joined channel of a link, and what the fetch knows of how it is received. */
interface JoinedEntry {
  link: ServerLink;
  channel: JoinedChannel;
  transport?: ClientTransportKind;
  group?: GroupLink;
}

/**
 * The native socket hands over what arrived in up to 8 ms: at 200 Mbit/s
 * about 150 packets per wake-up instead of one (each a context switch of
 * the receiving thread and of the event loop). Measured on a 256 MiB
 * fetch at 200 Mbit/s: client CPU 11.8 s with no window, 6.0 s at 1 ms,
 * 4.6 s at 3 ms; with the in-place data path, 3.9-4.4 s at 3 ms, 3.2-3.6 s
 * at 8 ms, 3.1-3.4 s at 15 ms. A control reply waits at most 8 ms more;
 * the socket buffer holds far more than 8 ms of stream.
 */
const RECV_GATHER_MICROS = 8000;

export class RqcastClient extends EventEmitter {
  /** The first server's URL. */
  readonly url: RqcastUrl;
  /** Every server's URL (one, unless the fetch combines several). */
  readonly urls: readonly RqcastUrl[];
  readonly stats: ClientStats = newClientStats();
  /** Partial blocks of every object, within memoryBytes. */
  readonly budget: PartialBlockBudget;
  private readonly opts: ResolvedClientOptions;
  private readonly random: () => number;
  private run: FetchRun;
  /** One per session (one server over one transport): the first, and one per move to TCP. */
  private readonly links: ServerLink[] = [];
  private readonly linkHost: ServerLinkHost;
  /** The host of the TCP links the 'auto' chain opens: their failure is a warning, not the fetch's end. */
  private readonly tcpFallbackHost: ServerLinkHost;
  /** Links whose transport is TCP. */
  private readonly tcpLinks = new Set<ServerLink>();
  /** Each channel's unicast packet count when the fallback last heard of it. */
  private readonly unicastSeen = new Map<string, number>();
  private readonly groupHost: GroupLinkHost;
  /** Joined channels by name, in JOINED order (one link today: names are unique). */
  private readonly joinedChannels = new Map<string, JoinedEntry>();
  private readonly fallback: TransportFallback;
  private fallbackTimer?: NodeJS.Timeout;
  private fallbackDue = 0;
  private tickTimer?: NodeJS.Timeout;
  private lastActivity = 0;
  private running?: Promise<FetchSummary>;
  /** Several servers: each one's symbols and duplicates, and which still send. */
  private readonly tally?: SymbolTally;
  private readonly watch?: ServerWatch;
  /** Several servers: each link's URL, the channels it joined, and whether it ever joined. */
  private readonly serverOf = new Map<ServerLink, { url: RqcastUrl; everJoined: boolean; channels: JoinedChannel[] }>();

  /** `url`: one server, or several (an array) that serve the same objects. */
  constructor(url: string | RqcastUrl | readonly (string | RqcastUrl)[], options: RqcastClientOptions = {}) {
    super();
    const list = Array.isArray(url) ? (url as readonly (string | RqcastUrl)[]) : [url as string | RqcastUrl];
    if (list.length === 0) throw new InvalidClientOptionError('give at least one server URL');
    this.urls = list.map((u) => (typeof u === 'string' ? parseRqcastUrl(u) : u));
    this.url = this.urls[0];
    if (this.urls.length > 1) checkSeveralServers(this.urls, options);
    this.opts = resolveClientOptions(this.url, options, process.cwd());
    if (this.urls.length > 1) {
      this.tally = new SymbolTally();
      this.watch = new ServerWatch(this.opts.fallbackAfterMs);
    }
    this.budget = new PartialBlockBudget(this.opts.memoryBytes);
    this.fallback = new TransportFallback({ chain: fallbackChain(this.opts.transport), fallbackAfterMs: this.opts.fallbackAfterMs });
    const rng = new Rng(this.opts.lossSeed ?? randomBytes(4).readUInt32BE(0));
    this.random = () => rng.unit();
    this.run = this.newRun(this.url.name);
    this.linkHost = this.makeLinkHost((e) => this.run.fail(e));
    this.tcpFallbackHost = this.makeLinkHost((e) => this.onTcpFailed(e));
    this.groupHost = {
      groupPackets: (g, _count, now) => this.fallback.received(g.channel, 'multicast', now),
      groupFailed: (g, e) => this.onGroupFailed(g, e),
    };
  }

  /** Runs the fetch once; later calls return the same promise. */
  fetch(): Promise<FetchSummary> {
    if (!this.running) {
      this.running = this.run.outcome();
      this.start().catch((e: unknown) => this.run.fail(e));
    }
    return this.running;
  }

  /**
   * The object `name` as a Readable of its bytes in order (object-stream.ts):
   * a file block by block as decoded, then verified (DigestMismatchError
   * errors the stream after the last byte); a live stream's segments in
   * order, gaps as 'gap' events. Starts the fetch; call it instead of
   * fetch() (fetch() then returns the same run's summary). The URL names
   * `name` or no object; the client has no output file or playout stream.
   */
  stream(name: string, options: ObjectStreamOptions = {}): ObjectStream {
    if (this.running) throw new InvalidClientOptionError('stream() starts the fetch: call it before fetch(), once');
    if (this.url.name !== undefined && this.url.name !== name) {
      throw new InvalidClientOptionError(`the URL names "${this.url.name}", not "${name}": stream the object the URL names, or give a URL without one`);
    }
    if (name === '') throw new InvalidClientOptionError('stream() needs the name of an object or live stream');
    if (this.opts.playout !== undefined || this.opts.outputFile !== undefined) {
      throw new InvalidClientOptionError('a client that streams has no output file or playout stream: leave them out of its options');
    }
    if (this.opts.resume !== undefined) throw new InvalidClientOptionError('resume is for files: a stream cannot be resumed (what it handed out is gone); leave resume out');
    const s = new ObjectStream(this.budget, options, () => this.close());
    this.run = this.newRun(name, s);
    this.fetch().then(
      () => s.finish(),
      (e: unknown) => s.fail(e instanceof Error ? e : new Error(String(e))),
    );
    return s;
  }

  /** Live playout's counts (start segment, segments written, gaps), with a playout stream. */
  get playoutStats(): import('./live-playout').LivePlayoutStats | undefined {
    return this.run.playout?.stats;
  }

  /** Aborts a running fetch (FetchAbortedError); temp files are removed (kept with `resume`: 'partial'). */
  close(): void {
    this.run.fail(new FetchAbortedError());
  }

  /** The fetch has finished or failed. */
  private get ended(): boolean {
    return this.run.ended;
  }

  // ------------------------------------------------------------ set-up --

  /** The run of a fetch of `name`: to files, to the playout stream, or to `target` (stream()). */
  private newRun(name: string | undefined, target?: ObjectStream): FetchRun {
    return new FetchRun(
      this,
      {
        name,
        outputDir: this.opts.outputDir,
        outputFile: this.opts.outputFile,
        ...(target
          ? { target, fromStart: target.options.fromStart, latencyMs: target.options.latencyMs }
          : { playout: this.opts.playout, fromStart: this.opts.fromStart, latencyMs: this.opts.latencyMs }),
        maxUnknownPackets: this.opts.maxUnknownPackets,
        budget: this.budget,
        stats: this.stats,
        resume: this.opts.resume,
        ...(this.tally ? { tally: this.tally } : {}),
        ...(this.opts.tap ? { tap: this.opts.tap } : {}),
      },
      {
        decodingMoved: () => {
          this.finishChannels();
          this.leaveIfAllDecoded();
        },
        socketDrops: () => this.socketDrops(),
        channels: () => this.channelSummaries(),
        shutdown: () => this.shutdown(),
        ...(this.watch ? { servers: () => this.serverSummaries() } : {}),
      },
    );
  }

  /** What a link needs of the fetch; `failed` is what its failure does. */
  private makeLinkHost(failed: (e: Error) => void): ServerLinkHost {
    const client = this;
    return {
      get ended() {
        return client.ended;
      },
      activity: (now) => {
        this.lastActivity = now;
      },
      joined: (link, info) => {
        this.run.report.joinedAt ??= Date.now();
        this.emit('joined', info);
        if (this.watch) this.serverJoined(link, info.channels);
        else if (this.tcpLinks.has(link)) this.adoptTcpChannels(link, info.channels);
        else this.receiveChannels(link, info.channels);
      },
      failed,
      warning: (m) => this.emit('warning', m),
      watchingPackets: () => this.listenerCount('packet') > 0,
      packet: (info) => this.emit('packet', info),
      delivered: (link, now) => this.onDelivered(link, now),
      serverLeft: (link, e) => this.onServerLeft(link, e),
    };
  }

  /**
   * A link's server said it is leaving and stopped sending (§6.7): the
   * fetch goes on while another link still serves it (a warning), and
   * fails with ServerLeftError (exit 7) otherwise.
   */
  private onServerLeft(link: ServerLink, e: ServerLeftError): void {
    if (this.ended) return;
    // Several servers: dropped like a failed one (its channels no longer owe an FDT), the last one's notice is the fetch's.
    if (this.watch) return this.onServerFailed(link, e, 'left');
    const others = this.links.filter((l) => l !== link && !l.gone && !l.session.left);
    if (others.length === 0) {
      this.run.fail(e);
      return;
    }
    this.emit('warning', e.message.replace(/;.*$/, '') + '; going on with the other servers');
    void link.shutdown();
  }

  private async start(): Promise<void> {
    this.run.report.startedAt = Date.now();
    this.lastActivity = this.run.report.startedAt;
    if (this.opts.untilMs !== undefined && this.opts.untilMs <= Date.now()) {
      throw new InvalidClientOptionError('the --until time has already passed');
    }
    const o = this.opts;
    if (this.watch) return this.startServers();
    const tcp = o.transport === 'tcp';
    const server = tcp ? await this.tcpEndpoint() : await resolveServer(this.url.host, this.url.port);
    if (this.ended) return;
    const channels = joinChannels(this.url);
    // Every channel's bit, unless unicast is forced (§4.5): the server
    // ignores it for a channel without a group.
    const link = this.newLink(server, channels, o.transport === 'udp' || tcp ? [] : channels, this.linkHost, tcp);
    const transport = await this.openTransport(server, link);
    if (this.ended) {
      await transport.close();
      return;
    }
    this.links.push(link);
    this.tickTimer = setInterval(() => this.tick(), Math.min(250, this.opts.progressIntervalMs));
    link.start(transport);
    if (o.transport === 'auto') {
      // The UDP session is watched from its HELLO: a network that drops UDP
      // gives no JOINED, and its channels move to TCP like silent ones.
      const now = Date.now();
      for (const c of channels) this.fallback.start(c, 'udp', now);
      this.armFallback();
    }
  }

  /**
   * Several servers: one session per server, each over UDP unicast (or TCP
   * with transport 'tcp'). A server whose name does not resolve is dropped
   * with a warning, unless none does.
   */
  private async startServers(): Promise<void> {
    const tcp = this.opts.transport === 'tcp';
    const watch = this.watch as ServerWatch;
    const resolved = await Promise.allSettled(this.urls.map((u) => resolveServer(u.host, u.port)));
    if (this.ended) return;
    const failures = resolved.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length === resolved.length) throw failures[0].reason;
    this.tickTimer = setInterval(() => this.tick(), Math.min(250, this.opts.progressIntervalMs));
    for (let i = 0; i < this.urls.length; i++) {
      const r = resolved[i];
      const url = this.urls[i];
      if (r.status === 'rejected') {
        this.emit('warning', `${formatRqcastUrl(url)}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}; carrying on with the other servers`);
        continue;
      }
      const holder: { link?: ServerLink } = {};
      const link = this.newLink(r.value, joinChannels(url), [], this.makeLinkHost((e) => this.onServerFailed(holder.link as ServerLink, e)), tcp);
      holder.link = link;
      this.links.push(link);
      this.serverOf.set(link, { url, everJoined: false, channels: [] });
      watch.add(link.id);
    }
    await Promise.all(
      this.links.map(async (link) => {
        let transport: ClientTransport;
        try {
          transport = await this.openTransport(link.server, link);
        } catch (e) {
          this.onServerFailed(link, e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (this.ended || watch.dropped(link.id)) {
          await transport.close();
          return;
        }
        link.start(transport);
      }),
    );
  }

  /** Several servers: `link`'s session joined `channels`; its silence is watched from now on. */
  private serverJoined(link: ServerLink, channels: JoinedChannel[]): void {
    const s = this.serverOf.get(link);
    if (!s || s.everJoined) return;
    s.everJoined = true;
    s.channels = channels;
    this.watch?.joined(link.id, Date.now());
  }

  /** Several servers: `link`'s session failed. Dropped, and the fetch goes on, unless it was the last server left. */
  private onServerFailed(link: ServerLink, e: Error, reason: 'failed' | 'left' = 'failed'): void {
    if (this.ended) return;
    if (!this.watch?.failed(link.id, reason)) {
      this.run.fail(e);
      return;
    }
    // A server that left: its notice without the advice to run the fetch again, which goes on.
    this.dropServer(link, reason === 'left' ? e.message.replace(/;.*$/, '') : e.message);
  }

  /** Several servers: stop using `link` (LEAVE if joined, close); its channels no longer owe an FDT. */
  private dropServer(link: ServerLink, why: string): void {
    const s = this.serverOf.get(link);
    const label = s ? formatRqcastUrl(s.url) : `server ${link.id}`;
    this.emit('warning', `${label}: ${why}; carrying on with the other servers`);
    void link.shutdown();
    for (const c of s?.channels ?? []) this.run.registry.supersede(link.id, c.tsi);
    this.run.channelsChanged();
  }

  /** Data packets `link` has taken so far, over its channels. */
  private packetsOf(link: ServerLink): number {
    let n = 0;
    for (const c of this.serverOf.get(link)?.channels ?? []) n += link.dataPath.unicastPackets(c.tsi);
    return n;
  }

  /** Several servers: each one's share, for the summary. */
  private serverSummaries(): ServerSummary[] {
    const tally = this.tally as SymbolTally;
    const watch = this.watch as ServerWatch;
    const out: ServerSummary[] = [];
    for (const link of this.links) {
      const s = this.serverOf.get(link);
      if (!s) continue;
      const t = tally.of(link.id);
      const dropped = watch.dropped(link.id);
      out.push({
        url: formatRqcastUrl(s.url),
        transport: this.tcpLinks.has(link) ? 'tcp' : 'udp',
        joined: s.everJoined,
        ...(dropped ? { dropped } : {}),
        packets: this.packetsOf(link),
        symbols: t.symbols,
        duplicates: t.duplicates,
      });
    }
    return out;
  }

  /** A link (one session) to `server` for `channels`; over TCP, a session that sends no ACKs. */
  private newLink(server: ServerEndpoint, channels: string[], multicast: string[], host: ServerLinkHost, tcp: boolean): ServerLink {
    const o = this.opts;
    // TCP loses nothing it delivered and retransmits with fresh symbols: nothing for ACKs to do.
    const ack = o.ack && !tcp;
    const link = new ServerLink(this.links.length, server, this.run.registry, host, {
      session: new ClientSession({ channels, multicast, ttlMs: o.ttlMs, untilMs: o.untilMs, ack, retryMs: o.retryMs }),
      dataPath: {
        lossRate: o.lossRate,
        random: this.random,
        ack,
        ackEveryPackets: o.ackEveryPackets,
        recordEsis: o.recordEsis,
        stats: this.stats,
        ...(this.tally ? { tally: this.tally } : {}),
        ...(this.opts.tap ? { tap: this.opts.tap } : {}),
      },
      ackIntervalMs: o.ackIntervalMs,
      // A TCP connection says itself when the server is gone.
      ...(tcp ? {} : { stallMs: stallAfter(o.ttlMs) }),
    });
    if (tcp) this.tcpLinks.add(link);
    return link;
  }

  /** Where the server's TCP transport is: --tcp HOST:PORT, else the URL's host and port. */
  private tcpEndpoint(): Promise<ServerEndpoint> {
    const t = this.opts.tcp;
    return t ? resolveServer(t.host, t.port) : resolveServer(this.url.host, this.url.port);
  }

  /** The transport a link's session runs over: TCP for a TCP link, else UDP unicast. */
  private openTransport(server: ServerEndpoint, link: ServerLink): Promise<ClientTransport> {
    if (this.tcpLinks.has(link)) return openTcpClientTransport(server, link);
    return openUdpClientTransport(server, link, {
      receiveBufferBytes: this.opts.recvBufferBytes,
      batch: this.opts.recvBatch,
      gatherMicros: RECV_GATHER_MICROS,
      useDgram: this.opts.useDgram,
    });
  }

  // ---------------------------------------------------------- transports --

  /**
   * The channels of a link's first JOINED: each with a group is received
   * from it (unless unicast is forced), the others by the session's own
   * transport.
   */
  private receiveChannels(link: ServerLink, channels: JoinedChannel[]): void {
    for (const channel of channels) {
      // Already moved on to TCP (a UDP session that joined late): its session there is the one watched.
      if (this.fallback.transport(channel.name) === 'tcp') {
        this.run.registry.supersede(link.id, channel.tsi);
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
    const group = new GroupLink(
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
        if (this.ended) return;
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
    if (this.ended) return;
    const entry = this.joinedChannels.get(group.channel);
    if (!entry) return;
    if (this.opts.transport === 'multicast') {
      this.run.fail(e);
      return;
    }
    const now = Date.now();
    // A group that failed before it was ever joined: its step starts now (in 'auto' the channel was watched on UDP since HELLO).
    if (entry.transport === undefined) this.fallback.start(group.channel, 'multicast', now);
    const d = this.fallback.failed(group.channel, 'multicast', now);
    this.emit('warning', `channel "${group.channel}": ${e.message}`);
    if (d) this.applyFallbacks([d]);
  }

  /** Wakes up at the fallback's next deadline (it only moves later as packets arrive: checked when it fires). */
  private armFallback(): void {
    const due = this.fallback.nextDeadline();
    if (this.ended || due === undefined) return;
    if (this.fallbackTimer && this.fallbackDue <= due) return;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackDue = due;
    this.fallbackTimer = setTimeout(() => {
      this.fallbackTimer = undefined;
      if (this.ended) return;
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
    if (this.ended) return;
    const toTcp: string[] = [];
    for (const d of ds) {
      const entry = this.joinedChannels.get(d.channel);
      if (d.transport === 'tcp') {
        toTcp.push(d.channel);
        if (entry) this.setTransport(entry, 'tcp', d.reason);
        else this.emit('transport', { channel: d.channel, transport: 'tcp', reason: d.reason } satisfies TransportEvent);
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
    const server = await this.tcpEndpoint();
    if (this.ended) return;
    const link = this.newLink(server, channels, [], this.tcpFallbackHost, true);
    // Listed at once: its id is taken, and shutdown() ends it whatever happens next.
    this.links.push(link);
    const transport = await this.openTransport(server, link);
    if (this.ended) {
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
  private onTcpFailed(e: Error, channels: string[] = []): void {
    if (this.ended) return;
    if (this.opts.transport === 'tcp') {
      this.run.fail(e);
      return;
    }
    this.emit('warning', `TCP: ${e.message}`);
    for (const name of channels) {
      const entry = this.joinedChannels.get(name);
      if (entry && !this.tcpLinks.has(entry.link)) this.setTransport(entry, 'udp', 'tcp-failed');
    }
  }

  /** A TCP session joined: its channels are received by it from now on (what other links brought stays). */
  private adoptTcpChannels(link: ServerLink, channels: JoinedChannel[]): void {
    for (const channel of channels) {
      const entry = this.joinedChannels.get(channel.name);
      if (entry) {
        if (entry.link !== link) this.run.registry.supersede(entry.link.id, entry.channel.tsi);
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
    for (const l of this.links) {
      if (this.tcpLinks.has(l) || entries.some((e) => e.link === l)) continue;
      if (l.joined) l.leave();
      else void l.shutdown();
    }
  }

  /** A delivery of `link` was read: a channel it carries by UDP that got packets keeps its UDP watch alive. */
  private onDelivered(link: ServerLink, now: number): void {
    if (this.watch) {
      this.watch.heard(link.id, this.packetsOf(link), now);
      return;
    }
    if (this.tcpLinks.has(link)) return;
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
    this.emit('transport', event);
  }

  /** Channels whose wanted objects are all decoded: the fallback stops watching them (a group that ends with the transfer is not silent). */
  private finishChannels(): void {
    for (const e of this.joinedChannels.values()) {
      const ch = this.run.registry.channel(e.link.id, e.channel.tsi);
      if (!ch || !ch.fdtSeen) continue;
      let decoded = true;
      for (const obj of ch.tois.values()) if (!obj.receiver.complete) decoded = false;
      if (decoded) this.fallback.finished(e.channel.name);
    }
  }

  // ------------------------------------------------------------ objects --

  /**
   * LEAVE as soon as every wanted object has decoded, before the last
   * blocks are written and verified: the server stops sending at once, and
   * this process stops spending CPU on packets it no longer needs.
   */
  private leaveIfAllDecoded(): void {
    if (this.ended || !this.run.allDecoded()) return;
    this.watch?.finish();
    for (const link of this.links) link.leave();
    for (const e of this.joinedChannels.values()) e.group?.leave();
  }

  // ------------------------------------------------------------ periodic --

  private tick(): void {
    const now = Date.now();
    if (now - this.lastActivity > this.opts.timeoutMs) {
      this.run.fail(new FetchTimeoutError(`${this.waitingFor()} for ${Math.round(this.opts.timeoutMs / 1000)} s`));
      return;
    }
    if (this.watch) {
      for (const id of this.watch.tick(now)) {
        const link = this.links.find((l) => l.id === id);
        if (link) this.dropServer(link, `nothing arrived for ${Math.round(this.opts.fallbackAfterMs)} ms`);
      }
    }
    const report = this.run.report;
    if (this.links.some((l) => l.joined) && report.progressDue(now, this.opts.progressIntervalMs)) this.emit('progress', report.progress(now, true));
  }

  /** What the fetch has been waiting for, for the timeout's message. */
  private waitingFor(): string {
    if (this.links.length === 0 || this.links.some((l) => l.joined)) return 'no data';
    return this.links.some((l) => l.session.phase === 'join') ? 'no answer to JOIN' : 'no answer to HELLO';
  }

  /**
   * Each joined channel and the names of the wanted objects its FDTs listed
   * (what a relay serves again under the same channel names). Read after
   * the fetch, or during it.
   */
  channelContents(): { name: string; objects: string[] }[] {
    // From the registry: a channel may have been received by several sessions (a transport fallback), each its own entry.
    const out = new Map<string, Set<string>>();
    for (const ch of this.run.registry.allChannels()) {
      const names = out.get(ch.name) ?? new Set<string>();
      out.set(ch.name, names);
      for (const obj of ch.tois.values()) names.add(obj.name);
    }
    return [...out].map(([name, objects]) => ({ name, objects: [...objects] }));
  }

  /**
   * The joined channels whose last FDT instance said Complete="false": more
   * Files may come (a live stream, docs/PROTOCOL.md §10.14).
   */
  openChannels(): string[] {
    const out = new Set<string>();
    for (const ch of this.run.registry.allChannels()) if (ch.fdtOpen) out.add(ch.name);
    return [...out];
  }

  /** The symbol size T of object `name` as its FDT gave it (undefined if no FDT listed it). */
  symbolSizeOf(name: string): number | undefined {
    for (const obj of this.run.registry.objects) if (obj.name === name) return obj.oti.symbolSize;
    return undefined;
  }

  /** Progress now (also what 'progress' events carry). */
  progress(now = Date.now()): ProgressInfo {
    return this.run.report.progress(now);
  }

  // ------------------------------------------------------------- ending --

  /** Every joined channel and the transport it is on. */
  private channelSummaries(): ChannelSummary[] {
    if (this.watch) {
      const out: ChannelSummary[] = [];
      for (const link of this.links) {
        const s = this.serverOf.get(link);
        for (const c of s?.channels ?? []) out.push({ name: c.name, tsi: c.tsi, transport: this.tcpLinks.has(link) ? 'tcp' : 'udp', server: formatRqcastUrl(s!.url) });
      }
      return out;
    }
    return [...this.joinedChannels.values()].map((e) => ({
      name: e.channel.name,
      tsi: e.channel.tsi,
      // A group still being joined when the fetch ended: nothing came by it.
      transport: e.transport ?? 'udp',
      ...(e.channel.multicast ? { group: groupText(e.channel.multicast.group, e.channel.multicast.port) } : {}),
    }));
  }

  /** Receive-buffer overflows of every link's transport and every group's socket. */
  private socketDrops(): number {
    let n = this.links.reduce((sum, l) => sum + l.socketDrops(), 0);
    for (const e of this.joinedChannels.values()) n += e.group?.socketDrops() ?? 0;
    return n;
  }

  /** Sends LEAVE (where joined) and closes every transport; resolves once closed. */
  private async shutdown(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = undefined;
    await Promise.all([
      ...this.links.map((l) => l.shutdown()),
      ...[...this.joinedChannels.values()].map((e) => e.group?.close()),
    ]);
  }
}

/**
 * The rules of a fetch from several servers: every URL names the same
 * object (or none), and the options that speak of one server's transports
 * are refused (InvalidClientOptionError says what to do instead).
 */
function checkSeveralServers(urls: readonly RqcastUrl[], options: RqcastClientOptions): void {
  const name = urls[0].name;
  if (urls.some((u) => u.name !== name)) {
    throw new InvalidClientOptionError('every URL of a fetch from several servers must name the same object (or none): objects are matched by name');
  }
  if (options.transport === 'multicast') {
    throw new InvalidClientOptionError('a fetch from several servers receives each by unicast: use --transport udp or tcp (or auto, which means udp here)');
  }
  if (options.tcp !== undefined) {
    throw new InvalidClientOptionError("--tcp names one server's TCP transport: with several servers, each URL's host and port is used");
  }
}

/** Fetches `url` (or several servers' URLs, combined) with `options`; resolves with the summary. */
export function fetchRqcast(url: string | RqcastUrl | readonly (string | RqcastUrl)[], options: RqcastClientOptions = {}): Promise<FetchSummary> {
  return new RqcastClient(url, options).fetch();
}
