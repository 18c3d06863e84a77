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
