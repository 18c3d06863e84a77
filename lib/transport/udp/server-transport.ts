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
 * The replicator is the server's: this transport adds and removes
 * destinations on it, and never creates, fills or closes its channels.
 */
import * as dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Peer } from '../../session/peer';
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
}

const SILENT: TransportLogger = { debug() {}, warn() {} };

export class UdpServerTransport implements ServerTransport {
  readonly kind = 'udp' as const;
  readonly counters: ServerTransportCounters = zeroServerTransportCounters();
  private readonly options: UdpServerTransportOptions;
  private readonly log: TransportLogger;
  private socket?: dgram.Socket;
  private closing?: Promise<void>;
  /** Replies handed to the socket whose send has not completed: close() waits for them. */
  private inFlight = 0;
  private drained?: () => void;

  constructor(options: UdpServerTransportOptions) {
    this.options = options;
    this.log = options.logger ?? SILENT;
  }

  async open(handlers: ServerTransportHandlers): Promise<ListenAddress> {
    const { host, port } = this.options;
    const socket = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
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
    socket.on('error', (err) => handlers.error(err));
    socket.on('message', (msg, rinfo) => {
      this.counters.controlReceived++;
      this.counters.controlBytesReceived += msg.length;
      handlers.control({ bytes: msg, from: udpPeer(rinfo.address, rinfo.port), bytesReceived: msg.length });
    });
    const a = socket.address();
    return { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
  }

  sendControl(to: Peer, bytes: Uint8Array, maxBytes?: number): boolean {
    if (maxBytes !== undefined && bytes.length > maxBytes) {
      this.counters.repliesOverBudget++;
      return false;
    }
    const socket = this.socket;
    if (!socket || this.closing) return false;
    this.counters.repliesSent++;
    this.counters.replyBytesSent += bytes.length;
    this.inFlight++;
    socket.send(bytes, to.port, to.address, (err) => {
      if (--this.inFlight === 0) this.drained?.();
      if (err) {
        this.counters.replySendErrors++;
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
      this.counters.dataPathErrors++;
      this.log.warn({ err }, 'replicator refused a command');
    }
  }
}
