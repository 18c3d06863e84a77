#!/usr/bin/env node
/*
 * `npm run bench:startup`: a fetch's start-up (issue 12), this tree against
 * a baseline tree, runs alternated.
 *
 *   node tools/bench-startup.js --before DIR [--after DIR] [--runs N] [--mib M] [--one-server] [--no-launcher]
 *
 * DIR is a checkout with its dist/ built; its fetches run as `npx rqcast`
 * runs them: its bin/rqcast launcher if it has one (--no-launcher: node
 * with its dist/cli/main.js, as before the launcher), else node with
 * dist/cli/main.js. --after defaults to this tree. Each tree's `rqcast serve --rate
 * 400` on loopback serves an M MiB (16) file to that tree's fetches (so the
 * server's side of the start-up, e.g. when JOINED leaves, is compared too;
 * --one-server: the after tree's serves both); a UDP socket that
 * never answers stands for a server that has not answered yet. For each of
 * "NODE_EXTRA_CA_CERTS as set" and "unset", N times (15) in turn: `node -e
 * 0` (Node's own floor), then with each tree a fetch from the silent socket
 * (it sends its HELLO and gives up after 200 ms: the process's CPU time,
 * user+system, is its start-up's), then an M MiB fetch with each (its
 * `--json` startupMs and startupPhasesMs, and its wall time). CPU time is
 * Node's, read in the process at exit (a preload given in NODE_OPTIONS);
 * startupMs counts from Node's start too, so a launcher's own few ms are in
 * the wall time only. Compile caches go to a temporary
 * directory, warmed by one run of each first. Prints medians in a table
 * and, last, one JSON line with them and after ÷ before.
 */
'use strict';
const { spawnSync, spawn } = require('child_process');
const dgram = require('dgram');
const fs = require('fs');
const os = require('os');
const path = require('path');

function parseArgs(argv) {
  const o = { before: undefined, after: path.resolve(__dirname, '..'), runs: 15, mib: 16, port: 47000 + (process.pid % 2000), oneServer: false, launcher: true };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--one-server' || argv[i] === '--no-launcher') {
      if (argv[i] === '--one-server') o.oneServer = true;
      else o.launcher = false;
      continue;
    }
    const v = argv[++i];
    if (argv[i - 1] === '--before') o.before = path.resolve(v);
    else if (argv[i - 1] === '--after') o.after = path.resolve(v);
    else if (argv[i - 1] === '--runs') o.runs = Number(v);
    else if (argv[i - 1] === '--mib') o.mib = Number(v);
    else if (argv[i - 1] === '--port') o.port = Number(v);
    else throw new Error(`bench-startup: unknown argument ${argv[i - 1]}`);
  }
  if (o.before === undefined) throw new Error('bench-startup: --before DIR (a tree with dist/ built) is required');
  return o;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** A preload that writes the process's CPU time (ms) to stderr at exit. */
const CPU_AT_EXIT = "process.on('exit', () => { const c = process.cpuUsage(); require('fs').writeSync(2, `@@cpu ${(c.user + c.system) / 1000}\\n`); });\n";

/**
 * How a tree's `rqcast` is run: its bin/rqcast launcher when it has one
 * (unless --no-launcher), as `npx rqcast` runs it, else node with its
 * dist/cli/main.js.
 */
function rqcastCommand(tree, launcher) {
  const bin = path.join(tree, 'bin', 'rqcast');
  return launcher && fs.existsSync(bin) ? [bin] : [process.execPath, path.join(tree, 'dist/cli/main.js')];
}

/** Runs `cmd` (node, or a launcher that runs it) with the CPU preload in NODE_OPTIONS: { cpuMs, wallMs, stdout }; `status` the exit code it must end with. */
function timed(cmd, env, preload, status = 0) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd[0], cmd.slice(1), { env: { ...env, NODE_OPTIONS: `--require=${preload}` }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
  const m = /@@cpu ([\d.]+)/.exec(r.stderr);
  if (r.status !== status || !m) throw new Error(`bench-startup: ${cmd.join(' ')} ended ${r.status}: ${r.stderr.slice(-2000)}`);
  return { cpuMs: Number(m[1]), wallMs, stdout: r.stdout };
}

function summaryOf(stdout) {
  const line = stdout.trim().split('\n').map((l) => JSON.parse(l)).find((j) => j.type === 'summary');
  return { startupMs: line.startupMs, ...line.startupPhasesMs };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bench-startup-'));
  const files = path.join(tmp, 'files');
  fs.mkdirSync(files);
  const preload = path.join(tmp, 'cpu-at-exit.js');
  fs.writeFileSync(preload, CPU_AT_EXIT);
  const silent = dgram.createSocket('udp4');
  await new Promise((resolve) => silent.bind(0, '127.0.0.1', resolve));
  const big = Buffer.allocUnsafe(o.mib << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  fs.writeFileSync(path.join(files, 'big.bin'), big);
  const base = { ...process.env, NODE_OPTIONS: '', RQCAST_COMPILE_CACHE: path.join(tmp, 'cache') };
  const trees = { before: o.before, after: o.after };
  /** Each tree's server (its port), or the after tree's for both. */
  const ports = { after: o.port, before: o.oneServer ? o.port : o.port + 1 };
  const servers = [];
  for (const t of o.oneServer ? ['after'] : ['after', 'before']) {
    const server = spawn(process.execPath, [path.join(trees[t], 'dist/cli/main.js'), 'serve', files, '--port', String(ports[t]), '--bind', '127.0.0.1', '--rate', '400'], { env: base, stdio: ['ignore', 'pipe', 'ignore'] });
    servers.push(server);
    await new Promise((resolve, reject) => {
      server.stdout.on('data', (d) => String(d).includes('listening') && resolve());
      server.once('exit', (c) => {
        for (const other of servers) other.kill('SIGTERM');
        reject(new Error(`serve exited (${c})`));
      });
    });
  }
  const run = { before: rqcastCommand(o.before, o.launcher), after: rqcastCommand(o.after, o.launcher) };
  const fetchArgs = (t, name) => [...run[t], 'fetch', `rqcast://127.0.0.1:${ports[t]}/${name}`, '-o', path.join(tmp, `${name}.out`), '--json', '--no-resume'];
  const helloArgs = (t) => [...run[t], 'fetch', `rqcast://127.0.0.1:${silent.address().port}/x.bin`, '-o', path.join(tmp, 'x.out'), '-q', '--no-resume', '--timeout', '200ms'];
  /** rqcast's exit code when no server answers (exit-codes.ts). */
  const NO_ANSWER = 4;
  const results = {};
  try {
    for (const ca of ['set', 'unset']) {
      const env = { ...base };
      if (ca === 'unset') delete env.NODE_EXTRA_CA_CERTS;
      const r = (results[ca] = { node: { cpuMs: [], wallMs: [] } });
      for (const t of Object.keys(trees)) {
        r[t] = { cpuMs: [], wallMs: [], startup: [] };
        timed(helloArgs(t), env, preload, NO_ANSWER); // warms its compile cache
        timed(fetchArgs(t, 'big.bin'), env, preload);
      }
      for (let i = 0; i < o.runs; i++) {
        const n = timed([process.execPath, '-e', '0'], env, preload);
        r.node.cpuMs.push(n.cpuMs);
        r.node.wallMs.push(n.wallMs);
        const order = i % 2 ? ['after', 'before'] : ['before', 'after'];
        for (const t of order) r[t].cpuMs.push(timed(helloArgs(t), env, preload, NO_ANSWER).cpuMs);
        for (const t of order) {
          const f = timed(fetchArgs(t, 'big.bin'), env, preload);
          r[t].wallMs.push(f.wallMs);
          r[t].startup.push(summaryOf(f.stdout));
        }
      }
    }
  } finally {
    const exited = servers.map((server) => new Promise((resolve) => server.once('exit', resolve)));
    for (const server of servers) server.kill('SIGTERM');
    silent.close();
    await Promise.all(exited);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const phases = ['startupMs', 'process', 'modules', 'hello', 'cookie', 'joined', 'data'];
  const out = { runs: o.runs, mib: o.mib, servers: o.oneServer ? 'after' : 'each', run: { before: run.before.length === 1 ? 'bin/rqcast' : 'node main.js', after: run.after.length === 1 ? 'bin/rqcast' : 'node main.js' }, loadavg: os.loadavg().map((x) => round(x, 2)) };
  console.log(`| CA bundle | run | CPU to HELLO (ms) | ${o.mib} MiB fetch wall (ms) | ${phases.join(' | ')} |`);
  console.log(`|---|---|---|---|${phases.map(() => '---').join('|')}|`);
  for (const ca of Object.keys(results)) {
    const r = results[ca];
    const med = { node: { cpuMs: round(median(r.node.cpuMs)), wallMs: round(median(r.node.wallMs)) } };
    console.log(`| ${ca} | node -e 0 | ${med.node.cpuMs} | ${med.node.wallMs} |${phases.map(() => '').join(' |')} |`);
    for (const t of Object.keys(trees)) {
      med[t] = { cpuMs: round(median(r[t].cpuMs)), wallMs: round(median(r[t].wallMs)) };
      for (const p of phases) med[t][p] = median(r[t].startup.map((s) => s[p]));
      console.log(`| ${ca} | ${t} | ${med[t].cpuMs} | ${med[t].wallMs} | ${phases.map((p) => med[t][p]).join(' | ')} |`);
    }
    med.ratio = {};
    for (const k of ['cpuMs', 'wallMs', 'startupMs', 'modules']) med.ratio[k] = round(med.after[k] / med.before[k], 3);
    out[`ca_${ca}`] = med;
  }
  out.loadavgEnd = os.loadavg().map((x) => round(x, 2));
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
