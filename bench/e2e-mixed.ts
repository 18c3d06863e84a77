// bench:e2e's mixed-size channel row (issue 12: rate shared by need, not by
// block count). One channel carries a large file, a 12 KB file and a 1-byte
// file; every receiver fetches all three. The stream gives each block its
// pass quota, ceil(K * 1.15), per pass (docs/PROTOCOL.md §10.3), so the
// large file gets its share of the rate by its symbols: it completes close
// to its own floor (its bytes at the channel's rate), where an equal turn
// per block used to give it a third of the channel.
//
// Figures per row: the time to the last receiver done, and from the
// receivers' fetch --json summaries, when each object was verified (from
// JOINED, the slowest receiver), against the floor of the large file (its
// bytes at the rate) and of the whole channel (all bytes at the rate).
import * as fs from 'fs';
import * as path from 'path';
import { Testbed } from '../test/support/netns';
import { lastJson, rqcastArgv } from '../test/e2e/helpers';
import { fetchCommand } from './support/fetch-command';
import { stopTimed } from './support/netns-run';
import { nowSeconds, overheadFromSummary, readTimeReport, round, sha256File, timed, writeRandomFile } from './support/measure';

/** The small files beside the large one: the 12 KB and 1 byte. */
export const MIXED_SMALL_BYTES = [12_000, 1] as const;

export interface MixedRow {
  system: 'rqcast';
  loss_pct: number;
  receivers: number;
  rate_mbit: number;
  /** The large file's bytes, then the small ones'. */
  object_bytes: number[];
  ok: boolean;
  verified: number;
  /** Start of the fetches to the last receiver done. */
  seconds: number | null;
  /** Per object (same order as object_bytes): the slowest receiver's seconds from JOINED to verified. */
  object_seconds: (number | null)[];
  /** The large file's bytes at the rate, and the whole channel's, ÷ (1 − loss). */
  large_floor_s: number;
  channel_floor_s: number;
  /** object_seconds of the large file ÷ large_floor_s. */
  large_vs_floor: number | null;
  overhead_pct: number | null;
  server_rss_MiB: number;
  client_rss_MiB: number;
  server_cpu_s: number;
  client_cpu_s: number;
}

export interface MixedOptions {
  bed: Testbed;
  work: string;
  receivers: number;
  largeBytes: number;
  rateMbit: number;
  loss: number;
  port: number;
  timeoutS: number;
  serveArgs: readonly string[];
  /** Sets `pct`% loss on every receiver (0: removes it): bench:e2e's own rule. */
  setLoss: (pct: number) => Promise<void>;
  log: (msg: string) => void;
}

export async function runMixedChannel(o: MixedOptions): Promise<MixedRow> {
  const { bed, work } = o;
  const dir = path.join(work, `mixed-${o.loss}`);
  fs.mkdirSync(dir, { recursive: true });
  const sizes = [o.largeBytes, ...MIXED_SMALL_BYTES];
  const names = sizes.map((_n, i) => `mixed-${i}.bin`);
  const digests = sizes.map((n, i) => writeRandomFile(path.join(dir, names[i]), n));
  const receivers = bed.clients.slice(0, o.receivers);
  const serverRep = path.join(work, `serve-mixed-${o.loss}.time`);
  const server = bed.spawn(
    bed.server.ns,
    timed(serverRep, rqcastArgv('serve', dir, '--bind', bed.server.address, '--port', String(o.port), '--rate', String(o.rateMbit), '--json', ...o.serveArgs)),
    { timeoutMs: o.timeoutS * 1000 + 120_000 },
  );
  await server.waitForStdout(/listening/, 600_000);
  await o.setLoss(o.loss);
  const reports: string[] = [];
  const outDirs: string[] = [];
  // As users run it: the launcher (bench/support/fetch-command.ts).
  const fetch = fetchCommand();
  const t0 = nowSeconds();
  const fetches = receivers.map((c, i) => {
    const rep = path.join(work, `fetch-mixed-${o.loss}-c${i}.time`);
    reports.push(rep);
    const outDir = path.join(work, `rq-mixed-${o.loss}-c${i}`);
    fs.mkdirSync(outDir, { recursive: true });
    outDirs.push(outDir);
    return bed.spawn(c.ns, timed(rep, fetch.argv(`rqcast://${bed.server.address}:${o.port}`, '-o', outDir, '--json', '--quiet', '--timeout', `${o.timeoutS}s`)), {
      timeoutMs: o.timeoutS * 1000 + 30_000,
      env: fetch.env,
    });
  });
  const ends: number[] = [];
  const results = await Promise.all(fetches.map((f) => f.wait().then((r) => (ends.push(nowSeconds()), r))));
  const seconds = Math.max(...ends) - t0;
  await o.setLoss(0);
  await stopTimed(server);
  let verified = 0;
  for (const out of outDirs) {
    let all = true;
    for (const [i, name] of names.entries()) if ((await sha256File(path.join(out, name))) !== digests[i]) all = false;
    if (all) verified++;
  }
  const summaries = results.map((r) => lastJson(r.stdout));
  const objectSeconds = names.map((name) => {
    let worst: number | null = null;
    for (const s of summaries) {
      const hit = ((s?.objects as { name: string; seconds: number }[] | undefined) ?? []).find((x) => x.name === name);
      if (!hit) return null;
      worst = Math.max(worst ?? 0, hit.seconds);
    }
    return worst === null ? null : round(worst, 3);
  });
  const overheads = summaries.map(overheadFromSummary).filter((x): x is number => x !== undefined);
  const ok = results.every((r) => r.code === 0) && verified === receivers.length;
  if (!ok) for (const r of results) o.log(`rqcast mixed fetch at ${o.loss}%: exit ${r.code ?? r.signal}; stderr tail: ${r.stderr.slice(-1500)}`);
  for (const out of outDirs) fs.rmSync(out, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
  const floor = (bytes: number): number => (bytes * 8) / (o.rateMbit * 1e6) / (1 - o.loss / 100);
  const largeFloor = floor(o.largeBytes);
  const srv = readTimeReport(serverRep);
  const clients = reports.map(readTimeReport);
  return {
    system: 'rqcast',
    loss_pct: o.loss,
    receivers: o.receivers,
    rate_mbit: o.rateMbit,
    object_bytes: sizes,
    ok,
    verified,
    seconds: ok ? round(seconds, 2) : null,
    object_seconds: objectSeconds,
    large_floor_s: round(largeFloor, 3),
    channel_floor_s: round(floor(sizes.reduce((a, b) => a + b, 0)), 3),
    large_vs_floor: ok && objectSeconds[0] !== null ? round(objectSeconds[0] / largeFloor, 3) : null,
    overhead_pct: overheads.length ? round(overheads.reduce((a, b) => a + b, 0) / overheads.length, 2) : null,
    server_rss_MiB: round(srv.maxRssKiB / 1024, 1),
    client_rss_MiB: round(Math.max(...clients.map((c) => c.maxRssKiB / 1024)), 1),
    server_cpu_s: round(srv.cpuSeconds, 1),
    client_cpu_s: round(Math.max(...clients.map((c) => c.cpuSeconds)), 1),
  };
}

/** The rows as a table for bench:e2e's output. */
export function printMixedRows(rows: readonly MixedRow[]): void {
  if (rows.length === 0) return;
  console.log('mixed-size channel (a large file, 12 KB and 1 B on one channel, all fetched): seconds from JOINED to verified, slowest receiver');
  console.log('loss%  large_s   12KB_s   1B_s     large_floor_s  large/floor  all_done_s  overhead%');
  const f = (x: number | null, w: number): string => (x === null ? 'n/a' : String(x)).padEnd(w);
  for (const r of rows) {
    console.log(
      `${f(r.loss_pct, 7)}${f(r.object_seconds[0], 10)}${f(r.object_seconds[1], 9)}${f(r.object_seconds[2], 9)}${f(r.large_floor_s, 15)}${f(r.large_vs_floor, 13)}${f(r.seconds, 12)}${f(r.overhead_pct, 9)}`,
    );
  }
}
