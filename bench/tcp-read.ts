// bench:tcp-read — the CPU a TCP client spends reading rqcast's framed
// stream (lib/transport/tcp/client-stream.ts and frame-batch.ts), against a
// plain Node 'data' reader of the same bytes, in the same run, on loopback.
//
//   npm run bench:tcp-read                256 MiB per reader, 5 rounds
//   options: --bytes N  --rounds R
//
// Issue 9: the fetch's CPU per byte bounds bench:tcp; this isolates the
// part that is TCP's own (the socket's reads, the framing, the hand-over
// of each read's frames as one delivery) from decoding, hashing and writing,
// which UDP's fetch pays too.
//
// - One sender process (bench/support/tcp-frame-read.js send) writes frames
//   of 1 400-byte packets to each connection as fast as the reader takes them.
// - Each round runs the plain reader, then rqcast's reader, each a fresh
//   process that counts its own CPU (process.cpuUsage, user + system) from
//   before its connect to the stream's end; alternating, so that the
//   machine's load falls on both alike. rqcast's reader checks every frame.
// - Figures: the median over the rounds, per 256 MiB; ratio = rqcast's
//   CPU / the plain reader's (1.0: framing costs nothing over reading).
// The last line printed is one JSON object.
import { spawn } from 'child_process';
import { lastJson, transpiledRoot } from '../test/e2e/helpers';
import { cliOption, round } from './support/measure';
import * as path from 'path';

const BYTES = Number(cliOption('--bytes') ?? 256 * 1024 * 1024);
const ROUNDS = Number(cliOption('--rounds') ?? 5);
const PORT = 47311;
const SCRIPT = path.join(__dirname, 'support', 'tcp-frame-read.js');
const PER = 256 * 1024 * 1024;

interface Reading {
  bytes: number;
  frames: number;
  cpu_ms: number;
  user_ms: number;
  sys_ms: number;
}

function run(args: string[]): Promise<Reading> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(lastJson(out) as unknown as Reading) : reject(new Error(`${args[0]} reader exited ${code}`))));
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const root = transpiledRoot();
  process.stderr.write(`[bench:tcp-read] rqcast from ${root}\n`);
  const sender = spawn(process.execPath, [SCRIPT, 'send', String(PORT), String(BYTES)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => sender.stdout.once('data', () => resolve()));
  const plain: Reading[] = [];
  const rq: Reading[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      plain.push(await run(['plain', String(PORT)]));
      rq.push(await run(['rqcast', String(PORT), root]));
      if (rq[r].bytes !== plain[r].bytes) throw new Error(`round ${r}: rqcast's reader got ${rq[r].bytes} bytes of frames, the plain one ${plain[r].bytes}`);
    }
  } finally {
    sender.kill('SIGTERM');
  }
  const per = (xs: Reading[], k: 'cpu_ms' | 'user_ms' | 'sys_ms'): number => round(median(xs.map((x) => (x[k] * PER) / x.bytes)), 0);
  const rows = [
    { reader: 'plain', cpu: per(plain, 'cpu_ms'), user: per(plain, 'user_ms'), sys: per(plain, 'sys_ms') },
    { reader: 'rqcast', cpu: per(rq, 'cpu_ms'), user: per(rq, 'user_ms'), sys: per(rq, 'sys_ms') },
  ];
  console.log(`tcp-read: ${BYTES} bytes per reader, ${ROUNDS} rounds, loopback, medians per 256 MiB`);
  console.log('reader   cpu_ms   user_ms  sys_ms   each round cpu_ms');
  for (const [row, xs] of [[rows[0], plain], [rows[1], rq]] as const) {
    console.log(`${row.reader.padEnd(9)}${String(row.cpu).padEnd(9)}${String(row.user).padEnd(9)}${String(row.sys).padEnd(9)}${xs.map((x) => x.cpu_ms).join(' ')}`);
  }
  console.log(
    JSON.stringify({
      bench: 'tcp-read',
      bytes: BYTES,
      rounds: ROUNDS,
      frames: rq[0].frames,
      plain_cpu_ms_per_256MiB: rows[0].cpu,
      rqcast_cpu_ms_per_256MiB: rows[1].cpu,
      plain_user_ms: rows[0].user,
      rqcast_user_ms: rows[1].user,
      plain_sys_ms: rows[0].sys,
      rqcast_sys_ms: rows[1].sys,
      ratio: round(rows[1].cpu / rows[0].cpu, 3),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
