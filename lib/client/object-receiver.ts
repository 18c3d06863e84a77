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
 * A block takes K + margin symbols; the ones that arrive beyond that are
 * surplus and never copied into the decoder. Only a failed attempt (RFC
 * 6330 decoding sometimes needs a symbol or two more than K) opens the
 * block to more.
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
 */
import { BlockProgress, ObjectDecoder } from '../fec/decoder';
import { loadNative, type RawCodecBinding } from '../native';
import { FEC_PAYLOAD_ID_SIZE, MAX_ESI, type AlcPacket } from '../protocol/alc';
import type { Oti as WireOti } from '../protocol/oti';
import { BudgetedReceiver, PartialBlockBudget, STALE_ARRIVALS } from './block-budget';
import type { BlockSink } from './sinks/sink';

export type { BlockSink } from './sinks/sink';

/**
 * Bytes of source symbols gathered per block before one write-through
 * (BlockSink.prewrite): at most 160 KiB per block being received, whatever
 * T (128 symbols at T = 1280).
 */
const PREWRITE_BYTES = 160 * 1024;

/** A run of consecutive source symbols of one block, for one prewrite. */
interface PrewriteRun {
  firstEsi: number;
  count: number;
  bytes: Uint8Array;
}

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
}

/**
 * Bytes of repair-symbol bookkeeping per symbol in a native BlockDecoder
 * (block_decoder.cc): an ESI and a slot index in vectors that grow by
 * doubling (8 + 8), a node and a bucket of the seen-ESI hash set (32 + 16).
 */
const DECODER_BYTES_PER_SYMBOL = 64;
/** The solver's matrices per row of the constraint system (measured at most ~330 for K = 10k..56k). */
const SOLVER_BYTES_PER_ROW = 512;
/** The smallest overflow buffer of a BlockDecoder, in symbols (it then doubles). */
const DECODER_OVERFLOW_SYMBOLS = 32;

export function toDecoderOti(oti: WireOti): { F: number; T: number; Z: number; N: number; Al: number } {
  return { F: oti.transferLength, T: oti.symbolSize, Z: oti.sourceBlocks, N: oti.subBlocks, Al: oti.alignment };
}

/** Packets (4 + T bytes) staged for one native addPackets call: where they sit in `buf`. */
interface Stage {
  buf: Uint8Array | undefined;
  offsets: Uint32Array;
  count: number;
}

/**
 * One decoder, what waits to be added to it, and its solves. The native
 * decoder solves one set of blocks at a time, on one worker thread;
 * several lanes let blocks of one object solve in parallel.
 */
interface Lane {
  decoder: ObjectDecoder;
  /** Symbols where they were received (a receive batch). */
  received: Stage;
  /** Symbols copied here (add(), G > 1, set aside during a solve). */
  copied: Stage;
  /** Copies of the symbols of blocks being solved, added if the attempt fails. */
  deferred: Uint8Array[];
  /** Blocks to try to solve (they hold K symbols or more). */
  ready: Set<number>;
  /** Blocks being solved now (busy). */
  solving: Set<number>;
  busy: boolean;
  scheduled: boolean;
}

function newStage(buf?: Uint8Array): Stage {
  return { buf, offsets: new Uint32Array(256), count: 0 };
}

function pushOffset(st: Stage, at: number): void {
  if (st.count === st.offsets.length) {
    const bigger = new Uint32Array(st.offsets.length * 2);
    bigger.set(st.offsets);
    st.offsets = bigger;
  }
  st.offsets[st.count++] = at;
}

export class ObjectReceiver implements BudgetedReceiver {
  readonly stats: ObjectReceiverStats = {
    symbolsReceived: 0,
    symbolsUsed: 0,
    symbolsLate: 0,
    symbolsSurplus: 0,
    symbolsDropped: 0,
    rejected: 0,
    batches: 0,
    solves: 0,
    retries: 0,
    blocksDone: 0,
    symbolsOverBudget: 0,
    blocksEvicted: 0,
  };
  /** Settles when every block has been written to the sink (or on the first failure). */
  readonly done: Promise<void>;
  /** Resolves once every block has decoded (writes may still be in flight); never rejects. */
  readonly decoded: Promise<void>;
  /** Sum of K over the blocks: the symbols decoding needs at least. */
  readonly neededSymbols: number;

  private readonly lanes: Lane[];
  private readonly T: number;
  private readonly Z: number;
  private readonly K: number[];
  private readonly blockDone: boolean[];
  /** Symbols accepted per block (pending or handed to the decoder). */
  private readonly fed: number[];
  /** Symbols handed to the decoder per block. */
  private readonly pushed: number[];
  /** Most symbols accepted per block until an attempt fails. */
  private readonly limit: number[];
  private readonly margin: number;
  private readonly maxPending: number;
  private readonly solveAsync: boolean;
  private readonly layout: ObjectDecoder['layout'];
  private readonly budget: PartialBlockBudget;
  /** Admitted to the budget (being received, not decoded). */
  private readonly admitted: boolean[];
  /** Budget stamp of each block's last arrival. */
  private readonly arrivedAt: Float64Array;
  /** Stamps of the last STALE_ARRIVALS symbols of each block that was not admitted (a ring per block). */
  private readonly refusedAt: Float64Array;
  private readonly refusals: Uint32Array;
  /** L of each block's K (RFC 6330 §5.6 Table 2), for blockCost. */
  private readonly L: number[];
  private pendingTotal = 0;
  private closed = false;
  private readonly writes: Promise<void>[] = [];
  /** Per block, the source symbols gathered for the next write-through (one sub-block objects only). */
  private readonly runs: (PrewriteRun | undefined)[];
  private readonly prewriteSymbols: number;
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
    for (let i = 0; i < laneCount; i++) {
      this.lanes.push({
        decoder: i === 0 ? first : make(),
        received: newStage(),
        copied: newStage(new Uint8Array(64 * (FEC_PAYLOAD_ID_SIZE + oti.symbolSize))),
        deferred: [],
        ready: new Set(),
        solving: new Set(),
        busy: false,
        scheduled: false,
      });
    }
    this.K = [];
    for (let sbn = 0; sbn < this.Z; sbn++) this.K.push(this.layout.sourceSymbols(sbn));
    this.runs = new Array<PrewriteRun | undefined>(this.Z);
    this.prewriteSymbols = Math.max(1, Math.floor(PREWRITE_BYTES / this.T));
    this.neededSymbols = this.K.reduce((a, b) => a + b, 0);
    this.margin = options.margin ?? 8;
    this.blockDone = new Array<boolean>(this.Z).fill(false);
    this.fed = new Array<number>(this.Z).fill(0);
    this.pushed = new Array<number>(this.Z).fill(0);
    this.limit = this.K.map((k) => k + this.margin);
    this.maxPending = options.maxPendingSymbols ?? 32768;
    this.solveAsync = options.solveAsync ?? true;
    const binding = options.binding ?? loadNative();
    const lOf = new Map<number, number>();
    this.L = this.K.map((k) => {
      let l = lOf.get(k);
      if (l === undefined) {
        l = binding.systematicParams(k).L;
        lOf.set(k, l);
      }
      return l;
    });
    this.budget = options.budget ?? new PartialBlockBudget(Infinity);
    this.admitted = new Array<boolean>(this.Z).fill(false);
    this.arrivedAt = new Float64Array(this.Z);
    this.refusedAt = new Float64Array(this.Z * STALE_ARRIVALS);
    this.refusals = new Uint32Array(this.Z);
    let receiving = 0;
    let solving = 0;
    for (let sbn = 0; sbn < this.Z; sbn++) {
      receiving = Math.max(receiving, this.receiveCost(sbn));
      solving = Math.max(solving, this.solveCost(sbn));
    }
    this.solveSlots = this.lanes.length;
    this.solveBytes = solving;
    // The anchor and one more block must fit (block-budget.ts), with their solves.
    this.budgetRaised = this.budget.raiseTo(2 * receiving + Math.min(2, this.solveSlots) * solving);
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

  /** The budget had to grow to hold two of this object's blocks (to budget.limitBytes). */
  readonly budgetRaised: boolean;
  /** Solves that can run at once: one per lane (BudgetedReceiver). */
  readonly solveSlots: number;
  /** The largest solve's working memory, solveCost (BudgetedReceiver). */
  readonly solveBytes: number;

  /**
   * The most heap bytes block `sbn` can make the native decoder hold from
   * its first symbol until it is taken, at its current symbol limit
   * (block_decoder.cc): the K*T source buffer (which also holds the repair
   * symbols), K flag bytes and K 4-byte slot owners, the overflow buffer
   * for symbols beyond K, repair bookkeeping per symbol; then, while it is
   * solved, the work buffer (the encoding plan's S + K' + H + 1 slots plus
   * one per symbol beyond K: L + 1 + extra, pi_solver.cc) and the solver's
   * matrices. One failed attempt's extra margin is included, so that only
   * a second failure (RFC 6330 §5.4.2: next to never) grows a reservation.
   * The sum of receiveCost and solveCost.
   */
  blockCost(sbn: number): number {
    return this.receiveCost(sbn) + this.solveCost(sbn);
  }

  /** What block `sbn` holds from its first symbol until it is taken (blockCost). */
  receiveCost(sbn: number): number {
    const K = this.K[sbn];
    const T = this.T;
    const most = this.limit[sbn] + this.margin;
    const overflow = Math.max(DECODER_OVERFLOW_SYMBOLS, 2 * (most - K));
    return K * T + 5 * K + overflow * T + DECODER_BYTES_PER_SYMBOL * most;
  }

  /** The working memory of solving block `sbn`, freed when the solve ends (blockCost). */
  solveCost(sbn: number): number {
    const extra = this.limit[sbn] + this.margin - this.K[sbn];
    return (this.L[sbn] + 1 + extra) * this.T + SOLVER_BYTES_PER_ROW * (this.L[sbn] + extra);
  }

  /** Heap bytes the native decoders hold now for blocks not yet taken (tests compare it with the budget). */
  nativeHeldBytes(): number {
    let n = 0;
    for (let sbn = 0; sbn < this.Z; sbn++) {
      if (!this.blockDone[sbn] && !this.closed) n += this.lanes[sbn % this.lanes.length].decoder.heldBytes(sbn);
    }
    return n;
  }

  // BudgetedReceiver
  symbolsHeld(sbn: number): number {
    return this.fed[sbn];
  }
  evictable(sbn: number): boolean {
    return !this.blockDone[sbn] && this.pushed[sbn] < this.K[sbn] && this.fed[sbn] * 8 < this.K[sbn];
  }
  lastArrival(sbn: number): number {
    return this.arrivedAt[sbn];
  }
  evict(sbn: number): void {
    const lane = this.lanes[sbn % this.lanes.length];
    // Its symbols not yet added go too (an evictable block is not being solved).
    this.pendingTotal -= this.unstage(lane.received, sbn) + this.unstage(lane.copied, sbn);
    lane.ready.delete(sbn);
    lane.decoder.discardBlock(sbn);
    this.admitted[sbn] = false;
    this.fed[sbn] = 0;
    this.pushed[sbn] = 0;
    this.limit[sbn] = this.K[sbn] + this.margin;
    this.refusals[sbn] = 0;
    this.stats.blocksEvicted++;
  }

  /** Removes block `sbn`'s packets from a stage; returns how many. */
  private unstage(st: Stage, sbn: number): number {
    const buf = st.buf;
    if (buf === undefined) return 0;
    let n = 0;
    for (let i = 0; i < st.count; i++) if (buf[st.offsets[i]] !== sbn) st.offsets[n++] = st.offsets[i];
    const removed = st.count - n;
    st.count = n;
    return removed;
  }

  /** Admits block `sbn` to the budget, or records the refusal (for staleness). */
  private admit(sbn: number, stamp: number): boolean {
    const n = this.refusals[sbn];
    // The STALE_ARRIVALS-th refusal before this one: a held block that got
    // nothing since then is stale.
    const staleBefore = n >= STALE_ARRIVALS ? this.refusedAt[sbn * STALE_ARRIVALS + (n % STALE_ARRIVALS)] : undefined;
    if (this.budget.tryAdmit(this, sbn, this.receiveCost(sbn), staleBefore)) {
      this.admitted[sbn] = true;
      this.refusals[sbn] = 0;
      return true;
    }
    this.refusedAt[sbn * STALE_ARRIVALS + (n % STALE_ARRIVALS)] = stamp;
    this.refusals[sbn] = n + 1;
    return false;
  }

  get complete(): boolean {
    return this.stats.blocksDone === this.Z;
  }

  /** Z, the object's source blocks. */
  get blocks(): number {
    return this.Z;
  }

  /** Symbols that count towards decoding: K for finished blocks, else min(received, K). */
  get heldSymbols(): number {
    let n = 0;
    for (let sbn = 0; sbn < this.Z; sbn++) n += this.blockDone[sbn] ? this.K[sbn] : Math.min(this.fed[sbn], this.K[sbn]);
    return n;
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
    const take = this.accept(sbn, G);
    if (take === 0) return;
    // With one sub-block, source symbol ESI of block sbn is the object's
    // bytes at blockOffset + ESI*T (RFC 6330 §4.4.1.2): written through now.
    if (this.sink.prewrite !== undefined && esi < this.K[sbn] && this.oti.subBlocks === 1) {
      for (let i = 0; i < take && esi + i < this.K[sbn]; i++) this.gather(sbn, esi + i, buf, at + i * T);
    }
    const lane = this.lanes[sbn % this.lanes.length];
    if (inPlace && take === 1 && !lane.solving.has(sbn)) {
      const st = lane.received;
      if (st.buf !== buf) {
        if (st.count > 0) this.commit(lane);
        st.buf = buf;
      }
      pushOffset(st, at - FEC_PAYLOAD_ID_SIZE);
    } else {
      for (let i = 0; i < take; i++) {
        const packet = new Uint8Array(FEC_PAYLOAD_ID_SIZE + T);
        const e = esi + i;
        packet[0] = sbn;
        packet[1] = e >> 16;
        packet[2] = (e >> 8) & 0xff;
        packet[3] = e & 0xff;
        packet.set(buf.subarray(at + i * T, at + (i + 1) * T), FEC_PAYLOAD_ID_SIZE);
        if (lane.solving.has(sbn)) lane.deferred.push(packet);
        else this.copyIn(lane, packet);
      }
    }
    this.schedule(lane);
  }

  /** Adds source symbol `esi` of block sbn (T bytes at buf[at]) to the block's write-through run. */
  private gather(sbn: number, esi: number, buf: Uint8Array, at: number): void {
    const T = this.T;
    let run = this.runs[sbn];
    if (run !== undefined && (run.firstEsi + run.count !== esi || run.count === this.prewriteSymbols)) {
      this.prewriteRun(sbn, run);
      run = undefined;
    }
    // A fresh buffer per run: the last one is the write's until it lands.
    if (run === undefined) this.runs[sbn] = run = { firstEsi: esi, count: 0, bytes: Buffer.allocUnsafe(this.prewriteSymbols * T) };
    // Buffer.copy: no view object per symbol.
    if (Buffer.isBuffer(buf)) buf.copy(run.bytes, run.count * T, at, at + T);
    else run.bytes.set(buf.subarray(at, at + T), run.count * T);
    run.count++;
  }

  private prewriteRun(sbn: number, run: PrewriteRun): void {
    if (run.count === 0 || this.sink.prewrite === undefined) return;
    const start = run.firstEsi * this.T;
    // The last block's last symbol is padded past the object's end.
    const length = Math.min(run.count * this.T, this.layout.blockLength(sbn) - start);
    if (length <= 0) return;
    this.sink.prewrite(this.layout.blockOffset(sbn) + start, run.bytes.subarray(0, length));
  }

  /**
   * The accounting of G symbols arriving for block sbn: how many of them to
   * add (0 when the block is done, not admitted to the budget, at its
   * limit, or the backlog is full).
   */
  private accept(sbn: number, G: number): number {
    if (this.blockDone[sbn]) {
      this.stats.symbolsLate += G;
      return 0;
    }
    const stamp = this.budget.tick();
    if (!this.admitted[sbn] && !this.admit(sbn, stamp)) {
      this.stats.symbolsOverBudget += G;
      this.budget.dropped(G);
      return 0;
    }
    this.arrivedAt[sbn] = stamp;
    const room = this.limit[sbn] - this.fed[sbn];
    if (room <= 0) {
      this.stats.symbolsSurplus += G;
      return 0;
    }
    if (this.pendingTotal + G > this.maxPending) {
      this.stats.symbolsDropped += G;
      return 0;
    }
    const take = Math.min(room, G);
    this.stats.symbolsSurplus += G - take;
    this.pendingTotal += take;
    this.fed[sbn] += take;
    this.stats.symbolsReceived += take;
    return take;
  }

  /** Copies one packet (4 + T bytes) into the lane's copy stage. */
  private copyIn(lane: Lane, packet: Uint8Array): void {
    const st = lane.copied;
    const size = packet.length;
    let buf = st.buf as Uint8Array;
    if ((st.count + 1) * size > buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf.subarray(0, st.count * size));
      st.buf = buf = bigger;
    }
    buf.set(packet, st.count * size);
    pushOffset(st, st.count * size);
  }

  /** Hands every staged symbol to the decoders now (the client calls it at the end of a receive batch). */
  commitAll(): void {
    for (const lane of this.lanes) if (lane.received.count > 0 || lane.copied.count > 0) this.commit(lane);
  }

  /** Stops receiving and frees the decoders; `done` rejects if it had not settled. */
  close(reason: unknown = new Error('object receiver closed')): void {
    if (this.closed) return;
    this.closed = true;
    this.dropAll();
    if (!this.complete) this.rejectDone(reason);
  }

  private dropAll(): void {
    this.budget.releaseAll(this);
    this.pendingTotal = 0;
    for (const lane of this.lanes) {
      this.clearStages(lane);
      // A lane with a solve running closes its decoder when the solve returns.
      if (!lane.busy) lane.decoder.close();
    }
  }

  private clearStages(lane: Lane): void {
    lane.received.buf = undefined;
    lane.received.count = 0;
    lane.copied.count = 0;
    lane.deferred = [];
    lane.ready.clear();
  }

  private schedule(lane: Lane): void {
    if (lane.scheduled) return;
    lane.scheduled = true;
    setImmediate(() => {
      lane.scheduled = false;
      if (lane.received.count > 0 || lane.copied.count > 0 || lane.ready.size > 0) this.commit(lane);
    });
  }

  /** Adds the lane's staged symbols to its decoder, then solves what became ready. */
  private commit(lane: Lane): void {
    if (this.closed || this.complete) return;
    try {
      this.addStage(lane, lane.received);
      lane.received.buf = undefined;
      this.addStage(lane, lane.copied);
    } catch (e) {
      this.fail(e);
      return;
    }
    if (!lane.busy && lane.ready.size > 0) void this.solve(lane);
  }

  private addStage(lane: Lane, st: Stage): void {
    const n = st.count;
    if (n === 0) return;
    const buf = st.buf as Uint8Array;
    st.count = 0;
    this.pendingTotal -= n;
    this.stats.batches++;
    this.stats.rejected += lane.decoder.addPackets(buf, st.offsets, n);
    for (let i = 0; i < n; i++) {
      const sbn = buf[st.offsets[i]];
      if (++this.pushed[sbn] >= this.K[sbn]) lane.ready.add(sbn);
    }
  }

  /** Solves the lane's ready blocks (one solve at a time per lane), then collects them. */
  private async solve(lane: Lane): Promise<void> {
    const sbns: number[] = [];
    for (const sbn of lane.ready) if (!this.blockDone[sbn]) sbns.push(sbn);
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
      if (this.blockDone[packet[0]]) {
        this.pendingTotal--;
        this.stats.symbolsReceived--;
        this.stats.symbolsLate++;
      } else {
        this.copyIn(lane, packet);
      }
    }
    if (this.complete) {
      for (const l of this.lanes) {
        this.clearStages(l);
        if (!l.busy) l.decoder.close();
      }
      this.pendingTotal = 0;
      this.resolveDecoded();
      Promise.all(this.writes).then(() => this.resolveDone(), (e) => this.fail(e));
      return;
    }
    if (lane.copied.count > 0 || lane.received.count > 0 || lane.ready.size > 0) this.commit(lane);
  }

  /** Takes every newly decoded block among `sbns` out of the lane's decoder and writes it. */
  private collectBlocks(lane: Lane, sbns: readonly number[]): void {
    let progress: BlockProgress[] | undefined;
    for (const sbn of sbns) {
      if (this.blockDone[sbn]) continue;
      if (!lane.decoder.blockDecoded(sbn)) {
        if (this.pushed[sbn] >= this.limit[sbn]) {
          // Duplicates count in `pushed` but not in the decoder: count
          // distinct symbols again. If the decoder does hold `limit`
          // distinct symbols, the attempt failed (RFC 6330 decoding can
          // need a few more than K): accept more.
          progress ??= lane.decoder.progress;
          const duplicates = this.pushed[sbn] - progress[sbn].received;
          this.pushed[sbn] -= duplicates;
          this.fed[sbn] -= duplicates;
          if (this.pushed[sbn] >= this.limit[sbn]) {
            // A few more symbols: the block's reservation grows with them.
            const before = this.blockCost(sbn);
            this.limit[sbn] += this.margin;
            this.budget.grow(this, sbn, this.blockCost(sbn) - before);
            this.stats.retries++;
          }
        }
        continue;
      }
      progress ??= lane.decoder.progress;
      this.stats.symbolsUsed += progress[sbn].received;
      const data = lane.decoder.takeBlock(sbn);
      this.blockDone[sbn] = true;
      // Its whole block is written now: the symbols gathered need no write of their own.
      this.runs[sbn] = undefined;
      this.admitted[sbn] = false;
      this.budget.release(this, sbn);
      this.stats.blocksDone++;
      const w = this.sink.writeBlock(sbn, this.layout.blockOffset(sbn), data);
      w.catch((e) => this.fail(e));
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
