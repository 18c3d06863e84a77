/**
 * ObjectDecoder.discardBlock / heldBytes: what a receiver within a memory
 * budget relies on to evict a partial block and to account for it.
 */
import { randomBytes } from 'crypto';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { ObjectEncoder } from '../../lib/fec/encoder';

describe('ObjectDecoder.discardBlock', () => {
  test('a partial block loses its symbols and its memory, and can be received again from scratch', () => {
    const data = randomBytes(3 * 200 * 64);
    const enc = new ObjectEncoder(data, { symbolSize: 64, sourceBlocks: 3 });
    const dec = new ObjectDecoder(enc.oti);
    const K = enc.sourceSymbols(1);
    expect(dec.heldBytes(1)).toBe(0);
    dec.pushBatch(enc.packets(1, 5, K - 10));
    expect(dec.progress[1].received).toBe(K - 10);
    // The source buffer (K*T) is allocated with the first symbol.
    expect(dec.heldBytes(1)).toBeGreaterThanOrEqual(K * 64);
    expect(dec.discardBlock(1)).toBe(true);
    expect(dec.progress[1].received).toBe(0);
    expect(dec.heldBytes(1)).toBe(0);
    expect(dec.discardBlock(1)).toBe(false);
    // The same ESIs count again: nothing of the discarded block is remembered.
    dec.pushBatch(enc.packets(1, 5, K));
    expect(dec.blockDecoded(1)).toBe(true);
    expect(Buffer.from(dec.copyBlock(1)).equals(data.subarray(dec.layout.blockOffset(1), dec.layout.blockOffset(2)))).toBe(true);
    enc.close();
    dec.close();
  });

  test('a decoded block is left alone; a taken one holds nothing', () => {
    const data = randomBytes(2 * 100 * 32);
    const enc = new ObjectEncoder(data, { symbolSize: 32, sourceBlocks: 2 });
    const dec = new ObjectDecoder(enc.oti);
    dec.pushBatch(enc.packets(0, 0, enc.sourceSymbols(0)));
    expect(dec.blockDecoded(0)).toBe(true);
    expect(dec.discardBlock(0)).toBe(false);
    expect(dec.blockDecoded(0)).toBe(true);
    expect(dec.heldBytes(0)).toBe(enc.sourceSymbols(0) * 32);
    dec.takeBlock(0);
    expect(dec.heldBytes(0)).toBe(0);
    expect(() => dec.discardBlock(2)).toThrow();
    enc.close();
    dec.close();
  });
});

describe('ObjectDecoder.takeBlock with one sub-block or several', () => {
  test.each([1, 2, 4])('N = %i: each block bit-exact, and its bytes outlive the decoder', (N) => {
    const data = randomBytes(3 * 300 * 64 - 17);
    const enc = new ObjectEncoder(data, { symbolSize: 64, sourceBlocks: 3, subBlocks: N });
    const dec = new ObjectDecoder(enc.oti);
    const taken: Uint8Array[] = [];
    for (let sbn = 0; sbn < 3; sbn++) {
      const K = enc.sourceSymbols(sbn);
      // Repair symbols only: every source symbol is rebuilt by the solver.
      dec.pushBatch(enc.packets(sbn, K, K + 2));
      taken.push(dec.takeBlock(sbn));
      expect(dec.heldBytes(sbn)).toBe(0);
    }
    dec.close();
    enc.close();
    expect(Buffer.concat(taken).equals(data)).toBe(true);
  });
});
