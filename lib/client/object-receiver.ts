/**
 * ObjectReceiver: one object being received, from any number of channels.
 *
 * The data path copies a symbol once before the decoder's own copy: the
 * client hands over where each symbol sits in its receive batch
 * (addSymbols: the FEC Payload ID and the T bytes after it, RFC 6330
 * §3.2), and the offsets of one batch go to the native decoder in one call
 * per lane (ObjectDecoder.addPackets), at the end of the batch or of the
 * event-loop turn. No JS object per packet. (add() takes a parsed ALC
 * packet instead, copying it: tests, packets kept until their FDT came.)
 *
 * Blocks that hold K symbols are solved on a worker thread (solveAsync)
 * while the socket keeps being read; symbols of other blocks keep going
 * into the decoder meanwhile (the core locks per block). Symbols of a
 * block being solved are copied aside and added after the attempt, if it
 * failed. Blocks are spread over a few decoders ("lanes"), each with one
 * solve at a time, so that blocks that become decodable together are
 * solved in parallel.
 *
 * A block takes K + margin distinct symbols; the ones that arrive beyond
 * that are surplus, and source symbols it already holds are duplicates (a
 * carousel's later passes); neither is copied into the decoder. Only a
 * failed attempt (RFC 6330 decoding sometimes needs a symbol or two more
 * than K) opens the block to more.
 *
 * As soon as a source block decodes it is taken out of the decoder
 * (takeBlock frees the decoder's copy) and handed to the sink at its offset
 * (RFC 6330 §4.4.1.2 partitioning), so memory is bounded by the blocks in
 * flight, not by the object's size. Symbols for a finished block are
 * counted and dropped before they reach the decoder.
 *
 * Blocks not decoded yet are bounded by a PartialBlockBudget (shared by
 * every object of a fetch): a block is started only when its worst-case
 * cost fits (blockCost), otherwise its symbols are dropped, or a small
 * stale block is evicted for it (block-budget.ts explains the policy and
 * why it always makes progress).
 *
 * The jobs around this file: block-accounting.ts decides per symbol
 * (late, over budget, surplus, backlog full, taken) and keeps each block's
 * costs and reservation; decoder-lanes.ts stages symbols for each lane's
 * decoder; write-through.ts hands source symbols to the sink early. This
 * file routes symbols to them, runs the solves and collects the decoded
 * blocks.
 */
import { BlockProgress, ObjectDecoder } from '../fec/decoder';
import { loadNative, type RawCodecBinding } from '../native';
import { FEC_PAYLOAD_ID_SIZE, MAX_ESI, type AlcPacket } from '../protocol/alc';
import type { Oti as WireOti } from '../protocol/oti';
import { BlockAccounting } from './block-accounting';
import { BudgetedReceiver, PartialBlockBudget } from './block-budget';
import { codecPacket, DecoderLane } from './decoder-lanes';
import type { BlockSink } from './sinks/sink';
import { WriteThrough } from './write-through';

export type { BlockSink } from './sinks/sink';

export interface ObjectReceiverOptions {
  /**
   * Most symbols waiting to be added to the decoders (those of a batch not
   * yet handed over, and those of blocks being solved); beyond it symbols
   * are dropped (and counted): the stream will send others. Default 32768.
   */
  maxPendingSymbols?: number;
  /**
   * Symbols beyond K accepted per block before it has been tried (RFC 6330
   * decoding fails with K + 2 symbols about once in a million); more are
   * accepted only after a failed attempt. Default 8.
   */
  margin?: number;
  /** Decoders working in parallel, blocks spread round-robin. Default min(Z, 4). */
  lanes?: number;
  /** Solve blocks on a worker thread (default true). */
  solveAsync?: boolean;
  /** Bounds the bytes of partial blocks (shared between objects). Default: no bound. */
  budget?: PartialBlockBudget;
  binding?: RawCodecBinding;
}

export interface ObjectReceiverStats {
  /** Symbols handed to the decoder (what decoding cost). */
  symbolsReceived: number;
  /** Distinct symbols the decoder held when each block decoded, summed. */
  symbolsUsed: number;
  /** Symbols that arrived for blocks already decoded. */
  symbolsLate: number;
  /** Symbols beyond K + margin for a block still being solved, not handed on. */
  symbolsSurplus: number;
  /** Source symbols that arrived again for a block that held them (a carousel's later passes): not handed on. */
  symbolsDuplicate: number;
  /** Symbols dropped because the decoders' backlog was full. */
  symbolsDropped: number;
  /** Packets whose payload is not whole symbols, or with a bad SBN/ESI. */
  rejected: number;
  /** Native calls that added symbols. */
  batches: number;
  /** Solve attempts handed to the decoders (calls, each of one or more blocks). */
  solves: number;
  /** Blocks that needed more than K + margin symbols. */
  retries: number;
  blocksDone: number;
  /** Symbols dropped because their block did not fit the memory budget. */
  symbolsOverBudget: number;
  /** Partial blocks of this object evicted for the budget. */
  blocksEvicted: number;
  /** Blocks the sink already held from an interrupted fetch (resumeBlocks), counted in blocksDone. */
  blocksResumed: number;
  /** Source symbols (K) of those blocks: what this fetch did not need to receive. */
  symbolsResumed: number;
  /** Source symbols of other blocks read back from the sink (addKeptSource), not counted in symbolsReceived. */
  symbolsReplayed: number;
}

export function toDecoderOti(oti: WireOti): { F: number; T: number; Z: number; N: number; Al: number } {
  return { F: oti.transferLength, T: oti.symbolSize, Z: oti.sourceBlocks, N: oti.subBlocks, Al: oti.alignment };
}

export class ObjectReceiver implements BudgetedReceiver {
  readonly stats: ObjectReceiverStats = {
    symbolsReceived: 0,
    symbolsUsed: 0,
    symbolsLate: 0,
    symbolsSurplus: 0,
    symbolsDuplicate: 0,
    symbolsDropped: 0,
    rejected: 0,
    batches: 0,
    solves: 0,
    retries: 0,
    blocksDone: 0,
    symbolsOverBudget: 0,
    blocksEvicted: 0,
    blocksResumed: 0,
    symbolsResumed: 0,
    symbolsReplayed: 0,
  };
  /** Decoded blocks whose memory went back to the decoder once written (BlockSink.doneWithBlock). */
  blocksReturned = 0;
  /** Settles when every block has been written to the sink (or on the first failure). */
  readonly done: Promise<void>;
  /** Resolves once every block has decoded (writes may still be in flight); never rejects. */
  readonly decoded: Promise<void>;
  /** Sum of K over the blocks: the symbols decoding needs at least. */
  readonly neededSymbols: number;
  /** The budget had to grow to hold two of this object's blocks (to budget.limitBytes). */
  readonly budgetRaised: boolean;
  /** Solves that can run at once: one per lane (BudgetedReceiver). */
  readonly solveSlots: number;
  /** The largest solve's working memory, solveCost (BudgetedReceiver). */
  readonly solveBytes: number;

  private readonly lanes: DecoderLane[];
  private readonly T: number;
  private readonly Z: number;
  private readonly K: number[];
  private readonly accounting: BlockAccounting;
  private readonly maxPending: number;
  private readonly solveAsync: boolean;
  private readonly layout: ObjectDecoder['layout'];
  /** Source symbols written through to the sink (one sub-block objects whose sink takes them). */
  private readonly writeThrough?: WriteThrough;
  private pendingTotal = 0;
  private closed = false;
  /** addKeptSource is adding symbols the sink already holds: no write-through. */
  private replaying = false;
  private readonly writes: Promise<void>[] = [];
  private resolveDone!: () => void;
  private resolveDecoded!: () => void;
  private rejectDone!: (e: unknown) => void;

  constructor(
    readonly oti: WireOti,
    private readonly sink: BlockSink,
    options: ObjectReceiverOptions = {},
  ) {
    const make = (): ObjectDecoder =>
      options.binding ? new ObjectDecoder(toDecoderOti(oti), options.binding) : new ObjectDecoder(toDecoderOti(oti));
    const first = make();
    this.layout = first.layout;
    this.T = oti.symbolSize;
    this.Z = first.sourceBlocks;
    const laneCount = Math.max(1, Math.min(this.Z, options.lanes ?? 4));
    this.lanes = [];
    for (let i = 0; i < laneCount; i++) this.lanes.push(new DecoderLane(i === 0 ? first : make(), this.T));
    this.K = [];
    for (let sbn = 0; sbn < this.Z; sbn++) this.K.push(this.layout.sourceSymbols(sbn));
    if (sink.prewrite !== undefined && oti.subBlocks === 1) {
      this.writeThrough = new WriteThrough(sink as Required<Pick<BlockSink, 'prewrite'>>, this.layout, this.T, this.Z);
    }
    this.maxPending = options.maxPendingSymbols ?? 32768;
    this.solveAsync = options.solveAsync ?? true;
    const binding = options.binding ?? loadNative();
    const lOf = new Map<number, number>();
    const L = this.K.map((k) => {
      let l = lOf.get(k);
      if (l === undefined) {
        l = binding.systematicParams(k).L;
        lOf.set(k, l);
      }
      return l;
    });
    const budget = options.budget ?? new PartialBlockBudget(Infinity);
    this.accounting = new BlockAccounting({ K: this.K, L, T: this.T, margin: options.margin ?? 8, budget, owner: this, stats: this.stats });
    this.neededSymbols = this.accounting.neededSymbols;
    let receiving = 0;
    let solving = 0;
    for (let sbn = 0; sbn < this.Z; sbn++) {
      receiving = Math.max(receiving, this.accounting.receiveCost(sbn));
      solving = Math.max(solving, this.accounting.solveCost(sbn));
    }
    this.solveSlots = this.lanes.length;
    this.solveBytes = solving;
    // The anchor and one more block must fit (block-budget.ts), with their solves.
    this.budgetRaised = budget.raiseTo(2 * receiving + Math.min(2, this.solveSlots) * solving);
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A failure is reported through `done`; keep Node from calling it unhandled
    // when the owner only awaits later.
    this.done.catch(() => undefined);
    this.decoded = new Promise<void>((resolve) => {
      this.resolveDecoded = resolve;
    });
  }

  /** The reservation of block `sbn` in the budget: receiveCost + solveCost (block-accounting.ts). */
  blockCost(sbn: number): number {
    return this.accounting.blockCost(sbn);
  }

  /** What block `sbn` holds from its first symbol until it is taken (blockCost). */
  receiveCost(sbn: number): number {
    return this.accounting.receiveCost(sbn);
  }

  /** The working memory of solving block `sbn`, freed when the solve ends (blockCost). */
  solveCost(sbn: number): number {
    return this.accounting.solveCost(sbn);
  }

  /** Heap bytes the native decoders hold now for blocks not yet taken (tests compare it with the budget). */
  nativeHeldBytes(): number {
    let n = 0;
    for (let sbn = 0; sbn < this.Z; sbn++) {
      if (!this.accounting.blockDone[sbn] && !this.closed) n += this.laneOf(sbn).decoder.heldBytes(sbn);
    }
    return n;
  }

  // BudgetedReceiver
  symbolsHeld(sbn: number): number {
    return this.accounting.fed[sbn];
  }
  evictable(sbn: number): boolean {
    return this.accounting.evictable(sbn);
  }
  lastArrival(sbn: number): number {
    return this.accounting.lastArrival(sbn);
  }
  evict(sbn: number): void {
    const lane = this.laneOf(sbn);
    // Its symbols not yet added go too (an evictable block is not being solved).
    this.pendingTotal -= lane.unstage(sbn);
    lane.ready.delete(sbn);
    lane.decoder.discardBlock(sbn);
    this.accounting.reset(sbn);
    this.writeThrough?.forget(sbn);
    this.stats.blocksEvicted++;
  }

  get complete(): boolean {
    return this.accounting.complete;
  }

  /** Z, the object's source blocks. */
  get blocks(): number {
    return this.Z;
  }

  /** Symbols block `sbn` still needs (what a NEED reports, need-reporter.ts; BlockAccounting.need). */
  blockNeed(sbn: number): number {
    return this.accounting.need(sbn);
  }

  /** Symbols that count towards decoding: K for finished blocks, else min(received, K). */
  get heldSymbols(): number {
    return this.accounting.heldSymbols;
  }

  /**
   * Adds the symbols of one ALC packet of this object (its TOI on any
   * channel), copying them: for packets that are not in a receive batch
   * any more. The data path uses addSymbols.
   */
  add(packet: AlcPacket): void {
    const p = packet.payload;
    this.addFrom(p, 0, packet.sbn, packet.esi, packet.payloadLength, false);
  }

  /**
   * Adds the symbols of one ALC packet read in place (scanAlcData): its
   * FEC Payload ID at buf[at], then its symbols (payloadLength bytes).
   * With one symbol per packet (what rqcast sends) nothing is copied until
   * the decoder adds it: `buf` must stay unchanged until commit() (or the
   * end of the event-loop turn); the receive batches the client gets are
   * its own.
   */
  addSymbols(buf: Uint8Array, at: number, sbn: number, esi: number, payloadLength: number): void {
    this.addFrom(buf, at + FEC_PAYLOAD_ID_SIZE, sbn, esi, payloadLength, true);
  }

  /** `symbols` at buf[at]; `inPlace`: the FEC Payload ID precedes them in buf and buf may be staged as is. */
  private addFrom(buf: Uint8Array, at: number, sbn: number, esi: number, payloadLength: number, inPlace: boolean): void {
    if (this.closed) return;
    const T = this.T;
    if (sbn >= this.Z || payloadLength === 0 || payloadLength % T !== 0) {
      this.stats.rejected++;
      return;
    }
    // G symbols with consecutive ESIs (RFC 6330 §3.2); none past 2^24 - 1.
    const G = Math.min(payloadLength / T, MAX_ESI + 1 - esi);
    const lane = this.laneOf(sbn);
    // Symbols read back from the sink (addKeptSource) are there already: no write-through.
    const wt = this.replaying ? undefined : this.writeThrough;
    let taken = 0;
    for (let i = 0; i < G; i++) {
      if (!this.accounting.accept(sbn, esi + i, this.maxPending - this.pendingTotal)) continue;
      taken++;
      this.pendingTotal++;
      const symbolAt = at + i * T;
      const stageInPlace = inPlace && G === 1;
      // Another buffer's symbols go first; that may start this block's solve.
      if (stageInPlace && !lane.solving.has(sbn) && lane.holdsOtherBuffer(buf)) {
        this.commit(lane);
        if (this.closed) return;
        // Solved on this thread (solveAsync false) without it: late after all.
        if (this.accounting.blockDone[sbn]) {
          this.pendingTotal--;
          this.accounting.lateAfterAll();
          continue;
        }
      }
      const solving = lane.solving.has(sbn);
      // One taken while its block is solved may never reach the decoder: not to be skipped by the block write.
      if (wt !== undefined && esi + i < this.K[sbn]) wt.gather(sbn, esi + i, buf, symbolAt, !solving);
      if (stageInPlace && !solving) {
        lane.stageInPlace(buf, symbolAt - FEC_PAYLOAD_ID_SIZE);
      } else {
        const packet = codecPacket(sbn, esi + i, buf, symbolAt, T);
        if (solving) lane.deferred.push(packet);
        else lane.stageCopy(packet);
      }
    }
    if (taken > 0) this.schedule(lane);
  }

  /**
   * Blocks the sink already holds, verified (a resumed fetch,
   * ObjectSink.resumed): done without a symbol. What this receiver holds of
   * them is dropped; a block being solved right now is left to finish (it
   * is written again, the same bytes). Returns how many were newly marked.
   */
  resumeBlocks(sbns: Iterable<number>): number {
    if (this.closed || this.complete) return 0;
    let n = 0;
    for (const sbn of sbns) {
      if (!Number.isInteger(sbn) || sbn < 0 || sbn >= this.Z || this.accounting.blockDone[sbn]) continue;
      const lane = this.laneOf(sbn);
      if (lane.solving.has(sbn)) continue;
      this.pendingTotal -= lane.unstage(sbn);
      lane.ready.delete(sbn);
      lane.decoder.discardBlock(sbn);
      this.accounting.resumed(sbn);
      this.writeThrough?.drop(sbn);
      this.stats.blocksResumed++;
      this.stats.symbolsResumed += this.K[sbn];
      n++;
    }
    if (this.complete) this.decodingDone();
    return n;
  }

  /**
   * Source bytes of the object at `offset` that the sink already holds (a
   * resumed fetch's written-through symbols, ObjectSink.resumeSymbols):
   * added as the received source symbols they are (RFC 6330 §4.4.1.2: the
   * symbol at ESI e of block sbn is the object's bytes at blockOffset(sbn)
   * + e·T, the last one zero-padded), within the same limits as symbols
   * from the network, and not written through again. Bytes that do not
   * start on a symbol boundary or leave their block are ignored. Returns
   * the symbols taken (stats.symbolsReplayed, not symbolsReceived).
   */
  addKeptSource(offset: number, bytes: Uint8Array): number {
    if (this.closed || this.complete || bytes.length === 0) return 0;
    const T = this.T;
    let sbn = -1;
    for (let b = 0; b < this.Z; b++) {
      const start = this.layout.blockOffset(b);
      if (offset >= start && offset < start + this.layout.blockLength(b)) {
        sbn = b;
        break;
      }
    }
    if (sbn < 0) return 0;
    const start = this.layout.blockOffset(sbn);
    if ((offset - start) % T !== 0 || offset + bytes.length > start + this.layout.blockLength(sbn)) return 0;
    const esi = (offset - start) / T;
    const count = Math.ceil(bytes.length / T);
    let buf = bytes;
    if (bytes.length !== count * T) {
      buf = new Uint8Array(count * T);
      buf.set(bytes);
    }
    const before = this.stats.symbolsReceived;
    this.replaying = true;
    try {
      this.addFrom(buf, 0, sbn, esi, count * T, false);
    } finally {
      this.replaying = false;
    }
    const taken = this.stats.symbolsReceived - before;
    this.stats.symbolsReceived -= taken;
    this.stats.symbolsReplayed += taken;
    return taken;
  }

  /** Hands every staged symbol to the decoders now (the client calls it at the end of a receive batch). */
  commitAll(): void {
    for (const lane of this.lanes) if (lane.staged > 0) this.commit(lane);
  }

  /** Stops receiving and frees the decoders; `done` rejects if it had not settled. */
  close(reason: unknown = new Error('object receiver closed')): void {
    if (this.closed) return;
    // Source symbols gathered but not yet written through go to the sink now: a resumable one keeps them.
    if (!this.complete) this.writeThrough?.flush();
    this.closed = true;
    this.dropAll();
    if (!this.complete) this.rejectDone(reason);
  }

  private laneOf(sbn: number): DecoderLane {
    return this.lanes[sbn % this.lanes.length];
  }

  private dropAll(): void {
    this.accounting.releaseAll();
    this.pendingTotal = 0;
    for (const lane of this.lanes) {
      lane.clear();
      // A lane with a solve running closes its decoder when the solve returns.
      if (!lane.busy) lane.decoder.close();
    }
  }

  private schedule(lane: DecoderLane): void {
    if (lane.scheduled) return;
    lane.scheduled = true;
    setImmediate(() => {
      lane.scheduled = false;
      if (lane.staged > 0 || lane.ready.size > 0) this.commit(lane);
    });
  }

  /** Adds the lane's staged symbols to its decoder, then solves what became ready. */
  private commit(lane: DecoderLane): void {
    if (this.closed || this.complete) return;
    try {
      this.pendingTotal -= lane.flush(this.accounting, this.stats);
    } catch (e) {
      this.fail(e);
      return;
    }
    if (!lane.busy && lane.ready.size > 0) void this.solve(lane);
  }

  /** Solves the lane's ready blocks (one solve at a time per lane), then collects them. */
  private async solve(lane: DecoderLane): Promise<void> {
    const sbns: number[] = [];
    for (const sbn of lane.ready) if (!this.accounting.blockDone[sbn]) sbns.push(sbn);
    lane.ready.clear();
    if (sbns.length === 0) return;
    this.stats.solves++;
    lane.busy = true;
    for (const sbn of sbns) lane.solving.add(sbn);
    try {
      if (this.solveAsync) await lane.decoder.solveAsync(sbns);
      else lane.decoder.solve(sbns);
    } catch (e) {
      lane.busy = false;
      lane.solving.clear();
      this.fail(e);
      return;
    }
    lane.busy = false;
    lane.solving.clear();
    if (this.closed) {
      lane.decoder.close();
      return;
    }
    try {
      this.collectBlocks(lane, sbns);
    } catch (e) {
      this.fail(e);
      return;
    }
    // What arrived for these blocks meanwhile: late if they decoded, else added.
    const deferred = lane.deferred;
    lane.deferred = [];
    for (const packet of deferred) {
      if (this.accounting.blockDone[packet[0]]) {
        this.pendingTotal--;
        this.accounting.lateAfterAll();
      } else {
        lane.stageCopy(packet);
      }
    }
    if (this.complete) {
      this.decodingDone();
      return;
    }
    if (lane.staged > 0 || lane.ready.size > 0) this.commit(lane);
  }

  /** Every block is decoded (or was resumed): the decoders go; done once the writes land. */
  private decodingDone(): void {
    for (const l of this.lanes) {
      l.clear();
      if (!l.busy) l.decoder.close();
    }
    this.pendingTotal = 0;
    this.resolveDecoded();
    Promise.all(this.writes).then(() => this.resolveDone(), (e) => this.fail(e));
  }

  /** Takes every newly decoded block among `sbns` out of the lane's decoder and writes it. */
  private collectBlocks(lane: DecoderLane, sbns: readonly number[]): void {
    let progress: BlockProgress[] | undefined;
    for (const sbn of sbns) {
      if (this.accounting.blockDone[sbn]) continue;
      if (!lane.decoder.blockDecoded(sbn)) {
        if (this.accounting.atLimit(sbn)) {
          progress ??= lane.decoder.progress;
          this.accounting.notDecoded(sbn, progress[sbn].received);
        }
        continue;
      }
      progress ??= lane.decoder.progress;
      const used = progress[sbn].received;
      const data = lane.decoder.takeBlock(sbn);
      this.accounting.decoded(sbn, used);
      const offset = this.layout.blockOffset(sbn);
      const wt = this.writeThrough;
      // Written through: the block's write waits for those writes and skips what they put in place.
      const w = wt === undefined ? this.sink.writeBlock(sbn, offset, data) : wt.settle(sbn).then((inPlace) => this.sink.writeBlock(sbn, offset, data, inPlace));
      // Written and not kept by the sink: the block's memory back to the decoder's cache now, for the next block (no fresh pages), not at the next GC.
      const decoder = lane.decoder;
      w.then(() => {
        // An empty block was never lent (nothing to give back).
        if (data.length > 0 && this.sink.doneWithBlock?.(sbn, data) === true) {
          decoder.returnBlock(data);
          this.blocksReturned++;
        }
      }).catch((e) => this.fail(e));
      this.writes.push(w);
    }
  }

  private fail(e: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.dropAll();
    this.rejectDone(e);
  }
}
