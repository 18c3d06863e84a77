// Shared pieces of the end-to-end tests: running the rqcast CLI (through
// ts-node, from the working tree) inside a namespace or on the host, content
// files with known digests, and the fetch --json summary.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NsProcess, RunOptions, Testbed } from '../support/netns';
import { Rng } from '../../bench/support/rng';

export const REPO = path.resolve(__dirname, '..', '..');
export const CLI_MAIN = path.join(REPO, 'lib', 'cli', 'main.ts');

/** argv of `rqcast ...` run from the sources (ts-node, transpile only). */
export function rqcastArgv(...args: string[]): string[] {
  return [process.execPath, '-r', 'ts-node/register/transpile-only', CLI_MAIN, ...args];
}

/** Environment for CLI children: ts-node resolves from the repository. */
export function cliEnv(): NodeJS.ProcessEnv {
  return { ...process.env, TS_NODE_PROJECT: path.join(REPO, 'tsconfig.json'), NODE_OPTIONS: '' };
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
