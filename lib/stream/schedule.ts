/**
 * The stream schedule: which block the next packets of a channel's stream
 * carry, and how many of them in a row. It decides only that — no encoder,
 * no ESI, no bytes (ChannelStream asks the allocator and the packet builder
 * for those) — so every rule below is tested on its own.
 *
 * - Stream position p = 0, 1, 2, …. Every `fdtInterval`-th position
 *   (p % fdtInterval == 0, so p = 0 too) is an FDT turn: one packet of the
 *   channel's FDT instance (RFC 6726 §3.4), its blocks in turn; by need,
 *   while every member has reported, every FDT_SPARSE_FACTOR·fdtInterval-th
 *   after the last one (fdt-cadence.ts).
 * - Every other position belongs to a round-robin turn over the blocks of
 *   the window: `symbolsPerTurn` packets of one block per turn, never past
 *   the next FDT position (a window of one block takes it all the way to the
 *   next FDT packet).
 * - Shares by need: every block of the window counts its packets of this
 *   pass against its quota, ceil(K * (1 + passOverhead)), and a turn stops
 *   at the quota. With every block in the window (plain round-robin, W >=
 *   n), a block that has had its quota sits out until every block has had
 *   its own; then a new pass begins. So over a pass each block gets its
 *   quota, and a block's share of the data packets is its quota's share
 *   (about K / sum of K), not 1/n: a 1-byte object beside a 3 MB one gets
 *   2 packets of every ~2 700, not a third of the channel.
 * - Sliding window (W = `windowBlocks` smaller than the block count n): only
 *   W blocks take turns. A block leaves once it has had its quota,
 *   ceil(K * (1 + passOverhead)) packets, in this pass and the next block
 *   (cyclic order, skipping blocks still in the window) is ready; that block
 *   takes its slot in the turn order. So
 *   every block comes back once per pass, and W + 1 blocks are pinned: the
 *   window and the one prepared next. With W >= n every block is always in
 *   the window and nothing moves.
 * - Blocks sealed later (a live source) are appended to the cyclic order.
 *   While the window has room (fewer than W blocks) an appended block is
 *   pinned and joins it at the first turn it is ready; otherwise it waits
 *   for its turn in the cycle like any other block.
 *
 * Blocks are numbered by their index in the order they were added; the
 * BlockGate pins, unpins and reports readiness by that index.
 */
import { FdtCadence } from './fdt-cadence';
import { InvalidServerConfigError } from '../errors';

/** One FDT packet in this many, unless configured (RqcastServer sets it from the rate). */
export const DEFAULT_FDT_INTERVAL = 32;
/** Consecutive packets of one block per round-robin turn. */
export const DEFAULT_SYMBOLS_PER_TURN = 4;
/** Turn.block of an FDT turn. */
export const FDT_TURN = -1;
/**
 * What the members of the stream still need (need-table.ts; docs/PROTOCOL.md
 * §7a), by block index. The schedule asks it only while sliding.
 */
export interface BlockNeeds {
  /**
   * Packets of block `index` some member still needs, or undefined when
   * that is not known (no member, or one that has not reported on it): then
   * the fixed quota rules.
   */
  wanted(index: number): number | undefined;
  /** Blocks that reports raised above what was built since the last call (repair candidates). */
  takeRaised(): number[];
  /** Changes whenever any answer of wanted() may have changed. */
  readonly version: number;
  /** Whether there is a member and every member has reported (so holds the FDT instance: fdt-cadence.ts). */
  readonly everyoneReported: boolean;
}

/** Turn.slot of a repair turn. */
export const REPAIR_SLOT = -2;

/** Preparation of the scheduled blocks, by block index (ChannelStream maps it to BlockPins). */
export interface BlockGate {
  pin(block: number): void;
  unpin(block: number): void;
  ready(block: number): boolean;
}

export interface ScheduledBlock {
  /** The object's index in the channel. */
  readonly obj: number;
  readonly sbn: number;
  /** Packets per pass of a sliding window (passQuota). */
  readonly quota: number;
}

export interface ScheduleOptions {
  /** The blocks known at the start, in round-robin order (object by object, SBN order). */
  blocks: readonly ScheduledBlock[];
  /** Source blocks of the FDT instance (almost always 1). */
  fdtBlocks: number;
  symbolsPerTurn?: number;
  fdtInterval?: number;
  /** W. Default: every block, however many are added. */
  windowBlocks?: number;
  gate: BlockGate;
  /** Counted into (ChannelStream passes its StreamCounters). Default: its own. */
  counters?: ScheduleCounters;
  /**
   * While sliding, also pin the blocks after the next one until their quotas
   * and its own reach this many packets (PREPARE_AHEAD_PACKETS). Default 0:
   * the next block alone.
   */
  prepareAheadPackets?: number;
  /**
   * What the members still need (need-table.ts). While sliding, a block's
   * pass ends as soon as no member needs more of it and a needed block can
   * take its slot (never after its quota), a block nobody needs is skipped
   * (skipUnwanted: never for another such block), and a block whose pass ended this cycle
   * that a report shows still needed gets repair turns within what is left
   * of its quota and, lent, of its next pass's (which then sends that much
   * less). Default: none, every pass is its fixed quota.
   */
  needs?: BlockNeeds;
}

/** What the next packets carry. */
export interface Turn {
  /** Index of the block (as added), or FDT_TURN. */
  readonly block: number;
  /** SBN: of that block, or of the FDT block whose turn it is. */
  readonly sbn: number;
  /** Packets wanted in a row (>= 1); the caller may send fewer (sent() says how many). */
  readonly want: number;
  /** The window slot the turn belongs to, -1 for an FDT turn, REPAIR_SLOT for a repair turn. */
  readonly slot: number;
}

export interface ScheduleCounters {
  /** Blocks that entered the window (one per block per pass). */
  windowAdvances: number;
  /** Turns a block kept its window slot past its quota because the next block was not prepared yet. */
  windowStalls: number;
  /** Passes that ended before their quota because no member needed more (needs). */
  passesEndedEarly?: number;
  /** Blocks skipped because no member needed them (needs). */
  blocksSkipped?: number;
  /** Repair turns: packets of a block whose pass had ended, for a member still short (needs). */
  repairPackets?: number;
}

export class StreamSchedule {
  readonly symbolsPerTurn: number;
  readonly fdtInterval: number;
  readonly counters: ScheduleCounters;
  private readonly blocks: ScheduledBlock[] = [];
  /** W as configured (Infinity: every block). */
  private readonly windowLimit: number;
  /** The window: block indices, in turn order. */
  private readonly window: number[] = [];
  /** Packets each window slot's block has had in this pass. */
  private readonly passSent: number[] = [];
  /** Blocks added while the window had room, pinned, waiting to be ready. */
  private readonly admitting: number[] = [];
  /** The block that enters the window next (pinned ahead, so it is being prepared) while sliding. */
  private nextBlock = 0;
  /** Blocks after nextBlock, in cyclic order, pinned ahead too (prepareAheadPackets). */
  private prefetch: number[] = [];
  private readonly prepareAheadPackets: number;
  private cursor = 0;
  private readonly fdtBlocks: number;
  private fdtCursor = 0;
  private readonly fdt: FdtCadence;
  private readonly gate: BlockGate;
  private state: 'new' | 'started' | 'closed' = 'new';
  private readonly needs?: BlockNeeds;
  /** Packets of each block in its current pass, window and repair turns (needs only). */
  private readonly blockPass: number[] = [];
  /** Per window slot: some member needed its block (or was unknown) at a turn of this pass (needs only). */
  private readonly passWanted: boolean[] = [];
  /** Blocks whose pass ended in this cycle of the order (needs only): repair candidates. */
  private readonly ended = new Set<number>();
  /** Blocks waiting for repair turns, ascending (not pinned: served while the cache holds them). */
  private repairs: number[] = [];
  /** needs.version when `othersWanted` was computed, and its answer. */
  private wantedVersion = -1;
  private anyWanted = true;
  /** needs.version when neededNext() last picked nextBlock again. */
  private nextPickedAt = -1;
  /** restartCycle: the window slot whose pass ends once block 0 is ready. */
  private restartSlot?: number;

  constructor(options: ScheduleOptions) {
    this.symbolsPerTurn = options.symbolsPerTurn ?? DEFAULT_SYMBOLS_PER_TURN;
    this.fdtInterval = options.fdtInterval ?? DEFAULT_FDT_INTERVAL;
    if (!Number.isInteger(this.symbolsPerTurn) || this.symbolsPerTurn < 1) {
      throw new InvalidServerConfigError('symbolsPerTurn must be a positive integer');
    }
    if (!Number.isInteger(this.fdtInterval) || this.fdtInterval < 2) {
      throw new InvalidServerConfigError('fdtInterval must be an integer >= 2');
    }
    const w = options.windowBlocks ?? Infinity;
    if (w !== Infinity && (!Number.isInteger(w) || w < 1)) throw new InvalidServerConfigError('windowBlocks must be a positive integer');
    if (!Number.isInteger(options.fdtBlocks) || options.fdtBlocks < 1) throw new InvalidServerConfigError('an FDT has at least one source block');
    this.windowLimit = w;
    this.prepareAheadPackets = options.prepareAheadPackets ?? 0;
    if (!(Number.isInteger(this.prepareAheadPackets) && this.prepareAheadPackets >= 0)) {
      throw new InvalidServerConfigError('prepareAheadPackets must be an integer >= 0');
    }
    this.counters = options.counters ?? { windowAdvances: 0, windowStalls: 0 };
    this.fdtBlocks = options.fdtBlocks;
    this.gate = options.gate;
    this.needs = options.needs;
    const needs = this.needs;
    this.fdt = new FdtCadence(this.fdtInterval, needs && (() => needs.everyoneReported));
    if (this.needs !== undefined) {
      this.counters.passesEndedEarly ??= 0;
      this.counters.blocksSkipped ??= 0;
      this.counters.repairPackets ??= 0;
    }
    this.blocks.push(...options.blocks);
    // The first W blocks: the server waits for them (start, then the cache) before it sends.
    for (let i = 0; i < Math.min(this.windowLimit, this.blocks.length); i++) {
      this.window.push(i);
      this.passSent.push(0);
    }
    this.nextBlock = this.window.length % Math.max(1, this.blocks.length);
  }

  /** Blocks in the window now (every block when nothing slides). */
  get windowBlocks(): number {
    return this.window.length;
  }

  /** Blocks in the cyclic order. */
  get blockCount(): number {
    return this.blocks.length;
  }

  /** Whether the window is smaller than the channel (blocks come and go). */
  get sliding(): boolean {
    return this.window.length + this.admitting.length < this.blocks.length;
  }

  block(index: number): ScheduledBlock {
    return this.blocks[index];
  }

  /** The blocks in the window now, in turn order. */
  get windowContents(): readonly ScheduledBlock[] {
    return this.window.map((i) => this.blocks[i]);
  }

  /** Pins the first window and the block after it (their preparation starts now). */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'started';
    for (const i of this.window) this.gate.pin(i);
    for (const i of this.admitting) this.gate.pin(i);
    if (this.sliding) this.gate.pin(this.nextBlock);
    this.refreshPrefetch();
  }

  /** Unpins everything the schedule pinned; nothing is added afterwards. */
  close(): void {
    if (this.state === 'started') {
      for (const i of this.window) this.gate.unpin(i);
      for (const i of this.admitting) this.gate.unpin(i);
      if (this.sliding) this.gate.unpin(this.nextBlock);
      for (const i of this.prefetch) this.gate.unpin(i);
      this.prefetch = [];
      this.repairs = [];
    }
    this.state = 'closed';
  }

  /**
   * Appends a block (sealed after the schedule was made) to the cyclic
   * order; returns its index. It joins the window when there is room and it
   * is ready, or comes in its turn of the cycle.
   */
  add(block: ScheduledBlock): number {
    const index = this.blocks.length;
    if (this.state === 'closed') return index;
    const wasSliding = this.sliding;
    this.blocks.push(block);
    if (this.window.length + this.admitting.length < this.windowLimit) {
      if (this.state === 'new') {
        // Like the first window: pinned by start(), waited for by the server.
        this.window.push(index);
        this.passSent.push(0);
      } else {
        this.admitting.push(index);
        this.gate.pin(index);
      }
    } else if (!wasSliding || (this.nextBlock === 0 && this.window.includes(index - 1))) {
      // The window held the whole cycle, or its run ended at the last block:
      // after the last block now comes the new one, not block 0.
      if (wasSliding && this.state === 'started') this.gate.unpin(this.nextBlock);
      this.nextBlock = index;
      if (this.state === 'started') this.gate.pin(index);
    }
    this.refreshPrefetch();
    return index;
  }

  /**
   * The cycle starts again at block 0, as a new stream's does (sliding, with needs; ChannelStream: a stream without
   * members gets one): block 0 comes next, the pass at the cursor ends once it is ready, and that block comes round
   * in the cycle (no repair turn).
   */
  restartCycle(): void {
    if (this.state !== 'started' || !this.sliding || this.needs === undefined || this.window.includes(0) || this.admitting.length > 0) return;
    if (this.nextBlock !== 0) this.pickNext(0);
    this.restartSlot = this.cursor;
  }

  /** The turn at stream position `position`, at most `max` (>= 1) packets. */
  next(position: number, max: number): Turn {
    this.admit();
    const restart = this.restartSlot;
    if (restart !== undefined && (this.window.includes(0) || this.nextBlock !== 0 || this.gate.ready(0))) {
      this.restartSlot = undefined;
      const leaving = this.window[restart];
      if (!this.window.includes(0) && this.nextBlock === 0 && this.advance(restart)) this.ended.delete(leaving);
    }
    const toFdt = this.fdt.toNext(position);
    if (toFdt === 0 || this.window.length === 0) {
      const sbn = this.fdtCursor;
      this.fdtCursor = (this.fdtCursor + 1) % this.fdtBlocks;
      this.fdt.sent(position);
      return { block: FDT_TURN, sbn, want: 1, slot: -1 };
    }
    const byNeed = this.needs !== undefined && this.sliding && this.state === 'started';
    if (byNeed) {
      const repair = this.repairTurn(Math.min(toFdt, max));
      if (repair !== undefined) return repair;
      this.skipUnwanted();
    }
    const slot = this.counting ? this.slotWithQuotaLeft() : this.cursor;
    const index = this.window[slot];
    const b = this.blocks[index];
    let want = Math.min(this.window.length === 1 ? toFdt : Math.min(this.symbolsPerTurn, toFdt), max);
    if (this.counting) {
      // Stop at the quota: a sliding block leaves exactly there when it can,
      // a plain one sits out the rest of the pass.
      const left = b.quota - this.passSent[slot];
      if (left > 0) want = Math.min(want, left);
    }
    if (byNeed) {
      // And at what the members still need (a block that could not leave keeps its turns).
      const w = (this.needs as BlockNeeds).wanted(index);
      if (w !== undefined && w > 0) want = Math.min(want, w);
      if (w !== 0) this.passWanted[slot] = true;
    }
    this.cursor = (slot + 1) % this.window.length;
    return { block: index, sbn: b.sbn, want, slot };
  }

  /** `count` packets of `turn` were built: counts them against the block's quota, which may move the window. */
  sent(turn: Turn, count: number): void {
    if (turn.block !== FDT_TURN && this.needs !== undefined) this.blockPass[turn.block] = (this.blockPass[turn.block] ?? 0) + count;
    if (turn.slot === REPAIR_SLOT) {
      (this.counters.repairPackets as number) += count;
      return;
    }
    if (turn.slot < 0 || !this.counting) return;
    this.passSent[turn.slot] += count;
    if (!this.sliding) return;
    const index = this.window[turn.slot];
    if (this.passSent[turn.slot] >= this.blocks[index].quota) this.advance(turn.slot);
    else if (
      this.needs !== undefined &&
      this.state === 'started' &&
      (this.passWanted[turn.slot] || this.unwanted(index)) &&
      this.needs.wanted(index) === 0 &&
      this.neededNext() &&
      this.advance(turn.slot)
    ) {
      (this.counters.passesEndedEarly as number)++;
    }
  }

  /**
   * A repair turn (needs): the first block waiting for repair (ascending)
   * that is still prepared, some member still needs and has quota left in
   * its pass or, lent, in its next one (all but one packet of it); blocks no
   * longer needed, unknown or at that bound leave the queue. Reports that
   * raised a block whose pass ended this cycle put it in the queue. A
   * repair pins nothing: a block the cache has released is not prepared
   * again for a repair (that would cost a whole block's solve and memory
   * beyond the window's budget); it waits for its next pass, and for a
   * repair while the cache still holds it.
   */
  private repairTurn(room: number): Turn | undefined {
    const needs = this.needs as BlockNeeds;
    for (const b of needs.takeRaised()) {
      if (!this.ended.has(b) || this.repairs.includes(b) || this.window.includes(b)) continue;
      this.repairs.push(b);
      this.repairs.sort((x, y) => x - y);
    }
    for (let k = 0; k < this.repairs.length; ) {
      const b = this.repairs[k];
      const w = needs.wanted(b);
      // What is left of this pass's quota, and up to all but one packet of
      // the next pass's, lent now (advance() counts it in that pass): a
      // late joiner short of a block gets it at once instead of a pass later.
      const left = 2 * this.blocks[b].quota - 1 - (this.blockPass[b] ?? 0);
      if (w === undefined || w <= 0 || left <= 0) {
        this.repairs.splice(k, 1);
        continue;
      }
      if (!this.gate.ready(b)) {
        k++;
        continue;
      }
      return { block: b, sbn: this.blocks[b].sbn, want: Math.min(room, w, left), slot: REPAIR_SLOT };
    }
    return undefined;
  }

  /**
   * Needs: a turn does not go to a block no member needs (every member
   * reported 0 for it) while some block of the channel is still needed or
   * unknown. From the cursor on, such a block leaves at once (its pass
   * ends, or it is skipped if it had no packet yet) if a needed block can
   * take its slot (nextBlock, picked again if the needs changed, and
   * prepared); otherwise the turn moves on to the window's next slot.
   * Replacing it by another unneeded block would be no progress: done at
   * every turn, it cost a scan of the cycle, pins and unpins per few
   * packets. When no slot holds a needed block the turn stays at the
   * cursor. A channel nobody needs anything of keeps its fixed passes: the
   * stream is never empty, and a member that joins finds it going.
   */
  private skipUnwanted(): void {
    const w = this.window.length;
    const start = this.cursor;
    for (let k = 0; k < w; k++) {
      const slot = this.cursor;
      if (!this.unwanted(this.window[slot])) return;
      const started = this.passSent[slot] > 0;
      if (this.neededNext() && this.advance(slot)) {
        // Its pass ends here as it would after its next turn (sent()).
        if (started) (this.counters.passesEndedEarly as number)++;
        else (this.counters.blocksSkipped as number)++;
        return;
      }
      this.cursor = (slot + 1) % w;
    }
    this.cursor = start;
  }

  /**
   * Needs, while sliding: whether nextBlock is a block some member needs (or
   * one not known), after picking it again if the needs changed since it was
   * picked and made it unneeded. The old pick is unpinned and the new one
   * pinned (being prepared: it can enter once ready).
   */
  private neededNext(): boolean {
    if (!this.unwanted(this.nextBlock)) return true;
    const needs = this.needs as BlockNeeds;
    if (this.nextPickedAt === needs.version) return false;
    this.nextPickedAt = needs.version;
    const next = this.firstNeeded(this.nextBlock);
    if (next === this.nextBlock) return false;
    this.pickNext(next);
    return true;
  }

  /** `next` enters next instead of nextBlock. Unpinned first: a prepared block no one pins is what the cache releases to make room for the new one, within the memory budget. */
  private pickNext(next: number): void {
    this.gate.unpin(this.nextBlock);
    this.gate.pin(next);
    this.nextBlock = next;
    this.refreshPrefetch();
  }

  /** Whether turns count against quotas: a sliding window, or a plain one of several blocks (a lone block needs no share). */
  private get counting(): boolean {
    return this.sliding || this.window.length > 1;
  }

  /**
   * From the cursor on, the first slot whose block has quota left in this
   * pass. A sliding window never skips (a block at its quota that could not
   * leave keeps its turns, windowStalls). A plain window skips the blocks
   * that have had their quota; when every block has had it, a new pass
   * begins (every count back to 0) at the cursor.
   */
  private slotWithQuotaLeft(): number {
    if (this.sliding) return this.cursor;
    const n = this.window.length;
    for (let k = 0; k < n; k++) {
      const slot = (this.cursor + k) % n;
      if (this.passSent[slot] < this.blocks[this.window[slot]].quota) return slot;
    }
    this.passSent.fill(0);
    return this.cursor;
  }

  /**
   * Needs: from `from` on in cyclic order (outside the window), the first
   * block not known to be unneeded, so that a block every member has is not
   * prepared only to be skipped; `from` itself if there is none.
   */
  private firstNeeded(from: number): number {
    const n = this.blocks.length;
    let skipped = 0;
    for (let k = 0; k < n; k++) {
      const i = (from + k) % n;
      if (this.window.includes(i)) continue;
      if (!this.unwanted(i)) {
        (this.counters.blocksSkipped as number) += skipped;
        return i;
      }
      skipped++;
    }
    return from;
  }

  /**
   * Needs: no member needs block `index` any more (each reported it
   * complete, or has what is built), and some block of the channel is still
   * needed or unknown. When nothing at all is needed, passes stay fixed.
   */
  private unwanted(index: number): boolean {
    const needs = this.needs as BlockNeeds;
    if (needs.wanted(index) !== 0) return false;
    if (this.wantedVersion !== needs.version) {
      this.wantedVersion = needs.version;
      this.anyWanted = this.blocks.some((_, i) => needs.wanted(i) !== 0);
    }
    return this.anyWanted;
  }

  /**
   * Window slot `slot` has had its quota: its block leaves, the next one (if
   * ready) comes in. Not while blocks added to a window with room are still
   * being admitted: they come before the next block in the cycle.
   */
  private advance(slot: number): boolean {
    if (this.admitting.length > 0 || !this.gate.ready(this.nextBlock)) {
      this.counters.windowStalls++;
      return false;
    }
    const leaving = this.window[slot];
    this.gate.unpin(leaving);
    this.window[slot] = this.nextBlock;
    this.passSent[slot] = 0;
    this.passWanted[slot] = false;
    if (this.needs !== undefined) {
      // The leaving block's pass is over for this cycle; the entering one starts its own.
      this.ended.add(leaving);
      const entering = this.nextBlock;
      this.ended.delete(entering);
      // Repair packets beyond its last pass's quota were lent by this pass (repairTurn): they count in it.
      const lent = Math.max(0, (this.blockPass[entering] ?? 0) - this.blocks[entering].quota);
      this.blockPass[entering] = lent;
      this.passSent[slot] = lent;
      const r = this.repairs.indexOf(entering);
      if (r >= 0) this.repairs.splice(r, 1);
    }
    // The cycle may come back round to a block still in the window (one with
    // a large quota beside small ones): it keeps its slot and its count for
    // this pass, and the next block outside the window comes after it. A
    // block never holds two slots. W < n while sliding, so one is outside.
    let next = (this.nextBlock + 1) % this.blocks.length;
    while (this.window.includes(next)) next = (next + 1) % this.blocks.length;
    if (this.needs !== undefined) next = this.firstNeeded(next);
    this.nextBlock = next;
    this.gate.pin(this.nextBlock);
    this.refreshPrefetch();
    this.counters.windowAdvances++;
    return true;
  }

  /**
   * The blocks after nextBlock (cyclic order, skipping the window, blocks
   * being admitted and nextBlock) whose quotas, with nextBlock's, stay under
   * prepareAheadPackets, and the one that reaches it: pinned now, so they are
   * prepared before their turn. Pins the new ones before it unpins those no
   * longer ahead (one that is ahead again stays prepared).
   */
  private refreshPrefetch(): void {
    if (this.state !== 'started') return;
    const want: number[] = [];
    if (this.sliding && this.prepareAheadPackets > 0) {
      const n = this.blocks.length;
      let sum = this.blocks[this.nextBlock].quota;
      for (let k = 1; k < n && sum < this.prepareAheadPackets; k++) {
        const i = (this.nextBlock + k) % n;
        if (this.window.includes(i) || this.admitting.includes(i)) continue;
        want.push(i);
        sum += this.blocks[i].quota;
      }
    }
    for (const i of want) this.gate.pin(i);
    for (const i of this.prefetch) this.gate.unpin(i);
    this.prefetch = want;
  }

  /** Moves appended blocks that have become ready into the window. */
  private admit(): void {
    while (this.admitting.length > 0 && this.gate.ready(this.admitting[0])) {
      const index = this.admitting.shift()!;
      this.window.push(index);
      this.passSent.push(0);
      this.counters.windowAdvances++;
    }
  }
}
