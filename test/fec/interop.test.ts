// Interoperability with an independent RaptorQ implementation: the `raptorq`
// npm package (cberner/raptorq, Rust, compiled to wasm). Byte-exact, both
// ways, at several object shapes, including repair-only decodes.
//
// The wasm API only has `with_defaults(len, mtu)`; its OTI is reproduced by
// `wasmDefaultOti` (see test/support/wasm-raptorq.ts) and handed to rqcast
// as options. Its repair symbols carry ESI K'+i instead of the RFC's K+i;
// `wasmToRfcPacket` / `rfcToWasmPacket` shift them, here only.
import { ObjectDecoder, ObjectEncoder } from '../../lib';
import { Rng } from '../../lib/support/rng';
import {
  blockSizes,
  encodeOti,
  kPrime,
  loadWasmRaptorq,
  payloadId,
  rfcToWasmPacket,
  wasmDefaultOti,
  wasmToRfcPacket,
  WasmOti,
} from '../support/wasm-raptorq';

interface Case {
  name: string;
  F: number;
  mtu: number;
  /** Also decode from repair symbols alone (both ways). */
  repairOnly: boolean;
}

const CASES: Case[] = [
  { name: 'F=1000: K=1, K\'=10', F: 1000, mtu: 1280, repairOnly: true },
  { name: 'F=12800: K=K\'=10', F: 12800, mtu: 1280, repairOnly: true },
  { name: '1 MiB: K=820, K\'=821', F: 1 << 20, mtu: 1280, repairOnly: true },
  { name: '~1 MB: K=K\'=821, short last symbol', F: 821 * 1280 - 77, mtu: 1280, repairOnly: true },
  { name: '12 MB: one block of K=9375 in N=2 sub-blocks', F: 12_000_000, mtu: 1280, repairOnly: false },
  { name: '4 MB at T=64: Z=2 blocks of K=31250', F: 4_000_000, mtu: 64, repairOnly: false },
];

const wasm = loadWasmRaptorq();
const SEED = Number(process.env.INTEROP_SEED ?? 6330);

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

function rqcastEncoder(data: Uint8Array, o: WasmOti): ObjectEncoder {
  return new ObjectEncoder(data, {
    symbolSize: o.T,
    sourceBlocks: o.Z,
    subBlocks: o.N,
    alignment: o.Al,
  });
}

/** Feeds packets until the decoder completes; returns how many it took. */
function feedRqcast(dec: ObjectDecoder, packets: Uint8Array[]): number {
  for (let i = 0; i < packets.length; i++) if (dec.push(packets[i])) return i + 1;
  return -1;
}

function feedWasm(F: number, mtu: number, packets: Uint8Array[]): Uint8Array | undefined {
  const dec = wasm.Decoder.with_defaults(BigInt(F), mtu);
  try {
    for (const p of packets) {
      const out = dec.decode(p);
      if (out) return out;
    }
    return undefined;
  } finally {
    dec.free();
  }
}

/** Drops `lossFraction` of the source packets of every block, keeps all repair. */
function lossy(packets: Uint8Array[], K: number[], lossFraction: number, rng: Rng): Uint8Array[] {
  const kept = packets.filter((p) => {
    const { sbn, esi } = payloadId(p);
    return esi >= K[sbn] || rng.below(1_000_000) >= lossFraction * 1_000_000;
  });
  return rng.shuffle(kept);
}

describe.each(CASES)('interop with raptorq (wasm) — $name', ({ F, mtu, repairOnly }) => {
  const rng = new Rng(SEED ^ F ^ (mtu << 20));
  const data = rng.bytes(F);
  const o = wasmDefaultOti(F, mtu);
  const K = blockSizes(o);
  const maxK = Math.max(...K);
  // Enough repair per block to replace 10% lost source symbols (+ margin),
  // or, for repair-only decodes, a whole block's worth plus margin.
  const repair = repairOnly ? maxK + 10 : Math.ceil(maxK * 0.12) + 10;
  let wasmPackets: Uint8Array[] = [];

  beforeAll(() => {
    const enc = wasm.Encoder.with_defaults(data, mtu);
    try {
      wasmPackets = enc.encode(repair);
    } finally {
      enc.free();
    }
    // The reproduced OTI matches what the wasm encoder did: Z blocks of K
    // source symbols each, repair numbered from K'.
    const perBlock = new Map<number, { source: number; firstRepair: number }>();
    for (const p of wasmPackets) {
      expect(p.length).toBe(4 + o.T);
      const { sbn, esi } = payloadId(p);
      const b = perBlock.get(sbn) ?? { source: 0, firstRepair: Infinity };
      if (esi < K[sbn]) b.source++;
      else b.firstRepair = Math.min(b.firstRepair, esi);
      perBlock.set(sbn, b);
    }
    expect([...perBlock.keys()].sort((a, b) => a - b)).toEqual(K.map((_, i) => i));
    K.forEach((k, sbn) => {
      expect(perBlock.get(sbn)).toEqual({ source: k, firstRepair: kPrime(k) });
    });
  }, 300_000);

  test('rqcast, given the same OTI, emits exactly the wasm packets', () => {
    const enc = rqcastEncoder(data, o);
    expect(Buffer.from(enc.oti)).toEqual(Buffer.from(encodeOti(o)));
    expect(enc.sourceBlocks).toBe(o.Z);
    K.forEach((k, sbn) => expect(enc.sourceSymbols(sbn)).toBe(k));
    let mismatches = 0;
    let firstMismatch = '';
    for (const p of wasmPackets) {
      const want = wasmToRfcPacket(p, K);
      const { sbn, esi } = payloadId(want);
      const got = enc.packet(sbn, esi);
      if (!eq(got, want)) {
        if (!mismatches) firstMismatch = `sbn ${sbn} esi ${esi}`;
        mismatches++;
      }
    }
    expect({ mismatches, firstMismatch }).toEqual({ mismatches: 0, firstMismatch: '' });
  }, 300_000);

  test('wasm encoder → rqcast decoder, 10% source loss', () => {
    const dec = new ObjectDecoder(encodeOti(o));
    const packets = lossy(wasmPackets, K, 0.1, rng).map((p) => wasmToRfcPacket(p, K));
    expect(feedRqcast(dec, packets)).toBeGreaterThan(0);
    expect(eq(dec.result(), data)).toBe(true);
  }, 300_000);

  test('rqcast encoder → wasm decoder, 10% source loss', () => {
    const enc = rqcastEncoder(data, o);
    const packets: Uint8Array[] = [];
    K.forEach((k, sbn) => {
      for (let esi = 0; esi < k + repair; esi++) packets.push(enc.packet(sbn, esi));
    });
    const out = feedWasm(F, mtu, lossy(packets, K, 0.1, rng).map((p) => rfcToWasmPacket(p, K)));
    expect(out).toBeDefined();
    expect(eq(out!, data)).toBe(true);
  }, 300_000);

  // Repair-only decodes run on the small and 1 MiB cases: for the two large
  // cases the wasm encoder would have to produce a whole block of repair
  // (K up to 31 250 symbols), minutes of wasm time for nothing new.
  (repairOnly ? test : () => undefined)('repair symbols only, both ways', () => {
    // wasm → rqcast
    const dec = new ObjectDecoder(encodeOti(o));
    const wasmRepair = wasmPackets
      .filter((p) => payloadId(p).esi >= K[payloadId(p).sbn])
      .map((p) => wasmToRfcPacket(p, K));
    expect(feedRqcast(dec, rng.shuffle(wasmRepair))).toBeGreaterThan(0);
    expect(eq(dec.result(), data)).toBe(true);

    // rqcast → wasm, from repair ESIs well past the first ones
    const enc = rqcastEncoder(data, o);
    const packets: Uint8Array[] = [];
    K.forEach((k, sbn) => {
      const first = k + 1000 + rng.below(100_000);
      for (let esi = first; esi < first + k + 10; esi++) packets.push(enc.packet(sbn, esi));
    });
    const out = feedWasm(F, mtu, rng.shuffle(packets).map((p) => rfcToWasmPacket(p, K)));
    expect(out).toBeDefined();
    expect(eq(out!, data)).toBe(true);
  }, 300_000);
});
