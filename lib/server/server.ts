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
import { BlockCache } from '../content/block-cache';
import type { Catalogue, CatalogueObject, FdtObject } from '../content/catalogue';
import { type BlockPins, ChannelStream, type StreamCounters, type SymbolSource } from '../stream/channel-stream';
import { type ChannelInfo, type ClientEvent, ClientManager, type ClientManagerCounters, staticChannelDirectory } from '../session/client-manager';
import type { ManagerOutput } from '../session/manager-output';
import type { Peer, PeerTransport } from '../session/peer';
import { CookieAuthority } from '../session/cookie';
import { InvalidServerConfigError } from '../errors';
import type { ServerGroup } from '../content/server-group';
import { sinkConfig } from '../transport/multicast/group-config';
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
}

export interface ServerChannel {
  name: string;
  tsi: number;
  objects: readonly CatalogueObject[];
  rateMbps: number;
  /** The unicast stream: what the channel's unicast members receive, and what their ACKs are about. */
  stream: ChannelStream;
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
  private readonly streams = new Map<number, ChannelStream>();
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
  private readonly own = { controlMalformed: 0, replicatorErrors: 0 };
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
      onError: (err, _source, sbn) => this.log.error({ err, sbn }, 'a block could not be prepared'),
    });
    const pins = this.blockPins();
    const allocatorOf = symbolAllocators(this.noCode, this.plan.esiLayout);
    const now = this.clock();
    // Every channel's FDT lists all of them (rq:Channel, docs/PROTOCOL.md §9): `rqcast ls`, one-segment URLs.
    // Live channels (after the configured ones) too: unicast, over TCP where the server has it.
    const offered: FdtChannel[] = [
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
    ];
    const channels: ServerChannel[] = this.plan.channels.map((c) => {
      const fdt = this.catalogue.fdt(c.objects, c.tsi, now, undefined, offered);
      const unicast = channelStreamOptions(options, this.plan, c, fdt, allocatorOf, pins);
      const stream = new ChannelStream(unicast);
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
    if (stream === 'unicast') return this.replicator.channelStats(ch.tsi);
    return ch.multicast ? this.replicator.channelStats(ch.multicast.channelId) : undefined;
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
    const encoders = new Map<SymbolSource, ObjectEncoder>();
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
