// Memory benchmark: peak RSS of `rqcast serve` and `rqcast fetch` as the
// file grows, with a fixed --memory budget on both, against the same
// transfer of the smallest file at the default budget (everything prepared
// at once) measured in the same run. What it shows: with a budget, RSS
// stays flat while the file grows (a file larger than RAM needs no more),
// and what the budget costs in time.
//
//   npm run bench:memory                    256 MiB and 2 GiB, serve --memory 128, fetch --memory 256, loopback, 400 Mbit/s
//   npm run bench:memory -- --quick         64 MiB and 256 MiB
//   options: --sizes MiB,MiB  --memory MiB (server)  --client-memory MiB  --rate MBIT
//            --no-baseline (skip the default-budget run: one run per size)
//            --serve-args "..." (extra rqcast serve options, e.g. "--pass-overhead 2")
//
//   The issue-12 check (a file 8x the server's budget, README's advice of
//   twice the server's budget for the client):
//   npm run bench:memory -- --sizes 2048 --memory 256 --rate 1500 --no-baseline
//
// The client's budget is twice the server's by default: a client holds a
// block's source symbols and, while it solves, its intermediate symbols
// (about twice what the server holds per block), so a client budget below
// the server's window makes it drop symbols and wait for later passes.
//
// Each run: serve the file on 127.0.0.1, fetch it once (both under GNU time
// for their peak RSS), check the SHA-256, stop the server. The last line
// printed is one JSON object.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { rqcastArgv } from '../test/e2e/helpers';
import { childPids, cliOption, nowSeconds, readTimeReport, round, sha256File, timed, writeRandomFile } from './support/measure';

const argv = process.argv.slice(2);
const opt = cliOption;
const QUICK = argv.includes('--quick');
const SIZES_MIB = (opt('--sizes') ?? (QUICK ? '64,256' : '256,2048')).split(',').map(Number);
const MEMORY_MIB = Number(opt('--memory') ?? 128);
const CLIENT_MEMORY_MIB = Number(opt('--client-memory') ?? 2 * MEMORY_MIB);
const RATE = Number(opt('--rate') ?? 400);
const BASELINE = !argv.includes('--no-baseline');
const SERVE_ARGS = (opt('--serve-args') ?? '').split(/\s+/).filter(Boolean);
const MIB = 1024 * 1024;

interface Run {
  bytes: number;
  memory_MiB: number | 'default';
  seconds: number;
  ok: boolean;
  server_rss_MiB: number;
  client_rss_MiB: number;
  server_cpu_s: number;
  client_cpu_s: number;
  window_blocks?: number;
  /** From fetch --json's summary: every packet's bytes received; needed: the file's bytes. */
  received_bytes: number;
  needed_bytes: number;
  /** received_bytes / the file's bytes (the goal: <= 1.05). */
  received_vs_content: number;
  symbols_received: number;
  needed_symbols: number;
  budget_drops: number;
  socket_drops: number;
  blocks_evicted: number;
  peak_partial_block_MiB: number;
}

interface FetchSummary {
  bytesReceived: number;
  symbolsReceived: number;
  neededSymbols: number;
  budgetDrops: number;
  socketDrops: number;
  blocksEvicted: number;
  peakPartialBlockBytes: number;
}

async function runOnce(dir: string, file: string, digest: string, memory: number | 'default', port: number): Promise<Run> {
  const memArgs = memory === 'default' ? [] : ['--memory', String(memory)];
  const clientMemArgs = memory === 'default' ? [] : ['--memory', String(CLIENT_MEMORY_MIB)];
  const srvRep = path.join(dir, `srv-${port}.time`);
  const cliRep = path.join(dir, `cli-${port}.time`);
  const out = path.join(dir, `out-${port}`);
  fs.rmSync(out, { recursive: true, force: true });
  const [cmd, ...args] = timed(srvRep, rqcastArgv('serve', file, '--bind', '127.0.0.1', '--port', String(port), '--rate', String(RATE), '--json', '--quiet', ...memArgs, ...SERVE_ARGS));
  const server = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const listening = await new Promise<{ channels: { windowBlocks: number }[] }>((resolve, reject) => {
    let buf = '';
    server.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
    });
    server.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });
  const t0 = nowSeconds();
  const [fcmd, ...fargs] = timed(cliRep, rqcastArgv('fetch', `rqcast://127.0.0.1:${port}`, '-o', out, '--json', '--timeout', '600s', ...clientMemArgs));
  const fetcher = spawn(fcmd, fargs, { stdio: ['ignore', 'pipe', 'inherit'] });
  let fetchOut = '';
  fetcher.stdout.on('data', (d: Buffer) => (fetchOut += d.toString()));
  const code = await new Promise<number>((resolve) => fetcher.on('exit', (c) => resolve(c ?? -1)));
  const summaryLine = fetchOut.split('\n').find((l) => l.startsWith('{"type":"summary"'));
  const summary = (summaryLine ? JSON.parse(summaryLine) : {}) as Partial<FetchSummary>;
  const seconds = nowSeconds() - t0;
  // GNU time ignores SIGINT while it waits: stop the server itself.
  for (const pid of childPids(server.pid ?? -1)) process.kill(pid, 'SIGINT');
  await new Promise((r) => server.on('exit', r));
  const got = await sha256File(path.join(out, path.basename(file)));
  fs.rmSync(out, { recursive: true, force: true });
  const s = readTimeReport(srvRep);
  const c = readTimeReport(cliRep);
  return {
    bytes: fs.statSync(file).size,
    memory_MiB: memory,
    seconds: round(seconds, 2),
    ok: code === 0 && got === digest,
    server_rss_MiB: round(s.maxRssKiB / 1024, 1),
    client_rss_MiB: round(c.maxRssKiB / 1024, 1),
    server_cpu_s: round(s.cpuSeconds, 2),
    client_cpu_s: round(c.cpuSeconds, 2),
    window_blocks: listening.channels[0]?.windowBlocks,
    received_bytes: summary.bytesReceived ?? -1,
    needed_bytes: fs.statSync(file).size,
    received_vs_content: round((summary.bytesReceived ?? NaN) / fs.statSync(file).size, 3),
    symbols_received: summary.symbolsReceived ?? -1,
    needed_symbols: summary.neededSymbols ?? -1,
    budget_drops: summary.budgetDrops ?? -1,
    socket_drops: summary.socketDrops ?? -1,
    blocks_evicted: summary.blocksEvicted ?? -1,
    peak_partial_block_MiB: round((summary.peakPartialBlockBytes ?? NaN) / MIB, 1),
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bench-memory-'));
  const runs: Run[] = [];
  let port = 4700;
  try {
    for (const [i, mib] of SIZES_MIB.entries()) {
      const file = path.join(dir, `payload-${mib}MiB.bin`);
      console.error(`[bench:memory] writing ${mib} MiB`);
      const digest = writeRandomFile(file, mib * MIB);
      if (i === 0 && BASELINE) {
        console.error(`[bench:memory] ${mib} MiB at the default budget (baseline)`);
        runs.push(await runOnce(dir, file, digest, 'default', port++));
      }
      console.error(`[bench:memory] ${mib} MiB with serve --memory ${MEMORY_MIB}, fetch --memory ${CLIENT_MEMORY_MIB}`);
      runs.push(await runOnce(dir, file, digest, MEMORY_MIB, port++));
      fs.rmSync(file, { force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const base = runs[0];
  console.log(`memory: one fetch on loopback at ${RATE} Mbit/s; serve --memory ${MEMORY_MIB}, fetch --memory ${CLIENT_MEMORY_MIB} (MiB) unless "default"; peak RSS from GNU time`);
  console.log('bytes        memory  window  seconds  ok  srv_MiB  cli_MiB  srv_cpu  cli_cpu  rcv/content  drops     srv_rss/base  cli_rss/base');
  for (const r of runs) {
    console.log(
      [
        String(r.bytes).padEnd(12),
        String(r.memory_MiB).padEnd(7),
        String(r.window_blocks ?? '').padEnd(7),
        String(r.seconds).padEnd(8),
        (r.ok ? 'yes' : 'NO').padEnd(3),
        String(r.server_rss_MiB).padEnd(8),
        String(r.client_rss_MiB).padEnd(8),
        String(r.server_cpu_s).padEnd(8),
        String(r.client_cpu_s).padEnd(8),
        String(r.received_vs_content).padEnd(12),
        String(r.budget_drops).padEnd(9),
        String(round(r.server_rss_MiB / base.server_rss_MiB, 2)).padEnd(13),
        String(round(r.client_rss_MiB / base.client_rss_MiB, 2)),
      ].join(' '),
    );
  }
  const results = runs.map((r) => ({
    ...r,
    ratio_server_rss_vs_baseline: round(r.server_rss_MiB / base.server_rss_MiB, 3),
    ratio_client_rss_vs_baseline: round(r.client_rss_MiB / base.client_rss_MiB, 3),
    ratio_seconds_vs_baseline: round(r.seconds / base.seconds, 3),
  }));
  console.log(JSON.stringify({ bench: 'memory', rate_mbit: RATE, server_memory_MiB: MEMORY_MIB, client_memory_MiB: CLIENT_MEMORY_MIB, serve_args: SERVE_ARGS, results }));
  if (runs.some((r) => !r.ok)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
