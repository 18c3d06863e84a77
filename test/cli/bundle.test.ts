// The CLI bundle (tools/bundle-cli.js, dist/cli/bundle.js): what `bin`
// runs, what a fetch loads from it before its HELLO, that a fetch through
// it is bit-exact, and that a stale one is not used. Built here from this
// tree's sources (a copy of transpiledRoot(), test/e2e/helpers.ts), never
// from whatever dist/ holds.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO, transpiledRoot } from '../e2e/helpers';
import { listenSilently } from './silent-peer';
import { servedFiles } from './support';

const DATA = randomBytes(300_000);
const served = servedFiles('rqcast-bundle-', { 'data.bin': DATA }, () => ({}));

let root: string;
let bundleFile: string;

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs node with `args` from `root`, not blocking this process (the server of servedFiles runs in it). */
function runNode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, NODE_OPTIONS: '', RQCAST_COMPILE_CACHE: 'off', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Ran = { status: null, stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ ...r, status: code }));
  });
}

/** The last line of what a run wrote to stderr, as JSON. */
function lastJson(r: Ran): unknown {
  return JSON.parse(r.stderr.trim().split('\n').pop() ?? 'null');
}

/** Whether the bundle says it is fresh (asked in a fresh process). */
async function fresh(): Promise<unknown> {
  return lastJson(await runNode(['-e', `process.stderr.write(JSON.stringify(require(${JSON.stringify(bundleFile)}).fresh()) + '\\n')`]));
}

/** For each of our modules loaded by `rqcast ARGS` (bin's main.js): the module whose require() loaded it (the bundle, or another of ours from disk). */
async function parentsAfter(args: string[]): Promise<Record<string, string | null>> {
  const r = await runNode(['-r', path.join(root, 'report-parents.js'), path.join(root, 'dist', 'cli', 'main.js'), ...args]);
  expect(r.status).toBe(0);
  return lastJson(r) as Record<string, string | null>;
}

function runBundler(...args: string[]): void {
  const r = spawnSync(process.execPath, [path.join(REPO, 'tools', 'bundle-cli.js'), '--dist', path.join(root, 'dist'), ...args], { encoding: 'utf8' });
  expect([r.status, r.stderr]).toEqual([0, '']);
}

beforeAll(() => {
  const from = transpiledRoot();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bundle-tree-'));
  fs.cpSync(path.join(from, 'dist'), path.join(root, 'dist'), { recursive: true });
  for (const link of ['build', 'prebuilds']) {
    if (fs.existsSync(path.join(REPO, link))) fs.symlinkSync(path.join(REPO, link), path.join(root, link));
  }
  // node_modules: commander copied (a test changes it), every other package linked.
  const modules = path.join(REPO, 'node_modules');
  fs.mkdirSync(path.join(root, 'node_modules'));
  for (const name of fs.readdirSync(modules)) {
    if (name === 'commander') fs.cpSync(fs.realpathSync(path.join(modules, name)), path.join(root, 'node_modules', name), { recursive: true });
    else fs.symlinkSync(path.join(modules, name), path.join(root, 'node_modules', name));
  }
  fs.copyFileSync(path.join(REPO, 'package.json'), path.join(root, 'package.json'));
  runBundler();
  bundleFile = path.join(root, 'dist', 'cli', 'bundle.js');
}, 120_000);

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('the CLI bundle', () => {
  test('npm builds it after tsc (build:ts, prepare), and bin runs main.js (through bin/rqcast, test/cli/launcher.test.ts), which loads it', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.bin.rqcast).toBe('bin/rqcast');
    expect(fs.readFileSync(path.join(REPO, 'bin', 'rqcast'), 'utf8')).toContain("require('../dist/cli/main.js');");
    expect(pkg.scripts['build:ts']).toBe('tsc -p tsconfig.json && node tools/bundle-cli.js');
    expect(pkg.scripts.prepare).toBe('npm run build:ts');
    // main.js as bin runs it: the program, the fetch command and the client are the bundle's modules.
    const parents = await parentsAfter(['fetch', '--help']);
    for (const f of ['cli/program.js', 'cli/fetch.js', 'client/client.js']) expect([f, parents[f]]).toEqual([f, bundleFile]);
  });

  test("a unicast fetch compiles nothing of ours or commander's from its own file before its HELLO, and does not load child_process (commander's, for subcommands we do not have)", async () => {
    const silent = await listenSilently();
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bundle-out-'));
    try {
      // What Node's own loader compiles (the bundle's modules it does not), in a fetch that gives up after its HELLOs.
      const script = `
        const Module = require('module');
        const path = require('path');
        const compiled = [];
        const compile = Module.prototype._compile;
        Module.prototype._compile = function (content, filename, format) { compiled.push(filename); return compile.call(this, content, filename, format); };
        const { main } = require('./dist/cli/main.js');
        main(['node', 'rqcast', 'fetch', 'rqcast://127.0.0.1:${silent.port}/x', '-o', ${JSON.stringify(out)}, '--timeout', '1s']).finally(() => {
          const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
          const rel = (f) => path.relative(process.cwd(), f);
          process.stderr.write(JSON.stringify({ compiled: compiled.map(rel), loaded: Object.keys(require.cache).map(rel), builtins }) + '\\n');
        });`;
      const { compiled, loaded, builtins } = lastJson(await runNode(['-e', script])) as { compiled: string[]; loaded: string[]; builtins: string[] };
      expect(await silent.someArrived()).toBe(true);
      for (const present of ['dist/client/client.js', 'dist/client/session.js', 'dist/transport/udp/client-socket.js', 'dist/client/data-path.js', 'dist/native.js']) {
        expect([present, loaded.includes(present)]).toEqual([present, true]);
      }
      // From their files: main.js and what it needs before the bundle, and the addon's finder (native.js requires it when first used).
      const fromFiles = compiled.filter((f) => !f.includes('node_modules/node-gyp-build/'));
      expect(fromFiles.sort()).toEqual(['dist/cli/bundle.js', 'dist/cli/compile-cache.js', 'dist/cli/main.js', 'dist/client/events.js']);
      expect(builtins).not.toContain('child_process');
    } finally {
      silent.close();
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);

  test('a fetch through it is bit-exact, from source and from the code cache, and a usage error still says what is wrong (exit 2)', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bundle-fetch-'));
    try {
      const main = path.join(root, 'dist', 'cli', 'main.js');
      const env = { RQCAST_COMPILE_CACHE: path.join(out, 'cache') };
      // Twice: compiled from source, then from the code cache the first run wrote.
      for (const name of ['a.bin', 'b.bin']) {
        const r = await runNode([main, 'fetch', `${served.base}/data.bin`, '-o', path.join(out, name), '-q'], env);
        expect([r.status, r.stderr]).toEqual([0, '']);
        expect(fs.readFileSync(path.join(out, name)).equals(DATA)).toBe(true);
      }
      expect(fs.readdirSync(path.join(out, 'cache')).some((f) => f.startsWith('compile-fetch-'))).toBe(true);
      const usage = await runNode([main, 'fetch'], env);
      expect(usage.status).toBe(2);
      expect(usage.stderr).toContain("error: missing required argument 'url'");
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);

  test('each module keeps its lines (stack traces, the source map), its comments and indentation gone', () => {
    const text = fs.readFileSync(bundleFile, 'utf8');
    const map = JSON.parse(fs.readFileSync(`${bundleFile}.map`, 'utf8')) as { sources: string[] };
    const HEAD = /^\/\/ (\S+\.js)\nfunction \(exports, require, module, __filename, __dirname\) \{\n/gm;
    const heads = [...text.matchAll(HEAD)];
    expect(heads.map((m) => m[1])).toEqual(map.sources);
    expect(heads.length).toBeGreaterThan(50);
    let bodies = 0;
    let originals = 0;
    heads.forEach((h, k) => {
      const file = h[1];
      const from = (h.index ?? 0) + h[0].length;
      const to = k + 1 < heads.length ? heads[k + 1].index ?? 0 : text.indexOf('\n];\n', from) + 1;
      const body = text.slice(from, to).replace(/\n\},\n$/, '');
      const original = fs.readFileSync(path.resolve(path.dirname(bundleFile), file), 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
      const want = original.split('\n');
      if (want[want.length - 1] === '') want.pop();
      const got = body.split('\n');
      bodies += body.length;
      originals += original.length;
      expect([file, got.length]).toEqual([file, want.length]);
      // A line holds its original's code: the same text once comments and whitespace are set aside.
      const code = (line: string): string => line.replace(/\/\/.*$|\/\*.*?\*\//g, '').replace(/\s+/g, '');
      const differs = got.findIndex((line, i) => line !== '' && !code(want[i]).startsWith(code(line).slice(0, 20)));
      expect([file, differs]).toEqual([file, -1]);
    });
    // Comments and indentation are most of what goes (a third of tsc's output); a line comment never stays.
    expect(bodies).toBeLessThan(0.8 * originals);
    expect(text.slice(text.indexOf('const MODULES = ['))).not.toMatch(/^\/\/ (?!\S+\.js\nfunction )/m);
  });

  test('a stale bundle is not used: a file of it rewritten (newer) or changed in size', async () => {
    expect(await fresh()).toBe(true);
    const file = path.join(root, 'dist', 'client', 'session.js');
    const st = fs.statSync(file);
    try {
      fs.utimesSync(file, st.atime, new Date(Date.now() + 60_000));
      expect(await fresh()).toBe(false);
      // main.js then loads the program from its files.
      expect((await parentsAfter(['fetch', '--help']))['cli/program.js']).toBe(path.join(root, 'dist', 'cli', 'main.js'));
      fs.utimesSync(file, st.atime, st.mtime);
      expect(await fresh()).toBe(true);
      fs.appendFileSync(file, '\n');
      expect(await fresh()).toBe(false);
    } finally {
      runBundler();
    }
    expect(await fresh()).toBe(true);
  });

  test("a dependency's file changed since (commander updated) is loaded from that file, the rest still from the bundle", async () => {
    const help = path.join(root, 'node_modules', 'commander', 'lib', 'help.js');
    const text = fs.readFileSync(help);
    try {
      fs.appendFileSync(help, '\n');
      expect(await fresh()).toBe(true);
      const parents = await parentsAfter(['fetch', '--help']);
      expect(parents['cli/program.js']).toBe(bundleFile);
      // report-parents.js lists dist/ only: commander's modules are asked of require.cache here.
      const r = await runNode(['-e', `
        require('./dist/cli/main.js');
        const m = require.cache[require('fs').realpathSync(${JSON.stringify(help)})];
        const cmd = require.cache[require('fs').realpathSync(${JSON.stringify(path.join(root, 'node_modules', 'commander', 'lib', 'command.js'))})];
        process.stderr.write(JSON.stringify([m.parent.filename, cmd.parent.filename]) + '\\n');`]);
      expect(lastJson(r)).toEqual([path.join(root, 'node_modules', 'commander', 'lib', 'command.js'), bundleFile]);
    } finally {
      fs.writeFileSync(help, text);
      runBundler();
    }
  });
});

describe("the bundle's text", () => {
  test("is ASCII: a string's or untagged template's other characters are escaped to the same value; a tagged template's raw text is left as it is", async () => {
    const dist = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bundle-ascii-'));
    try {
      fs.mkdirSync(path.join(dist, 'cli'));
      // U+2028 after a backslash is a line continuation (nothing); before any other character, the character itself.
      const program = [
        "const raw = (s) => s.raw.join('|');",
        'module.exports = {',
        "  dash: 'em \u2014 dash', ellipsis: `more \u2026 (${1 + 1}) \u00f7 ${'x'}\u00d7`, none: `\u00e9t\u00e9`,",
        "  escaped: '\\\u2014', pair: 'face \ud83d\ude00', escapedPair: '\\\ud83d\ude00', backslash: '\\\\\u00e9',",
        "  continued: 'a\\\u2028b', alreadyEscape: '\\u00e9', tagged: raw`t\u00e9 ${1} \u2014\\u2014`,",
        '};',
        '',
      ].join('\n');
      fs.writeFileSync(path.join(dist, 'cli', 'program.js'), program);
      fs.writeFileSync(path.join(dist, 'cli', 'fetch.js'), "'use strict';\n");
      const out = path.join(dist, 'bundle.js');
      const r = spawnSync(process.execPath, [path.join(REPO, 'tools', 'bundle-cli.js'), '--dist', dist, '--out', out], { encoding: 'utf8' });
      expect([r.status, r.stderr]).toEqual([0, '']);
      const text = fs.readFileSync(out, 'utf8');
      // Beyond ASCII: only the tagged template's text (its tag reads the raw characters).
      const others = [...text].filter((c) => c.charCodeAt(0) > 0x7f).join('');
      expect(others).toBe('\u00e9\u2014');
      const values = async (expr: string): Promise<unknown> => lastJson(await runNode(['-e', `process.stderr.write(JSON.stringify(${expr}) + '\\n')`]));
      const fromFile = await values(`require(${JSON.stringify(path.join(dist, 'cli', 'program.js'))})`);
      expect(fromFile).toMatchObject({ dash: 'em \u2014 dash', escaped: '\u2014', continued: 'ab', tagged: 't\u00e9 | \u2014\\u2014' });
      expect(await values(`require(${JSON.stringify(out)}).load('cli/program.js')`)).toEqual(fromFile);
    } finally {
      fs.rmSync(dist, { recursive: true, force: true });
    }
  });
});

// A preload for the children above: at exit, which module loaded each of ours (the bundle, or Node's loader from its parent's require).
beforeAll(() => {
  fs.writeFileSync(
    path.join(root, 'report-parents.js'),
    `process.on('exit', () => {
      const dist = ${JSON.stringify(path.join(root, 'dist'))} + '/';
      const out = {};
      for (const [f, m] of Object.entries(require.cache)) if (f.startsWith(dist)) out[f.slice(dist.length)] = m.parent ? m.parent.filename : null;
      require('fs').writeSync(2, JSON.stringify(out) + '\\n');
    });`,
  );
});
