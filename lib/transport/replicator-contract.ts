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
