/**
 * `rqcast fetch URL -o -` (progressive playout, issue 10): a 64 MiB object
 * (5 source blocks) from a real `rqcast serve`, its stdout piped into
 * `sha256sum`. The digest matches, and the first byte reaches stdout before
 * half of the transfer is over: the server sends the blocks in order (each
 * its pass quota before the next, docs/PROTOCOL.md §10.3) and the client
 * writes each block as soon as it and the ones before it are decoded. Both
 * instants are of the same run: the transfer starts with the first progress
 * line that counts a packet and ends when the fetch exits.
 *
 * Also: a digest mismatch with -o - still exits 5 (after the bytes went
 * out), and -o - without an object name is a usage error.
 */
import { ChildProcess, spawn } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FakeServer } from '../client/fake-server';
import { rqcastChild } from '../support/rqcast-child';

const SIZE = Number(process.env.PLAYOUT_MIB ?? 64) * 2 ** 20;

let root: string;
let serve: ChildProcess | undefined;
let port = 0;
let digest = '';
let fake: FakeServer | undefined;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-playout-'));
  const data = randomBytes(SIZE);
  digest = createHash('sha256').update(data).digest('hex');
  await fs.writeFile(path.join(root, 'big.bin'), data);
  serve = rqcastChild(['serve', path.join(root, 'big.bin'), '--port', '0', '--bind', '127.0.0.1', '--rate', '100', '--quiet']);
  port = await new Promise<number>((resolve, reject) => {
    let out = '';
    serve?.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on [^\n]*:(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    serve?.on('exit', (code) => reject(new Error(`rqcast serve exited with ${code}`)));
  });
}, 180_000);

afterAll(async () => {
  const p = serve;
  if (p && p.exitCode === null) {
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }
  await fake?.close();
  await fs.rm(root, { recursive: true, force: true });
});

test('64 MiB to stdout | sha256sum: the digest matches; the first byte is out before half of the transfer', async () => {
  const fetch = rqcastChild(['fetch', `rqcast://127.0.0.1:${port}//big.bin`, '-o', '-', '--json', '--transport', 'udp']);
  const sum = spawn('sha256sum', [], { stdio: ['pipe', 'pipe', 'pipe'] });
  // Both waits from the start: sha256sum may close before the fetch's 'close' (which also waits for its stderr).
  const fetchClosed = new Promise<number | null>((r) => fetch.on('close', r));
  const sumClosed = new Promise((r) => sum.on('close', r));
  let firstByteAt = 0;
  let bytes = 0;
  fetch.stdout?.on('data', (d: Buffer) => {
    if (firstByteAt === 0) firstByteAt = Date.now();
    bytes += d.length;
  });
  fetch.stdout?.pipe(sum.stdin!);
  let stderr = '';
  let startAt = 0;
  fetch.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (startAt === 0 && /"type":"progress"[^\n]*"packetsReceived":[1-9]/.test(stderr)) startAt = Date.now();
  });
  let sumOut = '';
  sum.stdout?.on('data', (d: Buffer) => (sumOut += d.toString()));
  const code = await fetchClosed;
  const endAt = Date.now();
  await sumClosed;
  if (code !== 0) throw new Error(`fetch exited ${code}: ${stderr.slice(-2000)}`);
  expect(bytes).toBe(SIZE);
  expect(sumOut.split(/\s/)[0]).toBe(digest);
  // JSON lines went to stderr (stdout is the object): the summary is there.
  expect(stderr).toMatch(/"type":"summary"/);
  expect(startAt).toBeGreaterThan(0);
  const transfer = endAt - startAt;
  const first = firstByteAt - startAt;
  console.log(`[playout] ${SIZE / 2 ** 20} MiB: first byte ${first} ms after the first packet, transfer ${transfer} ms (${((100 * first) / transfer).toFixed(1)}%)`);
  expect(first).toBeLessThan(transfer / 2);
}, 180_000);

test('-o - with a digest mismatch: every byte out, exit 5 and the reason on stderr', async () => {
  const A = randomBytes(40_000);
  fake = new FakeServer({ objects: [{ name: 'x.bin', data: A, sha256: Buffer.alloc(32, 9) }] });
  const fakePort = await fake.listen();
  const fetch = rqcastChild(['fetch', `rqcast://127.0.0.1:${fakePort}//x.bin`, '-o', '-', '--transport', 'udp']);
  const chunks: Buffer[] = [];
  let stderr = '';
  fetch.stdout?.on('data', (d: Buffer) => chunks.push(d));
  fetch.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => fetch.on('close', r));
  expect(code).toBe(5);
  expect(stderr).toMatch(/SHA-256/);
  expect(Buffer.concat(chunks).equals(A)).toBe(true);
}, 60_000);

test('-o - needs one object named in the URL: exit 2 naming the fix', async () => {
  const fetch = rqcastChild(['fetch', `rqcast://127.0.0.1:${port}`, '-o', '-']);
  let stderr = '';
  fetch.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => fetch.on('close', r));
  expect(code).toBe(2);
  expect(stderr).toMatch(/name it in the URL/);
}, 60_000);
