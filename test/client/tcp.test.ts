/**
 * RqcastClient over TCP (issue 9), against scripted servers on loopback
 * (fake-tcp-server.ts, fake-server.ts): --transport tcp, and the 'auto'
 * chain's last step — a network that drops all UDP (no JOINED ever), and
 * a UDP stream that stops mid-transfer, whose symbols the TCP session's
 * add to (docs/PROTOCOL.md §10.10).
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RqcastClient } from '../../lib/client/client';
import type { TransportEvent } from '../../lib/client/events';
import { MessageType } from '../../lib/protocol/messages';
import { FakeServer } from './fake-server';
import { FakeTcpServer } from './fake-tcp-server';

const A = randomBytes(20_000);

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-tcp-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

test('--transport tcp: the session and the stream over one TCP connection, no multicast bit, no ACK even with ack asked for', async () => {
  const tcp = new FakeTcpServer({ objects: [{ name: 'a.bin', data: A }] });
  const port = await tcp.listen();
  try {
    const c = new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: dir, retryMs: 20, timeoutMs: 5000, transport: 'tcp', ack: true, ackIntervalMs: 5 });
    const events: TransportEvent[] = [];
    c.on('transport', (e) => events.push(e));
    const s = await c.fetch();
    expect((await fs.readFile(path.join(dir, 'a.bin'))).equals(A)).toBe(true);
    expect(events).toEqual([{ channel: 'main', transport: 'tcp', reason: 'transport-tcp' }]);
    expect(s.channels).toEqual([{ name: 'main', tsi: 1, transport: 'tcp' }]);
    const joins = tcp.received.filter((m) => m.type === MessageType.Join);
    expect(joins).toHaveLength(1);
    expect(joins[0]).toMatchObject({ ack: false });
    expect((joins[0] as { multicast?: string[] }).multicast).toBeUndefined();
    expect(tcp.received.some((m) => m.type === MessageType.Ack)).toBe(false);
    expect(tcp.received.some((m) => m.type === MessageType.Leave)).toBe(true);
    expect(c.stats.acksSent).toBe(0);
    expect(tcp.connections).toBe(1);
  } finally {
    await tcp.close();
  }
});

test('--transport tcp with tcp: {host, port}: the TCP endpoint is that one, not the URL\'s port', async () => {
  const tcp = new FakeTcpServer({ objects: [{ name: 'a.bin', data: A }] });
  const port = await tcp.listen();
  try {
    const c = new RqcastClient('rqcast://127.0.0.1:9', { outputDir: dir, retryMs: 20, timeoutMs: 5000, transport: 'tcp', tcp: { host: '127.0.0.1', port } });
    await c.fetch();
    expect((await fs.readFile(path.join(dir, 'a.bin'))).equals(A)).toBe(true);
  } finally {
    await tcp.close();
  }
});

test('--transport tcp and no server listening: the fetch fails with the connection error', async () => {
  const tcp = new FakeTcpServer({ objects: [{ name: 'a.bin', data: A }] });
  const port = await tcp.listen();
  await tcp.close();
  const c = new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: dir, retryMs: 20, timeoutMs: 5000, transport: 'tcp' });
  await expect(c.fetch()).rejects.toThrow(/ECONNREFUSED/);
});

test('auto, UDP dropped entirely (no COOKIE ever): TCP after fallbackAfterMs, and the fetch finishes over it', async () => {
  const udp = new FakeServer({ objects: [{ name: 'a.bin', data: A }], ignoreHellos: Number.MAX_SAFE_INTEGER });
  const udpPort = await udp.listen();
  const tcp = new FakeTcpServer({ objects: [{ name: 'a.bin', data: A }] });
  const tcpPort = await tcp.listen();
  try {
    const c = new RqcastClient(`rqcast://127.0.0.1:${udpPort}`, {
      outputDir: dir,
      retryMs: 20,
      timeoutMs: 5000,
      fallbackAfterMs: 300,
      tcp: { host: '127.0.0.1', port: tcpPort },
    });
    const events: TransportEvent[] = [];
    c.on('transport', (e) => events.push(e));
    const t0 = Date.now();
    const s = await c.fetch();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect((await fs.readFile(path.join(dir, 'a.bin'))).equals(A)).toBe(true);
    expect(events).toEqual([{ channel: 'main', transport: 'tcp', reason: 'no-data' }]);
    expect(s.channels).toEqual([{ name: 'main', tsi: 1, transport: 'tcp' }]);
    expect(udp.hellos).toBeGreaterThan(0);
    expect(tcp.connections).toBe(1);
  } finally {
    await udp.close();
    await tcp.close();
  }
});

test('auto, UDP stream that stops mid-transfer: TCP takes over and goes on with the symbols UDP brought', async () => {
  // Neither alone is enough: about 79 source symbols of 256 bytes are needed,
  // UDP sends 40 packets (5 of them FDT), TCP 60 (its ESIs start elsewhere).
  const udp = new FakeServer({ objects: [{ name: 'a.bin', data: A }], unicastPackets: 40 });
  const udpPort = await udp.listen();
  // One packet per 2 ms: the TCP part takes over 100 ms, time to see the UDP session LEAVE meanwhile.
  const tcp = new FakeTcpServer({ objects: [{ name: 'a.bin', data: A }], maxPackets: 60, firstEsi: 100_000, burst: 1 });
  const tcpPort = await tcp.listen();
  try {
    const c = new RqcastClient(`rqcast://127.0.0.1:${udpPort}`, {
      outputDir: dir,
      retryMs: 20,
      timeoutMs: 5000,
      fallbackAfterMs: 300,
      tcp: { host: '127.0.0.1', port: tcpPort },
    });
    const events: TransportEvent[] = [];
    c.on('transport', (e) => events.push(e));
    let joins = 0;
    let leavesSoonAfterTcp: number | undefined;
    let doneThen = true;
    let done = false;
    c.on('joined', () => {
      if (++joins === 2)
        setTimeout(() => {
          leavesSoonAfterTcp = udp.leaves;
          doneThen = done;
        }, 40);
    });
    const s = await c.fetch();
    done = true;
    expect((await fs.readFile(path.join(dir, 'a.bin'))).equals(A)).toBe(true);
    expect(events).toEqual([
      { channel: 'main', transport: 'udp', reason: 'no-group' },
      { channel: 'main', transport: 'tcp', reason: 'silent' },
    ]);
    // The UDP session, which carries nothing any more, LEAVEs once the TCP one has joined, while the fetch goes on.
    expect([leavesSoonAfterTcp, doneThen]).toEqual([1, false]);
    expect(s.channels).toEqual([{ name: 'main', tsi: 1, transport: 'tcp' }]);
    expect(udp.unicastSent).toBe(40);
    expect(tcp.sent).toBeLessThanOrEqual(60);
    expect(c.stats.packetsReceived).toBeGreaterThan(60);
  } finally {
    await udp.close();
    await tcp.close();
  }
});

test('auto, UDP that keeps delivering: no TCP connection is ever made', async () => {
  const udp = new FakeServer({ objects: [{ name: 'a.bin', data: randomBytes(200_000) }], burst: 2 });
  const udpPort = await udp.listen();
  const tcp = new FakeTcpServer({ objects: [{ name: 'a.bin', data: A }] });
  const tcpPort = await tcp.listen();
  try {
    const c = new RqcastClient(`rqcast://127.0.0.1:${udpPort}`, { outputDir: dir, retryMs: 20, timeoutMs: 5000, fallbackAfterMs: 500, tcp: { host: '127.0.0.1', port: tcpPort } });
    const s = await c.fetch();
    expect(s.channels).toEqual([{ name: 'main', tsi: 1, transport: 'udp' }]);
    expect(tcp.connections).toBe(0);
  } finally {
    await udp.close();
    await tcp.close();
  }
});

test('auto, UDP that stops and no TCP server: a warning, the channel is said to be on UDP again, and the fetch times out as it would have', async () => {
  const udp = new FakeServer({ objects: [{ name: 'a.bin', data: A }], unicastPackets: 20 });
  const udpPort = await udp.listen();
  const gone = new FakeTcpServer({ objects: [] });
  const tcpPort = await gone.listen();
  await gone.close();
  try {
    const c = new RqcastClient(`rqcast://127.0.0.1:${udpPort}`, { outputDir: dir, retryMs: 20, timeoutMs: 1200, fallbackAfterMs: 200, tcp: { host: '127.0.0.1', port: tcpPort } });
    const events: TransportEvent[] = [];
    const warnings: string[] = [];
    c.on('transport', (e) => events.push(e));
    c.on('warning', (w) => warnings.push(w));
    await expect(c.fetch()).rejects.toThrow(/no data/);
    expect(events).toEqual([
      { channel: 'main', transport: 'udp', reason: 'no-group' },
      { channel: 'main', transport: 'tcp', reason: 'silent' },
      { channel: 'main', transport: 'udp', reason: 'tcp-failed' },
    ]);
    expect(warnings.some((w) => /TCP: .*ECONNREFUSED/.test(w))).toBe(true);
  } finally {
    await udp.close();
  }
});
