// The CLI's V8 code cache (lib/cli/compile-cache.ts): modules compiled from
// it only when their source is exactly the one stored, resolutions reused
// only while their file is there, and a cache that is corrupt, of another
// Node, unwritable or in a directory others can write is ignored: the
// modules still load and run. Each case runs in a fresh process (the cache
// hooks Node's own loader, which jest's module registry does not use), and
// counts what the cache did (CompileCacheStats), never how long it took.
import { spawn, spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compileCacheFile, type CompileCacheStats } from '../../lib/cli/compile-cache';
import { serveOnLoopback, stopProcess, transpiledRoot } from '../e2e/helpers';
import type { NsProcess } from '../support/netns';

let dir: string;
let root: string;

beforeAll(() => {
  root = transpiledRoot();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-compile-cache-'));
}, 120_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Stats = CompileCacheStats;

test('where the cache file is: RQCAST_COMPILE_CACHE, else XDG_CACHE_HOME/rqcast, else ~/.cache/rqcast; off, or none without a home; one file per command and installation', () => {
  const name = (f: string | undefined): string => path.basename(f ?? '');
  const file = compileCacheFile('fetch', { RQCAST_COMPILE_CACHE: '/c', XDG_CACHE_HOME: '/x', HOME: '/h' }, '/inst/dist/cli');
  expect(path.dirname(file ?? '')).toBe('/c');
  expect(name(file)).toMatch(new RegExp(`^compile-fetch-[0-9a-f]{8}-node${process.versions.node.replace(/\./g, '\\.')}-v8-.*-${process.arch}\\.bin$`));
  expect(path.dirname(compileCacheFile('fetch', { XDG_CACHE_HOME: '/x', HOME: '/h' }) ?? '')).toBe('/x/rqcast');
  expect(path.dirname(compileCacheFile('fetch', { HOME: '/h' }) ?? '')).toBe('/h/.cache/rqcast');
  expect(compileCacheFile('fetch', {})).toBeUndefined();
  expect(compileCacheFile('fetch', { RQCAST_COMPILE_CACHE: 'off', HOME: '/h' })).toBeUndefined();
  expect(compileCacheFile('fetch', { RQCAST_COMPILE_CACHE: '0', HOME: '/h' })).toBeUndefined();
  // Another installation (dist/ beside ts-node's lib/, another checkout), another command: another file; no path from the command line.
  expect(name(compileCacheFile('fetch', { HOME: '/h' }, '/a/dist/cli'))).not.toBe(name(compileCacheFile('fetch', { HOME: '/h' }, '/b/dist/cli')));
  expect(name(compileCacheFile('serve', { HOME: '/h' }))).toMatch(/^compile-serve-/);
  expect(name(compileCacheFile('../../x', { HOME: '/h' }))).toMatch(/^compile-other-/);
});

/** Loads `entry` in a fresh process through a cache over `file`; its exports' `value` and the cache's counts. */
function loadThrough(file: string, entry: string, nodeArgs: string[] = []): { value: unknown; stats: Stats } {
  const script = `
    const { CompileCache } = require(${JSON.stringify(path.join(root, 'dist', 'cli', 'compile-cache.js'))});
    const cache = new CompileCache(${JSON.stringify(file)}).install();
    const value = require(${JSON.stringify(entry)}).value;
    cache.uninstall();
    cache.save();
    process.stdout.write(JSON.stringify({ value, stats: cache.stats }));`;
  const r = spawnSync(process.execPath, [...nodeArgs, '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as { value: unknown; stats: Stats };
}

/** A two-module package: a.js requires ./b and reports b's value (made once per tag). */
function fixture(tag: string): { pkg: string; entry: string; cacheDir: string; file: string } {
  const pkg = path.join(dir, tag);
  const cacheDir = path.join(dir, `${tag}-cache`);
  if (!fs.existsSync(pkg)) {
    fs.mkdirSync(pkg);
    fs.writeFileSync(path.join(pkg, 'a.js'), "'use strict';\nconst b = require('./b');\nexports.value = 'a+' + b.value;\n");
    fs.writeFileSync(path.join(pkg, 'b.js'), "'use strict';\nexports.value = 'b1';\n");
    fs.mkdirSync(cacheDir, { mode: 0o700 });
  }
  return { pkg, entry: path.join(pkg, 'a.js'), cacheDir, file: path.join(cacheDir, 'c.bin') };
}

test('first run compiles from source and writes; the next compiles every module and resolves every require from the cache, and writes nothing', () => {
  const f = fixture('warm');
  const first = loadThrough(f.file, f.entry);
  expect(first.value).toBe('a+b1');
  expect(first.stats).toMatchObject({ ignored: '', entries: 0, hits: 0, misses: 2, rejected: 0, written: true });
  const second = loadThrough(f.file, f.entry);
  expect(second.value).toBe('a+b1');
  expect(second.stats).toMatchObject({ ignored: '', entries: 2, hits: 2, misses: 0, rejected: 0, resolved: 1, written: false, notWritten: 'nothing new' });
}, 60_000);

test('a module edited to a source of the same length is compiled from its new source (V8 alone would take the old bytecode)', () => {
  const f = fixture('edited');
  loadThrough(f.file, f.entry);
  fs.writeFileSync(path.join(f.pkg, 'b.js'), "'use strict';\nexports.value = 'b2';\n");
  const edited = loadThrough(f.file, f.entry);
  expect(edited.value).toBe('a+b2');
  expect(edited.stats).toMatchObject({ hits: 1, misses: 1, written: true });
  expect(loadThrough(f.file, f.entry)).toMatchObject({ value: 'a+b2', stats: { hits: 2, misses: 0, written: false } });
}, 60_000);

test('a module whose file is as it was (inode, size, times) is taken without hashing its source; one touched is hashed, and taken, and its new key stored once it has settled', () => {
  const f = fixture('keyed');
  // A key is stored only for a file changed at least 2 s before the cache is written.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_100);
  expect(loadThrough(f.file, f.entry).stats).toMatchObject({ misses: 2, written: true });
  expect(loadThrough(f.file, f.entry)).toMatchObject({ value: 'a+b1', stats: { hits: 2, byKey: 2, misses: 0, written: false } });
  const b = path.join(f.pkg, 'b.js');
  const st = fs.statSync(b);
  fs.utimesSync(b, st.atime, new Date(st.mtimeMs + 1_000));
  // Touched just now: hashed and taken; its new key not stored yet (it could still change within the clock's tick).
  expect(loadThrough(f.file, f.entry)).toMatchObject({ value: 'a+b1', stats: { hits: 2, byKey: 1, misses: 0, written: false } });
  // Settled: hashed once more, and its new key stored, so that the next run takes it by its key (no hashing at every start).
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_100);
  expect(loadThrough(f.file, f.entry)).toMatchObject({ value: 'a+b1', stats: { hits: 2, byKey: 1, misses: 0, written: true } });
  expect(loadThrough(f.file, f.entry)).toMatchObject({ value: 'a+b1', stats: { hits: 2, byKey: 2, misses: 0, written: false } });
  // Edited to a source of the same length: the key differs, so does the hash.
  fs.writeFileSync(b, "'use strict';\nexports.value = 'b4';\n");
  expect(loadThrough(f.file, f.entry)).toMatchObject({ value: 'a+b4', stats: { hits: 1, misses: 1, written: true } });
}, 60_000);

test('an entry no run has loaded for 30 days is dropped at the next write; files of the directory untouched for 30 days are removed then; a file read is touched once a day', () => {
  const f = fixture('pruned');
  const c = path.join(f.pkg, 'c.js');
  fs.writeFileSync(c, "exports.value = 'c';\n");
  loadThrough(f.file, c);
  loadThrough(f.file, f.entry);
  const stored = (): string => fs.readFileSync(f.file, 'latin1');
  expect(stored()).toContain(JSON.stringify(c));
  // c.js last loaded 31 days ago (its entry's day moved back), then a run that writes (b.js edited): c's entry goes.
  const blob = fs.readFileSync(f.file);
  const magic = blob.indexOf(0x0a) + 1;
  const length = blob.readUInt32LE(magic);
  const header = JSON.parse(blob.toString('utf8', magic + 4, magic + 4 + length)) as { entries: { f: string; u: number }[] };
  for (const e of header.entries) if (e.f === c) e.u -= 31;
  const headerBytes = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(headerBytes.length);
  fs.writeFileSync(f.file, Buffer.concat([blob.subarray(0, magic), len, headerBytes, blob.subarray(magic + 4 + length)]), { mode: 0o600 });
  const old = new Date(Date.now() - 31 * 86_400_000);
  const files = { other: 'compile-fetch-0badf00d-node0-v8-0-x64.bin', tmp: 'compile-fetch-0badf00d-node0-v8-0-x64.bin.123.tmp', recent: 'compile-serve-0badf00d-node0-v8-0-x64.bin', unrelated: 'notes.txt' };
  for (const [k, name] of Object.entries(files)) {
    fs.writeFileSync(path.join(f.cacheDir, name), 'x');
    if (k !== 'recent') fs.utimesSync(path.join(f.cacheDir, name), old, old);
  }
  fs.writeFileSync(path.join(f.pkg, 'b.js'), "'use strict';\nexports.value = 'b3';\n");
  expect(loadThrough(f.file, f.entry)).toMatchObject({ value: 'a+b3', stats: { ignored: '', hits: 1, misses: 1, written: true } });
  expect(stored()).not.toContain(JSON.stringify(c));
  expect(fs.readdirSync(f.cacheDir).sort()).toEqual(['c.bin', files.recent, files.unrelated].sort());
  // Read two days after it was written: touched, though nothing new is written.
  fs.utimesSync(f.file, old, new Date(Date.now() - 2 * 86_400_000));
  expect(loadThrough(f.file, f.entry).stats).toMatchObject({ hits: 2, written: false });
  expect(Date.now() - fs.statSync(f.file).mtimeMs).toBeLessThan(86_400_000);
}, 60_000);

test('an entry this run did not load is kept while its file has its key, and dropped at the next write once the file was written again (a rebuild)', () => {
  const f = fixture('rebuilt');
  const c = path.join(f.pkg, 'c.js');
  fs.writeFileSync(c, "exports.value = 'c';\n");
  // A key is stored only for a file changed at least 2 s before the cache is written.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_100);
  loadThrough(f.file, c);
  expect(loadThrough(f.file, f.entry).stats).toMatchObject({ misses: 2, written: true });
  const stored = (): string => fs.readFileSync(f.file, 'latin1');
  expect(stored()).toContain(JSON.stringify(c));
  // c.js written again; a run that loads a.js and b.js (b.js edited, so it writes): c's entry goes.
  const st = fs.statSync(c);
  fs.utimesSync(c, st.atime, new Date(st.mtimeMs + 1_000));
  fs.writeFileSync(path.join(f.pkg, 'b.js'), "'use strict';\nexports.value = 'b5';\n");
  expect(loadThrough(f.file, f.entry)).toMatchObject({ value: 'a+b5', stats: { misses: 1, written: true } });
  expect(stored()).not.toContain(JSON.stringify(c));
  expect(stored()).toContain(JSON.stringify(f.entry));
  // Loaded again, it is compiled from source and stored anew.
  expect(loadThrough(f.file, c)).toMatchObject({ value: 'c', stats: { misses: 1, written: true } });
}, 60_000);

test('a stored resolution whose file is gone is resolved again by Node', () => {
  const f = fixture('moved');
  loadThrough(f.file, f.entry);
  fs.rmSync(path.join(f.pkg, 'b.js'));
  fs.mkdirSync(path.join(f.pkg, 'b'));
  fs.writeFileSync(path.join(f.pkg, 'b', 'index.js'), "exports.value = 'b/index';\n");
  const moved = loadThrough(f.file, f.entry);
  expect(moved.value).toBe('a+b/index');
  expect(moved.stats).toMatchObject({ hits: 1, misses: 1, resolved: 0, written: true });
}, 60_000);

/** The cache file with `mutate` applied, then loaded through: the fixture's value must come out all the same. */
function damaged(tag: string, mutate: (blob: Buffer) => Buffer): Stats {
  // One package filled once; each case damages its own copy of that cache file.
  const f = fixture('damaged');
  if (!fs.existsSync(f.file)) loadThrough(f.file, f.entry);
  const copy = path.join(f.cacheDir, `${tag}.bin`);
  fs.writeFileSync(copy, mutate(fs.readFileSync(f.file)), { mode: 0o600 });
  const r = loadThrough(copy, f.entry);
  expect(r.value).toBe('a+b1');
  return r.stats;
}

test('a corrupt, truncated, foreign or other-Node cache file is ignored, the modules load from source, and the file is replaced', () => {
  const flipped = damaged('flipped', (b) => {
    b[b.length - 10] ^= 0xff;
    return b;
  });
  expect(flipped).toMatchObject({ ignored: 'corrupt', hits: 0, misses: 2, written: true });
  expect(damaged('truncated', (b) => b.subarray(0, b.length - 100))).toMatchObject({ ignored: 'corrupt', hits: 0, misses: 2, written: true });
  expect(damaged('cut-header', (b) => b.subarray(0, 40))).toMatchObject({ ignored: 'truncated', hits: 0, written: true });
  expect(damaged('garbage', () => randomBytes(4096))).toMatchObject({ ignored: 'not a cache file', hits: 0, written: true });
  const otherNode = damaged('other-node', (b) => {
    const text = b.toString('latin1');
    const v = `"node":"${process.version}"`;
    expect(text.includes(v)).toBe(true);
    return Buffer.from(text.replace(v, `"node":"${process.version.replace(/\d$/, (d) => String((Number(d) + 1) % 10))}"`), 'latin1');
  });
  expect(otherNode).toMatchObject({ ignored: 'another Node', hits: 0, written: true });
  // Replaced: the run after each of those is served from the cache again.
  const f = fixture('damaged');
  expect(loadThrough(path.join(f.cacheDir, 'flipped.bin'), f.entry).stats).toMatchObject({ ignored: '', hits: 2, misses: 0 });
}, 120_000);

test('a cache directory others can write is neither read nor written; one that cannot be made costs only the cache', () => {
  const f = fixture('shared');
  loadThrough(f.file, f.entry);
  fs.chmodSync(f.cacheDir, 0o777);
  const before = fs.statSync(f.file).mtimeMs;
  const shared = loadThrough(f.file, f.entry);
  expect(shared.value).toBe('a+b1');
  expect(shared.stats).toMatchObject({ ignored: 'directory not ours, or writable by others', hits: 0, misses: 2, written: false, notWritten: 'directory not ours, or writable by others' });
  expect(fs.statSync(f.file).mtimeMs).toBe(before);

  // Where the directory should be there is a file: nothing read, nothing written (root ignores modes, so a mode cannot show this).
  const blocker = path.join(dir, 'a-file');
  fs.writeFileSync(blocker, 'x');
  const g = fixture('unwritable');
  const unwritable = loadThrough(path.join(blocker, 'sub', 'c.bin'), g.entry);
  expect(unwritable.value).toBe('a+b1');
  expect(unwritable.stats).toMatchObject({ hits: 0, misses: 2, written: false });
  expect(unwritable.stats.notWritten).toMatch(/^unwritable \(E[A-Z]+\)$/);
}, 60_000);

test('with source maps on (Node maps stack traces as it compiles) the cache stays out of the way: nothing hooked, nothing written', () => {
  const f = fixture('source-maps');
  loadThrough(f.file, f.entry);
  const before = fs.statSync(f.file).mtimeMs;
  const mapped = loadThrough(f.file, f.entry, ['--enable-source-maps']);
  expect(mapped.value).toBe('a+b1');
  expect(mapped.stats).toMatchObject({ ignored: 'not installed: source maps on, or an older Node', hits: 0, misses: 0, resolved: 0, written: false });
  expect(fs.statSync(f.file).mtimeMs).toBe(before);
}, 60_000);

describe('rqcast fetch with its cache', () => {
  // The server is the transpiled CLI too, as a child: nothing of the server goes through ts-jest here.
  const running: NsProcess[] = [];
  let base: string;
  const BYTES = randomBytes(200_000);

  beforeAll(async () => {
    fs.writeFileSync(path.join(dir, 'obj.bin'), BYTES);
    const { port } = await serveOnLoopback(running, [path.join(dir, 'obj.bin'), '--rate', '200']);
    base = `rqcast://127.0.0.1:${port}`;
  }, 60_000);

  afterAll(async () => {
    for (const p of running.splice(0)) await stopProcess(p);
  });

  /** `rqcast fetch` of the object (transpiled CLI) with RQCAST_COMPILE_CACHE=cacheDir. */
  function fetchWith(cacheDir: string, out: string): Promise<number | null> {
    const child = spawn(process.execPath, [path.join(root, 'dist', 'cli', 'main.js'), 'fetch', `${base}//obj.bin`, '-o', out, '-q', '--timeout', '30s'], {
      env: { ...process.env, NODE_OPTIONS: '', RQCAST_COMPILE_CACHE: cacheDir },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  test('fills the cache, then runs from it without a change; a corrupt cache or one that cannot be written leaves the fetch whole', async () => {
    const cacheDir = path.join(dir, 'cli-cache');
    expect(await fetchWith(cacheDir, path.join(dir, 'out1.bin'))).toBe(0);
    const [file] = fs.readdirSync(cacheDir);
    expect(file).toMatch(/^compile-fetch-[0-9a-f]{8}-node.*\.bin$/);
    const full = path.join(cacheDir, file);
    // The file the fetch's modules came from is in it: the bundle, which the
    // transpiled tree has as an installed one does (main.js itself is
    // compiled by Node before the cache exists; the cache of single modules
    // is the fixtures' above).
    const stored = fs.readFileSync(full, 'latin1');
    for (const m of ['cli/bundle.js']) {
      expect([m, stored.includes(JSON.stringify(path.join(root, 'dist', m)))]).toEqual([m, true]);
    }
    // The second fetch took every module and every resolution from the cache: nothing new to write.
    const written = fs.statSync(full);
    expect(await fetchWith(cacheDir, path.join(dir, 'out2.bin'))).toBe(0);
    const after = fs.statSync(full);
    expect([after.ino, after.mtimeMs]).toEqual([written.ino, written.mtimeMs]);

    const bytes = fs.readFileSync(full);
    bytes[bytes.length - 1] ^= 0x55;
    fs.writeFileSync(full, bytes);
    expect(await fetchWith(cacheDir, path.join(dir, 'out3.bin'))).toBe(0);
    expect(fs.statSync(full).ino).not.toBe(after.ino);

    const blocker = path.join(dir, 'cli-blocker');
    fs.writeFileSync(blocker, 'x');
    expect(await fetchWith(path.join(blocker, 'cache'), path.join(dir, 'out4.bin'))).toBe(0);
    for (const n of [1, 2, 3, 4]) expect(fs.readFileSync(path.join(dir, `out${n}.bin`)).equals(BYTES)).toBe(true);
  }, 120_000);
});
