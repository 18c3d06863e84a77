/** Helpers shared by the client tests: ALC packets from a real encoder. */
import { ObjectEncoder } from '../../lib/fec/encoder';
import { AlcPacket, decodeAlc, encodeAlc } from '../../lib/protocol/alc';
import type { Oti as WireOti } from '../../lib/protocol/oti';
import { Rng } from '../../lib/support/rng';

export function wireOti(enc: ObjectEncoder): WireOti {
  const o = enc.otiInfo;
  return { transferLength: o.F, symbolSize: o.T, sourceBlocks: o.Z, subBlocks: o.N, alignment: o.Al };
}

/** Seeded PRNG (mulberry32) so that failures replay. */
export function prng(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.unit();
}

export function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

export interface AlcOptions {
  tsi?: number;
  toi?: number;
  /** Symbols per ALC packet (G). */
  perPacket?: number;
  withOti?: boolean;
  fdtInstanceId?: number;
  sequence?: number;
}

/** One decoded ALC packet carrying symbols esi..esi+G-1 of block sbn. */
export function alcPacket(enc: ObjectEncoder, sbn: number, esi: number, o: AlcOptions = {}): AlcPacket {
  const G = o.perPacket ?? 1;
  const buf = enc.packets(sbn, esi, G);
  const T = enc.symbolSize;
  const symbols = new Uint8Array(G * T);
  for (let i = 0; i < G; i++) symbols.set(buf.subarray(i * (4 + T) + 4, (i + 1) * (4 + T)), i * T);
  const bytes = encodeAlc({
    tsi: o.tsi ?? 1,
    toi: o.toi ?? 1,
    sbn,
    esi,
    symbols,
    oti: o.withOti ? wireOti(enc) : undefined,
    fdtInstanceId: o.fdtInstanceId,
    sequence: o.sequence,
  });
  const d = decodeAlc(bytes);
  if (!d.ok) throw new Error(`test packet did not decode: ${d.reason}`);
  return d.packet;
}

/**
 * Packets of every block: ESIs 0..ceil(K*factor) in steps of G, each
 * dropped with probability `loss` and duplicated with probability `dup`,
 * shuffled.
 */
export function lossyPackets(
  enc: ObjectEncoder,
  rand: () => number,
  { loss = 0.1, dup = 0.05, factor = 1.5, ...o }: AlcOptions & { loss?: number; dup?: number; factor?: number } = {},
): AlcPacket[] {
  const out: AlcPacket[] = [];
  const G = o.perPacket ?? 1;
  for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) {
    const K = enc.sourceSymbols(sbn);
    for (let esi = 0; esi < Math.ceil(K * factor) + 4; esi += G) {
      if (rand() < loss) continue;
      const p = alcPacket(enc, sbn, esi, o);
      out.push(p);
      if (rand() < dup) out.push(p);
    }
  }
  return shuffle(out, rand);
}

/** Anything with an ObjectReceiver's add/complete/done. */
interface Receiving {
  add(p: AlcPacket): void;
  readonly complete: boolean;
  readonly done: Promise<void>;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * Feeds `packets` in bursts of `burst` (an event-loop turn between bursts,
 * so batches and solves interleave as they do off a socket), then, like a
 * stream that never ends, fresh repair symbols of every block until the
 * receiver completes. Returns how many packets were fed in all.
 */
export async function feedLikeAStream(rx: Receiving, enc: ObjectEncoder, packets: AlcPacket[], burst = 97, o: AlcOptions = {}): Promise<number> {
  let fed = 0;
  for (let i = 0; i < packets.length; i += burst) {
    for (const p of packets.slice(i, i + burst)) {
      rx.add(p);
      fed++;
    }
    await tick();
  }
  let esi = 1 << 20;
  for (let round = 0; !rx.complete && round < 100_000; round++) {
    for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) {
      rx.add(alcPacket(enc, sbn, esi, o));
      fed++;
    }
    esi += o.perPacket ?? 1;
    await tick();
  }
  await rx.done;
  return fed;
}
