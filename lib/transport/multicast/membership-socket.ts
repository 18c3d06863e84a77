/**
 * The socket under a multicast membership (client-membership.ts): bound to
 * the group's port with SO_REUSEADDR (every receiver on a host binds the
 * same port), joined and left on demand, handing over what arrives in
 * batches with each datagram's source.
 *
 * MembershipSocket is the seam: the membership calls nothing else. Two
 * sockets stand behind it, chosen the way udp/client-socket.ts chooses
 * (membershipSocketOpener):
 *
 * - native (the default): UdpReceiver (lib/transport/udp/receiver.ts), read
 *   by a native thread with recvmmsg, many datagrams per JS event (its
 *   DatagramBatch already is a Datagrams). A group stream runs at the same
 *   rates as a unicast one, and one JS event per datagram cannot keep up
 *   with it. It also turns IP(V6)_MULTICAST_ALL off, so that the socket
 *   hears only the groups it joined itself: once it has left, nothing more
 *   arrives, even while another socket of the host (another receiver, or a
 *   second membership of this process) stays joined to the group on the
 *   same port.
 * - dgram: node's own socket, kept for an addon without UdpReceiver
 *   memberships (or when asked, `useDgram`). Node cannot turn
 *   IP_MULTICAST_ALL off, and Linux hands a socket that holds no
 *   membership of a group every datagram of that group that reaches the
 *   host on its address and port: a dgram membership that left goes on
 *   hearing the group as long as any other socket of the host is joined
 *   to it (every source of it, when that other socket joined any-source).
 *   The data path's source and TSI checks still hold, but leave() stops
 *   nothing on this socket while the group stays joined elsewhere on the
 *   host (test/transport/multicast/client-membership.test.ts shows both).
 */
import * as dgram from 'dgram';
import { constants as osConstants } from 'os';
import { loadNative, type NativeBinding } from '../../native';
import type { Datagrams } from '../client-transport';
import { DatagramBatch, UdpReceiver } from '../udp/receiver';
import { MembershipSocketError } from './membership-errors';
import type { MembershipInterface } from './membership-interface';

export interface MembershipSocketOptions {
  family: 4 | 6;
  /** Numeric address to bind: the group itself (only its datagrams reach the socket), or the wildcard. */
  address: string;
  port: number;
  /** SO_RCVBUF asked for (net.core.rmem_max caps it). */
  receiveBufferBytes: number;
}

/** Which membership: the interface (else the kernel's choice by route) and, for a source-specific one (RFC 4607), the source. */
export interface MembershipTarget {
  interface?: MembershipInterface;
  source?: string;
}

export interface MembershipSocketHandler {
  onDatagrams(d: Datagrams): void;
  onError(e: Error): void;
}

/** Which receiver reads a membership's socket. */
export type MembershipReceiverKind = 'native' | 'dgram';

export interface MembershipSocket {
  /** The bound port (the group's). */
  readonly port: number;
  /** Which receiver reads it; absent for a socket of the caller's own (tests). */
  readonly receiver?: MembershipReceiverKind;
  /** IP_ADD_MEMBERSHIP / MCAST_JOIN_SOURCE_GROUP; throws MembershipSocketError. */
  addMembership(group: string, target: MembershipTarget): void;
  /** IP_DROP_MEMBERSHIP / MCAST_LEAVE_SOURCE_GROUP; throws MembershipSocketError. */
  dropMembership(group: string, target: MembershipTarget): void;
  /** Idempotent; nothing is handed over once it resolves. */
  close(): Promise<void>;
}

export type MembershipSocketOpener = (o: MembershipSocketOptions, handler: MembershipSocketHandler) => Promise<MembershipSocket>;

/** The datagrams of one event-loop turn, laid end to end in one buffer. */
class DatagramList implements Datagrams {
  readonly count: number;
  readonly truncated = 0;
  readonly data: Buffer;
  private readonly offsets: number[] = [];

  constructor(
    private readonly messages: Buffer[],
    private readonly sources: dgram.RemoteInfo[],
  ) {
    this.count = messages.length;
    let at = 0;
    for (const m of messages) {
      this.offsets.push(at);
      at += m.length;
    }
    this.data = messages.length === 1 ? messages[0] : Buffer.concat(messages, at);
  }
  offset(i: number): number {
    return this.offsets[i];
  }
  length(i: number): number {
    return this.messages[i].length;
  }
  datagram(i: number): Buffer {
    return this.data.subarray(this.offsets[i], this.offsets[i] + this.messages[i].length);
  }
  address(i: number): string {
    // Datagrams carry no zone (client-transport.ts); node adds one to link-local sources.
    const a = this.sources[i].address;
    const pct = a.indexOf('%');
    return pct < 0 ? a : a.slice(0, pct);
  }
  port(i: number): number {
    return this.sources[i].port;
  }
}

/** The name of each errno number ('EADDRINUSE' for 98 on Linux). */
let errnoNames: Map<number, string> | undefined;

function errnoName(n: number): string | undefined {
  if (!errnoNames) {
    errnoNames = new Map();
    for (const [name, value] of Object.entries(osConstants.errno)) if (!errnoNames.has(value)) errnoNames.set(value, name);
  }
  return errnoNames.get(n);
}

/**
 * A MembershipSocketError for what a socket threw. dgram's errors carry
 * the system error's name as `code` (and libuv's negative number as
 * `errno`); the native receiver's carry their own code (ERR_RQ_...) and
 * the system error's number as `errno`.
 */
function socketError(what: string, e: unknown): MembershipSocketError {
  const { code, errno } = (e ?? {}) as { code?: unknown; errno?: unknown };
  const name = typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : typeof errno === 'number' ? errnoName(Math.abs(errno)) : undefined;
  return new MembershipSocketError(`${what}: ${e instanceof Error ? e.message : String(e)}`, {
    cause: e,
    ...(name !== undefined ? { errno: name } : {}),
  });
}

/**
 * node's dgram as a MembershipSocket. dgram emits one 'message' per
 * datagram; libuv reads up to 32 per poll, so what arrives in one turn is
 * gathered and handed over at the end of it (setImmediate) as one batch.
 */
class DgramMembershipSocket implements MembershipSocket {
  readonly receiver = 'dgram';
  private closed = false;
  private messages: Buffer[] = [];
  private sources: dgram.RemoteInfo[] = [];
  private flushing = false;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly family: 4 | 6,
    readonly port: number,
    private readonly handler: MembershipSocketHandler,
  ) {
    socket.on('message', (msg, rinfo) => {
      if (this.closed) return;
      this.messages.push(msg);
      this.sources.push(rinfo);
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
    socket.on('error', (e) => {
      if (!this.closed) handler.onError(socketError('multicast socket', e));
    });
  }

  static async open(o: MembershipSocketOptions, handler: MembershipSocketHandler): Promise<DgramMembershipSocket> {
    const socket = dgram.createSocket({ type: o.family === 6 ? 'udp6' : 'udp4', reuseAddr: true });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port: o.port, address: o.address }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      socket.close();
      throw socketError(`cannot bind port ${o.port} for the group`, e);
    }
    try {
      socket.setRecvBufferSize(o.receiveBufferBytes);
    } catch {
      /* the kernel's limit applies */
    }
    return new DgramMembershipSocket(socket, o.family, socket.address().port, handler);
  }

  /** dgram names an IPv4 interface by address and an IPv6 one by a scope ("::%eth0"). */
  private interfaceArg(target: MembershipTarget): string | undefined {
    const i = target.interface;
    if (!i) return undefined;
    return this.family === 4 ? i.ipv4 : `::%${i.name}`;
  }

  addMembership(group: string, target: MembershipTarget): void {
    const itf = this.interfaceArg(target);
    try {
      if (target.source !== undefined) this.socket.addSourceSpecificMembership(target.source, group, itf);
      else this.socket.addMembership(group, itf);
    } catch (e) {
      throw socketError(`cannot join ${group}`, e);
    }
  }

  dropMembership(group: string, target: MembershipTarget): void {
    const itf = this.interfaceArg(target);
    try {
      if (target.source !== undefined) this.socket.dropSourceSpecificMembership(target.source, group, itf);
      else this.socket.dropMembership(group, itf);
    } catch (e) {
      throw socketError(`cannot leave ${group}`, e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.messages = [];
    this.sources = [];
    // Closing the socket drops its memberships (the kernel leaves for it).
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  private flush(): void {
    this.flushing = false;
    if (this.closed || this.messages.length === 0) return;
    const batch = new DatagramList(this.messages, this.sources);
    this.messages = [];
    this.sources = [];
    this.handler.onDatagrams(batch);
  }
}

export const openDgramMembershipSocket: MembershipSocketOpener = (o, handler) => DgramMembershipSocket.open(o, handler);

/** How the native receiver under a membership reads its socket (udp/client-socket.ts takes the same). */
export interface NativeMembershipTuning {
  /** Most datagrams per native delivery. Default 256 (the client's recvBatch). */
  batch?: number;
  /**
   * Gather window (µs): a paced group stream is handed over every this
   * long instead of one wake-up of the receiving thread and of JS per
   * datagram. A membership carries no control messages, so this delays
   * nothing that waits. Default 8000 (the client's, client.ts).
   */
  gatherMicros?: number;
}

const NATIVE_BATCH = 256;
const NATIVE_GATHER_MICROS = 8000;
/** The most the native receiver takes for SO_RCVBUF (native/napi/receiver.cc). */
const NATIVE_MAX_RECEIVE_BUFFER = 1 << 30;

/**
 * UdpReceiver as a MembershipSocket: bound to the group (or the wildcard)
 * and port with SO_REUSEADDR, hearing only the groups it joined
 * (IP(V6)_MULTICAST_ALL off), its batches handed over as they come.
 */
class NativeMembershipSocket implements MembershipSocket {
  readonly receiver = 'native';
  private closed = false;

  private constructor(
    private readonly rx: UdpReceiver,
    readonly port: number,
    handler: MembershipSocketHandler,
  ) {
    // A batch's storage is lent, and received into again only once collected: views kept stay intact.
    rx.on('batch', (b: DatagramBatch) => {
      if (!this.closed) handler.onDatagrams(b);
    });
  }

  static open(o: MembershipSocketOptions, handler: MembershipSocketHandler, tuning: NativeMembershipTuning, binding: NativeBinding): NativeMembershipSocket {
    let rx: UdpReceiver;
    try {
      rx = new UdpReceiver(
        {
          address: o.address,
          port: o.port,
          reuseAddress: true,
          receiveBufferBytes: Math.min(NATIVE_MAX_RECEIVE_BUFFER, o.receiveBufferBytes),
          batch: tuning.batch ?? NATIVE_BATCH,
          gatherMicros: tuning.gatherMicros ?? NATIVE_GATHER_MICROS,
        },
        binding,
      );
    } catch (e) {
      throw socketError(`cannot bind port ${o.port} for the group`, e);
    }
    let port: number;
    try {
      port = rx.address().port;
    } catch (e) {
      rx.close();
      throw socketError(`cannot bind port ${o.port} for the group`, e);
    }
    return new NativeMembershipSocket(rx, port, handler);
  }

  /** The receiver names an interface by index (both families), else by name. */
  private static interfaceArg(target: MembershipTarget): string | undefined {
    const i = target.interface;
    if (!i) return undefined;
    return i.index !== undefined ? String(i.index) : i.name;
  }

  private static args(target: MembershipTarget): { interface?: string; source?: string } {
    const itf = NativeMembershipSocket.interfaceArg(target);
    return { ...(itf !== undefined ? { interface: itf } : {}), ...(target.source !== undefined ? { source: target.source } : {}) };
  }

  addMembership(group: string, target: MembershipTarget): void {
    try {
      this.rx.addMembership(group, NativeMembershipSocket.args(target));
    } catch (e) {
      throw socketError(`cannot join ${group}`, e);
    }
  }

  dropMembership(group: string, target: MembershipTarget): void {
    try {
      this.rx.dropMembership(group, NativeMembershipSocket.args(target));
    } catch (e) {
      throw socketError(`cannot leave ${group}`, e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Stops the receiving thread (batches still queued are dropped) and closes the socket, which drops its memberships.
    this.rx.close();
  }
}

/** The native receiver as a MembershipSocketOpener; `tuning` and `binding` default to the client's and the loaded addon. */
export async function openNativeMembershipSocket(
  o: MembershipSocketOptions,
  handler: MembershipSocketHandler,
  tuning: NativeMembershipTuning = {},
  binding: NativeBinding = loadNative(),
): Promise<MembershipSocket> {
  return NativeMembershipSocket.open(o, handler, tuning, binding);
}

/** Which socket the default opener takes, and how the native one reads. */
export interface MembershipReceiverOptions extends NativeMembershipTuning {
  /** Force node's dgram (tests, and addons without UdpReceiver memberships). */
  useDgram?: boolean;
  /** The addon (tests). Default the one lib/native.ts loads. */
  binding?: NativeBinding;
}

/** The addon, if it has a UdpReceiver with memberships (an older one has none, or no UdpReceiver at all). */
function membershipBinding(o: MembershipReceiverOptions): NativeBinding | undefined {
  if (o.useDgram) return undefined;
  let binding: NativeBinding | undefined;
  try {
    binding = o.binding ?? loadNative();
  } catch {
    return undefined;
  }
  const Rx: unknown = binding?.UdpReceiver;
  return typeof Rx === 'function' && typeof (Rx.prototype as { addMembership?: unknown } | undefined)?.addMembership === 'function' ? binding : undefined;
}

/**
 * The opener a membership takes unless it is given one: the native
 * receiver, or node's dgram when asked (`useDgram`) or when the addon
 * cannot be loaded or has no UdpReceiver memberships — as
 * udp/client-socket.ts chooses for unicast. The choice is made at each
 * open.
 */
export function membershipSocketOpener(o: MembershipReceiverOptions = {}): MembershipSocketOpener {
  return (so, handler) => {
    const binding = membershipBinding(o);
    return binding ? openNativeMembershipSocket(so, handler, o, binding) : openDgramMembershipSocket(so, handler);
  };
}
