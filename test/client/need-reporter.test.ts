/** NeedReporter (docs/PROTOCOL.md §7a.1): what a channel's NEED reports say, and when one is due. Counted, no clock. */
import { LOSS_HORIZON, NeedReporter } from '../../lib/client/need-reporter';
import { NEED_LOSS_SCALE } from '../../lib/protocol/control-header';
import { Rng } from '../../lib/support/rng';

const blocks = (needs: number[], toi = 1): { toi: number; sbn: number; need: number }[] => needs.map((need, sbn) => ({ toi, sbn, need }));

describe('NeedReporter', () => {
  test('nothing before the first packet; then the highest sequence number, in serial order across the wrap', () => {
    const r = new NeedReporter();
    expect(r.report(blocks([5]))).toBeUndefined();
    r.record(0xfffffffe, 1, 0, 256);
    r.record(0xffffffff, 1, 0, 256);
    r.record(3, 1, 0, 256);
    r.record(1, 1, 0, 256); // overtaken: does not move the highest back
    expect(r.report(blocks([5]))).toMatchObject({ rqseq: 3, entries: [{ toi: 1, firstSbn: 0, lastSbn: 0, need: 5 }] });
  });

  test('the loss it says is the fraction of sequence numbers missing over the recent packets', () => {
    const rng = new Rng(7);
    const r = new NeedReporter();
    let seq = 100;
    let last: number | undefined;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 256; i++, seq++) if (rng.unit() >= 0.1) r.record(seq, 1, 0, 1 << 30);
      last = r.report(blocks([round + 1]))?.loss;
    }
    expect((last as number) / NEED_LOSS_SCALE).toBeGreaterThan(0.07);
    expect((last as number) / NEED_LOSS_SCALE).toBeLessThan(0.13);
    // After the loss stops, it is forgotten within a few horizons.
    for (let round = 0; round < (4 * LOSS_HORIZON) / 256; round++) {
      for (let i = 0; i < 256; i++, seq++) r.record(seq, 1, 0, 1 << 30);
      last = r.report(blocks([round + 100]))?.loss;
    }
    expect((last as number) / NEED_LOSS_SCALE).toBeLessThan(0.02);
  });

  test('due every `everyPackets` packets, and when the packets move on to another block after 16', () => {
    const r = new NeedReporter();
    let due = 0;
    for (let s = 0; s < 1000; s++) if (r.record(s, 1, 0, 256)) (due++, r.report(blocks([1000 - s])));
    expect(due).toBe(3);
    r.report(blocks([1]));
    expect(r.record(1000, 1, 1, 256)).toBe(false); // another block, but 16 packets have not arrived since the last report
    const r2 = new NeedReporter();
    for (let s = 0; s < 20; s++) r2.record(s, 1, 0, 256);
    expect(r2.record(20, 1, 1, 256)).toBe(true);
  });

  test('turns going round a window of 3 blocks are not moves to another block; a block entering the window is', () => {
    // Turns of 4 packets over blocks 0, 1, 2 (a window of 3), then block 3
    // takes block 0's slot. everyPackets out of reach: only moves count.
    const r = new NeedReporter();
    const dueAt: number[] = [];
    let seq = 0;
    const turns = (sbns: number[], packets: number): void => {
      for (let k = 0; k < packets; k++, seq++) if (r.record(seq, 1, sbns[Math.floor(k / 4) % sbns.length], 1 << 30)) (dueAt.push(seq), r.report(blocks([1])));
    };
    turns([0, 1, 2], 3000);
    expect(dueAt).toEqual([]);
    turns([3, 1, 2], 3000);
    expect(dueAt).toEqual([3000]);
    // Block 0 again after 3 000 packets without it: new to the stream again (a pass later).
    turns([1, 2, 0], 40);
    expect(dueAt).toEqual([3000, 6008]);
  });

  test('no report when nothing arrived and the needs are as last said; one when a block decoded meanwhile', () => {
    const r = new NeedReporter();
    r.record(1, 1, 0, 256);
    expect(r.report(blocks([3, 4]))).toBeDefined();
    expect(r.report(blocks([3, 4]))).toBeUndefined();
    expect(r.report(blocks([0, 4]))).toMatchObject({ entries: [{ toi: 1, firstSbn: 0, lastSbn: 0, need: 0 }, { toi: 1, firstSbn: 1, lastSbn: 1, need: 4 }] });
  });
});
