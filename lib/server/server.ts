/**
 * RqcastServer: wiring. The catalogue's objects become one ChannelStream per
 * channel (lib/stream) feeding one replicator channel each; the client
 * manager (lib/session) decides who the members are; a server transport
 * (lib/transport) carries the control messages and hands members to the
 * data path. The rules live in those layers and in config.ts; this file
 * only connects them (docs/PROTOCOL.md §10.6):
 *
 * - Control: every message a transport delivers is decoded with
 *   decodeControl; anything malformed is dropped and counted. The manager's
 *   replies go back through the transport of the peer they name, which
 *   refuses any larger than the anti-amplification budget (checked by
 *   ClientManager, and again there on the encoded bytes).
 * - Data: channel i (1-based, in the order configured) has TSI i and FDT
 *   instance id i. Streams are refilled on the replicator's 'lowWater'
 *   event, up to the ring's capacity; a channel's ring is filled once when
 *   it is created. Membership commands and ACK replacements (fresh symbols
 *   from ChannelStream.freshPackets, without EXT_RQSEQ) go to the transport
 *   of the peer they name.
 * - Multicast: a channel with a group has a second stream, its group
 *   stream (group-streams.ts), on replicator channel 0x80000000 | TSI with
 *   the group as its one sink, created at listen() and refilled like the
 *   unicast one. The client manager is told each channel's group; it
 *   decides who is a unicast member (lib/session).
 * - TCP (when configured, lib/transport/tcp/): a second transport on an
 *   IPv4 address and port (by default the control port's number on the
 *   server's address, so one rqcast://HOST:PORT serves UDP and TCP alike).
 *   Its peers' sessions are the client manager's like any; a member is the
 *   connection added to the channel's sinks natively; a closed connection
 *   ends its session at once (ClientManager.dropPeer).
 * - Withdrawn objects (docs/PROTOCOL.md §10.2): an object whose block
 *   cannot be prepared as announced (its file shrank, or cannot be read)
 *   is withdrawn, once: logged with the reason, and every channel that
 *   carried it gets a new stream without it, with a new FDT instance
 *   (the next unused instance ID) that no longer lists it, its sequence
 *   numbers going on from the old stream's. Clients drop it then.
 * - One interval timer drives every join timer (ClientManager.tick). Cookie
 *   keys rotate with the clock: CookieAuthority derives the key of each
 *   rotation period from the master secret (--secret, shared by relays; a
 *   random one otherwise), so rotation needs no timer of its own.
 */
import { EventEmitter } from 'node:events';
import { decodeControl, encodeControl } from '../protocol/control';
import type { ControlMessage } from '../protocol/messages';
import type { FdtChannel } from '../protocol/fdt';
import { Replicator } from '../transport/replicator';
import type { ReplicatorChannelCounters } from '../transport/replicator-contract';
import {
  type ControlReceived,
  type ListenAddress,
  type ServerTransport,
  type ServerTransportCounters,
  zeroServerTransportCounters,
} from '../transport/server-transport';
import { UdpServerTransport } from '../transport/udp/server-transport';
import { TcpServerTransport, type TcpTransportCounters, zeroTcpTransportCounters } from '../transport/tcp/server-transport';
import type { NativeTcpServerStats } from '../transport/tcp/native-tcp-server';
import { nativeTcpServerFactory } from '../transport/tcp/native-tcp-server';
import { nativeEngineOf } from '../transport/replicator';
import type { ObjectEncoder } from '../fec/encoder';
import type { SymbolAllocator } from '../content/symbol-allocator';
import { IoError, SourceTruncatedError } from '../fec/errors';
import { BlockCache } from '../content/block-cache';
import { type Catalogue, type CatalogueObject, type FdtObject, ObjectChangedError } from '../content/catalogue';
import { type BlockPins, ChannelStream, type ChannelStreamOptions, type StreamCounters, type SymbolSource } from '../stream/channel-stream';
import { type ChannelInfo, type ClientEvent, ClientManager, type ClientManagerCounters, staticChannelDirectory } from '../session/client-manager';
import type { ManagerOutput } from '../session/manager-output';
import type { Peer, PeerTransport } from '../session/peer';
import { CookieAuthority } from '../session/cookie';
import { InvalidServerConfigError } from '../errors';
import type { ServerGroup } from '../content/server-group';
import { sinkConfig } from '../transport/multicast/group-config';
import type { ServedStream } from '../stream/served-stream';
import { groupChannelId, groupStreamOptions, type ServerChannelGroup } from './group-streams';
import { LiveChannel } from './live-channel';
import {
  type ChannelPlan,
  channelStreamOptions,
  DEFAULT_RATE_MBPS,
  type LiveChannelConfig,
  planServer,
  replicatorChannelConfig,
  type ReplicatorLike,
  type RqcastServerOptions,
  type ServerLogger,
  type ServerPlan,
  packetsPerSecond,
  SILENT_LOGGER,
  type TcpServerConfig,
  symbolAllocators,
} from './config';

export {
  DEFAULT_CHANNEL,
  DEFAULT_MEMORY_BYTES,
  DEFAULT_PORT,
  DEFAULT_RATE_MBPS,
  FDT_COMPLETE_MS,
  FDT_PERIOD_MS,
  fdtIntervalFor,
  packetsPerSecond,
  type ChannelConfig,
  type ReplicatorLike,
  type RqcastServerOptions,
  type ServerLogger,
  type TcpServerConfig,
} from './config';
export type { ServerChannelGroup } from './group-streams';

/** FDT Instance IDs are 20 bits (RFC 6726 §3.4.1); a new instance takes the next, modulo this. */
const FDT_INSTANCE_IDS = 2 ** 20;

/** The group streams' StreamCounters that can be other than 0 (they answer no ACK), summed. */
export interface GroupStreamCounters {
  groupStreamPackets: number;
  groupFdtPackets: number;
  groupWindowAdvances: number;
  groupWindowStalls: number;
}

/** The TCP transport's counters and its native server's (0 without TCP), under `tcp`-prefixed names. */
export type TcpServerCounters = { [K in keyof TcpTransportCounters as `tcp${Capitalize<K>}`]: number } & {
  [K in 'freshFrames' | 'staleFrames' | 'retransmittedSegments' | 'poolEvicted' | 'resetsSent' | 'badSegments' | 'refused' | 'segmentsOut' | 'sendErrors' as `tcp${Capitalize<K>}`]: number;
};

/** The other StreamCounters are summed over the channels under their own names. */
export interface ServerCounters extends ClientManagerCounters, Omit<StreamCounters, 'packets'>, GroupStreamCounters, TcpServerCounters {
  /** Control messages received (UDP datagrams), before decoding. */
  datagramsReceived: number;
  bytesReceived: number;
  /** Datagrams decodeControl refused. */
  controlMalformed: number;
  repliesSent: number;
  replyBytesSent: number;
  replySendErrors: number;
  /** StreamCounters.packets, summed over the channels' unicast streams (group streams: groupStreamPackets). */
  streamPackets: number;
  /** Prepared blocks now, their bytes, and the most those bytes have been (BlockCache). */
  preparedBlocks: number;
  preparedBytes: number;
  preparedBytesPeak: number;
  blockPrepares: number;
  blockPrepareErrors: number;
  /** Replicator calls that threw (e.g. an address family the host cannot send to). */
  replicatorErrors: number;
  /** Control datagrams the kernel dropped at the UDP control socket (receive buffer full; Linux). */
  controlReceiveDrops: number;
  /** Objects withdrawn because a block could not be prepared as announced (§10.2). */
  objectsWithdrawn: number;
  /** Objects announced while serving: files that appeared in a served DIR (serve's watch, §10.2). */
  objectsAdded: number;
  /** Objects taken off because their file was removed or emptied (serve's watch). */
  objectsRemoved: number;
  /** Objects announced again under a new TOI because their file changed (serve's watch). */
  objectsReplaced: number;
}

export interface ServerChannel {
  name: string;
  tsi: number;
  objects: readonly CatalogueObject[];
  rateMbps: number;
  /** The unicast stream: what the channel's unicast members receive, and what their ACKs are about. */
  stream: ServedStream;
  fdt: FdtObject;
  /** The channel's multicast group and group stream, if it has one (docs/PROTOCOL.md §10.10). */
  multicast?: ServerChannelGroup;
}

/** Which of a channel's streams: the unicast one, or the one sent to its group. */
export type ChannelStreamKind = 'unicast' | 'group';

export type ServerAddress = ListenAddress;

export declare interface RqcastServer {
  on(event: 'listening', listener: (address: ServerAddress) => void): this;
  on(event: 'joined' | 'renewed', listener: (e: Extract<ClientEvent, { kind: 'joined' | 'renewed' }>) => void): this;
  on(event: 'left' | 'expired', listener: (e: Extract<ClientEvent, { kind: 'left' | 'expired' }>) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

/**
 * Ring slots of a live channel: at 100 Mbit/s with T = 1280, 256 packets
 * are 27 ms of stream, the most a new segment waits behind packets built
 * before it (a file channel's 4096 would be 430 ms).
 */
export const LIVE_RING_CAPACITY = 256;
/**
 * One FDT packet in this many on a live channel: a receiver learns of a new
 * segment only from the FDT instance that lists it, so the FDT is the
 * announcement path and gets one packet in 8.
 */
export const LIVE_FDT_INTERVAL = 8;

export class RqcastServer extends EventEmitter {
  readonly catalogue: Catalogue;
  readonly channels: readonly ServerChannel[];
  readonly noCode: boolean;
  /** This server's place in its group (index 0 of 1 when alone; lib/content/server-group.ts). */
  readonly serverGroup: ServerGroup;
  private readonly manager: ClientManager;
  private readonly clock: () => number;
  private readonly log: ServerLogger;
  private readonly options: RqcastServerOptions;
  private readonly plan: ServerPlan;
  private readonly byTsi = new Map<number, ServerChannel>();
  /** Every stream by its replicator channel id: TSI (unicast) or groupChannelId(TSI). */
  private readonly streams = new Map<number, ServedStream>();
  /** Live channels by TSI. */
  private readonly live = new Map<number, { channel: LiveChannel; rateMbps: number }>();
  private readonly cache: BlockCache;
  private replicator?: ReplicatorLike;
  private ownsReplicator = false;
  /** By the kind of peer each carries: UDP unicast, and TCP when configured. */
  private readonly transports = new Map<PeerTransport, ServerTransport>();
  private timer?: NodeJS.Timeout;
  private bound?: ServerAddress;
  private tcpBound?: ServerAddress;
  private closed = false;
  /** listen() finished: the server said 'listening'. */
  private listening = false;
  private readonly own = { controlMalformed: 0, replicatorErrors: 0, objectsWithdrawn: 0, objectsAdded: 0, objectsRemoved: 0, objectsReplaced: 0 };
  /**
   * What the replicator channels made again (resetRings) had counted, by
   * channel ID: channelStats adds it, so the counts (and the metrics that
   * mirror them) never go back.
   */
  private readonly carried = new Map<number, CarriedChannelCounts>();
  private readonly allocatorOf: (o: CatalogueObject) => SymbolAllocator;
  private readonly pins: BlockPins;
  /** Every encoder a stream may pin: the catalogue's, and those added since (never removed while running). */
  private readonly encoders = new Map<SymbolSource, ObjectEncoder>();
  /** Objects withdrawn (§10.2): no stream sends them any more. */
  private readonly withdrawn = new Set<CatalogueObject>();
  /** The FDT instance ID the next new instance takes (channel i's first is i). */
  private nextInstanceId: number;
  /** The server's channels, as every FDT instance lists them (rq:Channel). */
  private readonly offered: FdtChannel[];
  private readonly onLowWater = (ids: number[]): void => {
    for (const id of ids) this.refill(id);
  };

  constructor(options: RqcastServerOptions) {
    super();
    this.options = options;
    this.catalogue = options.catalogue;
    this.clock = options.clock ?? Date.now;
    this.log = options.logger ?? SILENT_LOGGER;
    this.plan = planServer(options);
    this.noCode = this.plan.noCode;
    this.serverGroup = this.plan.serverGroup;
    this.cache = new BlockCache({
      budgetBytes: this.plan.memoryBytes,
      onError: (err, source, sbn) => this.onPrepareError(err, source, sbn),
      // A file edited in place since it was announced must not be read for the old object (§10.2).
      beforePrepare: async (source) => {
        const obj = this.catalogue.objects.find((o) => o.encoder === source);
        if (obj) await this.catalogue.checkUnchanged(obj);
      },
    });
    const pins = this.blockPins();
    const allocatorOf = symbolAllocators(this.noCode, this.plan.esiLayout, options.repairStart);
    this.pins = pins;
    this.allocatorOf = allocatorOf;
    this.nextInstanceId = this.plan.channels.length + 1;
    const now = this.clock();
    // Every channel's FDT lists all of them (rq:Channel, docs/PROTOCOL.md §9): `rqcast ls`, one-segment URLs.
    // Live channels (after the configured ones) too: unicast, over TCP where the server has it.
    const offered: FdtChannel[] = (this.offered = [
      ...this.plan.channels.map((c) => ({
        name: c.name,
        rateBps: Math.round(c.rateMbps * 1e6),
        transports: ['udp', ...(this.plan.tcp ? (['tcp'] as const) : []), ...(c.multicast ? (['multicast'] as const) : [])] as FdtChannel['transports'],
      })),
      ...(options.live ?? []).map((l) => ({
        name: l.name,
        rateBps: Math.round(this.liveRateMbps(l) * 1e6),
        transports: ['udp', ...(this.plan.tcp ? (['tcp'] as const) : [])] as FdtChannel['transports'],
      })),
    ]);
    const channels: ServerChannel[] = this.plan.channels.map((c) => {
      const fdt = this.catalogue.fdt(c.objects, c.tsi, now, undefined, offered);
      const unicast = channelStreamOptions(options, this.plan, c, fdt, allocatorOf, pins);
      const stream = c.stream ? c.stream({ tsi: c.tsi, channels: offered, refill: () => this.refill(c.tsi) }) : new ChannelStream(unicast);
      const ch: ServerChannel = { name: c.name, tsi: c.tsi, objects: c.objects, rateMbps: c.rateMbps, stream, fdt };
      this.byTsi.set(c.tsi, ch);
      this.streams.set(c.tsi, stream);
      if (c.multicast) {
        const group = new ChannelStream(groupStreamOptions(unicast, c.objects, this.noCode, allocatorOf));
        ch.multicast = { ...c.multicast, channelId: groupChannelId(c.tsi), stream: group };
        this.streams.set(ch.multicast.channelId, group);
      }
      return ch;
    });
    for (const live of options.live ?? []) channels.push(this.addLive(live, channels, offered));
    this.channels = channels;
    this.manager = new ClientManager({
      cookies: new CookieAuthority({
        masterSecret: options.secret,
        rotationPeriodMs: options.cookieRotationMs,
        lifetimeMs: options.cookieLifetimeMs,
      }),
      channels: staticChannelDirectory(this.channels.map(channelInfo)),
      encodedSize: (m: ControlMessage) => encodeControl(m).length,
      maxTtlMs: options.maxTtlMs,
      maxChannelsPerClient: options.maxChannelsPerClient,
      ack: options.ack,
      sentEnd: (tsi) => this.byTsi.get(tsi)?.stream.nextSequence,
      firstSequence: (tsi) => this.firstSequence(tsi),
      packetRate: (tsi) => {
        const ch = this.byTsi.get(tsi);
        return ch && packetsPerSecond(ch.rateMbps, this.catalogue.symbolSize);
      },
      replacements: options.replacements,
      maxSessionsPerAddress: options.maxSessionsPerAddress,
      spentCookies: options.spentCookies,
    });
  }

  /** Prepares the encoders, starts the streams and opens the control transport. */
  async listen(): Promise<ServerAddress> {
    if (this.closed) throw new InvalidServerConfigError('server is closed');
    if (this.bound) return this.bound;
    for (const stream of this.streams.values()) stream.start();
    if (this.plan.prepare) {
      const t0 = Date.now();
      await this.cache.whenPinnedReady();
      this.log.debug({ ms: Date.now() - t0, ...this.cache.stats }, 'first blocks prepared');
    }
    if (this.closed) throw new InvalidServerConfigError('server is closed');
    const rep = this.options.replicator ?? new Replicator();
    this.ownsReplicator = this.options.replicator === undefined;
    this.replicator = rep;
    rep.on('lowWater', this.onLowWater);
    try {
      this.plan.channels.forEach((plan, i) => {
        const ch = this.channels[i];
        rep.createChannel(ch.tsi, replicatorChannelConfig(this.plan, plan, ch.stream.slotSize));
        this.refill(ch.tsi);
        const g = ch.multicast;
        if (g) {
          // The sink first: the channel's first packets go to the group.
          rep.createChannel(g.channelId, replicatorChannelConfig(this.plan, plan, g.stream.slotSize));
          rep.addGroup(g.channelId, sinkConfig(g));
          this.refill(g.channelId);
        }
      });
      for (const [tsi, live] of this.live) {
        const ch = this.byTsi.get(tsi)!;
        // A short ring: a new segment waits behind at most LIVE_RING_CAPACITY packets.
        const cfg = replicatorChannelConfig(this.plan, { rateMbps: live.rateMbps } as ChannelPlan, ch.stream.slotSize);
        const capacity = Math.min(cfg.capacity ?? LIVE_RING_CAPACITY, LIVE_RING_CAPACITY);
        rep.createChannel(tsi, { ...cfg, capacity, lowWater: Math.floor(capacity / 4) });
        this.refill(tsi);
      }
      const udp = new UdpServerTransport({
        host: this.plan.host,
        port: this.plan.port,
        replicator: rep,
        logger: this.log,
        receiveBufferBytes: this.options.controlReceiveBufferBytes,
      });
      this.transports.set(udp.kind, udp);
      this.bound = await udp.open({ control: (m) => this.onControl(m), error: (err) => this.emit('error', err) });
      if (this.options.tcp && this.plan.tcp) this.tcpBound = await this.openTcp(this.options.tcp, this.plan.tcp, this.bound.port, rep);
    } catch (err) {
      await this.close();
      throw err;
    }
    this.timer = setInterval(() => this.apply(this.manager.tick(this.clock())), this.plan.tickIntervalMs);
    this.timer.unref?.();
    this.listening = true;
    this.log.info({ ...this.bound, ...(this.tcpBound ? { tcp: this.tcpBound } : {}), ...(this.serverGroup.servers > 1 ? { serverGroup: this.serverGroup } : {}), channels: this.channels.map(channelLog) }, 'listening');
    this.emit('listening', this.bound);
    return this.bound;
  }

  address(): ServerAddress | undefined {
    return this.bound;
  }

  /** Where the TCP transport accepts connections (undefined without one, or before listen). */
  tcpAddress(): ServerAddress | undefined {
    return this.tcpBound;
  }

  /**
   * Opens the TCP transport on its address and port (the control port's
   * number unless configured): its peers' sessions are the client
   * manager's like any, and a closed connection ends its session at once.
   */
  private async openTcp(config: TcpServerConfig, plan: { address: string; port?: number }, controlPort: number, rep: ReplicatorLike): Promise<ServerAddress> {
    const tcp = new TcpServerTransport({
      address: plan.address,
      port: plan.port ?? controlPort,
      createServer: config.createServer ?? nativeTcpServerFactory(nativeEngineOf(rep)),
      ...(config.hostFilter ? { hostFilter: config.hostFilter } : {}),
      ...(config.limits ? { limits: config.limits } : {}),
      logger: this.log,
    });
    this.transports.set(tcp.kind, tcp);
    return tcp.open({
      control: (m) => this.onControl(m),
      error: (err) => this.emit('error', err),
      peerGone: (peer) => this.apply(this.manager.dropPeer(peer)),
    });
  }

  get sessionCount(): number {
    return this.manager.sessionCount;
  }

  /** SO_RCVBUF of the UDP control socket as the kernel reports it (Linux: twice what it granted); undefined before listen. */
  get controlReceiveBufferBytes(): number | undefined {
    const udp = this.transports.get('udp');
    return udp instanceof UdpServerTransport ? udp.receiveBufferBytes : undefined;
  }

  /** Every counter of the server, the client manager, the transports and the streams. */
  get counters(): ServerCounters {
    const sum = { ...this.channels[0].stream.counters };
    for (const ch of this.channels.slice(1)) {
      for (const k of Object.keys(sum) as (keyof StreamCounters)[]) sum[k] += ch.stream.counters[k];
    }
    const { packets: streamPackets, ...streams } = sum;
    const group: GroupStreamCounters = { groupStreamPackets: 0, groupFdtPackets: 0, groupWindowAdvances: 0, groupWindowStalls: 0 };
    for (const ch of this.channels) {
      const g = ch.multicast?.stream.counters;
      if (!g) continue;
      group.groupStreamPackets += g.packets;
      group.groupFdtPackets += g.fdtPackets;
      group.groupWindowAdvances += g.windowAdvances;
      group.groupWindowStalls += g.windowStalls;
    }
    const t = zeroServerTransportCounters();
    for (const transport of this.transports.values()) {
      for (const k of Object.keys(t) as (keyof ServerTransportCounters)[]) t[k] += transport.counters[k];
    }
    const b = this.cache.stats;
    const manager = this.manager.counters;
    const tcpTransport = this.transports.get('tcp');
    return {
      ...tcpCounters(tcpTransport instanceof TcpServerTransport ? tcpTransport : undefined),
      ...manager,
      // Suppressed by the manager on the predicted size, or by a transport on the encoded bytes.
      amplificationSuppressed: manager.amplificationSuppressed + t.repliesOverBudget,
      datagramsReceived: t.controlReceived,
      bytesReceived: t.controlBytesReceived,
      controlMalformed: this.own.controlMalformed,
      repliesSent: t.repliesSent,
      replyBytesSent: t.replyBytesSent,
      replySendErrors: t.replySendErrors,
      replicatorErrors: this.own.replicatorErrors + t.dataPathErrors,
      controlReceiveDrops: t.controlReceiveDrops,
      ...streams,
      streamPackets,
      ...group,
      preparedBlocks: b.preparedBlocks,
      preparedBytes: b.preparedBytes,
      preparedBytesPeak: b.preparedBytesPeak,
      blockPrepares: b.prepares,
      blockPrepareErrors: b.prepareErrors,
      objectsWithdrawn: this.own.objectsWithdrawn,
      objectsAdded: this.own.objectsAdded,
      objectsRemoved: this.own.objectsRemoved,
      objectsReplaced: this.own.objectsReplaced,
    };
  }

  /**
   * The replicator's statistics of one of a channel's streams: its unicast
   * stream by default, or its group stream (undefined before listen, and for
   * the group stream of a channel without a group).
   */
  channelStats(name: string, stream: ChannelStreamKind = 'unicast'): ReturnType<ReplicatorLike['channelStats']> | undefined {
    const ch = this.channels.find((c) => c.name === name);
    if (!ch || !this.replicator) return undefined;
    const id = stream === 'unicast' ? ch.tsi : ch.multicast?.channelId;
    if (id === undefined) return undefined;
    return withCarried(this.replicator.channelStats(id), this.carried.get(id));
  }

  /**
   * Clean shutdown (docs/PROTOCOL.md §6.7): from now on no HELLO or JOIN
   * starts a session; every joined client is told the server is leaving
   * (ERROR ServerLeaving, logged 'left' per client) and removed from its
   * channels; then close(), which sends the replies before closing the
   * sockets. Idempotent.
   */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    if (!this.manager.leaving) {
      const out = this.manager.leaveAll();
      this.log.info({ sessions: out.replies.length }, 'leaving');
      this.apply(out);
    }
    await this.close();
  }

  /** Stops everything; idempotent. The catalogue stays open (it is the caller's). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const t of this.transports.values()) await t.close();
    const rep = this.replicator;
    if (rep) {
      rep.off('lowWater', this.onLowWater);
      if (this.ownsReplicator) rep.close();
      else {
        for (const ch of this.channels) {
          const g = ch.multicast;
          if (g) {
            this.safely(() => rep.removeGroup(g.channelId));
            this.safely(() => rep.removeChannel(g.channelId));
          }
          this.safely(() => rep.removeChannel(ch.tsi));
        }
      }
    }
    for (const { channel } of this.live.values()) channel.close();
    for (const [id, stream] of this.streams) if (!this.live.has(id)) stream.close();
    for (const ch of this.channels) if (!this.live.has(ch.tsi)) ch.fdt.encoder.close();
    this.cache.close();
    // Only a server that was listening says it closed: one that never started (the port taken) says why, and nothing else.
    if (this.listening) this.log.info({}, 'closed');
  }

  /**
   * A block could not be prepared. A file that shrank or cannot be read
   * any more will not serve the object as announced: withdraw it (once).
   * Anything else (e.g. memory) is logged; the stream asks again.
   */
  private onPrepareError(err: unknown, source: unknown, sbn: number): void {
    const obj = this.catalogue.objects.find((o) => o.encoder === source);
    const code = (err as { code?: unknown } | undefined)?.code;
    const reason = err instanceof Error ? err.message : String(err);
    if (obj && (err instanceof SourceTruncatedError || err instanceof IoError || err instanceof ObjectChangedError)) {
      this.withdraw(obj, { sbn, code, reason });
      return;
    }
    // The message alone: pino's err serializer repeats a cause's text.
    this.log.error({ object: obj?.name, sbn, code, reason }, 'a block could not be prepared');
  }

  /**
   * Withdraws `obj` (§10.2): logged once with why; each channel that carries
   * it gets a new stream (and group stream) without it, announcing a new
   * FDT instance that does not list it, its EXT_RQSEQ going on from the old
   * stream's. The old stream is closed (its blocks unpinned).
   */
  withdraw(obj: CatalogueObject, why: { sbn?: number; code?: unknown; reason: string }): void {
    if (this.closed || this.withdrawn.has(obj)) return;
    this.withdrawn.add(obj);
    this.own.objectsWithdrawn++;
    const now = this.clock();
    const affected = this.channels.filter((c) => c.objects.includes(obj));
    this.log.error(
      { object: obj.name, toi: obj.toi, path: obj.path, ...why, channels: affected.map((c) => c.name) },
      'object withdrawn: it can no longer be served as announced',
    );
    this.restreamAll(affected, (objects) => objects.filter((o) => o !== obj), now);
  }

  /**
   * Adds catalogue object `obj` (a file that appeared in a served
   * directory, lib/content/served-path-watch.ts) to the channels named: each gets
   * a new stream and a new FDT instance listing it (§10.2). Logged
   * 'object added'.
   */
  addObject(obj: CatalogueObject, channels: readonly string[]): void {
    if (this.closed) return;
    this.encoders.set(obj.encoder, obj.encoder);
    const affected = this.channels.filter((c) => channels.includes(c.name) && !c.objects.includes(obj));
    this.own.objectsAdded++;
    this.log.info({ object: obj.name, toi: obj.toi, length: obj.length, channels: affected.map((c) => c.name) }, 'object added');
    this.restreamAll(affected, (objects) => [...objects, obj], this.clock());
  }

  /**
   * Takes `obj` off every channel (its file was removed or replaced in a
   * served directory): new streams and FDT instances without it (§10.2).
   * Logged 'object removed' with `why`.
   */
  removeObject(obj: CatalogueObject, why: string): void {
    if (this.closed) return;
    const affected = this.channels.filter((c) => c.objects.includes(obj));
    this.own.objectsRemoved++;
    this.log.info({ object: obj.name, toi: obj.toi, why, channels: affected.map((c) => c.name) }, 'object removed');
    this.restreamAll(affected, (objects) => objects.filter((o) => o !== obj), this.clock());
  }

  /**
   * `next` is the new version of `old` (its file changed while served):
   * in one new FDT instance per channel, `old` is dropped and `next`
   * listed under its new TOI, on the channels that carried `old` and those
   * named. Logged 'object replaced'.
   */
  replaceObject(old: CatalogueObject, next: CatalogueObject, channels: readonly string[]): void {
    if (this.closed) return;
    this.encoders.set(next.encoder, next.encoder);
    const affected = this.channels.filter((c) => c.objects.includes(old) || channels.includes(c.name));
    this.own.objectsReplaced++;
    this.log.info({ object: next.name, toi: next.toi, oldToi: old.toi, length: next.length, channels: affected.map((c) => c.name) }, 'object replaced');
    this.restreamAll(affected, (objects) => [...objects.filter((o) => o !== old && o !== next), next], this.clock());
  }

  private restreamAll(affected: readonly ServerChannel[], objectsOf: (objects: readonly CatalogueObject[]) => CatalogueObject[], now: number): void {
    for (const ch of affected) {
      try {
        this.restream(ch, objectsOf(ch.objects), now);
      } catch (err) {
        // Called from the block cache's callback: a throw here would end the process.
        this.log.error({ channel: ch.name, code: (err as { code?: unknown }).code, reason: err instanceof Error ? err.message : String(err) }, 'channel could not drop a withdrawn object');
      }
    }
  }

  /** `ch` gets a new stream (and group stream) of `objects`, with a new FDT instance listing them (§10.2). */
  private restream(ch: ServerChannel, objects: CatalogueObject[], now: number): void {
    const plan = this.plan.channels.find((p) => p.tsi === ch.tsi);
    if (!plan) return;
    const instanceId = this.nextInstanceId;
    this.nextInstanceId = (this.nextInstanceId + 1) % FDT_INSTANCE_IDS;
    const fdt = this.catalogue.fdt(objects, instanceId, now, undefined, this.offered);
    const unicast: ChannelStreamOptions = {
      ...channelStreamOptions(this.options, this.plan, { ...plan, objects }, fdt, this.allocatorOf, this.pins),
      firstSequence: ch.stream.unwrappedPosition,
    };
    // A channel left with no object sends its FDT alone.
    if (objects.length === 0) delete unicast.windowBlocks;
    const old = [ch.stream, ch.multicast?.stream];
    const oldFdt = ch.fdt;
    ch.stream = new ChannelStream(unicast);
    ch.objects = objects;
    ch.fdt = fdt;
    this.streams.set(ch.tsi, ch.stream);
    const g = ch.multicast;
    if (g) {
      g.stream = new ChannelStream({ ...groupStreamOptions(unicast, objects, this.noCode, this.allocatorOf), firstSequence: g.stream.unwrappedPosition });
      this.streams.set(g.channelId, g.stream);
    }
    for (const s of old) s?.close();
    oldFdt.encoder.close();
    this.resetRings(ch, plan);
    this.refill(ch.tsi);
    if (g) this.refill(g.channelId);
  }

  /**
   * Drops what the old stream left queued in `ch`'s rings (up to a ring of
   * packets, its old FDT instance among them, which a client joining later
   * would decode first): each replicator channel is made again, with the
   * same members (the client manager's unicast destinations; the group).
   */
  private resetRings(ch: ServerChannel, plan: ChannelPlan): void {
    const rep = this.replicator;
    if (!rep) return;
    this.carry(ch.tsi);
    rep.removeChannel(ch.tsi);
    rep.createChannel(ch.tsi, replicatorChannelConfig(this.plan, plan, ch.stream.slotSize));
    for (const peer of this.manager.members(ch.name)) this.transportOf(peer)?.addMember(ch.tsi, peer);
    const g = ch.multicast;
    if (g) {
      rep.removeGroup(g.channelId);
      this.carry(g.channelId);
      rep.removeChannel(g.channelId);
      rep.createChannel(g.channelId, replicatorChannelConfig(this.plan, plan, g.stream.slotSize));
      rep.addGroup(g.channelId, sinkConfig(g));
    }
  }

  /** Keeps what replicator channel `id` counted so far, before it is made again. */
  private carry(id: number): void {
    const rep = this.replicator;
    if (!rep) return;
    let now: ReplicatorChannelCounters;
    try {
      now = rep.channelStats(id);
    } catch {
      return;
    }
    const c = this.carried.get(id) ?? { ...NO_CARRIED };
    for (const k of CARRIED_KEYS) c[k] += now[k] ?? 0;
    this.carried.set(id, c);
  }

  /**
   * A live stream's channel (live-channel.ts), TSI after the channels
   * before it. Its NAME must not be a channel's, nor an object's name or
   * prefix (its objects are NAME/seq).
   */
  private addLive(live: LiveChannelConfig, before: readonly ServerChannel[], offered: readonly FdtChannel[]): ServerChannel {
    const name = live.name;
    if (before.some((c) => c.name === name)) throw new InvalidServerConfigError(`live stream "${name}": a channel has that name already; choose another NAME`);
    const clash = this.catalogue.objects.find((o) => o.name === name || o.name.startsWith(name + '/') || name.startsWith(o.name + '/'));
    if (clash) throw new InvalidServerConfigError(`live stream "${name}" clashes with the file object "${clash.name}": its segments are named ${name}/N; choose another NAME`);
    const tsi = before.length + 1;
    const rateMbps = this.liveRateMbps(live);
    const symbolSize = this.catalogue.symbolSize;
    const channel = new LiveChannel({
      tsi,
      source: live.source,
      symbolSize,
      noCode: this.noCode,
      fdtInterval: this.options.fdtInterval ?? LIVE_FDT_INTERVAL,
      passOverhead: this.options.passOverhead,
      channels: offered,
      clock: this.clock,
      install: (stream, fdt, objects) => {
        const ch = this.byTsi.get(tsi);
        if (!ch || this.closed) return;
        ch.stream = stream;
        ch.fdt = fdt;
        ch.objects = objects;
        this.streams.set(tsi, stream);
        this.refill(tsi);
      },
    });
    const first = channel.initial();
    const ch: ServerChannel = { name, tsi, objects: [], rateMbps, stream: first.stream, fdt: first.fdt };
    this.byTsi.set(tsi, ch);
    this.streams.set(tsi, first.stream);
    this.live.set(tsi, { channel, rateMbps });
    return ch;
  }

  /** A live channel's rate: its own, else the server's, else the default. */
  private liveRateMbps(live: LiveChannelConfig): number {
    return live.rateMbps ?? this.options.rateMbps ?? DEFAULT_RATE_MBPS;
  }

  /** What the streams pin is what the cache prepares: the catalogue's encoders, by identity. */
  private blockPins(): BlockPins {
    const encoders = this.encoders;
    for (const o of this.catalogue.objects) encoders.set(o.encoder, o.encoder);
    const encoderOf = (src: SymbolSource): ObjectEncoder => {
      const e = encoders.get(src);
      if (!e) throw new InvalidServerConfigError('a stream pinned an encoder that is not in the catalogue');
      return e;
    };
    return {
      pin: (src, sbn) => this.cache.pin(encoderOf(src), sbn),
      unpin: (src, sbn) => this.cache.unpin(encoderOf(src), sbn),
      ready: (src, sbn) => this.cache.ready(encoderOf(src), sbn),
    };
  }

  /** Tops up the ring of replicator channel `id` (a TSI, or a group stream's groupChannelId). */
  private refill(id: number): void {
    const stream = this.streams.get(id);
    const rep = this.replicator;
    if (!stream || !rep || this.closed) return;
    try {
      const free = this.plan.ringCapacity - rep.channelStats(id).queued;
      if (free > 0) stream.fill(free, (buf, size, count) => rep.push(id, buf, size, count));
    } catch (err) {
      this.own.replicatorErrors++;
      this.log.error({ err, tsi: stream.tsi, channelId: id }, 'stream refill failed');
    }
  }

  private onControl(m: ControlReceived): void {
    const decoded = decodeControl(m.bytes);
    if (!decoded.ok) {
      this.own.controlMalformed++;
      this.log.debug({ reason: decoded.reason }, 'control datagram dropped');
      return;
    }
    this.apply(this.manager.handle(decoded.msg, { ...m.from, bytesReceived: m.bytesReceived }, this.clock()));
  }

  /**
   * The sequence number of the next packet channel `tsi`'s unicast stream
   * puts on the wire, so the first one a destination added now receives:
   * one past the last built, less those built but not yet taken by the
   * replicator and those still queued in its ring (undefined before listen).
   */
  private firstSequence(tsi: number): number | undefined {
    const ch = this.byTsi.get(tsi);
    const rep = this.replicator;
    if (!ch || !rep) return undefined;
    let queued: number;
    try {
      queued = rep.channelStats(tsi).queued;
    } catch {
      return undefined;
    }
    const SEQ_MOD = 2 ** 32;
    return (((ch.stream.nextSequence - ch.stream.pendingPackets - queued) % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
  }

  private transportOf(peer: Peer): ServerTransport | undefined {
    return this.transports.get(peer.transport);
  }

  private apply(out: ManagerOutput): void {
    for (const r of out.replies) this.transportOf(r.to)?.sendControl(r.to, encodeControl(r.message), r.maxBytes);
    for (const c of out.commands) {
      switch (c.kind) {
        case 'addDestinations':
          for (const d of c.destinations) this.transportOf(d)?.addMember(c.tsi, d);
          break;
        case 'removeDestinations':
          for (const d of c.destinations) this.transportOf(d)?.removeMember(c.tsi, d);
          break;
        case 'sendFresh': {
          const ch = this.byTsi.get(c.tsi);
          const t = this.transportOf(c.destination);
          if (ch && t) t.sendFresh(c.tsi, c.destination, ch.stream.freshPackets(c.lost));
          break;
        }
      }
    }
    for (const e of out.events) {
      const who = { address: e.client.address, port: e.client.port, channels: e.channels };
      if (e.kind === 'joined' || e.kind === 'renewed') this.log.info({ ...who, expiresAtMs: e.expiresAtMs, ack: e.ack, multicast: e.multicast }, e.kind);
      else {
        this.log.info(who, e.kind);
        this.transportOf(e.client)?.endPeer?.(e.client);
      }
      this.emit(e.kind, e);
    }
  }

  private safely(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.own.replicatorErrors++;
      this.log.warn({ err }, 'replicator refused a command');
    }
  }
}

/** The TCP counters of `t` (all 0 without it). */
function tcpCounters(t: TcpServerTransport | undefined): TcpServerCounters {
  const c: TcpTransportCounters = t?.tcp ?? zeroTcpTransportCounters();
  let n: Partial<NativeTcpServerStats> = {};
  try {
    n = t?.nativeStats() ?? {};
  } catch {
    // A native server that cannot say: its counters read 0.
  }
  return {
    tcpConnectionsOpened: c.connectionsOpened,
    tcpConnectionsClosed: c.connectionsClosed,
    tcpClosedNormal: c.closedNormal,
    tcpClosedReset: c.closedReset,
    tcpClosedTimeout: c.closedTimeout,
    tcpClosedAborted: c.closedAborted,
    tcpClosedProtocol: c.closedProtocol,
    tcpFramingErrors: c.framingErrors,
    tcpFreshNotNeeded: c.freshNotNeeded,
    tcpUnknownConnection: c.unknownConnection,
    tcpFreshFrames: n.freshFrames ?? 0,
    tcpStaleFrames: n.staleFrames ?? 0,
    tcpRetransmittedSegments: n.retransmittedSegments ?? 0,
    tcpPoolEvicted: n.poolEvicted ?? 0,
    tcpResetsSent: n.resetsSent ?? 0,
    tcpBadSegments: n.badSegments ?? 0,
    tcpRefused: n.refused ?? 0,
    tcpSegmentsOut: n.segmentsOut ?? 0,
    tcpSendErrors: n.sendErrors ?? 0,
  };
}

/** What the client manager knows of a channel: name, TSI and the group JOINED announces. */
function channelInfo(c: ServerChannel): ChannelInfo {
  const info: ChannelInfo = { name: c.name, tsi: c.tsi };
  const g = c.multicast;
  if (g) info.multicast = g.source === undefined ? { group: g.group, port: g.port } : { group: g.group, port: g.port, source: g.source };
  return info;
}

/** A channel in the 'listening' log line. */
function channelLog(c: ServerChannel): object {
  const g = c.multicast;
  const base = { name: c.name, tsi: c.tsi, objects: c.objects.length, rateMbps: c.rateMbps };
  if (!g) return base;
  return { ...base, multicast: { group: g.group, port: g.port, source: g.source, ttl: g.ttl, interface: g.interface } };
}

/** The replicator's per-channel counts that only grow (not queued, destinations). */
const CARRIED_KEYS = ['streamPackets', 'datagrams', 'bytes', 'dropsEagain', 'dropsEnobufs', 'errors', 'tcpPackets', 'tcpBytes'] as const;
type CarriedChannelCounts = Record<(typeof CARRIED_KEYS)[number], number>;
const NO_CARRIED: CarriedChannelCounts = { streamPackets: 0, datagrams: 0, bytes: 0, dropsEagain: 0, dropsEnobufs: 0, errors: 0, tcpPackets: 0, tcpBytes: 0 };

/** A channel's counts now plus what its earlier replicator channels counted (a field the replicator leaves out stays out). */
function withCarried(now: ReplicatorChannelCounters, carried: CarriedChannelCounts | undefined): ReplicatorChannelCounters {
  if (!carried) return now;
  const out: ReplicatorChannelCounters = { ...now };
  for (const k of CARRIED_KEYS) {
    if (k === 'streamPackets' || k === 'datagrams' || k === 'bytes') out[k] = now[k] + carried[k];
    else if (now[k] !== undefined) out[k] = (now[k] as number) + carried[k];
  }
  return out;
}
