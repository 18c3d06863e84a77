/**
 * TCP, server side (ServerTransport, kind 'tcp'): the native TCP server
 * (native/tcp, through NativeTcpServer) owns the connections, and this file
 * is what JavaScript does with them:
 *
 * - Each connection is a Peer, tcpPeer(address, port, id): the connection
 *   id keeps apart two connections from one address and port, one after
 *   the other.
 * - The client's bytes arrive in order and unparsed; a FrameDecoder per
 *   connection cuts them into frames (docs/PROTOCOL.md §3), each one
 *   control message handed to the server. A zero-length frame, or more
 *   bytes buffered than any control message needs (a client streaming
 *   garbage, or one huge frame), aborts the connection (RST): the stream
 *   can no longer be trusted (counted `framingErrors`).
 * - Replies go back over the same connection (the native side frames them
 *   and keeps them in order ahead of data); `maxBytes` is honoured as over
 *   UDP, though the handshake has already proved the address.
 * - A member is the connection added to the replicator channel's sinks
 *   (native TcpSink): the stream's packets reach it framed, and a lost
 *   segment is retransmitted natively with fresh symbols under its original
 *   sequence numbers. So `sendFresh` (ACK replacements) has nothing to do:
 *   the client sends no ACK over TCP, and one that does is counted.
 * - A connection that closes (FIN, RST, timeout, abort) ends its session at
 *   once through `peerGone`; a session that ends (LEAVE, expiry) closes its
 *   connection (`endPeer`: replies already queued, then FIN).
 * - open() installs the host filter (host-filter.ts) before the native
 *   server starts, so the host's stack never answers a SYN with a RST;
 *   close() stops the server (every connection reset) and removes the
 *   filter.
 */
import { FRAME_HEADER_SIZE, FRAME_MAX_PAYLOAD, FrameDecoder } from '../../protocol/framing';
import type { Peer } from '../../session/peer';
import { tcpPeer } from '../../session/peer';
import { RqcastError } from '../../errors';
import {
  type ListenAddress,
  type ServerTransport,
  type ServerTransportCounters,
  type ServerTransportHandlers,
  type TransportLogger,
  zeroServerTransportCounters,
} from '../server-transport';
import { HostFilter, type HostFilterLike } from './host-filter';
import type { NativeTcpEvent, NativeTcpServer, NativeTcpServerFactory, NativeTcpServerOptions } from './native-tcp-server';

/**
 * Bytes a connection may hold unframed by default: a JOIN naming the most
 * channels with the longest names is under 5 KiB (docs/PROTOCOL.md §4.5);
 * 16 KiB is room for that and a few messages behind it.
 */
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024;

/** The native server refused to start (its errno code, e.g. EPERM, EADDRINUSE, in `reason`). */
export class TcpServerStartError extends RqcastError {
  static readonly code = 'ERR_RQ_TCP_START';
  readonly reason?: string;
  constructor(reason: string | undefined, options?: { cause?: unknown }) {
    const why =
      reason === 'EPERM' || reason === 'EACCES'
        ? 'raw sockets need CAP_NET_RAW (run as root, or grant the capability)'
        : reason === 'EADDRINUSE'
          ? 'the address and port are in use'
          : (reason ?? 'unknown error');
    super(TcpServerStartError.code, `the TCP server could not start: ${why}`, options);
    this.reason = reason;
  }
}

/** What the TCP transport counts beside ServerTransportCounters. */
export interface TcpTransportCounters {
  connectionsOpened: number;
  connectionsClosed: number;
  /** Closes by reason ('normal', 'reset', 'timeout', 'aborted', 'protocol'). */
  closedNormal: number;
  closedReset: number;
  closedTimeout: number;
  closedAborted: number;
  closedProtocol: number;
  /** Connections aborted for a zero-length frame or too many unframed bytes. */
  framingErrors: number;
  /** Packets sendFresh was asked for: TCP's own retransmission carries fresh symbols, so none is sent. */
  freshNotNeeded: number;
  /** Events for a connection id this transport does not know (e.g. after it aborted one). */
  unknownConnection: number;
}

/** TcpTransportCounters at zero. */
export function zeroTcpTransportCounters(): TcpTransportCounters {
  return {
    connectionsOpened: 0,
    connectionsClosed: 0,
    closedNormal: 0,
    closedReset: 0,
    closedTimeout: 0,
    closedAborted: 0,
    closedProtocol: 0,
    framingErrors: 0,
    freshNotNeeded: 0,
    unknownConnection: 0,
  };
}

export interface TcpServerTransportOptions {
  /** Numeric IPv4 the clients connect to; '0.0.0.0' = every local address. */
  address: string;
  /** 1..65535. */
  port: number;
  /** Makes the native server (the addon's TcpServer over the server's replicator; tests pass a fake). */
  createServer: NativeTcpServerFactory;
  /** The native server's limits (connections, MSS, pool). */
  limits?: Omit<NativeTcpServerOptions, 'address' | 'port'>;
  /** Default: the nftables HostFilter for address and port. */
  hostFilter?: HostFilterLike;
  /** Unframed bytes a connection may hold before it is aborted. Default DEFAULT_MAX_BUFFERED_BYTES. */
  maxBufferedBytes?: number;
  logger?: TransportLogger;
}

/** Why a connection closed, as the native server says. */
export type TcpCloseReason = Extract<NativeTcpEvent, { type: 'close' }>['reason'];

interface Connection {
  readonly peer: Peer;
  readonly decoder: FrameDecoder;
}

const SILENT: TransportLogger = { debug() {}, warn() {} };

export class TcpServerTransport implements ServerTransport {
  readonly kind = 'tcp' as const;
  readonly counters: ServerTransportCounters = zeroServerTransportCounters();
  readonly tcp: TcpTransportCounters = zeroTcpTransportCounters();
  private readonly o: TcpServerTransportOptions;
  private readonly log: TransportLogger;
  private readonly filter: HostFilterLike;
  private readonly maxBuffered: number;
  private readonly connections = new Map<number, Connection>();
  private native?: NativeTcpServer;
  private handlers?: ServerTransportHandlers;
  private filterInstalled = false;
  private closing?: Promise<void>;

  constructor(o: TcpServerTransportOptions) {
    this.o = o;
    this.log = o.logger ?? SILENT;
    this.filter = o.hostFilter ?? new HostFilter({ address: o.address, port: o.port });
    this.maxBuffered = o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** The native server's own counters (undefined before open and after close). */
  nativeStats(): ReturnType<NativeTcpServer['stats']> | undefined {
    return this.closing ? undefined : this.native?.stats();
  }

  async open(handlers: ServerTransportHandlers): Promise<ListenAddress> {
    if (this.closing) throw new TcpServerStartError('EINVAL');
    this.handlers = handlers;
    await this.filter.install();
    this.filterInstalled = true;
    try {
      const native = this.o.createServer({ ...this.o.limits, address: this.o.address, port: this.o.port }, (events) => this.onEvents(events));
      this.native = native;
      try {
        native.start();
      } catch (e) {
        throw new TcpServerStartError((e as { code?: string } | undefined)?.code, { cause: e });
      }
      // Which way segments leave (docs/ARCHITECTURE.md, TCP): GSO trains
      // through the packet socket, or each alone through the routed one.
      const path = native.stats();
      if (path.packetPath === true) this.log.debug({ gsoSegments: this.o.limits?.gsoSegments ?? 64 }, 'TCP segments leave as GSO packets where the SYN came over Ethernet');
      else if (path.packetPath === false && this.o.limits?.gsoSegments !== 0)
        this.log.warn({ errno: path.packetPathError }, 'TCP: the packet socket for GSO was refused; every segment leaves alone through the routed raw socket');
    } catch (e) {
      await this.close();
      throw e;
    }
    return { address: this.o.address, port: this.o.port, family: 'IPv4' };
  }

  sendControl(to: Peer, bytes: Uint8Array, maxBytes?: number): boolean {
    if (maxBytes !== undefined && bytes.length > maxBytes) {
      this.counters.repliesOverBudget++;
      return false;
    }
    const native = this.native;
    if (!native || this.closing) return false;
    const conn = to.connection === undefined ? undefined : this.connections.get(to.connection);
    if (!conn || bytes.length === 0 || bytes.length > FRAME_MAX_PAYLOAD) {
      this.counters.replySendErrors++;
      return true;
    }
    let sent = false;
    try {
      sent = native.send(to.connection as number, bytes);
    } catch (err) {
      this.log.debug({ err }, 'control reply not sent');
    }
    if (sent) {
      this.counters.repliesSent++;
      this.counters.replyBytesSent += bytes.length;
    } else {
      this.counters.replySendErrors++;
    }
    return true;
  }

  addMember(tsi: number, peer: Peer): void {
    const id = this.liveConnection(peer);
    if (id !== undefined) this.dataPath(() => this.native?.addMember(tsi, id));
  }

  removeMember(tsi: number, peer: Peer): void {
    // A connection already gone has no sink left to remove.
    const id = this.liveConnection(peer);
    if (id !== undefined) this.dataPath(() => this.native?.removeMember(tsi, id));
  }

  sendFresh(_tsi: number, _peer: Peer, packets: readonly Uint8Array[]): void {
    this.tcp.freshNotNeeded += packets.length;
  }

  /** The session ended: the connection closes gracefully (queued replies, then FIN); a gone one is a no-op. */
  endPeer(peer: Peer): void {
    if (peer.connection === undefined || !this.connections.has(peer.connection)) return;
    this.native?.close(peer.connection);
  }

  /** Stops the native server (every connection reset) and removes the host filter; idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---------------------------------------------------------------------

  private async shutdown(): Promise<void> {
    const native = this.native;
    if (native) {
      try {
        native.stop();
      } catch (err) {
        this.log.warn({ err }, 'the native TCP server did not stop cleanly');
      }
    }
    this.connections.clear();
    if (this.filterInstalled) {
      this.filterInstalled = false;
      try {
        await this.filter.remove();
      } catch (err) {
        this.log.warn({ err }, 'the TCP host filter could not be removed');
      }
    }
  }

  private onEvents(events: NativeTcpEvent[]): void {
    for (const e of events) {
      if (this.closing) return;
      switch (e.type) {
        case 'open':
          this.tcp.connectionsOpened++;
          this.connections.set(e.id, { peer: tcpPeer(e.address, e.port, e.id), decoder: new FrameDecoder() });
          break;
        case 'data':
          this.onData(e.id, e.bytes);
          break;
        case 'close':
          this.onClose(e.id, e.reason);
          break;
      }
    }
  }

  private onData(id: number, bytes: Uint8Array): void {
    const conn = this.connections.get(id);
    if (!conn) {
      this.tcp.unknownConnection++;
      return;
    }
    const frames = conn.decoder.push(bytes);
    for (const f of frames) {
      // The frame's own header is what it cost the client too.
      this.counters.controlReceived++;
      this.counters.controlBytesReceived += f.length;
      this.handlers?.control({ bytes: f, from: conn.peer, bytesReceived: f.length + FRAME_HEADER_SIZE });
      if (this.closing || this.connections.get(id) !== conn) return;
    }
    if (conn.decoder.failed !== undefined || conn.decoder.buffered > this.maxBuffered) {
      this.tcp.framingErrors++;
      this.log.debug({ id, reason: conn.decoder.failed ?? 'too many unframed bytes' }, 'TCP connection aborted');
      try {
        this.native?.abort(id);
      } catch (err) {
        this.log.debug({ err }, 'abort refused');
      }
      // Its close event will find nothing: the session ends now.
      this.gone(id, conn, 'aborted');
    }
  }

  private onClose(id: number, reason: TcpCloseReason): void {
    const conn = this.connections.get(id);
    if (!conn) {
      this.tcp.unknownConnection++;
      return;
    }
    this.gone(id, conn, reason);
  }

  private gone(id: number, conn: Connection, reason: TcpCloseReason): void {
    this.connections.delete(id);
    this.tcp.connectionsClosed++;
    switch (reason) {
      case 'normal':
        this.tcp.closedNormal++;
        break;
      case 'reset':
        this.tcp.closedReset++;
        break;
      case 'timeout':
        this.tcp.closedTimeout++;
        break;
      case 'aborted':
        this.tcp.closedAborted++;
        break;
      case 'protocol':
        this.tcp.closedProtocol++;
        break;
    }
    this.handlers?.peerGone?.(conn.peer);
  }

  /** The connection id of `peer` if it is one of this transport's open connections. */
  private liveConnection(peer: Peer): number | undefined {
    if (peer.connection === undefined || this.closing) return undefined;
    return this.connections.has(peer.connection) ? peer.connection : undefined;
  }

  /** A refused data-path call is counted, never thrown. */
  private dataPath(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.counters.dataPathErrors++;
      this.log.warn({ err }, 'the native TCP server refused a command');
    }
  }
}
