// bench:tcp — rqcast over its user-space TCP against the kernel's TCP
// carrying the same bytes, in the same run, between two network namespaces
// (test/support/netns.ts) with nftables dropping a share of the server's
// TCP segments on the receiver's input hook.
//
//   npm run bench:tcp                 256 MiB, 1 % and 10 % loss
//   npm run bench:tcp -- --quick      32 MiB
//   options: --bytes N  --loss 1,10 (0 too: each stack's figure without loss)
//            --loss-at datagrams|packets (where the loss rule drops; default
//            datagrams: see Loss under Fairness)
//            --rate MBIT (rqcast channel cap, default 4000)
//            --only rqcast|kernel  --serve-args "..."  --no-routed
//            --kernel-cc NAME  (the kernel's congestion control; default
//            cubic, and the host's own default beside it when that differs)
//            --trace DIR  (the server's TCP trace, RQCAST_TCP_TRACE, per run,
//            and `ss -tin` of the kernel's flow every 20 ms, into DIR)
//            --fetch-node-args "..."  (Node options for rqcast's fetch only,
//            e.g. "--cpu-prof --cpu-prof-dir=DIR" or "--perf-basic-prof")
//            --fetch-prefix "..."  (a command rqcast's fetch runs under, e.g.
//            "perf stat -e instructions -o FILE": instructions, unlike CPU
//            seconds, barely move with the machine's load)
//            --link-mbit N  (a link of N Mbit/s: both stacks' packets leave
//            the server's veth through a token bucket, `tc qdisc ... tbf`,
//            256 KB burst, 20 ms of queue; see Link under Fairness)
//
// rqcast runs twice per loss rate: as served (GSO trains through the packet
// socket, docs/ARCHITECTURE.md "TCP") and with `--tcp-gso 0` (every segment
// alone through the routed raw socket: the sender before GSO), unless
// --no-routed. The server's metrics say which path ran: packets handed to
// the kernel, GSO packets among them, segments sent.
//
// Fairness:
// - The kernel side is a plain Node net server piping the file to the
//   socket and a plain net client writing it to disk (bench/support/
//   kernel-tcp.js): the kernel's SACK, RACK-TLP, TSO/GRO and all, unchanged.
// - Its congestion control is chosen by a host route to the client with
//   `congctl` in the server's namespace: CUBIC, the loss-based control
//   rqcast's is measured against (`ratio`). A host whose default is
//   another (BBR is common: it does not back off on random loss) gets a
//   second kernel run with that default (`ratio_host_cc`), so that both
//   comparisons are in the same run and neither hides the other.
// - rqcast: `rqcast serve FILE --tcp` and `rqcast fetch --transport tcp`,
//   the fetch checking the file's SHA-256 itself before it exits.
// - Time: from the fetch's start to its exit (both sides). Each received
//   file is checked against the source's SHA-256 afterwards.
// - Loss: the same rule for both: `loss`% of TCP packets from the service
//   port dropped at the receiver (tcpOnly + tcpSourcePort). By default
//   (--loss-at datagrams) the nftables rule on the input hook, which sees
//   both stacks' TSO/GSO packets whole (~30-43 KB each: rqcast's GSO
//   trains, the kernel's TSO), so each loss takes a run of segments from
//   either. --loss-at packets drops single segments before GRO (an XDP
//   program on the client's veth, test/support/packet-loss.ts), as a lossy
//   link does; both stacks then see many more, smaller losses
//   (docs/BENCHMARKS.md has both).
// - Server CPU: GNU time around the server process (user + system; the
//   system share and the minor page faults beside it); the
//   receiver's CPU the same way around the fetch (rqcast) or the plain
//   reader (kernel).
// - The receiver's backlog: the client socket's unread bytes (Recv-Q of
//   `ss` in the client's namespace, every 50 ms, for both): a receiving
//   program that keeps up leaves it near 0; one that falls behind holds
//   megabytes there, and a Linux receiver then ACKs when the program reads,
//   not when the data arrives (its round trip is the reader's pace).
// - Link: without --link-mbit the veths move data as fast as the two
//   cores copy it, so the stack that needs less CPU per byte wins,
//   whatever it sends. With --link-mbit N a token bucket on the server's
//   veth (for both stacks, before the bridge) makes the link the
//   bottleneck, as a real path is: then what counts is how much of the
//   link's rate each stack turns into the file (rqcast's packets beyond
//   the symbols it needed are `rqcast_packets_per_needed_symbol`).
// The last line printed is one JSON object.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { probeNetns, Testbed } from '../test/support/netns';
import { lastJson, rqcastArgv, transpiledRoot } from '../test/e2e/helpers';
import { stopTimed } from './support/netns-run';
import { METRICS_PORT, scrapeServerMetrics } from './support/server-metrics';
import { cliOption, nowSeconds, overheadFromSummary, readTimeReport, round, sha256File, timed, writeRandomFile } from './support/measure';
import { LossModel, parseLossAt } from './support/loss-model';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const BYTES = Number(cliOption('--bytes') ?? (QUICK ? 32 * 1024 * 1024 : 256 * 1024 * 1024));
const LOSSES = (cliOption('--loss') ?? '1,10').split(',').map(Number);
const RATE_MBIT = Number(cliOption('--rate') ?? 4000);
const ONLY = cliOption('--only');
const SERVE_ARGS = (cliOption('--serve-args') ?? '').split(/\s+/).filter(Boolean);
const ROUTED = !argv.includes('--no-routed');
const TRACE_DIR = cliOption('--trace');
const KERNEL_CC = cliOption('--kernel-cc');
const FETCH_NODE_ARGS = (cliOption('--fetch-node-args') ?? '').split(/\s+/).filter(Boolean);
const FETCH_PREFIX = (cliOption('--fetch-prefix') ?? '').split(/\s+/).filter(Boolean);
/** Where the loss rule drops: what the input hook sees (a TSO/GSO packet whole; the default, as issue 9's figures were measured), or each segment (before GRO). */
const LOSS_AT = parseLossAt(cliOption('--loss-at'), 'datagrams');
const LINK_MBIT = parseLinkMbit(cliOption('--link-mbit'));

/** --link-mbit: a positive rate in Mbit/s, or no link limit. */
function parseLinkMbit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const mbit = Number(text);
  if (!Number.isFinite(mbit) || mbit <= 0) throw new Error(`--link-mbit: a rate in Mbit/s above 0, got ${text}`);
  return mbit;
}
const PORT = 4433;
const KERNEL_PORT = 4434;
const TIMEOUT_S = 900;
const KERNEL_TCP = path.join(__dirname, 'support', 'kernel-tcp.js');

type System = 'rqcast' | 'rqcast-routed' | 'kernel' | 'kernel-host-cc';

interface Run {
  system: System;
  loss_pct: number;
  /** kernel: its congestion control. */
  cc?: string;
  seconds: number;
  ok: boolean;
  server_cpu_s: number;
  /** The server's system CPU (in server_cpu_s) and its minor page faults (GNU time). */
  server_sys_s?: number;
  server_minor_faults?: number;
  dropped_pct?: number;
  /**
   * Packets the loss rule saw at the receiver's input. The rule drops whole
   * packets: a kernel TSO/GSO packet carries many segments and is one
   * packet there, so the same rule costs it fewer segments.
   */
  packets_seen?: number;
  /** rqcast: reception overhead (%). */
  overhead_pct?: number;
  /** rqcast: data packets the fetch received per symbol it needed (its summary's packetsReceived / neededSymbols). */
  packets_per_needed?: number;
  /** The receiving program's CPU (user + system): rqcast's fetch (decoding, checking, writing) or the kernel run's plain reader. */
  client_cpu_s?: number;
  /** The client socket's unread bytes (Recv-Q), median and 90th percentile of the samples, KiB. */
  recvq_p50_kib?: number;
  recvq_p90_kib?: number;
  /** rqcast: the server's TCP counters at the end (metrics): packets to the kernel, GSO ones, segments. */
  packets_out?: number;
  gso_packets?: number;
  segments_out?: number;
}

/** The server's TCP counters, scraped from its --metrics endpoint in its namespace. */
async function tcpCounters(bed: Testbed): Promise<{ packets_out?: number; gso_packets?: number; segments_out?: number }> {
  const metric = await scrapeServerMetrics(bed, bed.server.address);
  return {
    packets_out: metric('rqcast_server_tcp_packets_out_total'),
    gso_packets: metric('rqcast_server_tcp_gso_packets_total'),
    segments_out: metric('rqcast_server_tcp_segments_out_total'),
  };
}

function log(msg: string): void {
  process.stderr.write(`[bench:tcp] ${msg}\n`);
}

/**
 * Samples the receiving socket's unread bytes (Recv-Q) every 50 ms in the
 * client's namespace until stop() is called; stop() gives the median and
 * 90th percentile in KiB (undefined without samples).
 */
function sampleRecvQ(bed: Testbed, port: number): { stop: () => Promise<{ p50?: number; p90?: number }> } {
  const loop = `while :; do ss -Htn state established '( sport = :${port} or dport = :${port} )'; sleep 0.05; done`;
  const p = bed.spawn(bed.clients[0].ns, ['sh', '-c', loop], { timeoutMs: TIMEOUT_S * 1000 });
  return {
    stop: async () => {
      p.kill('SIGKILL');
      await p.wait();
      // With -H and a state filter the first column is Recv-Q.
      const q = p.stdout
        .split('\n')
        .map((l) => Number(l.trim().split(/\s+/)[0]))
        .filter((n) => Number.isFinite(n) && n >= 0)
        .sort((a, b) => a - b);
      if (q.length === 0) return {};
      const at = (f: number): number => round(q[Math.min(q.length - 1, Math.floor(q.length * f))] / 1024, 0);
      return { p50: at(0.5), p90: at(0.9) };
    },
  };
}

/** The congestion control new kernel sockets of `ns` get by default. */
async function kernelCc(bed: Testbed, ns: string): Promise<string> {
  const r = await bed.run(ns, ['sysctl', '-n', 'net.ipv4.tcp_congestion_control']);
  return r.stdout.trim();
}

/**
 * The kernel's flows from the server to the client use `cc` (undefined: the
 * namespace's default): a host route to the client with `congctl`. A
 * namespace other than the host's may only make the host's "allowed" list
 * its default (net.ipv4.tcp_allowed_congestion_control); a route may name
 * any the kernel has.
 */
async function routeCc(bed: Testbed, cc: string | undefined): Promise<void> {
  const ns = bed.server.ns;
  const client = bed.clients[0].address;
  await bed.run(ns, ['ip', 'route', 'del', `${client}/32`]).catch(() => undefined);
  if (cc === undefined) return;
  const r = await bed.runOk(ns, ['ip', '-o', 'route', 'get', client]);
  const via = /\bvia (\S+)/.exec(r.stdout)?.[1];
  const dev = /\bdev (\S+)/.exec(r.stdout)?.[1];
  if (!dev) throw new Error(`no route to ${client} in the server's namespace: ${r.stdout}`);
  await bed.runOk(ns, ['ip', 'route', 'replace', `${client}/32`, ...(via ? ['via', via] : []), 'dev', dev, 'congctl', cc]);
}

async function runKernel(bed: Testbed, lossModel: LossModel, work: string, source: string, digest: string, loss: number, cc: string, system: System): Promise<Run> {
  await routeCc(bed, system === 'kernel' ? cc : undefined);
  const rep = path.join(work, `kernel-${cc}-${loss}.time`);
  const server = bed.spawn(bed.server.ns, timed(rep, [process.execPath, KERNEL_TCP, 'serve', source, bed.server.address, String(KERNEL_PORT)]), { timeoutMs: TIMEOUT_S * 1000 });
  await server.waitForStdout(/listening/, 60_000);
  // The kernel flow's cwnd, ssthresh and retransmissions as it goes.
  const ss = TRACE_DIR
    ? bed.spawn(bed.server.ns, ['sh', '-c', `while :; do date +%s.%N; ss -tin sport = :${KERNEL_PORT}; sleep 0.02; done > ${path.join(TRACE_DIR, `kernel-${cc}-${loss}.ss`)}`], { timeoutMs: TIMEOUT_S * 1000 })
    : undefined;
  await lossModel.set(loss, { tcpSourcePort: KERNEL_PORT });
  const out = path.join(work, `kernel-${loss}.bin`);
  const clientRep = path.join(work, `kernel-fetch-${cc}-${loss}.time`);
  const recvq = sampleRecvQ(bed, KERNEL_PORT);
  const t0 = nowSeconds();
  const r = await bed.run(bed.clients[0].ns, timed(clientRep, [process.execPath, KERNEL_TCP, 'fetch', bed.server.address, String(KERNEL_PORT), out]), { timeoutMs: TIMEOUT_S * 1000 });
  const seconds = nowSeconds() - t0;
  const q = await recvq.stop();
  const dropped = await lossModel.realised(loss);
  await lossModel.set(0);
  await stopTimed(server);
  if (ss) ss.kill('SIGKILL');
  await routeCc(bed, undefined);
  const ok = r.code === 0 && (await sha256File(out)) === digest;
  if (!ok) log(`kernel at ${loss}%: exit ${r.code ?? r.signal}; stderr ${r.stderr.slice(-1000)}`);
  fs.rmSync(out, { force: true });
  return {
    system,
    cc,
    loss_pct: loss,
    seconds,
    ok,
    server_cpu_s: readTimeReport(rep).cpuSeconds,
    client_cpu_s: readTimeReport(clientRep).cpuSeconds,
    dropped_pct: dropped.pct,
    packets_seen: dropped.seen,
    recvq_p50_kib: q.p50,
    recvq_p90_kib: q.p90,
  };
}

/** `argv` (node, script, ...) under `prefix`, with Node's own options `nodeArgs` before the script. */
function withNodeArgs(argv: string[], nodeArgs: string[]): string[] {
  return [...FETCH_PREFIX, argv[0], ...nodeArgs, ...argv.slice(1)];
}

async function runRqcast(bed: Testbed, lossModel: LossModel, work: string, source: string, digest: string, loss: number, routed: boolean): Promise<Run> {
  const system: System = routed ? 'rqcast-routed' : 'rqcast';
  const rep = path.join(work, `serve-${system}-${loss}.time`);
  const extra = [...(routed ? ['--tcp-gso', '0'] : []), '--metrics', `${bed.server.address}:${METRICS_PORT}`];
  const server = bed.spawn(
    bed.server.ns,
    timed(rep, rqcastArgv('serve', source, '--bind', bed.server.address, '--port', String(PORT), '--tcp', '--rate', String(RATE_MBIT), '--json', ...extra, ...SERVE_ARGS)),
    { timeoutMs: TIMEOUT_S * 1000 + 120_000, ...(TRACE_DIR ? { env: { ...process.env, RQCAST_TCP_TRACE: path.join(TRACE_DIR, `serve-${system}-${loss}.trace`) } } : {}) },
  );
  await server.waitForStdout(/listening/, 600_000);
  await lossModel.set(loss, { tcpSourcePort: PORT });
  const outDir = path.join(work, `rq-${loss}`);
  fs.mkdirSync(outDir, { recursive: true });
  const t0 = nowSeconds();
  const clientRep = path.join(work, `fetch-${system}-${loss}.time`);
  const recvq = sampleRecvQ(bed, PORT);
  const r = await bed.run(
    bed.clients[0].ns,
    timed(clientRep, withNodeArgs(rqcastArgv('fetch', `rqcast://${bed.server.address}:${PORT}`, '--transport', 'tcp', '-o', outDir, '--json', '--quiet', '--timeout', `${TIMEOUT_S}s`), FETCH_NODE_ARGS)),
    { timeoutMs: TIMEOUT_S * 1000 + 30_000 },
  );
  const seconds = nowSeconds() - t0;
  const q = await recvq.stop();
  const dropped = await lossModel.realised(loss);
  await lossModel.set(0);
  const counters = await tcpCounters(bed);
  await stopTimed(server);
  const out = path.join(outDir, path.basename(source));
  const ok = r.code === 0 && (await sha256File(out)) === digest;
  if (!ok) log(`${system} at ${loss}%: exit ${r.code ?? r.signal}; stderr ${r.stderr.slice(-1500)}`);
  fs.rmSync(outDir, { recursive: true, force: true });
  const summary = lastJson(r.stdout) as { packetsReceived?: number; neededSymbols?: number } | undefined;
  const overhead = overheadFromSummary(summary);
  const packetsPerNeeded = summary?.packetsReceived && summary.neededSymbols ? summary.packetsReceived / summary.neededSymbols : undefined;
  const srv = readTimeReport(rep);
  return { system, loss_pct: loss, seconds, ok, server_cpu_s: srv.cpuSeconds, server_sys_s: srv.systemSeconds, server_minor_faults: srv.minorFaults, client_cpu_s: readTimeReport(clientRep).cpuSeconds, dropped_pct: dropped.pct, packets_seen: dropped.seen, overhead_pct: overhead, packets_per_needed: packetsPerNeeded, recvq_p50_kib: q.p50, recvq_p90_kib: q.p90, ...counters };
}

async function main(): Promise<void> {
  const probe = probeNetns();
  if (!probe.ok) throw new Error(`network namespaces unavailable: ${probe.reason}`);
  if (ONLY !== 'kernel') log(`rqcast CLI from ${transpiledRoot()}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bench-tcp-'));
  const bed = await Testbed.create({ clients: 1, socketBufferMax: 8 * 1024 * 1024 });
  const runs: Run[] = [];
  try {
    const lossModel = new LossModel(LOSS_AT, bed, [bed.clients[0]]);
    log(`loss: ${lossModel.describe()}`);
    if (LINK_MBIT !== undefined) {
      await bed.runOk(bed.server.ns, ['tc', 'qdisc', 'add', 'dev', bed.server.ifname, 'root', 'tbf', 'rate', `${LINK_MBIT}mbit`, 'burst', '256kb', 'latency', '20ms']);
      log(`link: ${LINK_MBIT} Mbit/s out of the server's ${bed.server.ifname} (tbf, 256 KB burst, 20 ms queue)`);
    }
    const source = path.join(work, 'payload.bin');
    log(`writing ${BYTES} random bytes`);
    const digest = writeRandomFile(source, BYTES);
    const hostCc = await kernelCc(bed, bed.server.ns);
    const cc = KERNEL_CC ?? 'cubic';
    log(`kernel congestion control: ${cc}${KERNEL_CC === undefined && hostCc !== cc ? ` and the host's default, ${hostCc}` : ''}`);
    for (const loss of LOSSES) {
      if (ONLY !== 'rqcast') {
        log(`kernel TCP (${cc}), ${loss}% loss`);
        runs.push(await runKernel(bed, lossModel, work, source, digest, loss, cc, 'kernel'));
        log(JSON.stringify(runs[runs.length - 1]));
        if (KERNEL_CC === undefined && hostCc !== cc) {
          log(`kernel TCP (${hostCc}, the host's default), ${loss}% loss`);
          runs.push(await runKernel(bed, lossModel, work, source, digest, loss, hostCc, 'kernel-host-cc'));
          log(JSON.stringify(runs[runs.length - 1]));
        }
      }
      if (ONLY !== 'kernel') {
        log(`rqcast TCP, ${loss}% loss`);
        runs.push(await runRqcast(bed, lossModel, work, source, digest, loss, false));
        log(JSON.stringify(runs[runs.length - 1]));
        if (ROUTED) {
          log(`rqcast TCP, routed path (--tcp-gso 0), ${loss}% loss`);
          runs.push(await runRqcast(bed, lossModel, work, source, digest, loss, true));
          log(JSON.stringify(runs[runs.length - 1]));
        }
      }
    }
  } finally {
    bed.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }
  const mbps = (r: Run | undefined): number | null => (r && r.ok ? round(BYTES / 1e6 / r.seconds, 1) : null);
  const results = LOSSES.map((loss) => {
    const rq = runs.find((r) => r.system === 'rqcast' && r.loss_pct === loss);
    const k = runs.find((r) => r.system === 'kernel' && r.loss_pct === loss);
    const routed = runs.find((r) => r.system === 'rqcast-routed' && r.loss_pct === loss);
    const hostK = runs.find((r) => r.system === 'kernel-host-cc' && r.loss_pct === loss);
    const hostMBps = mbps(hostK);
    const rqMBps = mbps(rq);
    const kMBps = mbps(k);
    const routedMBps = mbps(routed);
    const perPacket = (r: Run | undefined): number | null => (r?.segments_out && r.packets_out ? round(r.segments_out / r.packets_out, 2) : null);
    return {
      loss_pct: loss,
      bytes: BYTES,
      rqcast_MBps: rqMBps,
      kernel_MBps: kMBps,
      ratio: rqMBps !== null && kMBps !== null ? round(rqMBps / kMBps, 3) : null,
      kernel_cc: k?.cc ?? null,
      // The kernel with the host's own default congestion control, when it is not the above.
      kernel_host_cc: hostK?.cc ?? null,
      kernel_host_cc_MBps: hostMBps,
      ratio_host_cc: rqMBps !== null && hostMBps !== null ? round(rqMBps / hostMBps, 3) : null,
      server_cpu_s: rq ? round(rq.server_cpu_s, 2) : null,
      kernel_server_cpu_s: k ? round(k.server_cpu_s, 2) : null,
      rqcast_dropped_pct: rq?.dropped_pct !== undefined ? round(rq.dropped_pct, 2) : null,
      kernel_dropped_pct: k?.dropped_pct !== undefined ? round(k.dropped_pct, 2) : null,
      overhead_pct: rq?.overhead_pct !== undefined ? round(rq.overhead_pct, 2) : null,
      // Data packets the fetch received per symbol it needed: 1 plus what the stream sent it beyond its needs.
      rqcast_packets_per_needed_symbol: rq?.packets_per_needed !== undefined ? round(rq.packets_per_needed, 3) : null,
      // Mean bytes of the file per packet the loss rule saw: tens of KB for
      // either stack's TSO/GSO packets at the input hook, one MSS or so
      // per segment with --loss-at packets.
      rqcast_bytes_per_packet: rq?.packets_seen ? Math.round(BYTES / rq.packets_seen) : null,
      kernel_bytes_per_packet: k?.packets_seen ? Math.round(BYTES / k.packets_seen) : null,
      // The sender before GSO, in the same run: --tcp-gso 0.
      routed_MBps: routedMBps,
      routed_ratio: routedMBps !== null && kMBps !== null ? round(routedMBps / kMBps, 3) : null,
      gso_speedup: rqMBps !== null && routedMBps !== null ? round(rqMBps / routedMBps, 2) : null,
      routed_server_cpu_s: routed ? round(routed.server_cpu_s, 2) : null,
      routed_bytes_per_packet: routed?.packets_seen ? Math.round(BYTES / routed.packets_seen) : null,
      // Segments per packet handed to the kernel, and the GSO packets (the server's counters).
      rqcast_segments_per_packet: perPacket(rq),
      rqcast_gso_packets: rq?.gso_packets ?? null,
      rqcast_client_cpu_s: rq?.client_cpu_s !== undefined ? round(rq.client_cpu_s, 2) : null,
      routed_gso_packets: routed?.gso_packets ?? null,
      // The kernel run's plain reader, and the receivers' unread bytes (KiB, median / 90th percentile).
      kernel_client_cpu_s: k?.client_cpu_s !== undefined ? round(k.client_cpu_s, 2) : null,
      rqcast_recvq_p50_kib: rq?.recvq_p50_kib ?? null,
      rqcast_recvq_p90_kib: rq?.recvq_p90_kib ?? null,
      kernel_recvq_p50_kib: k?.recvq_p50_kib ?? null,
      kernel_recvq_p90_kib: k?.recvq_p90_kib ?? null,
      // rqcast's server: its system CPU (within server_cpu_s) and minor page faults (fresh memory it touched).
      server_sys_s: rq?.server_sys_s !== undefined ? round(rq.server_sys_s, 2) : null,
      server_minor_faults: rq?.server_minor_faults ?? null,
    };
  });
  const ccs = [...new Set(runs.filter((r) => r.cc !== undefined).map((r) => r.cc))].join(', ');
  console.log(`tcp: ${BYTES} bytes, one receiver, netns veth + bridge, ${LOSS_AT === 'packets' ? 'per-segment loss before GRO (--loss-at packets)' : 'nftables input-hook loss (--loss-at datagrams)'} on the server's segments (rqcast channel cap ${RATE_MBIT} Mbit/s; ${LINK_MBIT !== undefined ? `link ${LINK_MBIT} Mbit/s` : 'no link limit'}; kernel: ${ccs || 'not run'})`);
  console.log('loss%  rqcast_MBps  kernel_MBps  ratio   host_cc_MBps  ratio_host_cc  rq_srv_cpu_s  k_srv_cpu_s  rq_drop%  k_drop%  overhead%  rq_B/pkt  k_B/pkt  rq_seg/pkt  routed_MBps  routed_ratio  gso_speedup  routed_cpu_s  routed_B/pkt  rq_cli_cpu_s  k_cli_cpu_s  rq_recvq_KiB  k_recvq_KiB  rq_srv_sys_s  rq_srv_faults  rq_pkt/need');
  for (const r of results) {
    const f = (x: number | null, w: number): string => (x === null ? 'n/a' : String(x)).padEnd(w);
    console.log(
      `${f(r.loss_pct, 7)}${f(r.rqcast_MBps, 13)}${f(r.kernel_MBps, 13)}${f(r.ratio, 8)}${f(r.kernel_host_cc_MBps, 14)}${f(r.ratio_host_cc, 15)}${f(r.server_cpu_s, 14)}${f(r.kernel_server_cpu_s, 13)}${f(r.rqcast_dropped_pct, 10)}${f(r.kernel_dropped_pct, 9)}${f(r.overhead_pct, 11)}${f(r.rqcast_bytes_per_packet, 10)}${f(r.kernel_bytes_per_packet, 9)}` +
        `${f(r.rqcast_segments_per_packet, 12)}${f(r.routed_MBps, 13)}${f(r.routed_ratio, 14)}${f(r.gso_speedup, 13)}${f(r.routed_server_cpu_s, 14)}${f(r.routed_bytes_per_packet, 14)}` +
        `${f(r.rqcast_client_cpu_s, 14)}${f(r.kernel_client_cpu_s, 13)}${f(r.rqcast_recvq_p50_kib, 14)}${f(r.kernel_recvq_p50_kib, 13)}${f(r.server_sys_s, 14)}${f(r.server_minor_faults, 15)}${f(r.rqcast_packets_per_needed_symbol, 11)}`,
    );
  }
  console.log(JSON.stringify({ bench: 'tcp', loss_at: LOSS_AT, link_mbit: LINK_MBIT ?? null, results }));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
