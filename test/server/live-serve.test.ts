/**
 * A live stream served next to a file (issue 10, docs/PROTOCOL.md §10.14),
 * in process: bytes written into a LiveSource become segments, each an
 * object `cam/N` (TOI N + 1) on channel "cam", announced by a new FDT
 * instance; an unmodified RqcastClient fetches a segment by name and gets
 * exactly the bytes written, while another fetches the file on "main". The
 * end of the input makes the live FDT Complete="true". A NAME that clashes
 * with a file is refused naming the fix.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { RqcastClient } from '../../lib/client/client';
import { Catalogue } from '../../lib/content/catalogue';
import { LiveSegment, LiveSource } from '../../lib/content/live-source';
import { RqcastServer } from '../../lib/server/server';

let dir: string;
let catalogue: Catalogue;
const FILE = randomBytes(30_000);

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-live-serve-'));
  await fs.writeFile(path.join(dir, 'a.bin'), FILE);
  catalogue = await Catalogue.load([path.join(dir, 'a.bin')]);
});
afterAll(async () => {
  catalogue.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('segments become objects cam/N on channel "cam"; a client fetches one bit-exact beside a file fetch; EOF completes the FDT', async () => {
  const input = new PassThrough();
  const source = new LiveSource({ name: 'cam', dir: path.join(dir, 'spool'), blockBytes: 64 * 1024, blockMs: 200 });
  const segments: LiveSegment[] = [];
  source.on('segment', (s) => segments.push(s));
  await source.start(input);
  const server = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', rateMbps: 50, live: [{ name: 'cam', source }] });
  try {
    const { port } = await server.listen();
    expect(server.channels.map((c) => [c.name, c.tsi])).toEqual([
      ['main', 1],
      ['cam', 2],
    ]);
    const data = randomBytes(150 * 1024);
    input.write(data);
    while (segments.length < 3) await new Promise((r) => setTimeout(r, 20));
    // Two full segments by size, the rest closed by time.
    expect(segments.map((s) => [s.seq, s.length, s.closedBy])).toEqual([
      [0, 65536, 'size'],
      [1, 65536, 'size'],
      [2, 150 * 1024 - 131072, 'time'],
    ]);
    const cam = server.channels[1];
    expect(cam.objects.map((o) => [o.toi, o.name])).toEqual([
      [1, 'cam/0'],
      [2, 'cam/1'],
      [3, 'cam/2'],
    ]);
    expect(cam.fdt.xml).toContain('Complete="false"');
    const out1 = path.join(dir, 'seg1.bin');
    const outFile = path.join(dir, 'a-copy.bin');
    await Promise.all([
      new RqcastClient(`rqcast://127.0.0.1:${port}/cam/cam/1`, { outputFile: out1, transport: 'udp', timeoutMs: 20_000 }).fetch(),
      new RqcastClient(`rqcast://127.0.0.1:${port}//a.bin`, { outputFile: outFile, transport: 'udp', timeoutMs: 20_000 }).fetch(),
    ]);
    expect((await fs.readFile(out1)).equals(data.subarray(65536, 131072))).toBe(true);
    expect((await fs.readFile(outFile)).equals(FILE)).toBe(true);
    // The input ends mid-segment: the rest is a last short segment, then the FDT says Complete.
    const ended = new Promise((r) => source.once('end', r));
    input.end(Buffer.from('tail'));
    await ended;
    expect(segments.map((s) => s.length).slice(3)).toEqual([4]);
    expect(server.channels[1].fdt.xml).toContain('Complete="true"');
    expect(server.channels[1].objects.map((o) => o.name)).toEqual(['cam/0', 'cam/1', 'cam/2', 'cam/3']);
    const out3 = path.join(dir, 'seg3.bin');
    await new RqcastClient(`rqcast://127.0.0.1:${port}/cam/cam/3`, { outputFile: out3, transport: 'udp', timeoutMs: 20_000 }).fetch();
    expect((await fs.readFile(out3)).toString()).toBe('tail');
  } finally {
    await server.close();
    await source.close();
  }
}, 60_000);

test('a live NAME that is a file object, or a prefix of one, or a channel, is refused naming the fix', async () => {
  const source = new LiveSource({ name: 'a.bin', dir: path.join(dir, 'spool2'), blockBytes: 1024 });
  expect(() => new RqcastServer({ catalogue, port: 0, live: [{ name: 'a.bin', source }] })).toThrow(/clashes with the file object "a.bin".*choose another NAME/);
  const main = new LiveSource({ name: 'main', dir: path.join(dir, 'spool3'), blockBytes: 1024 });
  expect(() => new RqcastServer({ catalogue, port: 0, live: [{ name: 'main', source: main }] })).toThrow(/a channel has that name already/);
});

test('an input that stalls: nothing closes meanwhile, the receiver stays joined (renewing) and plays the rest in order', async () => {
  const input = new PassThrough();
  const source = new LiveSource({ name: 'cam', dir: path.join(dir, 'spool4'), blockBytes: 64 * 1024, blockMs: 100 });
  await source.start(input);
  const server = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', rateMbps: 20, live: [{ name: 'cam', source }] });
  let renewed = 0;
  server.on('renewed', () => renewed++);
  try {
    const { port } = await server.listen();
    input.write('before the stall;');
    while (source.stats.segmentsClosed < 1) await new Promise((r) => setTimeout(r, 20));
    const out = new PassThrough();
    let played = '';
    out.on('data', (d: Buffer) => (played += d.toString()));
    const client = new RqcastClient(`rqcast://127.0.0.1:${port}/cam/cam`, { playout: out, transport: 'udp', ttlMs: 600, timeoutMs: 20_000 });
    const fetched = client.fetch();
    while (played === '') await new Promise((r) => setTimeout(r, 20));
    // The stall: 2 s without a byte, more than 3 renewal periods (ttl 600 ms, renewed at half).
    const closedBefore = source.stats.segmentsClosed;
    await new Promise((r) => setTimeout(r, 2000));
    expect(source.stats.segmentsClosed).toBe(closedBefore);
    input.end('after the stall.');
    await fetched;
    expect(played).toBe('before the stall;after the stall.');
    expect(renewed).toBeGreaterThanOrEqual(3);
    expect(client.playoutStats).toMatchObject({ startSeq: 0, segmentsWritten: 2, gaps: 0 });
  } finally {
    await server.close();
    await source.close();
  }
}, 60_000);
