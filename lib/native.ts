/**
 * The only module that loads the native addon (rqcast.node). It finds the
 * addon with node-gyp-build from the package root: build/Release when built
 * from source, else prebuilds/<platform>-<arch>/ (prebuildify --napi).
 *
 * It exports the raw binding as TypeScript interfaces; everything else in
 * lib/ receives these interfaces (and can be tested against fakes). Raw
 * errors carry `.code` (and `.status` for codec statuses); lib/errors.ts
 * turns them into typed classes.
 */
import * as path from 'path';

/** RFC 6330 §3.3.2-3 OTI fields. */
export interface RawOti {
  F: number;
  T: number;
  Z: number;
  N: number;
  Al: number;
}

/** The per-object layout of RFC 6330 §4.4.1.2. TL/TS are in units of Al. */
export interface RawLayout extends RawOti {
  Kt: number;
  KL: number;
  KS: number;
  ZL: number;
  ZS: number;
  TL: number;
  TS: number;
  NL: number;
  NS: number;
}

/** RFC 6330 §5.6 Table 2 row (with derived values). */
export interface RawSystematicParams {
  Kprime: number;
  J: number;
  S: number;
  H: number;
  W: number;
  L: number;
  P: number;
  P1: number;
  U: number;
  B: number;
}

export interface RawTuple {
  d: number;
  a: number;
  b: number;
  d1: number;
  a1: number;
  b1: number;
}

export interface RawPartition {
  IL: number;
  IS: number;
  JL: number;
  JS: number;
}

export interface RawEncoder {
  layout(): RawLayout;
  sourceSymbols(sbn: number): number;
  blockLength(sbn: number): number;
  prepareBlock(sbn: number): void;
  releaseBlock(sbn: number): void;
  packet(sbn: number, esi: number): Buffer;
  packets(sbn: number, firstEsi: number, count: number): Buffer;
  packetsInto(sbn: number, firstEsi: number, count: number, out: Uint8Array, offset: number): number;
  packetsWithHeader(
    out: Uint8Array,
    offset: number,
    header: Uint8Array,
    seqAt: number,
    firstSeq: number,
    sbn: number,
    firstEsi: number,
    count: number,
  ): number;
  isPrepared(sbn: number): boolean;
  blockMemory(sbn: number): number;
  prepareBlocksAsync(sbns: number[]): Promise<void>;
  close(): void;
}

export interface RawBatchResult {
  /** Valid packets, duplicates included. */
  accepted: number;
  /** Malformed packets skipped (skipInvalid mode). */
  rejected: number;
  /** Blocks that became decoded during this batch. */
  blocksDecoded: number;
  complete: boolean;
  /** Code of the first malformed packet, if any. */
  firstError?: string;
  firstErrorIndex?: number;
}

export interface RawDecoder {
  layout(): RawLayout;
  push(packet: Uint8Array): boolean;
  pushBatch(buf: Uint8Array, packetSize: number, skipInvalid: boolean): RawBatchResult;
  pushArray(packets: Uint8Array[], skipInvalid: boolean): RawBatchResult;
  pushBatchAsync(buf: Uint8Array, packetSize: number, skipInvalid: boolean): Promise<RawBatchResult>;
  pushArrayAsync(packets: Uint8Array[], skipInvalid: boolean): Promise<RawBatchResult>;
  addPackets(buf: Uint8Array, offsets: Uint32Array, count: number): number;
  solveAsync(sbns: Uint32Array): Promise<RawBatchResult>;
  solve(sbns: Uint32Array): void;
  blockDecoded(sbn: number): boolean;
  blockReleased(sbn: number): boolean;
  blocksDecoded(): number;
  complete(): boolean;
  received(): Uint32Array;
  copyBlock(sbn: number): Buffer;
  takeBlock(sbn: number): Buffer;
  releaseBlock(sbn: number): void;
  /** A whole Buffer from takeBlock given back: detached, its memory to the codec's cache at once. */
  returnBlock(data: Uint8Array): void;
  returnedBlocks(): number;
  discardBlock(sbn: number): boolean;
  heldBytes(sbn: number): number;
  result(): Buffer;
  close(): void;
}

export interface RawCodecBinding {
  /** From memory, or from the file open on fd (duplicated; the caller keeps its fd). */
  Encoder: new (data: Uint8Array | number, oti: Uint8Array) => RawEncoder;
  Decoder: new (oti: Uint8Array) => RawDecoder;
  rfcRand(y: number, i: number, m: number): number;
  rfcDeg(v: number, W: number): number;
  rfcTuple(K: number, X: number): RawTuple;
  systematicParams(K: number): RawSystematicParams;
  rfcPartition(I: number, J: number): RawPartition;
  otiEncode(F: number, T: number, Z: number, N: number, Al: number): Buffer;
  /** [F, T, Z, N, Al], every bound checked. */
  otiDecode(oti: Uint8Array): Float64Array;
  /** [F, T, Z, N, Al, Kt, KL, KS, ZL, ZS, TL, TS, NL, NS] (one typed array: cheaper than an object). */
  otiLayout(oti: Uint8Array): Float64Array;
  otiDerive(F: number, payloadSize: number, Al: number, SS: number, WS: number): RawOti;
  /**
   * Tests only: encoding symbols firstEsi.. (count * T bytes) of a block of
   * K source symbols, from a fresh encoding plan replayed op by op (no
   * plan cache, no fused replay): what the cached path must equal.
   */
  referenceSymbols(source: Uint8Array, K: number, T: number, firstEsi: number, count: number): Buffer;
  /** Stable code of every codec Status, indexed by its numeric value. */
  statusCodes(): string[];
  gf256Kernel(): string;
  gf256Kernels(): string[];
  setGf256Kernel(name: string): void;
  /** native/packet's LCT header template: no EXT_FDT for fdtInstanceId -1, no EXT_FTI for oti null; seqAt -1 without EXT_RQSEQ. */
  lctHeaderTemplate(tsi: number, toi: number, fdtInstanceId: number, oti: Uint8Array | null, withSeq: boolean): { bytes: Buffer; seqAt: number };
  /** Process-wide counts of block buffers (native/fec/symbol_buffer.h), read and optionally reset; trim first empties the buffer cache. */
  symbolBufferCounters(reset?: boolean, trim?: boolean): RawSymbolBufferCounters;
}

/**
 * Block buffers of 64 KiB and more (source blocks, work buffers): taken
 * fresh from the system (memory the kernel zeroes as it is first touched),
 * reused from the codec's cache, freed back to the system; bytes cached now.
 */
export interface RawSymbolBufferCounters {
  fresh: number;
  freshBytes: number;
  reused: number;
  reusedBytes: number;
  freed: number;
  freedBytes: number;
  cachedBytes: number;
}

export interface RawReplicatorOptions {
  gso?: boolean;
  sendBufferBytes?: number;
}

/** Per-channel counters of the replication engine (native/replicate). */
export interface RawReplicatorChannelStats {
  streamPackets: number;
  datagrams: number;
  bytes: number;
  syscalls: number;
  gsoSends: number;
  dropsEagain: number;
  dropsEnobufs: number;
  errors: number;
  oneOffs: number;
  /** Stream packets copied into TCP connections' pools, and their bytes (each connection counted). */
  tcpPackets: number;
  tcpBytes: number;
  destinations: number;
  /** Multicast groups of the channel (0 or 1). */
  groups: number;
  queued: number;
}

export interface RawReplicatorStats {
  gsoActive: boolean;
  gsoSupported: boolean;
  gsoFallbacks: number;
  syscalls: number;
  oneOffs: number;
  oneOffErrors: number;
  commands: number;
}

/** native/napi/replicator.cc: one engine, its sender thread and sockets. */
export interface RawReplicator {
  createChannel(id: number, slotSize: number, capacity: number, lowWater: number, rateBytesPerSec: number, burstBytes: number): void;
  removeChannel(id: number): void;
  addDestination(id: number, address: string, port: number): void;
  removeDestination(id: number, address: string, port: number): void;
  clearDestinations(id: number): void;
  /**
   * The channel's multicast group, on a socket of its own: ttl 0..255,
   * loop = IP(V6)_MULTICAST_LOOP, iface a name, an index or (IPv4) an
   * address of the outgoing interface, source the address the socket binds
   * to ('' or undefined: none). One group per channel (ERR_RQ_GROUP_EXISTS).
   */
  addGroup(id: number, group: string, port: number, ttl: number, loop: boolean, iface?: string, source?: string): void;
  /** A channel without a group is left as it is. */
  removeGroup(id: number): void;
  /** burstBytes 0 = the default for the rate. */
  setRate(id: number, rateBytesPerSec: number, burstBytes: number): void;
  setPaused(id: number, paused: boolean): void;
  push(id: number, packets: Uint8Array, packetSize: number, count: number): number;
  sendTo(address: string, port: number, data: Uint8Array, id?: number): void;
  channelStats(id: number): RawReplicatorChannelStats;
  stats(): RawReplicatorStats;
  /** Blocks until the sender thread has acted on every earlier call. */
  barrier(): void;
  close(): void;
}

export interface RawReplicatorBinding {
  /** onLowWater runs on the JS thread with every channel id signalled since its last call. */
  Replicator: new (options: RawReplicatorOptions, onLowWater: (channelIds: number[]) => void) => RawReplicator;
}

export interface RawUdpReceiverStats {
  datagrams: number;
  bytes: number;
  batches: number;
  truncated: number;
  errors: number;
  /** UDP_GRO accepted by the kernel. */
  gro: boolean;
  /** Messages that arrived coalesced (several datagrams of one GSO send), split back natively. */
  coalesced: number;
}

/** native/napi/receiver.cc: a bound UDP socket read by a native thread with recvmmsg. */
export interface RawUdpReceiver {
  /** false: the send buffer was full and the datagram dropped. */
  send(data: Uint8Array, address: string, port: number): boolean;
  localAddress(): { address: string; port: number; family: 'IPv4' | 'IPv6' };
  /** Any-source membership, or source-specific with `source`; idempotent. '' or undefined: not given. */
  addMembership(group: string, iface?: string, source?: string): void;
  /** Leaving a group (or source) not joined is a no-op. */
  dropMembership(group: string, iface?: string, source?: string): void;
  stats(): RawUdpReceiverStats;
  /** The gather window from the next receive on, in µs (0..1 000 000); absent in addons that predate it. */
  setGatherMicros?(gatherMicros: number): void;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface RawUdpReceiverBinding {
  /**
   * onBatch gets the datagrams packed end to end, their lengths, and one
   * 20-byte source record each (family 4|6, 0, port big-endian, 16 address
   * bytes), plus how many over-long datagrams were dropped.
   */
  UdpReceiver: new (
    address: string,
    port: number,
    receiveBufferBytes: number,
    maxDatagram: number,
    batch: number,
    onBatch: (data: Buffer, lengths: Uint32Array, sources: Buffer, truncated: number) => void,
    /** Gather window in µs (0: hand over what one recvmmsg got at once). */
    gatherMicros?: number,
    /** SO_REUSEADDR before the bind: other sockets may bind the same address and port. */
    reuseAddress?: boolean,
  ) => RawUdpReceiver;
}

/** Options of a user-space TCP server (native/tcp, IPv4 only). */
export interface NativeTcpServerOptions {
  /** Numeric IPv4 the clients connect to; '0.0.0.0' = any local address. */
  address: string;
  /** 1..65535. */
  port: number;
  /** Default 4096. */
  maxConnections?: number;
  /** Connections still in SYN-RECEIVED; default 1024. */
  maxHalfOpen?: number;
  /** Default 1460 (clamped to 536..65495). */
  mss?: number;
  /** Stream packets held per connection; default 256. */
  poolPackets?: number;
  /** Unsent framed control bytes per connection; default 1 MiB, then the connection is aborted. */
  maxControlBytes?: number;
  /**
   * Segments per GSO packet at most (0..64, default 64): a connection whose
   * SYN came over Ethernet sends through an AF_PACKET socket, runs of
   * equal-length segments as one GSO packet the kernel cuts; 0: every
   * segment through the routed IPPROTO_RAW socket.
   */
  gsoSegments?: number;
}

export type NativeTcpEvent =
  | { type: 'open'; id: number; address: string; port: number }
  /** In-order stream bytes (the client's frames, unparsed). */
  | { type: 'data'; id: number; bytes: Buffer }
  | { type: 'close'; id: number; reason: 'normal' | 'reset' | 'timeout' | 'aborted' | 'protocol' };

export interface NativeTcpConnectionStats {
  id: number;
  state: string;
  segmentsSent: number;
  bytesSent: number;
  retransmittedSegments: number;
  fastRetransmits: number;
  rtoTimeouts: number;
  freshFrames: number;
  staleFrames: number;
  poolEvicted: number;
  segmentsReceived: number;
  cwnd: number;
  srttUs: number;
  rtoMs: number;
  /** Stream packets waiting in the connection's pool. */
  poolQueued?: number;
  /** Framed control bytes not yet sent. */
  controlBytes?: number;
}

export interface NativeTcpServerStats {
  connections: number;
  halfOpen: number;
  accepted: number;
  /** SYNs dropped: maxConnections or maxHalfOpen reached. */
  refused: number;
  resetsSent: number;
  segmentsIn: number;
  segmentsOut: number;
  badSegments: number;
  sendErrors: number;
  freshFrames: number;
  staleFrames: number;
  retransmittedSegments: number;
  poolEvicted: number;
  /** RSTs not sent: over the server's budget (1000/s). */
  resetsSuppressed?: number;
  /** Segments dropped unanswered: RSTs of no connection, not for us, impossible peers. */
  ignored?: number;
  receiveErrors?: number;
  /** Packets to or from 127/8 that came in on a device other than loopback (dropped). */
  martians?: number;
  /** Control packets refused (the connection was aborted). */
  controlRefused?: number;
  /** Peer bytes read natively, not yet handed to onEvents. */
  pendingData?: number;
  /** Packets handed to the kernel, both paths (a GSO packet counts once). */
  packetsOut?: number;
  /** Of those, GSO packets (two segments or more), and the segments the packet path carried in all. */
  gsoPackets?: number;
  gsoSegments?: number;
  /** Whether the packet (GSO) path is on; if not, the errno that turned it off (0: turned off by gsoSegments 0). */
  packetPath?: boolean;
  packetPathError?: number;
}

/** native/napi/tcp_server.cc: a user-space TCP server on raw sockets, fed by a Replicator's channels. */
export interface NativeTcpServer {
  /** Opens the sockets, starts the thread; throws an Error whose .code is the errno's name (EPERM, EADDRINUSE, EADDRNOTAVAIL, EINVAL). */
  start(): void;
  /** One control packet (1..65535 bytes); the native side frames it; false if the connection is gone. */
  send(id: number, packet: Uint8Array): boolean;
  /** The connection gets the replicator channel's stream; ERR_RQ_UNKNOWN_CHANNEL for no such channel; a gone connection is a no-op. */
  addMember(channel: number, id: number): void;
  removeMember(channel: number, id: number): void;
  /** Graceful: queued control frames, then FIN. */
  close(id: number): void;
  /** RST. */
  abort(id: number): void;
  stats(): NativeTcpServerStats;
  connectionStats(id: number): NativeTcpConnectionStats | undefined;
  /** Aborts every connection (RST, no close events), joins the thread; idempotent; a stopped server does not start again. */
  stop(): void;
}

export interface NativeTcpServerBinding {
  /**
   * replicator: the native Replicator object whose channels connections join.
   * onEvents runs on the JS thread with every event raised since its last call, in order per connection.
   */
  TcpServer: new (
    replicator: RawReplicator,
    options: NativeTcpServerOptions,
    onEvents: (events: NativeTcpEvent[]) => void,
  ) => NativeTcpServer;
}

/** native/napi/file_writes.cc. */
export interface RawFileWritesBinding {
  /**
   * Writes ranges [from, to) of `data` (ranges: [from0, to0, from1, to1, …],
   * ascending, disjoint, within data) to the file open on `fd` at
   * position + from, in one thread-pool job. Resolves to the bytes written
   * and the pwrite calls made; rejects like a Node fs write (code ENOSPC, …).
   * The caller keeps the fd open until it settles.
   */
  pwriteRanges(fd: number, data: Uint8Array, position: number, ranges: number[]): Promise<{ bytes: number; calls: number }>;
}

/** Everything rqcast.node exports. Other bindings extend this. */
export type NativeBinding = RawCodecBinding & RawReplicatorBinding & RawUdpReceiverBinding & NativeTcpServerBinding & RawFileWritesBinding;

/** The package root: lib/ (ts-node, jest) and dist/ both sit one below. */
export const packageRoot = path.resolve(__dirname, '..');

let cached: NativeBinding | undefined;

/** Loads the addon once (lazily, so pure-TS modules never need it). */
export function loadNative(): NativeBinding {
  if (cached === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const load = require('node-gyp-build') as (dir: string) => unknown;
    cached = load(packageRoot) as NativeBinding;
  }
  return cached;
}
