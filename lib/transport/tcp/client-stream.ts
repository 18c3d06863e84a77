/**
 * TCP, client side (ClientTransport, kind 'tcp'): one ordinary kernel TCP
 * connection (net.Socket) to the server's TCP address, carrying the
 * client's control messages and the server's control replies and ALC
 * packets, each framed (docs/PROTOCOL.md §3). Nothing special is asked of
 * the client's host: the server's user-space TCP makes its
 * retransmissions carry fresh symbols, and the kernel here cannot tell.
 *
 * - connect with a timeout (a server whose host drops the SYN would
 *   otherwise take the kernel's minutes of SYN retries); Nagle off, so a
 *   control message leaves at once.
 * - The socket reads into the connection's frame storage (net's `onread`,
 *   frame-batch.ts): each read is one delivery of the frames it completes,
 *   read in place, every one from the server's endpoint: the data path's
 *   source check holds for TCP as it does for UDP.
 * - TCP loses nothing and repeats nothing: socketDrops is 0, and the
 *   client sends no ACKs over it (lib/client decides that).
 * - A framing error (a zero-length frame), the server closing the
 *   connection, or a socket error is the transport failing (onError).
 * - close() ends the connection gracefully (FIN after whatever was just
 *   written, e.g. a LEAVE), and resolves once it is closed (destroyed
 *   after a bound if the server never answers).
 */
import * as net from 'node:net';
import { encodeFrame, FRAME_MAX_PAYLOAD } from '../../protocol/framing';
import { RqcastError } from '../../errors';
import { durationText } from '../../support/duration-text';
import type { ClientTransport, ClientTransportHandler, ClientTransportStats, ServerEndpoint } from '../client-transport';
import { FrameBatcher } from './frame-batch';

export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 5000;
/** How long close() waits for the server's FIN before it resets the connection. */
const CLOSE_GRACE_MS = 2000;

export class TcpTransportError extends RqcastError {
  static readonly code = 'ERR_RQ_TCP_CLIENT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(TcpTransportError.code, message, options);
  }
}

export interface TcpClientTransportOptions {
  /** Give up connecting after this long. Default DEFAULT_TCP_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
}

export interface TcpClientTransport extends ClientTransport {
  readonly kind: 'tcp';
}

/** Connects to `server` (its TCP address and port); rejects with a TcpTransportError if it cannot. */
export function openTcpClientTransport(server: ServerEndpoint, handler: ClientTransportHandler, o: TcpClientTransportOptions = {}): Promise<TcpClientTransport> {
  const timeoutMs = o.connectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const frames = new FrameBatcher(server.address, server.port);
    let stream: TcpStream | undefined;
    const socket = net.connect({
      host: server.address,
      port: server.port,
      family: server.family,
      // Reading starts after 'connect' (net's afterConnect), once `stream` is set; true: keep reading.
      onread: {
        buffer: () => frames.readBuffer(),
        callback: (n: number) => {
          stream?.onRead(n);
          return true;
        },
      },
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TcpTransportError(`no TCP connection to the server within ${durationText(timeoutMs)}`));
    }, timeoutMs);
    const onError = (e: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new TcpTransportError(`TCP connection to the server failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      stream = new TcpStream(server, socket, frames, handler);
      resolve(stream);
    });
  });
}

class TcpStream implements TcpClientTransport {
  readonly kind = 'tcp' as const;
  readonly carriesControl = true;
  private readonly port: number;
  private closing = false;
  private failed = false;
  private readonly closed: Promise<void>;

  constructor(
    readonly server: ServerEndpoint,
    private readonly socket: net.Socket,
    private readonly frames: FrameBatcher,
    private readonly handler: ClientTransportHandler,
  ) {
    this.port = socket.localPort ?? 0;
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', (e) => this.fail(new TcpTransportError(`TCP connection to the server failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e })));
    socket.on('end', () => {
      // The server's FIN: it sends nothing more. Ours follows (allowHalfOpen is off).
      this.fail(new TcpTransportError('the server closed the TCP connection'));
    });
  }

  localPort(): number {
    return this.port;
  }

  sendControl(bytes: Uint8Array): void {
    if (this.closing || this.failed || bytes.length === 0 || bytes.length > FRAME_MAX_PAYLOAD) return;
    this.socket.write(encodeFrame(bytes));
  }

  stats(): ClientTransportStats {
    // TCP delivers everything or fails: the kernel drops nothing it has acknowledged.
    return { socketDrops: 0 };
  }

  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.socket.end();
      const grace = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
      void this.closed.then(() => clearTimeout(grace));
    }
    await this.closed;
  }

  /** `n` bytes were read into the frame storage. */
  onRead(n: number): void {
    if (this.closing || this.failed) return;
    const batch = this.frames.filled(n);
    // The storage is read into again only if the handler kept nothing of it.
    if (batch && this.handler.onDatagrams(batch) === true) this.frames.release();
    if (this.frames.failed !== undefined && !this.closing) {
      this.fail(new TcpTransportError('the server sent a zero-length frame: the TCP stream cannot be read further'));
      this.socket.destroy();
    }
  }

  private fail(e: Error): void {
    if (this.closing || this.failed) return;
    this.failed = true;
    this.handler.onError(e);
  }
}
