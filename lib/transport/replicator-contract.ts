/**
 * The replicator contract: what the server (and the transports it hands
 * peers to) may ask of the data-plane engine, stated once. `Replicator`
 * (replicator.ts, over native/replicate) implements it; tests implement it
 * with fakes that record calls or forward packets with dgram. The binding's
 * own raw type stays `RawReplicator` in lib/native.ts.
 *
 * A channel is keyed by its TSI: a ring of ready packets, paced, copied to
 * each of the channel's destinations. The producer primes a channel with a
 * push and refills it on 'lowWater', which names every channel that fell to
 * its low-water mark since the last event (one event per batch, never one
 * per packet).
 *
 * Destinations are UDP endpoints with numeric addresses, the engine's own
 * terms; turning a session's Peer into one is the UDP transport's job
 * (transport/udp/server-transport.ts).
 *
 * A channel may also have one IP multicast group (addGroup): its stream
 * then goes out once more, to the group, whatever the number of receivers
 * there. The server gives a channel's group stream a replicator channel of
 * its own (id 0x80000000 | TSI), so its counters are the group's.
 */

export interface ReplicatorChannelConfig {
  /** Largest packet in bytes. */
  slotSize: number;
  /** Ring slots (default 4096; rounded up to a power of two). */
  capacity?: number;
  /** 'lowWater' fires at or below this many queued (default capacity/4). */
  lowWater?: number;
  /** 0/undefined = unpaced. */
  rateBytesPerSec?: number;
  /** Token bucket depth (default: 5 ms of the rate, at least two slots). */
  burstBytes?: number;
}

/** The per-channel counters every replicator reports (the native one reports more). */
export interface ReplicatorChannelCounters {
  /** Packets in the ring, not yet sent. */
  queued: number;
  destinations: number;
  /** Ring packets sent, each counted once whatever the number of destinations. */
  streamPackets: number;
  datagrams: number;
  bytes: number;
  /** Datagrams dropped because the socket's send buffer stayed full (EAGAIN) or the kernel had no buffers (ENOBUFS); absent: not counted. */
  dropsEagain?: number;
  dropsEnobufs?: number;
  /** Datagrams lost to other send errors. */
  errors?: number;
  /** Stream packets copied into TCP connections' pools (each connection counted), and their bytes; absent: no TCP. */
  tcpPackets?: number;
  tcpBytes?: number;
  /** Bytes of the rate the sender thread's stalls took beyond the burst, and of them those paid back later (docs/PROTOCOL.md §10.6); absent: not counted. */
  pacingForfeitedBytes?: number;
  pacingRepaidBytes?: number;
}

/** TTL / hop limit of group packets unless configured: they stay on the link (mc-common, RFC 1112 §6.1). */
export const DEFAULT_MULTICAST_TTL = 1;
/** Multicast loopback unless configured: receivers on the server's own host get the group too. */
export const DEFAULT_MULTICAST_LOOP = true;

/** A channel's multicast group, as the native multicast sink opens it. */
export interface MulticastGroupConfig {
  /** A numeric multicast address: 224.0.0.0/4 (RFC 5771) or ff00::/8 (RFC 4291 §2.7). */
  group: string;
  /** 1..65535. */
  port: number;
  /** IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS, 0..255 (default DEFAULT_MULTICAST_TTL, 1: the local link, RFC 1112 §6.1). */
  ttl?: number;
  /** Whether receivers on this host get the packets (default DEFAULT_MULTICAST_LOOP, true). */
  loop?: boolean;
  /**
   * The interface the packets leave by: IPv4, a local interface address or
   * an interface name (or index); IPv6, an interface name or numeric index.
   * Default: the kernel's choice by route.
   */
  interface?: string;
  /**
   * The address the packets carry as their source (the group's socket binds
   * to it): what source-specific receivers (RFC 4607) filter on. A unicast
   * address of this host, of the group's family. Default: the kernel's choice.
   */
  source?: string;
}

export type LowWaterListener = (channelIds: number[]) => void;

export interface ReplicatorContract {
  /** `id` is the channel's TSI. */
  createChannel(id: number, config: ReplicatorChannelConfig): void;
  /** Drops the channel and its queued packets. */
  removeChannel(id: number): void;
  /** Numeric IPv4/IPv6 address. Adding a present destination is a no-op. */
  addDestination(id: number, address: string, port: number): void;
  /** Removing an absent destination is a no-op. */
  removeDestination(id: number, address: string, port: number): void;
  /**
   * Binds the channel to a multicast group: from the next packet on, its
   * stream also goes to the group, once per packet. One group per channel
   * (GroupExistsError; remove it first to change it). A bad group throws
   * BadAddressError, an unknown interface NoSuchInterfaceError.
   */
  addGroup(channelId: number, group: MulticastGroupConfig): void;
  /** Stops the channel's stream to its group; a channel without a group is left as it is. */
  removeGroup(channelId: number): void;
  /** Copies `count` packets of `packetSize` bytes laid end to end; returns how many fit. */
  push(id: number, packets: Uint8Array, packetSize: number, count: number): number;
  /** One datagram outside the stream (ACK replacement), counted/paced on channel `id` if given. */
  sendTo(address: string, port: number, data: Uint8Array, id?: number): void;
  channelStats(id: number): ReplicatorChannelCounters;
  /** Idempotent; queued packets are dropped. */
  close(): void;
  on(event: 'lowWater', listener: LowWaterListener): unknown;
  off(event: 'lowWater', listener: LowWaterListener): unknown;
}
