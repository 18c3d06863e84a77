// Loads the `raptorq` npm package (cberner/raptorq compiled to wasm by
// wasm-bindgen, *web* target) into a CommonJS process: jest and ts-node
// both run CommonJS, and that file is an ES module (`export class ...`,
// `import.meta.url`). We read its source, strip the three ES-module-only
// constructs, evaluate it in a function scope of the current realm (so
// Uint8Array/TextDecoder are the caller's own) and call its `initSync` with
// the .wasm bytes. This is the independent RaptorQ implementation the
// interop tests and the codec benchmark compare against.
import * as fs from 'fs';
import * as path from 'path';

export interface WasmEncoder {
  /** Per block: all K source packets, then `repairPerBlock` repair packets. */
  encode(repairPerBlock: number): Uint8Array[];
  free(): void;
}
export interface WasmDecoder {
  /** Returns the whole object once every block is decoded. */
  decode(packet: Uint8Array): Uint8Array | undefined;
  free(): void;
}
export interface WasmEncodingPacket {
  source_block_number(): number;
  encoding_symbol_id(): number;
  data(): Uint8Array;
  free(): void;
}
export interface WasmRaptorq {
  Encoder: { with_defaults(data: Uint8Array, mtu: number): WasmEncoder };
  Decoder: { with_defaults(transferLength: bigint, mtu: number): WasmDecoder };
  EncodingPacket: { deserialize(data: Uint8Array): WasmEncodingPacket };
  /** Version of the package, for reports. */
  version: string;
}

let cached: WasmRaptorq | undefined;

export function packageDir(): string {
  return path.dirname(require.resolve('raptorq/package.json'));
}

export function loadWasmRaptorq(): WasmRaptorq {
  if (cached) return cached;
  const dir = packageDir();
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
    version: string;
  };
  let src = fs.readFileSync(path.join(dir, 'raptorq.js'), 'utf8');
  const rewrite = (from: RegExp, to: string): void => {
    const next = src.replace(from, to);
    if (next === src) throw new Error(`wasm-raptorq loader: pattern ${from} not found in raptorq.js`);
    src = next;
  };
  rewrite(/^export class /gm, 'class ');
  rewrite(/^export \{ initSync \};?$/m, '');
  rewrite(/^export default init;?$/m, '');
  // Only reached by the async `init()` when called without input; we never do.
  rewrite(/import\.meta\.url/g, 'undefined');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function(
    `"use strict";\n${src}\nreturn { Encoder, Decoder, EncodingPacket, initSync };`,
  ) as () => {
    Encoder: WasmRaptorq['Encoder'];
    Decoder: WasmRaptorq['Decoder'];
    EncodingPacket: WasmRaptorq['EncodingPacket'];
    initSync(bytes: Uint8Array): unknown;
  };
  const mod = factory();
  mod.initSync(fs.readFileSync(path.join(dir, 'raptorq_bg.wasm')));
  cached = {
    Encoder: mod.Encoder,
    Decoder: mod.Decoder,
    EncodingPacket: mod.EncodingPacket,
    version: pkg.version,
  };
  return cached;
}

/** FEC Payload ID (RFC 6330 §3.2) of a packet. */
export function payloadId(packet: Uint8Array): { sbn: number; esi: number } {
  return { sbn: packet[0], esi: (packet[1] << 16) | (packet[2] << 8) | packet[3] };
}

/** A copy of `packet` with its ESI replaced. */
export function withEsi(packet: Uint8Array, esi: number): Uint8Array {
  const out = Uint8Array.from(packet);
  out[1] = (esi >>> 16) & 0xff;
  out[2] = (esi >>> 8) & 0xff;
  out[3] = esi & 0xff;
  return out;
}

// ------------------------------------------------------------------------
// What the wasm package does not expose: its OTI and its repair ESIs.

let kPrimes: number[] | undefined;

/** The K' column of RFC 6330 Table 2, read from the generated core table. */
export function table2KPrimes(): number[] {
  if (kPrimes) return kPrimes;
  const file = path.resolve(__dirname, '..', '..', 'native', 'fec', 'tables.h');
  const text = fs.readFileSync(file, 'utf8');
  const start = text.indexOf('kTable2[');
  if (start < 0) throw new Error(`no kTable2 in ${file}`);
  const body = text.slice(start, text.indexOf('};', start));
  const rows = [...body.matchAll(/\{\s*(\d+),\s*\d+,\s*\d+,\s*\d+,\s*\d+\s*\}/g)].map((m) =>
    Number(m[1]),
  );
  if (rows.length !== 477 || rows[0] !== 10 || rows[rows.length - 1] !== 56403) {
    throw new Error(`unexpected Table 2 in ${file}: ${rows.length} rows`);
  }
  kPrimes = rows;
  return rows;
}

/** K' for K: the smallest Table 2 row >= K (RFC 6330 §5.3.1). */
export function kPrime(K: number): number {
  const row = table2KPrimes().find((k) => k >= K);
  if (row === undefined) throw new Error(`K = ${K} exceeds K'max`);
  return row;
}

export interface WasmOti {
  F: number;
  T: number;
  Z: number;
  N: number;
  Al: number;
}

/**
 * The OTI that `Encoder.with_defaults(data, mtu)` / `Decoder.with_defaults`
 * of cberner/raptorq use; the wasm API does not expose it, so we reproduce
 * `ObjectTransmissionInformation::with_defaults` (src/base.rs,
 * `generate_encoding_parameters` with decoder memory WS = 10 MiB):
 *   Al = 8, T = mtu rounded down to a multiple of Al (the MTU is the symbol
 *   size: the 4-byte payload ID comes on top), sub-symbol size 8 (units of
 *   Al), N_max = floor(T / (8 * Al)),
 *   KL(n) = largest K' of Table 2 with K' <= WS / (Al * ceil(T / (Al * n))),
 *   Z = ceil(Kt / KL(N_max)), N = smallest n in 1..N_max with
 *   ceil(Kt / Z) <= KL(n).
 * This is the RFC 6330 §4.3 derivation with those constants. The interop
 * tests check the reproduction: rqcast, given this OTI, must emit exactly
 * the wasm encoder's packets.
 */
export function wasmDefaultOti(F: number, mtu: number): WasmOti {
  const Al = 8;
  const WS = 10 * 1024 * 1024;
  const T = mtu - (mtu % Al);
  const nMax = Math.floor(T / (8 * Al));
  if (nMax < 1) throw new Error(`mtu ${mtu}: the wasm build needs mtu >= 64`);
  const Kt = Math.ceil(F / T);
  const ks = table2KPrimes();
  const KL = (n: number): number => {
    const x = Math.ceil(T / (Al * n));
    const limit = Math.floor(WS / (Al * x));
    for (let i = ks.length - 1; i >= 0; i--) if (ks[i] <= limit) return ks[i];
    throw new Error('no K\' fits');
  };
  const Z = Math.ceil(Kt / KL(nMax));
  let N = 1;
  for (let n = 1; n <= nMax; n++) {
    N = n;
    if (Math.ceil(Kt / Z) <= KL(n)) break;
  }
  return { F, T, Z, N, Al };
}

/** RFC 6330 §3.3.2 + §3.3.3 encoding of an OTI (12 bytes). */
export function encodeOti(o: WasmOti): Uint8Array {
  const out = new Uint8Array(12);
  const F = BigInt(o.F);
  for (let i = 0; i < 5; i++) out[i] = Number((F >> BigInt(8 * (4 - i))) & 0xffn);
  out[6] = o.T >> 8;
  out[7] = o.T & 0xff;
  out[8] = o.Z & 0xff;
  out[9] = o.N >> 8;
  out[10] = o.N & 0xff;
  out[11] = o.Al;
  return out;
}

/** RFC 6330 §4.4.1.2 Partition[I, J]: (IL, IS, JL, JS). */
export function partition(I: number, J: number): [number, number, number, number] {
  const IL = Math.ceil(I / J);
  const IS = Math.floor(I / J);
  const JL = I - IS * J;
  return [IL, IS, JL, J - JL];
}

/** Source symbols K of each block of an object (RFC 6330 §4.4.1.2). */
export function blockSizes(o: WasmOti): number[] {
  const [KL, KS, ZL] = partition(Math.ceil(o.F / o.T), o.Z);
  return Array.from({ length: o.Z }, (_, sbn) => (sbn < ZL ? KL : KS));
}

/**
 * The wasm build's repair-ESI quirk: it computes repair symbol i of a block
 * from ISI K'+i (right) but labels it ESI K'+i, where RFC 6330 §5.3.1 says
 * ESI K+i (ISI = ESI + K' - K). Its decoder reads repair ESIs the same way
 * (ISI = ESI) and rejects ESIs in [K, K'). So between rqcast and the wasm
 * build, repair ESIs differ by K' - K; this adapter, and only it, shifts
 * them. Source ESIs (< K) are the same on both sides.
 */
export function wasmToRfcPacket(packet: Uint8Array, K: number[]): Uint8Array {
  const { sbn, esi } = payloadId(packet);
  const k = K[sbn];
  if (esi < k) return packet;
  const shift = kPrime(k) - k;
  if (esi < k + shift) throw new Error(`wasm packet with ESI ${esi} in [K, K') of block ${sbn}`);
  return shift === 0 ? packet : withEsi(packet, esi - shift);
}

export function rfcToWasmPacket(packet: Uint8Array, K: number[]): Uint8Array {
  const { sbn, esi } = payloadId(packet);
  const k = K[sbn];
  const shift = kPrime(k) - k;
  return esi < k || shift === 0 ? packet : withEsi(packet, esi + shift);
}
