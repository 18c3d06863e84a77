import type { ChannelStream } from '../../lib/stream/channel-stream';
/**
 * `serve --metrics`: the Prometheus endpoint (lib/server/metrics-http.ts)
 * over the server's registry (lib/server/metrics.ts).
 *
 * - A scrape after a real loopback transfer (startServe, the CLI's own
 *   path, and an RqcastClient): one join, one leave, packets and bytes sent
 *   on channel main by UDP at least what the client received and each
 *   datagram between the stream's smallest and largest packet, the drop and
 *   error series present at 0, prepared-block memory as a gauge equal to
 *   the server's own count, and a cookie refused for its address counted
 *   under its reason; in ACK mode under loss, the replacements the server
 *   counts cover those the client received.
 * - Hostile requests: another path (404), another method (405), oversized
 *   headers (431), more connections than MAX_CONNECTIONS (closed at once),
 *   each counted; a port in use is a clear error.
 */
import { spawnSync } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import * as dgram from 'dgram';
import { promises as fs } from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { RqcastClient } from '../../lib/client/client';
import { startServe, type RunningServe, type ServeCliOptions } from '../../lib/cli/serve';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { MessageType } from '../../lib/protocol/messages';
import { MAX_CONNECTIONS, startMetricsEndpoint } from '../../lib/server/metrics-http';
import { Registry } from 'prom-client';
import { parseMetricsListen } from '../../lib/cli/options';
import { UsageError } from '../../lib/cli/errors';

let root: string;
let file: string;
let data: Buffer;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-metrics-'));
  file = path.join(root, 'm.bin');
  data = randomBytes(400_000);
  await fs.writeFile(file, data);
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function serveOptions(more: Partial<ServeCliOptions> = {}): ServeCliOptions {
  return { port: 0, bind: '127.0.0.1', rate: 50, channel: [], symbolSize: 1280, memory: 64, passOverhead: 15, code: true, quiet: true, ...more };
}

const silentIo = { stdout: () => undefined, stderr: process.stderr, logStream: { write: () => true } };

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(url: string, o: { method?: string; path?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: o.path ?? u.pathname, method: o.method ?? 'GET', headers: o.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one series in a Prometheus text exposition (undefined if absent). */
function value(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

function typeOf(text: string, name: string): string | undefined {
  return new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1];
}

/** A COOKIE for `from`, then a JOIN with it from `other` (another port: the cookie is not for that address). */
async function joinWithAnothersCookie(port: number): Promise<void> {
  const a = dgram.createSocket('udp4');
  const b = dgram.createSocket('udp4');
  await Promise.all([a, b].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
  try {
    const cookie = await new Promise<Uint8Array>((resolve) => {
      a.on('message', (m) => {
        const d = decodeControl(m);
        if (d.ok && d.msg.type === MessageType.Cookie) resolve(d.msg.cookie);
      });
      a.send(encodeControl({ type: MessageType.Hello, nonce: randomBytes(8) }), port, '127.0.0.1');
    });
    const refused = new Promise<void>((resolve) => {
      b.on('message', (m) => {
        const d = decodeControl(m);
        if (d.ok && d.msg.type === MessageType.Error) resolve();
      });
    });
    b.send(encodeControl({ type: MessageType.Join, cookie, channels: ['main'], until: { kind: 'duration', ms: 10_000 }, ack: false }), port, '127.0.0.1');
    await refused;
  } finally {
    a.close();
    b.close();
  }
}

describe('serve --metrics: a scrape after a real transfer', () => {
  let running: RunningServe | undefined;

  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  test('counters match the transfer: joins, leaves, packets and bytes per channel and transport, prepared memory, cookie refusals', async () => {
    running = await startServe([file], serveOptions({ metrics: { address: '127.0.0.1', port: 0 } }), silentIo);
    const metrics = running.metrics;
    expect(metrics).toBeDefined();
    expect(metrics!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    const out = await fs.mkdtemp(path.join(root, 'out-'));
    const client = new RqcastClient(`rqcast://127.0.0.1:${running.address.port}`, { outputDir: out, timeoutMs: 30_000 });
    const s = await client.fetch();
    const got = await fs.readFile(path.join(out, 'm.bin'));
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    await joinWithAnothersCookie(running.address.port);

    const reply = await request(metrics!.url);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = reply.body;

    // One client joined and left (LEAVE at the end of its fetch); none is joined now.
    expect(value(text, 'rqcast_server_sessions_started_total')).toBe(1);
    expect(value(text, 'rqcast_server_sessions_left_total')).toBe(1);
    expect(value(text, 'rqcast_server_sessions_expired_total')).toBe(0);
    expect(value(text, 'rqcast_server_sessions')).toBe(0);

    // What went out on channel main by UDP covers what the client received.
    const udp = '{channel="main",tsi="1",transport="udp"}';
    const packets = value(text, `rqcast_sent_packets_total${udp}`)!;
    const bytes = value(text, `rqcast_sent_bytes_total${udp}`)!;
    expect(packets).toBeGreaterThanOrEqual(s.packetsReceived);
    expect(bytes).toBeGreaterThanOrEqual(s.bytesReceived);
    expect(s.packetsReceived).toBeGreaterThanOrEqual(s.neededSymbols);
    // Every datagram is one stream packet: a data packet (its size fixed by T) or an FDT packet.
    const stream = running.server.channels[0].stream as ChannelStream;
    const smallest = Math.min(stream.dataPacketSize, stream.fdtPacketSize);
    const largest = Math.max(stream.dataPacketSize, stream.fdtPacketSize);
    expect(bytes).toBeGreaterThanOrEqual(packets * smallest);
    expect(bytes).toBeLessThanOrEqual(packets * largest);
    // The replicator's own count of the channel, read the same way.
    const rep = running.server.channelStats('main')!;
    expect(packets).toBeLessThanOrEqual(rep.datagrams);

    // Drops and send errors: the series exist, and nothing was dropped on loopback at 50 Mbit/s.
    expect(value(text, `rqcast_replicator_drops_total{channel="main",tsi="1",transport="udp",reason="eagain"}`)).toBe(0);
    expect(value(text, `rqcast_replicator_drops_total{channel="main",tsi="1",transport="udp",reason="enobufs"}`)).toBe(0);
    expect(value(text, `rqcast_replicator_send_errors_total${udp}`)).toBe(0);
    // The rate stalls of the sender thread took, and paid back: counters, repaid never more than forfeited.
    expect(typeOf(text, 'rqcast_pacing_stall_bytes_total')).toBe('counter');
    const forfeited = value(text, `rqcast_pacing_stall_bytes_total{channel="main",tsi="1",transport="udp",kind="forfeited"}`)!;
    const repaid = value(text, `rqcast_pacing_stall_bytes_total{channel="main",tsi="1",transport="udp",kind="repaid"}`)!;
    expect(forfeited).toBeGreaterThanOrEqual(0);
    expect(repaid).toBeGreaterThanOrEqual(0);
    expect(repaid).toBeLessThanOrEqual(forfeited);

    // Prepared-block memory is a level: a gauge, equal to the server's count.
    expect(typeOf(text, 'rqcast_server_prepared_bytes')).toBe('gauge');
    const prepared = value(text, 'rqcast_server_prepared_bytes')!;
    expect(prepared).toBeGreaterThan(data.length);
    expect(prepared).toBe(running.server.counters.preparedBytes);

    // The cookie presented from another port: one refusal, under its reason.
    expect(value(text, 'rqcast_cookie_refusals_total{reason="wrongAddress"}')).toBe(1);
    expect(value(text, 'rqcast_cookie_refusals_total{reason="forged"}')).toBe(0);
    expect(value(text, 'rqcast_server_cookies_issued_total')).toBe(2);
    // No ACK mode: no replacements asked for or sent.
    expect(value(text, 'rqcast_server_fresh_packets_total')).toBe(0);

    // Counters only grow between scrapes; a second scrape sees the stream go on.
    const again = (await request(metrics!.url)).body;
    expect(value(again, `rqcast_sent_packets_total${udp}`)!).toBeGreaterThanOrEqual(packets);
    expect(value(again, 'rqcast_server_sessions_started_total')).toBe(1);
  }, 60_000);

  test('ACK mode under loss: the replacements the server counts cover the ones the client received', async () => {
    // 4 MB at 50 Mbit/s: about 0.7 s, many ACK intervals, so replacements
    // arrive before the blocks decode however the pacer's bursts fall.
    const big = path.join(root, 'ack.bin');
    await fs.writeFile(big, randomBytes(4_000_000));
    running = await startServe([big], serveOptions({ metrics: { port: 0 } }), silentIo);
    const out = await fs.mkdtemp(path.join(root, 'out-'));
    const client = new RqcastClient(`rqcast://127.0.0.1:${running.address.port}`, { outputDir: out, timeoutMs: 30_000, ack: true, ackIntervalMs: 20, lossRate: 0.1, lossSeed: 5 });
    const s = await client.fetch();
    expect(s.acksSent).toBeGreaterThan(0);
    expect(s.replacements).toBeGreaterThan(0);
    const text = (await request(running.metrics!.url)).body;
    // The scrape may come before the last ACKs are read: at most what was sent, and some.
    expect(value(text, 'rqcast_server_ack_received_total')!).toBeGreaterThan(0);
    expect(value(text, 'rqcast_server_ack_received_total')!).toBeLessThanOrEqual(s.acksSent);
    // Every replacement the client received was sent and counted; some may still have been in flight when it left.
    expect(value(text, 'rqcast_server_fresh_packets_total')!).toBeGreaterThanOrEqual(s.replacements);
    expect(value(text, 'rqcast_server_fresh_symbols_requested_total')!).toBeGreaterThanOrEqual(value(text, 'rqcast_server_fresh_packets_total')!);
  }, 60_000);

  test('over TCP (root, nftables): the packets copied to the connection cover what the client received by TCP', async () => {
    const nft = spawnSync('nft', ['--version']);
    if (process.getuid?.() !== 0 || nft.error || nft.status !== 0) {
      console.log('skipped: rqcast serve --tcp needs root and nft');
      return;
    }
    running = await startServe([file], serveOptions({ tcp: true, metrics: { port: 0 } }), silentIo);
    const out = await fs.mkdtemp(path.join(root, 'out-'));
    const client = new RqcastClient(`rqcast://127.0.0.1:${running.address.port}`, { outputDir: out, timeoutMs: 30_000, transport: 'tcp' });
    const s = await client.fetch();
    expect(s.channels.map((c) => c.transport)).toEqual(['tcp']);
    expect(createHash('sha256').update(await fs.readFile(path.join(out, 'm.bin'))).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    const text = (await request(running.metrics!.url)).body;
    const tcp = '{channel="main",tsi="1",transport="tcp"}';
    const packets = value(text, `rqcast_sent_packets_total${tcp}`)!;
    const bytes = value(text, `rqcast_sent_bytes_total${tcp}`)!;
    expect(packets).toBeGreaterThanOrEqual(s.packetsReceived);
    expect(bytes).toBeGreaterThanOrEqual(s.bytesReceived);
    const stream = running.server.channels[0].stream as ChannelStream;
    expect(bytes).toBeLessThanOrEqual(packets * Math.max(stream.dataPacketSize, stream.fdtPacketSize));
    expect(value(text, 'rqcast_server_tcp_connections_opened_total')).toBe(1);
    expect(value(text, 'rqcast_server_tcp_segments_out_total')!).toBeGreaterThan(0);
    // Nothing went to the channel by UDP: the one client is a TCP connection.
    expect(value(text, `rqcast_sent_packets_total{channel="main",tsi="1",transport="udp"}`)).toBe(0);
  }, 60_000);

  test('the listening line names the metrics URL; a metrics port in use is a clear error', async () => {
    const lines: string[] = [];
    running = await startServe([file], serveOptions({ metrics: { port: 0 } }), { ...silentIo, stdout: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/^listening on 127\.0\.0\.1:\d+ \(metrics http:\/\/127\.0\.0\.1:\d+\/metrics\)$/);
    const taken = running.metrics!.address.port;
    await expect(startServe([file], serveOptions({ metrics: { port: taken } }), silentIo)).rejects.toThrow(
      new RegExp(`--metrics 127\\.0\\.0\\.1:${taken}: the port is in use; choose another port`),
    );
  });
});

describe('the metrics endpoint refuses what it does not serve', () => {
  test('another path: 404; another method: 405 with Allow; oversized headers: 431; each counted', async () => {
    const registry = new Registry();
    const e = await startMetricsEndpoint({ registry, port: 0 });
    try {
      expect((await request(e.url, { path: '/' })).status).toBe(404);
      expect((await request(e.url, { path: '/metrics/../etc/passwd' })).status).toBe(404);
      const post = await request(e.url, { method: 'POST' });
      expect(post.status).toBe(405);
      expect(post.headers.allow).toBe('GET, HEAD');
      const big = await request(e.url, { headers: { 'x-big': 'a'.repeat(16 * 1024) } }).catch((err: NodeJS.ErrnoException) => ({ status: -1, headers: {}, body: String(err.code) }));
      expect(big.status).toBe(431);
      const head = await request(e.url, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.body).toBe('');
      expect((await request(e.url + '?x=1')).status).toBe(200);
      expect(e.counters.refused).toEqual({ path: 2, method: 1, headers: 1 });
      expect(e.counters.served).toBe(2);
      const text = (await request(e.url)).body;
      expect(value(text, 'rqcast_metrics_http_refused_total{reason="path"}')).toBe(2);
      expect(value(text, 'rqcast_metrics_http_refused_total{reason="headers"}')).toBe(1);
    } finally {
      await e.close();
    }
  });

  test(`more than ${MAX_CONNECTIONS} connections at once: the extra ones are closed at once, the others stay and are served`, async () => {
    const e = await startMetricsEndpoint({ registry: new Registry(), port: 0 });
    const extra = 4;
    const sockets: net.Socket[] = [];
    let closedByServer = 0;
    try {
      let allClosed!: () => void;
      const extraClosed = new Promise<void>((r) => (allClosed = r));
      for (let i = 0; i < MAX_CONNECTIONS + extra; i++) {
        const s = net.connect(e.address.port, '127.0.0.1');
        s.on('error', () => undefined);
        s.on('close', () => {
          if (++closedByServer === extra) allClosed();
        });
        sockets.push(s);
        await new Promise<void>((r) => s.once('connect', () => r()));
      }
      await extraClosed;
      expect(closedByServer).toBe(extra);
      // One that stayed is served.
      const kept = sockets.find((s) => !s.destroyed && s.readyState === 'open')!;
      const reply = await new Promise<string>((resolve) => {
        let got = '';
        kept.on('data', (d) => {
          got += d.toString();
          if (got.includes('\r\n\r\n')) resolve(got);
        });
        kept.write('GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n');
      });
      expect(reply).toMatch(/^HTTP\/1\.1 200 /);
      expect(closedByServer).toBe(extra);
    } finally {
      for (const s of sockets) s.destroy();
      await e.close();
    }
  });
});

test('a second endpoint on the same registry reports its own refusals', async () => {
  const registry = new Registry();
  const a = await startMetricsEndpoint({ registry, port: 0 });
  await request(a.url, { path: '/a' });
  await a.close();
  const b = await startMetricsEndpoint({ registry, port: 0 });
  try {
    await request(b.url, { method: 'DELETE' });
    const text = (await request(b.url)).body;
    expect(value(text, 'rqcast_metrics_http_refused_total{reason="path"}')).toBe(0);
    expect(value(text, 'rqcast_metrics_http_refused_total{reason="method"}')).toBe(1);
  } finally {
    await b.close();
  }
});

test('--metrics [ADDR:]PORT: a port alone is this host only; IPv4, bracketed IPv6; anything else is a usage error with examples', () => {
  expect(parseMetricsListen('9464')).toEqual({ port: 9464 });
  expect(parseMetricsListen('0.0.0.0:9464')).toEqual({ address: '0.0.0.0', port: 9464 });
  expect(parseMetricsListen('[::1]:9464')).toEqual({ address: '::1', port: 9464 });
  for (const bad of ['', 'localhost:9464', '::1:9464', '[::1]', '1.2.3:9464', '65536', '-1', '9464x']) {
    expect(() => parseMetricsListen(bad)).toThrow(UsageError);
  }
  expect(() => parseMetricsListen('x')).toThrow(/e\.g\. 9464, 127\.0\.0\.1:9464, 0\.0\.0\.0:9464 or \[::1\]:9464/);
});
