/**
 * The socket under a multicast membership (client-membership.ts): bound to
 * the group's port with SO_REUSEADDR (every receiver on a host binds the
 * same port), joined and left on demand, handing over what arrives in
 * batches with each datagram's source.
 *
 * MembershipSocket is the seam: the membership calls nothing else. Today it
 * is node's dgram (reuseAddr, addMembership, addSourceSpecificMembership);
 * the native UdpReceiver (lib/transport/udp/receiver.ts) gains
 * `reuseAddress` and `addMembership(group, { interface, source })` /
 * `dropMembership`, and then a second opener beside this one wraps it (its
 * DatagramBatch already is a Datagrams; its recvmmsg batches replace the
 * per-turn gathering below), chosen the way udp/client-socket.ts chooses.
 */
import * as dgram from 'dgram';
import type { Datagrams } from '../client-transport';
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

export interface MembershipSocket {
  /** The bound port (the group's). */
  readonly port: number;
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

function socketError(what: string, e: unknown): MembershipSocketError {
  const errno = (e as { code?: unknown })?.code;
  return new MembershipSocketError(`${what}: ${e instanceof Error ? e.message : String(e)}`, {
    cause: e,
    ...(typeof errno === 'string' ? { errno } : {}),
  });
}

/**
 * node's dgram as a MembershipSocket. dgram emits one 'message' per
 * datagram; libuv reads up to 32 per poll, so what arrives in one turn is
 * gathered and handed over at the end of it (setImmediate) as one batch.
 */
class DgramMembershipSocket implements MembershipSocket {
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
