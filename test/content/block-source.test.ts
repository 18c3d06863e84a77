import { ObjectEncoder } from '../../lib/fec/encoder';
import { BlockSealing, BlockSource, BlockSymbols, sealedBlocks, sealingOf } from '../../lib/content/block-source';

describe('BlockSource', () => {
  test('a file (ObjectEncoder) is a BlockSource: every block sealed from the start, ended, nothing announced', () => {
    const encoder = new ObjectEncoder(new Uint8Array(5000).fill(7), { symbolSize: 64, sourceBlocks: 3 });
    try {
      // The type check is the point: the stream and the cache take it as it is.
      const source: BlockSource = encoder;
      const sealing = sealingOf(source);
      expect([0, 1, 2, 3, -1].map((sbn) => sealing.isSealed(sbn))).toEqual([true, true, true, false, false]);
      expect(sealing.ended).toBe(true);
      const calls: number[] = [];
      const stop = sealing.onSealed((sbn) => calls.push(sbn));
      stop();
      expect(calls).toEqual([]);
      expect(sealedBlocks(source)).toEqual([0, 1, 2]);
    } finally {
      encoder.close();
    }
  });

  test('a source with its own sealing: sealedBlocks lists only the sealed ones, in SBN order', () => {
    const sealed = new Set([2, 0]);
    const sealing: BlockSealing = { isSealed: (sbn) => sealed.has(sbn), ended: false, onSealed: () => () => undefined };
    const live: Pick<BlockSymbols, 'sourceBlocks' | 'sealing'> = { sourceBlocks: 4, sealing };
    expect(sealingOf(live)).toBe(sealing);
    expect(sealedBlocks(live)).toEqual([0, 2]);
  });
});
