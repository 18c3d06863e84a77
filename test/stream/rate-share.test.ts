// Issue 12: a channel's rate is shared by need, not by block count. The
// issue's channel: a 3 MB file, a 12 KB file and a 1-byte file, T = 1280
// (one block each: K = 2344, 10 and 1). Over a fixed number of stream
// packets, count the packets of each object (lookup says which symbol each
// sequence number carried): each object gets its blocks' pass quotas,
// ceil(K * 1.15), per pass — 2696, 12 and 2 of every 2710 data packets —
// whether the window holds one block at a time (the server's default,
// IN_ORDER_WINDOW) or every block (a plain round-robin, which used to give
// each object a third of the channel).
import { ObjectEncoder } from '../../lib/fec/encoder';
import { wireOti } from '../../lib/content/catalogue';
import { SymbolAllocator } from '../../lib/content/symbol-allocator';
import { ChannelStream, IN_ORDER_WINDOW } from '../../lib/stream/channel-stream';
import { passQuota, DEFAULT_PASS_OVERHEAD } from '../../lib/stream/window-size';

const T = 1280;
const SIZES = [3_000_000, 12_000, 1];
const PACKETS = 60_000;
const open: ObjectEncoder[] = [];
afterAll(() => open.forEach((e) => e.close()));

function encoder(size: number, seed: number): ObjectEncoder {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  const e = new ObjectEncoder(bytes, { symbolSize: T });
  open.push(e);
  return e;
}

/** Packets per TOI among the first PACKETS packets of the channel's stream with `windowBlocks`. */
function packetsPerObject(windowBlocks: number): { perToi: Map<number, number>; quotas: number[]; stream: ChannelStream } {
  const objects = SIZES.map((n, i) => {
    const e = encoder(n, i);
    return { toi: i + 1, encoder: e, allocator: SymbolAllocator.forEncoder(e, 'coded') };
  });
  const fdt = encoder(600, 9);
  const stream = new ChannelStream({
    tsi: 1,
    objects,
    fdt: { instanceId: 1, encoder: fdt, allocator: SymbolAllocator.forEncoder(fdt, 'coded'), oti: wireOti(fdt.otiInfo) },
    // 100 Mbit/s at T = 1280 (fdtIntervalFor): one FDT packet in 96.
    fdtInterval: 96,
    windowBlocks,
    historySegments: PACKETS,
  });
  expect(stream.fill(PACKETS, (_bytes, _size, count) => count)).toBe(PACKETS);
  const perToi = new Map<number, number>();
  for (let seq = 0; seq < PACKETS; seq++) {
    const toi = stream.lookup(seq)!.toi;
    perToi.set(toi, (perToi.get(toi) ?? 0) + 1);
  }
  const quotas = objects.map((o) => passQuota(o.encoder.sourceSymbols(0), DEFAULT_PASS_OVERHEAD));
  stream.close();
  return { perToi, quotas, stream };
}

describe('rate shared by need: a 3 MB, a 12 KB and a 1-byte file on one channel', () => {
  test.each([
    ['one block at a time (the server default)', IN_ORDER_WINDOW],
    ['every block in the window (plain round-robin)', SIZES.length],
  ])('%s: each object gets its quota per pass, the 3 MB file > 99%% of the data packets', (_name, w) => {
    const { perToi, quotas, stream } = packetsPerObject(w);
    expect(SIZES.map((n) => encoder(n, 0).sourceSymbols(0))).toEqual([2344, 10, 1]);
    expect(quotas).toEqual([2696, 12, 2]);
    const data = PACKETS - (perToi.get(0) ?? 0);
    expect(stream.counters.fdtPackets).toBe(perToi.get(0));
    const sum = quotas.reduce((a, b) => a + b, 0);
    const m = Math.floor(data / sum);
    expect(m).toBeGreaterThanOrEqual(20);
    quotas.forEach((q, i) => {
      const n = perToi.get(i + 1) ?? 0;
      expect(n).toBeGreaterThanOrEqual(m * q);
      expect(n).toBeLessThanOrEqual((m + 1) * q);
    });
    // 100 Mbit/s of data packets: the 3 MB file's share is > 99 Mbit/s of them, not 32.
    expect((perToi.get(1) ?? 0) / data).toBeGreaterThan(0.99);
    expect((perToi.get(3) ?? 0) / data).toBeLessThan(0.001);
  });
});
