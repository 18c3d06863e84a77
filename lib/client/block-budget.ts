/**
 * PartialBlockBudget: bounds the memory held by source blocks that are being
 * received but are not decoded yet, over every object of a fetch.
 *
 * A server streams all the blocks of an object round-robin (or a sliding
 * window of blocks, each getting about K(1 + overhead) symbols per pass,
 * passes repeating forever). A receiver that started every block it hears
 * of would hold the whole object in partial blocks. Instead each block is
 * admitted only while the reservations fit the budget; a symbol of a block
 * that is not admitted is dropped and counted: the stream sends others.
 *
 * What is reserved is what the native decoder really allocates: per
 * admitted block, its worst case while it is received and until it is
 * taken (ObjectReceiver.receiveCost); and per receiver, the working memory
 * of the solves that can run at once: one per lane (a lane solves its
 * blocks one after the other), so min(lanes, admitted blocks) times the
 * largest solve (ObjectReceiver.solveCost).
 *
 * Eviction, and why the fetch cannot livelock. The oldest admitted block
 * (the "anchor") is never evicted. Any other admitted block may be evicted
 * (its symbols discarded; it can be admitted again later) to make room for
 * a newcomer when both:
 *   - it is small: it holds fewer than K/8 symbols, so little is wasted and
 *     it is not being solved; and
 *   - it is stale: it received nothing while the newcomer arrived
 *     STALE_ARRIVALS times (the server has moved on to other blocks).
 * Such blocks are what a sliding window leaves behind when a block is
 * admitted at the tail of its turn; evicting them lets the block now being
 * sent use its whole turn. Blocks with K/8 symbols or more are kept, so a
 * loss rate above the server's overhead (no block completes in one turn)
 * does not turn into every block being evicted before its next turn.
 *
 * Progress: the anchor only gains symbols; the server sends every block
 * again and again with fresh ESIs (docs/PROTOCOL.md), so the anchor holds K
 * distinct symbols, and decodes, after finitely many of its packets (a
 * failed attempt admits a few more, RFC 6330 §5.4.2 rarely needs more than
 * K + 2). It then leaves the budget and the next oldest block becomes the
 * anchor (or, if none is held, the next block admitted: the budget is then
 * empty, so one fits). Each anchor is a different block that decodes, so
 * every block of every object decodes after at most as many anchors as
 * there are blocks, whatever the order the server sends them in, and for
 * any loss short of total. The anchor needs room for one block; the budget
 * keeps room for at least two (raiseTo), so that one more block can be
 * received while the anchor waits for its next turn.
 */

/** Newcomer arrivals without one for a held block that make the held block stale. */
export const STALE_ARRIVALS = 16;

/** A receiver whose blocks the budget admits and may evict. */
export interface BudgetedReceiver {
  /** Solves that can run at once (its lanes). */
  readonly solveSlots: number;
  /** The working memory of its largest solve. */
  readonly solveBytes: number;
  /** Symbols block `sbn` holds (the victim is the one with the fewest). */
  symbolsHeld(sbn: number): number;
  /** Whether `sbn` may be evicted now (few symbols, not being solved). */
  evictable(sbn: number): boolean;
  /** Stamp (PartialBlockBudget.tick) of the last symbol of `sbn` that arrived. */
  lastArrival(sbn: number): number;
  /** Discards block `sbn`'s symbols; the budget has already released it. */
  evict(sbn: number): void;
}

interface Admitted {
  owner: BudgetedReceiver;
  sbn: number;
  cost: number;
}

export interface PartialBlockBudgetStats {
  /** Symbols dropped because their block was not admitted. */
  symbolsDropped: number;
  /** Partial blocks evicted to admit another. */
  blocksEvicted: number;
  /** Most bytes reserved at once (admitted blocks and held bytes; above limitBytes only by grow() and one priority block). */
  peakBytes: number;
  /** Blocks admitted beyond the limit because `priority` asked for them (object-stream.ts). */
  priorityAdmissions: number;
  /** The largest reservation a priority admission made (the most usedBytes can pass limitBytes by, besides grow()). */
  peakPriorityBytes: number;
}

export class PartialBlockBudget {
  readonly stats: PartialBlockBudgetStats = { symbolsDropped: 0, blocksEvicted: 0, peakBytes: 0, priorityAdmissions: 0, peakPriorityBytes: 0 };
  /** Bytes reserved by the admitted blocks and the held bytes now. */
  usedBytes = 0;
  /** Decoded bytes waiting for a slow consumer (hold/unhold), part of usedBytes. */
  heldBytes = 0;
  /**
   * A block that must be admitted even past the limit (object-stream.ts:
   * the next block in order when the consumer has nothing else to read, so
   * held bytes can never keep out the block they wait for). At most one at
   * a time is expected: the budget is passed by at most that block.
   */
  priority?: (owner: BudgetedReceiver, sbn: number) => boolean;
  /** Admission order: entries[0] is the anchor. */
  private entries: Admitted[] = [];
  /** Admitted blocks per receiver (for its solve reservation). */
  private readonly held = new Map<BudgetedReceiver, number>();
  private clock = 0;

  constructor(
    /** Most bytes partial blocks may reserve (Infinity: no bound). */
    public limitBytes: number,
  ) {}

  /** Admitted blocks, all receivers. */
  get blocks(): number {
    return this.entries.length;
  }

  /** Stamps an arrival: a counter shared by every receiver of the budget (no clock). */
  tick(): number {
    return ++this.clock;
  }

  /**
   * Raises the limit to `bytes` if it is lower (a budget must hold two of
   * the largest blocks); returns whether it did.
   */
  raiseTo(bytes: number): boolean {
    if (this.limitBytes >= bytes) return false;
    this.limitBytes = bytes;
    return true;
  }

  /**
   * Admits block `sbn` of `owner`, reserving `cost` bytes, if it fits, or
   * if evicting one small stale block (see the file comment) makes it fit.
   * `staleBefore`: a held block whose last arrival is older than this stamp
   * is stale (undefined: the newcomer has not arrived often enough yet).
   */
  tryAdmit(owner: BudgetedReceiver, sbn: number, cost: number, staleBefore: number | undefined): boolean {
    const h = this.held.get(owner) ?? 0;
    // A new block adds a solve reservation while the receiver has fewer blocks than lanes.
    const need = cost + (h < owner.solveSlots ? owner.solveBytes : 0);
    if (this.usedBytes + need > this.limitBytes && this.priority?.(owner, sbn)) {
      this.stats.priorityAdmissions++;
      this.stats.peakPriorityBytes = Math.max(this.stats.peakPriorityBytes, need);
    } else if (this.usedBytes + need > this.limitBytes) {
      if (staleBefore === undefined) return false;
      let victim = -1;
      let fewest = Infinity;
      // entries[0], the anchor, is never a victim.
      for (let i = 1; i < this.entries.length; i++) {
        const e = this.entries[i];
        const freed = this.freedBy(e);
        const hAfter = e.owner === owner ? h - 1 : h;
        const needAfter = cost + (hAfter < owner.solveSlots ? owner.solveBytes : 0);
        if (this.usedBytes - freed + needAfter > this.limitBytes) continue;
        if (!e.owner.evictable(e.sbn) || e.owner.lastArrival(e.sbn) >= staleBefore) continue;
        const n = e.owner.symbolsHeld(e.sbn);
        if (n < fewest) {
          fewest = n;
          victim = i;
        }
      }
      if (victim < 0) return false;
      const e = this.entries[victim];
      this.remove(victim);
      this.stats.blocksEvicted++;
      e.owner.evict(e.sbn);
      return this.tryAdmit(owner, sbn, cost, undefined);
    }
    this.entries.push({ owner, sbn, cost });
    this.held.set(owner, h + 1);
    this.usedBytes += need;
    if (this.usedBytes > this.stats.peakBytes) this.stats.peakBytes = this.usedBytes;
    return true;
  }

  /** Bytes that releasing entry `e` frees: its own, and a solve reservation if its receiver then has fewer blocks than lanes. */
  private freedBy(e: Admitted): number {
    const h = this.held.get(e.owner) ?? 0;
    return e.cost + (h <= e.owner.solveSlots ? e.owner.solveBytes : 0);
  }

  private remove(i: number): void {
    const e = this.entries[i];
    this.usedBytes -= this.freedBy(e);
    this.entries.splice(i, 1);
    const h = (this.held.get(e.owner) ?? 1) - 1;
    if (h > 0) this.held.set(e.owner, h);
    else this.held.delete(e.owner);
  }

  /** Block `sbn` of `owner` decoded (or its receiver closed): its bytes are free. */
  release(owner: BudgetedReceiver, sbn: number): void {
    const i = this.entries.findIndex((e) => e.owner === owner && e.sbn === sbn);
    if (i >= 0) this.remove(i);
  }

  /**
   * Block `sbn` of `owner` needs `bytes` more (a block that failed to decode
   * twice takes more symbols). Always granted: refusing the anchor would
   * stall the fetch; this is the one way usedBytes can pass the limit.
   */
  grow(owner: BudgetedReceiver, sbn: number, bytes: number): void {
    const e = this.entries.find((x) => x.owner === owner && x.sbn === sbn);
    if (!e) return;
    e.cost += bytes;
    this.usedBytes += bytes;
    if (this.usedBytes > this.stats.peakBytes) this.stats.peakBytes = this.usedBytes;
  }

  /** Releases every block of `owner`. */
  releaseAll(owner: BudgetedReceiver): void {
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i].owner === owner) this.remove(i);
  }

  /**
   * Decoded bytes that wait for a slow consumer (object-stream.ts) count
   * against the limit: while they fill it no block is admitted and symbols
   * are dropped (counted) until the consumer reads (unhold). Always granted:
   * the bytes exist already, and the block's own reservation, larger, was
   * released when it decoded.
   */
  hold(bytes: number): void {
    this.heldBytes += bytes;
    this.usedBytes += bytes;
    if (this.usedBytes > this.stats.peakBytes) this.stats.peakBytes = this.usedBytes;
  }

  /** Held bytes the consumer has taken. */
  unhold(bytes: number): void {
    this.heldBytes -= bytes;
    this.usedBytes -= bytes;
  }

  /** Counts symbols dropped for want of room. */
  dropped(symbols: number): void {
    this.stats.symbolsDropped += symbols;
  }
}
