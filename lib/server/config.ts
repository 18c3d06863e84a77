/**
 * RqcastServer's configuration: the options, their defaults and checks, and
 * what they turn into — one ChannelStream configuration and one replicator
 * channel per configured channel, and a second of each for a channel with
 * a multicast group (docs/PROTOCOL.md §10.6, §10.10; group-streams.ts).
 * Pure functions and types; server.ts builds the objects.
 */
import type { AckTrackerOptions } from '../session/ack-tracker';
import type { ReplacementBudgetOptions } from '../session/replacement-budget';
import type { BlockPins, ChannelStreamOptions } from '../stream/channel-stream';
import { DEFAULT_FDT_INTERVAL, IN_ORDER_WINDOW, PREPARE_AHEAD_PACKETS, windowFor } from '../stream/channel-stream';
import type { LiveSource } from '../content/live-source';
import { type Catalogue, type CatalogueObject, type FdtObject, wireOti } from '../content/catalogue';
import { type EsiLayout, SymbolAllocator } from '../content/symbol-allocator';
import { checkServerGroup, type ServerGroup, serverGroupLayout } from '../content/server-group';
import type { MulticastGroupConfig, ReplicatorChannelConfig, ReplicatorContract } from '../transport/replicator-contract';
import { type CheckedGroup, checkMulticastGroup, type HostInterfaces } from '../transport/multicast/group-config';
import { InvalidServerConfigError } from '../errors';
import { streamPacketOverhead } from '../protocol/alc';
import { isIPv4 } from 'node:net';
import { randomInt } from 'node:crypto';
import type { HostFilterLike } from '../transport/tcp/host-filter';
import type { NativeTcpServerFactory, NativeTcpServerOptions } from '../transport/tcp/native-tcp-server';
import type { ServedStreamFactory } from '../stream/served-stream';

export const DEFAULT_PORT = 4433;
export const DEFAULT_RATE_MBPS = 100;
export const DEFAULT_CHANNEL = 'main';
/** A channel sends an FDT packet about this often (RqcastServer's fdtInterval). */
export const FDT_PERIOD_MS = 10;
/** ...and the whole FDT instance within this long. */
export const FDT_COMPLETE_MS = 1000;
/**
 * 512 MiB: 28 blocks of 16 MiB (the default RFC 6330 §4.3 block size at
 * T = 1280) beside the one prepared ahead. Half the client's default
 * (lib/client), which holds about twice as much per block while it solves.
 */
export const DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024;

/** Replicator ring slots per channel unless configured. */
const DEFAULT_RING_CAPACITY = 4096;
/** Join timer tick unless configured: a session ends up to this long after its expiry (§10.6). */
const DEFAULT_TICK_MS = 100;
/**
 * LCT header, EXT_RQSEQ and FEC Payload ID of a data packet (docs/PROTOCOL.md
 * §10.3): 24 + T bytes, channel TSIs and object TOIs being small (28 + T
 * once either passes 65535).
 */
const DATA_HEADER_BYTES = streamPacketOverhead(1, 1);

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

export const SILENT_LOGGER: ServerLogger = { info() {}, warn() {}, debug() {}, error() {} };

export interface ChannelConfig {
  /** 1..64 bytes of UTF-8, as JOIN carries it. */
  name: string;
  /** Object names (Content-Location); default every object of the catalogue. */
  objects?: readonly string[];
  /** Pacing rate of the stream in Mbit/s (10^6 bit/s). Default the server's rateMbps. */
  rateMbps?: number;
  /**
   * An IP multicast group the channel is also sent to, as a second stream
   * (docs/PROTOCOL.md §10.10). Checked against this host when the server is
   * constructed (lib/transport/multicast/group-config.ts): a multicast
   * group, port 1..65535, TTL 0..255 (default 1), an interface of this host
   * (name or address), a source that is a unicast address of this host of
   * the group's family (default: the interface's address, else `host` when
   * it is not a wildcard, else none).
   */
  multicast?: MulticastGroupConfig;
  /**
   * A stream made by the caller instead of one encoded from the catalogue
   * (a relay in forward mode, lib/relay/forward-stream.ts): the channel
   * then has no catalogue object (`objects` must be absent) and no group.
   */
  stream?: ServedStreamFactory;
  /** Ring slots of the channel (default the server's ringCapacity): a forward stream keeps its ring short. */
  ringCapacity?: number;
}

/**
 * The TCP transport (issue 9): the native TCP server on an IPv4 address
 * and port of this host, beside the UDP control port (docs/PROTOCOL.md,
 * TCP). Needs CAP_NET_RAW (its raw sockets) and CAP_NET_ADMIN (its
 * nftables drop rule, lib/transport/tcp/host-filter.ts).
 */
export interface TcpServerConfig {
  /**
   * Numeric IPv4 address the clients connect to ('0.0.0.0': every local
   * address). Default: `host` when it is IPv4, else 0.0.0.0 for a wildcard;
   * a specific IPv6 `host` needs an address here (TCP is IPv4 only).
   */
  address?: string;
  /** 1..65535. Default: the control port's number (the one bound, when `port` is 0). */
  port?: number;
  /** Makes the native server. Default: the addon's TcpServer over the server's own native Replicator. */
  createServer?: NativeTcpServerFactory;
  /** Default: the nftables filter for the address and port (tests pass a fake). */
  hostFilter?: HostFilterLike;
  /** The native server's limits (connections, MSS, pool sizes). */
  limits?: Omit<NativeTcpServerOptions, 'address' | 'port'>;
}

/** A live stream served on a channel of its own (issue 10, docs/PROTOCOL.md §10.14). */
export interface LiveChannelConfig {
  /** The stream's name: its channel's name and its objects' prefix (`NAME/seq`). */
  name: string;
  source: LiveSource;
  /** Mbit/s. Default the server's rate. */
  rateMbps?: number;
}

export interface RqcastServerOptions {
  catalogue: Catalogue;
  /** Live streams, each on a channel of its own after the file channels. */
  live?: readonly LiveChannelConfig[];
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
  /**
   * This server's place in a group of servers serving the same objects
   * (lib/content/server-group.ts, docs/PROTOCOL.md "Server groups"): its
   * repair ESIs are disjoint from every other member's. Default: alone.
   */
  serverGroup?: ServerGroup;
  /** Cookie master secret (>= 16 bytes), shared by servers that accept each other's cookies. */
  secret?: Uint8Array;
  cookieRotationMs?: number;
  cookieLifetimeMs?: number;
  maxTtlMs?: number;
  maxChannelsPerClient?: number;
  /** Most sessions one IPv4 address or IPv6 /64 may hold at once. Default 64 (ClientManager). */
  maxSessionsPerAddress?: number;
  /** Most spent (LEAVE) cookies remembered until they expire. Default 32768 (ClientManager). */
  spentCookies?: number;
  ack?: AckTrackerOptions;
  /** Shares of a channel's packet rate ACK replacements may take (ClientManager). */
  replacements?: ReplacementBudgetOptions;
  /**
   * SO_RCVBUF asked for the UDP control socket. Default 4 MiB
   * (net.core.rmem_max caps it; the server logs what it got).
   */
  controlReceiveBufferBytes?: number;
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
   * hold, shared equally by the channels. Blocks that fit stay prepared
   * between passes; beyond the share the least recently sent are released
   * and prepared again in their next pass (BlockCache). Default 512 MiB.
   */
  memoryBytes?: number;
  /** Packets per block per pass of a sliding window beyond K, as a fraction of K. Default 0.15. */
  passOverhead?: number;
  /**
   * Where each object's repair ESIs start (coded mode, docs/PROTOCOL.md
   * §10.4): 'zero' (default) at the first repair ESI, so a run is
   * reproducible; 'random' at a random point of each block's repair class,
   * drawn per object at each start, so that a restarted server does not
   * resend the repair symbols its previous run sent (`rqcast serve` does).
   */
  repairStart?: 'zero' | 'random';
  /**
   * Blocks per channel sent round-robin at once (the sliding window of
   * ChannelStream). Default IN_ORDER_WINDOW (1): blocks in order, each
   * block its pass quota before the next, so that a receiver decodes them
   * in order (progressive playout); never more than fit memoryBytes.
   */
  windowBlocks?: number;
  clock?: () => number;
  logger?: ServerLogger;
  /** This host's interfaces, against which multicast interfaces and sources are checked. Default os.networkInterfaces (tests inject others). */
  networkInterfaces?: HostInterfaces;
  /** Also serve over TCP (absent: UDP only). */
  tcp?: TcpServerConfig;
}

/** A configured channel, checked: channel i (1-based, in configuration order) has TSI i (§10.6). */
export interface ChannelPlan {
  name: string;
  tsi: number;
  objects: readonly CatalogueObject[];
  rateMbps: number;
  /** Its group, checked, with the defaults applied; absent: unicast only. */
  multicast?: CheckedGroup;
  /** ChannelConfig.stream. */
  stream?: ServedStreamFactory;
  ringCapacity?: number;
}

/** The options with their defaults applied, checked. */
export interface ServerPlan {
  noCode: boolean;
  /** The group, checked (a server alone: index 0 of 1). */
  serverGroup: ServerGroup;
  /** The objects' ESI layout (serverGroupLayout); undefined: the default. */
  esiLayout?: EsiLayout;
  ringCapacity: number;
  memoryBytes: number;
  /** Each stream's share of memoryBytes (a channel with a group has two streams). */
  memoryShare: number;
  host: string;
  port: number;
  tickIntervalMs: number;
  prepare: boolean;
  channels: ChannelPlan[];
  /** The TCP transport's address and port (port undefined: the control port's number, known once bound). */
  tcp?: { address: string; port?: number };
}

/** Applies the defaults and checks every option the server itself interprets. Throws InvalidServerConfigError. */
export function planServer(options: RqcastServerOptions): ServerPlan {
  const ringCapacity = options.ringCapacity ?? DEFAULT_RING_CAPACITY;
  if (!Number.isInteger(ringCapacity) || ringCapacity < 16) throw new InvalidServerConfigError('ringCapacity must be an integer >= 16');
  const liveOnly = options.catalogue.objects.length === 0 && (options.live?.length ?? 0) > 0;
  const configs = options.channels ?? (liveOnly ? [] : [{ name: DEFAULT_CHANNEL }]);
  if (configs.length === 0 && !liveOnly) throw new InvalidServerConfigError('at least one channel');
  const memoryBytes = options.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  if (!(Number.isFinite(memoryBytes) && memoryBytes >= 0)) throw new InvalidServerConfigError('memoryBytes must be >= 0');
  const host = options.host ?? '0.0.0.0';
  const channels = planChannels(options.catalogue, configs, options.rateMbps, { bindHost: host, interfaces: options.networkInterfaces });
  // A group stream has a window of its own over the same objects (its
  // schedule is its own): it takes a share like any stream.
  const streams = channels.length + channels.filter((c) => c.multicast !== undefined).length;
  const noCode = options.noCode ?? false;
  const serverGroup = checkServerGroup(options.serverGroup ?? { index: 0, servers: 1 });
  const channelNames = new Set(channels.map((c) => c.name));
  for (const l of options.live ?? []) {
    const bytes = Buffer.byteLength(l.name, 'utf8');
    if (bytes < 1 || bytes > 64) throw new InvalidServerConfigError(`live stream "${l.name}": a channel name is 1..64 bytes of UTF-8`);
    // Checked here, before any FDT lists the channels (rq:Channel names are unique).
    if (channelNames.has(l.name)) throw new InvalidServerConfigError(`live stream "${l.name}": a channel has that name already; choose another NAME`);
    channelNames.add(l.name);
  }
  if (serverGroup.servers > 1 && (options.live?.length ?? 0) > 0) {
    // Each server cuts its input into segments of its own: members would not send the same objects.
    throw new InvalidServerConfigError('a live stream is served by one server alone, not by a server group (--servers): each server cuts its own segments');
  }
  const esiLayout = serverGroupLayout(serverGroup, noCode);
  return {
    noCode,
    serverGroup,
    ...(esiLayout ? { esiLayout } : {}),
    ringCapacity,
    memoryBytes,
    memoryShare: memoryBytes / streams,
    host,
    port: options.port ?? DEFAULT_PORT,
    tickIntervalMs: options.tickIntervalMs ?? DEFAULT_TICK_MS,
    prepare: options.prepare ?? true,
    channels,
    ...(options.tcp ? { tcp: planTcp(options.tcp, host) } : {}),
  };
}

/** The TCP transport's address (IPv4 only) and port, checked. */
export function planTcp(tcp: TcpServerConfig, host: string): { address: string; port?: number } {
  let address = tcp.address;
  if (address === undefined) {
    if (isIPv4(host)) address = host;
    else if (host === '::') address = '0.0.0.0';
    else throw new InvalidServerConfigError('TCP is IPv4 only: give the TCP transport an IPv4 address (serve --tcp ADDR:PORT)');
  }
  if (!isIPv4(address)) throw new InvalidServerConfigError('TCP is IPv4 only: its address must be a numeric IPv4 address');
  if (tcp.port !== undefined && !(Number.isInteger(tcp.port) && tcp.port >= 1 && tcp.port <= 0xffff)) {
    throw new InvalidServerConfigError('the TCP port must be 1..65535');
  }
  return tcp.port === undefined ? { address } : { address, port: tcp.port };
}

function planChannels(
  catalogue: Catalogue,
  configs: readonly ChannelConfig[],
  defaultRateMbps: number | undefined,
  host: { bindHost: string; interfaces?: HostInterfaces },
): ChannelPlan[] {
  const names = new Set<string>();
  return configs.map((c, i) => {
    const bytes = Buffer.byteLength(c.name, 'utf8');
    if (bytes < 1 || bytes > 64) throw new InvalidServerConfigError('a channel name is 1..64 bytes of UTF-8');
    if (names.has(c.name)) throw new InvalidServerConfigError(`two channels are named ${c.name}`);
    names.add(c.name);
    if (c.stream && (c.objects !== undefined || c.multicast !== undefined)) throw new InvalidServerConfigError(`channel ${c.name}: a stream of its own has no catalogue objects and no group`);
    const objects = c.stream ? [] : (c.objects ?? catalogue.objects.map((o) => o.name)).map((n) => {
      const o = catalogue.get(n);
      if (!o) throw new InvalidServerConfigError(`channel ${c.name}: no object named ${n}`);
      return o;
    });
    if (c.ringCapacity !== undefined && !(Number.isInteger(c.ringCapacity) && c.ringCapacity >= 16)) throw new InvalidServerConfigError(`channel ${c.name}: ringCapacity must be an integer >= 16`);
    if (objects.length === 0 && !c.stream) throw new InvalidServerConfigError(`channel ${c.name} has no objects`);
    const rateMbps = c.rateMbps ?? defaultRateMbps ?? DEFAULT_RATE_MBPS;
    if (!(Number.isFinite(rateMbps) && rateMbps > 0)) throw new InvalidServerConfigError('rate must be a positive number of Mbit/s');
    const plan: ChannelPlan = { name: c.name, tsi: i + 1, objects, rateMbps, ...(c.stream ? { stream: c.stream } : {}), ...(c.ringCapacity ? { ringCapacity: c.ringCapacity } : {}) };
    if (c.multicast !== undefined) plan.multicast = checkMulticastGroup(c.multicast, { ...host, what: `channel ${c.name}` });
    return plan;
  });
}

/** A live channel's rate: its own, else the server's, else the default. */
export function liveRateMbps(live: LiveChannelConfig, options: RqcastServerOptions): number {
  return live.rateMbps ?? options.rateMbps ?? DEFAULT_RATE_MBPS;
}

/**
 * Where each object's ESIs come from (docs/PROTOCOL.md §10.4). Coded: one
 * allocator per object, shared by every channel (no symbol sent twice),
 * with the server group's layout when there is one (`layout`). No-code:
 * one carousel per (channel, object). A shared carousel would split each
 * block's source symbols between the channels, and channels taking turns
 * in step could leave a one-channel client without some of them forever.
 * `repairStart` 'random' starts each block's repair counter at a random
 * point of its class (a restarted server does not repeat its repair ESIs).
 */
export function symbolAllocators(noCode: boolean, layout?: EsiLayout, repairStart: 'zero' | 'random' = 'zero'): (o: CatalogueObject) => SymbolAllocator {
  const mode = noCode ? 'carousel' : 'coded';
  const shared = new Map<CatalogueObject, SymbolAllocator>();
  return (o) => {
    if (noCode) return SymbolAllocator.forEncoder(o.encoder, mode);
    let a = shared.get(o);
    if (!a) {
      // 2^47 > any block's repair ESI count (< 2^24) many times over: the start is uniform enough.
      const start = repairStart === 'random' ? { repairStart: randomInt(2 ** 47) } : {};
      shared.set(o, (a = SymbolAllocator.forEncoder(o.encoder, mode, { ...layout, ...start })));
    }
    return a;
  };
}

/** Stream packets per second of a channel at `rateMbps` with symbols of `symbolSize` bytes. */
export function packetsPerSecond(rateMbps: number, symbolSize: number): number {
  return (rateMbps * 1e6) / 8 / (DATA_HEADER_BYTES + symbolSize);
}

/** The ChannelStream of a planned channel whose FDT instance is `fdt`. */
export function channelStreamOptions(
  options: RqcastServerOptions,
  plan: ServerPlan,
  channel: ChannelPlan,
  fdt: FdtObject,
  allocatorOf: (o: CatalogueObject) => SymbolAllocator,
  pins: BlockPins,
): ChannelStreamOptions {
  const costs: number[] = [];
  for (const o of channel.objects) for (let sbn = 0; sbn < o.encoder.sourceBlocks; sbn++) costs.push(o.encoder.blockMemory(sbn));
  const fdtSymbols = fdt.encoder.layout.totalSymbols;
  return {
    tsi: channel.tsi,
    objects: channel.objects.map((o) => ({ toi: o.toi, encoder: o.encoder, allocator: allocatorOf(o) })),
    fdt: {
      instanceId: fdt.instanceId,
      encoder: fdt.encoder,
      allocator: SymbolAllocator.forEncoder(fdt.encoder, plan.noCode ? 'carousel' : 'coded'),
      oti: wireOti(fdt.encoder.otiInfo),
    },
    fdtInterval: options.fdtInterval ?? fdtIntervalFor(packetsPerSecond(channel.rateMbps, options.catalogue.symbolSize), fdtSymbols),
    symbolsPerTurn: options.symbolsPerTurn,
    windowBlocks: options.windowBlocks ?? Math.min(IN_ORDER_WINDOW, windowFor(costs, plan.memoryShare)),
    passOverhead: options.passOverhead,
    // Small blocks are pinned ahead far enough that none waits for a preparation (schedule.ts).
    prepareAheadPackets: PREPARE_AHEAD_PACKETS,
    pins,
    // Members' NEED reports end passes early (docs/PROTOCOL.md §7a); without reports, fixed passes.
    needs: true,
    // A newcomer to a stream nobody was on gets its blocks in order (§10.3).
    restartOnFirstMember: true,
  };
}

/**
 * The replicator channel of a planned channel's stream (unicast or group):
 * a ring of `ringCapacity` slots, refilled at a quarter full, paced at the
 * channel's rate counted once per stream packet whatever the number of
 * members (§10.6).
 */
export function replicatorChannelConfig(plan: ServerPlan, channel: ChannelPlan, slotSize: number): ReplicatorChannelConfig {
  return {
    slotSize,
    capacity: channel.ringCapacity ?? plan.ringCapacity,
    lowWater: Math.floor((channel.ringCapacity ?? plan.ringCapacity) / 4),
    rateBytesPerSec: Math.round((channel.rateMbps * 1e6) / 8),
  };
}
