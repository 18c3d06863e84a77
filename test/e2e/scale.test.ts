// A server with 10 000 registered clients (g): every client registers
// through the real HELLO/COOKIE/JOIN exchange over loopback, from its own
// UDP socket (the cookie binds address and port). Those sockets are
// *connected* to the control port, so the kernel hands them control replies
// and drops the data stream arriving from the replicator's port at once:
// 10 000 real destinations that cost the test process nothing per packet.
// A few unconnected "sink" clients also count the stream they receive.
//
// Asserted (correctness only): every client is joined, the replicator holds
// every destination, every client expires no earlier than the expiry its
// JOINED announced and by that deadline plus a generous bound (ticks are
// 100 ms), afterwards the replicator holds no destination and the sinks
// receive nothing more. Measured and printed, not asserted: the stream rate
// the replicator keeps with 10 000 destinations against the configured rate.
// SCALE_CLIENTS overrides the count (npm run test:soak uses more).
import { randomBytes } from 'crypto';
import * as dgram from 'dgram';
import * as fs from 'fs';
import * as path from 'path';
import { decodeControl, encodeControl, MessageType, TimeValue } from '../../lib/protocol';
import { Catalogue } from '../../lib/content/catalogue';
import { RqcastServer } from '../../lib/server/server';
import { sleep, tempDir, writeContent } from './helpers';

const CLIENTS = Number(process.env.SCALE_CLIENTS ?? 10_000);
const SINKS = 16;
const RATE_MBPS = Number(process.env.SCALE_RATE_MBPS ?? 0.1);
/** Expiry bound beyond the announced expiry: generous (the tick is 100 ms). */
const EXPIRY_SLACK_MS = 10_000;

interface Registered {
  socket: dgram.Socket;
  connected: boolean;
  key: string;
  cookie: Uint8Array;
  expiresAtMs: number;
  received: { packets: number; bytes: number };
}

/** One HELLO/COOKIE/JOIN/JOINED exchange from `socket`; retries lost datagrams. */
function exchange(socket: dgram.Socket, send: (s: dgram.Socket) => void, want: MessageType): Promise<Uint8Array | number> {
  return new Promise((resolve, reject) => {
    let tries = 0;
    let timer: NodeJS.Timeout;
    const attempt = (): void => {
      if (++tries > 8) {
        socket.off('message', onMessage);
        reject(new Error(`no ${MessageType[want]} after ${tries - 1} tries`));
        return;
      }
      try {
        send(socket);
      } catch (err) {
        socket.off('message', onMessage);
        reject(err as Error);
        return;
      }
      timer = setTimeout(attempt, 1000);
    };
    const onMessage = (m: Buffer): void => {
      if (m[0] !== 0x52) return; // data (sinks): counted elsewhere
      const d = decodeControl(m);
      if (!d.ok) return;
      if (d.msg.type === MessageType.Error) {
        clearTimeout(timer);
        socket.off('message', onMessage);
        reject(new Error(`server refused: ${JSON.stringify(d.msg)}`));
      } else if (d.msg.type === want) {
        clearTimeout(timer);
        socket.off('message', onMessage);
        if (d.msg.type === MessageType.Cookie) resolve(d.msg.cookie);
        else if (d.msg.type === MessageType.Joined) resolve(d.msg.expiresAtMs);
      }
    };
    socket.on('message', onMessage);
    attempt();
  });
}

async function openSocket(port: number, connected: boolean): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      s.off('error', reject);
      resolve();
    });
  });
  if (connected) await new Promise<void>((resolve) => s.connect(port, '127.0.0.1', () => resolve()));
  return s;
}

async function register(port: number, connected: boolean, ttlMs: number): Promise<Registered> {
  const socket = await openSocket(port, connected);
  const sendTo = (s: dgram.Socket, b: Uint8Array): void => (connected ? s.send(b) : s.send(b, port, '127.0.0.1'));
  const received = { packets: 0, bytes: 0 };
  if (!connected) {
    socket.on('message', (m: Buffer) => {
      if ((m[0] >> 4) === 1) {
        received.packets++;
        received.bytes += m.length;
      }
    });
  }
  const hello = encodeControl({ type: MessageType.Hello, nonce: randomBytes(8) });
  const cookie = (await exchange(socket, (s) => sendTo(s, hello), MessageType.Cookie)) as Uint8Array;
  const join = encodeControl({ type: MessageType.Join, cookie, channels: ['main'], until: { kind: 'duration', ms: ttlMs }, ack: false });
  const expiresAtMs = (await exchange(socket, (s) => sendTo(s, join), MessageType.Joined)) as number;
  const a = socket.address();
  return { socket, connected, key: `${a.address}:${a.port}`, cookie, expiresAtMs, received };
}

/** JOIN again from the same socket; `until` is evaluated at each (re)send. */
async function renew(c: Registered, port: number, until: () => TimeValue): Promise<void> {
  const send = (s: dgram.Socket): void => {
    const join = encodeControl({ type: MessageType.Join, cookie: c.cookie, channels: ['main'], until: until(), ack: false });
    if (c.connected) s.send(join);
    else s.send(join, port, '127.0.0.1');
  };
  c.expiresAtMs = (await exchange(c.socket, send, MessageType.Joined)) as number;
}

async function inBatches<T, R>(items: T[], size: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(f))));
  return out;
}

describe(`a server with ${CLIENTS} registered clients`, () => {
  let dir: string;
  let catalogue: Catalogue | undefined;
  let server: RqcastServer | undefined;
  const clients: Registered[] = [];

  beforeAll(async () => {
    dir = tempDir('scale');
    writeContent(path.join(dir, 'object.bin'), 256 * 1024, 0x5ca1e);
    catalogue = await Catalogue.load([path.join(dir, 'object.bin')]);
  });

  afterAll(async () => {
    for (const c of clients) c.socket.close();
    await server?.close();
    for (const o of catalogue?.objects ?? []) o.encoder.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('joins every client, keeps streaming, and expires each one on time', async () => {
    server = new RqcastServer({
      catalogue: catalogue!,
      host: '127.0.0.1',
      port: 0,
      rateMbps: RATE_MBPS,
      tickIntervalMs: 100,
      // Every client is on 127.0.0.1: one address holds them all.
      maxSessionsPerAddress: CLIENTS + SINKS,
      // A session never outlives its JOIN's cookie (docs/PROTOCOL.md §6.2), and registering
      // them all can take longer than the default 60 s lifetime on a loaded machine.
      cookieRotationMs: 600_000,
      cookieLifetimeMs: 600_000,
    });
    const { port } = await server.listen();
    const expiredAt = new Map<string, number>();
    const announced = new Map<string, number>();
    server.on('joined', (e) => announced.set(`${e.client.address}:${e.client.port}`, e.expiresAtMs));
    server.on('renewed', (e) => announced.set(`${e.client.address}:${e.client.port}`, e.expiresAtMs));
    server.on('expired', (e) => expiredAt.set(`${e.client.address}:${e.client.port}`, Date.now()));

    // Register with a long TTL first, so that all are members at once
    // however long registration takes on a loaded machine.
    const t0 = Date.now();
    const kinds = Array.from({ length: CLIENTS + SINKS }, (_, i) => i >= CLIENTS);
    clients.push(...(await inBatches(kinds, 100, (sink) => register(port, !sink, 120_000))));
    const registrationS = (Date.now() - t0) / 1000;
    const total = CLIENTS + SINKS;
    expect(new Set(clients.map((c) => c.key)).size).toBe(total);
    expect(server.sessionCount).toBe(total);

    // Commands reach the native sender thread asynchronously.
    for (let i = 0; i < 400 && server.channelStats('main')!.destinations !== total; i++) await sleep(50);
    expect(server.channelStats('main')!.destinations).toBe(total);

    // Rate with every destination present (printed, not asserted).
    const sinks = clients.slice(CLIENTS);
    const s0 = server.channelStats('main')!;
    const sink0 = sinks.map((s) => s.received.bytes);
    const w0 = Date.now();
    await sleep(3000);
    const s1 = server.channelStats('main')!;
    const dt = (Date.now() - w0) / 1000;
    const sinkRates = sinks.map((s, i) => (s.received.bytes - sink0[i]) / dt);
    const configured = (RATE_MBPS * 1e6) / 8;
    const streamRate = (s1.bytes - s0.bytes) / (s1.datagrams - s0.datagrams || 1) * ((s1.streamPackets - s0.streamPackets) / dt);
    console.log(
      `[scale] ${total} destinations registered in ${registrationS.toFixed(1)} s; configured ${configured.toFixed(0)} B/s per destination; ` +
        `stream ${streamRate.toFixed(0)} B/s (${((s1.streamPackets - s0.streamPackets) / dt).toFixed(1)} packets/s); ` +
        `${((s1.datagrams - s0.datagrams) / dt).toFixed(0)} datagrams/s in all; ` +
        `sinks median ${[...sinkRates].sort((a, b) => a - b)[sinkRates.length >> 1].toFixed(0)} B/s`,
    );
    // The stream did flow to the sinks.
    expect(sinkRates.every((r) => r > 0)).toBe(true);

    // Renew everyone to a near expiry: half relative, half absolute.
    await inBatches(clients.map((c, i) => [c, i] as const), 100, ([c, i]) =>
      renew(c, port, () => (i % 2 === 0 ? { kind: 'duration', ms: 3000 } : { kind: 'absolute', unixMs: Date.now() + 3000 })),
    );
    for (const c of clients) expect(announced.get(c.key)).toBe(c.expiresAtMs);
    const lastDeadline = Math.max(...clients.map((c) => c.expiresAtMs));

    while (server.sessionCount > 0 && Date.now() < lastDeadline + EXPIRY_SLACK_MS) await sleep(100);
    expect(server.sessionCount).toBe(0);
    expect(expiredAt.size).toBe(total);
    let early = 0;
    let late = 0;
    let worstLateness = 0;
    for (const c of clients) {
      const at = expiredAt.get(c.key)!;
      if (at < c.expiresAtMs) early++;
      if (at > c.expiresAtMs + EXPIRY_SLACK_MS) late++;
      worstLateness = Math.max(worstLateness, at - c.expiresAtMs);
    }
    console.log(`[scale] all ${total} expired; worst lateness ${worstLateness} ms after the announced expiry`);
    expect(early).toBe(0);
    expect(late).toBe(0);

    for (let i = 0; i < 400 && server.channelStats('main')!.destinations !== 0; i++) await sleep(50);
    expect(server.channelStats('main')!.destinations).toBe(0);
    // Nothing more reaches the sinks once the sender thread has applied the removals.
    await sleep(300);
    const quiet0 = sinks.map((s) => s.received.packets);
    await sleep(1000);
    expect(sinks.map((s) => s.received.packets)).toEqual(quiet0);
  }, 170_000);
});
