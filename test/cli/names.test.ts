/**
 * Finding 9: a file name with a space or a non-ASCII character used to
 * abort the whole serve. Now such names are served (percent-encoded in
 * Content-Location, decoded by the client), and a name no client could
 * write (a control character) is skipped alone, with its reason.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunningServe, startServe } from '../../lib/cli/serve';
import { runHere, serveOptions } from './support';

let root: string;
let serving: RunningServe;
let base: string;
const files: Record<string, Buffer> = {
  'a b.bin': randomBytes(20_000),
  'é/ü 100%.txt': randomBytes(3_000),
  '日本語.dat': randomBytes(5_000),
};

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-names-'));
  const src = path.join(root, 'src');
  for (const [name, data] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(src, name)), { recursive: true });
    await fs.writeFile(path.join(src, name), data);
  }
  await fs.writeFile(path.join(src, 'tab\there.bin'), randomBytes(10));
  serving = await startServe([src], serveOptions(), { stdout: () => undefined, stderr: process.stderr });
  base = `rqcast://127.0.0.1:${serving.address.port}`;
}, 60_000);

afterAll(async () => {
  await serving.close();
  await fs.rm(root, { recursive: true, force: true });
});

test('serve starts; the odd-but-valid names are objects, the control character one is skipped with its reason', () => {
  expect(serving.catalogue.objects.map((o) => o.name).sort()).toEqual(Object.keys(files).sort());
  expect(serving.catalogue.skipped.map((s) => [path.basename(s.path), s.reason])).toEqual([['tab\there.bin', 'name cannot be served: a control character in the name']]);
});

test('fetch every object: each under its own name, bit-exact', async () => {
  const out = await fs.mkdtemp(path.join(root, 'out-'));
  const r = await runHere(['fetch', base, '-o', out, '-q']);
  expect(r).toEqual({ code: 0, stderr: '' });
  for (const [name, data] of Object.entries(files)) expect([name, (await fs.readFile(path.join(out, name))).equals(data)]).toEqual([name, true]);
});

test('fetch one by its percent-encoded name, one segment or //NAME', async () => {
  const out = await fs.mkdtemp(path.join(root, 'one-'));
  expect((await runHere(['fetch', `${base}/a%20b.bin`, '-o', path.join(out, 'x'), '-q'])).code).toBe(0);
  expect((await fs.readFile(path.join(out, 'x'))).equals(files['a b.bin'])).toBe(true);
  expect((await runHere(['fetch', `${base}//%C3%A9/%C3%BC%20100%25.txt`, '-o', out + '/', '-q'])).code).toBe(0);
  expect((await fs.readFile(path.join(out, 'é', 'ü 100%.txt'))).equals(files['é/ü 100%.txt'])).toBe(true);
});
