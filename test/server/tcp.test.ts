/**
 * RqcastServer with the TCP transport, over a fake native TCP server
 * (test/transport/tcp/fake-native-tcp-server.ts) and a data engine that
 * takes every packet: a client on a connection gets its COOKIE and JOINED
 * over that connection, becomes a member by its connection, and its
 * session ends as soon as the connection closes. Where the TCP transport
 * listens by default, and the configurations it refuses.
 */
import { Command } from 'commander';
import { registerServeCommand, type ServeIo } from '../../lib/cli/serve';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Catalogue } from '../../lib/content/catalogue';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { encodeFrame } from '../../lib/protocol/framing';
import { type ControlMessage, MessageType } from '../../lib/protocol/messages';
import { RqcastServer, type RqcastServerOptions } from '../../lib/server/server';
import { planServer } from '../../lib/server/config';
import { registerServerMetrics } from '../../lib/server/metrics';
import { TcpUnavailableError } from '../../lib/transport/tcp/native-tcp-server';
import { FakeHostFilter, fakeFactory, type FakeNativeTcpServer } from '../transport/tcp/fake-native-tcp-server';
import { TakingReplicator } from '../support/taking-replicator';


let dir: string;
let catalogue: Catalogue;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-tcp-server-'));
  writeFileSync(path.join(dir, 'a.bin'), Buffer.alloc(5000, 7));
  catalogue = await Catalogue.load([dir], { symbolSize: 1024 });
});

afterAll(() => {
  catalogue.close();
  rmSync(dir, { recursive: true, force: true });
});

function server(extra: Partial<RqcastServerOptions> = {}) {
  const factory = fakeFactory();
  const filter = new FakeHostFilter();
  const replicator = new TakingReplicator();
  const s = new RqcastServer({
    catalogue,
    port: 0,
    host: '127.0.0.1',
    replicator,
    prepare: false,
    tcp: { createServer: factory, hostFilter: filter },
    ...extra,
  });
  return { s, factory, filter, replicator };
}

/** The control messages the fake native server was asked to send to connection `id`. */
function sent(native: FakeNativeTcpServer, id: number): ControlMessage[] {
  const out: ControlMessage[] = [];
  for (const c of native.calls) {
    if (c.op !== 'send' || c.id !== id) continue;
    const d = decodeControl(c.packet);
    if (d.ok) out.push(d.msg);
  }
  return out;
}

const framed = (m: ControlMessage): Buffer => Buffer.from(encodeFrame(encodeControl(m)));

test('by default TCP listens on the control port number of the server address; close stops it and removes its filter', async () => {
  const { s, factory, filter } = server();
  const udp = await s.listen();
  expect(s.tcpAddress()).toEqual({ address: '127.0.0.1', port: udp.port, family: 'IPv4' });
  expect(factory.servers[0].options).toMatchObject({ address: '127.0.0.1', port: udp.port });
  await s.close();
  expect(factory.servers[0].stopped).toBe(true);
  expect(filter.log).toEqual(['install', 'remove']);
});

test('a client over TCP: COOKIE and JOINED on its connection, a member by its connection (not a UDP destination), its session ended by the close', async () => {
  const { s, factory, replicator } = server();
  await s.listen();
  const native = factory.servers[0];
  try {
    const left: unknown[] = [];
    s.on('left', (e) => left.push(e));
    native.emit({ type: 'open', id: 42, address: '192.0.2.50', port: 51000 });
    const nonce = new Uint8Array(8).fill(3);
    native.emit({ type: 'data', id: 42, bytes: framed({ type: MessageType.Hello, nonce }) });
    const cookie = sent(native, 42).find((m) => m.type === MessageType.Cookie);
    expect(cookie).toBeDefined();
    if (cookie?.type !== MessageType.Cookie) throw new Error('no cookie');
    native.emit({
      type: 'data',
      id: 42,
      bytes: framed({ type: MessageType.Join, cookie: cookie.cookie, channels: ['main'], until: { kind: 'duration', ms: 30_000 }, ack: false }),
    });
    const joined = sent(native, 42).find((m) => m.type === MessageType.Joined);
    expect(joined).toMatchObject({ type: MessageType.Joined, channels: [{ name: 'main', tsi: 1 }] });
    expect(native.calls).toContainEqual({ op: 'addMember', channel: 1, id: 42 });
    expect(replicator.destinations).toEqual([]);
    expect(s.sessionCount).toBe(1);

    native.emit({ type: 'close', id: 42, reason: 'reset' });
    expect(s.sessionCount).toBe(0);
    expect(s.counters.sessionsDisconnected).toBe(1);
    expect(s.counters).toMatchObject({ tcpConnectionsOpened: 1, tcpConnectionsClosed: 1, tcpClosedReset: 1, tcpFramingErrors: 0 });
    const metrics = await registerServerMetrics(s).metrics();
    expect(metrics).toMatch(/^rqcast_server_tcp_connections_opened_total 1$/m);
    expect(metrics).toMatch(/^rqcast_server_tcp_stale_frames_total 0$/m);
    expect(s.counters.sessionsLeft).toBe(0);
    expect(left).toHaveLength(1);
    // The connection is gone: no removeMember reaches the native server for it.
    expect(native.calls.some((c) => c.op === 'removeMember')).toBe(false);
  } finally {
    await s.close();
  }
});

test('a session that ends on the server side closes its connection: LEAVE at once, expiry at its time; a connection already gone is not closed again', async () => {
  let now = 1_000_000;
  const { s, factory } = server({ clock: () => now, tickIntervalMs: 5 });
  await s.listen();
  const native = factory.servers[0];
  try {
    const cookies = new Map<number, Uint8Array>();
    const join = (id: number, ms: number): void => {
      native.emit({ type: 'open', id, address: '192.0.2.60', port: 50000 + id });
      native.emit({ type: 'data', id, bytes: framed({ type: MessageType.Hello, nonce: new Uint8Array(8).fill(id) }) });
      const cookie = sent(native, id).find((m) => m.type === MessageType.Cookie);
      if (cookie?.type !== MessageType.Cookie) throw new Error('no cookie');
      cookies.set(id, cookie.cookie);
      native.emit({ type: 'data', id, bytes: framed({ type: MessageType.Join, cookie: cookie.cookie, channels: ['main'], until: { kind: 'duration', ms }, ack: false }) });
    };
    const closes = (): number[] => native.calls.filter((c) => c.op === 'close').map((c) => (c as { id: number }).id);
    join(1, 30_000);
    join(2, 2_000);
    join(3, 30_000);
    expect(s.sessionCount).toBe(3);
    expect(closes()).toEqual([]);

    native.emit({ type: 'data', id: 1, bytes: framed({ type: MessageType.Leave, cookie: cookies.get(1) as Uint8Array }) });
    expect(closes()).toEqual([1]);

    now += 2_000;
    await new Promise((r) => setTimeout(r, 30));
    expect(s.sessionCount).toBe(1);
    expect(closes()).toEqual([1, 2]);

    native.emit({ type: 'close', id: 3, reason: 'normal' });
    expect(s.sessionCount).toBe(0);
    expect(closes()).toEqual([1, 2]);
  } finally {
    await s.close();
  }
});

test('an explicit TCP address and port', async () => {
  const { s } = server({ host: '0.0.0.0', tcp: { address: '127.0.0.1', port: 8443, createServer: fakeFactory(), hostFilter: new FakeHostFilter() } });
  await s.listen();
  expect(s.tcpAddress()).toEqual({ address: '127.0.0.1', port: 8443, family: 'IPv4' });
  await s.close();
});

test('TCP is IPv4 only; without a native server it says so and the server does not listen', async () => {
  expect(() => planServer({ catalogue, host: '::1', tcp: {} })).toThrow(/IPv4 only/);
  expect(() => planServer({ catalogue, tcp: { address: '::1' } })).toThrow(/IPv4 only/);
  expect(() => planServer({ catalogue, tcp: { port: 70000 } })).toThrow(/1\.\.65535/);
  expect(planServer({ catalogue, host: '::', tcp: {} }).tcp).toEqual({ address: '0.0.0.0' });
  expect(planServer({ catalogue }).tcp).toBeUndefined();
  // A fake data engine is no native engine for the addon's TcpServer.
  const s = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', replicator: new TakingReplicator(), prepare: false, tcp: { hostFilter: new FakeHostFilter() } });
  await expect(s.listen()).rejects.toBeInstanceOf(TcpUnavailableError);
  await s.close();
});

describe('serve --tcp', () => {
  async function serve(args: string[]): Promise<{ lines: string[]; errors: string; factory: ReturnType<typeof fakeFactory>; filter: FakeHostFilter; code: number | undefined }> {
    const factory = fakeFactory();
    const filter = new FakeHostFilter();
    const lines: string[] = [];
    let errors = '';
    let stop!: () => void;
    const stopped = new Promise<string>((r) => (stop = () => r('test')));
    const io: ServeIo = {
      stdout: (line) => {
        lines.push(line);
        stop();
      },
      stderr: { write: (s: string) => ((errors += s), true) } as unknown as NodeJS.WritableStream,
      stopSignal: () => stopped,
      replicator: new TakingReplicator(),
      tcpServer: factory,
      tcpHostFilter: filter,
    };
    const program = new Command().exitOverride().configureOutput({ writeErr: (s) => (errors += s), writeOut: () => {} });
    registerServeCommand(program, io);
    const before = process.exitCode;
    process.exitCode = undefined;
    await program.parseAsync(['node', 'rqcast', 'serve', dir, '--port', '0', '--bind', '127.0.0.1', '--quiet', ...args]).catch((e: unknown) => {
      errors += String(e);
    });
    const code = process.exitCode as number | undefined;
    process.exitCode = before;
    return { lines, errors, factory, filter, code };
  }

  test('bare: the control port number on the --bind address, printed beside it; the filter is gone after the stop', async () => {
    const r = await serve(['--tcp']);
    const m = /^listening on 127\.0\.0\.1:(\d+) \(tcp 127\.0\.0\.1:(\d+)\)$/.exec(r.lines[0]);
    expect(m).not.toBeNull();
    expect(m?.[1]).toBe(m?.[2]);
    expect(r.factory.servers[0].options).toMatchObject({ address: '127.0.0.1', port: Number(m?.[1]) });
    expect(r.filter.log).toEqual(['install', 'remove']);
    expect(r.code).toBe(0);
  });

  test('--json: the listening object says where TCP is', async () => {
    const r = await serve(['--tcp', '8443', '--json']);
    const line = JSON.parse(r.lines[0]) as { event: string; port: number; tcp?: { host: string; port: number } };
    expect(line.event).toBe('listening');
    expect(line.tcp).toEqual({ host: '127.0.0.1', port: 8443 });
  });

  test('ADDR:PORT and PORT', async () => {
    expect((await serve(['--tcp', '0.0.0.0:8443'])).factory.servers[0].options).toMatchObject({ address: '0.0.0.0', port: 8443 });
    expect((await serve(['--tcp', '9443'])).factory.servers[0].options).toMatchObject({ address: '127.0.0.1', port: 9443 });
  });

  test('--tcp-gso reaches the native server; out of 0..64 it is a usage error naming the range', async () => {
    expect((await serve(['--tcp', '--tcp-gso', '0'])).factory.servers[0].options).toMatchObject({ gsoSegments: 0 });
    expect((await serve(['--tcp', '--tcp-gso', '16'])).factory.servers[0].options).toMatchObject({ gsoSegments: 16 });
    expect((await serve(['--tcp'])).factory.servers[0].options).not.toHaveProperty('gsoSegments');
    const bad = await serve(['--tcp', '--tcp-gso', '65']);
    expect(bad.errors).toMatch(/--tcp-gso is an integer 0\.\.64/);
    expect(bad.factory.servers).toHaveLength(0);
  });

  test('an IPv6 address, a port 0 or a name: usage errors', async () => {
    for (const bad of ['[::1]:443', '0', 'example.com:443', '1.2.3:80']) {
      const r = await serve(['--tcp', bad]);
      expect(r.errors).toMatch(/\[ADDR:\]PORT/);
      expect(r.factory.servers).toHaveLength(0);
    }
  });

  test('--help says what --tcp does', () => {
    let help = '';
    const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (help += s), writeErr: () => {} });
    registerServeCommand(program);
    expect(() => program.parse(['node', 'rqcast', 'serve', '--help'])).toThrow();
    expect(help).toMatch(/--tcp \[addr:port\]\s+also serve over TCP/);
    expect(help).toMatch(/rqcast_tcp_PORT/);
    expect(help).toMatch(/--tcp-gso <segments>\s+with --tcp: TCP segments per GSO packet at\s+most, 0\.\.64/);
    expect(help).toMatch(/GSO packet \(--tcp-gso, 0 to turn off\)/);
  });
});
