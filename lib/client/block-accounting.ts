/**
 * BlockAccounting: what an ObjectReceiver knows about each of its source
 * blocks (RFC 6330 §4.4.1.2), and what each may cost: the symbols accepted
 * and handed to the decoder, the limit of symbols accepted until an attempt
 * fails, whether the block holds a reservation in the shared memory budget
 * (block-budget.ts), and that reservation's size — an upper bound of what
 * the native decoder really allocates for the block (blockCost).
 *
 * The per-symbol decision lives here (accept): late, a source symbol the
 * block already holds, over budget, surplus beyond the limit, dropped for
 * a full backlog, or taken.
 *
 * Source symbols held are known exactly (a bit per source ESI, K/8 bytes a
 * block): a carousel (no-code mode, or any stream that repeats itself)
 * sends each source symbol once per pass, so from the second pass on most
 * arrivals are ones the block holds. Counted as taken, they would fill the
 * block's limit, send it to a solve that cannot succeed and turn the one
 * missing symbol, when it comes, into surplus; the block would then gain
 * only a margin's worth of symbols per attempt (issue 13 finding 11).
 * Repair symbols are not tracked (a stream does not repeat their ESIs; a
 * failed attempt counts the decoder's distinct symbols again, notDecoded). The receiver
 * (object-receiver.ts) does the staging and the decoding; it stays the
 * budget's BudgetedReceiver, and this class makes the budget calls on its
 * behalf.
 */
import type { BudgetedReceiver, PartialBlockBudget } from './block-budget';
import { STALE_ARRIVALS } from './block-budget';

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
/**
 * Symbols beyond K a block holds once it needs no more (need): RaptorQ
 * decodes from K + 2 but about once in 10^6 (RFC 6330 Annex B).
 */
export const ENOUGH_BEYOND_K = 2;

/** The counters BlockAccounting keeps, part of ObjectReceiverStats. */
export interface BlockAccountingStats {
  symbolsReceived: number;
  symbolsUsed: number;
  symbolsLate: number;
  symbolsSurplus: number;
  symbolsDropped: number;
  retries: number;
  blocksDone: number;
  symbolsOverBudget: number;
  /** Source symbols that arrived for a block that already held them (a carousel's later passes). */
  symbolsDuplicate: number;
}

export interface BlockAccountingOptions {
  /** K of each block (RFC 6330 §4.4.1.2). */
  K: readonly number[];
  /** L of each block's K (RFC 6330 §5.6 Table 2), for the solve's cost. */
  L: readonly number[];
  /** T, the symbol size. */
  T: number;
  /** Symbols beyond K accepted before an attempt; as many more after each failed one. */
  margin: number;
  budget: PartialBlockBudget;
  /** The receiver the budget's reservations belong to (it may evict them). */
  owner: BudgetedReceiver;
  stats: BlockAccountingStats;
}

export class BlockAccounting {
  /** Sum of K over the blocks: the symbols decoding needs at least. */
  readonly neededSymbols: number;
  /** Decoded and taken out of the decoder. */
  readonly blockDone: boolean[];
  /** Symbols accepted per block (pending or handed to the decoder). */
  readonly fed: number[];
  /** Symbols handed to the decoder per block. */
  readonly pushed: number[];
  /** Most symbols accepted per block until an attempt fails. */
  readonly limit: number[];
  private readonly K: readonly number[];
  private readonly L: readonly number[];
  private readonly T: number;
  private readonly margin: number;
  private readonly budget: PartialBlockBudget;
  private readonly owner: BudgetedReceiver;
  private readonly stats: BlockAccountingStats;
  /** Admitted to the budget (being received, not decoded). */
  private readonly admitted: boolean[];
  /** Budget stamp of each block's last arrival. */
  private readonly arrivedAt: Float64Array;
  /** Stamps of the last STALE_ARRIVALS symbols of each block that was not admitted (a ring per block). */
  private readonly refusedAt: Float64Array;
  private readonly refusals: Uint32Array;
  /** Per block, a bit per source ESI held (taken); allocated at the block's first symbol, dropped when it is done. */
  private readonly sourceHeld: (Uint8Array | undefined)[];

  constructor(o: BlockAccountingOptions) {
    const Z = o.K.length;
    this.K = o.K;
    this.L = o.L;
    this.T = o.T;
    this.margin = o.margin;
    this.budget = o.budget;
    this.owner = o.owner;
    this.stats = o.stats;
    this.neededSymbols = o.K.reduce((a, b) => a + b, 0);
    this.blockDone = new Array<boolean>(Z).fill(false);
    this.fed = new Array<number>(Z).fill(0);
    this.pushed = new Array<number>(Z).fill(0);
    this.limit = o.K.map((k) => k + o.margin);
    this.admitted = new Array<boolean>(Z).fill(false);
    this.arrivedAt = new Float64Array(Z);
    this.refusedAt = new Float64Array(Z * STALE_ARRIVALS);
    this.refusals = new Uint32Array(Z);
    this.sourceHeld = new Array<Uint8Array | undefined>(Z).fill(undefined);
  }

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

  /** Every block decoded. */
  get complete(): boolean {
    return this.stats.blocksDone === this.K.length;
  }

  /** Symbols that count towards decoding: K for finished blocks, else min(accepted, K). */
  get heldSymbols(): number {
    let n = 0;
    for (let sbn = 0; sbn < this.K.length; sbn++) n += this.blockDone[sbn] ? this.K[sbn] : Math.min(this.fed[sbn], this.K[sbn]);
    return n;
  }

  /**
   * Symbol `esi` of block sbn arriving: whether to take it (not when the
   * block is done, already holds this source symbol, is not admitted to the
   * budget, is at its limit, or when `backlogRoom`, the symbols the
   * receiver can still stage, is 0).
   */
  accept(sbn: number, esi: number, backlogRoom: number): boolean {
    if (this.blockDone[sbn]) {
      this.stats.symbolsLate++;
      return false;
    }
    const K = this.K[sbn];
    const held = esi < K ? this.sourceHeld[sbn] : undefined;
    if (held !== undefined && (held[esi >> 3] & (1 << (esi & 7))) !== 0) {
      this.stats.symbolsDuplicate++;
      return false;
    }
    const stamp = this.budget.tick();
    if (!this.admitted[sbn] && !this.admit(sbn, stamp)) {
      this.stats.symbolsOverBudget++;
      this.budget.dropped(1);
      return false;
    }
    this.arrivedAt[sbn] = stamp;
    if (this.fed[sbn] >= this.limit[sbn]) {
      this.stats.symbolsSurplus++;
      return false;
    }
    if (backlogRoom < 1) {
      this.stats.symbolsDropped++;
      return false;
    }
    if (esi < K) {
      const bits = (this.sourceHeld[sbn] ??= new Uint8Array((K + 7) >> 3));
      bits[esi >> 3] |= 1 << (esi & 7);
    }
    this.fed[sbn]++;
    this.stats.symbolsReceived++;
    return true;
  }

  /**
   * Symbols block `sbn` still needs (its NEED entry, docs/PROTOCOL.md
   * §7a.1): 0 once decoded, or once it accepted K + ENOUGH_BEYOND_K and no
   * attempt on it failed (its solve may still be running: what comes
   * meanwhile is of no use to it); after a failed attempt, what the raised
   * limit still takes; else K minus the symbols accepted; at least 1 unless 0.
   */
  need(sbn: number): number {
    if (this.blockDone[sbn]) return 0;
    const K = this.K[sbn];
    const fed = this.fed[sbn];
    if (this.limit[sbn] > K + this.margin) return Math.max(1, this.limit[sbn] - fed);
    return fed >= K + ENOUGH_BEYOND_K ? 0 : Math.max(1, K - fed);
  }

  /** One symbol of `sbn` handed to the decoder; true once the block holds K (worth a solve). */
  pushedOne(sbn: number): boolean {
    return ++this.pushed[sbn] >= this.K[sbn];
  }

  /** A symbol taken for `sbn` arrived while it was being solved, and the block decoded: late after all. */
  lateAfterAll(): void {
    this.stats.symbolsReceived--;
    this.stats.symbolsLate++;
  }

  /** Whether `sbn` was given all the symbols its limit allows (an attempt that did not decode may have failed). */
  atLimit(sbn: number): boolean {
    return this.pushed[sbn] >= this.limit[sbn];
  }

  /**
   * An attempt on `sbn` did not decode and the decoder holds `distinct`
   * symbols of it. A repair symbol that came twice (accept refuses repeated
   * source symbols only) counts in `pushed` but not in the decoder: count
   * distinct symbols again. If the decoder does hold `limit` distinct
   * symbols, the attempt failed (RFC 6330 decoding can need a few more than
   * K): accept `margin` more, and the block's reservation grows with them.
   */
  notDecoded(sbn: number, distinct: number): void {
    const duplicates = this.pushed[sbn] - distinct;
    this.pushed[sbn] -= duplicates;
    this.fed[sbn] -= duplicates;
    if (this.pushed[sbn] >= this.limit[sbn]) {
      const before = this.blockCost(sbn);
      this.limit[sbn] += this.margin;
      this.budget.grow(this.owner, sbn, this.blockCost(sbn) - before);
      this.stats.retries++;
    }
  }

  /**
   * Block `sbn` is already in the sink (a resumed fetch): done without
   * decoding. Its reservation, if it had one, is free.
   */
  resumed(sbn: number): void {
    if (this.admitted[sbn]) this.budget.release(this.owner, sbn);
    this.admitted[sbn] = false;
    this.sourceHeld[sbn] = undefined;
    this.blockDone[sbn] = true;
    this.stats.blocksDone++;
  }

  /** Block `sbn` decoded from `used` distinct symbols and was taken: its reservation is free. */
  decoded(sbn: number, used: number): void {
    this.stats.symbolsUsed += used;
    this.blockDone[sbn] = true;
    this.admitted[sbn] = false;
    this.sourceHeld[sbn] = undefined;
    this.budget.release(this.owner, sbn);
    this.stats.blocksDone++;
  }

  // The budget's questions (BudgetedReceiver, answered for the owner).

  evictable(sbn: number): boolean {
    return !this.blockDone[sbn] && this.pushed[sbn] < this.K[sbn] && this.fed[sbn] * 8 < this.K[sbn];
  }

  lastArrival(sbn: number): number {
    return this.arrivedAt[sbn];
  }

  /** Block `sbn` was evicted (its symbols discarded): it starts again from nothing. */
  reset(sbn: number): void {
    this.admitted[sbn] = false;
    this.fed[sbn] = 0;
    this.pushed[sbn] = 0;
    this.limit[sbn] = this.K[sbn] + this.margin;
    this.refusals[sbn] = 0;
    this.sourceHeld[sbn] = undefined;
  }

  /** Returns every reservation (the receiver closed). */
  releaseAll(): void {
    this.budget.releaseAll(this.owner);
  }

  /** Admits block `sbn` to the budget, or records the refusal (for staleness). */
  private admit(sbn: number, stamp: number): boolean {
    const n = this.refusals[sbn];
    // The STALE_ARRIVALS-th refusal before this one: a held block that got
    // nothing since then is stale.
    const staleBefore = n >= STALE_ARRIVALS ? this.refusedAt[sbn * STALE_ARRIVALS + (n % STALE_ARRIVALS)] : undefined;
    if (this.budget.tryAdmit(this.owner, sbn, this.receiveCost(sbn), staleBefore)) {
      this.admitted[sbn] = true;
      this.refusals[sbn] = 0;
      return true;
    }
    this.refusedAt[sbn * STALE_ARRIVALS + (n % STALE_ARRIVALS)] = stamp;
    this.refusals[sbn] = n + 1;
    return false;
  }
}
