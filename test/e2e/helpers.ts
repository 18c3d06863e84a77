// Shared pieces of the end-to-end tests: running the rqcast CLI (from this
// tree's sources) inside a namespace or on the host, content files with
// known digests, and the fetch --json summary.
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NsProcess, RunOptions, Testbed } from '../support/netns';
import { Rng } from '../../lib/support/rng';

export const REPO = path.resolve(__dirname, '..', '..');
export const CLI_MAIN = path.join(REPO, 'lib', 'cli', 'main.ts');
/** The `rqcast` command's launcher (package.json "bin"). */
const LAUNCHER = path.join(REPO, 'bin', 'rqcast');
/** What `npm run build:ts` runs after tsc: the fetch's modules in one file (dist/cli/bundle.js). */
const BUNDLER = path.join(REPO, 'tools', 'bundle-cli.js');

function listTs(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) listTs(full, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(full);
  }
  return out.sort();
}

let transpiled: string | undefined;

/**
 * lib/ transpiled to JavaScript once per content (what ts-node's
 * transpile-only mode does in every process, which costs each CLI child
 * ~2 s of CPU; with 20+ clients on 2 cores that dominated the run). Lives in
 * a temp directory keyed by a hash of the sources, beside symlinks to the
 * repository's node_modules/ and build/, so `dist/native.js` finds the addon
 * exactly as an installed package does, a copy of the launcher in bin/
 * (rqcastCommandArgv), and dist/cli/bundle.js as `npm run build:ts` writes
 * it (tools/bundle-cli.js): the tests and benches run what users run.
 */
export function transpiledRoot(): string {
  if (transpiled) return transpiled;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ts = require('typescript') as typeof import('typescript');
  const files = listTs(path.join(REPO, 'lib'));
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update('\0').update(fs.readFileSync(f)).update('\0');
  hash.update(ts.version);
  hash.update(fs.readFileSync(LAUNCHER));
  hash.update(fs.readFileSync(BUNDLER));
  const root = path.join(os.tmpdir(), `rqcast-e2e-lib-${hash.digest('hex').slice(0, 16)}`);
  if (!fs.existsSync(path.join(root, 'complete'))) {
    // Earlier contents of lib/ (an edited tree) leave their own copies: drop
    // those untouched for a day.
    for (const e of fs.readdirSync(os.tmpdir())) {
      if (!e.startsWith('rqcast-e2e-lib-')) continue;
      const old = path.join(os.tmpdir(), e);
      try {
        if (Date.now() - fs.statSync(old).mtimeMs > 86_400_000) fs.rmSync(old, { recursive: true, force: true });
      } catch {
        // raced with another run
      }
    }
    const staging = fs.mkdtempSync(`${root}.tmp-`);
    for (const f of files) {
      const out = path.join(staging, 'dist', path.relative(path.join(REPO, 'lib'), f)).replace(/\.ts$/, '.js');
      fs.mkdirSync(path.dirname(out), { recursive: true });
      const js = ts.transpileModule(fs.readFileSync(f, 'utf8'), {
        fileName: f,
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      }).outputText;
      fs.writeFileSync(out, js);
    }
    for (const link of ['node_modules', 'build', 'prebuilds']) {
      if (fs.existsSync(path.join(REPO, link))) fs.symlinkSync(path.join(REPO, link), path.join(staging, link));
    }
    fs.copyFileSync(path.join(REPO, 'package.json'), path.join(staging, 'package.json'));
    // As an installed package has it (`prepare` runs build:ts): the bundle
    // of the modules a fetch loads before its HELLO, which main.js loads
    // while every file it holds is as it was written.
    execFileSync(process.execPath, [BUNDLER, '--dist', path.join(staging, 'dist')], { stdio: 'pipe' });
    // The launcher, where main.js recognises it (bin/ beside dist/): rqcastCommandArgv.
    fs.mkdirSync(path.join(staging, 'bin'));
    fs.copyFileSync(LAUNCHER, path.join(staging, 'bin', 'rqcast'));
    fs.chmodSync(path.join(staging, 'bin', 'rqcast'), 0o755);
    fs.writeFileSync(path.join(staging, 'complete'), '');
    try {
      fs.renameSync(staging, root);
    } catch {
      // Another worker got there first with the same content.
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }
  transpiled = root;
  return root;
}

/** argv of `rqcast ...` run from this tree's sources (transpiled, see transpiledRoot). */
export function rqcastArgv(...args: string[]): string[] {
  return [process.execPath, path.join(transpiledRoot(), 'dist', 'cli', 'main.js'), ...args];
}

/**
 * argv of `rqcast ...` as users run it: the launcher (bin/rqcast, which
 * takes NODE_EXTRA_CA_CERTS out of Node's start) in front of this tree's
 * transpiled sources; it runs the `node` on PATH.
 */
export function rqcastCommandArgv(...args: string[]): string[] {
  return [path.join(transpiledRoot(), 'bin', 'rqcast'), ...args];
}

/** Environment for CLI children. */
export function cliEnv(): NodeJS.ProcessEnv {
  return { ...process.env, NODE_OPTIONS: '' };
}

export function cliOptions(extra: RunOptions = {}): RunOptions {
  return { cwd: REPO, env: cliEnv(), ...extra };
}

/** Starts `rqcast serve` in `ns` (or on the host when ns is undefined); resolves once it listens. */
export async function startServer(bed: Testbed | undefined, ns: string | undefined, args: string[], timeoutMs = 120_000): Promise<NsProcess> {
  const argv = rqcastArgv('serve', ...args);
  const p = bed && ns ? bed.spawn(ns, argv, cliOptions({ timeoutMs })) : hostSpawn(argv, cliOptions({ timeoutMs }));
  await p.waitForStdout(/listening/, 60_000);
  return p;
}

const hostProcesses = new Set<NsProcess>();
process.on('exit', () => {
  for (const p of hostProcesses) p.kill('SIGKILL');
});

/** A process on the host (plain loopback tests), killed at exit if still running. */
export function hostSpawn(argv: string[], options: RunOptions = {}): NsProcess {
  const p = new NsProcess(argv, options);
  hostProcesses.add(p);
  void p.wait().then(() => hostProcesses.delete(p));
  return p;
}

export async function stopProcess(p: NsProcess | undefined): Promise<void> {
  if (!p || !p.running) return;
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await p.wait();
  clearTimeout(t);
}

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `rqcast-e2e-${tag}-`));
}

/** Writes `bytes` seeded pseudo-random bytes; returns the SHA-256 (hex). */
export function writeContent(file: string, bytes: number, seed: number): string {
  const rng = new Rng(seed);
  const data = rng.bytes(bytes);
  fs.writeFileSync(file, data);
  return createHash('sha256').update(data).digest('hex');
}

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The last line of `stdout` that parses as a JSON object. */
export function lastJson(stdout: string): Record<string, unknown> | undefined {
  const lines = stdout.trim().split('\n').reverse();
  for (const l of lines) {
    const t = l.trim();
    if (!t.startsWith('{')) continue;
    try {
      return JSON.parse(t) as Record<string, unknown>;
    } catch {
      // not JSON
    }
  }
  return undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Explains a failed CLI run in the assertion message. */
export function describeRun(what: string, r: { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }): string {
  return `${what}: exit ${r.code ?? r.signal}\n--- stdout ---\n${r.stdout.slice(-3000)}\n--- stderr ---\n${r.stderr.slice(-3000)}`;
}

/** Per test: a temporary directory, and the processes it started; after it, they are stopped and the directory removed. */
export function perTestProcesses(tag: string): { readonly dir: string; readonly running: NsProcess[] } {
  const running: NsProcess[] = [];
  let dir = '';
  beforeEach(() => {
    dir = tempDir(tag);
  });
  afterEach(async () => {
    for (const p of running.splice(0)) await stopProcess(p);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    running,
  };
}

/** The pino log lines (JSON) a process wrote to stderr. */
export function logLines(stderr: string): { msg?: string; [k: string]: unknown }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string });
}

/** `rqcast serve` on the host at 127.0.0.1, any port, with `args`; listed in `running`; the port read from its listening line. */
export async function serveOnLoopback(running: NsProcess[], args: string[]): Promise<{ p: NsProcess; port: number }> {
  const p = await startServer(undefined, undefined, ['--port', '0', '--bind', '127.0.0.1', ...args]);
  running.push(p);
  const m = /listening on 127\.0\.0\.1:(\d+)/.exec(p.stdout);
  if (!m) throw new Error(`no port in ${p.stdout}`);
  return { p, port: Number(m[1]) };
}
