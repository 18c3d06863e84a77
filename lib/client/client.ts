/**
 * RqcastClient: fetches objects from an rqcast server (docs/PROTOCOL.md
 * §10.7). The wiring, the events and the accounting; each job is its own
 * file:
 *
 *   resolve.ts          the URL's host -> the server's address
 *   server-link.ts      one server over one transport (UDP unicast today,
 *                       lib/transport/udp/client-socket.ts): the transport,
 *                       the timers, and
 *     session.ts        the I/O-free session machine (HELLO, COOKIE, JOIN,
 *                       renewal, cookie refresh, LEAVE; time passed in)
 *     data-path.ts      datagrams in: source check, pre-JOIN buffer, loss
 *                       hook, ACK recording, the in-place fast path
 *   object-registry.ts  channels by (session, TSI); objects by name, digest
 *                       and OTI, their symbols combined from every channel;
 *                       the FDTs; packets of TOIs no FDT has listed yet
 *   object-receiver.ts  one object's decoding (block-budget.ts bounds memory)
 *   sinks/              where decoded blocks go (file-sink.ts today)
 *
 * The fetch LEAVEs once every wanted object is decoded (the stream is of no
 * more use while the last blocks are written and verified), and ends when
 * every joined channel has delivered an FDT and every wanted object is
 * verified.
 *
 * Errors end the fetch: JoinRefusedError (the CLI's exit 3),
 * FetchTimeoutError (4), DigestMismatchError (5). Temp files are removed
 * on every failure.
 */
import { randomBytes } from 'crypto';
import { EventEmitter } from 'events';
import type { JoinedChannel } from '../protocol/messages';
import { Rng } from '../support/rng';
import type { ClientTransport, ServerEndpoint } from '../transport/client-transport';
import { openUdpClientTransport } from '../transport/udp/client-socket';
import { PartialBlockBudget } from './block-budget';
import { FetchAbortedError, FetchTimeoutError, InvalidClientOptionError, NoSuchObjectError } from './errors';
import type { ClientStats, FetchSummary, ObjectProgress, ObjectResult, PacketInfo, ProgressInfo } from './events';
import { ObjectRegistry, RegisteredObject } from './object-registry';
import { ResolvedClientOptions, resolveClientOptions, RqcastClientOptions } from './options';
import { resolveServer } from './resolve';
import { ServerLink, ServerLinkHost } from './server-link';
import { ClientSession } from './session';
import { FileSinkFactory } from './sinks/file-sink';
import { joinChannels, parseRqcastUrl, RqcastUrl } from './url';

export type { RqcastClientOptions } from './options';
export type { ClientStats, FetchSummary, ObjectProgress, ObjectResult, PacketInfo, ProgressInfo } from './events';

export declare interface RqcastClient {
  on(event: 'joined', listener: (info: { channels: JoinedChannel[]; expiresAtMs: number }) => void): this;
  on(event: 'progress', listener: (p: ProgressInfo) => void): this;
  on(event: 'object', listener: (o: ObjectResult) => void): this;
  on(event: 'done', listener: (s: FetchSummary) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'warning', listener: (message: string) => void): this;
  on(event: 'packet', listener: (p: PacketInfo) => void): this;
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
  readonly url: RqcastUrl;
  readonly stats: ClientStats = {
    packetsReceived: 0,
    bytesReceived: 0,
    replacements: 0,
    simulatedDrops: 0,
    ignored: 0,
    unknownDropped: 0,
    socketDrops: 0,
    acksSent: 0,
    hellosSent: 0,
    joinsSent: 0,
    renewals: 0,
    esiLog: [],
  };
  /** Partial blocks of every object, within memoryBytes. */
  readonly budget: PartialBlockBudget;
  private readonly opts: ResolvedClientOptions;
  private readonly random: () => number;
  private readonly registry: ObjectRegistry;
  /** One per session (one server over one transport); one today. */
  private readonly links: ServerLink[] = [];
  private readonly linkHost: ServerLinkHost;
  /** The fetch has finished or failed. */
  private ended = false;
  private tickTimer?: NodeJS.Timeout;
  private lastActivity = 0;
  private startedAt = 0;
  private joinedAt?: number;
  private readonly results: ObjectResult[] = [];
  private lastProgress = { at: 0, bytes: 0 };
  private settle?: { resolve: (s: FetchSummary) => void; reject: (e: Error) => void };
  private running?: Promise<FetchSummary>;

  constructor(url: string | RqcastUrl, options: RqcastClientOptions = {}) {
    super();
    this.url = typeof url === 'string' ? parseRqcastUrl(url) : url;
    this.opts = resolveClientOptions(this.url, options, process.cwd());
    this.budget = new PartialBlockBudget(this.opts.memoryBytes);
    const rng = new Rng(this.opts.lossSeed ?? randomBytes(4).readUInt32BE(0));
    this.random = () => rng.unit();
    this.registry = new ObjectRegistry({
      name: this.url.name,
      maxUnknownPackets: this.opts.maxUnknownPackets,
      budget: this.budget,
      sinks: new FileSinkFactory({
        outputDir: this.opts.outputDir,
        outputFile: this.opts.outputFile,
        // Early blocks kept for the running digest: within the same budget.
        holdBytes: () => this.budget.limitBytes,
      }),
      stats: this.stats,
      events: {
        warning: (m) => this.emit('warning', m),
        failed: (e) => this.fail(e),
        fdtApplied: () => {
          this.checkFinished();
          this.leaveIfAllDecoded();
        },
        objectDecoded: () => this.leaveIfAllDecoded(),
        objectVerified: (obj) => this.onObjectVerified(obj),
      },
    });
    const client = this;
    this.linkHost = {
      get ended() {
        return client.ended;
      },
      activity: (now) => {
        this.lastActivity = now;
      },
      joined: (_link, info) => {
        this.joinedAt ??= Date.now();
        this.emit('joined', info);
      },
      failed: (e) => this.fail(e),
      warning: (m) => this.emit('warning', m),
      watchingPackets: () => this.listenerCount('packet') > 0,
      packet: (info) => this.emit('packet', info),
    };
  }

  /** Runs the fetch once; later calls return the same promise. */
  fetch(): Promise<FetchSummary> {
    if (!this.running) {
      this.running = new Promise<FetchSummary>((resolve, reject) => {
        this.settle = { resolve, reject };
        this.start().catch((e: unknown) => this.fail(e));
      });
    }
    return this.running;
  }

  /** Aborts a running fetch (FetchAbortedError); temp files are removed. */
  close(): void {
    this.fail(new FetchAbortedError());
  }

  // ------------------------------------------------------------ set-up --

  private async start(): Promise<void> {
    this.startedAt = Date.now();
    this.lastActivity = this.startedAt;
    if (this.opts.untilMs !== undefined && this.opts.untilMs <= Date.now()) {
      throw new InvalidClientOptionError('the --until time has already passed');
    }
    const server = await resolveServer(this.url.host, this.url.port);
    if (this.ended) return;
    const o = this.opts;
    const link = new ServerLink(this.links.length, server, this.registry, this.linkHost, {
      session: new ClientSession({ channels: joinChannels(this.url), ttlMs: o.ttlMs, untilMs: o.untilMs, ack: o.ack, retryMs: o.retryMs }),
      dataPath: {
        lossRate: o.lossRate,
        random: this.random,
        ack: o.ack,
        ackEveryPackets: o.ackEveryPackets,
        recordEsis: o.recordEsis,
        stats: this.stats,
      },
      ackIntervalMs: o.ackIntervalMs,
    });
    const transport = await this.openTransport(server, link);
    if (this.ended) {
      await transport.close();
      return;
    }
    this.links.push(link);
    this.tickTimer = setInterval(() => this.tick(), Math.min(250, this.opts.progressIntervalMs));
    link.start(transport);
  }

  /**
   * The transport a link's session runs over: UDP unicast. Multicast and
   * TCP add their own opener beside this one, and a fallback chain picks
   * among them.
   */
  private openTransport(server: ServerEndpoint, link: ServerLink): Promise<ClientTransport> {
    return openUdpClientTransport(server, link, {
      receiveBufferBytes: this.opts.recvBufferBytes,
      batch: this.opts.recvBatch,
      gatherMicros: RECV_GATHER_MICROS,
      useDgram: this.opts.useDgram,
    });
  }

  // ------------------------------------------------------------ objects --

  private onObjectVerified(obj: RegisteredObject): void {
    const r = obj.receiver;
    const now = Date.now();
    const result: ObjectResult = {
      name: obj.name,
      path: obj.sink.path,
      bytes: obj.oti.transferLength,
      sha256: Buffer.from(obj.sha256).toString('hex'),
      seconds: (now - (this.joinedAt ?? this.startedAt)) / 1000,
      tailSeconds: (now - obj.lastUsefulAt) / 1000,
      symbolsReceived: r.stats.symbolsReceived,
      symbolsUsed: r.stats.symbolsUsed,
      neededSymbols: r.neededSymbols,
    };
    this.results.push(result);
    if (!this.ended) this.emit('object', result);
    this.checkFinished();
  }

  /**
   * LEAVE as soon as every wanted object has decoded, before the last
   * blocks are written and verified: the server stops sending at once, and
   * this process stops spending CPU on packets it no longer needs.
   */
  private leaveIfAllDecoded(): void {
    if (this.ended || !this.registry.fdtsComplete() || this.registry.missingNamed() || !this.registry.allDecoded()) return;
    for (const link of this.links) link.leave();
  }

  private checkFinished(): void {
    if (this.ended || !this.registry.fdtsComplete()) return;
    if (this.registry.missingNamed()) {
      this.fail(new NoSuchObjectError(this.url.name as string));
      return;
    }
    if (this.registry.allVerified()) this.finish();
  }

  // ------------------------------------------------------------ periodic --

  private tick(): void {
    const now = Date.now();
    if (now - this.lastActivity > this.opts.timeoutMs) {
      this.fail(new FetchTimeoutError(`${this.waitingFor()} for ${Math.round(this.opts.timeoutMs / 1000)} s`));
      return;
    }
    if (this.links.some((l) => l.joined) && now - this.lastProgress.at >= this.opts.progressIntervalMs) this.emitProgress(now);
  }

  /** What the fetch has been waiting for, for the timeout's message. */
  private waitingFor(): string {
    if (this.links.length === 0 || this.links.some((l) => l.joined)) return 'no data';
    return this.links.some((l) => l.session.phase === 'join') ? 'no answer to JOIN' : 'no answer to HELLO';
  }

  /** Progress now (also what 'progress' events carry). */
  progress(now = Date.now()): ProgressInfo {
    const objects: ObjectProgress[] = [];
    let held = 0;
    let needed = 0;
    let blocksDecoded = 0;
    let blocks = 0;
    for (const o of this.registry.objects) {
      const h = o.done ? o.receiver.neededSymbols : o.receiver.heldSymbols;
      objects.push({
        name: o.name,
        bytes: o.oti.transferLength,
        heldSymbols: h,
        neededSymbols: o.receiver.neededSymbols,
        blocksDecoded: o.receiver.stats.blocksDone,
        blocks: o.receiver.blocks,
        done: o.done,
      });
      held += h;
      needed += o.receiver.neededSymbols;
      blocksDecoded += o.receiver.stats.blocksDone;
      blocks += o.receiver.blocks;
    }
    const dt = (now - this.lastProgress.at) / 1000;
    const rate = this.lastProgress.at > 0 && dt > 0 ? (this.stats.bytesReceived - this.lastProgress.bytes) / dt : 0;
    const info: ProgressInfo = {
      elapsedMs: now - (this.joinedAt ?? this.startedAt),
      objects,
      heldSymbols: held,
      neededSymbols: needed,
      blocksDecoded,
      blocks,
      packetsReceived: this.stats.packetsReceived,
      bytesReceived: this.stats.bytesReceived,
      rateBytesPerSec: rate,
    };
    if (rate > 0 && needed > 0 && this.stats.packetsReceived > 0) {
      const perPacket = this.stats.bytesReceived / this.stats.packetsReceived;
      info.etaSeconds = ((needed - held) * perPacket) / rate;
    }
    return info;
  }

  private emitProgress(now: number): void {
    const p = this.progress(now);
    this.lastProgress = { at: now, bytes: this.stats.bytesReceived };
    this.emit('progress', p);
  }

  // ------------------------------------------------------------- ending --

  private summary(): FetchSummary {
    let symbolsReceived = 0;
    let symbolsUsed = 0;
    let needed = 0;
    for (const o of this.registry.objects) {
      symbolsReceived += o.receiver.stats.symbolsReceived;
      symbolsUsed += o.receiver.stats.symbolsUsed;
      needed += o.receiver.neededSymbols;
    }
    return {
      objects: [...this.results],
      bytes: this.results.reduce((a, r) => a + r.bytes, 0),
      seconds: (Date.now() - (this.joinedAt ?? this.startedAt)) / 1000,
      packetsReceived: this.stats.packetsReceived,
      bytesReceived: this.stats.bytesReceived,
      symbolsReceived,
      symbolsUsed,
      neededSymbols: needed,
      overhead: needed > 0 ? symbolsReceived / needed - 1 : 0,
      replacements: this.stats.replacements,
      acksSent: this.stats.acksSent,
      simulatedDrops: this.stats.simulatedDrops,
      socketDrops: this.stats.socketDrops,
      budgetDrops: this.budget.stats.symbolsDropped,
      blocksEvicted: this.budget.stats.blocksEvicted,
      peakPartialBlockBytes: this.budget.stats.peakBytes,
      memoryBytes: this.budget.limitBytes,
    };
  }

  /** Sends LEAVE (where joined) and closes every transport; resolves once closed. */
  private async shutdown(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    this.registry.close();
    await Promise.all(this.links.map((l) => l.shutdown()));
  }

  private finish(): void {
    if (this.ended) return;
    // The kernel's count of receive-buffer overflows, while the sockets are open.
    this.stats.socketDrops = this.links.reduce((n, l) => n + l.socketDrops(), 0);
    const summary = this.summary();
    this.ended = true;
    void this.shutdown().then(() => {
      this.emit('done', summary);
      this.settle?.resolve(summary);
    });
  }

  private fail(e: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const err = e instanceof Error ? e : new Error(String(e));
    const cleanup = async (): Promise<void> => {
      await this.registry.abort(err);
      await this.shutdown();
    };
    void cleanup().then(() => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.settle?.reject(err);
    });
  }
}

/** Fetches `url` with `options`; resolves with the summary. */
export function fetchRqcast(url: string | RqcastUrl, options: RqcastClientOptions = {}): Promise<FetchSummary> {
  return new RqcastClient(url, options).fetch();
}
