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
 * keeping the membership and every symbol it brought (transport-chain.ts
 * carries out the moves fallback.ts decides). 'transport' events say which
 * transport each channel is on, and why.
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
 * Several servers (issue 11, docs/PROTOCOL.md §10.12): given several URLs,
 * one session per server, all feeding the one registry, where symbols of
 * every server combine (several-servers.ts: the sessions, the symbol tally,
 * the watch that drops a silent or failed server).
 *
 * Errors end the fetch: JoinRefusedError (the CLI's exit 3),
 * FetchTimeoutError (4), DigestMismatchError (5), ServerLeftError (7: the
 * server said it is leaving and stopped, server-link.ts, and no other link
 * serves the fetch), ObjectWithdrawnError (1: a newer FDT instance dropped
 * an object being fetched). Temp files are removed on every failure.
 */
import { performance } from 'perf_hooks';
import { EventEmitter } from 'events';
import type { JoinedChannel } from '../protocol/messages';
import { kernelRandomBytes } from '../support/kernel-random';
import { Rng } from '../support/rng';
import type { ClientTransport, ServerEndpoint } from '../transport/client-transport';
import { openUdpClientTransport } from '../transport/udp/client-socket';
import type * as TcpClientStream from '../transport/tcp/client-stream';
import { PartialBlockBudget } from './block-budget';
import { FetchAbortedError, FetchTimeoutError, InvalidClientOptionError, ServerLeftError } from './errors';
import { ChannelSummary, ClientStats, FetchSummary, newClientStats, ObjectResult, PacketInfo, ProgressInfo } from './events';
import type { KeptPartial } from './sinks/sink';
import type { TransportEvent } from './fallback';
import { FetchRun } from './fetch-run';
import type { ObjectStream, ObjectStreamOptions } from './object-stream';
import { checkStreamRequest } from './stream-request';
import { ResolvedClientOptions, resolveClientOptions, RqcastClientOptions } from './options';
import { resolveServer } from './resolve';
import { ServerLink, ServerLinkHost, stallAfter } from './server-link';
import { ClientSession } from './session';
import type { FetchLinks } from './fetch-links';
import { checkSeveralServers, SeveralServers } from './several-servers';
import { RECV_GATHER_MICROS, TransportChain } from './transport-chain';
import { joinChannels, parseRqcastUrl, RqcastUrl } from './url';
import { durationText } from '../support/duration-text';

/** Over TCP, NEED's packet count and timer are this many times the UDP ones (newLink). */
const TCP_NEED_SPACING = 8;

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
  /** One per session (one server over one transport): the first, and one per move to TCP (or one per server). */
  private readonly links: ServerLink[] = [];
  private readonly linkHost: ServerLinkHost;
  /** The host of the TCP links the 'auto' chain opens: their failure is a warning, not the fetch's end. */
  private readonly tcpFallbackHost: ServerLinkHost;
  /** Links whose transport is TCP. */
  private readonly tcpLinks = new Set<ServerLink>();
  /** One server: which transport each joined channel is on, and the moves along the chain (transport-chain.ts). */
  private readonly chain: TransportChain;
  private tickTimer?: NodeJS.Timeout;
  private lastActivity = 0;
  private running?: Promise<FetchSummary>;
  /** Several servers: their sessions, each one's symbols and duplicates, and which still send. */
  private readonly servers?: SeveralServers;

  /** `url`: one server, or several (an array) that serve the same objects. */
  constructor(url: string | RqcastUrl | readonly (string | RqcastUrl)[], options: RqcastClientOptions = {}) {
    super();
    const list = Array.isArray(url) ? (url as readonly (string | RqcastUrl)[]) : [url as string | RqcastUrl];
    if (list.length === 0) throw new InvalidClientOptionError('give at least one server URL');
    this.urls = list.map((u) => (typeof u === 'string' ? parseRqcastUrl(u) : u));
    this.url = this.urls[0];
    if (this.urls.length > 1) checkSeveralServers(this.urls, options);
    this.opts = resolveClientOptions(this.url, options, process.cwd());
    if (this.urls.length > 1) this.servers = this.severalServers();
    this.budget = new PartialBlockBudget(this.opts.memoryBytes);
    const rng = new Rng(this.opts.lossSeed ?? kernelRandomBytes(4).readUInt32BE(0));
    this.random = () => rng.unit();
    this.run = this.newRun(this.url.name);
    this.linkHost = this.makeLinkHost((e) => this.run.fail(e));
    this.tcpFallbackHost = this.makeLinkHost((e) => this.chain.onTcpFailed(e));
    this.chain = this.transportChain();
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
    checkStreamRequest(name, this.url, this.opts, this.running !== undefined);
    // Loaded here, not at the top: a fetch does not need it (its start-up, fetch --json startupMs).
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { ObjectStream: Stream } = require('./object-stream') as typeof import('./object-stream');
    const s = new Stream(this.budget, options, () => this.close());
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
        ...(this.servers ? { tally: this.servers.tally } : {}),
        ...(this.opts.tap ? { tap: this.opts.tap } : {}),
      },
      {
        decodingMoved: () => {
          this.chain.finishChannels();
          this.leaveIfAllDecoded();
        },
        socketDrops: () => this.socketDrops(),
        channels: () => this.channelSummaries(),
        shutdown: () => this.shutdown(),
        ...(this.servers ? { servers: () => (this.servers as SeveralServers).summaries() } : {}),
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
        if (this.servers) this.servers.joined(link, info.channels);
        else if (this.tcpLinks.has(link)) this.chain.adoptTcpChannels(link, info.channels);
        else this.chain.receiveChannels(link, info.channels);
      },
      failed,
      warning: (m) => this.emit('warning', m),
      watchingPackets: () => this.listenerCount('packet') > 0,
      packet: (info) => this.emit('packet', info),
      delivered: (link, now) => (this.servers ? this.servers.delivered(link, now) : this.chain.onDelivered(link, now)),
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
    if (this.servers) return this.servers.failed(link, e, 'left');
    const others = this.links.filter((l) => l !== link && !l.gone && !l.session.left);
    if (others.length === 0) {
      this.run.fail(e);
      return;
    }
    this.emit('warning', e.message.replace(/;.*$/, '') + '; going on with the other servers');
    void link.shutdown();
  }

  private async start(): Promise<void> {
    this.stats.fetchStartMs = performance.now();
    this.run.report.startedAt = Date.now();
    this.lastActivity = this.run.report.startedAt;
    if (this.opts.untilMs !== undefined && this.opts.untilMs <= Date.now()) {
      throw new InvalidClientOptionError('the --until time has already passed');
    }
    const o = this.opts;
    if (this.servers) return this.servers.start();
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
    this.startTicking();
    link.start(transport);
    if (o.transport === 'auto') this.chain.watchUdp(channels);
  }

  /** What several-servers.ts and transport-chain.ts share of this client (fetch-links.ts). */
  private fetchLinks(): FetchLinks {
    const client = this;
    return {
      get ended() {
        return client.ended;
      },
      get run() {
        return client.run;
      },
      links: this.links,
      tcpLinks: this.tcpLinks,
      newLink: (server, channels, multicast, host, tcp) => this.newLink(server, channels, multicast, host, tcp),
      openTransport: (server, link) => this.openTransport(server, link),
    };
  }

  /** Several servers: their wiring, with what it needs of this client. */
  private severalServers(): SeveralServers {
    return new SeveralServers(
      this.urls,
      this.opts,
      Object.assign(this.fetchLinks(), {
        makeLinkHost: (failed: (e: Error) => void) => this.makeLinkHost(failed),
        startTicking: () => this.startTicking(),
        warning: (m: string) => this.emit('warning', m),
      }),
    );
  }

  /** The transport chain (one server), with what it needs of this client. */
  private transportChain(): TransportChain {
    return new TransportChain(
      this.opts,
      Object.assign(this.fetchLinks(), {
        tcpFallbackHost: this.tcpFallbackHost,
        tcpEndpoint: () => this.tcpEndpoint(),
        emit: (event: 'transport' | 'warning', arg: TransportEvent | string) => this.emit(event, arg),
      }),
    );
  }

  /** The periodic tick: timeout, progress, silent servers. */
  private startTicking(): void {
    this.tickTimer = setInterval(() => this.tick(), Math.min(250, this.opts.progressIntervalMs));
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
        // NEED over TCP too (docs/PROTOCOL.md §7a.1): without it a block's pass runs its fixed quota,
        // K·(1 + passOverhead), though the connection lost nothing it delivered. Over TCP a report
        // is never lost and the loss it measures is the connection's, so the count and the timer
        // are TCP_NEED_SPACING times apart (a block's end still reports at once).
        ...(o.need && !o.tap ? { needEveryPackets: tcp ? o.needEveryPackets * TCP_NEED_SPACING : o.needEveryPackets } : {}),
        recordEsis: o.recordEsis,
        stats: this.stats,
        ...(this.servers ? { tally: this.servers.tally } : {}),
        ...(this.opts.tap ? { tap: this.opts.tap } : {}),
      },
      ackIntervalMs: o.ackIntervalMs,
      needIntervalMs: tcp ? o.needIntervalMs * TCP_NEED_SPACING : o.needIntervalMs,
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
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    if (this.tcpLinks.has(link)) return (require('../transport/tcp/client-stream') as typeof TcpClientStream).openTcpClientTransport(server, link);
    return openUdpClientTransport(server, link, {
      receiveBufferBytes: this.opts.recvBufferBytes,
      batch: this.opts.recvBatch,
      gatherMicros: RECV_GATHER_MICROS,
      useDgram: this.opts.useDgram,
    });
  }

  // ------------------------------------------------------------ objects --

  /**
   * LEAVE as soon as every wanted object has decoded, before the last
   * blocks are written and verified: the server stops sending at once, and
   * this process stops spending CPU on packets it no longer needs.
   */
  private leaveIfAllDecoded(): void {
    if (this.ended || !this.run.allDecoded()) return;
    this.servers?.finish();
    for (const link of this.links) link.leave();
    this.chain.leaveGroups();
  }

  // ------------------------------------------------------------ periodic --

  private tick(): void {
    const now = Date.now();
    if (now - this.lastActivity > this.opts.timeoutMs) {
      this.run.fail(new FetchTimeoutError(`${this.waitingFor()} for ${durationText(this.opts.timeoutMs)}`));
      return;
    }
    this.servers?.tick(now);
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
    if (this.servers) return this.servers.channelSummaries();
    return this.chain.channelSummaries();
  }

  /** Receive-buffer overflows of every link's transport and every group's socket. */
  private socketDrops(): number {
    return this.links.reduce((sum, l) => sum + l.socketDrops(), 0) + this.chain.groupSocketDrops();
  }

  /** Sends LEAVE (where joined) and closes every transport; resolves once closed. */
  private async shutdown(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    await Promise.all([...this.links.map((l) => l.shutdown()), this.chain.close()]);
  }
}

/** Fetches `url` (or several servers' URLs, combined) with `options`; resolves with the summary. */
export function fetchRqcast(url: string | RqcastUrl | readonly (string | RqcastUrl)[], options: RqcastClientOptions = {}): Promise<FetchSummary> {
  return new RqcastClient(url, options).fetch();
}
