/**
 * UDP unicast, client side (ClientTransport): the client's one UDP socket
 * toward one server (docs/PROTOCOL.md §10.1: control messages and ALC data
 * on the same socket), with two receivers behind it:
 *
 * - native (the default): UdpReceiver, a socket read by a native thread with
 *   recvmmsg, many datagrams per JS callback. A fetch at a few hundred
 *   Mbit/s is tens of thousands of packets a second; one JS event per
 *   packet (node dgram) cannot keep up with that, and the kernel drops what
 *   the receive buffer cannot hold. The native socket also asks for a large
 *   receive buffer with SO_RCVBUFFORCE (root lifts net.core.rmem_max),
 *   falling back to SO_RCVBUF, so that bursts while JS is busy (a block
 *   being collected, a file write) are absorbed instead of dropped.
 * - dgram: node's own socket, one 'message' per datagram, kept only for an
 *   addon that predates UdpReceiver.
 *
 * Both hand the owner batches of datagrams (dgram: batches of one), so the
 * client has one receive path.
 */
import * as dgram from 'dgram';
import { readFileSync } from 'fs';
import { loadNative, type NativeBinding } from '../../native';
import type {
  ClientTransport,
  ClientTransportHandler,
  ClientTransportStats,
  Datagrams,
  ServerEndpoint,
} from '../client-transport';
import { DatagramBatch, UdpReceiver } from './receiver';

export type { Datagrams } from '../client-transport';

export interface UdpClientTransportOptions {
  receiveBufferBytes: number;
  /** Most datagrams per native delivery. */
  batch: number;
  /**
   * Native gather window (µs): a paced stream is handed over every this
   * long instead of one wake-up of the receiving thread and of JS per
   * datagram. Adds at most this much latency to a control reply, so it is
   * applied only once the stream has begun (ClientTransport.streaming): the
   * handshake's replies (COOKIE, JOINED) are handed over at once.
   */
  gatherMicros: number;
  /** Force node dgram (tests, and addons without UdpReceiver). */
  useDgram?: boolean;
  binding?: NativeBinding;
}

/** The UDP transport, and which receiver reads it. */
export interface UdpClientTransport extends ClientTransport {
  readonly kind: 'udp';
  readonly receiver: 'native' | 'dgram';
}

/**
 * Opens a socket on an ephemeral port of every local address of the
 * server's family, toward `server`. Datagrams from any source are handed
 * over with their source: checking it is the owner's job.
 */
export async function openUdpClientTransport(
  server: ServerEndpoint,
  handler: ClientTransportHandler,
  o: UdpClientTransportOptions,
): Promise<UdpClientTransport> {
  let binding: NativeBinding | undefined;
  if (!o.useDgram) {
    try {
      binding = o.binding ?? loadNative();
    } catch {
      binding = undefined;
    }
  }
  if (binding && typeof binding.UdpReceiver === 'function') return new NativeUdpTransport(server, handler, o, binding);
  return DgramUdpTransport.open(server, handler, o);
}

/**
 * The kernel's count of datagrams dropped on the socket bound to `port`
 * because its receive buffer was full (the "drops" column of /proc/net/udp,
 * Linux; 0 elsewhere). Losses the stream makes up for, but a sign the
 * sender outruns the client.
 */
export function readSocketDrops(port: number, family: 4 | 6): number {
  if (process.platform !== 'linux') return 0;
  try {
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    const file = family === 6 ? '/proc/net/udp6' : '/proc/net/udp';
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 12 && cols[1].endsWith(`:${hex}`)) return Number(cols[cols.length - 1]) || 0;
    }
  } catch {
    /* not available */
  }
  return 0;
}

abstract class UdpTransportBase {
  readonly kind = 'udp';
  readonly carriesControl = true;
  constructor(readonly server: ServerEndpoint) {}
  abstract localPort(): number;
  stats(): ClientTransportStats {
    return { socketDrops: readSocketDrops(this.localPort(), this.server.family) };
  }
}

class NativeUdpTransport extends UdpTransportBase implements UdpClientTransport {
  readonly receiver = 'native';
  private readonly rx: UdpReceiver;
  private readonly port: number;
  /** The window streaming() sets; undefined once set. */
  private gatherMicros?: number;

  constructor(server: ServerEndpoint, handler: ClientTransportHandler, o: UdpClientTransportOptions, binding: NativeBinding) {
    super(server);
    // An addon that cannot change the window later gets it at once.
    const later = typeof (binding.UdpReceiver.prototype as { setGatherMicros?: unknown } | undefined)?.setGatherMicros === 'function';
    this.rx = new UdpReceiver(
      {
        address: server.family === 6 ? '::' : '0.0.0.0',
        receiveBufferBytes: o.receiveBufferBytes,
        batch: o.batch,
        // None during the handshake (streaming() sets it).
        gatherMicros: later ? 0 : o.gatherMicros,
      },
      binding,
    );
    if (later) this.gatherMicros = o.gatherMicros;
    this.port = this.rx.address().port;
    this.rx.on('batch', (b: DatagramBatch) => handler.onDatagrams(b));
  }

  localPort(): number {
    return this.port;
  }

  streaming(): void {
    const us = this.gatherMicros;
    if (us === undefined) return;
    this.gatherMicros = undefined;
    if (us > 0) this.rx.setGatherMicros(us);
  }

  sendControl(bytes: Uint8Array): void {
    try {
      this.rx.send(bytes, this.server.address, this.server.port);
    } catch {
      /* an unreachable destination or a full buffer is a lost datagram */
    }
  }

  async close(): Promise<void> {
    this.rx.close();
  }
}

/** One 'message' as a batch of one. */
class OneDatagram implements Datagrams {
  readonly count = 1;
  readonly truncated = 0;
  constructor(
    private readonly msg: Buffer,
    private readonly rinfo: dgram.RemoteInfo,
  ) {}
  get data(): Buffer {
    return this.msg;
  }
  offset(): number {
    return 0;
  }
  length(): number {
    return this.msg.length;
  }
  datagram(): Buffer {
    return this.msg;
  }
  address(): string {
    return this.rinfo.address;
  }
  port(): number {
    return this.rinfo.port;
  }
}

class DgramUdpTransport extends UdpTransportBase implements UdpClientTransport {
  readonly receiver = 'dgram';
  private closed = false;
  /** Sends in flight: close() lets them go out first (a LEAVE just before closing). */
  private readonly sending = new Set<Promise<void>>();
  /** Kept: the socket cannot say once closed. */
  private readonly port: number;

  private constructor(
    server: ServerEndpoint,
    private readonly socket: dgram.Socket,
  ) {
    super(server);
    this.port = socket.address().port;
  }

  static async open(server: ServerEndpoint, handler: ClientTransportHandler, o: UdpClientTransportOptions): Promise<DgramUdpTransport> {
    const socket = dgram.createSocket({ type: server.family === 6 ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setRecvBufferSize(o.receiveBufferBytes);
    } catch {
      /* the kernel's limit applies */
    }
    const s = new DgramUdpTransport(server, socket);
    socket.on('message', (msg, rinfo) => {
      if (!s.closed) handler.onDatagrams(new OneDatagram(msg, rinfo));
    });
    socket.on('error', (err) => handler.onError(err));
    return s;
  }

  localPort(): number {
    return this.port;
  }

  sendControl(bytes: Uint8Array): void {
    if (this.closed) return;
    const sent = new Promise<void>((resolve) => {
      // UDP: a send error is a lost datagram.
      this.socket.send(bytes, this.server.port, this.server.address, () => resolve());
    });
    this.sending.add(sent);
    void sent.then(() => this.sending.delete(sent));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.sending]);
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
