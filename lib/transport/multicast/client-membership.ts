/**
 * IP multicast, client side (ClientTransport, kind 'multicast'): one group
 * membership that only receives (docs/PROTOCOL.md §10.10). The channel's
 * session (HELLO, JOIN, renewals) stays on a unicast transport; this one
 * carries the channel's group stream and nothing else, so `carriesControl`
 * is false and sendControl throws.
 *
 * - The socket binds the group's port with SO_REUSEADDR, so that every
 *   receiver on a host (and every channel sharing a port) can bind it, and
 *   binds the group address itself where the kernel allows it, so that
 *   unicast datagrams to that port and other groups' datagrams stay out.
 * - A source announced in JOINED (or `source=` of a flute:// URL) makes the
 *   join source-specific (RFC 4607, MCAST_JOIN_SOURCE_GROUP): the network
 *   and the kernel forward only that source's packets. Without one the
 *   join is any-source (RFC 1112, RFC 2710). Either way, checking each
 *   datagram's source is the owner's job (client/data-path.ts): the
 *   kernel's filter is per socket and per membership, and a socket that
 *   holds none (node's dgram once it has left) gets every source that
 *   another socket of the host let in (Linux IP_MULTICAST_ALL).
 * - leave() and join() may be called any number of times: the socket and
 *   its port stay, only the membership goes and comes back. With the
 *   native receiver (the default) nothing arrives between the two, even
 *   while other sockets of the host stay joined; with dgram datagrams keep
 *   arriving then (membership-socket.ts says why).
 * - What arrives is handed over in batches, each datagram with its source
 *   (the socket seam: membership-socket.ts).
 */
import { isMulticastAddress, addressBytes } from '../../support/address';
import type { ClientTransport, ClientTransportHandler, ClientTransportStats, ServerEndpoint } from '../client-transport';
import { readSocketDrops } from '../udp/client-socket';
import { MembershipClosedError, MembershipGroupError, ReceiveOnlyTransportError } from './membership-errors';
import { LocalInterface, MembershipInterface, resolveMembershipInterface } from './membership-interface';
import {
  MembershipReceiverKind,
  MembershipReceiverOptions,
  MembershipSocket,
  MembershipSocketOpener,
  MembershipTarget,
  membershipSocketOpener,
} from './membership-socket';

/** A group to receive: what JOINED announces for a channel, or what a flute:// URL names. */
export interface MulticastGroupSpec {
  /** Numeric IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) group address. */
  group: string;
  port: number;
  /** The sender's unicast address, for a source-specific join; absent = any source. */
  source?: string;
  /** The interface to join on (membership-interface.ts); absent = the kernel's choice by route. */
  interface?: string;
}

/**
 * `useDgram`, `batch`, `gatherMicros` and `binding` choose and tune the
 * default socket (membershipSocketOpener: the native receiver, else node's
 * dgram); `openSocket` replaces it.
 */
export interface MulticastMembershipOptions extends MembershipReceiverOptions {
  /** SO_RCVBUF asked for. Default 4 MiB. */
  receiveBufferBytes?: number;
  /** The socket under the membership (tests). Default membershipSocketOpener(this). */
  openSocket?: MembershipSocketOpener;
  /** This host's interfaces (tests). Default the system's. */
  interfaces?: LocalInterface[];
}

/** A group checked for a membership: numeric, multicast, with a usable port, source and interface. */
export interface CheckedMembershipGroup {
  group: string;
  port: number;
  family: 4 | 6;
  source?: string;
  interface?: MembershipInterface;
}

/**
 * Checks a group before any socket is opened: MembershipGroupError for a
 * group that is not multicast, a port outside 1..65535, a source that is
 * not a unicast address of the group's family; MembershipInterfaceError
 * for an interface that cannot carry it.
 */
export function checkMembershipGroup(spec: MulticastGroupSpec, interfaces?: LocalInterface[]): CheckedMembershipGroup {
  const g = typeof spec.group === 'string' ? addressBytes(spec.group) : undefined;
  if (!g || !isMulticastAddress(spec.group)) {
    throw new MembershipGroupError(`"${String(spec.group)}" is not a multicast group (IPv4 224.0.0.0/4 or IPv6 ff00::/8)`);
  }
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
    throw new MembershipGroupError(`a group's port is 1..65535, not ${String(spec.port)}`);
  }
  if (spec.source !== undefined) {
    const s = typeof spec.source === 'string' ? addressBytes(spec.source) : undefined;
    if (!s || s.family !== g.family || isMulticastAddress(spec.source) || s.bytes.every((b) => b === 0)) {
      throw new MembershipGroupError(`the source of a group is a unicast IPv${g.family} address, not "${String(spec.source)}"`);
    }
  }
  const itf = spec.interface === undefined ? undefined : resolveMembershipInterface(spec.interface, g.family, interfaces);
  return {
    group: spec.group,
    port: spec.port,
    family: g.family,
    ...(spec.source !== undefined ? { source: spec.source } : {}),
    ...(itf ? { interface: itf } : {}),
  };
}

/**
 * The address the socket binds: the group, so that only its datagrams
 * arrive. An IPv6 group of interface- or link-local scope (RFC 4291 §2.7,
 * scope 1 or 2) is bound with its interface as zone; without an interface
 * the kernel cannot bind it, and the socket takes the wildcard.
 */
export function membershipBindAddress(g: CheckedMembershipGroup): string {
  if (g.family === 4) return g.group;
  const scope = (addressBytes(g.group) as { bytes: Uint8Array }).bytes[1] & 0x0f;
  if (scope > 2) return g.group;
  return g.interface ? `${g.group}%${g.interface.name}` : '::';
}

export class MulticastMembership implements ClientTransport {
  readonly kind = 'multicast';
  readonly carriesControl = false;
  /** A membership reaches no server: this is the group and its port. */
  readonly server: ServerEndpoint;
  private _joined = false;
  private closed = false;
  private _joins = 0;
  private readonly target: MembershipTarget;

  private constructor(
    readonly group: CheckedMembershipGroup,
    private readonly socket: MembershipSocket,
  ) {
    this.server = { address: group.group, port: group.port, family: group.family };
    this.target = { ...(group.interface ? { interface: group.interface } : {}), ...(group.source !== undefined ? { source: group.source } : {}) };
  }

  /** Checks `spec`, binds the group's port and joins the group; throws a MembershipError. */
  static async open(spec: MulticastGroupSpec, handler: ClientTransportHandler, o: MulticastMembershipOptions = {}): Promise<MulticastMembership> {
    const group = checkMembershipGroup(spec, o.interfaces);
    const open = o.openSocket ?? membershipSocketOpener(o);
    let m: MulticastMembership | undefined;
    const socket = await open(
      { family: group.family, address: membershipBindAddress(group), port: group.port, receiveBufferBytes: o.receiveBufferBytes ?? 4 << 20 },
      {
        // Nothing is handed over after close(), nor before open() returns.
        onDatagrams: (d) => {
          if (m && !m.closed) handler.onDatagrams(d);
        },
        onError: (e) => {
          if (m && !m.closed) handler.onError(e);
        },
      },
    );
    m = new MulticastMembership(group, socket);
    try {
      m.join();
    } catch (e) {
      await m.close();
      throw e;
    }
    return m;
  }

  /** The group is joined now. */
  get joined(): boolean {
    return this._joined;
  }

  /** Which receiver reads the socket (undefined: a socket the caller opened itself). */
  get receiver(): MembershipReceiverKind | undefined {
    return this.socket.receiver;
  }

  /** Times the group was joined (the first join included). */
  get joins(): number {
    return this._joins;
  }

  /** Joins the group again after leave(); nothing if joined. Throws MembershipSocketError if the kernel refuses. */
  join(): void {
    if (this.closed) throw new MembershipClosedError();
    if (this._joined) return;
    this.socket.addMembership(this.group.group, this.target);
    this._joined = true;
    this._joins++;
  }

  /**
   * Leaves the group (IGMP/MLD leave); the socket keeps its port, so join()
   * can follow at any time. Nothing if not joined or closed. Datagrams the
   * socket already holds are still handed over.
   */
  leave(): void {
    if (this.closed || !this._joined) return;
    this._joined = false;
    this.socket.dropMembership(this.group.group, this.target);
  }

  localPort(): number {
    return this.socket.port;
  }

  sendControl(_bytes: Uint8Array): void {
    throw new ReceiveOnlyTransportError();
  }

  /**
   * The kernel's count for the group's port (/proc/net/udp, by port: with
   * several receivers of this host bound there, the first one it lists).
   */
  stats(): ClientTransportStats {
    return { socketDrops: this.closed ? 0 : readSocketDrops(this.socket.port, this.group.family) };
  }

  /** Idempotent; leaves the group (closing the socket drops its membership) and hands nothing over once it resolves. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this._joined = false;
    await this.socket.close();
  }
}

/** Opens a membership of `spec` (MulticastMembership.open). */
export function openMulticastMembership(
  spec: MulticastGroupSpec,
  handler: ClientTransportHandler,
  o: MulticastMembershipOptions = {},
): Promise<MulticastMembership> {
  return MulticastMembership.open(spec, handler, o);
}
