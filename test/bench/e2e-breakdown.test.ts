/**
 * bench:e2e's breakdown of a receiver's time (bench/e2e-breakdown.ts): its
 * pieces add up to the time over the floor exactly; the pieces no fetch
 * counter sees (the bench's queue of spawns, the launch, the end after the
 * tail, the exit) come out of "stream" when the fetch reports summaryAtMs
 * and endPhasesMs, and stay in it when it does not (an older build).
 */
import { beyondK, breakdown, BreakdownInput } from '../../bench/e2e-breakdown';

const base: BreakdownInput = {
  seconds: 12.5,
  bytes: 256 * 2 ** 20,
  symbolSize: 1280,
  packetBytes: 1308,
  rateMbit: 200,
  lossPct: 5,
  realisedLoss: 0.051,
  summary: { startupMs: 300, tailMs: 80, packetsReceived: 215_000, neededSymbols: 209_716, symbolsLate: 900 },
};

function sumOfPieces(b: NonNullable<ReturnType<typeof breakdown>>): number {
  return b.queue_s + b.launch_s + b.startup_s + b.headers_s + b.extra_s + b.loss_s + b.stream_s + b.tail_s + b.end_s + b.exit_s;
}

test('the launch, the end and the exit are taken out of the stream, and the pieces still add up to the time', () => {
  const old = breakdown(base);
  // Spawned 0.05 s after the bench's start, its summary reached the bench at 12.46 s, when the process was 12.35 s old; 12 ms from published to the line.
  const now = breakdown({ ...base, spawnedAt: 0.05, summarySeen: 12.46, summary: { ...base.summary, summaryAtMs: 12_350, endPhasesMs: { close: 9, summary: 3 } } });
  expect(old && now).toBeDefined();
  if (!old || !now) return;
  expect([now.queue_s, now.launch_s, now.end_s, now.exit_s]).toEqual([0.05, 0.06, 0.012, 0.04]);
  expect([old.queue_s, old.launch_s, old.end_s, old.exit_s]).toEqual([0, 0, 0, 0]);
  expect(now.stream_s).toBeCloseTo(old.stream_s - 0.05 - 0.06 - 0.012 - 0.04, 2);
  for (const b of [old, now]) expect(sumOfPieces(b) + b.floor_s).toBeCloseTo(b.seconds, 2);
});

test("an older fetch's summary line still times its exit; its launch and end stay in the stream", () => {
  const b = breakdown({ ...base, spawnedAt: 0.05, summarySeen: 12.46 });
  expect(b).toBeDefined();
  if (!b) return;
  expect([b.queue_s, b.launch_s, b.end_s, b.exit_s]).toEqual([0, 0, 0, 0.04]);
  expect(sumOfPieces(b) + b.floor_s).toBeCloseTo(b.seconds, 2);
});

test('the packets beyond K split by kind; what no counter explains is "other", null when a counter is missing', () => {
  const counts = { packetsReceived: 218_739, neededSymbols: 209_716, symbolsReceived: 209_838, symbolsLate: 3_973, symbolsSurplus: 3_500, symbolsDuplicate: 0, symbolsDropped: 10, budgetDrops: 5, fdtPackets: 1_140 };
  expect(beyondK(counts)).toEqual({ taken: 122, late: 3_973, surplus: 3_500, duplicate: 0, dropped: 15, fdt: 1_140, other: 273 });
  const older = beyondK({ ...counts, symbolsSurplus: undefined, fdtPackets: undefined });
  expect([older.surplus, older.fdt, older.other, older.late]).toEqual([null, null, null, 3_973]);
  const b = breakdown({ ...base, summary: { ...base.summary, ...counts } });
  expect(b?.beyond_k.other).toBe(273);
  expect(b?.packets_beyond_k).toBe(218_739 - 209_716);
});
