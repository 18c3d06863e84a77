// Relay and multi-server benchmark (issue 11), on the network-namespace
// testbed (test/support/netns.ts): the origin in the server namespace, a
// relay or other group members in client namespaces 0 and 1, receivers in
// the others; the real CLI from the sources (transpiled once).
//
//   npm run bench:relay                 16 MiB; 20 receivers; 1, 2, 3 servers at 20 Mbit/s each
//   npm run bench:relay -- --quick      4 MiB
//   options: --bytes N  --rate MBIT (multi-server, per server)  --fanout-rate MBIT  --receivers N  --servers 1,2,3
//
// Two parts, each row a fresh set of processes:
// - fan-out: N receivers fetch the file from the origin, or from one relay
//   (regenerate mode) fed by the origin. Measured: seconds from launching
//   the receivers (origin, or relay, already listening) to the last one
//   done; the origin's CPU seconds (GNU time, its whole life: with a relay
//   that includes feeding the relay) and the origin interface's TX bytes
//   (from starting the relay, or launching the receivers, to the last one
//   done). The relay's point: the origin sends the file about once, not N
//   times.
// - multi-server: one receiver fetches from k = 1, 2, 3 members of a group
//   (serve --server-index i --servers k), each paced at --rate. Measured:
//   the fetch's own `seconds` (from its first JOINED to the file verified:
//   the process's start-up is not the servers' doing), speedup = seconds
//   with 1 server / seconds with k, the duplicates the client counted, and
//   the origin's TX bytes. The goal: <= 0.6x the time with 2,
//   <= 0.4x with 3.
// Every received file is checked against the source's SHA-256.
//
// The last line printed is one JSON object:
// {"bench":"relay","results":[{"part":"fanout"|"multi","servers":…,"seconds":…,
//  "speedup":…,"duplicates":…,"origin_tx_bytes":…, …}], …}
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NsProcess, probeNetns, Testbed } from '../test/support/netns';
import { lastJson, rqcastArgv, transpiledRoot } from '../test/e2e/helpers';
import { cliOption, nowSeconds, readTimeReport, round, sha256File, timed, writeRandomFile } from './support/measure';
import { stopTimed } from './support/netns-run';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const BYTES = Number(cliOption('--bytes') ?? (QUICK ? 4 : 16) * 1024 * 1024);
const RATE_MBIT = Number(cliOption('--rate') ?? 20);
const FANOUT_RATE_MBIT = Number(cliOption('--fanout-rate') ?? 50);
const RECEIVERS = Number(cliOption('--receivers') ?? 20);
const SERVERS = (cliOption('--servers') ?? '1,2,3').split(',').map(Number);
const PORT = 4433;
const BUF = 8 * 1024 * 1024;
const TIMEOUT_S = Math.max(120, Math.ceil(((BYTES * 8) / (RATE_MBIT * 1e6)) * 20));
/** Client namespaces 0 and 1 host the relay or the other members; receivers start at 2. */
const FIRST_RECEIVER = 2;

interface Row {
  part: 'fanout' | 'multi';
  /** fan-out: 'origin' or 'relay'; multi: 'k servers'. */
  setup: string;
  servers: number;
  receivers: number;
  seconds: number;
  speedup: number | null;
  duplicates: number | null;
  origin_tx_bytes: number;
  origin_cpu_s: number;
  /** Symbols per server (multi), as the client counted them. */
  symbols_per_server?: number[];
  overhead_pct?: number;
  ok: boolean;
}

function log(msg: string): void {
  process.stderr.write(`[bench:relay] ${msg}\n`);
}

async function originTx(bed: Testbed): Promise<number> {
  return (await bed.interfaceCounters(bed.server)).txBytes;
}

function serveArgs(bed: Testbed, source: string, node: { address: string }, rate: number, group?: { index: number; servers: number }): string[] {
  const g = group ? ['--server-index', String(group.index), '--servers', String(group.servers)] : [];
  return ['serve', source, '--bind', node.address, '--port', String(PORT), '--rate', String(rate), ...g, '--quiet'];
}

async function fanout(bed: Testbed, work: string, source: string, digest: string, viaRelay: boolean): Promise<Row> {
  const tag = viaRelay ? 'relay' : 'origin';
  const rep = path.join(work, `origin-${tag}.time`);
  const origin = bed.spawn(bed.server.ns, timed(rep, rqcastArgv(...serveArgs(bed, source, bed.server, FANOUT_RATE_MBIT))), { timeoutMs: TIMEOUT_S * 1000 + 120_000 });
  let relay: NsProcess | undefined;
  let fetches: NsProcess[] = [];
  try {
    await origin.waitForStdout(/listening/, 600_000);
    const tx0 = await originTx(bed);
    let target = bed.server.address;
    if (viaRelay) {
      const r = bed.clients[0];
      relay = bed.spawn(r.ns, rqcastArgv('relay', `rqcast://${bed.server.address}:${PORT}`, '--bind', r.address, '--port', String(PORT), '--rate', String(FANOUT_RATE_MBIT), '--quiet'), {
        timeoutMs: TIMEOUT_S * 1000 + 120_000,
      });
      await relay.waitForStdout(/listening/, TIMEOUT_S * 1000);
      target = r.address;
    }
    const outs: string[] = [];
    const t0 = nowSeconds();
    fetches = bed.clients.slice(FIRST_RECEIVER, FIRST_RECEIVER + RECEIVERS).map((c, i) => {
      const out = path.join(work, `${tag}-c${i}.bin`);
      outs.push(out);
      return bed.spawn(c.ns, rqcastArgv('fetch', `rqcast://${target}:${PORT}//${path.basename(source)}`, '-o', out, '--json', '--quiet', '--transport', 'udp', '--timeout', `${TIMEOUT_S}s`), {
        timeoutMs: TIMEOUT_S * 1000 + 30_000,
      });
    });
    const results = await Promise.all(fetches.map((f) => f.wait()));
    const seconds = nowSeconds() - t0;
    const tx = (await originTx(bed)) - tx0;
    if (relay) await stopTimed(relay);
    await stopTimed(origin);
    let verified = 0;
    for (const out of outs) if ((await sha256File(out)) === digest) verified++;
    for (const out of outs) fs.rmSync(out, { force: true });
    const ok = results.every((r) => r.code === 0) && verified === RECEIVERS;
    if (!ok) for (const r of results) if (r.code !== 0) log(`${tag}: fetch exit ${r.code ?? r.signal}: ${r.stderr.slice(-800)}`);
    return {
      part: 'fanout',
      setup: tag,
      servers: 1,
      receivers: RECEIVERS,
      seconds,
      speedup: null,
      duplicates: null,
      origin_tx_bytes: tx,
      origin_cpu_s: readTimeReport(rep).cpuSeconds,
      ok,
    };
  } finally {
    for (const f of fetches) f.kill('SIGKILL');
    if (relay) await stopTimed(relay);
    await stopTimed(origin);
  }
}

async function multi(bed: Testbed, work: string, source: string, digest: string, k: number): Promise<Row> {
  const nodes = [bed.server, bed.clients[0], bed.clients[1]].slice(0, k);
  const rep = path.join(work, `origin-multi-${k}.time`);
  const servers = nodes.map((n, i) =>
    bed.spawn(n.ns, i === 0 ? timed(rep, rqcastArgv(...serveArgs(bed, source, n, RATE_MBIT, { index: i, servers: k }))) : rqcastArgv(...serveArgs(bed, source, n, RATE_MBIT, { index: i, servers: k })), {
      timeoutMs: TIMEOUT_S * 1000 + 120_000,
    }),
  );
  try {
    for (const s of servers) await s.waitForStdout(/listening/, 600_000);
    const tx0 = await originTx(bed);
    const out = path.join(work, `multi-${k}.bin`);
    const urls = nodes.map((n) => `rqcast://${n.address}:${PORT}//${path.basename(source)}`);
    const res = await bed
      .spawn(bed.clients[FIRST_RECEIVER].ns, rqcastArgv('fetch', ...urls, '-o', out, '--json', '--quiet', '--transport', 'udp', '--timeout', `${TIMEOUT_S}s`), {
        timeoutMs: TIMEOUT_S * 1000 + 30_000,
      })
      .wait();
    const tx = (await originTx(bed)) - tx0;
    for (const s of servers.slice(1)) await stopTimed(s);
    await stopTimed(servers[0]);
    const verified = (await sha256File(out)) === digest;
    fs.rmSync(out, { force: true });
    const s = lastJson(res.stdout);
    const ok = res.code === 0 && verified && s?.type === 'summary';
    if (!ok) log(`multi ${k}: fetch exit ${res.code ?? res.signal}: ${res.stderr.slice(-800)}`);
    const perServer = (s?.servers as { symbols: number }[] | undefined)?.map((v) => v.symbols);
    return {
      part: 'multi',
      setup: `${k} server${k === 1 ? '' : 's'}`,
      servers: k,
      receivers: 1,
      seconds: Number(s?.seconds ?? NaN),
      speedup: null,
      // One server: no tally (nothing to combine), and nothing it could duplicate but its own wrap.
      duplicates: k === 1 ? 0 : Number(s?.duplicates ?? NaN),
      origin_tx_bytes: tx,
      origin_cpu_s: readTimeReport(rep).cpuSeconds,
      ...(perServer ? { symbols_per_server: perServer } : {}),
      overhead_pct: s ? Number(s.overhead) * 100 : undefined,
      ok,
    };
  } finally {
    for (const srv of servers) await stopTimed(srv);
  }
}

async function main(): Promise<void> {
  if (SERVERS.some((k) => !(Number.isInteger(k) && k >= 1 && k <= 3))) throw new Error(`--servers: each 1..3, got ${SERVERS.join(',')}`);
  if (!(Number.isInteger(RECEIVERS) && RECEIVERS >= 1 && RECEIVERS <= 200)) throw new Error('--receivers: 1..200');
  const probe = probeNetns();
  if (!probe.ok) throw new Error(`network namespaces unavailable: ${probe.reason}`);
  log(`rqcast CLI from ${transpiledRoot()}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bench-relay-'));
  const bed = await Testbed.create({ clients: FIRST_RECEIVER + RECEIVERS, socketBufferMax: BUF });
  const rows: Row[] = [];
  try {
    const source = path.join(work, 'payload.bin');
    log(`writing ${BYTES} random bytes`);
    const digest = writeRandomFile(source, BYTES);
    for (const viaRelay of [false, true]) {
      log(`fan-out: ${RECEIVERS} receivers on the ${viaRelay ? 'relay' : 'origin'}`);
      rows.push(await fanout(bed, work, source, digest, viaRelay));
      log(JSON.stringify(rows[rows.length - 1]));
    }
    for (const k of SERVERS) {
      log(`multi-server: ${k}`);
      rows.push(await multi(bed, work, source, digest, k));
      log(JSON.stringify(rows[rows.length - 1]));
    }
  } finally {
    bed.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }

  const one = rows.find((r) => r.part === 'multi' && r.servers === 1 && r.ok);
  for (const r of rows) if (r.part === 'multi' && one && r.ok) r.speedup = round(one.seconds / r.seconds, 3);
  const MiB = 1024 * 1024;
  console.log(
    `relay: ${BYTES} bytes; fan-out: ${RECEIVERS} receivers at ${FANOUT_RATE_MBIT} Mbit/s on the origin or on one relay (regenerate); ` +
      `multi-server: one receiver from k group members at ${RATE_MBIT} Mbit/s each (seconds: the fetch's own, from JOINED)`,
  );
  console.log('part    setup      servers  receivers  seconds  speedup  time_ratio  duplicates  origin_tx_MiB  origin_cpu_s  symbols/server       ok');
  const f = (x: number | null | undefined, w: number, d = 2): string => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d)).padEnd(w);
  for (const r of rows) {
    console.log(
      `${r.part.padEnd(8)}${r.setup.padEnd(11)}${String(r.servers).padEnd(9)}${String(r.receivers).padEnd(11)}${f(r.seconds, 9)}${f(r.speedup, 9, 2)}` +
        `${f(r.speedup ? 1 / r.speedup : null, 12, 2)}${f(r.duplicates, 12, 0)}${f(r.origin_tx_bytes / MiB, 15, 1)}${f(r.origin_cpu_s, 14)}` +
        `${(r.symbols_per_server?.join('+') ?? '').padEnd(21)}${r.ok ? 'yes' : 'NO'}`,
    );
  }
  const fo = rows.find((r) => r.part === 'fanout' && r.setup === 'origin');
  const fr = rows.find((r) => r.part === 'fanout' && r.setup === 'relay');
  const ratio = (a?: number, b?: number): number | null => (a !== undefined && b !== undefined && b > 0 ? round(a / b, 3) : null);
  const relayOverOrigin = { origin_tx_bytes: ratio(fr?.origin_tx_bytes, fo?.origin_tx_bytes), origin_cpu: ratio(fr?.origin_cpu_s, fo?.origin_cpu_s), seconds: ratio(fr?.seconds, fo?.seconds) };
  console.log(
    `fan-out, relay / origin: origin TX bytes x${relayOverOrigin.origin_tx_bytes ?? 'n/a'}, origin CPU x${relayOverOrigin.origin_cpu ?? 'n/a'}, seconds x${relayOverOrigin.seconds ?? 'n/a'}`,
  );
  for (const r of rows.filter((x) => x.part === 'multi' && x.servers > 1)) {
    const goal = r.servers === 2 ? 0.6 : 0.4;
    console.log(`${r.servers} servers: time x${r.speedup ? round(1 / r.speedup, 3) : 'n/a'} of one server's (goal <= ${goal}), ${r.duplicates} duplicates`);
  }
  console.log(
    JSON.stringify({
      bench: 'relay',
      bytes: BYTES,
      rate_mbit: RATE_MBIT,
      fanout_rate_mbit: FANOUT_RATE_MBIT,
      results: rows.map((r) => ({
        part: r.part,
        setup: r.setup,
        servers: r.servers,
        receivers: r.receivers,
        seconds: r.ok ? round(r.seconds, 2) : null,
        speedup: r.speedup,
        duplicates: r.duplicates,
        origin_tx_bytes: r.origin_tx_bytes,
        origin_cpu_s: round(r.origin_cpu_s, 2),
        ...(r.symbols_per_server ? { symbols_per_server: r.symbols_per_server } : {}),
        overhead_pct: r.overhead_pct === undefined ? null : round(r.overhead_pct, 2),
        ok: r.ok,
      })),
      fanout_relay_over_origin: relayOverOrigin,
    }),
  );
  if (rows.some((r) => !r.ok)) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
