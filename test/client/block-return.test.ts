/**
 * A decoded block's memory given back explicitly (ObjectDecoder.returnBlock)
 * rather than when the garbage collector finalizes its Buffer: the Buffer
 * is detached, so that a view kept by mistake reads nothing instead of
 * memory the next block now uses; only a whole block lent by takeBlock is
 * taken back, once. Counted: blocks returned.
 */
import { randomBytes } from 'crypto';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { BlockReleasedError } from '../../lib/fec/errors';
import { ObjectEncoder } from '../../lib/fec/encoder';

function decoded(blocks: number, T = 64): { data: Buffer; dec: ObjectDecoder } {
  const data = randomBytes(blocks * 40 * T - 5);
  const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: blocks });
  const dec = new ObjectDecoder(enc.oti);
  for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) {
    for (let esi = 0; esi < enc.sourceSymbols(sbn); esi++) dec.push(enc.packet(sbn, esi));
  }
  return { data, dec };
}

test('returnBlock detaches the block: the Buffer and its views read as empty; the count goes up once per block', () => {
  const { data, dec } = decoded(3);
  const b0 = dec.takeBlock(0);
  const b0Length = b0.length;
  const view = b0.subarray(100, 200);
  const u32 = new Uint32Array(b0.buffer, b0.byteOffset, 4);
  expect(Buffer.from(b0).equals(data.subarray(0, b0.length))).toBe(true);
  expect(dec.returnedBlocks).toBe(0);
  dec.returnBlock(b0);
  expect(dec.returnedBlocks).toBe(1);
  // Stale views: no bytes to read (reads are undefined, copies empty).
  expect(b0.length).toBe(0);
  expect(b0.byteLength).toBe(0);
  expect(view.length).toBe(0);
  expect(view[0]).toBeUndefined();
  expect(u32.length).toBe(0);
  expect(Buffer.from(b0).length).toBe(0);
  // The next block taken is intact (it may reuse the memory given back).
  const b1 = dec.takeBlock(1);
  const off1 = b0Length;
  expect(Buffer.from(b1).equals(data.subarray(off1, off1 + b1.length))).toBe(true);
  dec.returnBlock(b1);
  expect(dec.returnedBlocks).toBe(2);
});

test('returnBlock refuses a view of part of a block, another buffer, a block given back already, another decoder\'s block; nothing is detached then', () => {
  const { dec } = decoded(2);
  const other = decoded(1).dec;
  const b0 = dec.takeBlock(0);
  const b1 = other.takeBlock(0);
  expect(() => dec.returnBlock(b0.subarray(1))).toThrow(BlockReleasedError);
  expect(() => dec.returnBlock(b0.subarray(0, b0.length - 1))).toThrow(BlockReleasedError);
  expect(() => dec.returnBlock(Buffer.alloc(b0.length))).toThrow(BlockReleasedError);
  expect(() => dec.returnBlock(b1)).toThrow(BlockReleasedError);
  expect(b0.length).toBeGreaterThan(0);
  expect(b1.length).toBeGreaterThan(0);
  expect(dec.returnedBlocks).toBe(0);
  dec.returnBlock(b0);
  expect(() => dec.returnBlock(b0)).toThrow(BlockReleasedError);
  expect(dec.returnedBlocks).toBe(1);
  other.returnBlock(b1);
  expect(other.returnedBlocks).toBe(1);
});

test('a block given back after its decoder closed is taken back; one never given back stays readable (left to its finalizer)', () => {
  const { dec } = decoded(3);
  const kept = dec.takeBlock(0);
  const b1 = dec.takeBlock(1);
  dec.close();
  dec.returnBlock(b1);
  expect(b1.length).toBe(0);
  expect(dec.returnedBlocks).toBe(1);
  expect(kept.length).toBeGreaterThan(0);
});
