/**
 * UdpReceiver: a UDP socket read in batches by a native thread (recvmmsg),
 * handing JS many datagrams per event instead of one 'message' each — the
 * receive side of a fast client. The same socket sends (send()), so one
 * socket carries a client's control messages and its ALC data.
 *
 * When JS falls behind, the native thread stops reading (a bounded queue of
 * batches) and the kernel's receive buffer absorbs, then drops, the excess:
 * memory stays bounded, and to a fountain code a drop is just loss.
 *
 * A receiver may listen to IP multicast groups (addMembership), any-source
 * or source-specific (RFC 4607); bind it to the group's port, with
 * `reuseAddress` when several receivers of this host share that port. Once
 * it joined a group it gets only the groups it joined itself (Linux would
 * otherwise hand a socket bound to a wildcard address every group any
 * socket of the host joined on its port). Each datagram keeps its source.
 */
import { EventEmitter } from 'events';
import { loadNative, type RawUdpReceiver, type RawUdpReceiverBinding, type RawUdpReceiverStats } from '../../native';
import { formatAddress } from '../../support/address';
import { boolArgument, callReplicatorNative as call, stringArgument, uintArgument } from '../native-call';

export interface UdpReceiverOptions {
  /** Numeric address to bind (default '0.0.0.0'; '::' for IPv6). */
  address?: string;
  /** 0 (default) picks an ephemeral port. */
  port?: number;
  /** SO_RCVBUF (default 4 MiB; root lifts net.core.rmem_max). */
  receiveBufferBytes?: number;
  /** Longer datagrams are dropped and counted as truncated (default 65535). */
  maxDatagram?: number;
  /** Most datagrams per recvmmsg and per 'batch' event (default 64). */
  batch?: number;
  /**
   * Gather window in µs (0..1 000 000, default 0): a receive that got fewer
   * than `batch` datagrams waits this long for more before handing them
   * over, so that a paced stream arrives in batches rather than as one
   * wake-up of the native thread and of JS per datagram.
   */
  gatherMicros?: number;
  /**
   * SO_REUSEADDR (default false): other sockets of this host may bind the
   * same address and port, as receivers of one multicast group do; each of
   * them gets every datagram sent to a group it joined.
   */
  reuseAddress?: boolean;
}

/** Where and from whom to listen to a group (UdpReceiver.addMembership). */
export interface MembershipOptions {
  /**
   * The interface to join on: IPv4, an interface name, index or address;
   * IPv6, a name or numeric index. Default: the kernel's choice by route.
   */
  interface?: string;
  /** Source-specific membership (RFC 4607): only this sender's datagrams to the group. */
  source?: string;
}

export type UdpReceiverStats = RawUdpReceiverStats;

const SOURCE_RECORD = 20;

/** The datagrams of one 'batch' event. Views share one buffer: copy what you keep. */
export class DatagramBatch {
  readonly count: number;
  /** Byte offset of each datagram in `data`. */
  readonly offsets: Uint32Array;
  private lastIndex = -1;
  private lastAddress = '';

  constructor(
    /** The datagrams laid end to end. */
    readonly data: Buffer,
    readonly lengths: Uint32Array,
    /** 20 bytes per datagram: family (4|6), 0, port (big-endian), 16 address bytes. */
    readonly sources: Buffer,
    /** Datagrams longer than maxDatagram, dropped. */
    readonly truncated: number,
  ) {
    this.count = lengths.length;
    this.offsets = new Uint32Array(this.count);
    let at = 0;
    for (let i = 0; i < this.count; i++) {
      this.offsets[i] = at;
      at += lengths[i];
    }
  }

  /** Where datagram i starts in `data`. */
  offset(i: number): number {
    return this.offsets[i];
  }

  /** Length of datagram i. */
  length(i: number): number {
    return this.lengths[i];
  }

  /** Datagram i (a view into `data`). */
  datagram(i: number): Buffer {
    const at = this.offsets[i];
    return this.data.subarray(at, at + this.lengths[i]);
  }

  family(i: number): 'IPv4' | 'IPv6' {
    return this.sources[i * SOURCE_RECORD] === 6 ? 'IPv6' : 'IPv4';
  }

  port(i: number): number {
    return this.sources.readUInt16BE(i * SOURCE_RECORD + 2);
  }

  /** Source address of datagram i, numeric (IPv6 without zone). */
  address(i: number): string {
    // Most datagrams of a batch come from one or two senders: reuse the
    // last string when the address bytes are the same.
    if (this.lastIndex >= 0 && this.sameAddress(this.lastIndex, i)) return this.lastAddress;
    const r = i * SOURCE_RECORD;
    const s = formatAddress(this.sources[r] === 6 ? this.sources.subarray(r + 4, r + 20) : this.sources.subarray(r + 4, r + 8));
    this.lastIndex = i;
    this.lastAddress = s;
    return s;
  }

  private sameAddress(a: number, b: number): boolean {
    // Per datagram: a byte loop, cheaper than a call into Buffer.compare.
    const src = this.sources;
    const ra = a * SOURCE_RECORD;
    const rb = b * SOURCE_RECORD;
    if (src[ra] !== src[rb]) return false;
    for (let k = 4; k < SOURCE_RECORD; k++) if (src[ra + k] !== src[rb + k]) return false;
    return true;
  }
}

export interface UdpReceiverEvents {
  batch: [batch: DatagramBatch];
}

function membershipArgs(options: MembershipOptions): { iface?: string; source?: string } {
  return { iface: stringArgument(options.interface, 'interface'), source: stringArgument(options.source, 'source') };
}

export class UdpReceiver extends EventEmitter<UdpReceiverEvents> {
  readonly #raw: RawUdpReceiver;
  #closed = false;

  /** Binds at once (throws typed errors: BadAddressError, ReplicatorSocketError…). */
  constructor(options: UdpReceiverOptions = {}, binding: RawUdpReceiverBinding = loadNative()) {
    super();
    const onBatch = (data: Buffer, lengths: Uint32Array, sources: Buffer, truncated: number): void => {
      if (!this.#closed) this.emit('batch', new DatagramBatch(data, lengths, sources, truncated));
    };
    this.#raw = call(
      () =>
        new binding.UdpReceiver(
          options.address ?? '0.0.0.0',
          uintArgument(options.port, 'port', 0),
          uintArgument(options.receiveBufferBytes, 'receiveBufferBytes', 4 << 20),
          uintArgument(options.maxDatagram, 'maxDatagram', 65535),
          uintArgument(options.batch, 'batch', 64),
          onBatch,
          uintArgument(options.gatherMicros, 'gatherMicros', 0),
          boolArgument(options.reuseAddress, 'reuseAddress', false),
        ),
    );
  }

  /** The bound address and port. */
  address(): { address: string; port: number; family: 'IPv4' | 'IPv6' } {
    return call(() => this.#raw.localAddress());
  }

  /**
   * Joins a multicast group (of the bound address's family): any-source, or
   * source-specific with `source`. Joining again is a no-op. Throws
   * BadAddressError (not a multicast group; a bad source),
   * AddressFamilyError (a group of the other family), NoSuchInterfaceError,
   * InvalidArgumentError (any-source and source-specific membership of one
   * group mixed), ReplicatorSocketError (the kernel refused, e.g. too many
   * memberships).
   */
  addMembership(group: string, options: MembershipOptions = {}): void {
    const { iface, source } = membershipArgs(options);
    call(() => this.#raw.addMembership(group, iface, source));
  }

  /** Leaves a group (or, with `source`, that source of it); leaving what was not joined is a no-op. */
  dropMembership(group: string, options: MembershipOptions = {}): void {
    const { iface, source } = membershipArgs(options);
    call(() => this.#raw.dropMembership(group, iface, source));
  }

  /** Sends one datagram from this socket; false if the send buffer was full (dropped). */
  send(data: Uint8Array, address: string, port: number): boolean {
    return call(() => this.#raw.send(data, address, port));
  }

  stats(): UdpReceiverStats {
    return this.#raw.stats();
  }

  /**
   * Changes the gather window (UdpReceiverOptions.gatherMicros) from the
   * next receive on. False if the addon cannot (it predates the call): the
   * window stays as it was.
   */
  setGatherMicros(gatherMicros: number): boolean {
    const raw = this.#raw;
    if (typeof raw.setGatherMicros !== 'function') return false;
    const us = uintArgument(gatherMicros, 'gatherMicros', 0);
    call(() => raw.setGatherMicros!(us));
    return true;
  }

  /** An unref'd receiver does not keep the process alive (as dgram's unref()). */
  unref(): this {
    this.#raw.unref();
    return this;
  }

  ref(): this {
    this.#raw.ref();
    return this;
  }

  /** Idempotent; stops the receiving thread and closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#raw.close();
  }
}
