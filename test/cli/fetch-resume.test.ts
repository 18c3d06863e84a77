/**
 * Resume of an interrupted `rqcast fetch`, end to end on loopback, with
 * real processes: a server paced so that a fetch is caught mid-way (a
 * sliding window: blocks complete one after another), a fetch killed with
 * SIGKILL (or stopped with SIGINT) once its journal records a block, then
 * the same fetch again. What the second run received is counted from its
 * --json summary and compared with the blocks the first one left, which
 * the test checks itself against the source file.
 *
 * - kill -9, then resume: the kept blocks are not fetched again; the
 *   symbols received are at most the missing blocks' share plus 10 %;
 *   the object is published verified and no resume file is left.
 * - a torn block (bytes changed in the part file after the kill) is
 *   detected, fetched again, and the object is right.
 * - SIGINT says what was kept and how to resume (exit 130); --no-resume
 *   then starts over (every symbol fetched again), and removes the debris
 *   earlier versions left (finding 6).
 * - the object changed on the server (another digest and OTI under the
 *   same name): the old state is discarded, the new object fetched whole.
 * - killed mid-block (a block kept whole, the next one in progress): the
 *   source symbols written through for the block in progress are recorded,
 *   read back and used beside the kept block; the second run receives at
 *   most what is missing plus 10 %. (This was a round-robin stream, every
 *   block in progress at once; since the in-order schedule (IN_ORDER_WINDOW,
 *   docs/PROTOCOL.md §10.3) every server sends blocks one after another,
 *   and `serve` has no option to set the window.)
 */
import { ChildProcess, spawn } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { blockOf, blockSpans, parseState } from '../../lib/client/sinks/resume-state';
import { DEFAULT_SYMBOL_SIZE, encoderOptionsFor } from '../../lib/content/catalogue';
import { chooseOti } from '../../lib/fec/encoder';
import { loadNative } from '../../lib/native';
import type { Oti as WireOti } from '../../lib/protocol/oti';

const REPO = path.resolve(__dirname, '../..');
const MAIN = path.join(REPO, 'lib/cli/main.ts');
const ENV = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(REPO, 'tsconfig.json') };
/** 40 MiB: three source blocks of about 13 MiB (WS = 16 MiB, T = 1280, RFC 6330 §4.3). */
const SIZE = 40 * 2 ** 20;
const NAME = 'big.bin';

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function rqcast(args: string[]): Proc {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', MAIN, ...args], { cwd: REPO, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

async function serve(dir: string, extra: string[] = []): Promise<{ proc: Proc; port: number }> {
  // --memory 16: a 40 MiB object's blocks do not all fit, so the stream is a
  // sliding window and blocks complete one after another (docs/PROTOCOL.md §10.3).
  const proc = rqcast(['serve', dir, '--port', '0', '--bind', '127.0.0.1', '--rate', '100', '--memory', '16', '--quiet', ...extra]);
  const port = await new Promise<number>((resolve, reject) => {
    proc.child.stdout?.on('data', () => {
      const m = /listening on [^\n]*:(\d+)\n/.exec(proc.stdout());
      if (m) resolve(Number(m[1]));
    });
    void proc.exit.then((e) => reject(new Error(`rqcast serve exited with ${e.code}: ${proc.stderr()}`)));
  });
  return { proc, port };
}

async function stop(p: Proc | undefined): Promise<void> {
  if (p && p.child.exitCode === null && p.child.signalCode === null) {
    p.child.kill('SIGTERM');
    await p.exit;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

let root: string;
let data: Buffer;
let server: { proc: Proc; port: number } | undefined;
let oti: WireOti;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-resume-e2e-'));
  data = randomBytes(SIZE);
  await fs.mkdir(path.join(root, 'src'));
  await fs.writeFile(path.join(root, 'src', NAME), data);
  server = await serve(path.join(root, 'src'));
  // The OTI the server announces for it: RFC 6330 §4.3 with the catalogue's options.
  const o = chooseOti(SIZE, encoderOptionsFor(SIZE, DEFAULT_SYMBOL_SIZE), loadNative());
  oti = { transferLength: o.F, symbolSize: o.T, sourceBlocks: o.Z, subBlocks: o.N, alignment: o.Al };
  expect(oti.sourceBlocks).toBeGreaterThanOrEqual(3);
}, 120_000);

afterAll(async () => {
  await stop(server?.proc);
  await fs.rm(root, { recursive: true, force: true });
});

function url(port = server?.port): string {
  return `rqcast://127.0.0.1:${port}//${NAME}`;
}

const statePath = (dir: string): string => path.join(dir, `.${NAME}.rqcast-state`);
const partPath = (dir: string): string => path.join(dir, `.${NAME}.rqcast-part`);

/**
 * A fetch into `dir`, stopped with `signal` once its journal records at
 * least one block (the journal's size on disk, polled) and before the
 * object is published.
 */
async function interruptedFetch(dir: string, signal: NodeJS.Signals, port = server?.port, enough = hasBlockRecord): Promise<Proc> {
  const p = rqcast(['fetch', url(port), '-o', dir + '/', '--json']);
  for (;;) {
    const st = await fs.readFile(statePath(dir)).catch(() => undefined);
    if (st !== undefined && enough(st)) break;
    if (p.child.exitCode !== null) throw new Error(`the fetch ended before it was interrupted: ${p.stderr()}`);
    await sleep(20);
  }
  p.child.kill(signal);
  await p.exit;
  await expect(fs.stat(path.join(dir, NAME))).rejects.toThrow(/ENOENT/);
  return p;
}

/** The journal records a whole block (a block record, or a prefix record: the blocks that start the object). */
function hasBlockRecord(journal: Buffer): boolean {
  const p = parseState(journal, { oti, sha256: sha(data) });
  return p.blocks.size > 0 || p.prefixes.size > 0;
}

/**
 * The blocks the journal records whose bytes in the part file are the
 * source's: what a resume may keep, found independently. Those of a block
 * record, and those inside the longest prefix record whose bytes all are.
 */
async function keptBlocks(dir: string): Promise<number[]> {
  const parsed = parseState(await fs.readFile(statePath(dir)), { oti, sha256: sha(data) });
  expect(parsed.header).toBe('match');
  const part = await fs.readFile(partPath(dir));
  const spans = blockSpans(oti);
  const prefix = Math.max(0, ...[...parsed.prefixes.keys()].filter((n) => part.subarray(0, n).equals(data.subarray(0, n))));
  const kept = new Set(spans.map((_, sbn) => sbn).filter((sbn) => spans[sbn].offset + spans[sbn].length <= prefix));
  for (const sbn of parsed.blocks.keys()) {
    const s = spans[sbn];
    if (part.subarray(s.offset, s.offset + s.length).equals(data.subarray(s.offset, s.offset + s.length))) kept.add(sbn);
  }
  return [...kept].sort((a, b) => a - b);
}

/**
 * The source symbols the journal's runs hold for blocks not kept whole,
 * whose bytes in the part file are the source's: (block, ESI) pairs,
 * counted once, found independently of the code under test.
 */
async function keptSymbols(dir: string, kept: number[]): Promise<number> {
  const parsed = parseState(await fs.readFile(statePath(dir)), { oti, sha256: sha(data) });
  const part = await fs.readFile(partPath(dir));
  const spans = blockSpans(oti);
  const T = oti.symbolSize;
  const symbols = new Set<string>();
  for (const r of parsed.runs) {
    if (!part.subarray(r.offset, r.offset + r.length).equals(data.subarray(r.offset, r.offset + r.length))) continue;
    const sbn = blockOf(spans, r.offset) as number;
    if (kept.includes(sbn)) continue;
    for (let at = r.offset; at < r.offset + r.length; at += T) symbols.add(`${sbn}:${(at - spans[sbn].offset) / T}`);
  }
  return symbols.size;
}

function summaryOf(p: Proc): Record<string, number> {
  const lines = p.stdout().trim().split('\n').map((l) => JSON.parse(l) as { type: string });
  const s = lines.find((l) => l.type === 'summary');
  expect(s).toBeDefined();
  return s as unknown as Record<string, number>;
}

async function published(dir: string): Promise<void> {
  expect(sha(await fs.readFile(path.join(dir, NAME))).equals(sha(data))).toBe(true);
  // Nothing of the resume machinery is left once the object is published.
  expect(await fs.readdir(dir)).toEqual([NAME]);
}

/** K of every block, from the OTI (RFC 6330 §4.4.1.2). */
function symbolsOf(sbns: number[]): number {
  const spans = blockSpans(oti);
  return sbns.reduce((a, sbn) => a + Math.ceil(spans[sbn].length / oti.symbolSize), 0);
}

test('kill -9 mid-transfer, then the same fetch: only the missing blocks are received (their share + 10 % at most), the object verified', async () => {
  const dir = await fs.mkdtemp(path.join(root, 'kill-'));
  const first = await interruptedFetch(dir, 'SIGKILL');
  expect(first.child.signalCode).toBe('SIGKILL');
  const kept = await keptBlocks(dir);
  expect(kept.length).toBeGreaterThanOrEqual(1);
  expect(kept.length).toBeLessThan(oti.sourceBlocks);
  const symbols = await keptSymbols(dir, kept);
  const missing = Kt() - symbolsOf(kept) - symbols;

  const second = rqcast(['fetch', url(), '-o', dir + '/', '--json']);
  expect((await second.exit).code).toBe(0);
  const s = summaryOf(second);
  expect(s.blocksResumed).toBe(kept.length);
  expect(s.symbolsResumed).toBe(symbolsOf(kept));
  // The symbols of the other blocks that the first run had received come back from the part file, the rest from the network.
  expect(s.symbolsReplayed).toBe(symbols);
  expect(s.symbolsReceived).toBeGreaterThanOrEqual(missing);
  expect(s.symbolsReceived).toBeLessThanOrEqual(missing * 1.1);
  // eslint-disable-next-line no-console
  console.log(
    `resume after kill -9 (sliding window): ${kept.length}/${oti.sourceBlocks} blocks and ${symbols} symbols kept of ${Kt()}; second run received ` +
      `${s.symbolsReceived} symbols for ${missing} missing, ${s.packetsReceived} packets`,
  );
  await published(dir);
}, 180_000);

/** Kt, the object's source symbols (RFC 6330 §4.4.1.2). */
function Kt(): number {
  return Math.ceil(SIZE / oti.symbolSize);
}

test('a torn block in the part file is detected and fetched again; the object is right', async () => {
  const dir = await fs.mkdtemp(path.join(root, 'torn-'));
  await interruptedFetch(dir, 'SIGKILL');
  const kept = await keptBlocks(dir);
  expect(kept.length).toBeGreaterThanOrEqual(1);
  // Tear the first kept block: 4 KiB of it overwritten, as a write cut short by a power loss would leave it.
  const span = blockSpans(oti)[kept[0]];
  const h = await fs.open(partPath(dir), 'r+');
  await h.write(Buffer.alloc(4096, 0xee), 0, 4096, span.offset + 123_456);
  await h.close();

  // What is still kept: not the torn block, nor (if a prefix record covered it) the blocks the same prefix covered after it.
  const still = await keptBlocks(dir);
  expect(still).not.toContain(kept[0]);

  const second = rqcast(['fetch', url(), '-o', dir + '/', '--json']);
  expect((await second.exit).code).toBe(0);
  const s = summaryOf(second);
  expect(s.blocksResumed).toBe(still.length);
  expect(second.stdout() + second.stderr()).toMatch(/did not match (its|their) checksum/);
  // The torn block was decoded again: from the network, and from the symbols written through for it that are intact.
  expect(s.symbolsReceived + s.symbolsReplayed).toBeGreaterThanOrEqual(Kt() - symbolsOf(still));
  await published(dir);
}, 180_000);

test('SIGINT says what was kept and how to resume (exit 130); --no-resume starts over; debris of earlier versions goes', async () => {
  const dir = await fs.mkdtemp(path.join(root, 'int-'));
  const first = await interruptedFetch(dir, 'SIGINT');
  expect(first.child.exitCode).toBe(130);
  const kept = await keptBlocks(dir);
  expect(kept.length).toBeGreaterThanOrEqual(1);
  expect(first.stderr()).toMatch(new RegExp(`kept ${kept.length} of ${oti.sourceBlocks} blocks .* of "${NAME}" in .*\\.${NAME}\\.rqcast-part; run the same fetch again to resume it \\(--no-resume to start over\\)`));
  const partial = first
    .stdout()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; blocksKept?: number })
    .find((l) => l.type === 'partial');
  expect(partial?.blocksKept).toBe(kept.length);
  // Stopped cleanly: the lock is gone, the part file and journal stay.
  expect((await fs.readdir(dir)).sort()).toEqual([`.${NAME}.rqcast-part`, `.${NAME}.rqcast-state`]);

  // Finding 6: the random-named temporary file that earlier versions left after a kill -9 is removed too.
  await fs.writeFile(path.join(dir, `.${NAME}.rqcast-tmp-0badc0de`), Buffer.alloc(1 << 20));
  const again = rqcast(['fetch', url(), '-o', dir + '/', '--json', '--no-resume']);
  expect((await again.exit).code).toBe(0);
  expect(again.stdout() + again.stderr()).toMatch(/removed 1 temporary file an interrupted fetch left/);
  const s = summaryOf(again);
  expect(s.blocksResumed).toBe(0);
  expect(s.symbolsReceived).toBeGreaterThanOrEqual(Kt());
  await published(dir);
}, 180_000);

test('the object changed on the server (same name, another digest and OTI): the old state is discarded, the new object fetched whole', async () => {
  const dir = await fs.mkdtemp(path.join(root, 'changed-'));
  await interruptedFetch(dir, 'SIGKILL');
  expect((await keptBlocks(dir)).length).toBeGreaterThanOrEqual(1);
  const newer = randomBytes(300_000);
  await fs.mkdir(path.join(root, 'src2'));
  await fs.writeFile(path.join(root, 'src2', NAME), newer);
  const other = await serve(path.join(root, 'src2'));
  try {
    const p = rqcast(['fetch', url(other.port), '-o', dir + '/', '--json']);
    expect((await p.exit).code).toBe(0);
    const s = summaryOf(p);
    expect(s.blocksResumed).toBe(0);
    expect(p.stdout() + p.stderr()).toMatch(/changed \(digest or OTI\) since the interrupted fetch: starting over/);
    expect((await fs.readFile(path.join(dir, NAME))).equals(newer)).toBe(true);
    expect(await fs.readdir(dir)).toEqual([NAME]);
  } finally {
    await stop(other.proc);
  }
}, 180_000);

test('in-order stream killed mid-block: the symbols written through for the block in progress are resumed beside the kept block, and the second run receives at most what is missing + 10 %', async () => {
  // Default --memory: every block fits, but the stream sends them in order (IN_ORDER_WINDOW), one pass quota each.
  // Source symbols are sent in a block's first pass only (later passes are repair): 30 Mbit/s makes that pass
  // long enough (some 12 s for the object) for the fetch to join during it and write some through.
  const rr = await serve(path.join(root, 'src'), ['--memory', '512', '--rate', '30']);
  try {
    const dir = await fs.mkdtemp(path.join(root, 'rr-'));
    const F = SIZE;
    // Killed once the journal records a whole block and, for blocks not kept whole, runs of at least a twelfth of the object (a quarter of the next block).
    const spans = blockSpans(oti);
    await interruptedFetch(dir, 'SIGKILL', rr.port, (journal) => {
      const p = parseState(journal, { oti, sha256: sha(data) });
      const prefix = Math.max(0, ...p.prefixes.keys());
      const whole = (sbn: number): boolean => p.blocks.has(sbn) || spans[sbn].offset + spans[sbn].length <= prefix;
      const open = p.runs.filter((r) => !whole(blockOf(spans, r.offset) ?? -1));
      return (p.blocks.size > 0 || prefix > 0) && open.reduce((a, r) => a + r.length, 0) >= F / 12;
    });
    const kept = await keptBlocks(dir);
    const symbols = await keptSymbols(dir, kept);
    expect(kept.length).toBeGreaterThan(0);
    expect(symbols).toBeGreaterThan(Kt() / 16);
    const missing = Kt() - symbolsOf(kept) - symbols;

    const second = rqcast(['fetch', url(rr.port), '-o', dir + '/', '--json']);
    expect((await second.exit).code).toBe(0);
    const s = summaryOf(second);
    expect(s.blocksResumed).toBe(kept.length);
    expect(s.symbolsReplayed).toBe(symbols);
    expect(s.symbolsReceived).toBeGreaterThanOrEqual(missing);
    expect(s.symbolsReceived).toBeLessThanOrEqual(missing * 1.1);
    // eslint-disable-next-line no-console
    console.log(
      `resume after kill -9 (mid-block, in order): ${kept.length} blocks and ${symbols} symbols kept of ${Kt()}; second run received ` +
        `${s.symbolsReceived} symbols for ${missing} missing, ${s.packetsReceived} packets`,
    );
    await published(dir);
  } finally {
    await stop(rr.proc);
  }
}, 180_000);
