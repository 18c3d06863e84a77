/**
 * A NativeTcpServer that records every call and lets a test play the
 * native side: emit() hands the transport a batch of events as the addon's
 * ThreadSafeFunction would. Also a HostFilterLike that records installs
 * and removals.
 */
import type { HostFilterLike } from '../../../lib/transport/tcp/host-filter';
import type {
  NativeTcpEvent,
  NativeTcpServer,
  NativeTcpServerFactory,
  NativeTcpServerOptions,
  NativeTcpServerStats,
} from '../../../lib/transport/tcp/native-tcp-server';

export type FakeCall =
  | { op: 'start' | 'stop' }
  | { op: 'send'; id: number; packet: Uint8Array }
  | { op: 'addMember' | 'removeMember'; channel: number; id: number }
  | { op: 'close' | 'abort'; id: number };

export class FakeNativeTcpServer implements NativeTcpServer {
  readonly calls: FakeCall[] = [];
  /** Connection ids send() accepts (the transport's idea of "open" is checked against this). */
  readonly open = new Set<number>();
  startError?: Error;
  stopped = false;
  /** What stats() says of the GSO packet path (undefined: says nothing, as an older addon). */
  packetPath?: { on: boolean; errno: number };

  constructor(
    readonly options: NativeTcpServerOptions,
    private readonly onEvents: (events: NativeTcpEvent[]) => void,
  ) {}

  emit(...events: NativeTcpEvent[]): void {
    for (const e of events) {
      if (e.type === 'open') this.open.add(e.id);
      if (e.type === 'close') this.open.delete(e.id);
    }
    this.onEvents(events);
  }

  start(): void {
    this.calls.push({ op: 'start' });
    if (this.startError) throw this.startError;
  }
  send(id: number, packet: Uint8Array): boolean {
    this.calls.push({ op: 'send', id, packet: Uint8Array.from(packet) });
    return this.open.has(id);
  }
  addMember(channel: number, id: number): void {
    this.calls.push({ op: 'addMember', channel, id });
  }
  removeMember(channel: number, id: number): void {
    this.calls.push({ op: 'removeMember', channel, id });
  }
  close(id: number): void {
    this.calls.push({ op: 'close', id });
  }
  abort(id: number): void {
    this.calls.push({ op: 'abort', id });
    this.open.delete(id);
  }
  stats(): NativeTcpServerStats {
    return {
      connections: this.open.size,
      halfOpen: 0,
      accepted: 0,
      refused: 0,
      resetsSent: 0,
      segmentsIn: 0,
      segmentsOut: 0,
      badSegments: 0,
      sendErrors: 0,
      freshFrames: 0,
      staleFrames: 0,
      retransmittedSegments: 0,
      poolEvicted: 0,
      ...(this.packetPath ? { packetPath: this.packetPath.on, packetPathError: this.packetPath.errno } : {}),
    };
  }
  connectionStats(): undefined {
    return undefined;
  }
  stop(): void {
    this.calls.push({ op: 'stop' });
    this.stopped = true;
    this.open.clear();
  }
}

/** A factory that keeps the servers it made (servers[0] is usually the one). */
export function fakeFactory(setup?: (s: FakeNativeTcpServer) => void): NativeTcpServerFactory & { servers: FakeNativeTcpServer[] } {
  const servers: FakeNativeTcpServer[] = [];
  const make = (options: NativeTcpServerOptions, onEvents: (events: NativeTcpEvent[]) => void): FakeNativeTcpServer => {
    const s = new FakeNativeTcpServer(options, onEvents);
    setup?.(s);
    servers.push(s);
    return s;
  };
  return Object.assign(make, { servers });
}

export class FakeHostFilter implements HostFilterLike {
  readonly log: string[] = [];
  installError?: Error;
  async install(): Promise<void> {
    this.log.push('install');
    if (this.installError) throw this.installError;
  }
  async remove(): Promise<void> {
    this.log.push('remove');
  }
}
