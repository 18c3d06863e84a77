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
 * - Withdrawn objects (docs/PROTOCOL.md §10.2; channel-content.ts): an object whose block
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
import type { ReplicatorChannelConfig } from '../transport/replicator-contract';
import type { ControlReceived, ListenAddress, ServerTransport } from '../transport/server-transport';
import { UdpServerTransport } from '../transport/udp/server-transport';
import { TcpServerTransport } from '../transport/tcp/server-transport';
import { nativeTcpServerFactory } from '../transport/tcp/native-tcp-server';
import { nativeEngineOf } from '../transport/replicator';
import type { ObjectEncoder } from '../fec/encoder';
import { IoError, SourceTruncatedError } from '../fec/errors';
import { BlockCache } from '../content/block-cache';
import { loadNative } from '../native';
import { holdIdleBufferRelease } from './idle-buffer-release';
import { type Catalogue, type CatalogueObject, ObjectChangedError } from '../content/catalogue';
import type { ServedStream } from '../stream/served-stream';
import { type BlockPins, ChannelStream, type SymbolSource } from '../stream/channel-stream';
import { type ChannelInfo, type ClientEvent, ClientManager, staticChannelDirectory } from '../session/client-manager';
import type { ManagerOutput } from '../session/manager-output';
import { type Peer, type PeerTransport, peerKey } from '../session/peer';
import { CookieAuthority } from '../session/cookie';
import { InvalidServerConfigError } from '../errors';
import type { ServerGroup } from '../content/server-group';
import { sinkConfig } from '../transport/multicast/group-config';
import { type LiveChannel, liveRingConfig, liveServerChannel } from './live-channel';
import { ChannelContent, offeredChannels, type ServerChannel } from './channel-content';
import { serverCounters, type ServerCounters, type ServerOwnCounters } from './server-counters';
import {
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
export type { ServerChannel } from './channel-content';
export type { GroupStreamCounters, ServerCounters, TcpServerCounters } from './server-counters';
export { LIVE_FDT_INTERVAL, LIVE_RING_CAPACITY } from './live-channel';

/** Which of a channel's streams: the unicast one, or the one sent to its group. */
export type ChannelStreamKind = 'unicast' | 'group';

export type ServerAddress = ListenAddress;

export declare interface RqcastServer {
  on(event: 'listening', listener: (address: ServerAddress) => void): this;
  on(event: 'joined' | 'renewed', listener: (e: Extract<ClientEvent, { kind: 'joined' | 'renewed' }>) => void): this;
  on(event: 'left' | 'expired', listener: (e: Extract<ClientEvent, { kind: 'left' | 'expired' }>) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

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
  /** Each replicator channel's ring size (a live or forward channel's is short), by channel ID. */
  private readonly ringCapacities = new Map<number, number>();
  /** Live channels by TSI. */
  private readonly live = new Map<number, { channel: LiveChannel; rateMbps: number }>();
  private readonly cache: BlockCache;
  private replicator?: ReplicatorLike;
  private ownsReplicator = false;
  /** By the kind of peer each carries: UDP unicast, and TCP when configured. */
  private readonly transports = new Map<PeerTransport, ServerTransport>();
  private timer?: NodeJS.Timeout;
  /** Lets go of the process's idle rule for the codec's buffer cache (idle-buffer-release.ts). */
  private letGoIdleRelease?: () => void;
  private bound?: ServerAddress;
  private tcpBound?: ServerAddress;
  private closed = false;
  /** listen() finished: the server said 'listening'. */
  private listening = false;
  private readonly own: ServerOwnCounters = { controlMalformed: 0, replicatorErrors: 0 };
  /** Every encoder a stream may pin: the catalogue's, and those added since (never removed while running). */
  private readonly encoders = new Map<SymbolSource, ObjectEncoder>();
  /** Objects withdrawn, added, removed, replaced; every change of a channel's stream (channel-content.ts). */
  private readonly content: ChannelContent;
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
    const offered = offeredChannels(this.plan, options);
    this.content = new ChannelContent({
      catalogue: this.catalogue,
      options,
      plan: this.plan,
      noCode: this.noCode,
      allocatorOf,
      pins,
      offered,
      encoders: this.encoders,
      streams: this.streams,
      log: this.log,
      clock: this.clock,
      closed: () => this.closed,
      channels: () => this.channels,
      replicator: () => this.replicator,
      ringConfig: (ch, slotSize) => this.ringConfig(ch, slotSize),
      members: (name) => this.manager.members(name),
      transportOf: (peer) => this.transportOf(peer),
      refill: (id) => this.refill(id),
    });
    const channels = this.content.fileChannels(this.clock());
    for (const ch of channels) this.byTsi.set(ch.tsi, ch);
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
        this.createRing(rep, ch.tsi, replicatorChannelConfig(this.plan, plan, ch.stream.slotSize));
        this.refill(ch.tsi);
        const g = ch.multicast;
        if (g) {
          // The sink first: the channel's first packets go to the group.
          this.createRing(rep, g.channelId, replicatorChannelConfig(this.plan, plan, g.stream.slotSize));
          rep.addGroup(g.channelId, sinkConfig(g));
          this.refill(g.channelId);
        }
      });
      for (const [tsi, live] of this.live) {
        const ch = this.byTsi.get(tsi)!;
        // A short ring: a new segment waits behind at most LIVE_RING_CAPACITY packets.
        this.createRing(rep, tsi, liveRingConfig(this.plan, live.rateMbps, ch.stream.slotSize));
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
    this.letGoIdleRelease = holdIdleBufferRelease({ warn: (err) => this.log.warn({ err }, 'block buffer cache not released') });
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

  /** Every counter of the server, the client manager, the transports and the streams (server-counters.ts). */
  get counters(): ServerCounters {
    return serverCounters({ channels: this.channels, transports: this.transports, cache: this.cache, manager: this.manager.counters, own: this.own, content: this.content.counters });
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
    return this.content.withCarried(id, this.replicator.channelStats(id));
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
    this.letGoIdleRelease?.();
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

  /** Withdraws `obj` (§10.2): every channel that carries it gets a new stream and FDT instance without it (channel-content.ts). */
  withdraw(obj: CatalogueObject, why: { sbn?: number; code?: unknown; reason: string }): void {
    this.content.withdraw(obj, why);
  }

  /** Adds `obj` (a file that appeared in a served directory) to the channels named (channel-content.ts). */
  addObject(obj: CatalogueObject, channels: readonly string[]): void {
    this.content.addObject(obj, channels);
  }

  /** Takes `obj` off every channel (its file was removed or replaced; channel-content.ts). */
  removeObject(obj: CatalogueObject, why: string): void {
    this.content.removeObject(obj, why);
  }

  /** `next` is the new version of `old` (its file changed while served; channel-content.ts). */
  replaceObject(old: CatalogueObject, next: CatalogueObject, channels: readonly string[]): void {
    this.content.replaceObject(old, next, channels);
  }

  /** A live stream's channel (live-channel.ts): its new streams go through ChannelContent.replaceStream, keeping what is queued. */
  private addLive(live: LiveChannelConfig, before: readonly ServerChannel[], offered: readonly FdtChannel[]): ServerChannel {
    const { ch, channel, rateMbps } = liveServerChannel(live, before, offered, {
      catalogue: this.catalogue,
      options: this.options,
      noCode: this.noCode,
      clock: this.clock,
      install: (tsi, stream, fdt, objects) => {
        const ch = this.byTsi.get(tsi);
        if (!ch || this.closed) return;
        this.content.replaceStream(ch, { stream, fdt, objects }, false);
      },
    });
    this.byTsi.set(ch.tsi, ch);
    this.streams.set(ch.tsi, ch.stream);
    this.live.set(ch.tsi, { channel, rateMbps });
    return ch;
  }

  /** The ring of one of `ch`'s replicator channels: a live channel's short one, else its plan's. */
  private ringConfig(ch: ServerChannel, slotSize: number): ReplicatorChannelConfig {
    const live = this.live.get(ch.tsi);
    if (live) return liveRingConfig(this.plan, live.rateMbps, slotSize);
    const plan = this.plan.channels.find((p) => p.tsi === ch.tsi);
    if (!plan) throw new InvalidServerConfigError(`channel ${ch.name} has no plan`);
    return replicatorChannelConfig(this.plan, plan, slotSize);
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

  /** Makes replicator channel `id` and remembers its ring's size, which refill() fills up to. */
  private createRing(rep: ReplicatorLike, id: number, cfg: ReplicatorChannelConfig): void {
    rep.createChannel(id, cfg);
    if (cfg.capacity !== undefined) this.ringCapacities.set(id, cfg.capacity);
  }

  /** Tops up the ring of replicator channel `id` (a TSI, or a group stream's groupChannelId) to its own size. */
  private refill(id: number): void {
    const stream = this.streams.get(id);
    const rep = this.replicator;
    if (!stream || !rep || this.closed) return;
    try {
      const free = (this.ringCapacities.get(id) ?? this.plan.ringCapacity) - rep.channelStats(id).queued;
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
          for (const d of c.destinations) this.byTsi.get(c.tsi)?.stream.expectNeed?.(peerKey(d));
          break;
        case 'removeDestinations':
          for (const d of c.destinations) this.transportOf(d)?.removeMember(c.tsi, d);
          for (const d of c.destinations) this.byTsi.get(c.tsi)?.stream.forgetNeed?.(peerKey(d));
          break;
        case 'need':
          // Passes by need (docs/PROTOCOL.md §7a); the stream counts what it ignores or clamps.
          this.byTsi.get(c.tsi)?.stream.reportNeed?.(peerKey(c.member), c.report);
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
