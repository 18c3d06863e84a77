// FDT cadence (lib/stream/fdt-cadence.ts, docs/PROTOCOL.md §10.3): one FDT
// packet every `interval` positions from position 0; FDT_SPARSE_FACTOR times
// fewer while every member of a stream by need has reported; back to the
// interval, counted from the last FDT packet, as soon as one has not.
import { FDT_SPARSE_FACTOR, FdtCadence } from '../../lib/stream/fdt-cadence';
import { NeedTable } from '../../lib/stream/need-table';
import { FDT_TURN, StreamSchedule } from '../../lib/stream/schedule';
import { passQuota } from '../../lib/stream/window-size';

/** Positions of the FDT packets among the first `n`, building one position at a time; `each(p)` runs before position p. */
function fdtPositions(c: FdtCadence, n: number, each: (p: number) => void = () => undefined): number[] {
  const out: number[] = [];
  for (let p = 0; p < n; p++) {
    each(p);
    if (c.toNext(p) === 0) {
      c.sent(p);
      out.push(p);
    }
  }
  return out;
}

test('without members that hold the FDT: position 0, then every interval (p mod interval = 0)', () => {
  expect(fdtPositions(new FdtCadence(10), 45)).toEqual([0, 10, 20, 30, 40]);
  expect(fdtPositions(new FdtCadence(10, () => false), 45)).toEqual([0, 10, 20, 30, 40]);
  // A stream that starts elsewhere (ChannelStream firstSequence) keeps the multiples.
  const c = new FdtCadence(10);
  expect([25, 26, 27, 28, 29, 30].map((p) => c.toNext(p))).toEqual([5, 4, 3, 2, 1, 0]);
});

test('while every member holds it, every FDT_SPARSE_FACTOR intervals; a member that does not brings the next one within an interval of the last', () => {
  let everyone = false;
  const c = new FdtCadence(10, () => everyone);
  const got = fdtPositions(c, 300, (p) => {
    if (p === 15) everyone = true;
    if (p === 200) everyone = false;
  });
  const sparse = 10 * FDT_SPARSE_FACTOR;
  // 0 and 10 dense; from 15 on sparse, counted from 10; at 200 dense again: the next is the first position at least 10 after the last.
  const last = 10 + sparse * Math.floor((199 - 10) / sparse);
  const expected = [0, 10];
  for (let p = 10 + sparse; p <= last; p += sparse) expected.push(p);
  for (let p = Math.max(200, last + 10); p < 300; p += 10) expected.push(p);
  expect(got).toEqual(expected);
});

test('a schedule by need: sparse FDT packets once its one member has reported, the interval again for a new member until it reports', () => {
  const table = new NeedTable();
  const gate = { pin() {}, unpin() {}, ready: () => true };
  const s = new StreamSchedule({ blocks: [{ obj: 0, sbn: 0, quota: passQuota(100_000, 0.15) }], fdtBlocks: 1, fdtInterval: 16, windowBlocks: 1, gate, needs: table });
  s.start();
  table.expect('a');
  const fdt: number[] = [];
  let p = 0;
  const until = (end: number): void => {
    while (p < end) {
      const t = s.next(p, end - p);
      if (t.block === FDT_TURN) fdt.push(p);
      table.built(t.block, p, t.want);
      s.sent(t, t.want);
      p += t.want;
    }
  };
  until(100);
  expect(fdt).toEqual([0, 16, 32, 48, 64, 80, 96]);
  table.report('a', p - 1, 0, [{ block: 0, need: 50_000 }]);
  until(600);
  expect(fdt.slice(7)).toEqual([176, 256, 336, 416, 496, 576]);
  table.expect('b');
  until(700);
  expect(fdt.slice(13)).toEqual([600, 616, 632, 648, 664, 680, 696]);
  table.forget('b');
  until(900);
  expect(fdt.slice(20)).toEqual([776, 856]);
});
