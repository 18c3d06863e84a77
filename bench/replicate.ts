// Replication benchmark: the native Replicator sending one 1200-byte stream
// to 1, 100, 1000 and 10000 UDP destinations on loopback, against two
// baselines measured in the same run with the same packets and the same
// destinations:
//   c      a raw C loop, one thread: plain sendmmsg in batches of 1024
//          (bench/support/sendmmsg_baseline.c, compiled here with cc -O2);
//   dgram  Node's dgram: socket.send per packet per destination, batches of
//          1024 sends in flight, each batch awaited through its callbacks.
// The replicator is measured with UDP GSO (the default where the kernel has
// it: each destination gets runs of consecutive stream packets as one
// super-datagram) and without it.
//
// Destinations: 64 real UDP sockets (held by the C program in `sinks` mode,
// bound to 0.0.0.0, never read: past their receive buffer the kernel drops,
// at the same cost for every sender). Destination i is
// 127.0.0.(1 + i/64) : port[i % 64], so 10000 destinations are 10000
// distinct (address, port) pairs without 10000 sockets. No port is
// unreachable, so no ICMP error is generated.
//
// pps = datagrams the kernel accepted per wall second; Gbit/s counts UDP
// payload bits; "/core" divides by the CPU time the sender used (all of the
// process's threads: for the replicator that is the JS thread refilling the
// ring plus the native sender thread), i.e. datagrams per CPU-second.
//
//   npm run bench:replicate               3 s per figure
//   npm run bench:replicate -- --quick    0.5 s per figure
//
// The last line of output is one JSON object.
import { execFileSync, spawn, spawnSync } from 'child_process';
import { randomFillSync } from 'crypto';
import * as dgram from 'dgram';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Replicator } from '../lib/transport';

const QUICK = process.argv.includes('--quick');
const SECONDS = QUICK ? 0.5 : 3;
const WARMUP_S = QUICK ? 0.1 : 0.3;
const PAYLOAD = 1200;
const DESTINATION_COUNTS = [1, 100, 1000, 10_000];
const SINKS = 64;
const RING = 16_384;

interface Measure {
  pps: number;
  /** Datagrams per CPU-second of the sending process. */
  ppsPerCore: number;
  cpu: number;
}

interface Row {
  destinations: number;
  pps: number;
  gbps: number;
  c_pps: number;
  dgram_pps: number;
  ratio_vs_c: number;
  ratio_vs_dgram: number;
  pps_per_core: number;
  c_pps_per_core: number;
  dgram_pps_per_core: number;
  core_ratio_vs_c: number;
  core_ratio_vs_dgram: number;
  nogso_pps: number;
  nogso_ratio_vs_c: number;
  gso: boolean;
}

function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const sleep = (s: number): Promise<void> => new Promise((r) => setTimeout(r, s * 1000));

function destination(i: number, ports: number[]): [string, number] {
  return [`127.0.0.${1 + Math.floor(i / ports.length)}`, ports[i % ports.length]];
}

function compileBaseline(): string {
  const src = path.join(__dirname, 'support', 'sendmmsg_baseline.c');
  const bin = path.join(os.tmpdir(), `rqcast-sendmmsg-baseline-${process.pid}`);
  execFileSync('cc', ['-O2', '-o', bin, src]);
  return bin;
}

async function startSinks(bin: string): Promise<{ ports: number[]; stop: () => void }> {
  const child = spawn(bin, ['sinks', String(SINKS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`sinks exited (${code})`)));
  });
  const ports = line.split(',').map(Number);
  if (ports.length !== SINKS || ports.some((p) => !(p > 0))) throw new Error(`bad sink ports: ${line}`);
  return { ports, stop: () => child.stdin.end() };
}

function measureC(bin: string, n: number, ports: number[]): Measure {
  const out = spawnSync(bin, ['send', String(SECONDS), String(PAYLOAD), String(n), ports.join(',')], {
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`baseline failed: ${out.stderr}`);
  const r = JSON.parse(out.stdout.trim()) as { datagrams: number; seconds: number; cpu_seconds: number; errors: number };
  if (r.errors > 0) console.error(`# c baseline: ${r.errors} send errors at ${n} destinations`);
  return { pps: r.datagrams / r.seconds, ppsPerCore: r.datagrams / r.cpu_seconds, cpu: r.cpu_seconds / r.seconds };
}

async function measureReplicator(n: number, ports: number[], gso: boolean): Promise<Measure & { gsoActive: boolean }> {
  const r = new Replicator({ gso });
  try {
    const id = 1;
    r.createChannel(id, { slotSize: PAYLOAD, capacity: RING, lowWater: RING / 2 });
    for (let i = 0; i < n; i++) r.addDestination(id, ...destination(i, ports));
    const packets = Buffer.allocUnsafe(RING * PAYLOAD);
    randomFillSync(packets);
    // Keep the ring full: refill whenever the sender thread reports it low.
    const refill = (): void => {
      r.push(id, packets, PAYLOAD, RING);
    };
    r.on('lowWater', refill);
    refill();
    await sleep(WARMUP_S);
    const s0 = r.channelStats(id);
    const t0 = now();
    const c0 = cpuSeconds();
    await sleep(SECONDS);
    const s1 = r.channelStats(id);
    const t1 = now();
    const c1 = cpuSeconds();
    const errors = s1.errors + s1.dropsEagain + s1.dropsEnobufs;
    if (errors > 0) console.error(`# replicator: ${errors} send errors/drops at ${n} destinations`);
    const datagrams = s1.datagrams - s0.datagrams;
    return {
      pps: datagrams / (t1 - t0),
      ppsPerCore: datagrams / (c1 - c0),
      cpu: (c1 - c0) / (t1 - t0),
      gsoActive: r.stats().gsoActive,
    };
  } finally {
    r.close();
  }
}

async function measureDgram(n: number, ports: number[]): Promise<Measure> {
  const socket = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
  await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', resolve));
  const packets = Buffer.allocUnsafe(64 * PAYLOAD);
  randomFillSync(packets);
  const dests = Array.from({ length: n }, (_, i) => destination(i, ports));
  const BATCH = 1024;
  let p = 0;
  let d = 0;
  let done = 0;
  let errors = 0;
  const batch = (): Promise<void> =>
    new Promise((resolve) => {
      let left = BATCH;
      const cb = (err: Error | null): void => {
        if (err) errors++;
        else done++;
        if (--left === 0) resolve();
      };
      for (let k = 0; k < BATCH; k++) {
        const [addr, port] = dests[d];
        socket.send(packets, p * PAYLOAD, PAYLOAD, port, addr, cb);
        if (++d === n) {
          d = 0;
          p = (p + 1) % 64;
        }
      }
    });
  const until = async (seconds: number): Promise<void> => {
    const end = now() + seconds;
    while (now() < end) await batch();
  };
  await until(WARMUP_S);
  const d0 = done;
  const t0 = now();
  const c0 = cpuSeconds();
  await until(SECONDS);
  const t1 = now();
  const c1 = cpuSeconds();
  socket.close();
  if (errors > 0) console.error(`# dgram: ${errors} send errors at ${n} destinations`);
  return { pps: (done - d0) / (t1 - t0), ppsPerCore: (done - d0) / (c1 - c0), cpu: (c1 - c0) / (t1 - t0) };
}

function fmt(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(0);
}

async function main(): Promise<void> {
  const bin = compileBaseline();
  const sinks = await startSinks(bin);
  const rows: Row[] = [];
  let gsoActive = false;
  try {
    console.log(
      `# ${PAYLOAD}-byte payloads, ${SECONDS} s per figure, ${os.cpus().length} CPUs, kernel ${os.release()}, node ${process.version}`,
    );
    console.log(
      'dests   replicator pps  Gbit/s  /core    nogso pps   c pps    /core    dgram pps  /core   vs c   vs dgram  /core vs c  /core vs dgram',
    );
    for (const n of DESTINATION_COUNTS) {
      const eng = await measureReplicator(n, sinks.ports, true);
      gsoActive = eng.gsoActive;
      const nogso = await measureReplicator(n, sinks.ports, false);
      const c = measureC(bin, n, sinks.ports);
      const dg = await measureDgram(n, sinks.ports);
      const row: Row = {
        destinations: n,
        pps: Math.round(eng.pps),
        gbps: round((eng.pps * PAYLOAD * 8) / 1e9, 3),
        c_pps: Math.round(c.pps),
        dgram_pps: Math.round(dg.pps),
        ratio_vs_c: round(eng.pps / c.pps, 3),
        ratio_vs_dgram: round(eng.pps / dg.pps, 2),
        pps_per_core: Math.round(eng.ppsPerCore),
        c_pps_per_core: Math.round(c.ppsPerCore),
        dgram_pps_per_core: Math.round(dg.ppsPerCore),
        core_ratio_vs_c: round(eng.ppsPerCore / c.ppsPerCore, 3),
        core_ratio_vs_dgram: round(eng.ppsPerCore / dg.ppsPerCore, 2),
        nogso_pps: Math.round(nogso.pps),
        nogso_ratio_vs_c: round(nogso.pps / c.pps, 3),
        gso: eng.gsoActive,
      };
      rows.push(row);
      console.log(
        [
          String(n).padEnd(7),
          fmt(row.pps).padStart(14),
          row.gbps.toFixed(2).padStart(7),
          fmt(row.pps_per_core).padStart(7),
          fmt(row.nogso_pps).padStart(11),
          fmt(row.c_pps).padStart(8),
          fmt(row.c_pps_per_core).padStart(8),
          fmt(row.dgram_pps).padStart(11),
          fmt(row.dgram_pps_per_core).padStart(7),
          row.ratio_vs_c.toFixed(2).padStart(6),
          row.ratio_vs_dgram.toFixed(1).padStart(9),
          row.core_ratio_vs_c.toFixed(2).padStart(11),
          row.core_ratio_vs_dgram.toFixed(1).padStart(15),
        ].join(' '),
      );
    }
  } finally {
    sinks.stop();
    fs.rmSync(bin, { force: true });
  }
  console.log(`# UDP GSO ${gsoActive ? 'active' : 'not active (kernel lacks UDP_SEGMENT or it was refused)'}`);
  console.log(JSON.stringify({ bench: 'replicate', results: rows }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
