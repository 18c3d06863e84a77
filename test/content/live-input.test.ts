// The live inputs LiveSource reads: a FIFO, a growing file, udp://ADDR:PORT
// (an MPEG-TS-like feed of 7 x 188-byte datagrams), stdin; a PATH that does
// not exist and bad udp:// specs are refused naming the fix. Bytes are
// compared whole; the growing file is counted by bytes, not by time.
import { execFileSync } from 'child_process';
import * as dgram from 'dgram';
import { promises as fs, createWriteStream } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough, Readable } from 'stream';
import { LiveInputError, openLiveInput, parseLiveInput } from '../../lib/content/live-input';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-live-in-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function collect(r: Readable, until: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  return new Promise((resolve, reject) => {
    r.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= until) resolve(Buffer.concat(chunks));
    });
    r.on('end', () => resolve(Buffer.concat(chunks)));
    r.on('error', reject);
  });
}

test('parse: stdin, udp://, paths; bad specs name the fix', () => {
  expect(parseLiveInput(undefined)).toEqual({ kind: 'stdin' });
  expect(parseLiveInput('-')).toEqual({ kind: 'stdin' });
  expect(parseLiveInput('udp://239.1.2.3:5000')).toEqual({ kind: 'udp', address: '239.1.2.3', port: 5000 });
  expect(parseLiveInput('udp://[::1]:5000')).toEqual({ kind: 'udp', address: '::1', port: 5000 });
  expect(parseLiveInput('/tmp/x.ts')).toEqual({ kind: 'path', path: '/tmp/x.ts' });
  for (const bad of ['udp://host.example:5000', 'udp://1.2.3.4', 'udp://1.2.3.4:0', 'udp://1.2.3.4:70000', 'udp://::1:5000']) {
    expect(() => parseLiveInput(bad)).toThrow(/udp:\/\/ADDR:PORT/);
  }
});

test('a PATH that does not exist is refused at once, naming what to give instead', async () => {
  const missing = path.join(dir, 'nope.ts');
  await expect(openLiveInput(parseLiveInput(missing))).rejects.toBeInstanceOf(LiveInputError);
  await expect(openLiveInput(parseLiveInput(missing))).rejects.toThrow(/does not exist: create it \(mkfifo/);
});

test('stdin is the given stream', async () => {
  const stdin = new PassThrough();
  expect(await openLiveInput({ kind: 'stdin' }, { stdin })).toBe(stdin);
});

test('a FIFO is read until its writer closes it', async () => {
  const fifo = path.join(dir, 'feed.fifo');
  execFileSync('mkfifo', [fifo]);
  const reading = openLiveInput(parseLiveInput(fifo));
  const data = Buffer.from('0123456789'.repeat(1000));
  const w = createWriteStream(fifo);
  w.end(data);
  const got = await collect(await reading, Infinity);
  expect(got.equals(data)).toBe(true);
});

test('a growing file is read from its start and followed; it ends after endAfterMs without growth', async () => {
  const file = path.join(dir, 'grow.bin');
  await fs.writeFile(file, Buffer.alloc(1000, 1));
  const r = await openLiveInput(parseLiveInput(file), { pollMs: 10, endAfterMs: 2000 });
  const first = collect(r, Infinity);
  await new Promise((res) => setTimeout(res, 50));
  await fs.appendFile(file, Buffer.alloc(500, 2));
  await new Promise((res) => setTimeout(res, 50));
  await fs.appendFile(file, Buffer.alloc(250, 3));
  const got = await first;
  expect(got.length).toBe(1750);
  expect([got[0], got[999], got[1000], got[1499], got[1500], got[1749]]).toEqual([1, 1, 2, 2, 3, 3]);
});

test('udp://ADDR:PORT: datagrams appended in arrival order (7 x 188-byte TS packets each)', async () => {
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
  const port = probe.address().port;
  probe.close();
  const r = await openLiveInput(parseLiveInput(`udp://127.0.0.1:${port}`));
  const sender = dgram.createSocket('udp4');
  const datagrams = Array.from({ length: 20 }, (_, i) => {
    const d = Buffer.alloc(7 * 188, i);
    for (let k = 0; k < 7; k++) d[k * 188] = 0x47;
    return d;
  });
  const got = collect(r, 20 * 7 * 188);
  for (const d of datagrams) await new Promise<void>((res) => sender.send(d, port, '127.0.0.1', () => res()));
  const bytes = await got;
  sender.close();
  r.destroy();
  expect(bytes.equals(Buffer.concat(datagrams))).toBe(true);
});
