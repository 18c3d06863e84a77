/**
 * ServedPathWatch: what changed under a served FILE or DIR, found by
 * rescans, reported only once settled. Scans are called with explicit
 * times (the file system is real, the clock is the test's), so "settled"
 * is a count of scans, not a wait.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ServedPathWatch } from '../../lib/content/served-path-watch';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-watch-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const T0 = 1_000_000;
const SETTLE = 2000;

/** A watch whose own timer never fires during a test: every scan is the test's, at the test's times. */
function watch(root = dir): ServedPathWatch {
  const w = new ServedPathWatch(root, { settleMs: SETTLE, rescanMs: 2 ** 30, onChanges: async () => undefined });
  watches.push(w);
  return w;
}
const watches: ServedPathWatch[] = [];
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
});

/** Sets a file's mtime to `s` seconds (so that a rewrite of the same size is seen as a change). */
function touch(file: string, s: number): void {
  fs.utimesSync(file, s, s);
}

test('a new file is reported once it has kept its size and mtime for settleMs, once; a file still growing never is', async () => {
  const w = watch();
  await w.start(new Map());
  const grown = path.join(dir, 'growing.bin');
  fs.writeFileSync(path.join(dir, 'done.bin'), 'x'.repeat(10));
  fs.writeFileSync(grown, 'a');
  expect(await w.scan(T0)).toEqual([]);
  for (let i = 1; i <= 10; i++) {
    // Appended to between every two scans, for 10 × settleMs in all.
    fs.appendFileSync(grown, 'b');
    const changes = await w.scan(T0 + i * SETTLE);
    expect(changes.map((c) => c.name)).not.toContain('growing.bin');
    if (i === 1) expect(changes).toEqual([{ kind: 'added', name: 'done.bin', path: path.join(dir, 'done.bin') }]);
    else expect(changes).toEqual([]);
  }
  // Writing stopped: one scan to see it unchanged from now, settled settleMs later.
  expect(await w.scan(T0 + 11 * SETTLE - 1)).toEqual([]);
  expect(await w.scan(T0 + 12 * SETTLE)).toEqual([{ kind: 'added', name: 'growing.bin', path: grown }]);
  expect(await w.scan(T0 + 20 * SETTLE)).toEqual([]);
});

test('a served file replaced is "changed" once settled; removed or emptied is "removed" at once; names under subdirectories are relative paths', async () => {
  fs.mkdirSync(path.join(dir, 'sub'));
  const a = path.join(dir, 'sub', 'a.bin');
  const b = path.join(dir, 'b.bin');
  fs.writeFileSync(a, 'one');
  fs.writeFileSync(b, 'two');
  touch(a, 1000);
  const w = watch();
  await w.start(new Map([['sub/a.bin', a], ['b.bin', b]]));
  expect(await w.scan(T0)).toEqual([]);
  // Same size, new mtime: an edit in place.
  fs.writeFileSync(a, 'ONE');
  touch(a, 2000);
  expect(await w.scan(T0 + 1)).toEqual([]);
  expect(await w.scan(T0 + 1 + SETTLE)).toEqual([{ kind: 'changed', name: 'sub/a.bin', path: a }]);
  fs.rmSync(b);
  expect(await w.scan(T0 + 2 + SETTLE)).toEqual([{ kind: 'removed', name: 'b.bin', path: '' }]);
  fs.truncateSync(a, 0);
  expect(await w.scan(T0 + 3 + SETTLE)).toEqual([{ kind: 'removed', name: 'sub/a.bin', path: a }]);
  // Written again: a new object once settled.
  fs.writeFileSync(a, 'three');
  expect(await w.scan(T0 + 4 + SETTLE)).toEqual([]);
  expect(await w.scan(T0 + 4 + 2 * SETTLE)).toEqual([{ kind: 'added', name: 'sub/a.bin', path: a }]);
});

test('a FILE root is watched as its one file; a name the catalogue refuses is reported skipped, once; forget() has it reported again', async () => {
  const f = path.join(dir, 'solo.bin');
  fs.writeFileSync(f, 'abc');
  touch(f, 1000);
  const w = watch(f);
  await w.start(new Map([['solo.bin', f]]));
  fs.appendFileSync(f, 'd');
  await w.scan(T0);
  expect(await w.scan(T0 + SETTLE)).toEqual([{ kind: 'changed', name: 'solo.bin', path: f }]);
  const d = watch();
  await d.start(new Map());
  // A '\\' no client could write safely (a space is a fine name: served, percent-encoded).
  fs.writeFileSync(path.join(dir, 'bad\\name.bin'), 'x');
  fs.writeFileSync(path.join(dir, 'good name.bin'), 'x');
  await d.scan(T0);
  const first = await d.scan(T0 + SETTLE);
  expect(first.filter((c) => c.kind === 'skipped').map((c) => [c.name, c.reason])).toEqual([['bad\\name.bin', expect.stringMatching(/^name cannot be served: a '\\' in the name/)]]);
  expect(first.filter((c) => c.kind === 'added').map((c) => c.name)).toEqual(['good name.bin', 'solo.bin']);
  fs.rmSync(path.join(dir, 'good name.bin'));
  expect((await d.scan(T0 + 2 * SETTLE)).filter((c) => c.kind === 'skipped')).toEqual([]);
  d.forget('solo.bin');
  expect(await d.scan(T0 + 3 * SETTLE)).toEqual([{ kind: 'added', name: 'solo.bin', path: f }]);
});

test('rescans walk by the catalogue\'s rules: dotfiles, dot-directories and links leading out are skipped (once, the catalogue\'s reason) unless dotfiles / followSymlinks; a link inside is served', async () => {
  const root = path.join(dir, 'root');
  const outside = path.join(dir, 'outside.bin');
  fs.mkdirSync(path.join(root, '.git'), { recursive: true });
  fs.writeFileSync(outside, 'secret');
  fs.writeFileSync(path.join(root, 'a.bin'), 'a');
  const d = watch(root);
  await d.start(new Map());
  fs.writeFileSync(path.join(root, '.env'), 'KEY=1');
  fs.writeFileSync(path.join(root, '.git', 'config'), 'x');
  fs.symlinkSync(outside, path.join(root, 'out.bin'));
  fs.symlinkSync(path.join(root, 'a.bin'), path.join(root, 'in.bin'));
  const first = await d.scan(T0);
  expect(first.filter((c) => c.kind === 'skipped').map((c) => [path.basename(c.path), c.reason])).toEqual([
    ['.env', 'hidden file (--dotfiles serves it)'],
    ['.git', 'hidden directory (--dotfiles serves it)'],
    ['out.bin', expect.stringMatching(/^symbolic link leading out of the served directory/)],
  ]);
  expect((await d.scan(T0 + SETTLE)).map((c) => [c.kind, c.name])).toEqual([
    ['added', 'a.bin'],
    ['added', 'in.bin'],
  ]);
  expect(await d.scan(T0 + 2 * SETTLE)).toEqual([]);
  // What the catalogue's load skipped (and serve logged) is not reported again.
  const quiet = watch(root);
  await quiet.start(new Map(), [{ path: path.join(root, '.env'), reason: 'hidden file (--dotfiles serves it)' }]);
  expect((await quiet.scan(T0)).filter((c) => c.kind === 'skipped').map((c) => path.basename(c.path))).toEqual(['.git', 'out.bin']);
  // With --dotfiles and --follow-symlinks, all of them are served.
  const all = new ServedPathWatch(root, { settleMs: SETTLE, rescanMs: 2 ** 30, onChanges: async () => undefined, dotfiles: true, followSymlinks: true });
  watches.push(all);
  await all.start(new Map());
  expect(await all.scan(T0)).toEqual([]);
  expect((await all.scan(T0 + SETTLE)).map((c) => [c.kind, c.name])).toEqual([
    ['added', '.env'],
    ['added', '.git/config'],
    ['added', 'a.bin'],
    ['added', 'in.bin'],
    ['added', 'out.bin'],
  ]);
});
