/**
 * The native TCP server (native/tcp/ behind native/napi/tcp_server.cc) as
 * the TCP transport sees it: its types (declared with the rest of the
 * binding in lib/native.ts) and how one is made. The transport takes the
 * server through a factory (NativeTcpServerFactory), so tests drive it with
 * a fake.
 *
 * The native server owns the connections (raw sockets, the I/O-free TCP
 * machine, retransmission with fresh symbols); JavaScript sees whole
 * events in batches (open, in-order stream bytes, close) and sends control
 * packets, which the native side frames.
 */
import { loadNative } from '../../native';
import type { NativeTcpEvent, NativeTcpServer, NativeTcpServerOptions } from '../../native';
import { RqcastError } from '../../errors';

export type {
  NativeTcpConnectionStats,
  NativeTcpEvent,
  NativeTcpServer,
  NativeTcpServerOptions,
  NativeTcpServerStats,
} from '../../native';

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
