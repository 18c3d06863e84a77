/**
 * Finding 7: serving a directory served what a link inside it pointed at
 * (a system file) and its dotfiles. Now only regular files inside the
 * directory are served by default; links leading out, links to anything
 * but a file, special files, dotfiles and dot-directories are skipped and
 * said (the catalogue's `skipped`, serve's "file skipped" log lines, the
 * --json listening line); --follow-symlinks and --dotfiles serve them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startServe } from '../../lib/cli/serve';
import { Catalogue } from '../../lib/content/catalogue';
import { runHere, serveOptions } from './support';

let root: string;
let site: string;
let secret: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-files-'));
  site = path.join(root, 'site');
  const outside = path.join(root, 'outside');
  secret = path.join(outside, 'secret.txt');
  await fs.mkdir(path.join(site, 'sub'), { recursive: true });
  await fs.mkdir(path.join(site, '.git'), { recursive: true });
  await fs.mkdir(outside);
  await fs.writeFile(secret, 'not for clients\n');
  await fs.writeFile(path.join(site, 'a.txt'), 'a\n');
  await fs.writeFile(path.join(site, 'sub', 'b.txt'), 'b\n');
  await fs.writeFile(path.join(site, '.env'), 'PASSWORD=x\n');
  await fs.writeFile(path.join(site, '.git', 'config'), '[core]\n');
  await fs.symlink(path.join(site, 'sub', 'b.txt'), path.join(site, 'link-in'));
  await fs.symlink(secret, path.join(site, 'link-out'));
  await fs.symlink('../outside', path.join(site, 'link-dir'));
  await fs.symlink(path.join(root, 'nowhere'), path.join(site, 'link-broken'));
  execFileSync('mkfifo', [path.join(site, 'fifo')]);
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const skippedOf = (c: Catalogue): string[][] => c.skipped.map((s) => [path.relative(site, s.path), s.reason]).sort();

test('by default: regular files inside (a link inside too), every other entry skipped with its reason', async () => {
  const c = await Catalogue.load([site]);
  try {
    expect(c.objects.map((o) => o.name)).toEqual(['a.txt', 'link-in', 'sub/b.txt']);
    expect(skippedOf(c)).toEqual([
      ['.env', 'hidden file (--dotfiles serves it)'],
      ['.git', 'hidden directory (--dotfiles serves it)'],
      ['fifo', 'not a regular file (a device, FIFO or socket)'],
      ['link-broken', 'broken symbolic link'],
      ['link-dir', 'symbolic link to something other than a file'],
      ['link-out', `symbolic link leading out of the served directory, to ${await fs.realpath(secret)} (--follow-symlinks serves it)`],
    ]);
  } finally {
    c.close();
  }
});

test('followSymlinks and dotfiles serve what they name, nothing more', async () => {
  const links = await Catalogue.load([site], { followSymlinks: true });
  const dots = await Catalogue.load([site], { dotfiles: true });
  try {
    expect(links.objects.map((o) => o.name)).toEqual(['a.txt', 'link-in', 'link-out', 'sub/b.txt']);
    expect(dots.objects.map((o) => o.name)).toEqual(['.env', '.git/config', 'a.txt', 'link-in', 'sub/b.txt']);
  } finally {
    links.close();
    dots.close();
  }
  // A FILE argument is served whatever it is: the operator named it.
  const named = await Catalogue.load([path.join(site, 'link-out'), path.join(site, '.env')]);
  try {
    expect(named.objects.map((o) => o.name)).toEqual(['link-out', '.env']);
  } finally {
    named.close();
  }
});

test('serve: a fetch of everything gets only the files inside; --json lists the skipped; --follow-symlinks --dotfiles serve them', async () => {
  const lines: string[] = [];
  const s = await startServe([site], serveOptions({ json: true }), { stdout: (l) => lines.push(l), stderr: process.stderr });
  try {
    const listening = JSON.parse(lines[0]) as { skipped: { path: string; reason: string }[] };
    expect(listening.skipped.map((k) => path.relative(site, k.path)).sort()).toEqual(['.env', '.git', 'fifo', 'link-broken', 'link-dir', 'link-out']);
    const out = await fs.mkdtemp(path.join(root, 'out-'));
    expect((await runHere(['fetch', `rqcast://127.0.0.1:${s.address.port}`, '-o', out, '-q'])).code).toBe(0);
    expect((await fs.readdir(out, { recursive: true })).sort()).toEqual(['a.txt', 'link-in', 'sub', 'sub/b.txt']);
  } finally {
    await s.close();
  }
  const all = await startServe([site], serveOptions({ followSymlinks: true, dotfiles: true }), { stdout: () => undefined, stderr: process.stderr });
  try {
    expect(all.catalogue.objects.map((o) => o.name)).toEqual(['.env', '.git/config', 'a.txt', 'link-in', 'link-out', 'sub/b.txt']);
  } finally {
    await all.close();
  }
});

test('the rqcast serve command logs one "file skipped" warning per skipped entry, with its reason', async () => {
  const REPO = path.resolve(__dirname, '../..');
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(REPO, 'lib/cli/main.ts'), 'serve', site, '--port', '0', '--bind', '127.0.0.1'], {
    cwd: REPO,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(REPO, 'tsconfig.json') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/listening on /.test(out)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  const skips = stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; path?: string; reason?: string })
    .filter((l) => l.msg === 'file skipped');
  expect(skips.map((l) => [l.level, path.basename(l.path ?? '')]).sort()).toEqual([
    [40, '.env'],
    [40, '.git'],
    [40, 'fifo'],
    [40, 'link-broken'],
    [40, 'link-dir'],
    [40, 'link-out'],
  ]);
  expect(skips.find((l) => l.path?.endsWith('link-out'))?.reason).toMatch(/leading out of the served directory/);
}, 60_000);
