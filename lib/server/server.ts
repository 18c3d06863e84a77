/**
 * RqcastServer: the catalogue, one ChannelStream per channel, the native
 * Replicator that paces and copies each stream to the channel's members, and
 * the UDP control plane (HELLO/COOKIE, JOIN/JOINED, LEAVE, ACK, ERROR) that
 * decides who the members are (ClientManager).
 *
 * - Control port: one dgram socket (udp4, or udp6 when bound to an IPv6
 *   address; an IPv4 client seen as ::ffff:a.b.c.d is handed to the
 *   replicator as a.b.c.d). Every datagram is decoded with decodeControl;
 *   anything malformed is dropped and counted. Replies go out from the
 *   control port; until a cookie verifies, a reply is never larger than the
 *   datagram that caused it (checked by ClientManager, and again here on the
 *   encoded bytes).
 * - Data: from the replicator's own socket. Channel i (1-based, in the order
 *   configured) has TSI i and FDT instance id i.
 * - Streams are refilled on the replicator's 'lowWater' event, up to the
 *   ring's capacity; a channel's ring is filled once when it is created.
 * - One interval timer drives every join timer (ClientManager.tick). Cookie
 *   keys rotate with the clock: CookieAuthority derives the key of each
 *   rotation period from the master secret (--secret, shared by relays; a
 *   random one otherwise), so rotation needs no timer of its own.
 * - ACK: each newly reported loss is answered by one packet carrying a fresh
 *   symbol of the same block (ChannelStream.freshPackets), sent without
 *   EXT_RQSEQ through Replicator.sendTo on the channel's account.
 */
import * as dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import { decodeControl, encodeControl } from '../protocol/control';
import { ControlMessage } from '../protocol/messages';
import { Replicator } from '../transport/replicator';
import type { ReplicatorContract } from '../transport/replicator-contract';
import { AckTrackerOptions } from '../session/ack-tracker';
import type { ObjectEncoder } from '../fec/encoder';
import { BlockCache } from '../content/block-cache';
import { Catalogue, CatalogueObject, FdtObject, wireOti } from '../content/catalogue';
import { BlockPins, ChannelStream, DEFAULT_FDT_INTERVAL, StreamCounters, SymbolSource, windowFor } from '../stream/channel-stream';
import { ClientEvent, ClientManager, ClientManagerCounters, ManagerOutput, staticChannelDirectory } from '../session/client-manager';
import { type Peer, udpPeer } from '../session/peer';
import { CookieAuthority } from '../session/cookie';
import { InvalidServerConfigError } from '../errors';
import { unmapIPv4 } from '../support/address';
import { SymbolAllocator } from '../content/symbol-allocator';

export const DEFAULT_PORT = 4433;
export const DEFAULT_RATE_MBPS = 100;
export const DEFAULT_CHANNEL = 'main';
/**
 * 512 MiB: 28 blocks of 16 MiB (the default RFC 6330 §4.3 block size at
 * T = 1280) beside the one prepared ahead. Half the client's default
 * (lib/client), which holds about twice as much per block while it solves.
 */
/** A channel sends an FDT packet about this often (RqcastServer's fdtInterval). */
export const FDT_PERIOD_MS = 10;
/** ...and the whole FDT instance within this long. */
export const FDT_COMPLETE_MS = 1000;

/**
 * Stream packets between FDT packets for a channel sending `packetsPerSecond`
 * whose FDT instance has `fdtSymbols` source symbols: one FDT packet per
 * FDT_PERIOD_MS (so that a client that joins learns the catalogue within
 * about that long), or more often if the whole FDT would otherwise take over
 * FDT_COMPLETE_MS; never more often than one packet in 32 (ChannelStream's
 * default). At 200 Mbit/s and T = 1280, one packet in 191 (0.5% of the
 * stream) instead of one in 32 (3.1%).
 */
export function fdtIntervalFor(packetsPerSecond: number, fdtSymbols: number): number {
  const byPeriod = Math.round((packetsPerSecond * FDT_PERIOD_MS) / 1000);
  const byCompletion = Math.floor((packetsPerSecond * FDT_COMPLETE_MS) / 1000 / Math.max(1, fdtSymbols));
  return Math.max(DEFAULT_FDT_INTERVAL, Math.min(byPeriod, byCompletion));
}

export const DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024;

/**
 * The replicator contract (lib/transport/replicator-contract.ts) under the
 * name the server's options have always used.
 */
export type ReplicatorLike = ReplicatorContract;

/** pino-compatible subset. */
export interface ServerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const SILENT: ServerLogger = { info() {}, warn() {}, debug() {}, error() {} };

export interface ChannelConfig {
  /** 1..64 bytes of UTF-8, as JOIN carries it. */
  name: string;
  /** Object names (Content-Location); default every object of the catalogue. */
  objects?: readonly string[];
  /** Pacing rate of the stream in Mbit/s (10^6 bit/s). Default the server's rateMbps. */
  rateMbps?: number;
}

export interface RqcastServerOptions {
  catalogue: Catalogue;
  /** Default: one channel `main` with every object. */
  channels?: readonly ChannelConfig[];
  /** Control port. Default 4433; 0 picks a free one. */
  port?: number;
  /** Default 0.0.0.0. */
  host?: string;
  /** Default rate per channel in Mbit/s. Default 100. */
  rateMbps?: number;
  /** Plain carousel of source symbols, no repair (DESIGN.md "no-code" mode). */
  noCode?: boolean;
  /** Cookie master secret (>= 16 bytes), shared by servers that accept each other's cookies. */
  secret?: Uint8Array;
  cookieRotationMs?: number;
  cookieLifetimeMs?: number;
  maxTtlMs?: number;
  maxChannelsPerClient?: number;
  ack?: AckTrackerOptions;
  /** Join timer tick. Default 100 ms. */
  tickIntervalMs?: number;
  /** One FDT packet every this many stream packets. Default fdtIntervalFor the channel's rate. */
  fdtInterval?: number;
  symbolsPerTurn?: number;
  /** Replicator ring slots per channel. Default 4096. */
  ringCapacity?: number;
  /** Default: the native Replicator (closed by close()). An injected one is not closed. */
  replicator?: ReplicatorLike;
  /**
   * Wait, before listening, until the blocks the streams start with are
   * prepared (off the JS thread). Default true. Otherwise a block not yet
   * prepared when its first packet is due is prepared on the JS thread.
   */
  prepare?: boolean;
  /**
   * Bytes of prepared blocks (source + intermediate symbols) the server may
   * hold, shared equally by the channels. A channel whose blocks fit its
   * share sends all of them round-robin; a larger one sends a sliding
   * window of as many blocks as fit (ChannelStream). Default 512 MiB.
   */
  memoryBytes?: number;
  /** Packets per block per pass of a sliding window beyond K, as a fraction of K. Default 0.15. */
  passOverhead?: number;
  /** Force the window to this many blocks per channel (tests); default from memoryBytes. */
  windowBlocks?: number;
  clock?: () => number;
  logger?: ServerLogger;
}

/** The other StreamCounters are summed over the channels under their own names. */
export interface ServerCounters extends ClientManagerCounters, Omit<StreamCounters, 'packets'> {
  datagramsReceived: number;
  bytesReceived: number;
  /** Datagrams decodeControl refused. */
  controlMalformed: number;
  repliesSent: number;
  replyBytesSent: number;
  replySendErrors: number;
  /** StreamCounters.packets, summed over the channels. */
  streamPackets: number;
  /** Prepared blocks now, their bytes, and the most those bytes have been (BlockCache). */
  preparedBlocks: number;
  preparedBytes: number;
  preparedBytesPeak: number;
  blockPrepares: number;
  blockPrepareErrors: number;
  /** Replicator calls that threw (e.g. an address family the host cannot send to). */
  replicatorErrors: number;
}

export interface ServerChannel {
  name: string;
  tsi: number;
  objects: readonly CatalogueObject[];
  rateMbps: number;
  stream: ChannelStream;
  fdt: FdtObject;
}

export interface ServerAddress {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}


/** LCT header, EXT_RQSEQ and FEC Payload ID of a data packet (docs/PROTOCOL.md §10.3): 28 + T bytes. */
const DATA_HEADER_BYTES = 28;

function defaultReplicator(): ReplicatorLike {
  return new Replicator();
}

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
  private readonly manager: ClientManager;
  private readonly clock: () => number;
  private readonly log: ServerLogger;
  private readonly options: RqcastServerOptions;
  private readonly byTsi = new Map<number, ServerChannel>();
  private readonly cache: BlockCache;
  /** The catalogue's encoders by identity: what the streams pin is what the cache prepares. */
  private readonly encoders = new Map<SymbolSource, ObjectEncoder>();
  private readonly capacity: number;
  private replicator?: ReplicatorLike;
  private ownsReplicator = false;
  private socket?: dgram.Socket;
  private timer?: NodeJS.Timeout;
  private bound?: ServerAddress;
  private closed = false;
  private readonly own = {
    datagramsReceived: 0,
    bytesReceived: 0,
    controlMalformed: 0,
    repliesSent: 0,
    replyBytesSent: 0,
    replySendErrors: 0,
    replicatorErrors: 0,
  };
  private readonly onLowWater = (ids: number[]): void => {
    for (const id of ids) this.refill(id);
  };

  constructor(options: RqcastServerOptions) {
    super();
    this.options = options;
    this.catalogue = options.catalogue;
    this.noCode = options.noCode ?? false;
    this.clock = options.clock ?? Date.now;
    this.log = options.logger ?? SILENT;
    this.capacity = options.ringCapacity ?? 4096;
    if (!Number.isInteger(this.capacity) || this.capacity < 16) throw new InvalidServerConfigError('ringCapacity must be an integer >= 16');
    const mode = this.noCode ? 'carousel' : 'coded';
    // Coded: one allocator per object, shared by every channel (no symbol sent twice).
    // No-code: one carousel per (channel, object). A shared carousel would split
    // each block's source symbols between the channels, and channels taking
    // turns in step could leave a one-channel client without some of them forever.
    const allocators = new Map<CatalogueObject, SymbolAllocator>();
    const allocatorOf = (o: CatalogueObject): SymbolAllocator => {
      if (this.noCode) return SymbolAllocator.forEncoder(o.encoder, mode);
      let a = allocators.get(o);
      if (!a) allocators.set(o, (a = SymbolAllocator.forEncoder(o.encoder, mode)));
      return a;
    };
    const configs = options.channels ?? [{ name: DEFAULT_CHANNEL }];
    if (configs.length === 0) throw new InvalidServerConfigError('at least one channel');
    const memoryBytes = options.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    if (!(Number.isFinite(memoryBytes) && memoryBytes >= 0)) throw new InvalidServerConfigError('memoryBytes must be >= 0');
    this.cache = new BlockCache({
      budgetBytes: memoryBytes,
      onError: (err, _source, sbn) => this.log.error({ err, sbn }, 'a block could not be prepared'),
    });
    for (const o of this.catalogue.objects) this.encoders.set(o.encoder, o.encoder);
    const encoderOf = (src: SymbolSource): ObjectEncoder => {
      const e = this.encoders.get(src);
      if (!e) throw new InvalidServerConfigError('a stream pinned an encoder that is not in the catalogue');
      return e;
    };
    const pins: BlockPins = {
      pin: (src, sbn) => this.cache.pin(encoderOf(src), sbn),
      unpin: (src, sbn) => this.cache.unpin(encoderOf(src), sbn),
      ready: (src, sbn) => this.cache.ready(encoderOf(src), sbn),
    };
    const share = memoryBytes / configs.length;
    const names = new Set<string>();
    const now = this.clock();
    const channels: ServerChannel[] = [];
    configs.forEach((c, i) => {
      const bytes = Buffer.byteLength(c.name, 'utf8');
      if (bytes < 1 || bytes > 64) throw new InvalidServerConfigError('a channel name is 1..64 bytes of UTF-8');
      if (names.has(c.name)) throw new InvalidServerConfigError(`two channels are named ${c.name}`);
      names.add(c.name);
      const objects = (c.objects ?? this.catalogue.objects.map((o) => o.name)).map((n) => {
        const o = this.catalogue.get(n);
        if (!o) throw new InvalidServerConfigError(`channel ${c.name}: no object named ${n}`);
        return o;
      });
      if (objects.length === 0) throw new InvalidServerConfigError(`channel ${c.name} has no objects`);
      const rateMbps = c.rateMbps ?? options.rateMbps ?? DEFAULT_RATE_MBPS;
      if (!(Number.isFinite(rateMbps) && rateMbps > 0)) throw new InvalidServerConfigError('rate must be a positive number of Mbit/s');
      const tsi = i + 1;
      const fdt = this.catalogue.fdt(objects, tsi, now);
      const costs: number[] = [];
      for (const o of objects) for (let sbn = 0; sbn < o.encoder.sourceBlocks; sbn++) costs.push(o.encoder.blockMemory(sbn));
      const stream = new ChannelStream({
        tsi,
        objects: objects.map((o) => ({ toi: o.toi, encoder: o.encoder, allocator: allocatorOf(o) })),
        fdt: { instanceId: fdt.instanceId, encoder: fdt.encoder, allocator: SymbolAllocator.forEncoder(fdt.encoder, mode), oti: wireOti(fdt.encoder.otiInfo) },
        fdtInterval: options.fdtInterval ?? fdtIntervalFor((rateMbps * 1e6) / 8 / (DATA_HEADER_BYTES + this.catalogue.symbolSize), fdt.encoder.layout.totalSymbols),
        symbolsPerTurn: options.symbolsPerTurn,
        windowBlocks: options.windowBlocks ?? windowFor(costs, share),
        passOverhead: options.passOverhead,
        pins,
      });
      const ch: ServerChannel = { name: c.name, tsi, objects, rateMbps, stream, fdt };
      channels.push(ch);
      this.byTsi.set(tsi, ch);
    });
    this.channels = channels;
    this.manager = new ClientManager({
      cookies: new CookieAuthority({
        masterSecret: options.secret,
        rotationPeriodMs: options.cookieRotationMs,
        lifetimeMs: options.cookieLifetimeMs,
      }),
      channels: staticChannelDirectory(channels.map((c) => ({ name: c.name, tsi: c.tsi }))),
      encodedSize: (m: ControlMessage) => encodeControl(m).length,
      maxTtlMs: options.maxTtlMs,
      maxChannelsPerClient: options.maxChannelsPerClient,
      ack: options.ack,
      sentEnd: (tsi) => this.byTsi.get(tsi)?.stream.nextSequence,
    });
  }

  /** Prepares the encoders, starts the streams and binds the control port. */
  async listen(): Promise<ServerAddress> {
    if (this.closed) throw new InvalidServerConfigError('server is closed');
    if (this.bound) return this.bound;
    for (const ch of this.channels) ch.stream.start();
    if (this.options.prepare ?? true) {
      const t0 = Date.now();
      await this.cache.whenPinnedReady();
      this.log.debug({ ms: Date.now() - t0, ...this.cache.stats }, 'first blocks prepared');
    }
    if (this.closed) throw new InvalidServerConfigError('server is closed');
    this.replicator = this.options.replicator;
    if (!this.replicator) {
      this.replicator = defaultReplicator();
      this.ownsReplicator = true;
    }
    const rep = this.replicator;
    rep.on('lowWater', this.onLowWater);
    for (const ch of this.channels) {
      const rateBytesPerSec = Math.round((ch.rateMbps * 1e6) / 8);
      rep.createChannel(ch.tsi, {
        slotSize: ch.stream.slotSize,
        capacity: this.capacity,
        lowWater: Math.floor(this.capacity / 4),
        rateBytesPerSec,
      });
      this.refill(ch.tsi);
    }
    const host = this.options.host ?? '0.0.0.0';
    const socket = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      socket.once('error', onError);
      socket.bind(this.options.port ?? DEFAULT_PORT, host, () => {
        socket.off('error', onError);
        resolve();
      });
    }).catch(async (err: unknown) => {
      await this.close();
      throw err;
    });
    socket.on('error', (err) => this.emit('error', err));
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    const tick = this.options.tickIntervalMs ?? 100;
    this.timer = setInterval(() => this.apply(this.manager.tick(this.clock())), tick);
    this.timer.unref?.();
    const a = socket.address();
    this.bound = { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
    this.log.info({ ...this.bound, channels: this.channels.map((c) => ({ name: c.name, tsi: c.tsi, objects: c.objects.length, rateMbps: c.rateMbps })) }, 'listening');
    this.emit('listening', this.bound);
    return this.bound;
  }

  address(): ServerAddress | undefined {
    return this.bound;
  }

  get sessionCount(): number {
    return this.manager.sessionCount;
  }

  /** Every counter of the server, the client manager and the streams. */
  get counters(): ServerCounters {
    const sum = { ...this.channels[0].stream.counters };
    for (const ch of this.channels.slice(1)) {
      for (const k of Object.keys(sum) as (keyof StreamCounters)[]) sum[k] += ch.stream.counters[k];
    }
    const { packets: streamPackets, ...streams } = sum;
    const b = this.cache.stats;
    return {
      ...this.manager.counters,
      ...this.own,
      ...streams,
      streamPackets,
      preparedBlocks: b.preparedBlocks,
      preparedBytes: b.preparedBytes,
      preparedBytesPeak: b.preparedBytesPeak,
      blockPrepares: b.prepares,
      blockPrepareErrors: b.prepareErrors,
    };
  }

  /** The replicator's statistics of one channel (undefined before listen). */
  channelStats(name: string): ReturnType<ReplicatorLike['channelStats']> | undefined {
    const ch = this.channels.find((c) => c.name === name);
    if (!ch || !this.replicator) return undefined;
    return this.replicator.channelStats(ch.tsi);
  }

  /** Stops everything; idempotent. The catalogue stays open (it is the caller's). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const socket = this.socket;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    const rep = this.replicator;
    if (rep) {
      rep.off('lowWater', this.onLowWater);
      if (this.ownsReplicator) rep.close();
      else for (const ch of this.channels) this.safely(() => rep.removeChannel(ch.tsi));
    }
    for (const ch of this.channels) {
      ch.stream.close();
      ch.fdt.encoder.close();
    }
    this.cache.close();
    this.log.info({}, 'closed');
  }

  private refill(tsi: number): void {
    const ch = this.byTsi.get(tsi);
    const rep = this.replicator;
    if (!ch || !rep || this.closed) return;
    try {
      const free = this.capacity - rep.channelStats(tsi).queued;
      if (free > 0) ch.stream.fill(free, (buf, size, count) => rep.push(tsi, buf, size, count));
    } catch (err) {
      this.own.replicatorErrors++;
      this.log.error({ err, tsi }, 'stream refill failed');
    }
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.own.datagramsReceived++;
    this.own.bytesReceived += msg.length;
    const decoded = decodeControl(msg);
    if (!decoded.ok) {
      this.own.controlMalformed++;
      this.log.debug({ reason: decoded.reason }, 'control datagram dropped');
      return;
    }
    const out = this.manager.handle(decoded.msg, { ...udpPeer(rinfo.address, rinfo.port), bytesReceived: msg.length }, this.clock());
    this.apply(out);
  }

  private apply(out: ManagerOutput): void {
    for (const r of out.replies) {
      const bytes = encodeControl(r.message);
      if (r.maxBytes !== undefined && bytes.length > r.maxBytes) {
        this.manager.counters.amplificationSuppressed++;
        continue;
      }
      this.own.repliesSent++;
      this.own.replyBytesSent += bytes.length;
      this.socket?.send(bytes, r.to.port, r.to.address, (err) => {
        if (err) {
          this.own.replySendErrors++;
          this.log.debug({ code: (err as NodeJS.ErrnoException).code }, 'control reply not sent');
        }
      });
    }
    const rep = this.replicator;
    if (rep) {
      for (const c of out.commands) {
        switch (c.kind) {
          case 'addDestinations':
            for (const d of c.destinations) this.safely(() => rep.addDestination(c.tsi, unmapIPv4(d.address), d.port));
            break;
          case 'removeDestinations':
            for (const d of c.destinations) this.safely(() => rep.removeDestination(c.tsi, unmapIPv4(d.address), d.port));
            break;
          case 'sendFresh':
            this.sendFresh(c.tsi, c.destination, c.lost);
            break;
        }
      }
    }
    for (const e of out.events) {
      const who = { address: e.client.address, port: e.client.port, channels: e.channels };
      if (e.kind === 'joined' || e.kind === 'renewed') this.log.info({ ...who, expiresAtMs: e.expiresAtMs, ack: e.ack }, e.kind);
      else this.log.info(who, e.kind);
      this.emit(e.kind, e);
    }
  }

  private sendFresh(tsi: number, to: Peer, lost: number[]): void {
    const ch = this.byTsi.get(tsi);
    const rep = this.replicator;
    if (!ch || !rep) return;
    const address = unmapIPv4(to.address);
    for (const p of ch.stream.freshPackets(lost)) this.safely(() => rep.sendTo(address, to.port, p, tsi));
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
