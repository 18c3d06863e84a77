/** WriteThrough: runs of consecutive source symbols go to the sink in one write, at their place in the object (RFC 6330 §4.4.1.2). */
import { LARGE_PREWRITE_BYTES, LARGE_RUNS, MAX_HOLE, MAX_SLAB_BYTES, PREWRITE_BYTES, WriteThrough } from '../../lib/client/write-through';

const T = 1024;

/** Two blocks of 10 symbols; the object ends 100 bytes into block 1's last symbol. */
const layout = {
  blockOffset: (sbn: number) => sbn * 10 * T,
  blockLength: (sbn: number) => (sbn === 0 ? 10 * T : 9 * T + 100),
};

function setup() {
  const writes: { offset: number; data: Uint8Array }[] = [];
  const wt = new WriteThrough(
    {
      prewrite: (offset, data) => {
        writes.push({ offset, data: Uint8Array.from(data) });
      },
    },
    layout,
    T,
    2,
    0,
  );
  return { wt, writes };
}

function symbol(fill: number): Buffer {
  return Buffer.alloc(T, fill);
}

describe('WriteThrough', () => {
  test('flush writes every run gathered so far (a fetch stopping: a resumable sink keeps them), then nothing twice', () => {
    const { wt, writes } = setup();
    for (const esi of [0, 1]) wt.gather(0, esi, symbol(esi + 1), 0);
    for (const esi of [8, 9]) wt.gather(1, esi, symbol(esi + 1), 0);
    wt.gather(0, 5, symbol(6), 0);
    expect(writes).toHaveLength(1);
    wt.flush();
    expect(writes.map((w) => [w.offset, w.data.length])).toEqual([
      [0, 2 * T],
      [5 * T, T],
      // Block 1's last symbol ends with the object: 100 bytes of it.
      [10 * T + 8 * T, T + 100],
    ]);
    wt.flush();
    expect(writes).toHaveLength(3);
  });

  test('consecutive symbols gather into one write, made when the run breaks', () => {
    const { wt, writes } = setup();
    for (const esi of [2, 3, 4]) wt.gather(0, esi, symbol(esi), 0);
    expect(writes).toEqual([]);
    wt.gather(0, 7, symbol(7), 0);
    expect(writes).toHaveLength(1);
    expect(writes[0].offset).toBe(2 * T);
    expect(writes[0].data.length).toBe(3 * T);
    expect([writes[0].data[0], writes[0].data[T], writes[0].data[2 * T]]).toEqual([2, 3, 4]);
  });

  test('blocks have runs of their own, written at the block offset', () => {
    const { wt, writes } = setup();
    wt.gather(0, 0, symbol(1), 0);
    wt.gather(1, 0, symbol(2), 0);
    wt.gather(1, 1, symbol(3), 0);
    wt.gather(0, 5, symbol(4), 0);
    wt.gather(1, 5, symbol(5), 0);
    expect(writes.map((w) => [w.offset, w.data.length])).toEqual([
      [0, T],
      [10 * T, 2 * T],
    ]);
  });

  test('the last symbol of the object is cut at its end', () => {
    const { wt, writes } = setup();
    wt.gather(1, 8, symbol(8), 0);
    wt.gather(1, 9, symbol(9), 0);
    wt.gather(1, 0, symbol(0), 0);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ offset: 18 * T });
    expect(writes[0].data.length).toBe(T + 100);
  });

  test(`a run is written once it holds ${LARGE_PREWRITE_BYTES} bytes for the first ${LARGE_RUNS} blocks gathering, ${PREWRITE_BYTES} for the others`, () => {
    const small = 64;
    const blocks = LARGE_RUNS + 2;
    const writes: { offset: number; length: number }[] = [];
    const span = 1 << 24;
    const wt = new WriteThrough(
      {
        prewrite: (offset, d) => {
          writes.push({ offset, length: d.length });
        },
      },
      { blockOffset: (sbn) => sbn * span, blockLength: () => span },
      small,
      blocks,
      0,
    );
    // Every block opens a run; then each gathers up to one symbol past a large run.
    for (let sbn = 0; sbn < blocks; sbn++) wt.gather(sbn, 0, Buffer.alloc(small), 0);
    for (let esi = 1; esi <= LARGE_PREWRITE_BYTES / small; esi++) for (let sbn = 0; sbn < blocks; sbn++) wt.gather(sbn, esi, Buffer.alloc(small), 0);
    const bySbn = (sbn: number) => writes.filter((w) => Math.floor(w.offset / span) === sbn).map((w) => w.length);
    for (let sbn = 0; sbn < LARGE_RUNS; sbn++) expect(bySbn(sbn)).toEqual([LARGE_PREWRITE_BYTES]);
    for (let sbn = LARGE_RUNS; sbn < blocks; sbn++) {
      const lengths = bySbn(sbn);
      expect(lengths.length).toBe(Math.floor(LARGE_PREWRITE_BYTES / PREWRITE_BYTES));
      expect(lengths.every((l) => l === PREWRITE_BYTES)).toBe(true);
    }
    // A sink that returns nothing may keep the bytes: no buffer is reused.
    expect(wt.spareBuffers).toBe(0);
  });

  test('runs broken by losses share their block\'s slab; a slab is used again once every write from it has landed, never before', async () => {
    const small = 64;
    const per = LARGE_PREWRITE_BYTES / small; // symbols per slab of block 0
    const calls: { offset: number; data: Uint8Array; land: (ok: boolean) => void }[] = [];
    const wt = new WriteThrough(
      {
        prewrite: (offset, data) =>
          new Promise<boolean>((resolve) => {
            calls.push({ offset, data, land: resolve });
          }),
      },
      { blockOffset: () => 0, blockLength: () => 1 << 30 },
      small,
      1,
      0,
    );
    // Every third ESI lost: runs of two, each written when the next breaks it, all in one slab.
    let esi = 0;
    const gatherSlab = (fill: number) => {
      for (let n = 0; n < per; esi++) {
        if (esi % 3 === 2) continue;
        wt.gather(0, esi, Buffer.alloc(small, fill), 0);
        n++;
      }
    };
    gatherSlab(1);
    const first = calls.length;
    expect(first).toBe(per / 2 - 1); // the last run is still being gathered
    expect(new Set(calls.map((c) => c.data.buffer)).size).toBe(1);
    const slabA = calls[0].data.buffer;
    // The slab is full: the next symbol writes its last run and takes a new slab.
    gatherSlab(2);
    expect(calls.length).toBe(per - 1);
    expect(calls[first].data.buffer).toBe(slabA);
    const slabB = calls[first + 1].data.buffer;
    expect(slabB).not.toBe(slabA);
    // Slab A's writes land but one: not spare yet.
    for (const c of calls.slice(0, first)) c.land(true);
    await new Promise((r) => setImmediate(r));
    expect(wt.spareBuffers).toBe(0);
    calls[first].land(false);
    await new Promise((r) => setImmediate(r));
    expect(wt.spareBuffers).toBe(1);
    // Slab B fills; the next slab is A again, with the new bytes.
    gatherSlab(3);
    const third = calls.slice(per - 1);
    expect(third[1].data.buffer).toBe(slabA);
    expect(third[1].data[0]).toBe(3);
    expect(third.every((c, i) => i === 0 || c.data.buffer !== slabB)).toBe(true);
    // A decoded block leaves its slab; spare once its writes land.
    const before = wt.spareBuffers;
    void wt.settle(0);
    expect(wt.spareBuffers).toBe(before);
    for (const c of calls) c.land(true);
    await new Promise((r) => setImmediate(r));
    expect(wt.spareBuffers).toBe(before + 2);
  });

  test(`slabs in use (open, or with writes not landed) stay within a bound (${MAX_SLAB_BYTES} bytes by default): beyond it symbols are left to the block's write, until a slab lands and is used again`, async () => {
    const per = LARGE_PREWRITE_BYTES / T; // symbols per slab
    const calls: { offset: number; data: Uint8Array; land: (ok: boolean) => void }[] = [];
    const wt = new WriteThrough(
      {
        prewrite: (offset, data) =>
          new Promise<boolean>((resolve) => {
            calls.push({ offset, data, land: resolve });
          }),
      },
      { blockOffset: () => 0, blockLength: () => 1 << 30 },
      T,
      1,
      0,
      3 * LARGE_PREWRITE_BYTES,
    );
    // Writes that do not land: 5 slabs' worth of symbols arrive, 3 slabs are all the bound allows.
    let esi = 0;
    for (; esi < 5 * per; esi++) wt.gather(0, esi, symbol(esi & 0xff), 0);
    expect(wt.slabBytes).toBe(3 * LARGE_PREWRITE_BYTES);
    // Each slab was written when it was full (the third by the first symbol that found no room); the last 2 slabs' worth were not gathered.
    expect(calls.map((c) => c.offset)).toEqual([0, per * T, 2 * per * T]);
    expect(wt.symbolsNotGathered).toBe(2 * per);
    const held = new Set(calls.map((c) => c.data.buffer));
    // The writes land: the slabs are free again, and the next symbols go into them (no new memory).
    for (const c of calls) c.land(true);
    await new Promise((r) => setImmediate(r));
    expect(wt.slabBytes).toBe(0);
    for (let n = 0; n < per + 1; n++, esi++) wt.gather(0, esi, symbol(esi & 0xff), 0);
    expect(calls.map((c) => c.offset)).toEqual([0, per * T, 2 * per * T, 5 * per * T]);
    expect(held.has(calls[3].data.buffer)).toBe(true);
    expect(wt.slabBytes).toBe(2 * LARGE_PREWRITE_BYTES);
    expect(wt.symbolsNotGathered).toBe(2 * per);
    // The block decodes: only what landed may be skipped by its write, never the symbols left out.
    const settling = wt.settle(0);
    for (const c of calls) c.land(true);
    expect(await settling).toEqual([
      { offset: 0, length: 3 * per * T },
      { offset: 5 * per * T, length: per * T },
    ]);
    expect(wt.slabBytes).toBe(0);
  });

  test('a decoded block drops what was gathered; symbols are read at their offset, from a Buffer or a Uint8Array', () => {
    const { wt, writes } = setup();
    wt.gather(0, 0, symbol(1), 0);
    wt.drop(0);
    const batch = new Uint8Array(3 * T);
    batch.fill(6, T, 2 * T);
    wt.gather(0, 4, batch, T);
    wt.gather(0, 9, symbol(0), 0);
    expect(writes).toHaveLength(1);
    expect(writes[0].offset).toBe(4 * T);
    expect(writes[0].data.every((b) => b === 6)).toBe(true);
  });
});

/** A sink whose prewrites land when the test says: each resolves to the outcome given. */
function settling() {
  const calls: { offset: number; length: number; land: (ok: boolean) => void }[] = [];
  const wt = new WriteThrough(
    {
      prewrite: (offset, data) =>
        new Promise<boolean>((resolve) => {
          calls.push({ offset, length: data.length, land: resolve });
        }),
    },
    layout,
    T,
    2,
    0,
  );
  return { wt, calls };
}

/** Whether `p` has settled after the pending jobs ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return done;
}

describe('WriteThrough: each byte written once (settle)', () => {
  test('settle waits for every write of the block and returns the ranges that landed whole, merged; the run still gathered is not among them', async () => {
    const { wt, calls } = settling();
    for (const esi of [0, 1]) wt.gather(0, esi, symbol(1), 0);
    for (const esi of [2, 3]) wt.gather(0, esi + 1, symbol(1), 0); // ESIs 3, 4: a new run
    wt.gather(0, 7, symbol(1), 0); // ESIs 3-4 written; 7 stays gathered
    wt.gather(0, 9, symbol(1), 0);
    expect(calls.map((c) => [c.offset, c.length])).toEqual([
      [0, 2 * T],
      [3 * T, 2 * T],
      [7 * T, T],
    ]);
    const ranges = wt.settle(0);
    calls[0].land(true);
    calls[2].land(true);
    expect(await settled(ranges)).toBe(false);
    calls[1].land(true);
    expect(await ranges).toEqual([
      { offset: 0, length: 2 * T },
      { offset: 3 * T, length: 2 * T },
      { offset: 7 * T, length: T },
    ]);
  });

  test('adjacent ranges merge; a write that failed or fell short is not skipped', async () => {
    const { wt, calls } = settling();
    // Runs end at PREWRITE_BYTES or a gap: force three adjacent runs of block 1 by gaps filled later.
    wt.gather(1, 0, symbol(1), 0);
    wt.gather(1, 2, symbol(1), 0);
    wt.gather(1, 1, symbol(1), 0);
    wt.gather(1, 5, symbol(1), 0);
    wt.gather(1, 8, symbol(1), 0);
    expect(calls.map((c) => c.offset - 10 * T)).toEqual([0, 2 * T, T, 5 * T]);
    calls[0].land(true);
    calls[1].land(true);
    calls[2].land(true);
    calls[3].land(false);
    expect(await wt.settle(1)).toEqual([{ offset: 10 * T, length: 3 * T }]);
  });

  test('symbols taken while their block was being solved are never skipped (the decoder may regenerate them instead)', async () => {
    const { wt, calls } = settling();
    wt.gather(0, 0, symbol(1), 0);
    wt.gather(0, 1, symbol(1), 0, false);
    wt.gather(0, 4, symbol(1), 0);
    wt.gather(0, 6, symbol(1), 0);
    for (const c of calls) c.land(true);
    expect(calls.map((c) => c.offset)).toEqual([0, 4 * T]);
    expect(await wt.settle(0)).toEqual([{ offset: 4 * T, length: T }]);
  });

  test('an evicted block (forget) is written whole, after every write made for it, before or after the eviction, has landed', async () => {
    const { wt, calls } = settling();
    wt.gather(0, 0, symbol(1), 0);
    wt.gather(0, 3, symbol(1), 0);
    wt.forget(0);
    // The block starts again; its new writes are not skipped either.
    wt.gather(0, 0, symbol(2), 0);
    wt.gather(0, 5, symbol(2), 0);
    expect(calls.map((c) => c.offset)).toEqual([0, 0]);
    const ranges = wt.settle(0);
    calls[1].land(true);
    expect(await settled(ranges)).toBe(false);
    calls[0].land(true);
    expect(await ranges).toEqual([]);
  });

  test('a sink whose prewrite returns nothing is never skipped; drop forgets the block', async () => {
    const { wt, writes } = setup();
    wt.gather(0, 0, symbol(1), 0);
    wt.gather(0, 5, symbol(1), 0);
    expect(writes).toHaveLength(1);
    expect(await wt.settle(0)).toEqual([]);
    const s = settling();
    s.wt.gather(0, 0, symbol(1), 0);
    s.wt.gather(0, 5, symbol(1), 0);
    s.calls[0].land(true);
    s.wt.drop(0);
    expect(await s.wt.settle(0)).toEqual([]);
  });
});

describe('WriteThrough: runs past lost symbols (holes)', () => {
  const t = 16;
  const big = { blockOffset: (sbn: number) => sbn * 4096 * t, blockLength: () => 4096 * t };
  function holes() {
    const calls: { offset: number; length: number; symbols?: { offset: number; length: number }[]; land: (ok: boolean) => void }[] = [];
    const wt = new WriteThrough(
      {
        prewrite: (offset, data, symbols) =>
          new Promise<boolean>((resolve) => {
            calls.push({ offset, length: data.length, symbols: symbols?.map((r) => ({ ...r })), land: resolve });
          }),
      },
      big,
      t,
      2,
    );
    return { wt, calls };
  }

  test(`a run goes on past up to ${MAX_HOLE} lost symbols: one write, its symbols named (the holes are filler), and only they are skipped by the block write`, async () => {
    const { wt, calls } = holes();
    for (const esi of [0, 1, 3, 4, 7]) wt.gather(1, esi, Buffer.alloc(t, esi + 1), 0);
    wt.flush();
    expect(calls.map((c) => [c.offset - 4096 * t, c.length])).toEqual([[0, 8 * t]]);
    const base = 4096 * t;
    expect(calls[0].symbols).toEqual([
      { offset: base, length: 2 * t },
      { offset: base + 3 * t, length: 2 * t },
      { offset: base + 7 * t, length: t },
    ]);
    calls[0].land(true);
    expect(await wt.settle(1)).toEqual(calls[0].symbols);
  });

  test(`a hole of more than ${MAX_HOLE} symbols, or an ESI behind the run, ends it; a run without holes names no symbols`, () => {
    const { wt, calls } = holes();
    wt.gather(0, 0, Buffer.alloc(t), 0);
    wt.gather(0, MAX_HOLE + 2, Buffer.alloc(t), 0); // a hole of MAX_HOLE + 1
    wt.gather(0, MAX_HOLE + 3, Buffer.alloc(t), 0);
    wt.gather(0, 5, Buffer.alloc(t), 0); // behind
    wt.flush();
    expect(calls.map((c) => [c.offset, c.length, c.symbols])).toEqual([
      [0, t, undefined],
      [(MAX_HOLE + 2) * t, 2 * t, undefined],
      [5 * t, t, undefined],
    ]);
  });

  test('holes only past every ESI the block gathered (never filler over a symbol written), and a symbol that comes for a hole later is not skipped', async () => {
    const { wt, calls } = holes();
    wt.gather(0, 10, Buffer.alloc(t, 1), 0);
    wt.gather(0, 12, Buffer.alloc(t, 1), 0); // hole at 11: run [10, 12]
    wt.gather(0, 5, Buffer.alloc(t, 1), 0); // behind: [10, 12] written, run [5]
    wt.gather(0, 8, Buffer.alloc(t, 1), 0); // [5] is not at the frontier (12): no hole over 6, 7; [5] written
    wt.gather(0, 11, Buffer.alloc(t, 1), 0); // for the hole: [8] written, [11] untrusted
    wt.flush();
    expect(calls.map((c) => [c.offset / t, c.length / t])).toEqual([
      [10, 3],
      [5, 1],
      [8, 1],
      [11, 1],
    ]);
    for (const c of calls) c.land(true);
    expect(await wt.settle(0)).toEqual([
      { offset: 5 * t, length: t },
      { offset: 8 * t, length: t },
      { offset: 10 * t, length: t },
      { offset: 12 * t, length: t },
    ]);
  });
});
