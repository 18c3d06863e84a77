// The two ends of a command's process that no counter inside it sees
// (issue 12: bench:e2e's breakdown, "launch" and "exit"):
//
// - launch: a parent's spawn() -> Node's performance.timeOrigin in the child,
//   through each wrapper bench:e2e puts in front of a fetch (`ip netns exec`,
//   GNU time, the launcher's sh); baseline: `node` spawned directly.
// - exit: a child that holds MiB of memory writes a line; the parent times
//   that line -> the child's close, when the child lets its event loop drain
//   (Node tears its environment down) and when it calls process.exit (what
//   `rqcast fetch` does now, lib/cli/prompt-exit.ts); baseline: the drain.
//
//   npm run bench:process-ends [-- --runs 21 --mib 200]
//
// Runs alternate between the variants; medians. Needs root for the
// namespace (the `ip netns exec` rows are skipped without it). The last line
// printed is one JSON object.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cliOption, round } from './support/measure';

const RUNS = Number(cliOption('--runs') ?? 21);
const MIB = Number(cliOption('--mib') ?? 200);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const wall = (): number => performance.timeOrigin + performance.now();

/** Runs argv; resolves with [ms from spawn to its first stdout, ms from then to close, its stdout]. */
function timedRun(argv: string[]): Promise<{ spawnedAt: number; firstOut: number; closed: number; out: string }> {
  const spawnedAt = wall();
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let firstOut = 0;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    if (firstOut === 0) firstOut = wall();
    out += d;
  });
  return new Promise((resolve) => child.on('close', () => resolve({ spawnedAt, firstOut, closed: wall(), out })));
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bench-ends-'));
  const ns = `rqcast-ends-${process.pid}`;
  const haveNs = spawnSync('ip', ['netns', 'add', ns]).status === 0;
  try {
    const origin = path.join(dir, 'origin.js');
    fs.writeFileSync(origin, 'process.stdout.write(String(performance.timeOrigin));\n');
    // A launcher like bin/rqcast: sh, then node with this same file.
    const launcher = path.join(dir, 'launcher');
    fs.writeFileSync(launcher, `#!/bin/sh\n':' //; exec node "$0" "$@"\nprocess.stdout.write(String(performance.timeOrigin));\n`, { mode: 0o755 });
    const timeArgs = ['/usr/bin/time', '-v', '-o', '/dev/null'];
    const chains: Record<string, string[]> = {
      node: [process.execPath, origin],
      launcher: [launcher],
      'GNU time, node': [...timeArgs, process.execPath, origin],
      ...(haveNs
        ? {
            'ip netns exec, node': ['ip', 'netns', 'exec', ns, process.execPath, origin],
            'ip netns exec, GNU time, launcher (bench:e2e)': ['ip', 'netns', 'exec', ns, ...timeArgs, launcher],
          }
        : {}),
    };
    const hold = (end: string): string[] => [
      process.execPath,
      '-e',
      `const b = []; for (let i = 0; i < ${MIB}; i++) b.push(Buffer.alloc(1 << 20, 1)); process.stdout.write('x'); ${end}`,
    ];
    const ends: Record<string, string[]> = { drain: hold(''), 'process.exit': hold('process.exit(0);') };
    const launch: Record<string, number[]> = Object.fromEntries(Object.keys(chains).map((k) => [k, []]));
    const exit: Record<string, number[]> = Object.fromEntries(Object.keys(ends).map((k) => [k, []]));
    for (let i = 0; i < RUNS; i++) {
      for (const [name, argv] of Object.entries(chains)) {
        const r = await timedRun(argv);
        launch[name].push(Number(r.out) - r.spawnedAt);
      }
      for (const [name, argv] of Object.entries(ends)) {
        const r = await timedRun(argv);
        exit[name].push(r.closed - r.firstOut);
      }
    }
    const launchMs = Object.fromEntries(Object.entries(launch).map(([k, v]) => [k, round(median(v), 1)]));
    const exitMs = Object.fromEntries(Object.entries(exit).map(([k, v]) => [k, round(median(v), 1)]));
    console.log(`process ends: medians of ${RUNS} alternated runs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log('launch: spawn -> Node timeOrigin (ms)        vs node');
    for (const [k, v] of Object.entries(launchMs)) console.log(`  ${k.padEnd(46)} ${String(v).padEnd(8)} ${round(v / launchMs.node, 2)}`);
    console.log(`exit of a process holding ${MIB} MiB: its last write -> closed (ms)   vs drain`);
    for (const [k, v] of Object.entries(exitMs)) console.log(`  ${k.padEnd(46)} ${String(v).padEnd(8)} ${round(v / exitMs.drain, 2)}`);
    console.log(
      JSON.stringify({
        bench: 'process-ends',
        runs: RUNS,
        mib: MIB,
        loadavg: os.loadavg().map((x) => round(x, 2)),
        launch_ms: launchMs,
        launch_vs_node: Object.fromEntries(Object.entries(launchMs).map(([k, v]) => [k, round(v / launchMs.node, 2)])),
        exit_ms: exitMs,
        exit_vs_drain: round(exitMs['process.exit'] / exitMs.drain, 2),
      }),
    );
  } finally {
    if (haveNs) spawnSync('ip', ['netns', 'del', ns]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
