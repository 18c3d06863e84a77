/**
 * UDP unicast, server side: control messages on one dgram socket, channel
 * data through the replicator (native/replicate), which copies each stream
 * packet to every member's endpoint in sendmmsg batches.
 *
 * - Control socket: udp4, or udp6 when bound to an IPv6 address (then
 *   dual-stack: an IPv4 client is reported as ::ffff:a.b.c.d, and replies go
 *   back to exactly the address reported). Replies leave from the control
 *   port, the address the client's cookie names.
 * - Data: from the replicator's own sockets. A member is the destination
 *   (address, port) of its peer on the channel; the engine takes numeric
 *   addresses of either family, so an IPv4-mapped address is handed over as
 *   the IPv4 address (unmapIPv4). Fresh replacement packets go out the same
 *   way (Replicator.sendTo), charged to the channel's pacing.
 *
 * - Receive buffer: the control socket asks for `receiveBufferBytes`
 *   (SO_RCVBUF, default 4 MiB) so that a burst of control datagrams while
 *   JS is busy is absorbed, not dropped; net.core.rmem_max caps what the
 *   kernel grants, and a smaller buffer than asked is logged with the fix.
 *   What the kernel still drops is counted (`controlReceiveDrops`, read
 *   from /proc/net/udp{,6} at most once a second).
 *
 * The replicator is the server's: this transport adds and removes
 * destinations on it, and never creates, fills or closes its channels.
 */
import * as dgram from 'node:dgram';
import * as dns from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import type { Peer } from '../../session/peer';
import { udpSocketDrops } from './socket-drops';
import { udpPeer } from '../../session/peer';
import { unmapIPv4 } from '../../support/address';
import type { ReplicatorContract } from '../replicator-contract';
import {
  type ListenAddress,
  type ServerTransport,
  type ServerTransportCounters,
  type ServerTransportHandlers,
  type TransportLogger,
  zeroServerTransportCounters,
} from '../server-transport';

export interface UdpServerTransportOptions {
  /** Numeric address to bind the control socket to (IPv6 makes it a udp6 socket). */
  host: string;
  /** Control port; 0 picks a free one. */
  port: number;
  /** The data path: members become its destinations. */
  replicator: ReplicatorContract;
  logger?: TransportLogger;
  /** SO_RCVBUF asked for the control socket. Default DEFAULT_CONTROL_RECEIVE_BUFFER (4 MiB). */
  receiveBufferBytes?: number;
}

export const DEFAULT_CONTROL_RECEIVE_BUFFER = 4 * 1024 * 1024;

const SILENT: TransportLogger = { debug() {}, warn() {} };

/**
 * The control socket's address lookup. Replies go to the numeric address a
 * datagram came from, and dgram's own lookup (dns.lookup) answers even
 * those on the next tick: a JOINED would leave after the JOIN's
 * addDestination, behind the first window's burst from the replicator's
 * thread, and the client would read that burst before it knew it had
 * joined. Answered at once, send() hands the reply to the kernel before
 * it returns, so replies leave in the order they are made, ahead of the
 * data-path commands that follow them. Names still go to dns.lookup.
 */
export function numericLookup(hostname: string, options: dns.LookupOneOptions, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const family = isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dns.lookup(hostname, options, callback);
}

export class UdpServerTransport implements ServerTransport {
  readonly kind = 'udp' as const;
  private readonly own: ServerTransportCounters = zeroServerTransportCounters();
  private readonly options: UdpServerTransportOptions;
  private readonly log: TransportLogger;
  private socket?: dgram.Socket;
  private closing?: Promise<void>;
  /** Replies handed to the socket whose send has not completed: close() waits for them. */
  private inFlight = 0;
  private drained?: () => void;
  private bound?: ListenAddress;
  /** Drops already there when the socket was bound (none: a fresh socket), and when last read. */
  private dropsBase?: number;
  private dropsReadAt = -Infinity;
  /**
   * What the kernel reports for SO_RCVBUF once bound (Linux reports twice
   * the bytes set, the other half being its bookkeeping); undefined before.
   */
  receiveBufferBytes?: number;

  /** The counters; the drop count is read from the kernel at most once a second. */
  get counters(): Readonly<ServerTransportCounters> {
    const now = performance.now();
    if (this.bound && !this.closing && now - this.dropsReadAt >= 1000) {
      this.dropsReadAt = now;
      const drops = udpSocketDrops(this.bound.address, this.bound.port, this.bound.family);
      if (drops !== undefined) {
        this.dropsBase ??= drops;
        this.own.controlReceiveDrops = drops - this.dropsBase;
      }
    }
    return this.own;
  }

  constructor(options: UdpServerTransportOptions) {
    this.options = options;
    this.log = options.logger ?? SILENT;
  }

  async open(handlers: ServerTransportHandlers): Promise<ListenAddress> {
    const { host, port } = this.options;
    const socket = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', lookup: numericLookup });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      socket.once('error', onError);
      socket.bind(port, host, () => {
        socket.off('error', onError);
        resolve();
      });
    }).catch(async (err: unknown) => {
      await this.close();
      throw err;
    });
    this.sizeReceiveBuffer(socket);
    socket.on('error', (err) => handlers.error(err));
    socket.on('message', (msg, rinfo) => {
      this.own.controlReceived++;
      this.own.controlBytesReceived += msg.length;
      handlers.control({ bytes: msg, from: udpPeer(rinfo.address, rinfo.port), bytesReceived: msg.length });
    });
    const a = socket.address();
    this.bound = { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
    this.dropsBase = udpSocketDrops(a.address, a.port, this.bound.family);
    return this.bound;
  }

  /**
   * SO_RCVBUF as configured; a kernel that grants less (net.core.rmem_max)
   * or refuses leaves a working socket, and a warning that names the fix.
   */
  private sizeReceiveBuffer(socket: dgram.Socket): void {
    const wanted = this.options.receiveBufferBytes ?? DEFAULT_CONTROL_RECEIVE_BUFFER;
    try {
      socket.setRecvBufferSize(wanted);
    } catch (err) {
      this.log.warn({ err, wanted }, 'control socket receive buffer not set');
    }
    try {
      this.receiveBufferBytes = socket.getRecvBufferSize();
    } catch {
      this.receiveBufferBytes = undefined;
    }
    // Linux reports twice what it granted.
    const granted = this.receiveBufferBytes === undefined ? undefined : Math.floor(this.receiveBufferBytes / 2);
    if (granted !== undefined && granted < wanted) {
      this.log.warn(
        { wanted, granted },
        `control socket receive buffer is ${granted} bytes, not ${wanted}: raise net.core.rmem_max (sysctl -w net.core.rmem_max=${wanted}) to absorb bursts of control messages`,
      );
    }
  }

  sendControl(to: Peer, bytes: Uint8Array, maxBytes?: number): boolean {
    if (maxBytes !== undefined && bytes.length > maxBytes) {
      this.own.repliesOverBudget++;
      return false;
    }
    const socket = this.socket;
    if (!socket || this.closing) return false;
    this.own.repliesSent++;
    this.own.replyBytesSent += bytes.length;
    this.inFlight++;
    socket.send(bytes, to.port, to.address, (err) => {
      if (--this.inFlight === 0) this.drained?.();
      if (err) {
        this.own.replySendErrors++;
        this.log.debug({ code: (err as NodeJS.ErrnoException).code }, 'control reply not sent');
      }
    });
    return true;
  }

  addMember(tsi: number, peer: Peer): void {
    this.dataPath(() => this.options.replicator.addDestination(tsi, unmapIPv4(peer.address), peer.port));
  }

  removeMember(tsi: number, peer: Peer): void {
    this.dataPath(() => this.options.replicator.removeDestination(tsi, unmapIPv4(peer.address), peer.port));
  }

  sendFresh(tsi: number, peer: Peer, packets: readonly Uint8Array[]): void {
    const address = unmapIPv4(peer.address);
    for (const p of packets) this.dataPath(() => this.options.replicator.sendTo(address, peer.port, p, tsi));
  }

  /** Closes the control socket once the replies already sent have left it (a shutdown's ERRORs, docs/PROTOCOL.md §6.7). */
  close(): Promise<void> {
    if (!this.closing) {
      const socket = this.socket;
      const sent = this.inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.drained = resolve));
      this.closing = socket ? sent.then(() => new Promise<void>((resolve) => socket.close(() => resolve()))) : Promise.resolve();
    }
    return this.closing;
  }

  /** A refused data-path call (e.g. an address family the host cannot send to) is counted, never thrown. */
  private dataPath(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.own.dataPathErrors++;
      this.log.warn({ err }, 'replicator refused a command');
    }
  }
}
