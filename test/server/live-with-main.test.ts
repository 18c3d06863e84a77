/**
 * Live streams (issue 10, docs/PROTOCOL.md §10.14) beside what main built
 * meanwhile: the rq:Channel list of every FDT names a live channel, and
 * `rqcast ls` (readCatalogue) lists it as live with the segments it keeps;
 * a regenerating relay refuses a live channel (its FDT is open: regenerate
 * mode serves complete objects only; --mode forward relays it) instead of waiting for
 * ever; the metrics registry reads a server with a live channel; a playout
 * cannot be resumed; a live stream is not served by a server group.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { RqcastClient } from '../../lib/client/client';
import { readCatalogue } from '../../lib/client/catalogue-reader';
import { InvalidClientOptionError } from '../../lib/client/errors';
import { parseRqcastUrl } from '../../lib/client/url';
import { Catalogue } from '../../lib/content/catalogue';
import { LiveSegment, LiveSource } from '../../lib/content/live-source';
import { LiveChannelRelayError, Relay } from '../../lib/relay/relay';
import { registerServerMetrics } from '../../lib/server/metrics';
import { LIVE_RING_CAPACITY, RqcastServer } from '../../lib/server/server';
import type { ChannelStream } from '../../lib/stream/channel-stream';

let dir: string;
let catalogue: Catalogue;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-live-main-'));
  await fs.writeFile(path.join(dir, 'a.bin'), randomBytes(20_000));
  catalogue = await Catalogue.load([path.join(dir, 'a.bin')]);
});
afterAll(async () => {
  catalogue.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function liveServer(): Promise<{ server: RqcastServer; port: number; input: PassThrough; segments: LiveSegment[]; source: LiveSource }> {
  const input = new PassThrough();
  const source = new LiveSource({ name: 'cam', dir: path.join(dir, `spool-${Math.random().toString(16).slice(2)}`), blockBytes: 16 * 1024, blockMs: 100 });
  const segments: LiveSegment[] = [];
  source.on('segment', (s) => segments.push(s));
  await source.start(input);
  const server = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', rateMbps: 20, live: [{ name: 'cam', source }] });
  const { port } = await server.listen();
  input.write(randomBytes(40 * 1024));
  while (segments.length < 2) await new Promise((r) => setTimeout(r, 20));
  return { server, port, input, segments, source };
}

test('rqcast ls: the live channel is in the rq:Channel list and listed as live with its segments; the metrics registry reads the server', async () => {
  const { server, port, input, source } = await liveServer();
  try {
    const listing = await readCatalogue(parseRqcastUrl(`rqcast://127.0.0.1:${port}`), { timeoutMs: 10_000 });
    expect(listing.channels.map((c) => c.name)).toEqual(['main', 'cam']);
    const cam = listing.channels[1];
    expect(cam.live).toBe(true);
    expect(cam.transports).toEqual(['udp']);
    // One FDT instance, whichever the reader decoded first: the segments kept then (possibly none yet, an instance sent before them).
    expect(cam.objects).toBeDefined();
    for (const o of cam.objects ?? []) expect(o.name).toMatch(/^cam\/\d+$/);
    expect(listing.channels[0].live).toBeUndefined();
    const text = await registerServerMetrics(server).metrics();
    expect(text).toContain('cam');
  } finally {
    input.end();
    await server.close();
    await source.close();
  }
}, 30_000);

test('a regenerating relay refuses a live channel, naming it and --mode forward, instead of waiting for its FDT to complete', async () => {
  const { server, port, input, source } = await liveServer();
  const spool = await fs.mkdtemp(path.join(dir, 'relay-'));
  const relay = new Relay({ upstream: `rqcast://127.0.0.1:${port}/cam`, spoolDir: spool, server: { port: 0, host: '127.0.0.1' }, retryAfterMs: 100 });
  try {
    const failed: Error[] = [];
    relay.on('upstream-failed', (e) => failed.push(e));
    const err = await relay.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LiveChannelRelayError);
    expect(err).toBeInstanceOf(InvalidClientOptionError);
    expect((err as Error).message).toMatch(/"cam" is a live stream.*--mode forward/);
    expect(failed).toEqual([]);
    expect(relay.attempts).toBe(1);
  } finally {
    await relay.close();
    input.end();
    await server.close();
    await source.close();
  }
}, 30_000);

test('resume is for files: a playout stream with resume is refused', () => {
  expect(() => new RqcastClient('rqcast://127.0.0.1:4433//a.bin', { playout: new PassThrough(), resume: 'continue' })).toThrow(/cannot be resumed/);
});

test('a live stream is not served by a server group', async () => {
  const source = new LiveSource({ name: 'cam', dir: path.join(dir, 'spool-group'), blockBytes: 16 * 1024, blockMs: 100 });
  expect(() => new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', live: [{ name: 'cam', source }], serverGroup: { index: 0, servers: 2 } })).toThrow(/server group/);
  await source.close();
});

test("each ring is filled to its own size: the live channel's stream builds no packet its short ring cannot take", async () => {
  const { server, input, source } = await liveServer();
  try {
    const byName = (name: string): ChannelStream => server.channels.find((c) => c.name === name)!.stream as ChannelStream;
    // The live ring holds LIVE_RING_CAPACITY packets. A refill asked for the
    // server's ring size (4096) built 3840 more ahead, which waited outside
    // the ring, sequence numbers assigned, in front of every new segment.
    expect(server.channelStats('cam')!.queued).toBeLessThanOrEqual(LIVE_RING_CAPACITY);
    expect(byName('cam').unwrappedPosition).toBeLessThanOrEqual(LIVE_RING_CAPACITY + server.channelStats('cam')!.streamPackets);
    expect(byName('cam').pendingPackets).toBe(0);
    expect(byName('main').pendingPackets).toBe(0);
  } finally {
    input.end();
    await server.close();
    await source.close();
  }
}, 30_000);
