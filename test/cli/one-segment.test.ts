/**
 * One-segment URLs against a real server on loopback (docs/PROTOCOL.md
 * §10.8): rqcast://HOST:PORT/X is channel X when the server has one, else
 * object X of channel main; when neither, exit 6 with both readings named
 * and what the server offers listed. The explicit forms keep working.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseChannelSpec } from '../../lib/cli/serve';
import { runHere, servedFiles } from './support';

const A = randomBytes(40_000);
const B = Buffer.from('bee\n');

const served = servedFiles('rqcast-seg-', { 'a.bin': A, 'b.txt': B }, (src) => ({ channel: [parseChannelSpec(`hd:${path.join(src, 'a.bin')}`)] }));

async function outDir(): Promise<string> {
  return fs.mkdtemp(path.join(served.root, 'out-'));
}

test('a channel of that name: the channel (every object it carries)', async () => {
  const dir = await outDir();
  const r = await runHere(['fetch', `${served.base}/hd`, '-o', dir]);
  expect(r.code).toBe(0);
  expect(await fs.readdir(dir)).toEqual(['a.bin']);
  expect((await fs.readFile(path.join(dir, 'a.bin'))).equals(A)).toBe(true);
});

test('no channel of that name: the object of channel main, into -o FILE', async () => {
  const dir = await outDir();
  const file = path.join(dir, 'copy.txt');
  const r = await runHere(['fetch', `${served.base}/b.txt`, '-o', file]);
  expect(r.code).toBe(0);
  expect(await fs.readFile(file)).toEqual(B);
  expect(await fs.readdir(dir)).toEqual(['copy.txt']);
});

test('neither: exit 6, both readings named, the server offer listed, nothing written', async () => {
  const dir = await outDir();
  const r = await runHere(['fetch', `${served.base}/nothing.bin`, '-o', dir]);
  expect(r.code).toBe(6);
  expect(r.stderr).toMatch(/"nothing\.bin" is neither a channel of the server nor an object of channel "main"/);
  expect(r.stderr).toContain('channels "main", "hd"');
  expect(r.stderr).toContain('objects "a.bin", "b.txt"');
  expect(await fs.readdir(dir)).toEqual([]);
});

test('the explicit forms still work: //NAME, CH1,CH2/NAME, CH/; a missing //NAME exits 6 with the offer', async () => {
  const dir = await outDir();
  expect((await runHere(['fetch', `${served.base}//b.txt`, '-o', path.join(dir, 'b1')])).code).toBe(0);
  expect(await fs.readFile(path.join(dir, 'b1'))).toEqual(B);
  expect((await runHere(['fetch', `${served.base}/main,hd/a.bin`, '-o', path.join(dir, 'a1')])).code).toBe(0);
  expect((await fs.readFile(path.join(dir, 'a1'))).equals(A)).toBe(true);
  const sub = await outDir();
  expect((await runHere(['fetch', `${served.base}/hd/`, '-o', sub])).code).toBe(0);
  expect(await fs.readdir(sub)).toEqual(['a.bin']);
  // A trailing '/' means the channel only: no object reading.
  expect((await runHere(['fetch', `${served.base}/b.txt/`, '-o', sub])).code).toBe(3);
  const missing = await runHere(['fetch', `${served.base}//nope`, '-o', sub]);
  expect(missing.code).toBe(6);
  expect(missing.stderr).toContain('objects "a.bin", "b.txt"');
});
