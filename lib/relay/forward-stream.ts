/**
 * ForwardStream: a forward relay's channel stream (docs/PROTOCOL.md §10.13).
 * It encodes no object: every data packet it sends is an upstream packet's
 * FEC Payload ID and symbols, unchanged (same SBN, same ESI, same bytes),
 * under this relay's own LCT header (its TSI, its TOI for the object,
 * its own EXT_RQSEQ). Its FDT instances list the upstream's objects under
 * the same names, lengths, OTIs and SHA-256 digests, with the relay's TOIs;
 * each upstream instance that changes what is listed (or whether the FDT is
 * complete) gives a new instance here.
 *
 * - Packets are built as they arrive (forward) and handed to the replicator
 *   at once (the server's refill, once per turn of the event loop): the
 *   relay adds no schedule of its own, so a live stream's latency through
 *   it is the time to receive and resend a packet, not a pass.
 * - One FDT packet goes before every `fdtInterval` data packets (a coded
 *   carousel of the current instance's symbols), so a client that joins
 *   learns the objects as long as upstream sends.
 * - Bounded: at most `maxQueued` packets wait for the ring; beyond that the
 *   oldest are dropped and counted (a relay slower than its upstream loses
 *   the oldest symbols, which the next ones replace).
 * - No replacements (§10.5): the relay holds no symbol of its own to answer
 *   an ACK with; a lost packet is covered by the next ones.
 * - A new FDT instance goes out at once as a burst of its K source symbols
 *   and two more (a client drops a new object's symbols until it has the
 *   instance listing it), then the upstream packets held for the objects it
 *   lists: a new live segment's first symbols reach the relay before the
 *   upstream instance announcing it (bounded: maxQueued held, oldest go).
 * - Hostile upstream input: a packet of an object no FDT instance lists
 *   (held, then dropped), or whose symbols are not a whole number of the object's T (or
 *   would not fit a slot), is dropped and counted, never sent on.
 */
import { ObjectEncoder } from '../fec/encoder';
import { buildFdt } from '../protocol/fdt-build';
import type { FdtChannel, FdtFile } from '../protocol/fdt';
import { fdtExtension, ftiExtension } from '../protocol/lct';
import { type Oti as WireOti } from '../protocol/oti';
import { headerTemplate, type HeaderTemplate } from '../stream/header-template';
import type { StreamCounters } from '../stream/channel-stream';
import type { PushFn } from '../stream/packet-builder';
import type { ServedStream } from '../stream/served-stream';
import { LIVE_FDT_INTERVAL } from '../server/live-channel';

const SEQ_MOD = 2 ** 32;
/** FDT instance IDs are 20 bits and never 0 here (RFC 6726 §3.4.1). */
const FDT_INSTANCE_MOD = 1 << 20;
/** ESIs are 24 bits (RFC 6330 §3.2). */
const ESI_MOD = 1 << 24;
/** Bytes of the FEC Payload ID (RFC 6330 §3.2). */
const PAYLOAD_ID_BYTES = 4;

/** One FDT packet before this many data packets: a live channel's cadence, as forward mode is above all for live channels. */
export const FORWARD_FDT_INTERVAL = LIVE_FDT_INTERVAL;
/** Packets waiting for the ring, at most. */
export const FORWARD_MAX_QUEUED = 256;

/** What a forward stream counts beyond a stream's counters. */
export interface ForwardCounters {
  /** Upstream data packets sent on. */
  forwarded: number;
  /** Upstream packets of an object the current FDT instance does not list (held, then dropped once the next instance does not list them either, or the hold is full). */
  unlisted: number;
  /** Of those, packets sent on after all: the next FDT instance listed their object. */
  released: number;
  /** Upstream packets whose symbols are not a whole number of T, or too long for a slot. */
  malformed: number;
  /** Built packets dropped because the ring did not take them in time (oldest first). */
  overflow: number;
  /** FDT instances announced. */
  instances: number;
}

export interface ForwardStreamOptions {
  tsi: number;
  /** T of the upstream's objects: a packet carries up to maxSymbolsPerPacket symbols of T bytes. */
  symbolSize: number;
  /** The relay's channels (rq:Channel of every FDT instance). */
  channels: readonly FdtChannel[];
  /** The server's refill of this channel. */
  refill: () => void;
  /** Symbols per forwarded packet, at most (upstream rqcast servers send 1). Default 1. */
  maxSymbolsPerPacket?: number;
  fdtInterval?: number;
  maxQueued?: number;
  /** The first FDT instance ID (default 1). */
  firstInstanceId?: number;
}

interface Listed {
  /** The relay's TOI. */
  toi: number;
  header: HeaderTemplate;
  symbolSize: number;
}

/** The key an object keeps across FDT instances: the same name, digest and OTI (§10.12). */
function objectKey(name: string, f: FdtFile): string {
  const o = f.oti as WireOti;
  return `${name}\u0000${Buffer.from(f.sha256 ?? new Uint8Array()).toString('hex')}\u0000${o.transferLength}/${o.symbolSize}/${o.sourceBlocks}/${o.subBlocks}/${o.alignment}`;
}

export class ForwardStream implements ServedStream {
  readonly tsi: number;
  readonly slotSize: number;
  readonly windowBlocks = 0;
  readonly sliding = false;
  readonly counters: StreamCounters = { packets: 0, fdtPackets: 0, freshPackets: 0, freshUnknown: 0, freshSkipped: 0, windowAdvances: 0, windowStalls: 0 };
  readonly forward: ForwardCounters = { forwarded: 0, unlisted: 0, released: 0, malformed: 0, overflow: 0, instances: 0 };

  private readonly o: ForwardStreamOptions;
  private readonly fdtInterval: number;
  private readonly maxQueued: number;
  private readonly maxPayload: number;
  /** Upstream TOI -> what this relay sends it as (the current instance's). */
  private byUpstreamToi = new Map<number, Listed>();
  /** Object key -> the relay's TOI, for as long as the relay runs (an object keeps its TOI across instances). */
  private readonly tois = new Map<string, number>();
  private nextToi = 1;
  private instanceId: number;
  private fdt?: { encoder: ObjectEncoder; header: HeaderTemplate; blocks: number; esi: number[]; sbn: number; packetSize: number; signature: string };
  private queue: Uint8Array[] = [];
  private head = 0;
  private position = 0;
  private sinceFdt = 0;
  /** Packets of TOIs the current instance does not list, oldest first (a new segment's symbols arrive before the instance that lists it). */
  private held: { toi: number; sbn: number; esi: number; symbols: Uint8Array }[] = [];
  private kickPending = false;
  private closed = false;

  constructor(o: ForwardStreamOptions) {
    if (!(Number.isInteger(o.symbolSize) && o.symbolSize >= 1 && o.symbolSize <= 65535)) throw new RangeError('symbolSize must be 1..65535');
    this.o = o;
    this.tsi = o.tsi;
    this.fdtInterval = o.fdtInterval ?? FORWARD_FDT_INTERVAL;
    this.maxQueued = o.maxQueued ?? FORWARD_MAX_QUEUED;
    this.instanceId = o.firstInstanceId ?? 1;
    this.maxPayload = o.symbolSize * (o.maxSymbolsPerPacket ?? 1);
    // The longest LCT header this stream builds: a data header with the widest TOI (32 bits) and EXT_RQSEQ, or an FDT header.
    const dataHeader = headerTemplate(o.tsi, 2 ** 32 - 1, [], true).bytes.length;
    const fdtHeader = headerTemplate(o.tsi, 0, [fdtExtension(1), ftiExtension({ transferLength: 1, symbolSize: o.symbolSize, sourceBlocks: 1, subBlocks: 1, alignment: 1 })], true).bytes.length;
    this.slotSize = Math.max(dataHeader + PAYLOAD_ID_BYTES + this.maxPayload, fdtHeader + PAYLOAD_ID_BYTES + o.symbolSize);
  }

  /** The relay's TOI of the object the upstream sends as `upstreamToi` (current FDT instance), if listed. */
  toiOf(upstreamToi: number): number | undefined {
    return this.byUpstreamToi.get(upstreamToi)?.toi;
  }

  /** The FDT instance ID announced now (undefined before the first upstream instance). */
  get currentInstanceId(): number | undefined {
    return this.fdt ? this.instanceId : undefined;
  }

  /**
   * An upstream FDT instance: `files` (each already checked for a name, an
   * OTI and a digest) with their upstream TOIs. A new instance of our own
   * is made when what is listed or `complete` changed.
   */
  announce(files: readonly { name: string; file: FdtFile }[], complete: boolean | undefined, expiresAtMs: number): void {
    if (this.closed) return;
    const byUpstream = new Map<number, Listed>();
    const listed: FdtFile[] = [];
    for (const { name, file } of files) {
      const key = objectKey(name, file);
      let toi = this.tois.get(key);
      if (toi === undefined) this.tois.set(key, (toi = this.nextToi++));
      const oti = file.oti as WireOti;
      byUpstream.set(Number(file.toi), { toi, header: headerTemplate(this.tsi, toi, [], true), symbolSize: oti.symbolSize });
      listed.push({ ...file, toi: BigInt(toi) });
    }
    this.byUpstreamToi = byUpstream;
    const signature = JSON.stringify([complete, listed.map((f) => [f.toi.toString(), f.contentLocation])]);
    if (this.fdt?.signature === signature) return;
    if (this.fdt) this.instanceId = (this.instanceId % (FDT_INSTANCE_MOD - 1)) + 1;
    const xml = buildFdt({ expiresAtMs, ...(complete !== undefined ? { complete } : {}), files: listed, channels: [...this.o.channels] });
    const encoder = new ObjectEncoder(new TextEncoder().encode(xml), { symbolSize: this.o.symbolSize });
    const oti = encoder.otiInfo;
    const header = headerTemplate(this.tsi, 0, [fdtExtension(this.instanceId), ftiExtension({ transferLength: oti.F, symbolSize: oti.T, sourceBlocks: oti.Z, subBlocks: oti.N, alignment: oti.Al })], true);
    this.fdt?.encoder.close();
    const blocks = encoder.sourceBlocks;
    this.fdt = { encoder, header, blocks, esi: new Array<number>(blocks).fill(0), sbn: 0, packetSize: header.bytes.length + PAYLOAD_ID_BYTES + oti.T, signature };
    this.forward.instances++;
    // A new instance goes out at once, in a burst of as many packets as it has source symbols and two more: a client
    // learns of a new object (a live segment) from it, and drops that object's symbols until it has (§10.7).
    let burst = 2;
    for (let sbn = 0; sbn < blocks; sbn++) burst += encoder.sourceSymbols(sbn);
    for (let i = 0; i < burst; i++) this.pushFdtPacket();
    // Then what arrived for the objects it lists before it did; the rest waits for the next instance.
    const held = this.held;
    this.held = [];
    for (const h of held) {
      if (this.byUpstreamToi.has(h.toi)) {
        this.forward.released++;
        this.packet(h.toi, h.sbn, h.esi, h.symbols);
      } else this.hold(h);
    }
    this.kick();
  }

  /** One upstream data packet of upstream TOI `upstreamToi`: sent on (queued), or dropped and counted. */
  packet(upstreamToi: number, sbn: number, esi: number, symbols: Uint8Array): void {
    if (this.closed) return;
    const obj = this.byUpstreamToi.get(upstreamToi);
    if (!obj || !this.fdt) {
      this.forward.unlisted++;
      this.hold({ toi: upstreamToi, sbn, esi, symbols: symbols.slice() });
      return;
    }
    const n = symbols.length;
    if (n === 0 || n % obj.symbolSize !== 0 || n > this.maxPayload) {
      this.forward.malformed++;
      return;
    }
    if (this.sinceFdt >= this.fdtInterval) this.pushFdtPacket();
    const h = obj.header;
    const out = new Uint8Array(h.bytes.length + PAYLOAD_ID_BYTES + n);
    out.set(h.bytes, 0);
    this.stamp(out, h.seqAt);
    const at = h.bytes.length;
    out[at] = sbn & 0xff;
    out[at + 1] = (esi >>> 16) & 0xff;
    out[at + 2] = (esi >>> 8) & 0xff;
    out[at + 3] = esi & 0xff;
    out.set(symbols, at + PAYLOAD_ID_BYTES);
    this.enqueue(out);
    this.sinceFdt++;
    this.forward.forwarded++;
    this.kick();
  }

  get unwrappedPosition(): number {
    return this.position;
  }

  get nextSequence(): number {
    return this.position % SEQ_MOD;
  }

  get pendingPackets(): number {
    return this.queue.length - this.head;
  }

  start(): void {}

  close(): void {
    this.closed = true;
    this.held = [];
    this.queue = [];
    this.head = 0;
    this.fdt?.encoder.close();
  }

  /** Hands the queued packets to `push`, runs of one length at a time; what it does not take stays queued. */
  fill(max: number, push: PushFn): number {
    let taken = 0;
    while (taken < max && this.head < this.queue.length) {
      const size = this.queue[this.head].length;
      let end = this.head + 1;
      while (end < this.queue.length && end - this.head < max - taken && this.queue[end].length === size) end++;
      const count = end - this.head;
      const run = new Uint8Array(size * count);
      for (let i = 0; i < count; i++) run.set(this.queue[this.head + i], i * size);
      const n = push(run, size, count);
      taken += n;
      this.head += n;
      if (n < count) break;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return taken;
  }

  /** A forward relay answers no ACK with a replacement: it has no symbol of its own (§10.13). */
  freshPackets(lost: readonly number[]): Uint8Array[] {
    this.counters.freshSkipped += lost.length;
    return [];
  }

  /** One packet of the current FDT instance: the next ESI of the next block, round-robin. */
  private pushFdtPacket(): void {
    const f = this.fdt as NonNullable<ForwardStream['fdt']>;
    const sbn = f.sbn;
    f.sbn = (f.sbn + 1) % f.blocks;
    const esi = f.esi[sbn];
    f.esi[sbn] = (esi + 1) % ESI_MOD;
    const out = new Uint8Array(f.packetSize);
    f.encoder.packetsWithHeader(out, 0, f.header.bytes, f.header.seqAt, this.position % SEQ_MOD, sbn, esi, 1);
    this.position++;
    this.counters.packets++;
    this.counters.fdtPackets++;
    this.enqueue(out);
    this.sinceFdt = 0;
  }

  private stamp(out: Uint8Array, seqAt: number): void {
    const seq = this.position % SEQ_MOD;
    out[seqAt] = (seq >>> 24) & 0xff;
    out[seqAt + 1] = (seq >>> 16) & 0xff;
    out[seqAt + 2] = (seq >>> 8) & 0xff;
    out[seqAt + 3] = seq & 0xff;
    this.position++;
    this.counters.packets++;
  }

  /** Keeps an unlisted packet for the next instance, at most maxQueued of them (the oldest go). */
  private hold(h: { toi: number; sbn: number; esi: number; symbols: Uint8Array }): void {
    if (h.symbols.length === 0 || h.symbols.length > this.maxPayload) return;
    this.held.push(h);
    if (this.held.length > this.maxQueued) this.held.shift();
  }

  private enqueue(p: Uint8Array): void {
    this.queue.push(p);
    const over = this.queue.length - this.head - this.maxQueued;
    if (over > 0) {
      this.head += over;
      this.forward.overflow += over;
    }
  }

  /** The server's refill, once per turn of the event loop however many packets arrived in it. */
  private kick(): void {
    if (this.kickPending) return;
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      if (!this.closed) this.o.refill();
    });
  }
}
