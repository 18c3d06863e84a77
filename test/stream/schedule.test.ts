// StreamSchedule alone: which block each stream position carries. No
// encoder, no allocator, no bytes: a fake gate decides readiness and records
// pins.
import fc from 'fast-check';
import { InvalidServerConfigError } from '../../lib/errors';
import { BlockGate, FDT_TURN, ScheduleOptions, ScheduledBlock, StreamSchedule } from '../../lib/stream/schedule';
import { passQuota } from '../../lib/stream/window-size';

class FakeGate implements BlockGate {
  readonly pinned = new Map<number, number>();
  readonly notReady = new Set<number>();
  readonly events: string[] = [];
  maxPinned = 0;
  pin(i: number): void {
    this.pinned.set(i, (this.pinned.get(i) ?? 0) + 1);
    this.maxPinned = Math.max(this.maxPinned, this.pinned.size);
    this.events.push(`pin ${i}`);
  }
  unpin(i: number): void {
    const n = this.pinned.get(i);
    if (n === undefined) throw new Error(`unpin ${i}: not pinned`);
    if (n === 1) this.pinned.delete(i);
    else this.pinned.set(i, n - 1);
    this.events.push(`unpin ${i}`);
  }
  ready(i: number): boolean {
    return !this.notReady.has(i);
  }
}

const blocks = (...quotas: number[]): ScheduledBlock[] => quotas.map((quota, sbn) => ({ obj: 0, sbn, quota }));

function schedule(options: Partial<ScheduleOptions> & { blocks: ScheduledBlock[] }): { s: StreamSchedule; gate: FakeGate } {
  const gate = new FakeGate();
  const s = new StreamSchedule({ fdtBlocks: 1, gate, ...options });
  return { s, gate };
}

/**
 * Drives the schedule as ChannelStream does, `n` positions from `from`,
 * batches of `batch`; each turn sends what it wants unless `cut` says fewer.
 * Returns the block index of every position (FDT_TURN for the FDT).
 */
function drive(s: StreamSchedule, n: number, from = 0, batch = 256, cut = (want: number): number => want): number[] {
  const out: number[] = [];
  let p = from;
  while (out.length < n) {
    const left = Math.min(batch, n - out.length);
    let built = 0;
    while (built < left) {
      const t = s.next(p, left - built);
      expect(t.want).toBeGreaterThanOrEqual(1);
      expect(t.want).toBeLessThanOrEqual(left - built);
      const count = Math.max(1, Math.min(t.want, cut(t.want)));
      for (let k = 0; k < count; k++) out.push(t.block);
      s.sent(t, count);
      p += count;
      built += count;
    }
  }
  return out;
}

/** Lengths of the runs of equal values. */
function runs(xs: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const x of xs) {
    if (out.length > 0 && out[out.length - 1][0] === x) out[out.length - 1][1]++;
    else out.push([x, 1]);
  }
  return out;
}

describe('StreamSchedule: FDT cadence and round-robin', () => {
  test('every fdtInterval-th position (0 too) is an FDT turn; FDT blocks take turns', () => {
    const { s } = schedule({ blocks: blocks(10, 10), fdtInterval: 8, fdtBlocks: 3 });
    const fdtSbns: number[] = [];
    let p = 0;
    while (p < 80) {
      const t = s.next(p, 100);
      if (t.block === FDT_TURN) {
        expect(p % 8).toBe(0);
        expect(t.want).toBe(1);
        fdtSbns.push(t.sbn);
      } else {
        // A turn never runs past the next FDT position.
        expect((p % 8) + t.want).toBeLessThanOrEqual(8);
      }
      s.sent(t, t.want);
      p += t.want;
    }
    expect(fdtSbns).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
  });

  test('symbolsPerTurn packets of each block in turn, cut at the FDT position', () => {
    // Quotas far above what 32 positions send: no block sits out (the share by quota is tested below).
    const { s } = schedule({ blocks: blocks(100, 100, 100), symbolsPerTurn: 4, fdtInterval: 16 });
    expect(runs(drive(s, 32))).toEqual([
      [FDT_TURN, 1],
      [0, 4],
      [1, 4],
      [2, 4],
      [0, 3],
      [FDT_TURN, 1],
      [1, 4],
      [2, 4],
      [0, 4],
      [1, 3],
    ]);
  });

  test('a window of one block takes every position up to the next FDT packet; a batch end cuts a turn', () => {
    const { s } = schedule({ blocks: blocks(1000), fdtInterval: 32 });
    expect(s.next(0, 100).block).toBe(FDT_TURN);
    expect(s.next(1, 100)).toEqual({ block: 0, sbn: 0, want: 31, slot: 0 });
    expect(s.next(5, 10)).toEqual({ block: 0, sbn: 0, want: 10, slot: 0 });
  });

  test('no blocks: only FDT turns', () => {
    const { s } = schedule({ blocks: [], fdtInterval: 4 });
    expect(drive(s, 20).every((b) => b === FDT_TURN)).toBe(true);
    expect(s.sliding).toBe(false);
    expect(s.windowBlocks).toBe(0);
  });

  test('bad options are InvalidServerConfigErrors', () => {
    for (const o of [{ symbolsPerTurn: 0 }, { symbolsPerTurn: 1.5 }, { fdtInterval: 1 }, { windowBlocks: 0 }, { fdtBlocks: 0 }]) {
      expect(() => schedule({ blocks: blocks(5), ...o })).toThrow(InvalidServerConfigError);
    }
  });

  test('passQuota is ceil(K(1 + overhead)), at least 1', () => {
    expect(passQuota(40, 0.25)).toBe(50);
    expect(passQuota(41, 0.15)).toBe(48);
    expect(passQuota(1, 0)).toBe(1);
  });
});

describe('StreamSchedule: a plain window shares by quota', () => {
  /** Packets of each block among `positions` (FDT positions left out). */
  function tally(xs: number[], n: number): number[] {
    const c = new Array<number>(n).fill(0);
    for (const x of xs) if (x !== FDT_TURN) c[x]++;
    return c;
  }

  test('a block that has had its quota sits out until every block has had its own; then a new pass', () => {
    const { s } = schedule({ blocks: blocks(10, 3, 1), symbolsPerTurn: 4, fdtInterval: 1000 });
    const xs = drive(s, 1 + 2 * 14).slice(1);
    // Pass 1: 4 of 0, 3 of 1 (its quota), 1 of 2, then 0 alone up to 10. Pass 2
    // begins where the cursor stands (block 1): 3 of 1, 1 of 2, 10 of 0.
    expect(runs(xs)).toEqual([
      [0, 4],
      [1, 3],
      [2, 1],
      [0, 6],
      [1, 3],
      [2, 1],
      [0, 10],
    ]);
    expect(s.sliding).toBe(false);
  });

  test('after m whole passes every block has had m quotas, whatever the turns, FDT cadence and batch cuts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 5 }),
        (quotas, symbolsPerTurn, fdtInterval, batch, cutEvery) => {
          const { s } = schedule({ blocks: blocks(...quotas), symbolsPerTurn, fdtInterval });
          const sum = quotas.reduce((a, b) => a + b, 0);
          let turns = 0;
          const xs = drive(s, 4 * sum + 4 * Math.ceil((4 * sum) / (fdtInterval - 1)), 0, batch, (want) => (++turns % cutEvery === 0 ? want - 1 : want));
          // Every prefix of the data packets: with m = floor(D / sum) whole passes behind
          // it, each block has had between m and m + 1 of its quotas.
          const data = xs.filter((x) => x !== FDT_TURN);
          const c = new Array<number>(quotas.length).fill(0);
          const outside: string[] = [];
          data.forEach((x, d) => {
            c[x]++;
            const m = Math.floor((d + 1) / sum);
            quotas.forEach((q, i) => {
              if (c[i] < m * q || c[i] > (m + 1) * q) outside.push(`block ${i} had ${c[i]} after ${d + 1}`);
            });
          });
          expect(outside).toEqual([]);
          expect(tally(xs, quotas.length).every((n, i) => n >= 4 * quotas[i])).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  test('a lone block takes every data position (no quota, no pass)', () => {
    const { s } = schedule({ blocks: blocks(2), fdtInterval: 8 });
    const xs = drive(s, 64);
    expect(tally(xs, 1)).toEqual([56]);
  });
});

describe('StreamSchedule: small blocks pinned ahead (prepareAheadPackets)', () => {
  /** A gate whose blocks are ready one batch after they were pinned: a preparation off the JS thread. */
  class AsyncGate extends FakeGate {
    batch = 0;
    private readonly since = new Map<number, number>();
    override pin(i: number): void {
      if (!this.pinned.has(i)) this.since.set(i, this.batch);
      super.pin(i);
    }
    override unpin(i: number): void {
      super.unpin(i);
      if (!this.pinned.has(i)) this.since.delete(i);
    }
    override ready(i: number): boolean {
      const at = this.since.get(i);
      return at !== undefined && at < this.batch;
    }
  }

  /** `batches` fills of `size` positions; returns the packets per block. */
  function fills(s: StreamSchedule, gate: AsyncGate, batches: number, size: number, n: number): number[] {
    const c = new Array<number>(n).fill(0);
    let p = 0;
    for (let b = 0; b < batches; b++) {
      gate.batch++;
      let built = 0;
      while (built < size) {
        const t = s.next(p, size - built);
        if (t.block !== FDT_TURN) c[t.block] += t.want;
        s.sent(t, t.want);
        p += t.want;
        built += t.want;
      }
    }
    return c;
  }

  const quotas = [1000, 3, 1, 1000, 2, 1];
  const sum = quotas.reduce((a, b) => a + b, 0);

  test('with the next block alone pinned, a small block keeps the channel until its successor is ready (the stall)', () => {
    const gate = new AsyncGate();
    const s = new StreamSchedule({ blocks: blocks(...quotas), windowBlocks: 1, fdtInterval: 1000, fdtBlocks: 1, gate });
    gate.batch = 1;
    s.start();
    const c = fills(s, gate, 20, 512, quotas.length);
    expect(s.counters.windowStalls).toBeGreaterThan(0);
    // Block 1 (quota 3) had far more than its quota per pass.
    const passes = Math.ceil((20 * 512) / sum);
    expect(c[1]).toBeGreaterThan(passes * quotas[1]);
  });

  test('pinned ahead until the quotas reach prepareAheadPackets: no stall, each block its quota per pass', () => {
    const gate = new AsyncGate();
    const s = new StreamSchedule({ blocks: blocks(...quotas), windowBlocks: 1, fdtInterval: 1000, fdtBlocks: 1, gate, prepareAheadPackets: 600 });
    gate.batch = 1;
    s.start();
    // Window [0]; next 1 (quota 3); then 2 (1) and 3 (1000, reaching 600): pinned.
    expect([...gate.pinned.keys()].sort()).toEqual([0, 1, 2, 3]);
    const c = fills(s, gate, 20, 512, quotas.length);
    expect(s.counters.windowStalls).toBe(0);
    const data = c.reduce((a, b) => a + b, 0);
    const m = Math.floor(data / sum);
    quotas.forEach((q, i) => {
      expect(c[i]).toBeGreaterThanOrEqual(m * q);
      expect(c[i]).toBeLessThanOrEqual((m + 1) * q);
    });
    // Never more pinned than the window, the next block and the small ones up to one reaching 600.
    expect(gate.maxPinned).toBeLessThanOrEqual(5);
    s.close();
    expect(gate.pinned.size).toBe(0);
  });

  test('blocks with quotas of prepareAheadPackets or more: one pinned ahead, as without it', () => {
    const gate = new FakeGate();
    const s = new StreamSchedule({ blocks: blocks(700, 700, 700, 700), windowBlocks: 1, fdtInterval: 1000, fdtBlocks: 1, gate, prepareAheadPackets: 600 });
    s.start();
    expect([...gate.pinned.keys()].sort()).toEqual([0, 1]);
    drive(s, 5000);
    expect(gate.maxPinned).toBe(2);
  });

  test('a negative or fractional prepareAheadPackets is an InvalidServerConfigError', () => {
    for (const prepareAheadPackets of [-1, 1.5]) expect(() => schedule({ blocks: blocks(5, 5), prepareAheadPackets })).toThrow(InvalidServerConfigError);
  });
});

describe('StreamSchedule: sliding window', () => {
  test('W blocks take turns; each leaves after its quota for the next in cyclic order; W + 1 pinned', () => {
    const quotas = [5, 6, 7, 8];
    const { s, gate } = schedule({ blocks: blocks(...quotas), windowBlocks: 2, symbolsPerTurn: 2, fdtInterval: 1000 });
    expect(s.sliding).toBe(true);
    expect(s.windowBlocks).toBe(2);
    s.start();
    expect([...gate.pinned.keys()]).toEqual([0, 1, 2]);
    const seq = drive(s, 1 + 2 * quotas.reduce((a, b) => a + b, 0)).slice(1);
    // Two passes: every block had exactly its quota per pass.
    for (let b = 0; b < 4; b++) expect(seq.filter((x) => x === b).length).toBe(2 * quotas[b]);
    // Turns alternate between the two slots; block 0 (quota 5) leaves after
    // 2 + 2 + 1, block 1 (quota 6) after 2 + 2 + 2; 2 and 3 take their slots.
    expect(runs(seq).slice(0, 8)).toEqual([
      [0, 2],
      [1, 2],
      [0, 2],
      [1, 2],
      [0, 1],
      [1, 2],
      [2, 2],
      [3, 2],
    ]);
    expect(gate.maxPinned).toBe(3);
    expect(s.counters.windowAdvances).toBeGreaterThanOrEqual(4);
    expect(s.counters.windowStalls).toBe(0);
    s.close();
    expect(gate.pinned.size).toBe(0);
  });

  test('a block keeps its slot past its quota while the next is not ready (counted), and leaves once it is', () => {
    const { s, gate } = schedule({ blocks: blocks(4, 40, 4), windowBlocks: 1, fdtInterval: 1000 });
    gate.notReady.add(1);
    s.start();
    const first = drive(s, 1 + 20).slice(1);
    expect(first.every((b) => b === 0)).toBe(true);
    expect(s.counters.windowStalls).toBeGreaterThan(0);
    gate.notReady.delete(1);
    // The turn under way (a window of one runs to the next FDT position or
    // the end of the batch) finishes first; then block 1 comes in.
    const next = drive(s, 20, 21, 10);
    expect(next.slice(10).every((b) => b === 1)).toBe(true);
    expect(s.windowContents.map((b) => b.sbn)).toEqual([1]);
  });

  test('a turn cut short (an ESI wrap) counts only what was sent against the quota', () => {
    const { s } = schedule({ blocks: blocks(6, 6), windowBlocks: 1, fdtInterval: 1000 });
    s.start();
    const seq = drive(s, 1 + 12, 0, 256, () => 1).slice(1);
    expect(runs(seq)).toEqual([
      [0, 6],
      [1, 6],
    ]);
  });

  test('the cycle coming back to a block still in the window skips it: a block never holds two slots', () => {
    // Block 0's quota outlasts several passes of blocks 1 and 2 through the
    // other slot; each time the cycle reaches block 0 it is still in the
    // window, so the next block outside the window comes in instead.
    const { s, gate } = schedule({ blocks: blocks(100, 5, 5), windowBlocks: 2, symbolsPerTurn: 1, fdtInterval: 1000 });
    s.start();
    const seq: number[] = [];
    for (let p = 1; p <= 200; p++) {
      const t = s.next(p, 1);
      seq.push(t.block);
      s.sent(t, 1);
      const inWindow = s.windowContents.map((b) => b.sbn);
      expect(new Set(inWindow).size).toBe(inWindow.length);
    }
    // Block 0 alternates with 1 and 2 (5 each, in turn) until its quota of
    // 100 is spent, then leaves; the old code let the cycle put block 0 into
    // the second slot too, starving 1 and 2.
    const upTo = seq.lastIndexOf(0, 199) + 1;
    expect(seq.slice(0, upTo).filter((b) => b === 0).length).toBe(100);
    expect(seq.slice(0, upTo).filter((b) => b === 1).length).toBeGreaterThanOrEqual(45);
    expect(seq.slice(0, upTo).filter((b) => b === 2).length).toBeGreaterThanOrEqual(45);
    expect(gate.maxPinned).toBeLessThanOrEqual(3);
    s.close();
    expect(gate.pinned.size).toBe(0);
  });

  test('W >= blocks: no window movement, every block pinned', () => {
    const { s, gate } = schedule({ blocks: blocks(3, 3, 3), windowBlocks: 5 });
    s.start();
    drive(s, 300);
    expect(s.sliding).toBe(false);
    expect(s.windowBlocks).toBe(3);
    expect(s.counters.windowAdvances).toBe(0);
    expect(gate.pinned.size).toBe(3);
  });
});

describe('StreamSchedule: blocks sealed later', () => {
  test('with room in the window, a new block is pinned at once and takes turns from the first turn it is ready', () => {
    const { s, gate } = schedule({ blocks: blocks(4), fdtInterval: 1000 });
    s.start();
    drive(s, 9);
    gate.notReady.add(1);
    expect(s.add({ obj: 0, sbn: 1, quota: 4 })).toBe(1);
    expect(gate.pinned.has(1)).toBe(true);
    expect(drive(s, 20, 9)).not.toContain(1);
    expect(s.windowBlocks).toBe(1);
    gate.notReady.delete(1);
    expect(drive(s, 20, 29)).toContain(1);
    expect(s.windowBlocks).toBe(2);
    expect(s.counters.windowAdvances).toBe(1);
  });

  test('before start, a new block joins the first window and is pinned by start', () => {
    const { s, gate } = schedule({ blocks: [] });
    s.add({ obj: 0, sbn: 0, quota: 3 });
    expect(s.windowBlocks).toBe(1);
    s.start();
    expect([...gate.pinned.keys()]).toEqual([0]);
  });

  test('a full window that held every block: the new block comes next, pinned ahead', () => {
    const { s, gate } = schedule({ blocks: blocks(3, 3), windowBlocks: 2, fdtInterval: 1000 });
    s.start();
    expect(s.sliding).toBe(false);
    s.add({ obj: 0, sbn: 2, quota: 3 });
    expect(s.sliding).toBe(true);
    expect(gate.pinned.has(2)).toBe(true);
    const seq = drive(s, 1 + 6).slice(1);
    expect(seq).toEqual([0, 0, 0, 1, 1, 1]);
    // Cyclic order: 2 took block 0's slot, then 0 took block 1's.
    expect(s.windowContents.map((b) => b.sbn)).toEqual([2, 0]);
  });

  test('a sliding window whose run ends at the last block: the new block comes before block 0', () => {
    const { s, gate } = schedule({ blocks: blocks(2, 2, 2), windowBlocks: 2, symbolsPerTurn: 2, fdtInterval: 1000 });
    s.start();
    // Block 0 leaves for block 2: the window is {2, 1}, and block 0 is next.
    drive(s, 1 + 2);
    expect(s.windowContents.map((b) => b.sbn)).toEqual([2, 1]);
    expect(gate.pinned.has(0)).toBe(true);
    s.add({ obj: 0, sbn: 3, quota: 2 });
    expect(gate.pinned.has(0)).toBe(false);
    expect(gate.pinned.has(3)).toBe(true);
    drive(s, 2, 3);
    expect(s.windowContents.map((b) => b.sbn)).toEqual([2, 3]);
  });

  test('no block leaves the window while added blocks are still being admitted: they come before the next one', () => {
    const { s, gate } = schedule({ blocks: blocks(2), windowBlocks: 3, fdtInterval: 1000 });
    s.start();
    gate.notReady.add(1).add(2);
    s.add({ obj: 0, sbn: 1, quota: 2 });
    s.add({ obj: 0, sbn: 2, quota: 2 });
    s.add({ obj: 0, sbn: 3, quota: 2 });
    expect(s.sliding).toBe(true);
    expect([...gate.pinned.keys()]).toEqual([0, 1, 2, 3]);
    // Block 0 keeps its slot past its quota (a stall) until 1 and 2 are in.
    expect(drive(s, 1 + 6).slice(1)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(s.counters.windowStalls).toBeGreaterThan(0);
    gate.notReady.clear();
    drive(s, 1, 7);
    expect(s.windowContents.map((b) => b.sbn)).toEqual([3, 1, 2]);
  });

  test('after close, nothing is added or pinned', () => {
    const { s, gate } = schedule({ blocks: blocks(3) });
    s.start();
    s.close();
    s.add({ obj: 0, sbn: 1, quota: 3 });
    expect(gate.pinned.size).toBe(0);
    expect(s.blockCount).toBe(1);
  });
});
