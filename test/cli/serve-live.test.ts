/**
 * `rqcast serve FILE --live cam` as a child process (issue 10): bytes
 * written to its stdin become segments `cam/N` on channel "cam", fetched
 * bit-exact by `rqcast fetch` beside the file; the end of stdin (mid-segment)
 * gives a short last segment and the server keeps serving. Bad input: a
 * PATH that does not exist and a NAME that clashes with a file exit 2 with
 * the fix named, before anything listens.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { finished, rqcastChild } from '../support/rqcast-child';


let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-serve-live-'));
  await fs.writeFile(path.join(root, 'a.bin'), randomBytes(20_000));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

test('stdin into --live cam: segments fetched bit-exact by name beside the file; EOF mid-segment gives a short last one', async () => {
  const serve = rqcastChild(['serve', path.join(root, 'a.bin'), '--live', 'cam', '--block-ms', '200', '--port', '0', '--bind', '127.0.0.1', '--json'], 'pipe');
  const served = finished(serve);
  try {
    const info = await new Promise<{ port: number; channels: { name: string; tsi: number }[] }>((resolve, reject) => {
      let out = '';
      serve.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
      });
      serve.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
    });
    expect(info.channels.map((c) => [c.name, c.tsi])).toEqual([
      ['main', 1],
      ['cam', 2],
    ]);
    const first = randomBytes(30_000);
    serve.stdin?.write(first);
    // Segment 0 closes by time (200 ms after its first byte); the fetch waits for the FDT that lists it.
    const out0 = path.join(root, 'cam0.bin');
    const f0 = await finished(rqcastChild(['fetch', `rqcast://127.0.0.1:${info.port}/cam/cam/0`, '-o', out0, '--transport', 'udp', '--timeout', '20s', '--quiet']));
    expect([f0.code, f0.stderr]).toEqual([0, '']);
    expect((await fs.readFile(out0)).equals(first)).toBe(true);
    const tail = randomBytes(777);
    serve.stdin?.end(tail);
    const out1 = path.join(root, 'cam1.bin');
    const f1 = await finished(rqcastChild(['fetch', `rqcast://127.0.0.1:${info.port}/cam/cam/1`, '-o', out1, '--transport', 'udp', '--timeout', '20s', '--quiet']));
    expect([f1.code, f1.stderr]).toEqual([0, '']);
    expect((await fs.readFile(out1)).equals(tail)).toBe(true);
    // The file channel still serves after the live input ended.
    const outA = path.join(root, 'a-copy.bin');
    const fa = await finished(rqcastChild(['fetch', `rqcast://127.0.0.1:${info.port}//a.bin`, '-o', outA, '--transport', 'udp', '--quiet']));
    expect(fa.code).toBe(0);
  } finally {
    serve.kill('SIGTERM');
  }
  const r = await served;
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/live input ended/);
}, 120_000);

test('bad live inputs exit 2 naming the fix: a PATH that does not exist, a NAME that is a file, a bad NAME', async () => {
  const missing = await finished(rqcastChild(['serve', path.join(root, 'a.bin'), '--live', `cam=${path.join(root, 'nope.ts')}`, '--port', '0']));
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/does not exist: create it \(mkfifo/);
  const clash = await finished(rqcastChild(['serve', path.join(root, 'a.bin'), '--live', 'a.bin', '--port', '0'], 'pipe'));
  expect(clash.code).toBe(2);
  expect(clash.stderr).toMatch(/clashes with the file object "a.bin".*choose another NAME/);
  const bad = await finished(rqcastChild(['serve', '--live', 'a/b', '--port', '0']));
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/NAME is one segment/);
}, 60_000);
