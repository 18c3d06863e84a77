/**
 * The TypeScript side of TCP delivery end to end, on loopback, with no
 * native TCP: the real RqcastServer with its TcpServerTransport, and the
 * real RqcastClient over a kernel TCP socket, joined by stand-ins for the
 * two native parts — a data engine that copies each channel's packets to
 * its TCP members (what the replicator's TcpSink does), and a
 * NativeTcpServer made of node's net.Server (what native/tcp does, minus
 * raw sockets and fresh retransmission; the loopback loses nothing). What
 * this proves: the server's wiring (framing, sessions per connection,
 * membership by connection, the session ending with the connection) and
 * the client's (--transport tcp, and 'auto' moving to TCP when UDP data
 * never arrives), bit-exact.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RqcastClient } from '../../lib/client/client';
import { ServerLeftError } from '../../lib/client/errors';
import type { TransportEvent } from '../../lib/client/events';
import { Catalogue } from '../../lib/content/catalogue';
import { encodeFrame } from '../../lib/protocol/framing';
import { RqcastServer } from '../../lib/server/server';
import type { ReplicatorChannelConfig, ReplicatorContract } from '../../lib/transport/replicator-contract';
import type {
  NativeTcpEvent,
  NativeTcpServer,
  NativeTcpServerOptions,
  NativeTcpServerStats,
} from '../../lib/transport/tcp/native-tcp-server';
import { FakeHostFilter } from '../transport/tcp/fake-native-tcp-server';

type Sink = (packet: Uint8Array) => void;

/** Rings per channel, pumped every millisecond to the channel's TCP sinks; UDP destinations get nothing (UDP "dropped"). */
class LoopbackEngine extends EventEmitter implements ReplicatorContract {
  private readonly channels = new Map<number, { queue: Uint8Array[]; capacity: number; lowWater: number; armed: boolean; sinks: Set<Sink> }>();
  private readonly timer = setInterval(() => this.pump(), 1);
  createChannel(id: number, c: ReplicatorChannelConfig): void {
    const capacity = c.capacity ?? 4096;
    this.channels.set(id, { queue: [], capacity, lowWater: c.lowWater ?? capacity / 4, armed: true, sinks: new Set() });
  }
  removeChannel(id: number): void {
    this.channels.delete(id);
  }
  addDestination(): void {}
  removeDestination(): void {}
  addGroup(): void {}
  removeGroup(): void {}
  push(id: number, packets: Uint8Array, size: number, count: number): number {
    const ch = this.channels.get(id);
    if (!ch) return 0;
    const n = Math.min(count, ch.capacity - ch.queue.length);
    for (let i = 0; i < n; i++) ch.queue.push(packets.slice(i * size, (i + 1) * size));
    ch.armed = true;
    return n;
  }
  sendTo(): void {}
  channelStats(id: number) {
    return { queued: this.channels.get(id)?.queue.length ?? 0, destinations: 0, streamPackets: 0, datagrams: 0, bytes: 0 };
  }
  close(): void {
    clearInterval(this.timer);
  }
  addSink(id: number, sink: Sink): void {
    this.channels.get(id)?.sinks.add(sink);
  }
  removeSink(id: number, sink: Sink): void {
    this.channels.get(id)?.sinks.delete(sink);
  }
  private pump(): void {
    const low: number[] = [];
    for (const [id, ch] of this.channels) {
      if (ch.sinks.size === 0) continue;
      for (const p of ch.queue.splice(0, 32)) for (const s of ch.sinks) s(p);
      if (ch.armed && ch.queue.length <= ch.lowWater) {
        ch.armed = false;
        low.push(id);
      }
    }
    if (low.length > 0) this.emit('lowWater', low);
  }
}

/** NativeTcpServer over node's net.Server: connections, framed control replies, members fed by the engine. */
class KernelTcpServer implements NativeTcpServer {
  private readonly server = net.createServer((s) => this.onConnection(s));
  private readonly sockets = new Map<number, net.Socket>();
  private readonly sinks = new Map<string, Sink>();
  private nextId = 1;
  closes = 0;
  constructor(
    private readonly engine: LoopbackEngine,
    private readonly o: NativeTcpServerOptions,
    private readonly onEvents: (events: NativeTcpEvent[]) => void,
  ) {}
  start(): void {
    this.server.listen(this.o.port, this.o.address);
  }
  send(id: number, packet: Uint8Array): boolean {
    const s = this.sockets.get(id);
    if (!s) return false;
    s.write(encodeFrame(packet));
    return true;
  }
  addMember(channel: number, id: number): void {
    const s = this.sockets.get(id);
    if (!s) return;
    const sink: Sink = (p) => {
      if (!s.destroyed) s.write(encodeFrame(p));
    };
    this.sinks.set(`${channel} ${id}`, sink);
    this.engine.addSink(channel, sink);
  }
  removeMember(channel: number, id: number): void {
    const sink = this.sinks.get(`${channel} ${id}`);
    if (sink) this.engine.removeSink(channel, sink);
    this.sinks.delete(`${channel} ${id}`);
  }
  close(id: number): void {
    this.sockets.get(id)?.end();
  }
  abort(id: number): void {
    this.sockets.get(id)?.resetAndDestroy();
  }
  stats(): NativeTcpServerStats {
    const n = { connections: this.sockets.size, halfOpen: 0, accepted: 0, refused: 0, resetsSent: 0, segmentsIn: 0, segmentsOut: 0, badSegments: 0 };
    return { ...n, sendErrors: 0, freshFrames: 0, staleFrames: 0, retransmittedSegments: 0, poolEvicted: 0 };
  }
  connectionStats(): undefined {
    return undefined;
  }
  stop(): void {
    for (const s of this.sockets.values()) s.destroy();
    this.server.close();
  }
  private onConnection(s: net.Socket): void {
    const id = this.nextId++;
    this.sockets.set(id, s);
    s.on('error', () => {});
    this.onEvents([{ type: 'open', id, address: s.remoteAddress ?? '', port: s.remotePort ?? 0 }]);
    s.on('data', (bytes: Buffer) => this.onEvents([{ type: 'data', id, bytes }]));
    s.on('close', () => {
      this.sockets.delete(id);
      for (const [key, sink] of this.sinks) {
        if (key.endsWith(` ${id}`)) this.engine.removeSink(Number(key.split(' ')[0]), sink);
      }
      this.closes++;
      this.onEvents([{ type: 'close', id, reason: 'normal' }]);
    });
  }
}

const DATA = randomBytes(400_000);
let dir: string;
let catalogue: Catalogue;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-tcp-loop-'));
  writeFileSync(path.join(dir, 'movie.bin'), DATA);
  catalogue = await Catalogue.load([path.join(dir, 'movie.bin')], { symbolSize: 1024 });
});

afterAll(() => {
  catalogue.close();
  rmSync(dir, { recursive: true, force: true });
});

async function running(): Promise<{ server: RqcastServer; engine: LoopbackEngine; native: () => KernelTcpServer; port: number; close(): Promise<void> }> {
  const engine = new LoopbackEngine();
  let made: KernelTcpServer | undefined;
  const server = new RqcastServer({
    catalogue,
    port: 0,
    host: '127.0.0.1',
    replicator: engine,
    tcp: {
      createServer: (o, onEvents) => (made = new KernelTcpServer(engine, o, onEvents)),
      hostFilter: new FakeHostFilter(),
    },
  });
  const { port } = await server.listen();
  return {
    server,
    engine,
    native: () => made as KernelTcpServer,
    port,
    async close() {
      await server.close();
      engine.close();
    },
  };
}

const until = async (f: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('fetch --transport tcp from RqcastServer: bit-exact; the session LEAVEs, then its connection closes', async () => {
  const r = await running();
  const out = mkdtempSync(path.join(tmpdir(), 'rqcast-tcp-out-'));
  try {
    expect(r.server.tcpAddress()).toEqual({ address: '127.0.0.1', port: r.port, family: 'IPv4' });
    const c = new RqcastClient(`rqcast://127.0.0.1:${r.port}`, { outputDir: out, transport: 'tcp', timeoutMs: 10_000 });
    const s = await c.fetch();
    expect(readFileSync(path.join(out, 'movie.bin')).equals(DATA)).toBe(true);
    expect(s.channels).toEqual([{ name: 'main', tsi: 1, transport: 'tcp' }]);
    await until(() => r.native().closes === 1 && r.server.sessionCount === 0);
    expect(r.server.counters).toMatchObject({ sessionsStarted: 1, sessionsLeft: 1, sessionsDisconnected: 0, tcpConnectionsOpened: 1, tcpConnectionsClosed: 1, ackReceived: 0 });
  } finally {
    await r.close();
    rmSync(out, { recursive: true, force: true });
  }
});

test('a TCP client that goes away without LEAVE: its session ends with the connection, not at its expiry', async () => {
  const r = await running();
  const out = mkdtempSync(path.join(tmpdir(), 'rqcast-tcp-out-'));
  try {
    const c = new RqcastClient(`rqcast://127.0.0.1:${r.port}`, { outputDir: out, transport: 'tcp', timeoutMs: 10_000, ttlMs: 60_000 });
    const joined = new Promise<void>((resolve) => c.on('joined', () => resolve()));
    const fetching = c.fetch().catch(() => undefined);
    await joined;
    expect(r.server.sessionCount).toBe(1);
    // The connection is reset under the session (the client's host vanished).
    r.native().abort(1);
    await until(() => r.server.sessionCount === 0);
    expect(r.server.counters.sessionsDisconnected).toBe(1);
    c.close();
    await fetching;
  } finally {
    await r.close();
    rmSync(out, { recursive: true, force: true });
  }
});

test("auto, a server whose UDP data never arrives: the channel moves to TCP after --fallback-after and the fetch finishes there", async () => {
  const r = await running();
  const out = mkdtempSync(path.join(tmpdir(), 'rqcast-tcp-out-'));
  try {
    const c = new RqcastClient(`rqcast://127.0.0.1:${r.port}`, { outputDir: out, timeoutMs: 10_000, fallbackAfterMs: 300 });
    const events: TransportEvent[] = [];
    c.on('transport', (e) => events.push(e));
    const s = await c.fetch();
    expect(readFileSync(path.join(out, 'movie.bin')).equals(DATA)).toBe(true);
    expect(events).toEqual([
      { channel: 'main', transport: 'udp', reason: 'no-group' },
      { channel: 'main', transport: 'tcp', reason: 'no-data' },
    ]);
    expect(s.channels).toEqual([{ name: 'main', tsi: 1, transport: 'tcp' }]);
    // Two sessions: the UDP one (joined, never fed) and the TCP one.
    expect(r.server.counters.sessionsStarted).toBe(2);
  } finally {
    await r.close();
    rmSync(out, { recursive: true, force: true });
  }
});

test('the server shuts down under a TCP client: ERROR ServerLeaving, then the connection closes; the fetch fails with ServerLeftError (exit 7), not a transport error', async () => {
  const r = await running();
  const out = mkdtempSync(path.join(tmpdir(), 'rqcast-tcp-out-'));
  try {
    const c = new RqcastClient(`rqcast://127.0.0.1:${r.port}`, { outputDir: out, transport: 'tcp', timeoutMs: 60_000 });
    // As soon as the session is joined: the object cannot be complete yet.
    c.on('joined', () => void r.server.shutdown());
    const e = await c.fetch().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ServerLeftError);
    expect(r.server.counters).toMatchObject({ sessionsStarted: 1, sessionsServerLeft: 1 });
    expect(c.stats.serverLeaving).toBe(1);
  } finally {
    await r.close();
    rmSync(out, { recursive: true, force: true });
  }
});
