/**
 * A channel's stream: one endless sequence of ALC packets (RFC 5775), the
 * same for every member of the channel, built from the channel's objects.
 *
 * ChannelStream wires four parts, each in its own file:
 * - schedule.ts: which block the next packets carry (FDT cadence,
 *   round-robin, sliding window with per-pass quotas and pins);
 * - the object's SymbolAllocator (lib/content): which ESIs, from the
 *   block's server-wide counter (source symbols first, then repair; in
 *   no-code mode a carousel of source symbols);
 * - header-template.ts and packet-builder.ts: the packets' bytes — LCT
 *   header templates per TOI with EXT_RQSEQ stamped, written by one native
 *   call per run of ESIs into a staging buffer, handed to the replicator as
 *   runs of equally long packets, what it did not take kept pending;
 * - symbol-history.ts: which (TOI, SBN, ESI) each sequence number carried,
 *   so that a lost packet an ACK reports is replaced by a fresh symbol of
 *   the same block (freshPackets), sent without EXT_RQSEQ: it is no stream
 *   packet and must not be acknowledged as one.
 *
 * EXT_RQSEQ of the packet at stream position p is p mod 2^32. Objects are
 * BlockSources (lib/content/block-source.ts): only sealed blocks are sent,
 * and blocks sealed later join the round-robin. docs/PROTOCOL.md §10.3–10.5
 * state the schedule and the replacements.
 */
import type { BlockSealing, BlockSymbols } from '../content/block-source';
import { sealedBlocks, sealingOf } from '../content/block-source';
import type { SymbolAllocator } from '../content/symbol-allocator';
import { InvalidServerConfigError } from '../errors';
import { Oti as WireOti } from '../protocol/oti';
import { ChannelHeaders, FDT_OBJECT } from './header-template';
import { PacketRun, PendingRuns, PushFn, RunBuilder, packetSize, replacementPackets } from './packet-builder';
import type { NeedEntry } from '../protocol/messages';
import { NEED_LOSS_SCALE } from '../protocol/control-header';
import { NeedTable, type BlockNeed, type NeedTableCounters } from './need-table';
import { BlockGate, FDT_TURN, ScheduledBlock, StreamSchedule } from './schedule';
import { DEFAULT_PASS_OVERHEAD, passQuota } from './window-size';
import { SymbolHistory } from './symbol-history';

export { DEFAULT_FDT_INTERVAL } from './schedule';
export { DEFAULT_PASS_OVERHEAD, IN_ORDER_WINDOW, PREPARE_AHEAD_PACKETS, windowFor } from './window-size';
export type { PushFn } from './packet-builder';

/** What a stream reads from a block source (ObjectEncoder satisfies it): BlockSymbols. */
export type SymbolSource = BlockSymbols;

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
  /** W, blocks sent at a time (see the sliding window in schedule.ts). Default: all of them. */
  windowBlocks?: number;
  /** Packets per block per pass of the window beyond K, as a fraction of K. Default 0.15. */
  passOverhead?: number;
  /**
   * While sliding, the blocks after the next one are pinned too until their
   * quotas reach this many packets (window-size.ts, PREPARE_AHEAD_PACKETS, which
   * RqcastServer passes). Default 0: the next block alone.
   */
  prepareAheadPackets?: number;
  /** Default: encoders prepare blocks when first used, on the JS thread. */
  pins?: BlockPins;
  /**
   * Stream position (EXT_RQSEQ, unwrapped) of the first packet. Default 0.
   * A stream that replaces another on the same channel (the server withdrew
   * an object, a live channel's window moved) goes on from the old one's
   * unwrappedPosition, so that a client's ACK windows keep moving forward.
   */
  firstSequence?: number;
  /**
   * Passes by need (need-table.ts, docs/PROTOCOL.md §7a): the stream keeps
   * its members' NEED reports and a sliding window ends a block's pass once
   * none of them needs more of it. Default false: fixed passes.
   */
  needs?: boolean;
  /**
   * With needs, a stream that has no member and gets one starts its cycle
   * again at block 0 (StreamSchedule.restartCycle), so that the newcomer
   * gets the blocks in order (their digest as they decode, their playout)
   * as from a new stream. For a unicast stream, whose members are all its
   * destinations; not a group's (listeners the server does not know).
   * Default false.
   */
  restartOnFirstMember?: boolean;
}

/** A NEED report as the stream takes it (the client manager checked who sent it). */
export interface NeedReport {
  /** EXT_RQSEQ: the highest the member had received. */
  rqseq: number;
  /** Its loss field, in 1/NEED_LOSS_SCALE. */
  loss: number;
  entries: readonly NeedEntry[];
}

/** What the stream made of a NEED report. */
export interface NeedVerdict {
  /** Applied (false: from no destination of the stream, or older than the member's last report). */
  applied: boolean;
  /** Blocks named that the stream does not send (unknown TOI or SBN): ignored. */
  unknownBlocks: number;
  /** Blocks whose need was above their K: taken as K. */
  clamped: number;
}

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
  /** Needs (ChannelStreamOptions.needs): passes ended before their quota, blocks skipped, repair packets. */
  passesEndedEarly?: number;
  blocksSkipped?: number;
  repairPackets?: number;
  /** NEED reports applied, dropped as older than the member's last, dated ahead of the stream, older than the ledger (need-table.ts). */
  needReports?: number;
  needStale?: number;
  needAhead?: number;
  needBeyondLedger?: number;
  /** Blocks NEED reports named that the stream does not send (ignored), and needs above K (taken as K). */
  needUnknownBlocks?: number;
  needClamped?: number;
}

const SEQ_MOD = 2 ** 32;

export class ChannelStream {
  readonly tsi: number;
  readonly symbolSize: number;
  /** Bytes of the longest data (TOI >= 1) stream packet: every one's when the TSI and every TOI fit 16 bits, or none does (header-template.ts). */
  readonly dataPacketSize: number;
  /** Bytes of every FDT (TOI 0) stream packet. */
  readonly fdtPacketSize: number;
  /** The largest stream packet: the replicator's slot size. */
  readonly slotSize: number;
  readonly counters: StreamCounters = { packets: 0, fdtPackets: 0, freshPackets: 0, freshUnknown: 0, freshSkipped: 0, windowAdvances: 0, windowStalls: 0 };

  private readonly objects: readonly StreamObject[];
  private readonly fdt: StreamFdt;
  private readonly pins: BlockPins;
  private readonly schedule: StreamSchedule;
  private readonly headers: ChannelHeaders;
  private readonly builder: RunBuilder;
  private readonly pending = new PendingRuns();
  private readonly history: SymbolHistory;
  private readonly passOverhead: number;
  private readonly stopSealing: (() => void)[] = [];
  private closed = false;
  /** Unwrapped position of the next packet. */
  private position = 0;
  /** Members' needs (ChannelStreamOptions.needs). */
  private readonly needTable?: NeedTable;
  private readonly restartOnFirstMember: boolean;
  /** (object index * 256 + SBN) -> schedule index, for NEED entries. */
  private readonly blockIndex = new Map<number, number>();
  /** TOI -> object index. */
  private readonly objectOfToi = new Map<number, number>();

  constructor(options: ChannelStreamOptions) {
    this.tsi = options.tsi;
    this.objects = options.objects;
    this.fdt = options.fdt;
    this.symbolSize = this.fdt.encoder.symbolSize;
    for (const o of this.objects) {
      // One T per channel: every data packet has one length (one push size, one GSO segment size).
      if (o.encoder.symbolSize !== this.symbolSize) {
        throw new InvalidServerConfigError('every object of a channel must have the FDT symbol size');
      }
      if (!Number.isInteger(o.toi) || o.toi < 1) throw new InvalidServerConfigError('object TOIs must be >= 1');
    }
    this.passOverhead = options.passOverhead ?? DEFAULT_PASS_OVERHEAD;
    if (!(Number.isFinite(this.passOverhead) && this.passOverhead >= 0)) throw new InvalidServerConfigError('passOverhead must be >= 0');
    this.history = new SymbolHistory(options.historySegments);
    this.pins = options.pins ?? ON_DEMAND;
    this.position = options.firstSequence ?? 0;
    if (!(Number.isSafeInteger(this.position) && this.position >= 0)) throw new InvalidServerConfigError('firstSequence must be an integer >= 0');
    const blocks: ScheduledBlock[] = [];
    this.objects.forEach((o, obj) => {
      this.objectOfToi.set(o.toi, obj);
      for (const sbn of sealedBlocks(o.encoder)) {
        this.blockIndex.set(obj * 256 + sbn, blocks.length);
        blocks.push(this.scheduled(obj, sbn));
      }
    });
    if (options.needs === true) {
      Object.assign(this.counters, { needReports: 0, needStale: 0, needAhead: 0, needBeyondLedger: 0, needUnknownBlocks: 0, needClamped: 0 });
      this.needTable = new NeedTable(undefined, this.counters as NeedTableCounters);
    }
    this.restartOnFirstMember = options.restartOnFirstMember === true;
    this.schedule = new StreamSchedule({
      blocks,
      fdtBlocks: this.fdt.allocator.sourceBlocks,
      symbolsPerTurn: options.symbolsPerTurn,
      fdtInterval: options.fdtInterval,
      windowBlocks: options.windowBlocks,
      prepareAheadPackets: options.prepareAheadPackets,
      gate: this.gate(),
      counters: this.counters,
      needs: this.needTable,
    });
    this.headers = new ChannelHeaders(this.tsi, this.objects.map((o) => o.toi), this.fdt);
    this.fdtPacketSize = packetSize(this.headers.stream(FDT_OBJECT), this.symbolSize);
    this.dataPacketSize = this.objects.reduce((most, _o, obj) => Math.max(most, packetSize(this.headers.stream(obj), this.symbolSize)), 0) || this.fdtPacketSize;
    this.slotSize = Math.max(this.fdtPacketSize, this.dataPacketSize);
    this.builder = new RunBuilder(this.slotSize);
    this.objects.forEach((o, obj) => this.followSealing(sealingOf(o.encoder), obj));
  }

  /** W: blocks in the window (the channel's block count when everything is sent at once). */
  get windowBlocks(): number {
    return this.schedule.windowBlocks;
  }

  /** Whether the window is smaller than the channel (blocks come and go). */
  get sliding(): boolean {
    return this.schedule.sliding;
  }

  /** The blocks in the window now, as (TOI, SBN), in turn order. */
  get windowContents(): { toi: number; sbn: number }[] {
    return this.schedule.windowContents.map((b) => ({ toi: this.objects[b.obj].toi, sbn: b.sbn }));
  }

  /**
   * Pins the first window and the block after it (their preparation starts
   * now). Called by the first fill() if not before; a server calls it early
   * to wait for the blocks before it starts sending.
   */
  start(): void {
    if (!this.closed) this.schedule.start();
  }

  /** Unpins everything this stream pinned; fill() builds nothing afterwards. */
  close(): void {
    this.closed = true;
    for (const stop of this.stopSealing.splice(0)) stop();
    this.schedule.close();
  }

  /** Position of the next packet built, not wrapped (a stream taking over from this one starts there). */
  get unwrappedPosition(): number {
    return this.position;
  }

  /** EXT_RQSEQ of the next packet built (one past the last one built). */
  get nextSequence(): number {
    return this.position % SEQ_MOD;
  }

  /** Packets built but not yet accepted by the replicator. */
  get pendingPackets(): number {
    return this.pending.packets;
  }

  /**
   * Builds up to `max` more packets of the stream and hands them to `push`,
   * one call per run of equally long packets. Packets `push` does not take
   * stay pending (their sequence numbers are assigned) and go first next
   * time. Returns the packets `push` took.
   */
  fill(max: number, push: PushFn): number {
    if (this.closed) return 0;
    this.start();
    const offered = this.pending.offer(push, max);
    let taken = offered.taken;
    if (offered.blocked) return taken;
    while (taken < max) {
      const runs = this.build(Math.min(this.builder.capacity, max - taken));
      for (let i = 0; i < runs.length; i++) {
        const r = runs[i];
        const n = push(r.bytes, r.packetSize, r.count);
        taken += n;
        if (n < r.count) {
          this.pending.keep(runs, i, n);
          return taken;
        }
      }
    }
    return taken;
  }

  /** Which symbol the stream packet with EXT_RQSEQ `seq` carried, if still remembered. */
  lookup(seq: number): SymbolSlot | undefined {
    const hit = this.history.at(seq);
    if (hit === undefined) return undefined;
    return { toi: hit.source === FDT_OBJECT ? 0 : this.objects[hit.source].toi, sbn: hit.sbn, esi: hit.esi };
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
      const hit = this.history.at(seq);
      if (hit === undefined) {
        this.counters.freshUnknown++;
        continue;
      }
      const { source: obj, sbn } = hit;
      if (obj !== FDT_OBJECT && !this.pins.ready(this.objects[obj].encoder, sbn)) {
        // Out of the window and released: preparing it again for one packet
        // would cost a whole block's solve; it comes back in the next pass.
        this.counters.freshSkipped++;
        continue;
      }
      const key = (obj + 1) * 256 + sbn;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { obj, sbn, esis: [] }));
      g.esis.push(hit.esi);
    }
    const out: Uint8Array[] = [];
    for (const g of groups.values()) {
      const { encoder, allocator } = this.sourceOf(g.obj);
      const header = this.headers.fresh(g.obj);
      for (const r of allocator.replacements(g.sbn, g.esis)) {
        for (const p of replacementPackets(encoder, header, this.symbolSize, g.sbn, r)) out.push(p);
      }
    }
    this.counters.freshPackets += out.length;
    return out;
  }

  /** `member` (a peer key) became a destination: until it reports, its needs are unknown (fixed passes). */
  expectNeed(member: string): void {
    const first = this.needTable?.memberCount === 0;
    this.needTable?.expect(member);
    if (first && this.restartOnFirstMember) this.schedule.restartCycle();
  }

  /** `member` is no longer a destination: its needs no longer count, its state is dropped. */
  forgetNeed(member: string): void {
    this.needTable?.forget(member);
  }

  /**
   * A NEED report from `member` (docs/PROTOCOL.md §7a): each entry's blocks
   * resolved to this stream's; blocks it does not send are ignored and
   * needs above K taken as K, both counted in the verdict.
   */
  reportNeed(member: string, report: NeedReport): NeedVerdict {
    const verdict: NeedVerdict = { applied: false, unknownBlocks: 0, clamped: 0 };
    if (this.needTable === undefined) return verdict;
    const blocks: BlockNeed[] = [];
    for (const e of report.entries) {
      const obj = this.objectOfToi.get(e.toi);
      for (let sbn = e.firstSbn; sbn <= e.lastSbn; sbn++) {
        const block = obj === undefined ? undefined : this.blockIndex.get(obj * 256 + sbn);
        if (block === undefined) {
          verdict.unknownBlocks++;
          continue;
        }
        const K = this.objects[obj as number].encoder.sourceSymbols(sbn);
        let need = e.need;
        if (need > K) {
          verdict.clamped++;
          need = K;
        }
        blocks.push({ block, need });
      }
    }
    verdict.applied = this.needTable.report(member, report.rqseq, report.loss / NEED_LOSS_SCALE, blocks);
    (this.counters.needUnknownBlocks as number) += verdict.unknownBlocks;
    (this.counters.needClamped as number) += verdict.clamped;
    return verdict;
  }

  /** Builds `count` (<= the builder's capacity) packets into the staging buffer as runs of one size. */
  private build(count: number): PacketRun[] {
    this.builder.begin();
    let built = 0;
    while (built < count) {
      const turn = this.schedule.next(this.position, count - built);
      const obj = turn.block === FDT_TURN ? FDT_OBJECT : this.schedule.block(turn.block).obj;
      const { encoder, allocator } = this.sourceOf(obj);
      const range = allocator.take(turn.sbn, turn.want);
      this.history.record(this.position, range.count, obj, turn.sbn, range.firstEsi, range.stride);
      // One native call writes the run's finished packets: no per-packet JS.
      this.builder.write(encoder, this.headers.stream(obj), this.symbolSize, this.position % SEQ_MOD, turn.sbn, range);
      this.needTable?.built(turn.block, this.position, range.count);
      this.position += range.count;
      built += range.count;
      this.schedule.sent(turn, range.count);
      if (obj === FDT_OBJECT) this.counters.fdtPackets += range.count;
      this.counters.packets += range.count;
    }
    return this.builder.end();
  }

  private sourceOf(obj: number): { encoder: SymbolSource; allocator: SymbolAllocator } {
    return obj === FDT_OBJECT ? this.fdt : this.objects[obj];
  }

  private scheduled(obj: number, sbn: number): ScheduledBlock {
    return { obj, sbn, quota: passQuota(this.objects[obj].encoder.sourceSymbols(sbn), this.passOverhead) };
  }

  /** The schedule's blocks, by index, as the pins see them: (source, SBN). */
  private gate(): BlockGate {
    const byIndex =
      <R>(f: (source: SymbolSource, sbn: number) => R) =>
      (i: number): R => {
        const b = this.schedule.block(i);
        return f(this.objects[b.obj].encoder, b.sbn);
      };
    return {
      pin: byIndex((source, sbn) => this.pins.pin(source, sbn)),
      unpin: byIndex((source, sbn) => this.pins.unpin(source, sbn)),
      ready: byIndex((source, sbn) => this.pins.ready(source, sbn)),
    };
  }

  /** Blocks an object's source seals from now on join the schedule (and the object's allocator). */
  private followSealing(sealing: BlockSealing, obj: number): void {
    const o = this.objects[obj];
    this.stopSealing.push(
      sealing.onSealed((sbn) => {
        if (this.closed) return;
        o.allocator.addBlock(sbn, o.encoder.sourceSymbols(sbn));
        this.blockIndex.set(obj * 256 + sbn, this.schedule.add(this.scheduled(obj, sbn)));
      }),
    );
  }
}
