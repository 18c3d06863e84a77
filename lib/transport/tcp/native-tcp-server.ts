/**
 * The native TCP server (native/tcp/ behind native/napi/tcp_server.cc) as
 * the TCP transport sees it: the types of the JS API stated in the issue 9
 * contract, word for word, and how one is made.
 *
 * Why here and not in lib/native.ts: the binding is being written beside
 * this code; the transport is written and tested against these types with
 * a fake, and takes the real server through a factory
 * (NativeTcpServerFactory). Once lib/native.ts exports the same types, this
 * file re-exports them from there and keeps only the factory.
 *
 * The native server owns the connections (raw sockets, the I/O-free TCP
 * machine, retransmission with fresh symbols); JavaScript sees whole
 * events in batches (open, in-order stream bytes, close) and sends control
 * packets, which the native side frames.
 */
import { loadNative } from '../../native';
import { RqcastError } from '../../errors';

export interface NativeTcpServerOptions {
  /** Numeric IPv4 the clients connect to; '0.0.0.0' = any local address. */
  address: string;
  /** 1..65535. */
  port: number;
  /** Default 4096. */
  maxConnections?: number;
  /** Default 1024. */
  maxHalfOpen?: number;
  /** Default 1460 (clamped to 536..65495). */
  mss?: number;
  /** Per connection, default 256. */
  poolPackets?: number;
  /** Per connection, default 1 MiB, then the connection is aborted. */
  maxControlBytes?: number;
}

export type NativeTcpEvent =
  | { type: 'open'; id: number; address: string; port: number }
  /** In-order stream bytes (the client's frames, unparsed). */
  | { type: 'data'; id: number; bytes: Buffer }
  | { type: 'close'; id: number; reason: 'normal' | 'reset' | 'timeout' | 'aborted' | 'protocol' };

export interface NativeTcpConnectionStats {
  id: number;
  state: string;
  segmentsSent: number;
  bytesSent: number;
  retransmittedSegments: number;
  fastRetransmits: number;
  rtoTimeouts: number;
  freshFrames: number;
  staleFrames: number;
  poolEvicted: number;
  segmentsReceived: number;
  cwnd: number;
  srttUs: number;
  rtoMs: number;
}

export interface NativeTcpServerStats {
  connections: number;
  halfOpen: number;
  accepted: number;
  refused: number;
  resetsSent: number;
  segmentsIn: number;
  segmentsOut: number;
  badSegments: number;
  sendErrors: number;
  freshFrames: number;
  staleFrames: number;
  retransmittedSegments: number;
  poolEvicted: number;
}

export interface NativeTcpServer {
  /** Opens sockets, starts the thread; throws Error with .code (EPERM, EADDRINUSE, EINVAL). */
  start(): void;
  /** One control packet; the native side frames it; false if the connection is gone. */
  send(id: number, packet: Uint8Array): boolean;
  /** The connection gets the replicator channel's stream (TcpSink). */
  addMember(channel: number, id: number): void;
  removeMember(channel: number, id: number): void;
  /** Graceful (queued control frames, then FIN). */
  close(id: number): void;
  /** RST. */
  abort(id: number): void;
  stats(): NativeTcpServerStats;
  connectionStats(id: number): NativeTcpConnectionStats | undefined;
  /** Aborts every connection (RST), joins the thread; idempotent. */
  stop(): void;
}

/** `new binding.TcpServer(replicator, options, onEvents)`: the replicator is the native engine object the connections' sinks hang off. */
export interface RawTcpServerBinding {
  TcpServer?: new (replicator: unknown, options: NativeTcpServerOptions, onEvents: (events: NativeTcpEvent[]) => void) => NativeTcpServer;
}

/** Makes the server a TcpServerTransport drives; events arrive in batches on the JS thread. */
export type NativeTcpServerFactory = (options: NativeTcpServerOptions, onEvents: (events: NativeTcpEvent[]) => void) => NativeTcpServer;

/** The addon has no TCP server, or the replicator is not the native engine it needs. */
export class TcpUnavailableError extends RqcastError {
  static readonly code = 'ERR_RQ_TCP_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(TcpUnavailableError.code, message, options);
  }
}

/**
 * The factory of the addon's TcpServer, over `engine` (the raw native
 * replicator whose channels the connections are members of). Throws
 * TcpUnavailableError when the addon predates the TCP server or there is
 * no native engine (a fake replicator).
 */
export function nativeTcpServerFactory(engine: unknown, binding: RawTcpServerBinding = loadNative() as RawTcpServerBinding): NativeTcpServerFactory {
  const Ctor = binding.TcpServer;
  if (typeof Ctor !== 'function') throw new TcpUnavailableError('this build of the native addon has no TCP server (rebuild it: npm run build)');
  if (engine === undefined) throw new TcpUnavailableError('the TCP transport needs the native replicator');
  return (options, onEvents) => new Ctor(engine, options, onEvents);
}
