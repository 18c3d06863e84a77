// LivePlayout alone: which segments it wants, the order it writes them in,
// and when it gives one up (never silently: every gap is reported, counted).
import { createHash } from 'crypto';
import { PassThrough } from 'stream';
import { LiveGap, LivePlayout } from '../../lib/client/live-playout';
import type { FdtFile } from '../../lib/protocol/fdt-schema';

const file = (name: string): FdtFile => ({ toi: 1n, contentLocation: name }) as FdtFile;
const seg = (n: number): FdtFile => file(`cam/${n}`);
const bytes = (n: number): Buffer => Buffer.from(`segment ${n};`);
const object = (n: number) => ({
  name: `cam/${n}`,
  oti: { transferLength: bytes(n).length, symbolSize: 16, sourceBlocks: 1, subBlocks: 1, alignment: 4 },
  sha256: createHash('sha256').update(bytes(n)).digest(),
});

function playout(extra: { fromStart?: boolean; latencyMs?: number } = {}) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const gaps: LiveGap[] = [];
  const now = { t: 0 };
  const p = new LivePlayout({ name: 'cam', out, onGap: (g) => gaps.push(g), clock: () => now.t, ...extra });
  /** Decodes segment n: its sink gets its block and commits. */
  const decode = async (n: number): Promise<void> => {
    const sink = p.open(object(n));
    await sink.writeBlock(0, 0, bytes(n));
    void sink.commit();
    await new Promise((r) => setImmediate(r));
  };
  return { p, gaps, now, decode, text: () => text };
}

test('starts at the newest listed segment (or the oldest with fromStart); earlier ones and other names are not wanted', () => {
  const { p } = playout();
  p.instance([], false);
  expect(p.wants(seg(0))).toBe(false);
  p.instance([seg(3), seg(4), seg(5)], false);
  expect(p.stats.startSeq).toBe(5);
  expect([p.wants(seg(4)), p.wants(seg(5)), p.wants(seg(6)), p.wants(file('cam/x')), p.wants(file('other/6')), p.wants(file('cam'))]).toEqual([false, true, true, false, false, true]);
  const f = playout({ fromStart: true }).p;
  f.instance([seg(3), seg(4), seg(5)], false);
  expect(f.stats.startSeq).toBe(3);
  f.close();
  p.close();
});

test('segments decoded out of order are written in order', async () => {
  const { p, decode, text, gaps } = playout({ fromStart: true });
  p.instance([seg(0), seg(1), seg(2)], false);
  await decode(2);
  await decode(0);
  expect(text()).toBe('segment 0;');
  await decode(1);
  expect(text()).toBe('segment 0;segment 1;segment 2;');
  expect(gaps).toEqual([]);
  expect(p.finished).toBe(false);
  p.instance([seg(0), seg(1), seg(2)], true);
  expect(p.finished).toBe(true);
  p.close();
});

test('a segment that leaves the window undecoded is reported, counted and skipped; the next ones follow', async () => {
  const { p, decode, text, gaps } = playout({ fromStart: true });
  p.instance([seg(0), seg(1), seg(2)], false);
  await decode(0);
  await decode(2);
  expect(text()).toBe('segment 0;');
  // The server dropped segment 1 before it decoded here.
  p.instance([seg(2), seg(3)], false);
  expect(gaps).toEqual([{ seq: 1, reason: 'left-window' }]);
  await new Promise((r) => setImmediate(r));
  expect(text()).toBe('segment 0;segment 2;');
  expect(p.stats).toMatchObject({ gaps: 1, gapSeqs: [1], segmentsWritten: 2 });
  p.close();
});

test('--latency-ms: a segment a later one has waited that long for is given up; not before', async () => {
  const { p, decode, text, gaps, now } = playout({ fromStart: true, latencyMs: 500 });
  p.instance([seg(0), seg(1)], false);
  await decode(1);
  now.t = 499;
  (p as unknown as { advance(): void }).advance();
  expect(gaps).toEqual([]);
  now.t = 500;
  (p as unknown as { advance(): void }).advance();
  expect(gaps).toEqual([{ seq: 0, reason: 'late' }]);
  await new Promise((r) => setImmediate(r));
  expect(text()).toBe('segment 1;');
  p.close();
});

test('a segment whose bytes do not match its SHA-256 is refused (DigestMismatchError)', async () => {
  const { p } = playout({ fromStart: true });
  p.instance([seg(0)], false);
  const sink = p.open({ ...object(0), sha256: Buffer.alloc(32) });
  await sink.writeBlock(0, 0, bytes(0));
  await expect(sink.commit()).rejects.toThrow(/SHA-256/);
  p.close();
});
