/**
 * The `rqcast fetch` command ends its process once the fetch is over and its
 * lines are out (lib/cli/prompt-exit.ts): it does not wait for its event loop
 * to drain. A probe loaded before the command (`node -r`) holds the loop open
 * with a timer that never ends and records, at 'exit', what the process did:
 * a command that waited for its loop would never exit. Orders and counts
 * only; the time it takes is bench:e2e's (fetch --json endPhasesMs).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { rqcastCommandArgv } from '../e2e/helpers';
import { servedFiles } from './support';

const PROBE = `
let beforeExit = 0;
const lines = [];
setInterval(() => {}, 1000); // holds the event loop open for good
process.on('beforeExit', () => beforeExit++);
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => {
  if (typeof chunk === 'string') for (const l of chunk.split('\\n')) if (l.startsWith('{')) lines.push(JSON.parse(l).type);
  return write(chunk, ...rest);
};
process.on('exit', (code) => process.stderr.write('probe ' + JSON.stringify({ beforeExit, code, lines }) + '\\n'));
`;

interface Probe {
  beforeExit: number;
  code: number;
  lines: string[];
}

const CONTENT = randomBytes(2_000_000);

/**
 * `rqcast ARGS` as users run it (the launcher in front of the transpiled
 * tree), the probe loaded first through NODE_OPTIONS, as bench:e2e passes
 * node options; killed if still running after a minute.
 */
function rqcastProbed(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; probe?: Probe }> {
  const [launcher, ...rest] = rqcastCommandArgv(...args);
  const child = spawn(launcher, rest, { env: { ...process.env, NODE_OPTIONS: `-r ${path.join(served.root, 'probe.js')}` }, stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(kill);
      const line = stderr.split('\n').find((l) => l.startsWith('probe '));
      resolve({ code, signal, stdout, probe: line === undefined ? undefined : (JSON.parse(line.slice(6)) as Probe) });
    }),
  );
}

const served = servedFiles('rqcast-fetch-exit-', { 'content.bin': CONTENT }, () => ({ rate: 400 }));
beforeAll(() => fs.writeFile(path.join(served.root, 'probe.js'), PROBE));

test('a fetch exits once its object is published and its summary written, though a timer holds its event loop; the summary says how its end went', async () => {
  const out = path.join(served.root, 'out.bin');
  const r = await rqcastProbed(['fetch', `${served.base}//content.bin`, '-o', out, '--json']);
  expect([r.code, r.signal]).toEqual([0, null]);
  // Exited by the command, not by a loop that drained ('beforeExit' comes only then): after the object's line and the summary, the last line.
  expect(r.probe).toMatchObject({ beforeExit: 0, code: 0 });
  const types = r.probe?.lines ?? [];
  expect(types.filter((t) => t === 'summary')).toHaveLength(1);
  expect(types[types.length - 1]).toBe('summary');
  expect(types.indexOf('object')).toBeLessThan(types.indexOf('summary'));
  expect((await fs.readFile(out)).equals(CONTENT)).toBe(true);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { startupMs: number; tailMs: number; endPhasesMs: { close: number; summary: number }; summaryAtMs: number };
  expect(summary.endPhasesMs.close).toBeGreaterThanOrEqual(0);
  expect(summary.endPhasesMs.summary).toBeGreaterThanOrEqual(0);
  // The summary is written after the first packet, the tail and the end, all counted from the process's start.
  expect(summary.summaryAtMs).toBeGreaterThanOrEqual(summary.startupMs + summary.tailMs + summary.endPhasesMs.close + summary.endPhasesMs.summary - 3);
}, 120_000);

test('a fetch that fails exits with its code too, its error line out, though a timer holds its event loop', async () => {
  const r = await rqcastProbed(['fetch', `${served.base}//nothing.bin`, '-o', path.join(served.root, 'nothing.bin'), '--json']);
  expect([r.code, r.signal]).toEqual([6, null]);
  expect(r.probe).toMatchObject({ beforeExit: 0, code: 6 });
  expect(r.probe?.lines).toContain('error');
  expect(JSON.parse(r.stdout.trim().split('\n').pop() as string)).toMatchObject({ type: 'error', exitCode: 6 });
}, 120_000);
