/**
 * A channel's stream: one endless sequence of ALC packets (RFC 5775), the
 * same for every member of the channel, built from the channel's objects.
 *
 * Schedule (what docs/PROTOCOL.md states):
 * - Stream position p = 0, 1, 2, ... ; EXT_RQSEQ carries p mod 2^32.
 * - Every `fdtInterval`-th packet (p % fdtInterval == 0, so p = 0 too) is a
 *   TOI 0 packet: one symbol of the channel's FDT instance (RFC 6726 §3.4),
 *   with EXT_FDT (instance id) and EXT_FTI (the FDT's RaptorQ OTI).
 * - All other packets visit the channel's source blocks (object by object,
 *   block by block: TOI order, SBN order) round-robin, `symbolsPerTurn`
 *   consecutive ESIs per block per turn (a channel with a single block takes
 *   it all the way to the next FDT packet). The ESIs come from the object's
 *   server-wide SymbolAllocator (symbol-allocator.ts): source symbols first,
 *   then repair symbols; in no-code mode a carousel of source symbols.
 * - Sliding window (`windowBlocks` W smaller than the channel's block count
 *   n): the round-robin visits only W blocks at a time. A block leaves the
 *   window once it has had ceil(K * (1 + passOverhead)) packets in this pass
 *   and the next block (cyclic order) is prepared; that block takes its
 *   place in the turn order. So every block comes back once per pass of the
 *   window over the channel, and the server holds W + 1 prepared blocks per
 *   channel (the window and the one it prepares next), whatever the size of
 *   the objects. With W >= n every block is always in the window.
 * - Each packet: LCT header (V=1, C=0, PSI=0, S=1, O=1, H=0, CP=6 = RaptorQ,
 *   CCI 0, TSI = channel id, TOI), extensions in the order EXT_FDT, EXT_FTI,
 *   EXT_RQSEQ, then the FEC Payload ID (SBN, ESI) and one T-byte symbol —
 *   byte for byte what encodeAlc() builds from the same fields.
 *
 * Packets are produced in batches: ESIs are taken in runs, and one native
 * call (packetsWithHeader) writes a run's finished packets into the staging
 * buffer, headers from per-TOI templates with the sequence number stamped;
 * each run of equally long packets goes to the replicator in one push. With one T for the channel,
 * every data packet has one length and every FDT packet another.
 *
 * A ring of recent segments (sequence range -> TOI, SBN, first ESI) maps the
 * sequence numbers of an ACK back to the blocks they carried, so a loss is
 * replaced by a fresh symbol of the same block (freshPackets), sent without
 * EXT_RQSEQ: it is no stream packet and must not be acknowledged as one.
 */
import { PAYLOAD_ID_SIZE } from '../fec/encoder';
import { FEC_ENCODING_ID_RAPTORQ } from '../protocol/alc';
import { LctHeaderExtension, fdtExtension, ftiExtension, lctHeaderLength, seqExtension, writeLctHeader } from '../protocol/lct';
import { Oti as WireOti } from '../protocol/oti';
import { PREPARING_FACTOR } from '../content/block-cache';
import { InvalidServerConfigError } from '../errors';
import { SymbolAllocator } from '../content/symbol-allocator';

/** What a stream needs from an encoder (ObjectEncoder satisfies it). */
export interface SymbolSource {
  readonly symbolSize: number;
  readonly sourceBlocks: number;
  sourceSymbols(sbn: number): number;
  /**
   * `count` finished packets with consecutive ESIs, back to back in `out`
   * from `offset`: `header` (with the 32-bit sequence number firstSeq + i
   * written at `seqAt`, unless -1), FEC Payload ID, symbol. Returns the
   * bytes written.
   */
  packetsWithHeader(out: Uint8Array, offset: number, header: Uint8Array, seqAt: number, firstSeq: number, sbn: number, firstEsi: number, count: number): number;
}

export interface StreamObject {
  toi: number;
  encoder: SymbolSource;
  /** Shared by every channel that carries this object. */
  allocator: SymbolAllocator;
}

export interface StreamFdt {
  instanceId: number;
  encoder: SymbolSource;
  allocator: SymbolAllocator;
  oti: WireOti;
}

/**
 * Which blocks must stay prepared (BlockCache satisfies it). The stream pins
 * the blocks of its window and the next one, and only lets a block into the
 * window once it is ready; ACK replacements are only made for ready blocks.
 */
export interface BlockPins {
  pin(source: SymbolSource, sbn: number): void;
  unpin(source: SymbolSource, sbn: number): void;
  ready(source: SymbolSource, sbn: number): boolean;
}

/** Encoders prepare blocks on demand: every block is always ready. */
const ON_DEMAND: BlockPins = { pin() {}, unpin() {}, ready: () => true };

/**
 * W for a channel whose blocks hold `costs` bytes each once prepared: all of
 * them if they fit `share`, else as many of the largest as fit next to the
 * one prepared ahead, which holds twice its size while it is being prepared
 * (PREPARING_FACTOR); at least 1.
 */
export function windowFor(costs: readonly number[], share: number): number {
  let total = 0;
  let largest = 0;
  for (const c of costs) {
    total += c;
    largest = Math.max(largest, c);
  }
  if (total <= share) return costs.length;
  return Math.max(1, Math.min(costs.length - 1, Math.floor(share / largest) - PREPARING_FACTOR));
}

export interface ChannelStreamOptions {
  /** The channel id: LCT TSI. */
  tsi: number;
  objects: readonly StreamObject[];
  fdt: StreamFdt;
  /** Consecutive symbols of one block per round-robin turn. Default 4. */
  symbolsPerTurn?: number;
  /** One FDT packet every this many packets (the first packet too). Default 32. */
  fdtInterval?: number;
  /** Segments remembered for ACK lookups (each covers up to symbolsPerTurn packets). Default 16384. */
  historySegments?: number;
  /** W, blocks sent at a time (see the sliding window above). Default: all of them. */
  windowBlocks?: number;
  /** Packets per block per pass of the window beyond K, as a fraction of K. Default 0.15. */
  passOverhead?: number;
  /** Default: encoders prepare blocks when first used, on the JS thread. */
  pins?: BlockPins;
}

/** Callback taking `count` packets of `packetSize` bytes laid end to end; returns how many it took. */
export type PushFn = (packets: Uint8Array, packetSize: number, count: number) => number;

export interface SymbolSlot {
  toi: number;
  sbn: number;
  esi: number;
}

export interface StreamCounters {
  packets: number;
  fdtPackets: number;
  freshPackets: number;
  /** Lost sequence numbers too old (or never sent) to map to a block. */
  freshUnknown: number;
  /** Lost packets of blocks no longer prepared (out of the window): not replaced. */
  freshSkipped: number;
  /** Blocks that entered the window (one per block per pass). */
  windowAdvances: number;
  /** Turns a block kept its window slot past its quota because the next block was not prepared yet. */
  windowStalls: number;
}

const SEQ_MOD = 2 ** 32;
/** Packets per block per pass of a sliding window beyond K, as a fraction of K. */
export const DEFAULT_PASS_OVERHEAD = 0.15;
/** One FDT packet in this many, unless configured (RqcastServer sets it from the rate). */
export const DEFAULT_FDT_INTERVAL = 32;
const FDT_INDEX = -1;
/** Packets staged per push chunk. */
const CHUNK = 256;

interface HeaderTemplate {
  bytes: Uint8Array;
  /** Offset of the 32-bit sequence number in the header, or -1. */
  seqAt: number;
}

interface Pending {
  bytes: Uint8Array;
  packetSize: number;
  count: number;
}

function template(tsi: number, toi: number, extensions: LctHeaderExtension[], withSeq: boolean): HeaderTemplate {
  const ext = withSeq ? [...extensions, seqExtension(0)] : extensions;
  const fields = { codepoint: FEC_ENCODING_ID_RAPTORQ, psi: 0, tsi, toi: BigInt(toi), extensions: ext };
  const bytes = new Uint8Array(lctHeaderLength(fields));
  writeLctHeader(fields, bytes, 0);
  // EXT_RQSEQ is written last: HET, HEL, 2 reserved bytes, then the u32.
  return { bytes, seqAt: withSeq ? bytes.length - 4 : -1 };
}

export class ChannelStream {
  readonly tsi: number;
  readonly symbolSize: number;
  /** Bytes of every data (TOI >= 1) stream packet. */
  readonly dataPacketSize: number;
  /** Bytes of every FDT (TOI 0) stream packet. */
  readonly fdtPacketSize: number;
  /** The largest stream packet: the replicator's slot size. */
  readonly slotSize: number;
  readonly counters: StreamCounters = { packets: 0, fdtPackets: 0, freshPackets: 0, freshUnknown: 0, freshSkipped: 0, windowAdvances: 0, windowStalls: 0 };
  /** W: blocks in the window (the channel's block count when everything is sent at once). */
  readonly windowBlocks: number;

  private readonly objects: readonly StreamObject[];
  private readonly fdt: StreamFdt;
  private readonly symbolsPerTurn: number;
  private readonly fdtInterval: number;
  /** Every (object index, sbn) in round-robin order. */
  private readonly blocks: { obj: number; sbn: number; quota: number }[] = [];
  /** The window: indices into `blocks`, in turn order. */
  private readonly window: number[] = [];
  /** Packets each window slot's block has had in this pass. */
  private readonly passSent: number[] = [];
  /** The block that enters the window next (pinned ahead, so it is being prepared). */
  private nextBlock = 0;
  private cursor = 0;
  private readonly pins: BlockPins;
  private state: 'new' | 'started' | 'closed' = 'new';
  private readonly streamHeaders: HeaderTemplate[];
  private readonly freshHeaders: HeaderTemplate[];
  private readonly fdtStream: HeaderTemplate;
  private readonly fdtFresh: HeaderTemplate;
  /** Unwrapped position of the next packet. */
  private position = 0;
  private readonly pending: Pending[] = [];
  private readonly staging: Uint8Array;

  // Segment history ring.
  private readonly hStart: Float64Array;
  private readonly hCount: Uint32Array;
  private readonly hObj: Int32Array;
  private readonly hSbn: Uint8Array;
  private readonly hEsi: Uint32Array;
  private hHead = 0; // index of the oldest
  private hSize = 0;

  constructor(options: ChannelStreamOptions) {
    this.tsi = options.tsi;
    this.objects = options.objects;
    this.fdt = options.fdt;
    this.symbolsPerTurn = options.symbolsPerTurn ?? 4;
    this.fdtInterval = options.fdtInterval ?? DEFAULT_FDT_INTERVAL;
    const history = options.historySegments ?? 16384;
    if (!Number.isInteger(this.symbolsPerTurn) || this.symbolsPerTurn < 1) {
      throw new InvalidServerConfigError('symbolsPerTurn must be a positive integer');
    }
    if (!Number.isInteger(this.fdtInterval) || this.fdtInterval < 2) {
      throw new InvalidServerConfigError('fdtInterval must be an integer >= 2');
    }
    if (!Number.isInteger(history) || history < 1) throw new InvalidServerConfigError('historySegments must be >= 1');
    this.symbolSize = this.fdt.encoder.symbolSize;
    for (const o of this.objects) {
      // One T per channel: every data packet has one length (one push size, one GSO segment size).
      if (o.encoder.symbolSize !== this.symbolSize) {
        throw new InvalidServerConfigError('every object of a channel must have the FDT symbol size');
      }
      if (!Number.isInteger(o.toi) || o.toi < 1) throw new InvalidServerConfigError('object TOIs must be >= 1');
    }
    const overhead = options.passOverhead ?? DEFAULT_PASS_OVERHEAD;
    if (!(Number.isFinite(overhead) && overhead >= 0)) throw new InvalidServerConfigError('passOverhead must be >= 0');
    this.objects.forEach((o, obj) => {
      for (let sbn = 0; sbn < o.encoder.sourceBlocks; sbn++) {
        this.blocks.push({ obj, sbn, quota: Math.max(1, Math.ceil(o.encoder.sourceSymbols(sbn) * (1 + overhead))) });
      }
    });
    const w = options.windowBlocks ?? this.blocks.length;
    if (!Number.isInteger(w) || w < 1) throw new InvalidServerConfigError('windowBlocks must be a positive integer');
    this.windowBlocks = Math.min(w, this.blocks.length);
    this.pins = options.pins ?? ON_DEMAND;
    for (let i = 0; i < this.windowBlocks; i++) {
      this.window.push(i);
      this.passSent.push(0);
    }
    this.nextBlock = this.windowBlocks % Math.max(1, this.blocks.length);
    this.streamHeaders = this.objects.map((o) => template(this.tsi, o.toi, [], true));
    this.freshHeaders = this.objects.map((o) => template(this.tsi, o.toi, [], false));
    const fdtExt = [fdtExtension(this.fdt.instanceId), ftiExtension(this.fdt.oti)];
    this.fdtStream = template(this.tsi, 0, fdtExt, true);
    this.fdtFresh = template(this.tsi, 0, fdtExt, false);
    const payload = PAYLOAD_ID_SIZE + this.symbolSize;
    this.fdtPacketSize = this.fdtStream.bytes.length + payload;
    this.dataPacketSize = this.blocks.length > 0 ? this.streamHeaders[0].bytes.length + payload : this.fdtPacketSize;
    this.slotSize = Math.max(this.fdtPacketSize, this.dataPacketSize);
    this.staging = new Uint8Array(CHUNK * this.slotSize);
    this.hStart = new Float64Array(history);
    this.hCount = new Uint32Array(history);
    this.hObj = new Int32Array(history);
    this.hSbn = new Uint8Array(history);
    this.hEsi = new Uint32Array(history);
  }

  /** Whether the window is smaller than the channel (blocks come and go). */
  get sliding(): boolean {
    return this.windowBlocks < this.blocks.length;
  }

  /** The blocks in the window now, as (TOI, SBN), in turn order. */
  get windowContents(): { toi: number; sbn: number }[] {
    return this.window.map((i) => ({ toi: this.objects[this.blocks[i].obj].toi, sbn: this.blocks[i].sbn }));
  }

  /**
   * Pins the first window and the block after it (their preparation starts
   * now). Called by the first fill() if not before; a server calls it early
   * to wait for the blocks before it starts sending.
   */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'started';
    for (const i of this.window) this.pin(i);
    if (this.sliding) this.pin(this.nextBlock);
  }

  /** Unpins everything this stream pinned; fill() builds nothing afterwards. */
  close(): void {
    if (this.state === 'started') {
      for (const i of this.window) this.unpin(i);
      if (this.sliding) this.unpin(this.nextBlock);
    }
    this.state = 'closed';
  }

  private pin(i: number): void {
    const b = this.blocks[i];
    this.pins.pin(this.objects[b.obj].encoder, b.sbn);
  }

  private unpin(i: number): void {
    const b = this.blocks[i];
    this.pins.unpin(this.objects[b.obj].encoder, b.sbn);
  }

  /** Window slot `slot` has had its quota: its block leaves, the next one (if ready) comes in. */
  private advance(slot: number): void {
    const next = this.blocks[this.nextBlock];
    if (!this.pins.ready(this.objects[next.obj].encoder, next.sbn)) {
      this.counters.windowStalls++;
      return;
    }
    this.unpin(this.window[slot]);
    this.window[slot] = this.nextBlock;
    this.passSent[slot] = 0;
    this.nextBlock = (this.nextBlock + 1) % this.blocks.length;
    this.pin(this.nextBlock);
    this.counters.windowAdvances++;
  }

  /** EXT_RQSEQ of the next packet built (one past the last one built). */
  get nextSequence(): number {
    return this.position % SEQ_MOD;
  }

  /** Packets built but not yet accepted by the replicator. */
  get pendingPackets(): number {
    let n = 0;
    for (const p of this.pending) n += p.count;
    return n;
  }

  /**
   * Builds up to `max` more packets of the stream and hands them to `push`,
   * one call per run of equally long packets. Packets `push` does not take
   * stay pending (their sequence numbers are assigned) and go first next
   * time. Returns the packets `push` took.
   */
  fill(max: number, push: PushFn): number {
    if (this.state === 'closed') return 0;
    this.start();
    let taken = 0;
    while (this.pending.length > 0 && taken < max) {
      const p = this.pending[0];
      const n = push(p.bytes, p.packetSize, p.count);
      taken += n;
      if (n < p.count) {
        this.pending[0] = { bytes: p.bytes.subarray(n * p.packetSize), packetSize: p.packetSize, count: p.count - n };
        return taken;
      }
      this.pending.shift();
    }
    while (taken < max) {
      const runs = this.build(Math.min(CHUNK, max - taken));
      for (let i = 0; i < runs.length; i++) {
        const r = runs[i];
        const n = push(r.bytes, r.packetSize, r.count);
        taken += n;
        if (n < r.count) {
          // Copy: the staging buffer is reused by the next build.
          this.pending.push({ bytes: r.bytes.slice(n * r.packetSize), packetSize: r.packetSize, count: r.count - n });
          for (let j = i + 1; j < runs.length; j++) this.pending.push({ ...runs[j], bytes: runs[j].bytes.slice() });
          return taken;
        }
      }
    }
    return taken;
  }

  /** Builds `count` (<= CHUNK) packets into the staging buffer as runs of one size. */
  private build(count: number): Pending[] {
    const runs: Pending[] = [];
    const out = this.staging;
    let at = 0;
    let runStart = 0;
    let runSize = 0;
    let runCount = 0;
    const closeRun = (): void => {
      if (runCount > 0) runs.push({ bytes: out.subarray(runStart, at), packetSize: runSize, count: runCount });
      runStart = at;
      runCount = 0;
    };
    let built = 0;
    while (built < count) {
      const toFdt = this.fdtInterval - (this.position % this.fdtInterval);
      let obj: number;
      let sbn: number;
      let want: number;
      let allocator: SymbolAllocator;
      let source: SymbolSource;
      let header: HeaderTemplate;
      let passSlot = -1;
      if (this.position % this.fdtInterval === 0 || this.blocks.length === 0) {
        obj = FDT_INDEX;
        sbn = this.fdtBlock();
        want = 1;
        allocator = this.fdt.allocator;
        source = this.fdt.encoder;
        header = this.fdtStream;
      } else {
        const slot = this.cursor;
        const b = this.blocks[this.window[slot]];
        obj = b.obj;
        sbn = b.sbn;
        want = Math.min(this.window.length === 1 ? toFdt : Math.min(this.symbolsPerTurn, toFdt), count - built);
        if (this.sliding) {
          // Stop at the quota, so that the block leaves exactly there when it can.
          const left = b.quota - this.passSent[slot];
          if (left > 0) want = Math.min(want, left);
        }
        allocator = this.objects[obj].allocator;
        source = this.objects[obj].encoder;
        header = this.streamHeaders[obj];
        this.cursor = (this.cursor + 1) % this.window.length;
        passSlot = slot;
      }
      const range = allocator.take(sbn, want);
      const size = header.bytes.length + PAYLOAD_ID_SIZE + this.symbolSize;
      if (size !== runSize) {
        closeRun();
        runSize = size;
      }
      this.remember(this.position, range.count, obj, sbn, range.firstEsi);
      // One native call writes the run's finished packets: no per-packet JS.
      at += source.packetsWithHeader(out, at, header.bytes, header.seqAt, this.position % SEQ_MOD, sbn, range.firstEsi, range.count);
      this.position += range.count;
      runCount += range.count;
      built += range.count;
      if (passSlot >= 0 && this.sliding) {
        this.passSent[passSlot] += range.count;
        if (this.passSent[passSlot] >= this.blocks[this.window[passSlot]].quota) this.advance(passSlot);
      }
      if (obj === FDT_INDEX) this.counters.fdtPackets += range.count;
      this.counters.packets += range.count;
    }
    closeRun();
    return runs;
  }

  /** FDT blocks in turn (an FDT is almost always one block). */
  private fdtCursor = 0;
  private fdtBlock(): number {
    const sbn = this.fdtCursor;
    this.fdtCursor = (this.fdtCursor + 1) % this.fdt.allocator.sourceBlocks;
    return sbn;
  }

  private remember(start: number, count: number, obj: number, sbn: number, esi: number): void {
    const cap = this.hStart.length;
    let i: number;
    if (this.hSize < cap) {
      i = (this.hHead + this.hSize) % cap;
      this.hSize++;
    } else {
      i = this.hHead;
      this.hHead = (this.hHead + 1) % cap;
    }
    this.hStart[i] = start;
    this.hCount[i] = count;
    this.hObj[i] = obj;
    this.hSbn[i] = sbn;
    this.hEsi[i] = esi;
  }

  /** Which symbol the stream packet with EXT_RQSEQ `seq` carried, if still remembered. */
  lookup(seq: number): SymbolSlot | undefined {
    const hit = this.find(seq);
    if (hit === undefined) return undefined;
    const obj = this.hObj[hit.index];
    return { toi: obj === FDT_INDEX ? 0 : this.objects[obj].toi, sbn: this.hSbn[hit.index], esi: this.hEsi[hit.index] + hit.offset };
  }

  private find(seq: number): { index: number; offset: number } | undefined {
    if (!Number.isInteger(seq) || seq < 0 || seq >= SEQ_MOD || this.hSize === 0) return undefined;
    // Unwrap relative to the next position: a lost packet was built before it.
    const back = (((this.position - seq) % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
    if (back === 0) return undefined;
    const u = this.position - back;
    const cap = this.hStart.length;
    let lo = 0;
    let hi = this.hSize - 1;
    if (u < this.hStart[this.hHead]) return undefined;
    // Last segment starting at or before u.
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.hStart[(this.hHead + mid) % cap] <= u) lo = mid;
      else hi = mid - 1;
    }
    const index = (this.hHead + lo) % cap;
    const offset = u - this.hStart[index];
    if (offset >= this.hCount[index]) return undefined;
    return { index, offset };
  }

  /**
   * Replacement packets for lost stream packets: for each sequence number
   * still remembered, one packet of the same block carrying a fresh symbol
   * (coded mode: the next ESI of the block's shared counter, so no stream
   * ever sent it; no-code mode: the lost source symbol itself, the only one
   * that can help). They carry no EXT_RQSEQ. Unknown ones are counted.
   */
  freshPackets(lost: readonly number[]): Uint8Array[] {
    // Group by block so each block's ESIs come in one allocation.
    const groups = new Map<number, { obj: number; sbn: number; esis: number[] }>();
    for (const seq of lost) {
      const hit = this.find(seq);
      if (hit === undefined) {
        this.counters.freshUnknown++;
        continue;
      }
      const obj = this.hObj[hit.index];
      const sbn = this.hSbn[hit.index];
      if (obj !== FDT_INDEX && !this.pins.ready(this.objects[obj].encoder, sbn)) {
        // Out of the window and released: preparing it again for one packet
        // would cost a whole block's solve; it comes back in the next pass.
        this.counters.freshSkipped++;
        continue;
      }
      const key = (obj + 1) * 256 + sbn;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { obj, sbn, esis: [] }));
      g.esis.push(this.hEsi[hit.index] + hit.offset);
    }
    const out: Uint8Array[] = [];
    const payloadSize = PAYLOAD_ID_SIZE + this.symbolSize;
    for (const g of groups.values()) {
      const isFdt = g.obj === FDT_INDEX;
      const allocator = isFdt ? this.fdt.allocator : this.objects[g.obj].allocator;
      const source = isFdt ? this.fdt.encoder : this.objects[g.obj].encoder;
      const header = isFdt ? this.fdtFresh : this.freshHeaders[g.obj];
      const emit = (firstEsi: number, count: number): void => {
        const size = header.bytes.length + payloadSize;
        const run = new Uint8Array(count * size);
        source.packetsWithHeader(run, 0, header.bytes, -1, 0, g.sbn, firstEsi, count);
        for (let i = 0; i < count; i++) out.push(run.subarray(i * size, (i + 1) * size));
      };
      if (allocator.mode === 'carousel') {
        for (const esi of g.esis) emit(esi, 1);
      } else {
        let need = g.esis.length;
        while (need > 0) {
          const r = allocator.take(g.sbn, need);
          emit(r.firstEsi, r.count);
          need -= r.count;
        }
      }
    }
    this.counters.freshPackets += out.length;
    return out;
  }
}
