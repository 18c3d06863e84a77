// Multicast benchmark (issue 8): one file to N receivers (N = 1, 3, 10) over
// IP multicast against UDP unicast, on the network-namespace testbed
// (test/support/netns.ts: a bridge with multicast snooping off, a server
// namespace, one namespace per receiver), in the same run, at the same rate.
//
//   npm run bench:multicast                64 MiB at 50 Mbit/s to 1, 3, 10 receivers
//   npm run bench:multicast -- --quick     16 MiB
//   options: --bytes N  --rate MBIT  --receivers 1,3,10  --modes multicast,unicast
//
// Each (N, mode) run has a fresh `rqcast serve` of the file (from the
// sources, transpiled once), paced at --rate per stream, under GNU time:
// - multicast: `serve --multicast 239.1.2.3:5000`; the receivers
//   `fetch --transport multicast`, so a run cannot turn into unicast
//   unnoticed (a receiver that got nothing would time out, and the run is
//   marked failed); each receiver's summary must also say multicast, with no
//   unicast data packet.
// - unicast: the same `serve` without a group (what a server sends when
//   multicast is not configured: a group stream would only add its own copy
//   to the unicast side); the receivers `fetch --transport udp`.
// Measured per run:
// - seconds: from launching the N fetches (the server already listening) to
//   the last one exiting after it verified the file's SHA-256;
// - server_cpu_s: the server's user + system CPU seconds (GNU time) over its
//   life: start-up (catalogue digest), the transfer, shutdown;
// - TX bytes: the server interface's kernel counter (tx_bytes) over the same
//   span as `seconds`, total and per receiver, and per second of the span;
// - the receivers' CPU seconds (GNU time), mean and busiest: with every
//   receiver and the server on one machine, a run of many receivers can be
//   as slow as their CPU makes it, and the group streams all along.
// Every received file is checked against the source's SHA-256 (outside the
// timed span). The group stream of a multicast server runs from the moment
// it listens whoever is there (docs/PROTOCOL.md §10.10): its TX and CPU should
// not grow with N (the goal: at most 1.2x from N = 1 to N = 10),
// where unicast grows N-fold.
//
// The last line printed is one JSON object:
// {"bench":"multicast","results":[{"receivers":N,"mode":"multicast"|"unicast",
//  "seconds":…,"server_cpu_s":…,"tx_bytes_per_receiver":…, …}], …}
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NsProcess, probeNetns, Testbed } from '../test/support/netns';
import { lastJson, rqcastArgv, transpiledRoot } from '../test/e2e/helpers';
import { cliOption, nowSeconds, readTimeReport, round, sha256File, timed, writeRandomFile } from './support/measure';
import { stopTimed } from './support/netns-run';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const BYTES = Number(cliOption('--bytes') ?? (QUICK ? 16 : 64) * 1024 * 1024);
const RATE_MBIT = Number(cliOption('--rate') ?? 50);
const RECEIVERS = (cliOption('--receivers') ?? '1,3,10').split(',').map(Number);
const MODES = (cliOption('--modes') ?? 'multicast,unicast').split(',') as Mode[];
const BUF = 8 * 1024 * 1024;
const CONTROL_PORT = 4433;
const GROUP = '239.1.2.3:5000';
const TIMEOUT_S = Math.max(120, Math.ceil(((BYTES * 8) / (RATE_MBIT * 1e6)) * 20));

type Mode = 'multicast' | 'unicast';

interface Run {
  receivers: number;
  mode: Mode;
  seconds: number;
  server_cpu_s: number;
  tx_bytes: number;
  tx_bytes_per_receiver: number;
  /** Every receiver exited 0 with the file bit-exact (and, for multicast, got it all by the group). */
  ok: boolean;
  verified: number;
  /** Mean reception overhead (%) of the receivers. */
  overhead_pct?: number;
  /** Data packets the receivers got by unicast, summed (multicast runs: should be 0). */
  unicast_packets: number;
  /** The receivers' CPU seconds (user + system, GNU time): the mean and the busiest. */
  client_cpu_s: number;
  client_cpu_max_s: number;
}

function log(msg: string): void {
  process.stderr.write(`[bench:multicast] ${msg}\n`);
}

function check(mode: string): Mode {
  if (mode !== 'multicast' && mode !== 'unicast') throw new Error(`--modes: "${mode}" is not multicast or unicast`);
  return mode;
}

async function txBytes(bed: Testbed): Promise<number> {
  return (await bed.interfaceCounters(bed.server)).txBytes;
}

async function runOnce(bed: Testbed, work: string, source: string, digest: string, n: number, mode: Mode): Promise<Run> {
  const tag = `${mode}-${n}`;
  const serverRep = path.join(work, `serve-${tag}.time`);
  const serveArgs = ['serve', source, '--bind', bed.server.address, '--port', String(CONTROL_PORT), '--rate', String(RATE_MBIT), '--quiet'];
  if (mode === 'multicast') serveArgs.push('--multicast', GROUP);
  const server = bed.spawn(bed.server.ns, timed(serverRep, rqcastArgv(...serveArgs)), { timeoutMs: TIMEOUT_S * 1000 + 120_000 });
  let fetches: NsProcess[] = [];
  try {
    await server.waitForStdout(/listening/, 600_000);
    const outs: string[] = [];
    const reports: string[] = [];
    const tx0 = await txBytes(bed);
    const t0 = nowSeconds();
    fetches = bed.clients.slice(0, n).map((c, i) => {
      const outDir = path.join(work, `${tag}-c${i}`);
      fs.mkdirSync(outDir, { recursive: true });
      outs.push(path.join(outDir, path.basename(source)));
      const transport = mode === 'multicast' ? 'multicast' : 'udp';
      const url = `rqcast://${bed.server.address}:${CONTROL_PORT}`;
      const rep = path.join(work, `fetch-${tag}-c${i}.time`);
      reports.push(rep);
      return bed.spawn(c.ns, timed(rep, rqcastArgv('fetch', url, '-o', outDir, '--json', '--quiet', '--transport', transport, '--timeout', `${TIMEOUT_S}s`)), {
        timeoutMs: TIMEOUT_S * 1000 + 30_000,
      });
    });
    const ends: number[] = [];
    const results = await Promise.all(fetches.map((f) => f.wait().then((r) => (ends.push(nowSeconds()), r))));
    const seconds = Math.max(...ends) - t0;
    const tx = (await txBytes(bed)) - tx0;
    await stopTimed(server);

    let verified = 0;
    for (const out of outs) if ((await sha256File(out)) === digest) verified++;
    const summaries = results.map((r) => lastJson(r.stdout));
    let unicast = 0;
    let onMulticast = 0;
    const overheads: number[] = [];
    for (const s of summaries) {
      if (!s || s.type !== 'summary') continue;
      unicast += Number(s.packetsReceived) - Number(s.multicastPackets);
      overheads.push(Number(s.overhead) * 100);
      const channels = s.channels as Array<{ transport: string }>;
      if (channels.every((c) => c.transport === 'multicast')) onMulticast++;
    }
    let ok = results.every((r) => r.code === 0) && verified === n;
    if (mode === 'multicast' && (onMulticast !== n || unicast !== 0)) ok = false;
    if (!ok) {
      for (const r of results) log(`${tag}: fetch exit ${r.code ?? r.signal}; stderr tail: ${r.stderr.slice(-1500)}`);
      log(`${tag}: ${verified}/${n} verified, ${onMulticast} on multicast, ${unicast} unicast packets`);
    }
    for (const out of outs) fs.rmSync(path.dirname(out), { recursive: true, force: true });
    const cpu = readTimeReport(serverRep).cpuSeconds;
    const clientCpu = reports.map((r) => readTimeReport(r).cpuSeconds);
    return {
      receivers: n,
      mode,
      seconds,
      server_cpu_s: cpu,
      tx_bytes: tx,
      tx_bytes_per_receiver: tx / n,
      ok,
      verified,
      overhead_pct: overheads.length ? overheads.reduce((a, b) => a + b, 0) / overheads.length : undefined,
      unicast_packets: unicast,
      client_cpu_s: clientCpu.reduce((a, b) => a + b, 0) / clientCpu.length,
      client_cpu_max_s: Math.max(...clientCpu),
    };
  } finally {
    for (const f of fetches) f.kill('SIGKILL');
    await stopTimed(server);
  }
}

async function main(): Promise<void> {
  MODES.forEach(check);
  if (RECEIVERS.some((n) => !(Number.isInteger(n) && n >= 1 && n <= 250))) throw new Error(`--receivers: 1..250 each, got ${RECEIVERS.join(',')}`);
  const probe = probeNetns();
  if (!probe.ok) throw new Error(`network namespaces unavailable: ${probe.reason}`);
  log(`rqcast CLI from ${transpiledRoot()}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bench-multicast-'));
  const bed = await Testbed.create({ clients: Math.max(...RECEIVERS), socketBufferMax: BUF });
  const runs: Run[] = [];
  try {
    const source = path.join(work, 'payload.bin');
    log(`writing ${BYTES} random bytes`);
    const digest = writeRandomFile(source, BYTES);
    for (const n of RECEIVERS) {
      for (const mode of MODES) {
        log(`${mode}, ${n} receiver${n === 1 ? '' : 's'}`);
        runs.push(await runOnce(bed, work, source, digest, n, mode));
        log(JSON.stringify(runs[runs.length - 1]));
      }
    }
  } finally {
    bed.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }

  const ideal = (BYTES * 8) / (RATE_MBIT * 1e6);
  const MiB = 1024 * 1024;
  console.log(
    `multicast: ${BYTES} bytes to N receivers at ${RATE_MBIT} Mbit/s per stream (ideal ${ideal.toFixed(2)} s), netns bridge (snooping off), ` +
      'a fresh server per run; TX = server interface tx_bytes from launching the fetches to the last one done',
  );
  console.log('N    mode       seconds  server_cpu_s  tx_MiB    tx_MiB/receiver  tx_Mbit/s  client_cpu_s(mean/max)  overhead%  ok');
  const f = (x: number | undefined, w: number, d = 2): string => (x === undefined ? 'n/a' : x.toFixed(d)).padEnd(w);
  for (const r of runs) {
    console.log(
      `${String(r.receivers).padEnd(5)}${r.mode.padEnd(11)}${f(r.seconds, 9)}${f(r.server_cpu_s, 14)}${f(r.tx_bytes / MiB, 10, 1)}` +
        `${f(r.tx_bytes_per_receiver / MiB, 17, 1)}${f((r.tx_bytes * 8) / 1e6 / r.seconds, 11, 1)}` +
        `${(r.client_cpu_s.toFixed(2) + ' / ' + r.client_cpu_max_s.toFixed(2)).padEnd(24)}${f(r.overhead_pct, 11)}${r.ok ? 'yes' : 'NO'}`,
    );
  }
  // Ratios within this run: how multicast grows from the fewest receivers to
  // the most (the goal: <= 1.2x for CPU and TX), and what unicast
  // costs against it at each N.
  const find = (n: number, mode: Mode): Run | undefined => runs.find((r) => r.receivers === n && r.mode === mode && r.ok);
  const lo = Math.min(...RECEIVERS);
  const hi = Math.max(...RECEIVERS);
  const ratio = (a: number | undefined, b: number | undefined): number | null => (a !== undefined && b !== undefined && b > 0 ? round(a / b, 3) : null);
  const mLo = find(lo, 'multicast');
  const mHi = find(hi, 'multicast');
  const growth = {
    from: lo,
    to: hi,
    server_cpu: ratio(mHi?.server_cpu_s, mLo?.server_cpu_s),
    tx_bytes: ratio(mHi?.tx_bytes, mLo?.tx_bytes),
    // TX bytes grow with the span a run takes (the slowest receiver), the
    // group stream running all along: per second they say how many copies.
    seconds: ratio(mHi?.seconds, mLo?.seconds),
    tx_bytes_per_second: ratio(mHi && mHi.tx_bytes / mHi.seconds, mLo && mLo.tx_bytes / mLo.seconds),
  };
  console.log(
    `multicast from N=${lo} to N=${hi}: server CPU x${growth.server_cpu ?? 'n/a'}, server TX bytes x${growth.tx_bytes ?? 'n/a'} (goal <= 1.2); ` +
      `the span x${growth.seconds ?? 'n/a'}, TX bytes per second of it x${growth.tx_bytes_per_second ?? 'n/a'}`,
  );
  const unicastOverMulticast = RECEIVERS.map((n) => {
    const m = find(n, 'multicast');
    const u = find(n, 'unicast');
    return { receivers: n, server_cpu: ratio(u?.server_cpu_s, m?.server_cpu_s), tx_bytes: ratio(u?.tx_bytes, m?.tx_bytes), seconds: ratio(u?.seconds, m?.seconds) };
  });
  for (const u of unicastOverMulticast) {
    console.log(`unicast / multicast at N=${u.receivers}: server CPU x${u.server_cpu ?? 'n/a'}, TX bytes x${u.tx_bytes ?? 'n/a'}, seconds x${u.seconds ?? 'n/a'}`);
  }
  console.log(
    JSON.stringify({
      bench: 'multicast',
      bytes: BYTES,
      rate_mbit: RATE_MBIT,
      results: runs.map((r) => ({
        receivers: r.receivers,
        mode: r.mode,
        seconds: r.ok ? round(r.seconds, 2) : null,
        server_cpu_s: round(r.server_cpu_s, 2),
        tx_bytes_per_receiver: Math.round(r.tx_bytes_per_receiver),
        tx_bytes: r.tx_bytes,
        overhead_pct: r.overhead_pct === undefined ? null : round(r.overhead_pct, 2),
        client_cpu_s: round(r.client_cpu_s, 2),
        client_cpu_max_s: round(r.client_cpu_max_s, 2),
        ok: r.ok,
      })),
      multicast_growth: growth,
      unicast_over_multicast: unicastOverMulticast,
    }),
  );
  if (runs.some((r) => !r.ok)) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
