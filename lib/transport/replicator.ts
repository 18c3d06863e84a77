/**
 * Replicator: sends each channel's stream of ready packets to every one of
 * the channel's destinations, from native code (native/replicate): one
 * sender thread, sendmmsg batches, UDP GSO where the kernel has it (a run
 * of a channel's packets goes to one destination as one super-datagram),
 * per-channel token-bucket pacing.
 *
 * JS only crosses into native code per batch (push copies many packets into
 * the channel's ring) or per control change; the sender thread reports back
 * per batch too: 'lowWater' names every channel that fell to its low-water
 * mark since the last event, so a producer refills them all in one go. A
 * channel is named once per refill: after a push that was accepted, the
 * first time its queue falls to lowWater (so prime a new channel with a
 * push; a channel without destinations holds its packets and stays quiet).
 *
 * Addresses are numeric; an IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a
 * dual-stack socket names IPv4 peers) is the IPv4 destination.
 *
 * Ordering: a destination added before push(X) receives X, one removed
 * before push(X) does not; packets pushed earlier may go either way (a
 * fountain stream does not care which receiver gets which symbol).
 *
 * Data leaves from the replicator's own sockets (ephemeral ports), not from
 * the server's control port. A channel's multicast group (addGroup) has a
 * socket of its own, bound to the group's source address when one is given.
 *
 * The part of this class the server relies on is ReplicatorContract
 * (replicator-contract.ts); the rest (rates, pause, engine stats) is for
 * tools and benchmarks.
 */
import { EventEmitter } from 'events';
import {
  loadNative,
  type RawReplicator,
  type RawReplicatorBinding,
  type RawReplicatorChannelStats,
} from '../native';
import { boolArgument, callReplicatorNative as call, stringArgument, uintArgument } from './native-call';
import {
  DEFAULT_MULTICAST_LOOP,
  DEFAULT_MULTICAST_TTL,
  type MulticastGroupConfig,
  type ReplicatorChannelConfig,
  type ReplicatorContract,
} from './replicator-contract';

export interface ReplicatorOptions {
  /** Use UDP GSO when the kernel has it (default true). */
  gso?: boolean;
  /** SO_SNDBUF of the replicator's sockets (default 4 MiB). */
  sendBufferBytes?: number;
}

export type ReplicatorChannelStats = RawReplicatorChannelStats;

export interface ReplicatorStats {
  gsoActive: boolean;
  gsoFallbacks: number;
  syscalls: number;
  oneOffs: number;
  oneOffErrors: number;
  commands: number;
}

export interface ReplicatorEvents {
  lowWater: [channelIds: number[]];
}

const DEFAULT_CAPACITY = 4096;

/** Each Replicator's raw engine, for native classes that hang off it (the TCP server's sinks); not part of the class's surface. */
const engines = new WeakMap<object, RawReplicator>();

/**
 * The raw native engine behind `replicator` if it is a Replicator (undefined
 * for anything else, e.g. a test's fake): what the addon's TcpServer takes,
 * so that its connections can be sinks of the engine's channels.
 */
export function nativeEngineOf(replicator: unknown): RawReplicator | undefined {
  return typeof replicator === 'object' && replicator !== null ? engines.get(replicator) : undefined;
}

export class Replicator extends EventEmitter<ReplicatorEvents> implements ReplicatorContract {
  readonly #raw: RawReplicator;
  #closed = false;

  /**
   * Opens the sockets and starts the native sender thread. `binding` is the
   * raw addon (tests may inject another).
   */
  constructor(options: ReplicatorOptions = {}, binding: RawReplicatorBinding = loadNative()) {
    super();
    const onLowWater = (channelIds: number[]): void => {
      if (!this.#closed) this.emit('lowWater', channelIds);
    };
    this.#raw = call(() => new binding.Replicator({ ...options }, onLowWater));
    engines.set(this, this.#raw);
  }

  /** `id` is the channel's TSI. */
  createChannel(id: number, config: ReplicatorChannelConfig): void {
    const capacity = uintArgument(config.capacity, 'capacity', DEFAULT_CAPACITY);
    const lowWater = uintArgument(config.lowWater, 'lowWater', Math.floor(capacity / 4));
    const rate = uintArgument(config.rateBytesPerSec, 'rateBytesPerSec', 0);
    const burst = uintArgument(config.burstBytes, 'burstBytes', 0);
    call(() => this.#raw.createChannel(id, config.slotSize, capacity, lowWater, rate, burst));
  }

  /** Drops the channel and its queued packets. */
  removeChannel(id: number): void {
    call(() => this.#raw.removeChannel(id));
  }

  /** Numeric IPv4/IPv6 address. Adding a present destination is a no-op. */
  addDestination(id: number, address: string, port: number): void {
    call(() => this.#raw.addDestination(id, address, port));
  }

  /** Removing an absent destination is a no-op. */
  removeDestination(id: number, address: string, port: number): void {
    call(() => this.#raw.removeDestination(id, address, port));
  }

  clearDestinations(id: number): void {
    call(() => this.#raw.clearDestinations(id));
  }

  /**
   * Binds channel `channelId` to a multicast group: from the next packet
   * pushed, its stream also goes out once to the group. Throws
   * BadAddressError (not a multicast group; a source that is not a unicast
   * address of this host), NoSuchInterfaceError, GroupExistsError (one group
   * per channel), UnknownChannelError, InvalidArgumentError (port, ttl).
   */
  addGroup(channelId: number, group: MulticastGroupConfig): void {
    const { group: address, port } = group;
    const ttl = group.ttl ?? DEFAULT_MULTICAST_TTL;
    const loop = boolArgument(group.loop, 'loop', DEFAULT_MULTICAST_LOOP);
    const iface = stringArgument(group.interface, 'interface');
    const source = stringArgument(group.source, 'source');
    call(() => this.#raw.addGroup(channelId, address, port, ttl, loop, iface, source));
  }

  /** Stops channel `channelId`'s stream to its group; a channel without a group is left as it is. */
  removeGroup(channelId: number): void {
    call(() => this.#raw.removeGroup(channelId));
  }

  /** 0 = unpaced. Tokens held are kept (capped at the new burst). */
  setRate(id: number, rateBytesPerSec: number, burstBytes?: number): void {
    const burst = uintArgument(burstBytes, 'burstBytes', 0);
    call(() => this.#raw.setRate(id, rateBytesPerSec, burst));
  }

  /** A paused channel keeps its queued packets. */
  setPaused(id: number, paused: boolean): void {
    call(() => this.#raw.setPaused(id, paused));
  }

  /** Copies `count` packets of `packetSize` bytes laid end to end; returns how many fit. */
  push(id: number, packets: Uint8Array, packetSize: number, count: number): number {
    return call(() => this.#raw.push(id, packets, packetSize, count));
  }

  /** One datagram outside the stream (ACK replacement), counted/paced on channel `id` if given. */
  sendTo(address: string, port: number, data: Uint8Array, id?: number): void {
    call(() => (id === undefined ? this.#raw.sendTo(address, port, data) : this.#raw.sendTo(address, port, data, id)));
  }

  /** Counters of one channel (readable after close, until the channel is removed). */
  channelStats(id: number): ReplicatorChannelStats {
    return call(() => this.#raw.channelStats(id));
  }

  stats(): ReplicatorStats {
    const s = call(() => this.#raw.stats());
    return {
      gsoActive: s.gsoActive,
      gsoFallbacks: s.gsoFallbacks,
      syscalls: s.syscalls,
      oneOffs: s.oneOffs,
      oneOffErrors: s.oneOffErrors,
      commands: s.commands,
    };
  }

  /** Idempotent; stops the sender thread (queued packets are dropped). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#raw.close();
  }
}
