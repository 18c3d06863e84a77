// End-to-end benchmark: one file to several receivers over a network-namespace
// testbed (bridge + veths, test/support/netns.ts), rqcast against UFTP
// (Debian package `uftp`, NAK-based reliable multicast), same testbed, same
// run, same rate cap, same loss rule.
//
//   npm run bench:e2e                256 MiB, 3 receivers, 0 % and 5 % loss
//   npm run bench:e2e -- --quick     16 MiB
//   options: --bytes N  --rate MBIT  --receivers N  --loss 0,5  --only rqcast|uftp
//            --serve-args "..." (extra rqcast serve options)
//            --fetch-args "..." (extra rqcast fetch options, e.g. --no-need: the fixed passes)
//            --no-mixed (skip the mixed-size channel rows, bench/e2e-mixed.ts)
//            --loss-at packets|datagrams (where the loss rule drops; default
//              packets: see Loss under Fairness)
//            --segment (the bridge cuts rqcast's GSO datagrams into packets on
//              the way to each receiver, and no GRO merges them again: each
//              receiver reads single packets)
//            --fetch-node-args "..." (node options of each rqcast fetch, e.g.
//              "--cpu-prof --cpu-prof-dir=DIR" or "--perf-basic-prof": a profile of
//              the receivers; they go in NODE_OPTIONS, but node refuses
//              --cpu-prof there: the fetches then run as `node OPTIONS main.js`,
//              without the launcher; --perf-basic-prof leaves /tmp/perf-PID.map
//              and isolate-*-v8.log in the working directory)
//
// The fetches run as users run `rqcast fetch`: the launcher (bin/rqcast) in
// front of this tree's transpiled lib/ (bench/support/fetch-command.ts).
//
// Fairness:
// - Rate: both sides are capped at the same rate per receiver stream
//   (rqcast `--rate R` Mbit/s per channel, UFTP `-R R*1000` Kbit/s with
//   congestion control off `-C none`). UFTP multicasts one stream that every
//   receiver gets; rqcast unicasts one copy to each, so each receiver sees the
//   same rate either way. Both count the same bytes: UDP payload (rqcast its
//   ALC packets, 24-byte header + symbol; UFTP its packets, ~24-byte header +
//   block), neither the IP, UDP or Ethernet headers. wire_each checks it on
//   each receiver's bridge port (bench/support/wire-meter.ts): in steady
//   state rqcast put 191.6-199.9 and UFTP 197.7-201.4 Mbit/s of UDP payload
//   there under load 6-15 (docs/BENCHMARKS.md, 2026-12-04).
// - GSO: rqcast's runs cross the veths and the bridge as one GSO datagram
//   (~31 packets), as a NIC with UDP segmentation offload takes them; with
//   loss on (--loss-at packets) they are cut into packets as they reach the
//   receiver's veth, and GRO merges what is left for rqcast's socket
//   (UDP_GRO), as a NIC's receive offload does.
// - Payload: UFTP block size 1280 (`-b 1280`) = rqcast symbol size 1280.
// - Socket buffers: 8 MiB on both sides (`-B`, and rmem_max/wmem_max in the
//   namespaces).
// - Loss: the same rule on each receiver drops `loss`% of UDP datagrams
//   longer than 512 bytes, i.e. data packets of either protocol; control
//   exchanges (small datagrams) pass in both, so neither side is timed on
//   its session set-up retry schedule. By default (--loss-at packets) an
//   XDP program on the receiver's veth drops each packet independently
//   before GRO (test/support/packet-loss.ts): what a lossy link does to
//   both tools' packets. --loss-at datagrams is the nftables rule on the
//   input hook, which sees each of rqcast's GSO datagrams whole and drops
//   whole runs of ~31 (uftp's packets still one by one): the same share,
//   in bursts for rqcast only (bench/support/loss-model.ts).
// - Time: from the moment the senders/receivers are started (UFTP: `uftp`
//   launched with `uftpd` already listening; rqcast: the fetches launched with
//   `serve` already listening) to the last receiver done: `uftp` exits once
//   every receiver confirmed every file; each `rqcast fetch` exits after it
//   has checked the file's SHA-256. Every received file is then checked
//   against the source's SHA-256 (outside the timed span) for both.
// - Peak RSS: GNU time (`/usr/bin/time -v`) around every process.
// - Pacing: rqcast's server runs with `--metrics` on its namespace's
//   loopback; pacing_forfeited_MB / pacing_repaid_MB are its
//   rqcast_pacing_stall_bytes_total at the end (the rate its sender
//   thread's stalls took beyond the burst, and what was paid back:
//   docs/PROTOCOL.md §10.6).
// - Per row: floor_s (the line-rate time over (1 - loss): what a fountain
//   code cannot beat), CPU (user + system) and peak RSS of the busiest
//   receiver on each side (client_cpu_s, uftpd_cpu_s, also per GiB), and
//   rqcast's start-up (startup_ms: a fetch's process start to its first data
//   packet) and tail (tail_ms: last useful packet to the verified, renamed
//   file), the largest over the receivers, from each fetch's --json summary;
//   each receiver's, and their steps (startup_phases_each, tail_phases_each:
//   startupPhasesMs, tailPhasesMs).
// The last line printed is one JSON object.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NsProcess, probeNetns, Testbed } from '../test/support/netns';
import { lastJson, rqcastArgv, transpiledRoot } from '../test/e2e/helpers';
import { fetchCommand } from './support/fetch-command';
import { stopTimed } from './support/netns-run';
import { METRICS_PORT, scrapeServerMetrics } from './support/server-metrics';
import { streamPacketOverhead } from '../lib/protocol/alc';
import { WireMeter, WireRate } from './support/wire-meter';
import { MixedRow, printMixedRows, runMixedChannel } from './e2e-mixed';
import { Breakdown, breakdown, FetchCounts, printBreakdowns } from './e2e-breakdown';
import { LossModel, parseLossAt } from './support/loss-model';
import { cliOption, nowSeconds, overheadFromSummary, readTimeReport, round, sha256File, sleep, timed, TimeReport, writeRandomFile } from './support/measure';

const argv = process.argv.slice(2);
const opt = cliOption;
const QUICK = argv.includes('--quick');
const BYTES = Number(opt('--bytes') ?? (QUICK ? 16 * 1024 * 1024 : 256 * 1024 * 1024));
const RATE_MBIT = Number(opt('--rate') ?? 200);
const RECEIVERS = Number(opt('--receivers') ?? 3);
const LOSSES = (opt('--loss') ?? '0,5').split(',').map(Number);
const ONLY = opt('--only');
/** Extra `rqcast serve` options, e.g. --serve-args "--memory 128 --pass-overhead 10" (a sliding window). */
const SERVE_ARGS = (opt('--serve-args') ?? '').split(/\s+/).filter(Boolean);
const MIXED = !argv.includes('--no-mixed');
const SEGMENT = argv.includes('--segment');
/** Where the loss rule drops: single packets before GRO (default), or whole datagrams at the input hook. */
const LOSS_AT = parseLossAt(opt('--loss-at'));
/** Extra `rqcast fetch` options, e.g. --fetch-args "--no-need" (no NEED reports: the server's fixed passes). */
const FETCH_ARGS = (opt('--fetch-args') ?? '').split(/\s+/).filter(Boolean);
/** Node options of each `rqcast fetch` (profiling). */
const FETCH_NODE_ARGS = (opt('--fetch-node-args') ?? '').split(/\s+/).filter(Boolean);
/** How each `rqcast fetch` is run: its launcher, or node with FETCH_NODE_ARGS. */
const FETCH = fetchCommand(FETCH_NODE_ARGS);
const BUF = 8 * 1024 * 1024;
/** rqcast's default symbol size (T): source symbols = bytes / T. */
const SYMBOL_SIZE = 1280;
/** A data packet's bytes as --rate counts them: the ALC/LCT header of channel 1's object 1 (lib/server/config.ts DATA_HEADER_BYTES) and the symbol. */
const DATA_PACKET_BYTES = streamPacketOverhead(1, 1) + SYMBOL_SIZE;
const CONTROL_PORT = 4433;
const UFTP_PORT = 1044;
const TIMEOUT_S = Math.max(120, Math.ceil(((BYTES * 8) / (RATE_MBIT * 1e6)) * 20));

interface Run {
  system: 'rqcast' | 'uftp';
  loss_pct: number;
  seconds: number;
  ok: boolean;
  verified: number;
  server_rss_MiB: number;
  client_rss_MiB: number;
  /** CPU seconds (user + system): the server's, and the busiest receiver's. */
  server_cpu_s: number;
  client_cpu_s: number;
  overhead_pct?: number;
  /** Share of candidate datagrams the loss rule actually dropped. */
  dropped_pct?: number;
  /** rqcast: the slowest receiver's start-up (process start to first data packet) and tail (last useful packet to the file published), from fetch --json. */
  startup_ms?: number;
  tail_ms?: number;
  /** Each receiver's, in launch order (a receiver that joins late in block 0's pass gets it in the next pass: its digest waits for it). */
  startup_ms_each?: (number | null)[];
  tail_ms_each?: (number | null)[];
  /** Each receiver's steps of those (fetch --json startupPhasesMs, tailPhasesMs). */
  startup_phases_each?: unknown[];
  tail_phases_each?: unknown[];
  packets_vs_source_each?: (number | null)[];
  socket_drops_each?: (number | null)[];
  budget_drops_each?: (number | null)[];
  /** Each receiver's bridge port in steady state (bench/support/wire-meter.ts). */
  wire_each?: WireRate[];
  /** rqcast: where each receiver's time went (bench/e2e-breakdown.ts). */
  breakdown_each?: (Breakdown | null)[];
  /** rqcast: bytes of the stream's rate the server's sender thread's stalls took beyond its burst, and of them those paid back (the server's metrics at the end; null: a tree without the counter). */
  pacing_forfeited_MB?: number | null;
  pacing_repaid_MB?: number | null;
}

/** rqcast_pacing_stall_bytes_total of the channel's unicast stream (`serve FILE`: channel main, TSI 1), by kind, from the server's metrics. */
async function pacingStalls(bed: Testbed): Promise<{ forfeited: number | null; repaid: number | null }> {
  const metric = await scrapeServerMetrics(bed, '127.0.0.1');
  const pick = (kind: string): number | null => metric(`rqcast_pacing_stall_bytes_total{channel="main",tsi="1",transport="udp",kind="${kind}"}`) ?? null;
  return { forfeited: pick('forfeited'), repaid: pick('repaid') };
}

function usage(server: TimeReport, clients: TimeReport[]): Pick<Run, 'server_rss_MiB' | 'client_rss_MiB' | 'server_cpu_s' | 'client_cpu_s'> {
  return {
    server_rss_MiB: server.maxRssKiB / 1024,
    client_rss_MiB: Math.max(...clients.map((c) => c.maxRssKiB / 1024)),
    server_cpu_s: server.cpuSeconds,
    client_cpu_s: Math.max(...clients.map((c) => c.cpuSeconds)),
  };
}

function log(msg: string): void {
  process.stderr.write(`[bench:e2e] ${msg}\n`);
}

function ensureUftp(): void {
  if (spawnSync('which', ['uftp']).status === 0 && spawnSync('which', ['uftpd']).status === 0) return;
  log('installing the uftp package (apt-get install -y uftp)');
  execFileSync('apt-get', ['install', '-y', '-qq', 'uftp'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function clientUid(address: string): string {
  return '0x' + address.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
}

async function waitUdpListening(bed: Testbed, ns: string, port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await bed.run(ns, ['ss', '-Huln', `sport = :${port}`]);
    if (r.stdout.trim() !== '') return;
    await sleep(50);
  }
  throw new Error(`nothing listening on udp ${port} in ${ns}`);
}

async function runUftp(bed: Testbed, lossModel: LossModel, work: string, source: string, digest: string, loss: number): Promise<Run> {
  const receivers = bed.clients.slice(0, RECEIVERS);
  const daemons: NsProcess[] = [];
  const dirs: string[] = [];
  const reports: string[] = [];
  for (const [i, c] of receivers.entries()) {
    const dir = path.join(work, `uftp-${loss}-c${i}`);
    fs.mkdirSync(dir, { recursive: true });
    dirs.push(dir);
    const rep = path.join(work, `uftpd-${loss}-c${i}.time`);
    reports.push(rep);
    daemons.push(
      bed.spawn(
        c.ns,
        timed(rep, ['uftpd', '-d', '-q', '-x', '1', '-I', c.ifname, '-U', clientUid(c.address), '-D', dir, '-B', String(BUF), '-p', String(UFTP_PORT)]),
        { timeoutMs: TIMEOUT_S * 1000 + 60_000 },
      ),
    );
  }
  for (const c of receivers) await waitUdpListening(bed, c.ns, UFTP_PORT);
  await lossModel.set(loss);
  const serverRep = path.join(work, `uftp-${loss}.time`);
  const meter = new WireMeter(bed, receivers.length);
  const t0 = nowSeconds();
  const server = bed.spawn(
    bed.server.ns,
    timed(serverRep, [
      'uftp',
      '-R', String(RATE_MBIT * 1000),
      '-C', 'none',
      '-Y', 'none',
      '-I', bed.server.ifname,
      '-B', String(BUF),
      '-b', '1280',
      '-x', '1',
      '-p', String(UFTP_PORT),
      '-H', receivers.map((c) => clientUid(c.address)).join(','),
      source,
    ]),
    { timeoutMs: TIMEOUT_S * 1000 },
  );
  const res = await server.wait();
  const seconds = nowSeconds() - t0;
  const wire = await meter.stop();
  const dropped = (await lossModel.realised(loss)).pct;
  await lossModel.set(0);
  for (const d of daemons) await stopTimed(d);
  let verified = 0;
  for (const dir of dirs) {
    if ((await sha256File(path.join(dir, path.basename(source)))) === digest) verified++;
  }
  const serverReport = readTimeReport(serverRep);
  const clientReports = reports.map(readTimeReport);
  const ok = res.code === 0 && verified === receivers.length;
  if (!ok) log(`uftp at ${loss}%: exit ${res.code ?? res.signal}, ${verified}/${receivers.length} verified; stderr tail: ${res.stderr.slice(-1500)}`);
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  return { system: 'uftp', loss_pct: loss, seconds, ok, verified, ...usage(serverReport, clientReports), dropped_pct: dropped, wire_each: wire };
}

async function runRqcast(bed: Testbed, lossModel: LossModel, work: string, source: string, digest: string, loss: number): Promise<Run> {
  const receivers = bed.clients.slice(0, RECEIVERS);
  const serverRep = path.join(work, `serve-${loss}.time`);
  const server = bed.spawn(
    bed.server.ns,
    timed(serverRep, rqcastArgv('serve', source, '--bind', bed.server.address, '--port', String(CONTROL_PORT), '--rate', String(RATE_MBIT), '--metrics', `127.0.0.1:${METRICS_PORT}`, '--json', ...SERVE_ARGS)),
    { timeoutMs: TIMEOUT_S * 1000 + 120_000 },
  );
  await server.waitForStdout(/listening/, 600_000);
  await lossModel.set(loss);
  const reports: string[] = [];
  const outs: string[] = [];
  const meter = new WireMeter(bed, receivers.length);
  const summarySeen: (number | undefined)[] = [];
  const spawnedAt: number[] = [];
  const t0 = nowSeconds();
  const fetches = receivers.map((c, i) => {
    const rep = path.join(work, `fetch-${loss}-c${i}.time`);
    reports.push(rep);
    const outDir = path.join(work, `rq-${loss}-c${i}`);
    fs.mkdirSync(outDir, { recursive: true });
    outs.push(path.join(outDir, path.basename(source)));
    spawnedAt[i] = nowSeconds() - t0;
    const f = bed.spawn(c.ns, timed(rep, FETCH.argv(`rqcast://${bed.server.address}:${CONTROL_PORT}`, '-o', outDir, '--json', '--quiet', '--timeout', `${TIMEOUT_S}s`, ...FETCH_ARGS)), {
      timeoutMs: TIMEOUT_S * 1000 + 30_000,
      env: FETCH.env,
    });
    // When its summary line reaches the bench (the breakdown's launch and exit).
    f.child.stdout?.on('data', () => {
      if (summarySeen[i] === undefined && f.stdout.includes('"type":"summary"')) summarySeen[i] = nowSeconds() - t0;
    });
    return f;
  });
  const ends: number[] = [];
  const results = await Promise.all(fetches.map((f, i) => f.wait().then((r) => ((ends[i] = nowSeconds()), r))));
  const seconds = Math.max(...ends) - t0;
  const wire = await meter.stop();
  const dropped = (await lossModel.realised(loss)).pct;
  const lossEach: (number | undefined)[] = [];
  for (const c of receivers) {
    const k = loss > 0 ? await lossModel.counters(c) : undefined;
    lossEach.push(k && k.seen > 0 ? k.dropped / k.seen : undefined);
    if (k) log(`${c.ns}: loss saw ${k.seen} ${LOSS_AT === 'packets' ? 'packets' : 'datagrams (GSO trains count once)'}, dropped ${k.dropped}`);
  }
  await lossModel.set(0);
  const stalls = await pacingStalls(bed);
  await stopTimed(server);
  let verified = 0;
  for (const out of outs) if ((await sha256File(out)) === digest) verified++;
  const summaries = results.map((r) => lastJson(r.stdout));
  const overheads = summaries.map(overheadFromSummary).filter((x): x is number => x !== undefined);
  const worst = (key: string): number | undefined => {
    const v = summaries.map((j) => j?.[key]).filter((x): x is number => typeof x === 'number');
    return v.length === receivers.length ? Math.max(...v) : undefined;
  };
  const ok = results.every((r) => r.code === 0) && verified === receivers.length;
  if (!ok) {
    for (const r of results) log(`rqcast fetch at ${loss}%: exit ${r.code ?? r.signal}; stderr tail: ${r.stderr.slice(-1500)}`);
  }
  for (const out of outs) fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return {
    system: 'rqcast',
    loss_pct: loss,
    seconds,
    ok,
    verified,
    ...usage(readTimeReport(serverRep), reports.map(readTimeReport)),
    dropped_pct: dropped,
    overhead_pct: overheads.length ? overheads.reduce((a, b) => a + b, 0) / overheads.length : undefined,
    startup_ms: worst('startupMs'),
    tail_ms: worst('tailMs'),
    startup_ms_each: summaries.map((j) => (typeof j?.startupMs === 'number' ? j.startupMs : null)),
    tail_ms_each: summaries.map((j) => (typeof j?.tailMs === 'number' ? j.tailMs : null)),
    startup_phases_each: summaries.map((j) => j?.startupPhasesMs ?? null),
    tail_phases_each: summaries.map((j) => j?.tailPhasesMs ?? null),
    // Counts: the data packets each receiver read (after the nftables loss) over the source symbols, and what its socket or memory budget dropped.
    packets_vs_source_each: summaries.map((j) => (typeof j?.packetsReceived === 'number' ? round(j.packetsReceived / Math.ceil(BYTES / SYMBOL_SIZE), 3) : null)),
    socket_drops_each: summaries.map((j) => (typeof j?.socketDrops === 'number' ? j.socketDrops : null)),
    budget_drops_each: summaries.map((j) => (typeof j?.budgetDrops === 'number' ? j.budgetDrops : null)),
    wire_each: wire,
    pacing_forfeited_MB: stalls.forfeited === null ? null : round(stalls.forfeited / 1e6, 2),
    pacing_repaid_MB: stalls.repaid === null ? null : round(stalls.repaid / 1e6, 2),
    breakdown_each: summaries.map(
      (j, i) =>
        breakdown({ seconds: ends[i] - t0, spawnedAt: spawnedAt[i], summarySeen: summarySeen[i], summary: (j ?? {}) as FetchCounts, bytes: BYTES, symbolSize: SYMBOL_SIZE, packetBytes: DATA_PACKET_BYTES, rateMbit: RATE_MBIT, lossPct: loss, realisedLoss: lossEach[i] }) ?? null,
    ),
  };
}

async function main(): Promise<void> {
  const probe = probeNetns();
  if (!probe.ok) throw new Error(`network namespaces unavailable: ${probe.reason}`);
  if (ONLY !== 'rqcast') ensureUftp();
  if (ONLY !== 'uftp') log(`rqcast CLI from ${transpiledRoot()}; fetches ${FETCH.launcher ? 'through its launcher, bin/rqcast' : `as node ${FETCH_NODE_ARGS.join(' ')} main.js, without the launcher (${FETCH.why})`}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bench-e2e-'));
  const bed = await Testbed.create({ clients: RECEIVERS, socketBufferMax: BUF });
  // Without UDP segmentation offload on a receiver's bridge port, the kernel cuts each GSO datagram into its packets there (software GSO).
  if (SEGMENT) for (let i = 1; i <= RECEIVERS; i++) await bed.runOk(bed.bridgeNs, ['ethtool', '-K', `p${i}`, 'tx-udp-segmentation', 'off']);
  const runs: Run[] = [];
  const mixed: MixedRow[] = [];
  try {
    const lossModel = new LossModel(LOSS_AT, bed, bed.clients.slice(0, RECEIVERS));
    log(`loss: ${lossModel.describe()}`);
    const source = path.join(work, 'payload.bin');
    log(`writing ${BYTES} random bytes`);
    const digest = writeRandomFile(source, BYTES);
    for (const loss of LOSSES) {
      if (ONLY !== 'rqcast') {
        log(`uftp, ${loss}% loss`);
        runs.push(await runUftp(bed, lossModel, work, source, digest, loss));
        log(JSON.stringify(runs[runs.length - 1]));
      }
      if (ONLY !== 'uftp') {
        log(`rqcast, ${loss}% loss`);
        runs.push(await runRqcast(bed, lossModel, work, source, digest, loss));
        log(JSON.stringify(runs[runs.length - 1]));
      }
      if (MIXED && ONLY !== 'uftp') {
        log(`rqcast, mixed-size channel, ${loss}% loss`);
        const o = { bed, work, receivers: RECEIVERS, largeBytes: BYTES, rateMbit: RATE_MBIT, loss, port: CONTROL_PORT, timeoutS: TIMEOUT_S, serveArgs: SERVE_ARGS };
        mixed.push(await runMixedChannel({ ...o, setLoss: (pct) => lossModel.set(pct), log }));
        log(JSON.stringify(mixed[mixed.length - 1]));
      }
    }
  } finally {
    bed.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }

  const ideal = (BYTES * 8) / (RATE_MBIT * 1e6);
  const results = LOSSES.map((loss) => {
    const rq = runs.find((r) => r.system === 'rqcast' && r.loss_pct === loss);
    const uf = runs.find((r) => r.system === 'uftp' && r.loss_pct === loss);
    const sec = (r: Run | undefined): number | null => (r && r.ok ? round(r.seconds, 2) : null);
    const rqs = sec(rq);
    const ufs = sec(uf);
    // The fountain floor: the payload at the line rate, over the share of packets that arrive.
    const floor = ideal / (1 - loss / 100);
    const perGiB = (cpu: number | undefined): number | null => (cpu === undefined ? null : round(cpu / (BYTES / 2 ** 30), 2));
    return {
      loss_pct: loss,
      receivers: RECEIVERS,
      bytes: BYTES,
      rate_mbit: RATE_MBIT,
      floor_s: round(floor, 2),
      rqcast_s: rqs,
      uftp_s: ufs,
      ratio: rqs !== null && ufs !== null ? round(ufs / rqs, 3) : null,
      rqcast_vs_floor: rqs !== null ? round(rqs / floor, 3) : null,
      startup_ms: rq?.startup_ms ?? null,
      tail_ms: rq?.tail_ms ?? null,
      startup_ms_each: rq?.startup_ms_each ?? null,
      tail_ms_each: rq?.tail_ms_each ?? null,
      startup_phases_each: rq?.startup_phases_each ?? null,
      tail_phases_each: rq?.tail_phases_each ?? null,
      packets_vs_source_each: rq?.packets_vs_source_each ?? null,
      socket_drops_each: rq?.socket_drops_each ?? null,
      budget_drops_each: rq?.budget_drops_each ?? null,
      rqcast_wire_each: rq?.wire_each ?? null,
      breakdown_each: rq?.breakdown_each ?? null,
      pacing_forfeited_MB: rq?.pacing_forfeited_MB ?? null,
      pacing_repaid_MB: rq?.pacing_repaid_MB ?? null,
      uftp_wire_each: uf?.wire_each ?? null,
      client_cpu_s: rq ? round(rq.client_cpu_s, 2) : null,
      uftpd_cpu_s: uf ? round(uf.client_cpu_s, 2) : null,
      client_cpu_s_per_GiB: perGiB(rq?.client_cpu_s),
      uftpd_cpu_s_per_GiB: perGiB(uf?.client_cpu_s),
      overhead_pct: rq?.overhead_pct !== undefined ? round(rq.overhead_pct, 2) : null,
      rqcast_server_rss_MiB: rq ? round(rq.server_rss_MiB, 1) : null,
      rqcast_client_rss_MiB: rq ? round(rq.client_rss_MiB, 1) : null,
      uftp_server_rss_MiB: uf ? round(uf.server_rss_MiB, 1) : null,
      uftp_client_rss_MiB: uf ? round(uf.client_rss_MiB, 1) : null,
      rqcast_server_cpu_s: rq ? round(rq.server_cpu_s, 1) : null,
      uftp_server_cpu_s: uf ? round(uf.server_cpu_s, 1) : null,
    };
  });

  console.log(`e2e: ${BYTES} bytes to ${RECEIVERS} receivers at ${RATE_MBIT} Mbit/s (ideal ${ideal.toFixed(2)} s; rqcast data packets of ${DATA_PACKET_BYTES} bytes), netns bridge, ${LOSS_AT === 'packets' ? 'per-packet loss before GRO (--loss-at packets)' : 'nftables input-hook loss on datagrams (--loss-at datagrams)'}${SEGMENT ? ', segmented at the bridge (--segment)' : ''}`);
  console.log('loss%  floor_s  rqcast_s  uftp_s   uftp/rqcast  rq/floor  startup_ms  tail_ms  overhead%  rq_srv_MiB  rq_cli_MiB  uftp_srv_MiB  uftpd_MiB  rq_srv_cpu  rq_cli_cpu  uftp_srv_cpu  uftpd_cpu');
  for (const r of results) {
    const f = (x: number | null, w: number): string => (x === null ? 'n/a' : String(x)).padEnd(w);
    console.log(
      `${f(r.loss_pct, 7)}${f(r.floor_s, 9)}${f(r.rqcast_s, 10)}${f(r.uftp_s, 9)}${f(r.ratio, 13)}${f(r.rqcast_vs_floor, 10)}${f(r.startup_ms, 12)}${f(r.tail_ms, 9)}${f(r.overhead_pct, 11)}${f(r.rqcast_server_rss_MiB, 12)}${f(r.rqcast_client_rss_MiB, 12)}${f(r.uftp_server_rss_MiB, 14)}${f(r.uftp_client_rss_MiB, 11)}` +
        `${f(r.rqcast_server_cpu_s, 12)}${f(r.client_cpu_s, 12)}${f(r.uftp_server_cpu_s, 14)}${f(r.uftpd_cpu_s, 9)}`,
    );
  }
  console.log('wire, steady state per receiver port (10-90 % of its bytes), Mbit/s: ethernet / IP / UDP payload, packets/s, mean UDP payload');
  for (const r of results) {
    for (const [system, each] of [['rqcast', r.rqcast_wire_each], ['uftp', r.uftp_wire_each]] as const) {
      if (!each) continue;
      const cells = each.map((w) => `${w.ethernet_mbit} / ${w.ip_mbit} / ${w.udp_payload_mbit}, ${w.packets_per_s} pkt/s, ${w.mean_udp_payload} B`);
      console.log(`${String(r.loss_pct).padEnd(4)}% ${system.padEnd(7)} ${cells.join('  |  ')}`);
    }
  }
  printBreakdowns(results.map((r) => ({ loss_pct: r.loss_pct, each: r.breakdown_each })));
  printMixedRows(mixed);
  console.log(JSON.stringify({ bench: 'e2e', segment: SEGMENT, loss_at: LOSS_AT, data_packet_bytes: DATA_PACKET_BYTES, results, mixed }));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
