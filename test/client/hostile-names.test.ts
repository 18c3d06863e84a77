/**
 * Content-Location is a URI the client percent-decodes (RFC 3986,
 * lib/protocol/content-location.ts); the FDT is remote input, so no decoded
 * name may leave the output directory: "..", a leading "/", NUL and other
 * control characters, whether written plainly or percent-encoded.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RqcastClient } from '../../lib/client/client';
import { UnfetchableObjectError } from '../../lib/client/errors';
import { FakeServer } from './fake-server';

let root: string;
let out: string;
let server: FakeServer;
let port: number;
const data = (n: number): Buffer => randomBytes(n);
const GOOD = data(3000);
const ABS = data(500);

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-names-'));
  out = path.join(root, 'a', 'out');
  await fs.mkdir(out, { recursive: true });
  server = new FakeServer({
    objects: [
      { name: 'ok%20name%20%C3%A9.bin', data: GOOD },
      { name: '..%2F..%2Fescape.bin', data: data(100) },
      { name: '%2E%2E/up.bin', data: data(100) },
      { name: '../plain-up.bin', data: data(100) },
      { name: 'nul%00.bin', data: data(100) },
      { name: 'ctl%0A.bin', data: data(100) },
      { name: '%2Fabs.bin', data: ABS },
    ],
  });
  port = await server.listen();
});

afterAll(async () => {
  await server.close();
  await fs.rm(root, { recursive: true, force: true });
});

async function tree(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name))).sort();
}

test('every object: the decoded good names written, the escaping ones refused with a warning, nothing outside the output directory', async () => {
  const client = new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: out, timeoutMs: 5000, retryMs: 20 });
  const warnings: string[] = [];
  client.on('warning', (w) => warnings.push(w));
  const summary = await client.fetch();
  expect(summary.objects.map((o) => o.name).sort()).toEqual(['/abs.bin', 'ok name é.bin']);
  // A leading '/' is dropped: the object lands inside the directory.
  expect(await tree(root)).toEqual(['a/out/abs.bin', 'a/out/ok name é.bin']);
  expect((await fs.readFile(path.join(out, 'ok name é.bin'))).equals(GOOD)).toBe(true);
  expect((await fs.readFile(path.join(out, 'abs.bin'))).equals(ABS)).toBe(true);
  expect(warnings.filter((w) => /"\.\." in the name/.test(w))).toHaveLength(3);
  expect(warnings.filter((w) => /control characters in the name/.test(w))).toHaveLength(2);
});

test('asking for an escaping name by URL fails (UnfetchableObjectError), writes nothing', async () => {
  const dir = path.join(root, 'b', 'out');
  await fs.mkdir(dir, { recursive: true });
  const client = new RqcastClient(`rqcast://127.0.0.1:${port}//..%2F..%2Fescape.bin`, { outputDir: dir, timeoutMs: 5000, retryMs: 20 });
  await expect(client.fetch()).rejects.toBeInstanceOf(UnfetchableObjectError);
  expect((await tree(root)).filter((f) => !f.startsWith('a/'))).toEqual([]);
});

test('names in messages and listings cannot steer a terminal: control characters (C0, DEL, C1) are written as \\uXXXX', async () => {
  const { quotedName, printableName, offerText } = await import('../../lib/client/errors');
  const { listingText } = await import('../../lib/cli/ls');
  const evil = 'a\u001b[2Jb\u009b31mc\u007fd"e\\f';
  expect(printableName(evil)).toBe('a\\u001b[2Jb\\u009b31mc\\u007fd"e\\f');
  expect(quotedName(evil)).toBe('"a\\u001b[2Jb\\u009b31mc\\u007fd\\"e\\\\f"');
  expect(offerText({ objects: [evil], channels: ['x\u0007'] })).toBe(`channels "x\\u0007"; objects ${quotedName(evil)}`);
  const text = listingText({ channels: [{ name: 'ch\u001b]0;t\u0007', tsi: 1, rateBps: 1e6, transports: ['udp'], objects: [{ name: evil, toi: 1, size: 1, sha256: '00'.repeat(32) }] }] });
  // eslint-disable-next-line no-control-regex
  expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  expect(text).toContain('channel ch\\u001b]0;t\\u0007 (tsi 1)');
});
