// Live benchmark (issue 10): latency from ingest to client output.
//
//   npm run bench:live               12 s per run; block_ms 200 and 1000; loss 0 and 5 %
//   npm run bench:live -- --quick    6 s per run
//   options: --seconds N  --rate MBIT  --receivers N  --loss 0,5  --block-ms 200,1000  --via origin,relay
//
// A network-namespace testbed (test/support/netns.ts): `rqcast serve --live
// lines=FIFO` in the server namespace, `rqcast fetch .../lines/lines -o -`
// in each receiver's. This process writes numbered lines stamped with
// Date.now() into the FIFO every 10 ms and reads every receiver's stdout:
// a line's latency is the time it arrives here minus its stamp (one clock,
// one host), counted for the lines written after the receiver's first
// output (the segment it starts with was closed before it joined: that
// backlog is join delay, not the live latency). Loss: the nftables rule of bench:e2e on each receiver's input
// hook drops loss% of UDP datagrams longer than 512 bytes (data packets;
// control passes). Gaps: lines a receiver skipped (numbers missing between
// its first and last line) plus the segments it reported skipped.
// Via (issue 11): `origin`, the receivers fetch from the server; `relay`, from
// `rqcast relay --mode forward` (in the namespace after the receivers') fed
// by the server: the same lines and stamps, one more hop. Each relay row is
// printed beside the origin row of the same block_ms and loss, with the
// difference of their p50 and p99 (goal: the relay's within the origin's
// + 100 ms). The relay's --rate is twice the origin's: its pacing is a
// ceiling over what arrives, and at the origin's own rate its queue would
// fill (docs/PROTOCOL.md §10.13).
// The last line printed is one JSON object.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NsProcess, probeNetns, Testbed } from '../test/support/netns';
import { rqcastArgv, transpiledRoot } from '../test/e2e/helpers';
import { stopTimed } from './support/netns-run';
import { cliOption, round, sleep } from './support/measure';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const SECONDS = Number(cliOption('--seconds') ?? (QUICK ? 6 : 12));
const RATE_MBIT = Number(cliOption('--rate') ?? 20);
const RECEIVERS = Number(cliOption('--receivers') ?? 3);
const LOSSES = (cliOption('--loss') ?? '0,5').split(',').map(Number);
const BLOCKS = (cliOption('--block-ms') ?? '200,1000').split(',').map(Number);
const VIAS = (cliOption('--via') ?? 'origin,relay').split(',') as Via[];
type Via = 'origin' | 'relay';
const CONTROL_PORT = 4433;
/** A forward relay sends what arrives (plus its FDT packets): its rate is a ceiling, set above the origin's so that no queue builds up. */
const RELAY_RATE_MBIT = 2 * RATE_MBIT;
const LINE_MS = 10;

interface Result {
  via: Via;
  block_ms: number;
  loss_pct: number;
  p50_ms: number | null;
  p99_ms: number | null;
  gaps: number;
  lines: number;
  ok: boolean;
}

function log(s: string): void {
  process.stderr.write(`[bench:live] ${s}\n`);
}

function pct(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(bed: Testbed, work: string, blockMs: number, loss: number, via: Via): Promise<Result> {
  const fifo = path.join(work, `feed-${blockMs}-${loss}.fifo`);
  execFileSync('mkfifo', [fifo]);
  const server = bed.spawn(
    bed.server.ns,
    rqcastArgv('serve', '--live', `lines=${fifo}`, '--block-ms', String(blockMs), '--bind', bed.server.address, '--port', String(CONTROL_PORT), '--rate', String(RATE_MBIT), '--quiet'),
    { timeoutMs: (SECONDS + 120) * 1000 },
  );
  // Opening the FIFO for writing waits for the server to open it for reading.
  const feed = fs.createWriteStream(fifo);
  await server.waitForStdout(/listening/, 120_000);
  for (const c of bed.clients.slice(0, RECEIVERS)) if (loss > 0) await bed.addLoss(c.ns, loss, { minUdpLength: 512 });
  let n = 0;
  const write = (): void => {
    feed.write(`${n++} ${Date.now()}\n`);
  };
  write();
  const gen = setInterval(write, LINE_MS);
  await sleep(2 * blockMs);
  // The forward relay in the namespace after the receivers', fed by the server.
  const relayNode = bed.clients[RECEIVERS];
  const relay =
    via === 'relay'
      ? bed.spawn(
          relayNode.ns,
          rqcastArgv('relay', `rqcast://${bed.server.address}:${CONTROL_PORT}/lines`, '--mode', 'forward', '--bind', relayNode.address, '--port', String(CONTROL_PORT), '--rate', String(RELAY_RATE_MBIT), '--transport', 'udp', '--quiet'),
          { timeoutMs: (SECONDS + 120) * 1000 },
        )
      : undefined;
  if (relay) await relay.waitForStdout(/listening/, 60_000);
  const source = relay ? relayNode.address : bed.server.address;
  const latencies: number[] = [];
  let gaps = 0;
  let lines = 0;
  const fetches: NsProcess[] = bed.clients.slice(0, RECEIVERS).map((c) =>
    bed.spawn(c.ns, rqcastArgv('fetch', `rqcast://${source}:${CONTROL_PORT}/lines/lines`, '-o', '-', '--transport', 'udp', '--quiet', '--timeout', '60s'), {
      timeoutMs: (SECONDS + 90) * 1000,
    }),
  );
  const seen = fetches.map(() => ({ buf: '', first: true, last: -1, firstAt: 0 }));
  fetches.forEach((f, i) =>
    f.child.stdout!.on('data', (s: string) => {
      const now = Date.now();
      const st = seen[i];
      if (st.firstAt === 0) st.firstAt = now;
      st.buf += s;
      const parts = st.buf.split('\n');
      st.buf = parts.pop() as string;
      if (st.first) {
        parts.shift(); // the first segment may begin mid-line
        st.first = false;
      }
      for (const line of parts) {
        const [k, t] = line.split(' ').map(Number);
        if (st.last >= 0 && k !== st.last + 1) gaps += Math.max(1, k - st.last - 1);
        st.last = k;
        lines++;
        // Steady state: lines written before the receiver's first output are
        // the backlog it joined with (its start segment), not live latency.
        if (t >= st.firstAt) latencies.push(now - t);
      }
    }),
  );
  await sleep(SECONDS * 1000);
  clearInterval(gen);
  await new Promise<void>((r) => feed.end(() => r()));
  const results = await Promise.all(fetches.map((f) => f.wait()));
  for (const r of results) gaps += (r.stderr.match(/gap: segment/g) ?? []).length;
  for (const c of bed.clients.slice(0, RECEIVERS)) await bed.removeLoss(c.ns);
  if (relay) await stopTimed(relay);
  await stopTimed(server);
  fs.rmSync(fifo, { force: true });
  const ok = results.every((r) => r.code === 0);
  if (!ok) for (const r of results) log(`fetch exit ${r.code ?? r.signal}: ${r.stderr.slice(-800)}`);
  latencies.sort((a, b) => a - b);
  return { via, block_ms: blockMs, loss_pct: loss, p50_ms: pct(latencies, 50), p99_ms: pct(latencies, 99), gaps, lines, ok };
}

async function main(): Promise<void> {
  const probe = probeNetns();
  if (!probe.ok) throw new Error(`network namespaces unavailable: ${probe.reason}`);
  log(`rqcast CLI from ${transpiledRoot()}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bench-live-'));
  const bed = await Testbed.create({ clients: RECEIVERS + (VIAS.includes('relay') ? 1 : 0), socketBufferMax: 8 * 1024 * 1024 });
  const results: Result[] = [];
  try {
    for (const blockMs of BLOCKS) {
      for (const loss of LOSSES) {
        for (const via of VIAS) {
          log(`block_ms ${blockMs}, loss ${loss}%, via ${via}: ${RECEIVERS} receivers, ${SECONDS} s of lines every ${LINE_MS} ms`);
          results.push(await run(bed, work, blockMs, loss, via));
          log(JSON.stringify(results[results.length - 1]));
        }
      }
    }
  } finally {
    bed.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }
  /** The origin row a relay row is compared with: same block_ms and loss. */
  const originOf = (r: Result): Result | undefined => results.find((o) => o.via === 'origin' && o.block_ms === r.block_ms && o.loss_pct === r.loss_pct);
  const diff = (a: number | null, b: number | null | undefined): number | null => (a === null || b === null || b === undefined ? null : a - b);
  console.log('   via  block_ms  loss%  lines   p50_ms  p99_ms  gaps  goal p99<=block_ms+300  relay-origin p50/p99 (goal <= +100)  ok');
  for (const r of results) {
    const goal = r.p99_ms !== null && r.p99_ms <= r.block_ms + 300 && r.gaps === 0 ? 'met' : 'missed';
    const o = r.via === 'relay' ? originOf(r) : undefined;
    const d50 = diff(r.p50_ms, o?.p50_ms);
    const d99 = diff(r.p99_ms, o?.p99_ms);
    const vs = r.via === 'relay' ? `${d50 === null ? '-' : `+${d50}`} / ${d99 === null ? '-' : `+${d99}`} ${d50 !== null && d50 <= 100 ? 'met' : 'missed'}` : '';
    console.log(
      `${r.via.padStart(6)}  ${String(r.block_ms).padStart(8)}  ${String(r.loss_pct).padStart(5)}  ${String(r.lines).padStart(5)}  ${String(r.p50_ms).padStart(7)}  ${String(r.p99_ms).padStart(6)}  ${String(r.gaps).padStart(4)}  ${goal.padStart(22)}  ${vs.padStart(35)}  ${r.ok}`,
    );
  }
  console.log(
    JSON.stringify({
      bench: 'live',
      results: results.map((r) => ({
        via: r.via,
        ...(r.via === 'relay' ? { p50_vs_origin_ms: diff(r.p50_ms, originOf(r)?.p50_ms), p99_vs_origin_ms: diff(r.p99_ms, originOf(r)?.p99_ms) } : {}),
        block_ms: r.block_ms, loss_pct: r.loss_pct, p50_ms: r.p50_ms === null ? null : round(r.p50_ms, 0), p99_ms: r.p99_ms === null ? null : round(r.p99_ms, 0), gaps: r.gaps, lines: r.lines, ok: r.ok })),
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
