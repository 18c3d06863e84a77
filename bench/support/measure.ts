// Measurement helpers for the end-to-end benchmark: wrapping a command in
// GNU time for its peak RSS, reading /proc for a running process, digests.
import { createHash, randomFillSync } from 'crypto';
import * as fs from 'fs';

export const GNU_TIME = '/usr/bin/time';

/** Argv that runs `argv` under GNU time, its report written to `reportPath`. */
export function timed(reportPath: string, argv: string[]): string[] {
  return [GNU_TIME, '-v', '-o', reportPath, ...argv];
}

export interface TimeReport {
  maxRssKiB: number;
  /** User + system CPU seconds. */
  cpuSeconds: number;
  wallSeconds: number;
  exitStatus: number;
  /** System CPU seconds alone (the kernel's share: page faults, copies, sends). */
  systemSeconds: number;
  /** Minor page faults: pages the kernel mapped in on first touch (zeroed, for anonymous memory). */
  minorFaults: number;
}

/** Parses a `/usr/bin/time -v -o FILE` report. */
export function readTimeReport(reportPath: string): TimeReport {
  const text = fs.readFileSync(reportPath, 'utf8');
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(text);
  const exit = /Exit status: (\d+)/.exec(text);
  const user = /User time \(seconds\): ([\d.]+)/.exec(text);
  const sys = /System time \(seconds\): ([\d.]+)/.exec(text);
  const minor = /Minor \(reclaiming a frame\) page faults: (\d+)/.exec(text);
  if (!rss || !wall) throw new Error(`unreadable GNU time report ${reportPath}: ${text.slice(0, 500)}`);
  const parts = wall[1].split(':').map(Number);
  const wallSeconds = parts.reduce((acc, p) => acc * 60 + p, 0);
  const cpuSeconds = (user ? Number(user[1]) : 0) + (sys ? Number(sys[1]) : 0);
  return { maxRssKiB: Number(rss[1]), cpuSeconds, wallSeconds, exitStatus: exit ? Number(exit[1]) : -1, systemSeconds: sys ? Number(sys[1]) : 0, minorFaults: minor ? Number(minor[1]) : 0 };
}

/** Direct children of `pid` (Linux /proc). */
export function childPids(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Writes `bytes` random bytes to `path` in 16 MiB chunks; returns the SHA-256 (hex). */
export function writeRandomFile(path: string, bytes: number): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(path, 'w');
  const chunk = Buffer.allocUnsafe(16 * 1024 * 1024);
  try {
    for (let left = bytes; left > 0; ) {
      const n = Math.min(left, chunk.length);
      randomFillSync(chunk, 0, n);
      fs.writeSync(fd, chunk, 0, n);
      hash.update(chunk.subarray(0, n));
      left -= n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** SHA-256 (hex) of a file, streamed; undefined if it does not exist. */
export async function sha256File(path: string): Promise<string | undefined> {
  if (!fs.existsSync(path)) return undefined;
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

export function nowSeconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The value after `--name` on this process's command line, if any. */
export function cliOption(name: string): string | undefined {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** x rounded to `digits` decimals (figures in tables and JSON). */
export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Reception overhead (%): symbols received / symbols needed - 1, from a fetch's --json summary. */
export function overheadFromSummary(summary: unknown): number | undefined {
  const s = summary as { symbolsReceived?: number; neededSymbols?: number } | undefined;
  if (!s || typeof s.symbolsReceived !== 'number' || typeof s.neededSymbols !== 'number' || s.neededSymbols <= 0) return undefined;
  return (s.symbolsReceived / s.neededSymbols - 1) * 100;
}
