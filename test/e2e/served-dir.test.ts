/**
 * `rqcast serve DIR` while DIR changes (docs/PROTOCOL.md §10.2): a file that
 * appears is announced in a new FDT instance and can be fetched; a file
 * still being written is announced once, whole, after it settles. Real
 * processes on loopback; the assertions count log lines and bytes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NsProcess } from '../support/netns';
import { cliOptions, hostSpawn, logLines, perTestProcesses, rqcastArgv, serveOnLoopback, sha256, startServer, writeContent } from './helpers';

jest.setTimeout(120_000);

const rig = perTestProcesses('served-dir');
const running = rig.running;


/** Resolves with the server's first 'object added' line for `name` (polled from its stderr). */
async function added(server: NsProcess, name: string): Promise<Record<string, unknown>> {
  for (;;) {
    const hit = logLines(server.stderr).find((l) => l.msg === 'object added' && l.object === name);
    if (hit) return hit;
    if (!server.running) throw new Error(`server exited: ${server.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function serveDir(root: string, settle: string): Promise<{ p: NsProcess; port: number }> {
  return serveOnLoopback(running, [root, '--rate', '100', '--settle', settle]);
}

function fetch(port: number, name: string, out: string): Promise<{ code: number | null; stderr: string }> {
  const p = hostSpawn(rqcastArgv('fetch', `rqcast://127.0.0.1:${port}//${name}`, '-o', out, '--timeout', '30s', '-q'), cliOptions({ timeoutMs: 100_000 }));
  running.push(p);
  return p.wait();
}

test('a file that appears in a served directory is announced (new TOI, new FDT instance) and fetched', async () => {
  const root = path.join(rig.dir, 'root');
  fs.mkdirSync(root);
  writeContent(path.join(root, 'a.bin'), 100_000, 1);
  const { p: server, port } = await serveDir(root, '500ms');
  // Written before b.bin: by the time b.bin is announced, the scans have seen these too.
  writeContent(path.join(root, '.hidden.bin'), 1000, 3);
  const outside = path.join(rig.dir, 'outside.bin');
  writeContent(outside, 1000, 4);
  fs.symlinkSync(outside, path.join(root, 'out.bin'));
  const digest = writeContent(path.join(root, 'b.bin'), 300_000, 2);
  const line = await added(server, 'b.bin');
  expect(line).toMatchObject({ object: 'b.bin', toi: 2, length: 300_000, channels: ['main'] });
  // The rescans walk by the first scan's rules (no --dotfiles, no --follow-symlinks): skipped, logged once each, never announced.
  const skipped = logLines(server.stderr).filter((l) => l.msg === 'file skipped');
  expect(skipped.map((l) => path.basename(String(l.path))).sort()).toEqual(['.hidden.bin', 'out.bin']);
  expect(logLines(server.stderr).filter((l) => l.msg === 'object added').map((l) => l.object)).toEqual(['b.bin']);
  const out = path.join(rig.dir, 'out');
  fs.mkdirSync(out);
  const r = await fetch(port, 'b.bin', out);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(sha256(path.join(out, 'b.bin'))).toBe(digest);
});

test('a file being written is not announced until it has settled: one announcement, of the whole file', async () => {
  const root = path.join(rig.dir, 'root');
  fs.mkdirSync(root);
  writeContent(path.join(root, 'a.bin'), 10_000, 3);
  const { p: server, port } = await serveDir(root, '3s');
  const file = path.join(root, 'c.bin');
  const chunk = Buffer.alloc(20_000, 7);
  // 40 appends, one every 100 ms: never unchanged for 3 s until the last.
  for (let i = 0; i < 40; i++) {
    fs.appendFileSync(file, chunk);
    await new Promise((r) => setTimeout(r, 100));
  }
  const line = await added(server, 'c.bin');
  expect(line).toMatchObject({ object: 'c.bin', length: 40 * 20_000 });
  expect(logLines(server.stderr).filter((l) => l.msg === 'object added' && l.object === 'c.bin')).toHaveLength(1);
  const out = path.join(rig.dir, 'out');
  fs.mkdirSync(out);
  expect((await fetch(port, 'c.bin', out)).code).toBe(0);
  expect(fs.statSync(path.join(out, 'c.bin')).size).toBe(40 * 20_000);
});

test('a file replaced while it is being fetched: the server announces the new version (new TOI) in the same FDT instance that drops the old, and the fetch ends with the new content, not a digest error', async () => {
  const file = path.join(rig.dir, 'doc.bin');
  writeContent(file, 1024 * 1024, 21);
  // 1 MiB at 2 Mbit/s: about 4.5 s to fetch.
  const p = await startServer(undefined, undefined, [file, '--port', '0', '--bind', '127.0.0.1', '--rate', '2', '--settle', '500ms']);
  running.push(p);
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(p.stdout)?.[1]);
  const out = path.join(rig.dir, 'out');
  fs.mkdirSync(out);
  const client = hostSpawn(rqcastArgv('fetch', `rqcast://127.0.0.1:${port}`, '-o', out, '--json', '--timeout', '30s'), cliOptions({ timeoutMs: 100_000 }));
  running.push(client);
  await client.waitForStdout(/"type":"progress"/, 60_000);
  // An editor's save: the new content written beside, then renamed over.
  const next = path.join(rig.dir, 'doc.bin.new');
  const digest = writeContent(next, 1024 * 1024, 22);
  fs.renameSync(next, file);
  const r = await client.wait();
  expect(r.code).toBe(0);
  expect(sha256(path.join(out, 'doc.bin'))).toBe(digest);
  expect(r.stdout).toMatch(/"type":"warning","message":"\\"doc\.bin\\" changed on the server: fetching its new version"/);
  expect(fs.readdirSync(out)).toEqual(['doc.bin']);
  const replaced = logLines(p.stderr).filter((l) => l.msg === 'object replaced');
  expect(replaced).toHaveLength(1);
  expect(replaced[0]).toMatchObject({ object: 'doc.bin', oldToi: 1, toi: 2, channels: ['main'] });
});
