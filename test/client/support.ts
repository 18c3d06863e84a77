/** Helpers shared by the client tests: ALC packets from a real encoder, in-memory sinks, the test senders' objects, datagram batches. */
import { createHash } from 'crypto';
import type { DataPathOwner } from '../../lib/client/data-path';
import { DigestMismatchError, UnfetchableObjectError } from '../../lib/client/errors';
import type { PacketInfo } from '../../lib/client/events';
import type { ObjectRegistryEvents, RegisteredObject } from '../../lib/client/object-registry';
import type { ObjectSink, SinkFactory, SinkObject } from '../../lib/client/sinks/sink';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { AlcPacket, decodeAlc, encodeAlc } from '../../lib/protocol/alc';
import { buildFdt, FdtChannel, FdtFile } from '../../lib/protocol/fdt';
import type { ControlMessage } from '../../lib/protocol/messages';
import type { Oti as WireOti } from '../../lib/protocol/oti';
import { Rng } from '../../lib/support/rng';
import type { Datagrams } from '../../lib/transport/client-transport';

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

/** Anything with an ObjectReceiver's per-block surface. */
interface BlockReceiving extends Receiving {
  blockNeed(sbn: number): number;
  commitAll(): void;
}

/**
 * Feeds each block in turn, as a stream that sends blocks in order does:
 * its source symbols, then repair ones until it needs none (at most 3 K
 * ESIs), each lost with probability `loss`; a commit and an event-loop turn
 * every 32 packets, a commit after each block. Returns the packets fed,
 * those lost, and the runs of consecutive lost source symbols (each leaves
 * a range that the block's write must fill).
 */
export async function feedBlocksInOrder(rx: BlockReceiving, enc: ObjectEncoder, rand: () => number, loss: number): Promise<{ sent: number; lost: number; lostSourceRuns: number }> {
  let sent = 0;
  let lost = 0;
  let lostSourceRuns = 0;
  for (let sbn = 0; sbn < enc.sourceBlocks && !rx.complete; sbn++) {
    const K = enc.sourceSymbols(sbn);
    let previousLost = false;
    for (let esi = 0; !rx.complete && rx.blockNeed(sbn) > 0 && esi < 3 * K; esi++) {
      if (rand() < loss) {
        lost++;
        if (esi < K && !previousLost) lostSourceRuns++;
        previousLost = true;
        continue;
      }
      previousLost = false;
      rx.add(alcPacket(enc, sbn, esi));
      if (++sent % 32 === 0) {
        rx.commitAll();
        await tick();
      }
    }
    rx.commitAll();
  }
  return { sent, lost, lostSourceRuns };
}

// ---------------------------------------------------------------- the fetch's parts --

/** One object to serve in a unit test: its encoder, OTI and digest. */
export interface TestObject {
  name: string;
  data: Buffer;
  enc: ObjectEncoder;
  oti: WireOti;
  sha256: Uint8Array;
}

export function testObject(name: string, data: Buffer, symbolSize = 256): TestObject {
  const enc = new ObjectEncoder(data, { symbolSize });
  return { name, data, enc, oti: wireOti(enc), sha256: createHash('sha256').update(data).digest() };
}

/**
 * The TOI 0 packets of one FDT instance listing `files` (TOI i + 1 for
 * files[i]): every source symbol and two repair symbols, with EXT_FDT and
 * EXT_FTI as a server sends them.
 */
export function fdtPackets(files: FdtFile[], o: { tsi?: number; instanceId?: number } = {}): AlcPacket[] {
  const xml = buildFdt({ expiresAtMs: 4_000_000_000_000, files });
  const enc = new ObjectEncoder(Buffer.from(xml), { symbolSize: 256 });
  const out: AlcPacket[] = [];
  for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) {
    for (let esi = 0; esi < enc.sourceSymbols(sbn) + 2; esi++) {
      out.push(alcPacket(enc, sbn, esi, { tsi: o.tsi ?? 1, toi: 0, withOti: true, fdtInstanceId: o.instanceId ?? 1 }));
    }
  }
  enc.close();
  return out;
}

/** The FDT entry of a test object. */
export function fdtFile(toi: number, obj: TestObject, o: { sha256?: Uint8Array; oti?: WireOti } = {}): FdtFile {
  return { toi: BigInt(toi), contentLocation: obj.name, oti: o.oti ?? obj.oti, sha256: o.sha256 ?? obj.sha256 };
}

/**
 * The FDT packets (fdtPackets) listing `obj` as TOI 1 on TSI 1, as the
 * bytes of datagrams, each with EXT_RQSEQ `sequence` if given.
 */
export function fdtBytes(obj: TestObject, o: { sequence?: number } = {}): Uint8Array[] {
  return fdtPackets([fdtFile(1, obj)], { tsi: 1 }).map((p) =>
    encodeAlc({ tsi: 1, toi: 0, sbn: p.sbn, esi: p.esi, symbols: p.payload, oti: p.oti, fdtInstanceId: p.fdt?.instanceId, sequence: o.sequence }),
  );
}

/** A sink that keeps the object in memory and checks its digest on commit. */
export class MemorySink implements ObjectSink {
  readonly bytes: Uint8Array;
  readonly path: string;
  blocksWritten = 0;
  committed = false;
  aborted = false;
  constructor(readonly object: SinkObject) {
    this.bytes = new Uint8Array(object.oti.transferLength);
    this.path = `memory:${object.name}`;
  }
  async writeBlock(_sbn: number, offset: number, data: Uint8Array): Promise<void> {
    this.bytes.set(data, offset);
    this.blocksWritten++;
  }
  async commit(): Promise<void> {
    const actual = createHash('sha256').update(this.bytes).digest();
    if (!actual.equals(Buffer.from(this.object.sha256))) throw new DigestMismatchError(this.object.name);
    this.committed = true;
  }
  async abort(): Promise<void> {
    this.aborted = true;
  }
}

export class MemorySinkFactory implements SinkFactory {
  readonly opened: MemorySink[] = [];
  open(object: SinkObject): MemorySink {
    if (object.name.includes('..')) throw new UnfetchableObjectError(object.name, '".." in the name');
    const s = new MemorySink(object);
    this.opened.push(s);
    return s;
  }
}

/** What an ObjectRegistry told its owner. */
export class RegistryLog implements ObjectRegistryEvents {
  readonly warnings: string[] = [];
  readonly failures: unknown[] = [];
  fdts = 0;
  readonly decoded: string[] = [];
  readonly verified: string[] = [];
  private waiters: (() => void)[] = [];
  warning(message: string): void {
    this.warnings.push(message);
  }
  failed(e: unknown): void {
    this.failures.push(e);
    this.wake();
  }
  fdtApplied(): void {
    this.fdts++;
  }
  objectDecoded(obj: RegisteredObject): void {
    this.decoded.push(obj.name);
  }
  objectVerified(obj: RegisteredObject): void {
    this.verified.push(obj.name);
    this.wake();
  }
  /** Resolves once `n` objects are verified (or something failed). */
  async verifiedCount(n: number): Promise<void> {
    while (this.verified.length < n && this.failures.length === 0) await new Promise<void>((r) => this.waiters.push(r));
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** A DataPath's session, as the test sets it (joined, left, ended, cookie), recording what the data path told it. */
export class RecordingDataPathOwner implements DataPathOwner {
  ended = false;
  joined = false;
  left = false;
  watching = false;
  readonly controls: ControlMessage[] = [];
  readonly sent: ControlMessage[] = [];
  readonly activities: number[] = [];
  readonly packets: PacketInfo[] = [];
  constructor(public cookie: Uint8Array | undefined) {}
  control(msg: ControlMessage): void {
    this.controls.push(msg);
  }
  send(msg: ControlMessage): void {
    this.sent.push(msg);
  }
  activity(now: number): void {
    this.activities.push(now);
  }
  watchingPackets(): boolean {
    return this.watching;
  }
  packet(info: PacketInfo): void {
    this.packets.push(info);
  }
}

/** Datagrams as a transport delivers them: laid end to end in one buffer, each with its source. */
export function datagrams(items: { bytes: Uint8Array; address: string; port: number }[], truncated = 0): Datagrams {
  const data = Buffer.concat(items.map((i) => Buffer.from(i.bytes)));
  const offsets: number[] = [];
  let at = 0;
  for (const i of items) {
    offsets.push(at);
    at += i.bytes.length;
  }
  return {
    count: items.length,
    data,
    truncated,
    offset: (i) => offsets[i],
    length: (i) => items[i].bytes.length,
    datagram: (i) => data.subarray(offsets[i], offsets[i] + items[i].bytes.length),
    address: (i) => items[i].address,
    port: (i) => items[i].port,
  };
}

// --------------------------------------------------------------------- test senders --

/** An object a test sender serves; `sha256` is the digest its FDT announces (default: the real one). */
export interface SenderObject {
  name: string;
  data: Uint8Array;
  sha256?: Uint8Array;
}

/** One object of a SenderCarousel (TOI 0: the FDT instance) and where its symbols have got to. */
export interface CarouselObject {
  toi: number;
  enc: ObjectEncoder;
  oti: WireOti;
  /** The next ESI of each block. */
  nextEsi: number[];
  /** The block whose turn is next. */
  sbn: number;
}

/**
 * What the test senders (FakeServer, GroupSender) send: some objects and
 * their FDT instance (TOI 0, listing TOI i + 1 for objects[i]), each
 * handing out fresh symbols, its blocks in turn, each block's ESIs
 * counting up.
 */
export class SenderCarousel {
  readonly objects: CarouselObject[];
  readonly fdt: CarouselObject;

  constructor(objects: SenderObject[], symbolSize: number, fdtChannels?: FdtChannel[], sourceBlocks?: number) {
    this.objects = objects.map((obj, i) => {
      const enc = new ObjectEncoder(obj.data, sourceBlocks === undefined ? { symbolSize } : { symbolSize, sourceBlocks });
      return { toi: i + 1, enc, oti: wireOti(enc), nextEsi: new Array(enc.sourceBlocks).fill(0), sbn: 0 };
    });
    const xml = buildFdt({
      expiresAtMs: 4_000_000_000_000,
      files: objects.map((obj, i) => ({
        toi: BigInt(i + 1),
        contentLocation: obj.name,
        oti: this.objects[i].oti,
        sha256: obj.sha256 ?? createHash('sha256').update(obj.data).digest(),
      })),
      ...(fdtChannels ? { channels: fdtChannels } : {}),
    });
    const fenc = new ObjectEncoder(Buffer.from(xml), { symbolSize });
    this.fdt = { toi: 0, enc: fenc, oti: wireOti(fenc), nextEsi: [0], sbn: 0 };
  }

  /** Turn `turn`'s object: the FDT every `fdtEvery`-th turn (and with no objects) unless `withholdFdt`, else the objects round-robin. */
  pick(turn: number, fdtEvery: number, withholdFdt = false): CarouselObject {
    const fdtTurn = turn % fdtEvery === 0 || this.objects.length === 0;
    if (fdtTurn && !withholdFdt) return this.fdt;
    return this.objects[turn % this.objects.length];
  }

  /**
   * The ALC packet of `s`'s next symbol on TSI `tsi` (the FDT's with its
   * OTI and instance ID 1), with EXT_RQSEQ `sequence` if given; `garbage`
   * puts 0xee bytes in place of the symbol.
   */
  packet(s: CarouselObject, tsi: number, sequence: number | undefined, garbage = false): Uint8Array {
    const sbn = s.sbn;
    s.sbn = (s.sbn + 1) % s.enc.sourceBlocks;
    const esi = s.nextEsi[sbn]++;
    let symbols = s.enc.packet(sbn, esi).subarray(4);
    if (garbage) symbols = new Uint8Array(symbols.length).fill(0xee);
    return encodeAlc({
      tsi,
      toi: s.toi,
      sbn,
      esi,
      symbols,
      oti: s.toi === 0 ? s.oti : undefined,
      fdtInstanceId: s.toi === 0 ? 1 : undefined,
      sequence,
    });
  }

  close(): void {
    for (const s of [...this.objects, this.fdt]) s.enc.close();
  }
}
