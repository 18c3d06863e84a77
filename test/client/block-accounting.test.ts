/**
 * BlockAccounting: the per-symbol decision (late, over budget, surplus,
 * backlog full, taken), the limit that grows only after a failed attempt,
 * each block's reservation in the shared budget, and eviction of a small
 * stale block for a newcomer (block-budget.ts).
 */
import { BlockAccounting, BlockAccountingStats, ENOUGH_BEYOND_K } from '../../lib/client/block-accounting';
import { BudgetedReceiver, PartialBlockBudget, STALE_ARRIVALS } from '../../lib/client/block-budget';

function newStats(): BlockAccountingStats {
  return { symbolsReceived: 0, symbolsUsed: 0, symbolsLate: 0, symbolsSurplus: 0, symbolsDropped: 0, retries: 0, blocksDone: 0, symbolsOverBudget: 0, symbolsDuplicate: 0 };
}

/** A receiver with nothing but its accounting, as the budget sees it. */
class Owner implements BudgetedReceiver {
  readonly stats = newStats();
  readonly accounting: BlockAccounting;
  readonly evicted: number[] = [];
  constructor(
    budget: PartialBlockBudget,
    K: number[],
    readonly solveSlots = 1,
    margin = 8,
  ) {
    this.accounting = new BlockAccounting({ K, L: K.map((k) => k + 20), T: 64, margin, budget, owner: this, stats: this.stats });
  }
  /** Every block of these tests has the same K: any block's solve is the largest. */
  get solveBytes(): number {
    return this.accounting.solveCost(0);
  }
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
    this.evicted.push(sbn);
    this.accounting.reset(sbn);
  }
}

const UNBOUNDED = () => new PartialBlockBudget(Infinity);

/** Repair ESIs, never repeated (a coded stream): far above any K of these tests. */
let nextRepairEsi = 1 << 20;

/**
 * `n` symbols of block `sbn` arriving one after another with `backlogRoom`
 * staging room at first (each one taken uses one); ESIs from `esi` on, or
 * fresh repair ESIs. Returns how many were taken.
 */
function take(a: BlockAccounting, sbn: number, n: number, backlogRoom: number, esi?: number): number {
  let taken = 0;
  for (let i = 0; i < n; i++) {
    const e = esi === undefined ? nextRepairEsi++ : esi + i;
    if (a.accept(sbn, e, backlogRoom - taken)) taken++;
  }
  return taken;
}

describe('BlockAccounting: accept', () => {
  test('takes up to K + margin symbols per block; the rest is surplus', () => {
    const o = new Owner(UNBOUNDED(), [10, 10], 1, 2);
    const a = o.accounting;
    expect(take(a, 0, 1, Infinity)).toBe(1);
    expect(take(a, 0, 10, Infinity)).toBe(10);
    // 11 of a limit of 12: one more fits of these three.
    expect(take(a, 0, 3, Infinity)).toBe(1);
    expect(take(a, 0, 1, Infinity)).toBe(0);
    expect(o.stats).toMatchObject({ symbolsReceived: 12, symbolsSurplus: 3 });
    expect(a.fed).toEqual([12, 0]);
    expect(a.heldSymbols).toBe(10);
  });

  test('a full backlog drops the symbols, counted', () => {
    const o = new Owner(UNBOUNDED(), [10]);
    expect(take(o.accounting, 0, 3, 2)).toBe(2);
    expect(o.stats.symbolsDropped).toBe(1);
    expect(take(o.accounting, 0, 2, 0)).toBe(0);
    expect(o.stats.symbolsDropped).toBe(3);
    expect(take(o.accounting, 0, 2, 2)).toBe(2);
  });

  test('symbols of a decoded block are late; a symbol taken while its block was solved can turn late after all', () => {
    const o = new Owner(UNBOUNDED(), [4, 4]);
    const a = o.accounting;
    for (let i = 0; i < 4; i++) take(a, 0, 1, Infinity);
    a.decoded(0, 4);
    expect(take(a, 0, 5, Infinity)).toBe(0);
    expect(o.stats.symbolsLate).toBe(5);
    take(a, 1, 1, Infinity);
    a.lateAfterAll();
    expect(o.stats).toMatchObject({ symbolsReceived: 4, symbolsLate: 6 });
  });

  test('a block that does not fit the budget: its symbols are dropped and counted in both', () => {
    const budget = new PartialBlockBudget(1);
    const o = new Owner(budget, [100]);
    expect(take(o.accounting, 0, 2, Infinity)).toBe(0);
    expect(o.stats.symbolsOverBudget).toBe(2);
    expect(budget.stats.symbolsDropped).toBe(2);
  });
});

describe('BlockAccounting: source symbols held (a carousel repeats them)', () => {
  test('a source symbol the block holds is a duplicate: counted, not taken, and it does not use the limit', () => {
    const o = new Owner(UNBOUNDED(), [10], 1, 2);
    const a = o.accounting;
    expect(take(a, 0, 9, Infinity, 0)).toBe(9); // ESIs 0..8; 9 is lost
    // A second pass, ESIs 0..9, then a third: only ESI 9 is new.
    expect(take(a, 0, 10, Infinity, 0)).toBe(1);
    expect(take(a, 0, 10, Infinity, 0)).toBe(0);
    expect(o.stats).toMatchObject({ symbolsReceived: 10, symbolsDuplicate: 19, symbolsSurplus: 0 });
    expect(a.fed[0]).toBe(10);
    expect(a.heldSymbols).toBe(10);
  });

  test('the missing source symbol of a block at K - 1 is taken however many repeats came before it', () => {
    // Before duplicates were told apart, the repeats filled K + margin and the
    // missing symbol, when it came, was surplus (issue 13 finding 11).
    const K = 100;
    const o = new Owner(UNBOUNDED(), [K], 1, 8);
    const a = o.accounting;
    take(a, 0, K - 1, Infinity, 1); // ESI 0 lost
    for (let pass = 0; pass < 5; pass++) take(a, 0, K - 1, Infinity, 1);
    expect(a.accept(0, 0, Infinity)).toBe(true);
    expect(a.fed[0]).toBe(K);
    expect(o.stats.symbolsDuplicate).toBe(5 * (K - 1));
  });

  test('repair ESIs are not tracked; a source symbol held by a block that was evicted is taken again', () => {
    const o = new Owner(UNBOUNDED(), [10]);
    const a = o.accounting;
    expect(take(a, 0, 2, Infinity, 50)).toBe(2);
    expect(take(a, 0, 2, Infinity, 50)).toBe(2); // a repeated repair ESI: notDecoded recounts those
    expect(take(a, 0, 1, Infinity, 3)).toBe(1);
    a.reset(0);
    expect(take(a, 0, 1, Infinity, 3)).toBe(1);
    expect(o.stats.symbolsDuplicate).toBe(0);
  });

  test('a decoded block forgets what it held: what comes after is late, not duplicate', () => {
    const o = new Owner(UNBOUNDED(), [4]);
    const a = o.accounting;
    take(a, 0, 4, Infinity, 0);
    a.decoded(0, 4);
    expect(take(a, 0, 4, Infinity, 0)).toBe(0);
    expect(o.stats).toMatchObject({ symbolsLate: 4, symbolsDuplicate: 0 });
  });
});

describe('BlockAccounting: attempts', () => {
  test('pushedOne says when a block holds K; atLimit when it holds K + margin', () => {
    const o = new Owner(UNBOUNDED(), [3], 1, 2);
    const a = o.accounting;
    expect([a.pushedOne(0), a.pushedOne(0), a.pushedOne(0)]).toEqual([false, false, true]);
    expect(a.atLimit(0)).toBe(false);
    a.pushedOne(0);
    a.pushedOne(0);
    expect(a.atLimit(0)).toBe(true);
  });

  test('an attempt that did not decode because a repair symbol came twice: the count is corrected, the limit stays', () => {
    const o = new Owner(UNBOUNDED(), [10], 1, 2);
    const a = o.accounting;
    take(a, 0, 12, Infinity);
    for (let i = 0; i < 12; i++) a.pushedOne(0);
    a.notDecoded(0, 9);
    expect(a.pushed[0]).toBe(9);
    expect(a.fed[0]).toBe(9);
    expect(a.limit[0]).toBe(12);
    expect(o.stats.retries).toBe(0);
  });

  test('a failed attempt with the limit of distinct symbols: margin more, and the reservation grows by the difference in cost', () => {
    const budget = UNBOUNDED();
    const o = new Owner(budget, [10], 1, 2);
    const a = o.accounting;
    take(a, 0, 12, Infinity);
    for (let i = 0; i < 12; i++) a.pushedOne(0);
    const before = budget.usedBytes;
    const cost = a.blockCost(0);
    a.notDecoded(0, 12);
    expect(a.limit[0]).toBe(14);
    expect(o.stats.retries).toBe(1);
    expect(a.blockCost(0)).toBeGreaterThan(cost);
    expect(budget.usedBytes - before).toBe(a.blockCost(0) - cost);
    expect(take(a, 0, 5, Infinity)).toBe(2);
  });

  test('need: K minus what it accepted, at least 1; 0 from K + ENOUGH_BEYOND_K (its solve under way) or decoded; after a failed attempt, what the raised limit takes', () => {
    const o = new Owner(UNBOUNDED(), [10, 10], 1, 8);
    const a = o.accounting;
    expect(a.need(0)).toBe(10);
    take(a, 0, 7, Infinity);
    expect(a.need(0)).toBe(3);
    take(a, 0, 3, Infinity);
    expect(a.need(0)).toBe(1);
    take(a, 0, ENOUGH_BEYOND_K - 1, Infinity);
    expect(a.need(0)).toBe(1);
    take(a, 0, 1, Infinity);
    expect(a.need(0)).toBe(0);
    // Every symbol it may take (K + margin) went into an attempt that failed: it needs again.
    take(a, 0, 8 - ENOUGH_BEYOND_K, Infinity);
    for (let i = 0; i < 18; i++) a.pushedOne(0);
    a.notDecoded(0, 18);
    expect(a.need(0)).toBe(8);
    take(a, 0, 8, Infinity);
    expect(a.need(0)).toBe(1);
    a.decoded(0, 26);
    expect([a.need(0), a.need(1)]).toEqual([0, 10]);
  });

  test('decoded: the reservation is released; complete once every block is', () => {
    const budget = UNBOUNDED();
    const o = new Owner(budget, [4, 4]);
    const a = o.accounting;
    take(a, 0, 4, Infinity);
    take(a, 1, 4, Infinity);
    expect(budget.blocks).toBe(2);
    a.decoded(0, 4);
    expect(budget.blocks).toBe(1);
    expect(a.complete).toBe(false);
    a.decoded(1, 5);
    expect(a.complete).toBe(true);
    expect(budget.usedBytes).toBe(0);
    expect(o.stats).toMatchObject({ blocksDone: 2, symbolsUsed: 9 });
  });
});

describe('BlockAccounting: costs', () => {
  test('blockCost = receiveCost + solveCost; both grow with the limit', () => {
    const o = new Owner(UNBOUNDED(), [1000], 1, 8);
    const a = o.accounting;
    expect(a.blockCost(0)).toBe(a.receiveCost(0) + a.solveCost(0));
    // K*T of source buffer at least; the solve at least L+1 symbols.
    expect(a.receiveCost(0)).toBeGreaterThan(1000 * 64);
    expect(a.solveCost(0)).toBeGreaterThan((1020 + 1) * 64);
    const [r, s] = [a.receiveCost(0), a.solveCost(0)];
    take(a, 0, 1008, Infinity);
    for (let i = 0; i < 1008; i++) a.pushedOne(0);
    a.notDecoded(0, 1008);
    expect(a.receiveCost(0)).toBeGreaterThan(r);
    expect(a.solveCost(0)).toBeGreaterThan(s);
  });
});

describe('BlockAccounting: eviction', () => {
  test(`a small block that got nothing while a newcomer was refused ${STALE_ARRIVALS} times is evicted for it; the anchor never is`, () => {
    // Room for two blocks of A (one solve) and nothing more, until A's second block goes.
    const probe = new Owner(UNBOUNDED(), [200, 200]);
    const recv = probe.accounting.receiveCost(0);
    const solve = probe.accounting.solveCost(0);
    const budget = new PartialBlockBudget(2 * recv + 2 * solve);
    const A = new Owner(budget, [200, 200]);
    const B = new Owner(budget, [200]);
    expect(take(A.accounting, 0, 1, Infinity)).toBe(1); // the anchor
    expect(take(A.accounting, 1, 1, Infinity)).toBe(1); // small: 1 < 200/8
    for (let i = 0; i < STALE_ARRIVALS; i++) expect(take(B.accounting, 0, 1, Infinity)).toBe(0);
    expect(A.evicted).toEqual([]);
    expect(take(B.accounting, 0, 1, Infinity)).toBe(1);
    expect(A.evicted).toEqual([1]);
    expect(A.accounting.fed[1]).toBe(0);
    expect(budget.stats.blocksEvicted).toBe(1);
  });

  test('evictable: not decoded, not holding K, fewer than K/8 symbols', () => {
    const o = new Owner(UNBOUNDED(), [80, 80, 80]);
    const a = o.accounting;
    take(a, 0, 9, Infinity);
    take(a, 1, 10, Infinity);
    expect(a.evictable(0)).toBe(true);
    expect(a.evictable(1)).toBe(false);
    a.decoded(2, 80);
    expect(a.evictable(2)).toBe(false);
    a.reset(1);
    expect(a.fed[1]).toBe(0);
    expect(a.evictable(1)).toBe(true);
  });
});
