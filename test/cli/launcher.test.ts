// bin/rqcast, the command npm links: a file that is both sh and JavaScript.
// sh takes NODE_EXTRA_CA_CERTS out of Node's start (Node 20 reads the
// certificates it names as it starts) and runs the same file with node,
// which puts the variable back for the processes rqcast starts and runs
// dist/cli/main.js as the command. Run from this checkout (its dist/,
// which `npm install` builds), as npm's link and on a PATH of node and sh
// alone.
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO = path.resolve(__dirname, '..', '..');
const LAUNCHER = path.join(REPO, 'bin', 'rqcast');
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
/** What Node 20 prints when it cannot read NODE_EXTRA_CA_CERTS at start. */
const CA_WARNING = /Ignoring extra certs from/;

let work: string;
let pathDir: string;

beforeAll(() => {
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is not built: `npm install` (or `npm run build:ts`) builds it');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-launcher-'));
  // A PATH with node and sh only: the launcher needs no other command.
  pathDir = path.join(work, 'path');
  fs.mkdirSync(pathDir);
  for (const cmd of ['node', 'sh']) {
    const found = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
    fs.symlinkSync(cmd === 'node' ? process.execPath : found, path.join(pathDir, cmd));
  }
  // As npm links it: node_modules/.bin/rqcast -> the package's bin/rqcast.
  fs.mkdirSync(path.join(work, '.bin'));
  fs.symlinkSync(LAUNCHER, path.join(work, '.bin', 'rqcast'));
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function run(file: string, args: string[], env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  return spawnSync(file, args, { env: { HOME: work, PATH: pathDir, RQCAST_COMPILE_CACHE: 'off', ...env }, encoding: 'utf8', timeout: 60_000 });
}

describe('bin/rqcast', () => {
  test('is what package.json links as `rqcast`, executable, and packed', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string>; files: string[] };
    expect(pkg.bin).toEqual({ rqcast: 'bin/rqcast' });
    expect(pkg.files).toContain('bin/');
    expect(fs.statSync(LAUNCHER).mode & 0o111).toBe(0o111);
    expect(fs.readFileSync(LAUNCHER, 'utf8').split('\n')[0]).toBe('#!/bin/sh');
  });

  test('runs the command with Node, directly and through a link, without Node reading NODE_EXTRA_CA_CERTS at its start', () => {
    const env = { NODE_EXTRA_CA_CERTS: path.join(work, 'no-such-bundle.pem') };
    // Node itself reads the variable as it starts: it warns about a file it cannot read.
    const plain = run(process.execPath, [path.join(REPO, 'dist', 'cli', 'main.js'), '--version'], env);
    expect(plain.stderr).toMatch(CA_WARNING);
    expect(plain.stdout.trim()).toBe(VERSION);
    for (const file of [LAUNCHER, path.join(work, '.bin', 'rqcast')]) {
      const r = run(file, ['--version'], env);
      expect({ file, status: r.status, stdout: r.stdout.trim(), stderr: r.stderr }).toEqual({ file, status: 0, stdout: VERSION, stderr: '' });
    }
    // Node may run it too (a JavaScript file whose second line is a string); then Node has read the variable.
    const asJs = run(process.execPath, [LAUNCHER, '--version'], env);
    expect(asJs.stdout.trim()).toBe(VERSION);
    expect(asJs.stderr).toMatch(CA_WARNING);
  });

  test('the variable is absent at Node\'s start and back, unchanged, for the processes rqcast starts; unset, it stays unset', () => {
    // A preload sees the environment before the launcher's JavaScript; at exit, what the command left for its children.
    const preload = path.join(work, 'env-at-start-and-exit.js');
    fs.writeFileSync(
      preload,
      "const seen = (k) => (k in process.env ? process.env[k] : null);\n" +
        "const start = { ca: seen('NODE_EXTRA_CA_CERTS'), kept: seen('RQCAST_EXTRA_CA_CERTS') };\n" +
        "process.on('exit', () => require('fs').writeSync(2, '@@env ' + JSON.stringify({ start, exit: { ca: seen('NODE_EXTRA_CA_CERTS'), kept: seen('RQCAST_EXTRA_CA_CERTS') } }) + '\\n'));\n",
    );
    const envOf = (r: SpawnSyncReturns<string>): unknown => JSON.parse(/@@env (.*)/.exec(r.stderr)?.[1] ?? 'null');
    const bundle = path.join(work, 'a bundle; with $pecial "chars".pem');
    const set = run(LAUNCHER, ['--version'], { NODE_OPTIONS: `--require=${preload}`, NODE_EXTRA_CA_CERTS: bundle });
    expect(set.status).toBe(0);
    expect(envOf(set)).toEqual({ start: { ca: null, kept: bundle }, exit: { ca: bundle, kept: null } });
    // Set but empty: still taken out and given back as it was.
    const empty = run(LAUNCHER, ['--version'], { NODE_OPTIONS: `--require=${preload}`, NODE_EXTRA_CA_CERTS: '' });
    expect(envOf(empty)).toEqual({ start: { ca: null, kept: '' }, exit: { ca: '', kept: null } });
    const unset = run(LAUNCHER, ['--version'], { NODE_OPTIONS: `--require=${preload}` });
    expect(envOf(unset)).toEqual({ start: { ca: null, kept: null }, exit: { ca: null, kept: null } });
  });

  test('arguments reach the command as given, and its exit status comes back', () => {
    const r = run(LAUNCHER, ['fetch', '--no-such-option'], {});
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/unknown option '--no-such-option'/);
    const help = run(LAUNCHER, ['fetch', '--help'], {});
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: rqcast fetch/);
  });

  test('the command\'s code cache is used when run by the launcher (main.js knows it is the command)', () => {
    const cacheDir = path.join(work, 'cache');
    const r = run(LAUNCHER, ['fetch', '--help'], { RQCAST_COMPILE_CACHE: cacheDir });
    expect(r.status).toBe(0);
    expect(fs.readdirSync(cacheDir).filter((f) => f.startsWith('compile-fetch-'))).toHaveLength(1);
  });
});
