/**
 * The client's one UDP socket (docs/PROTOCOL.md: control messages and ALC
 * data on the same socket), behind a small face with two implementations:
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
import { loadNative, type NativeBinding } from '../../native';
import { DatagramBatch, UdpReceiver } from './receiver';

/** The datagrams of one delivery: views that share storage (copy what you keep past the call). */
export interface Datagrams {
  readonly count: number;
  /** The storage the datagrams sit in (the client reads them in place). */
  readonly data: Uint8Array;
  /** Where datagram i starts in `data`, and its length. */
  offset(i: number): number;
  length(i: number): number;
  datagram(i: number): Buffer;
  /** Numeric source address (IPv6 without zone). */
  address(i: number): string;
  port(i: number): number;
  /** Datagrams dropped as too long for the receive slots. */
  readonly truncated: number;
}

export interface ClientSocket {
  readonly kind: 'native' | 'dgram';
  /** Local port, for the kernel's drop counters. */
  localPort(): number;
  /** Fire and forget: UDP, the client's retries cover a lost send. */
  send(data: Uint8Array, address: string, port: number): void;
  /** Idempotent; no delivery after it returns. */
  close(): Promise<void>;
}

export interface ClientSocketOptions {
  family: 4 | 6;
  receiveBufferBytes: number;
  /** Most datagrams per native delivery. */
  batch: number;
  /**
   * Native gather window (µs): a paced stream is handed over every this
   * long instead of one wake-up of the receiving thread and of JS per
   * datagram. Adds at most this much latency to a control reply.
   */
  gatherMicros: number;
  onDatagrams: (d: Datagrams) => void;
  onError: (e: Error) => void;
  /** Force node dgram (tests, and addons without UdpReceiver). */
  useDgram?: boolean;
  binding?: NativeBinding;
}

/** Opens and binds the socket on an ephemeral port of every local address. */
export async function openClientSocket(o: ClientSocketOptions): Promise<ClientSocket> {
  let binding: NativeBinding | undefined;
  if (!o.useDgram) {
    try {
      binding = o.binding ?? loadNative();
    } catch {
      binding = undefined;
    }
  }
  if (binding && typeof binding.UdpReceiver === 'function') return new NativeClientSocket(o, binding);
  return DgramClientSocket.open(o);
}

class NativeClientSocket implements ClientSocket {
  readonly kind = 'native';
  private readonly rx: UdpReceiver;
  private readonly port: number;

  constructor(o: ClientSocketOptions, binding: NativeBinding) {
    this.rx = new UdpReceiver(
      {
        address: o.family === 6 ? '::' : '0.0.0.0',
        receiveBufferBytes: o.receiveBufferBytes,
        batch: o.batch,
        gatherMicros: o.gatherMicros,
      },
      binding,
    );
    this.port = this.rx.address().port;
    this.rx.on('batch', (b: DatagramBatch) => o.onDatagrams(b));
  }

  localPort(): number {
    return this.port;
  }

  send(data: Uint8Array, address: string, port: number): void {
    try {
      this.rx.send(data, address, port);
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

class DgramClientSocket implements ClientSocket {
  readonly kind = 'dgram';
  private closed = false;
  /** Sends in flight: close() lets them go out first (a LEAVE just before closing). */
  private readonly sending = new Set<Promise<void>>();

  private constructor(private readonly socket: dgram.Socket) {}

  static async open(o: ClientSocketOptions): Promise<DgramClientSocket> {
    const socket = dgram.createSocket({ type: o.family === 6 ? 'udp6' : 'udp4' });
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
    const s = new DgramClientSocket(socket);
    socket.on('message', (msg, rinfo) => {
      if (!s.closed) o.onDatagrams(new OneDatagram(msg, rinfo));
    });
    socket.on('error', (err) => o.onError(err));
    return s;
  }

  localPort(): number {
    return this.socket.address().port;
  }

  send(data: Uint8Array, address: string, port: number): void {
    if (this.closed) return;
    const sent = new Promise<void>((resolve) => {
      // UDP: a send error is a lost datagram.
      this.socket.send(data, port, address, () => resolve());
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
