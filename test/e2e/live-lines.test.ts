/**
 * Live playout end to end (issue 10): a generator writes numbered,
 * timestamped lines into `rqcast serve --live lines` for 16 s (or until
 * both readers have printed more than 50 lines, if later); two
 * `rqcast fetch .../lines/lines -o -` read them: A from the start of the
 * run with 5% of its data packets dropped (--loss 5), B joining 5 s late.
 * Every line each prints is the next number after the one before it (in
 * order, no gap), each client's first line is no older than the oldest
 * block the server keeps (--keep 3s) when it joined, both exit 0 once the
 * input ends, and the latency from a line's write to its arrival on the
 * client's stdout is recorded (p50, p99 printed; not asserted).
 */
import { rqcastChild } from '../support/rqcast-child';

const RUN_MS = 16_000;
const KEEP_MS = 3000;
const BLOCK_MS = 200;

interface Reader {
  joinedAt: number;
  exited: boolean;
  lines: { n: number; writtenAt: number; arrivedAt: number }[];
  stderr: string;
  code: Promise<number | null>;
}

function reader(port: number, extra: string[]): Reader {
  const child = rqcastChild(['fetch', `rqcast://127.0.0.1:${port}/lines/lines`, '-o', '-', '--transport', 'udp', '--timeout', '30s', '--quiet', ...extra]);
  const r: Reader = { joinedAt: Date.now(), exited: false, lines: [], stderr: '', code: new Promise((res) => child.on('close', res)) };
  void r.code.then(() => (r.exited = true));
  let buf = '';
  let first = true;
  child.stdout?.on('data', (d: Buffer) => {
    const now = Date.now();
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() as string;
    // The first segment played may begin in the middle of a line: skip that part.
    if (first) {
      parts.shift();
      first = false;
    }
    for (const line of parts) {
      const [n, t] = line.split(' ').map(Number);
      r.lines.push({ n, writtenAt: t, arrivedAt: now });
    }
  });
  child.stderr?.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return r;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

test('numbered lines through serve --live and fetch -o -: in order, no gap, fresh first line; p50/p99 latency', async () => {
  const serve = rqcastChild(['serve', '--live', 'lines', '--block-ms', String(BLOCK_MS), '--keep', `${KEEP_MS}ms`, '--rate', '20', '--port', '0', '--bind', '127.0.0.1', '--quiet'], 'pipe');
  let serveErr = '';
  serve.stderr?.on('data', (d: Buffer) => (serveErr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    serve.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on [^\n]*:(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    serve.on('exit', (code) => reject(new Error(`serve exited ${code}: ${serveErr}`)));
  });
  try {
    let n = 0;
    const started = Date.now();
    const write = (): void => {
      serve.stdin?.write(`${n++} ${Date.now()}\n`);
    };
    write();
    const gen = setInterval(write, 20);
    // A segment must exist before A starts: A starts at the newest complete one.
    await new Promise((r) => setTimeout(r, 3 * BLOCK_MS));
    const a = reader(port, ['--loss', '5']);
    await new Promise((r) => setTimeout(r, 5000));
    const b = reader(port, []);
    // RUN_MS at least, and on until each reader has printed more than 50 lines (or exited): under load (16-19
    // on 2 cores) A's first line was #490 (a reader took 7 s or more to start: node, the CLI, its JOIN), and
    // B, started 5 s in, had printed 5 lines when a fixed 16 s run ended.
    const short = (r: Reader): boolean => !r.exited && r.lines.length <= 50;
    while (Date.now() - started < RUN_MS || short(a) || short(b)) await new Promise((r) => setTimeout(r, 100));
    clearInterval(gen);
    serve.stdin?.end();
    const [codeA, codeB] = await Promise.all([a.code, b.code]);
    expect({ a: codeA, b: codeB, errA: a.stderr, errB: b.stderr }).toEqual({ a: 0, b: 0, errA: '', errB: '' });
    for (const [name, r] of [['A (5% loss)', a], ['B (5 s late)', b]] as const) {
      expect(r.lines.length).toBeGreaterThan(50);
      // In order, no gap, through to the generator's last line.
      const bad = r.lines.findIndex((l, i) => i > 0 && l.n !== r.lines[i - 1].n + 1);
      expect(bad).toBe(-1);
      expect(r.lines[r.lines.length - 1].n).toBe(n - 1);
      // The first line was written no earlier than the oldest kept block at the join (keep + one block).
      expect(r.lines[0].writtenAt).toBeGreaterThanOrEqual(r.joinedAt - KEEP_MS - BLOCK_MS);
      const lat = r.lines.map((l) => l.arrivedAt - l.writtenAt).sort((x, y) => x - y);
      console.log(`[live] ${name}: ${r.lines.length} lines from #${r.lines[0].n}, latency p50 ${pct(lat, 50)} ms, p99 ${pct(lat, 99)} ms (block ${BLOCK_MS} ms)`);
    }
  } finally {
    serve.kill('SIGTERM');
    await new Promise((r) => serve.once('close', r));
  }
}, 120_000);
