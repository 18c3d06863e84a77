// Passes by need: StreamSchedule with a NeedTable (docs/PROTOCOL.md §7a,
// §10.3), driven as ChannelStream drives them, with fake members that
// receive the stream after a delay (the ring and the wire), lose packets by
// a seeded draw, and report as a client does. No encoder, no clock: every
// assertion counts packets.
import fc from 'fast-check';
import { NEED_MARGIN_SYMBOLS, NeedTable, packetsFor } from '../../lib/stream/need-table';
import { BlockGate, FDT_TURN, REPAIR_SLOT, ScheduledBlock, StreamSchedule, Turn } from '../../lib/stream/schedule';
import { passQuota } from '../../lib/stream/window-size';
import { Rng } from '../../lib/support/rng';

const gate: BlockGate = { pin() {}, unpin() {}, ready: () => true };

/** Blocks of K source symbols each, quota at 15 %. */
const blocksOf = (Ks: number[]): ScheduledBlock[] => Ks.map((K, sbn) => ({ obj: 0, sbn, quota: passQuota(K, 0.15) }));

interface FakeMember {
  name: string;
  /** Received packets per block. */
  got: number[];
  /** Stream position from which it receives (joined). */
  from: number;
  loss: number;
  /** Reports: every this many positions (undefined: never reports). */
  every?: number;
  /** Highest position received. */
  highest: number;
  /**
   * Partial blocks it can hold at once (a client's memory budget): a packet
   * of a block not held is dropped while `held` is full; a block leaves
   * `held` once it has K. Default: no bound.
   */
  budget?: number;
  held?: Set<number>;
}

interface Run {
  /** Block index per position (FDT_TURN for the FDT). */
  blocks: number[];
  turns: Turn[];
  s: StreamSchedule;
  table: NeedTable;
}

/**
 * Runs `n` positions. Position p reaches the members at p + delay (what the
 * ring and the wire hold); each receives it unless its loss draw drops it,
 * and reports every `every` positions: the highest position received, its
 * loss, and K − received for every block (0 once it has K).
 */
function run(Ks: number[], members: FakeMember[], n: number, opts: { delay?: number; fdtInterval?: number; seed?: number; needs?: boolean; windowBlocks?: number; restartOnFirstMember?: boolean } = {}): Run {
  const delay = opts.delay ?? 0;
  const table = new NeedTable();
  const s = new StreamSchedule({
    blocks: blocksOf(Ks),
    fdtBlocks: 1,
    fdtInterval: opts.fdtInterval ?? 64,
    windowBlocks: opts.windowBlocks ?? 1,
    gate,
    needs: opts.needs === false ? undefined : table,
  });
  s.start();
  const rng = new Rng(opts.seed ?? 1);
  const random = (): number => rng.unit();
  const blocks: number[] = [];
  const turns: Turn[] = [];
  let delivered = 0;
  const deliver = (upTo: number): void => {
    for (; delivered < upTo; delivered++) {
      const b = blocks[delivered];
      for (const m of members) {
        if (delivered < m.from) continue;
        if (delivered === m.from) {
          // As ChannelStream.expectNeed does.
          const first = table.memberCount === 0;
          table.expect(m.name);
          if (first && opts.restartOnFirstMember === true) s.restartCycle();
        }
        if (m.loss > 0 && random() < m.loss) continue;
        m.highest = delivered;
        if (b === FDT_TURN || (m.got[b] ?? 0) >= Ks[b]) continue;
        if (m.budget !== undefined) {
          const held = (m.held ??= new Set());
          if (!held.has(b)) {
            if (held.size >= m.budget) continue;
            held.add(b);
          }
          if ((m.got[b] ?? 0) + 1 >= Ks[b]) held.delete(b);
        }
        m.got[b] = (m.got[b] ?? 0) + 1;
      }
      for (const m of members) {
        if (m.every === undefined || delivered < m.from || (delivered - m.from) % m.every !== m.every - 1) continue;
        table.report(m.name, m.highest >>> 0, m.loss, Ks.map((K, block) => ({ block, need: Math.max(0, K - (m.got[block] ?? 0)) })));
      }
    }
  };
  let p = 0;
  while (p < n) {
    const t = s.next(p, 256);
    turns.push(t);
    table.built(t.block, p, t.want);
    for (let k = 0; k < t.want; k++) blocks.push(t.block);
    s.sent(t, t.want);
    p += t.want;
    deliver(Math.max(0, p - delay));
  }
  return { blocks, turns, s, table };
}

const member = (name: string, o: Partial<FakeMember> = {}): FakeMember => ({ name, got: [], from: 0, loss: 0, highest: -1, ...o });
/** Packets of each block in the first pass over the blocks (up to when the last block first leaves). */
function firstPass(r: Run, count: number): number[] {
  const per = new Array<number>(count).fill(0);
  let seen = -1;
  for (const b of r.blocks) {
    if (b === FDT_TURN) continue;
    if (b < seen) break; // the cycle came round
    seen = b;
    per[b]++;
  }
  return per;
}

describe('passes by need (schedule.ts with need-table.ts)', () => {
  const Ks = [1000, 800, 1200, 500];

  test('no member, or a member that never reports: exactly the fixed passes', () => {
    const plain = run(Ks, [], 20_000, { needs: false }).blocks;
    expect(run(Ks, [], 20_000).blocks).toEqual(plain);
    expect(run(Ks, [member('old')], 20_000).blocks).toEqual(plain);
    // Beside a member that reports 0 everywhere, a silent one still gets the fixed passes.
    const zero = member('zero', { every: 50, got: Ks.slice() });
    expect(run(Ks, [zero, member('old')], 20_000).blocks).toEqual(plain);
  });

  // Blocks larger than what is in flight (4096: the ring): a member's first report comes before the first block's quota.
  const big = [6000, 5000, 7000, 4500];

  test('0 % loss: each block\'s pass ends within K + margin packets, with 4096 packets in flight', () => {
    const a = member('a', { every: 200 });
    const b2 = member('b', { every: 170 });
    const r = run(big, [a, b2], 30_000, { delay: 4096 });
    const per = firstPass(r, big.length);
    for (let b = 0; b < big.length; b++) {
      expect(per[b]).toBeLessThanOrEqual(big[b] + NEED_MARGIN_SYMBOLS);
      expect(per[b]).toBeGreaterThanOrEqual(big[b]);
    }
    // And each member had every block when it was through (K received of each).
    for (const m of [a, b2]) for (let b = 0; b < big.length; b++) expect(m.got[b]).toBeGreaterThanOrEqual(big[b]);
    expect(r.s.counters.passesEndedEarly).toBeGreaterThanOrEqual(big.length);
  });

  test('5 % loss: a pass gives about need/(1 − loss) + margin, and every member completes in the first pass', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), (seed) => {
        const ms = [member('a', { every: 150, loss: 0.05 }), member('b', { every: 230, loss: 0.05 })];
        const r = run(big, ms, 40_000, { delay: 4096, seed });
        const per = firstPass(r, big.length);
        let sum = 0;
        let predicted = 0;
        for (let b = 0; b < big.length; b++) {
          expect(per[b]).toBeLessThanOrEqual(passQuota(big[b], 0.15));
          for (const m of ms) expect(m.got[b]).toBeGreaterThanOrEqual(big[b]);
          sum += per[b];
          predicted += packetsFor(big[b], 0.05);
        }
        // The first pass is what the prediction asks (K/(1 − loss) and ~3σ), far from the fixed 1.15 K.
        expect(sum).toBeLessThanOrEqual(predicted * 1.01);
        expect(sum).toBeLessThan(big.reduce((x, y) => x + y) * 1.1);
      }),
      { numRuns: 20 },
    );
  });

  test('a member that joins late keeps the block going (up to its quota), then gets the rest of it in repair turns lent by the next pass', () => {
    const a = member('a', { every: 100 });
    const late = member('late', { every: 100, from: 600 });
    const r = run([1000, 1000], [a, late], 2_000);
    // Block 0's pass: its window turns before block 1's first (repair turns may follow it at once).
    const pass0 = r.turns
      .slice(0, r.turns.findIndex((t) => t.block === 1))
      .filter((t) => t.block === 0 && t.slot !== REPAIR_SLOT)
      .reduce((n, t) => n + t.want, 0);
    // Alone, a would end block 0 at K + 2; the late member, short of the first ~590, keeps it to the quota.
    expect(pass0).toBe(passQuota(1000, 0.15));
    // Still ~450 short when the pass ends: repair turns lent by block 0's next pass make it up at once,
    // not a pass later (before lending, it had 560 of block 0 after 2 000 positions).
    expect(late.got[0]).toBeGreaterThanOrEqual(1000);
    expect(r.s.counters.repairPackets).toBeGreaterThan(0);
    expect(r.s.counters.repairPackets).toBeLessThan(passQuota(1000, 0.15));
  });

  test('a member that joins after some passes ended gets those blocks when the cycle comes round, not in repair turns ahead of the blocks the others still need: it holds no one back', () => {
    const K4 = [1000, 1000, 1000, 1000];
    /** Position at which each block reached K at a member receiving every packet from position `from`. */
    const completions = (r: Run, from: number): number[] => {
      const got = K4.map(() => 0);
      const at = K4.map(() => -1);
      r.blocks.forEach((b, p) => {
        if (p < from || b === FDT_TURN || at[b] >= 0) return;
        if (++got[b] === K4[b]) at[b] = p;
      });
      return at;
    };
    const alone = completions(run(K4, [member('a', { every: 100 })], 12_000), 0);
    // The newcomer joins in block 2's pass: blocks 0 and 1 went before it.
    const joinAt = alone[1] + 300;
    const r = run(K4, [member('a', { every: 100 }), member('late', { every: 100, from: joinAt })], 12_000);
    const a = completions(r, 0);
    const late = completions(r, joinAt);
    // a has every block hardly later than alone: block 2's pass runs to its quota
    // for the newcomer, who saw it and is repaired there (at most one more quota);
    // blocks 0 and 1 are not sent again ahead of block 3 (two more quotas, before).
    expect(Math.max(...a) - Math.max(...alone)).toBeLessThan(passQuota(1000, 0.15));
    // The newcomer has every block: 2 and 3 first, then 0 and 1 from the next cycle.
    expect(late.every((p) => p >= 0)).toBe(true);
    expect(late[2]).toBeLessThan(late[3]);
    expect(late[3]).toBeLessThan(Math.min(late[0], late[1]));
  });

  test('restartCycle: the first member of a stream nobody was on gets the blocks in order from block 0, the block it joined in when the cycle comes round (no repair turn)', () => {
    const K4 = [1000, 1000, 1000, 1000];
    const order = (restart: boolean): { done: number[]; repairs: number } => {
      // Joins during block 2's fixed pass (quota 1 150 each, FDT packets between).
      const m = member('m', { every: 100, from: 2_500 });
      const r = run(K4, [m], 14_000, { restartOnFirstMember: restart });
      const got = K4.map(() => 0);
      const done: number[] = [];
      r.blocks.forEach((b, p) => {
        if (p >= 2_500 && b !== FDT_TURN && ++got[b] === K4[b]) done.push(b);
      });
      expect(m.got).toEqual(K4);
      return { done, repairs: r.s.counters.repairPackets ?? 0 };
    };
    expect(order(true)).toEqual({ done: [0, 1, 2, 3], repairs: 0 });
    // Without it: block 2 first (its pass, then a repair of what the member missed), then 3, then 0 and 1.
    const plain = order(false);
    expect(plain.done).toEqual([2, 3, 0, 1]);
    expect(plain.repairs).toBeGreaterThan(0);
  });

  test('hostile reports (huge needs, loss 1) hold a block no longer than its quota per pass (lending at most one pass ahead); a report of 0 shortens no one else\'s', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 9_999 }), need: fc.integer({ min: 0, max: 1e6 }), loss: fc.double({ min: 0, max: 1, noNaN: true }), block: fc.integer({ min: 0, max: 3 }), rqseq: fc.integer({ min: 0, max: 0xffffffff }) }), { maxLength: 60 }),
        (reports) => {
          const table = new NeedTable();
          // A pass of block b begins when b enters the window and ends when it leaves (the gate unpins it;
          // nothing else is unpinned here: W = 1, nothing prepared ahead, nothing added). A pass may have no
          // packets at all: a block that enters and is skipped at once.
          const exits = Ks.map(() => 0);
          const counting: BlockGate = { pin() {}, unpin: (b) => void exits[b]++, ready: () => true };
          const s = new StreamSchedule({ blocks: blocksOf(Ks), fdtBlocks: 1, fdtInterval: 64, windowBlocks: 1, gate: counting, needs: table });
          s.start();
          table.expect('evil');
          const sorted = reports.slice().sort((x, y) => x.at - y.at);
          const total = Ks.map(() => 0);
          let k = 0;
          let p = 0;
          while (p < 10_000) {
            while (k < sorted.length && sorted[k].at <= p) {
              const x = sorted[k++];
              table.report('evil', x.rqseq, x.loss, [{ block: x.block, need: x.need }]);
            }
            const t = s.next(p, 256);
            table.built(t.block, p, t.want);
            if (t.block !== FDT_TURN) {
              const b = t.block;
              const inWindow = s.windowContents.some((w) => w.sbn === b);
              // Passes of b begun so far (the one in progress, or the last one, which repairs lend ahead of).
              const passes = exits[b] + (inWindow ? 1 : 0);
              if (t.slot === REPAIR_SLOT) expect({ b, repairAfterAPass: exits[b] > 0 && !inWindow }).toEqual({ b, repairAfterAPass: true });
              total[b] += t.want;
              // Each pass sends at most its quota, and repairs after a pass may lend all but one packet of the
              // next one's (which that pass then sends less): through its pass j (j + 1 passes begun), block b
              // had at most (j + 2) quotas.
              const bound = (passes + 1) * passQuota(Ks[b], 0.15) - 1;
              expect({ p, b, passes, total: Math.min(total[b], bound) }).toEqual({ p, b, passes, total: total[b] });
            }
            s.sent(t, t.want);
            p += t.want;
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  test('a block no member needs is skipped; a channel nobody needs anything of keeps its fixed passes', () => {
    const a = member('a', { every: 10, got: [0, 800, 0, 0] });
    const r = run(Ks, [a], 4_000);
    expect(firstPass(r, 4)[1]).toBe(0);
    expect(r.s.counters.blocksSkipped).toBeGreaterThanOrEqual(1);
    const done = member('done', { every: 10, got: Ks.slice() });
    const idle = run(Ks, [done], 20_000);
    expect(idle.blocks.filter((b) => b !== FDT_TURN).length).toBeGreaterThan(0);
    expect(firstPass(idle, 4).slice(1)).toEqual(Ks.slice(1).map((K) => passQuota(K, 0.15)));
  });

  test('a window holding blocks no member needs, with none needed outside it: turns go to the needed blocks, with no advance per turn', () => {
    // 11 blocks, 3 in the window. The member needs blocks 0 and 1 only
    // (both in the window): block 2 is not needed, and no block outside the
    // window is either. Replacing block 2 by another unneeded block is no
    // progress; done at every turn it costs a scan of the cycle, pins and
    // unpins, per few packets (what starved a test's client of CPU).
    const table = new NeedTable();
    const s = new StreamSchedule({ blocks: blocksOf(new Array<number>(11).fill(1000)), fdtBlocks: 1, fdtInterval: 1000, windowBlocks: 3, gate, needs: table });
    s.start();
    table.expect('m');
    table.report('m', 0xffffffff, 0, Array.from({ length: 11 }, (_, block) => ({ block, need: block < 2 ? 1000 : 0 })));
    let p = 0;
    const sent: number[] = new Array<number>(11).fill(0);
    let turns = 0;
    while (p < 1500) {
      const t = s.next(p, 1000);
      table.built(t.block, p, t.want);
      s.sent(t, t.want);
      p += t.want;
      if (t.block === FDT_TURN) continue;
      turns++;
      sent[t.block] += t.want;
    }
    // Every data packet went to a block the member needs.
    expect(sent.slice(2).every((n) => n === 0)).toBe(true);
    expect(sent[0] + sent[1]).toBeGreaterThan(1400);
    expect(s.counters.windowAdvances).toBe(0);
    expect(turns).toBeGreaterThan(100);
  });

  test.each([300, 4000])('a member that can hold two partial blocks at a time (a client memory budget) gets all 11 blocks of a window of 3, %i packets in flight', (delay) => {
    const Ks11 = new Array<number>(11).fill(900);
    const a = member('a', { every: 16, loss: 0.05, budget: 2 });
    const r = run(Ks11, [a], 40_000, { delay, windowBlocks: 3, seed: 3 });
    expect(a.got).toEqual(Ks11);
    const turns = r.turns.filter((t) => t.block !== FDT_TURN).length;
    expect(r.s.counters.windowAdvances).toBeLessThanOrEqual(turns);
  });

  test('repair: a block whose pass ended gets the next turn when a report shows a member short, within its quota and, lent, its next pass\'s', () => {
    const table = new NeedTable();
    const s = new StreamSchedule({ blocks: blocksOf([100, 100, 100]), fdtBlocks: 1, fdtInterval: 1000, windowBlocks: 1, gate, needs: table });
    s.start();
    table.expect('m');
    table.report('m', 0xffffffff, 0, [0, 1, 2].map((block) => ({ block, need: 100 })));
    let p = 0;
    const step = (): Turn => {
      const t = s.next(p, 1000);
      table.built(t.block, p, t.want);
      s.sent(t, t.want);
      p += t.want;
      return t;
    };
    step(); // FDT
    expect(step()).toMatchObject({ block: 0, want: 102 });
    expect(step()).toMatchObject({ block: 1 });
    // Block 0 took positions 1..102. The member says it still needs 60 as of position 50: of the 52
    // packets after it, it will get 52, so it is 10 short (with the margin).
    table.report('m', 50, 0, [{ block: 0, need: 60 }]);
    const t = step();
    expect(t).toMatchObject({ block: 0, slot: REPAIR_SLOT, want: 60 + NEED_MARGIN_SYMBOLS - 52 });
    expect(s.counters.repairPackets).toBe(10);
    // A report asking more than this pass's quota leaves (115 − 112) borrows
    // from the next pass's quota, all but one packet of it: 2 · 115 − 1 in all.
    table.report('m', p - 1, 0, [{ block: 0, need: 100 }]);
    expect(step()).toMatchObject({ block: 0, slot: REPAIR_SLOT, want: 100 + NEED_MARGIN_SYMBOLS });
    table.report('m', p - 1, 0, [{ block: 0, need: 100 }]);
    expect(step()).toMatchObject({ block: 0, slot: REPAIR_SLOT, want: 2 * passQuota(100, 0.15) - 1 - 214 });
    table.report('m', p - 1, 0, [{ block: 0, need: 100 }]);
    expect(step()).toMatchObject({ block: 2 });
  });
});

describe('NeedTable', () => {
  test('a report raises (makes a repair candidate of) a block only if some of its packets were built after the member became a destination', () => {
    const t = new NeedTable();
    t.built(0, 0, 100);
    t.built(1, 100, 100);
    t.expect('x');
    t.built(1, 200, 50);
    t.built(2, 250, 10);
    expect(t.report('x', 259, 0, [0, 1, 2].map((block) => ({ block, need: 500 })))).toBe(true);
    // Every block is wanted (the cycle brings block 0 round), but only 1 and 2 were seen sent.
    expect([0, 1, 2].map((b) => (t.wanted(b) ?? 0) > 0)).toEqual([true, true, true]);
    expect(t.takeRaised().sort()).toEqual([1, 2]);
    // Block 0 sent again (its next pass): a shortfall after it is a repair candidate.
    t.built(0, 260, 10);
    t.report('x', 269, 0, [{ block: 0, need: 500 }]);
    expect(t.takeRaised()).toEqual([0]);
  });

  test('stale reports are dropped, reports ahead of the stream taken as of its last packet, members forgotten', () => {
    const t = new NeedTable();
    t.built(0, 0, 100);
    expect(t.report('x', 10, 0, [{ block: 0, need: 5 }])).toBe(false); // not a destination
    t.expect('x');
    expect(t.report('x', 50, 0, [{ block: 0, need: 60 }])).toBe(true);
    // 49 packets (51..99) were built after position 50.
    expect(t.wanted(0)).toBe(60 + NEED_MARGIN_SYMBOLS - 49);
    expect(t.report('x', 40, 0, [{ block: 0, need: 50 }])).toBe(false);
    expect(t.counters.needStale).toBe(1);
    expect(t.report('x', 5000, 0, [{ block: 0, need: 3 }])).toBe(true);
    expect(t.counters.needAhead).toBe(1);
    expect(t.wanted(0)).toBe(3 + NEED_MARGIN_SYMBOLS);
    expect(t.wanted(1)).toBeUndefined();
    t.forget('x');
    expect(t.memberCount).toBe(0);
    expect(t.wanted(0)).toBeUndefined();
  });

  test('what a report counts as built after it is what was built after it, as long as the ledger reaches back that far (any segments, any ledger size)', () => {
    // A model with the whole history: packets of block b at positions > at,
    // if no segment the ledger dropped (it keeps the last `size`; FDT turns
    // are none) had a packet after at; else none.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.record({ block: fc.integer({ min: -1, max: 4 }), count: fc.integer({ min: 1, max: 9 }) }), { minLength: 1, maxLength: 300 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
        (size, turns, picks) => {
          const t = new NeedTable(size);
          const history: { block: number; start: number; count: number }[] = [];
          let p = 0;
          for (const { block, count } of turns) {
            t.built(block, p, count);
            if (block >= 0) history.push({ block, start: p, count });
            p += count;
          }
          const need = 100_000;
          for (const [k, pick] of picks.entries()) {
            // Ascending positions (a stale one is dropped), one member each.
            const at = Math.min(p - 1, Math.floor((pick % (p + 1)) / 2) + Math.floor((k * p) / picks.length / 2));
            const dropped = history.slice(0, Math.max(0, history.length - size));
            const datable = dropped.every((h) => h.start + h.count <= at + 1);
            const name = `m${k}`;
            t.expect(name);
            expect(t.report(name, at, 0, [0, 1, 2, 3, 4].map((block) => ({ block, need })))).toBe(true);
            for (let b = 0; b <= 4; b++) {
              let after = 0;
              if (datable) for (const h of history) if (h.block === b) after += Math.max(0, h.start + h.count - Math.max(h.start, at + 1));
              expect(t.wanted(b)).toBe(Math.ceil(packetsFor(need, 0) - after));
            }
            t.forget(name);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('sequence numbers wrap: a report near 2^32 is dated by the ledger', () => {
    const t = new NeedTable();
    const base = 2 ** 32 - 10;
    t.built(0, base, 20); // positions 2^32 − 10 .. 2^32 + 9
    t.expect('x');
    t.report('x', (base + 4) >>> 0, 0, [{ block: 0, need: 15 }]);
    expect(t.wanted(0)).toBe(15 + NEED_MARGIN_SYMBOLS - 15);
    t.report('x', (base + 14) >>> 0, 0, [{ block: 0, need: 5 }]);
    expect(t.wanted(0)).toBe(5 + NEED_MARGIN_SYMBOLS - 5);
  });
});
