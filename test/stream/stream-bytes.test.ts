// The stream's output, byte for byte, as it was before ChannelStream was split
// into its schedule, packet builder and symbol history. Each scenario drives a
// stream the same way every run (fixed object bytes, fixed push acceptance)
// and hashes everything observable: every pushed run (its packet size and how
// many packets the push took, then the bytes taken), the ACK lookups and the
// replacement packets. The expected digests were recorded from the stream as
// it stood before the split; a change in any packet, in how packets are
// grouped into pushes, or in what a lookup answers changes them. The three
// scenarios of a plain window (every block in it) were recorded again when
// its round-robin began to share by quota (issue 12, schedule.ts; the share
// itself is tested in rate-share.test.ts); the sliding window's digest did
// not change. Since the stream sends 16-bit TSI and TOI where both fit
// (docs/PROTOCOL.md §8.1), each packet is hashed as it would be in the
// 32-bit form it had when the digests were recorded (widen()), and each size
// 4 bytes larger: the digests still hold everything else.
import { createHash, Hash } from 'node:crypto';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { wireOti } from '../../lib/content/catalogue';
import { AllocationMode, SymbolAllocator } from '../../lib/content/symbol-allocator';
import { BlockPins, ChannelStream, ChannelStreamOptions, SymbolSource } from '../../lib/stream/channel-stream';

const T = 48;
const open: { close(): void }[] = [];
afterAll(() => open.forEach((e) => e.close()));

/** Deterministic bytes (xorshift32): the same object every run. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function encoder(size: number, blocks: number, seed: number): ObjectEncoder {
  const e = new ObjectEncoder(bytes(size, seed), { symbolSize: T, sourceBlocks: blocks });
  open.push(e);
  return e;
}

function options(objects: [size: number, blocks: number][], mode: AllocationMode, extra: Partial<ChannelStreamOptions> = {}): ChannelStreamOptions {
  const fdtEncoder = encoder(3 * T + 5, 1, 99);
  return {
    tsi: 7,
    objects: objects.map(([size, blocks], i) => {
      const e = encoder(size, blocks, i + 1);
      return { toi: i + 1, encoder: e, allocator: SymbolAllocator.forEncoder(e, mode) };
    }),
    fdt: { instanceId: 5, encoder: fdtEncoder, allocator: SymbolAllocator.forEncoder(fdtEncoder, mode), oti: wireOti(fdtEncoder.otiInfo) },
    ...extra,
  };
}

/** The packet with its 16-bit TSI and TOI (H = 1) as 32-bit ones (S = O = 1, H = 0): 4 bytes longer. */
function widen(p: Uint8Array): Uint8Array {
  expect((p[1] >> 4) & 0xf).toBe(0x1); // S = 0, O = 0, H = 1
  const out = new Uint8Array(p.length + 4);
  out.set(p.subarray(0, 8));
  out[1] = 0xa0 | (p[1] & 0x0f);
  out[2] = p[2] + 1;
  out.set(p.subarray(8, 10), 10);
  out.set(p.subarray(10, 12), 14);
  out.set(p.subarray(12), 16);
  return out;
}

/** Fills `n` packets, the push taking at most `accept(call)` of each run; hashes what it took. */
function fill(h: Hash, s: ChannelStream, n: number, accept: (call: number, count: number) => number = (_c, count) => count): number {
  let call = 0;
  return s.fill(n, (buf, size, count) => {
    const k = accept(call++, count);
    h.update(`${size + 4}x${count}>${k};`);
    for (let i = 0; i < k; i++) h.update(widen(buf.subarray(i * size, (i + 1) * size)));
    return k;
  });
}

function lookups(h: Hash, s: ChannelStream, seqs: number[]): void {
  for (const q of seqs) h.update(JSON.stringify(s.lookup(q) ?? null));
}

function fresh(h: Hash, s: ChannelStream, lost: number[]): void {
  for (const p of s.freshPackets(lost)) h.update(widen(p));
  h.update(JSON.stringify(s.counters));
}

const digest = (h: Hash): string => h.digest('hex').slice(0, 32);

describe('ChannelStream output equals the stream before the split', () => {
  test('coded, two objects, partial pushes, lookups and replacements', () => {
    const h = createHash('sha256');
    const s = new ChannelStream(options([[5000, 3], [700, 1]], 'coded', { fdtInterval: 16 }));
    h.update(`${s.dataPacketSize + 4}/${s.fdtPacketSize + 4}/${s.slotSize + 4}/${s.windowBlocks}/${s.sliding}`);
    fill(h, s, 300, (call, count) => (call % 3 === 2 ? Math.floor(count / 2) : count));
    h.update(`pending ${s.pendingPackets} next ${s.nextSequence};`);
    fill(h, s, 1000);
    lookups(h, s, [0, 1, 15, 16, 17, 250, 299, 300, 1299, 1300, 2 ** 32 - 1]);
    fresh(h, s, [3, 16, 17, 18, 400, 401, 1000, 5000]);
    fill(h, s, 200, () => 7);
    fill(h, s, 200);
    expect(s.counters.freshUnknown).toBeGreaterThan(0);
    expect(digest(h)).toBe('e9a9db27e9300c9672f80f0721ffc8a6');
  });

  test('no-code carousel, symbolsPerTurn 3, replacements resend the lost symbol', () => {
    const h = createHash('sha256');
    const s = new ChannelStream(options([[40 * T, 2], [7 * T + 3, 1]], 'carousel', { symbolsPerTurn: 3 }));
    fill(h, s, 700);
    fresh(h, s, [0, 5, 40, 41, 699]);
    lookups(h, s, [5, 40, 699, 700]);
    expect(digest(h)).toBe('0d6569890e553f104cc0bebf8f0e8488');
  });

  test('sliding window: quotas, stalls while the next block is not ready, skipped replacements', () => {
    const h = createHash('sha256');
    const notReady = new Set<number>([2]);
    const pinned = new Map<number, number>();
    let first: SymbolSource | undefined;
    const pins: BlockPins = {
      pin: (src, sbn) => {
        first ??= src;
        pinned.set(sbn, (pinned.get(sbn) ?? 0) + 1);
        h.update(`pin ${sbn};`);
      },
      unpin: (src, sbn) => {
        pinned.set(sbn, pinned.get(sbn)! - 1);
        h.update(`unpin ${sbn};`);
      },
      ready: (src, sbn) => !notReady.has(sbn),
    };
    const s = new ChannelStream(options([[6 * 40 * T - 17, 6]], 'coded', { windowBlocks: 2, passOverhead: 0.25, pins }));
    s.start();
    fill(h, s, 400);
    h.update(JSON.stringify(s.windowContents));
    fresh(h, s, [10, 11, 200, 390]);
    notReady.add(0);
    fresh(h, s, [12, 13]);
    notReady.clear();
    fill(h, s, 2000, (call, count) => (call % 5 === 4 ? count - 1 : count));
    h.update(JSON.stringify(s.windowContents));
    h.update(JSON.stringify(s.counters));
    // The scenario does reach what it is meant to cover.
    expect(s.counters.windowStalls).toBeGreaterThan(0);
    expect(s.counters.windowAdvances).toBeGreaterThanOrEqual(6);
    expect(s.counters.freshSkipped).toBeGreaterThan(0);
    s.close();
    h.update(JSON.stringify([...pinned]));
    expect(digest(h)).toBe('63474f25874cdd0e06504c7637b5df2b');
  });

  test('sequence numbers across 2^32 and an ESI counter across its 2^24 wrap', () => {
    const h = createHash('sha256');
    const o = options([[20 * T, 1], [9 * T, 1]], 'coded', { fdtInterval: 10 });
    // Block 0 of object 1 is 3 ESIs short of the top of the 24-bit space.
    o.objects[0].allocator.take(0, 2 ** 24 - 3);
    const s = new ChannelStream(o);
    (s as unknown as { position: number }).position = 2 ** 32 - 21;
    fill(h, s, 60);
    lookups(h, s, [2 ** 32 - 21, 2 ** 32 - 1, 0, 1, 38, 39, 40]);
    fresh(h, s, [2 ** 32 - 20, 2 ** 32 - 2, 3, 30]);
    expect(o.objects[0].allocator.wraps(0)).toBe(1);
    expect(digest(h)).toBe('79a367717f0e15b7ca4a99d3add70742');
  });
});
