// Codec benchmark: rqcast (native, via the binding) against the `raptorq`
// npm package (cberner/raptorq compiled to wasm), same machine, same run.
//
//   npm run bench:codec               K ≈ 1 000, 10 000, 50 000 at T = 1280
//   npm run bench:codec -- --quick    K ≈ 1 000 only
//   npm run bench:codec -- --k 12340 --loss 1
//                                     other block sizes (a list: --k 1000,5000)
//                                     and another share of source symbols lost
//                                     and of repair sent (default 20 %): e.g.
//                                     a 256 MiB file's blocks at TCP's 1 %
//   BENCH_REPS=5 npm run bench:codec  repetitions per figure (best is kept;
//                                     default 15 / 5 / 3 for K <= 2000 /
//                                     20000 / more: a small block takes a
//                                     millisecond, so one scheduler hiccup
//                                     would otherwise decide its figure)
//
// Encode = construct the encoder, solve the block (intermediate symbols),
// emit every source packet and 20% repair packets (into one reused output
// buffer with packetsInto, as a sender filling its packet ring does).
// Decode = 20% of the source packets lost and replaced by repair packets
// (plus 2, so that a 1% failure at exactly K does not skew a row), fed in
// batches; ends when the object is complete and copied out.
// MB/s are megabytes (10^6) of source data per second, best of the reps.
// The last line of output is one JSON object.
import { loadWasmRaptorq, wasmDefaultOti } from '../test/support/wasm-raptorq';
import { codecPhaseCounters, ObjectDecoder, ObjectEncoder } from '../lib';
import { loadNative } from '../lib/native';
import { Rng } from '../lib/support/rng';
import { cliOption } from './support/measure';

const T = 1280;
const QUICK = process.argv.includes('--quick');
/** A bad option: its message, no stack, and exit status 2. */
function usageError(message: string): never {
  console.error(`bench:codec: ${message}`);
  process.exit(2);
}
function parseKs(text: string): number[] {
  const ks = text.split(',').map(Number);
  // RFC 6330 §5.6: K' up to 56 403 source symbols in a block.
  if (ks.some((k) => !Number.isInteger(k) || k < 1 || k > 56_403)) usageError(`--k: source symbols per block, integers from 1 to 56403, got ${text}`);
  return ks;
}
function parseLossPct(text: string): number {
  const pct = Number(text);
  if (!Number.isFinite(pct) || pct <= 0 || pct >= 100) usageError(`--loss: a percentage above 0 and below 100, got ${text}`);
  return pct;
}
const K_OPTION = cliOption('--k');
const KS = K_OPTION !== undefined ? parseKs(K_OPTION) : QUICK ? [1000] : [1000, 10_000, 50_000];
function repsFor(K: number): number {
  if (process.env.BENCH_REPS) return Math.max(1, Number(process.env.BENCH_REPS));
  return K <= 2000 ? 15 : K <= 20_000 ? 5 : 3;
}
const REPAIR_FRACTION = parseLossPct(cliOption('--loss') ?? '20') / 100;

interface Row {
  K: number;
  T: number;
  encode_MBps: number;
  decode_MBps: number;
  wasm_encode_MBps: number;
  wasm_decode_MBps: number;
  encode_ratio: number;
  decode_ratio: number;
  encode_solver_ms: number;
  encode_symbol_ms: number;
  decode_solver_ms: number;
  decode_symbol_ms: number;
  peak_rss_MB: number;
}

/** Solver / symbol-arithmetic split of the best repetition, in ms. */
interface Split {
  solverMs: number;
  symbolMs: number;
}

const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);

function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

function peakRssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Best (shortest) time of `reps` runs of fn; fn returns the seconds it
 * measured. Also the codec's phase counters of that best run.
 */
async function best(
  reps: number,
  fn: () => Promise<number> | number,
): Promise<{ best: number; first: number; split: Split }> {
  let bestT = Infinity;
  let first = 0;
  let split: Split = { solverMs: 0, symbolMs: 0 };
  for (let r = 0; r < reps; r++) {
    gc();
    codecPhaseCounters(true);
    const t = await fn();
    const c = codecPhaseCounters(true);
    if (r === 0) first = t;
    if (t < bestT) {
      bestT = t;
      split = { solverMs: c.solverNs / 1e6, symbolMs: c.symbolNs / 1e6 };
    }
  }
  return { best: bestT, first, split };
}

/** Source ESIs kept (80%) and the repair ESIs that replace the lost ones. */
function lossPattern(K: number, rng: Rng): { kept: number[]; repair: number } {
  const lost = Math.round(K * REPAIR_FRACTION);
  const order = rng.shuffle(Array.from({ length: K }, (_, i) => i));
  const kept = order.slice(lost).sort((a, b) => a - b);
  return { kept, repair: lost + 2 };
}

async function rqcastEncode(data: Uint8Array, K: number, out: Uint8Array): Promise<number> {
  const t0 = now();
  const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 8 });
  await enc.prepareBlockAsync(0);
  const repair = Math.ceil(K * REPAIR_FRACTION);
  const n = enc.packetsInto(out, 0, 0, 0, K);
  const m = enc.packetsInto(out, n, 0, K, repair);
  const t1 = now();
  enc.close();
  if (n + m !== (K + repair) * (4 + T)) throw new Error('wrong packet bytes');
  return t1 - t0;
}

interface DecodeInput {
  oti: Uint8Array;
  packets: Uint8Array[];
  extra: Uint8Array[];
}

function rqcastDecodeInput(data: Uint8Array, K: number, rng: Rng): DecodeInput {
  const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 8 });
  const { kept, repair } = lossPattern(K, rng);
  const packets = kept.map((esi) => enc.packet(0, esi));
  for (let i = 0; i < repair; i++) packets.push(enc.packet(0, K + i));
  const extra = Array.from({ length: 20 }, (_, i) => enc.packet(0, K + repair + i));
  const oti = enc.oti;
  enc.close();  // its buffers go back to the codec's cache now, not at GC
  return { oti, packets, extra };
}

function rqcastDecode(input: DecodeInput, data: Uint8Array): number {
  const t0 = now();
  const dec = new ObjectDecoder(input.oti);
  let done = dec.pushMany(input.packets).complete;
  for (let i = 0; !done && i < input.extra.length; i++) done = dec.push(input.extra[i]);
  const out = dec.result();
  const t1 = now();
  dec.close();  // as a client does once it has the object
  if (!done || out.length !== data.length || !Buffer.from(out).equals(Buffer.from(data))) {
    throw new Error('rqcast decode produced wrong bytes');
  }
  return t1 - t0;
}

function wasmEncode(data: Uint8Array, K: number): number {
  const rq = loadWasmRaptorq();
  const t0 = now();
  const enc = rq.Encoder.with_defaults(data, T);
  const packets = enc.encode(Math.ceil(K * REPAIR_FRACTION));
  const t1 = now();
  enc.free();
  if (packets.length < K) throw new Error('wasm encoder returned too few packets');
  return t1 - t0;
}

function wasmDecodeInput(data: Uint8Array, K: number, rng: Rng): { packets: Uint8Array[]; blocks: number } {
  const rq = loadWasmRaptorq();
  const enc = rq.Encoder.with_defaults(data, T);
  const { kept, repair } = lossPattern(K, rng);
  const all = enc.encode(repair + 20);
  enc.free();
  const blocks = new Set(all.map((p) => p[0])).size;
  if (blocks !== 1) return { packets: all, blocks };
  // Source packets come first (ESI order), then repair.
  const packets = kept.map((esi) => all[esi]).concat(all.slice(K));
  return { packets, blocks };
}

function wasmDecode(packets: Uint8Array[], data: Uint8Array): number {
  const rq = loadWasmRaptorq();
  const t0 = now();
  const dec = rq.Decoder.with_defaults(BigInt(data.length), T);
  let out: Uint8Array | undefined;
  for (let i = 0; i < packets.length && !out; i++) out = dec.decode(packets[i]);
  const t1 = now();
  dec.free();
  if (!out || !Buffer.from(out).equals(Buffer.from(data))) throw new Error('wasm decode produced wrong bytes');
  return t1 - t0;
}

/** The wasm package's with_defaults split for F = K*T (see wasmDefaultOti). */
function wasmShape(K: number): string {
  const o = wasmDefaultOti(K * T, T);
  return `Z=${o.Z} N=${o.N}`;
}

async function main(): Promise<void> {
  const native = loadNative();
  const rq = loadWasmRaptorq();
  const kernel = native.gf256Kernel();
  console.log(
    `codec benchmark: T=${T}, single source block (Z=1, N=1, Al=8), ` +
      `encode = solve + all source + ${REPAIR_FRACTION * 100}% repair, ` +
      `decode = ${REPAIR_FRACTION * 100}% source loss replaced by repair (+2); ` +
        `best of ${KS.map((K) => `${repsFor(K)} (K=${K})`).join(', ')}`,
  );
  console.log(`gf256 kernel: ${kernel} (available: ${native.gf256Kernels().join(', ')})`);
  console.log(`baseline: raptorq ${rq.version} (wasm) in this process`);
  console.log(
    'split = time in the solver (matrix) / in symbol arithmetic (plan replay, missing source symbols), ' +
      'ms of the best repetition; the rest is repair-symbol generation, packet copies and the binding',
  );

  const rows: Row[] = [];
  const header =
    '     K |  T    | enc MB/s (cold) | dec MB/s | wasm enc | wasm dec | enc × | dec × | enc split ms | dec split ms | wasm shape | RSS MB';
  const lines: string[] = [];
  for (const K of KS) {
    const rng = new Rng(0xc0dec ^ K);
    const data = rng.bytes(K * T);
    const MB = data.length / 1e6;

    const out = new Uint8Array(Math.ceil(K * (1 + REPAIR_FRACTION)) * (4 + T));
    const REPS = repsFor(K);
    const enc = await best(REPS, () => rqcastEncode(data, K, out));
    const decIn = rqcastDecodeInput(data, K, rng);
    const dec = await best(REPS, () => rqcastDecode(decIn, data));
    decIn.packets.length = 0;
    gc();

    const wEnc = await best(REPS, () => wasmEncode(data, K));
    const wIn = wasmDecodeInput(data, K, rng);
    if (wIn.blocks !== 1) throw new Error(`wasm split K=${K} into ${wIn.blocks} blocks`);
    const wDec = await best(REPS, () => wasmDecode(wIn.packets, data));
    wIn.packets.length = 0;
    gc();

    const row: Row = {
      K,
      T,
      encode_MBps: round(MB / enc.best),
      decode_MBps: round(MB / dec.best),
      wasm_encode_MBps: round(MB / wEnc.best),
      wasm_decode_MBps: round(MB / wDec.best),
      encode_ratio: round(wEnc.best / enc.best, 2),
      decode_ratio: round(wDec.best / dec.best, 2),
      encode_solver_ms: round(enc.split.solverMs, 2),
      encode_symbol_ms: round(enc.split.symbolMs, 2),
      decode_solver_ms: round(dec.split.solverMs, 2),
      decode_symbol_ms: round(dec.split.symbolMs, 2),
      peak_rss_MB: round(peakRssMB()),
    };
    rows.push(row);
    const line =
      `${String(K).padStart(6)} | ${T} | ${`${row.encode_MBps} (${round(MB / enc.first)})`.padStart(15)} | ` +
      `${String(row.decode_MBps).padStart(8)} | ${String(row.wasm_encode_MBps).padStart(8)} | ` +
      `${String(row.wasm_decode_MBps).padStart(8)} | ${String(row.encode_ratio).padStart(5)} | ` +
      `${String(row.decode_ratio).padStart(5)} | ` +
      `${`${row.encode_solver_ms}/${row.encode_symbol_ms}`.padStart(12)} | ` +
      `${`${row.decode_solver_ms}/${row.decode_symbol_ms}`.padStart(12)} | ` +
      `${wasmShape(K).padStart(10)} | ${row.peak_rss_MB}`;
    lines.push(line);
    console.error(`[bench] K=${K} done`);
  }
  console.log(header);
  for (const l of lines) console.log(l);
  console.log(
    '(cold) = first repetition, which includes computing the encoding plan for K\'; ' +
      'the wasm package builds its plan inside every Encoder. ' +
      '"wasm shape" is how raptorq.with_defaults split the object (sub-blocks only reorder bytes).',
  );
  console.log(JSON.stringify({ bench: 'codec', loss_pct: round(REPAIR_FRACTION * 100, 2), results: rows }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
