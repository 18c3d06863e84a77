/**
 * takeBlock lends recycled block memory to JS: the bytes must stay the
 * block's for as long as the Buffer lives, whatever the decoders do next.
 */
import { randomBytes } from 'node:crypto';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { BlockReleasedError, NeedMoreSymbolsError } from '../../lib/fec/errors';

// Large enough blocks (256 KiB) to go through the recycled-buffer cache.
const T = 1024;
const K = 256;

function decodeAll(data: Uint8Array): { dec: ObjectDecoder; enc: ObjectEncoder } {
  const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: Math.ceil(data.length / (T * K)) });
  const dec = new ObjectDecoder(enc.oti);
  for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) {
    dec.pushMany(enc.packetList(sbn, 0, enc.sourceSymbols(sbn)));
  }
  return { dec, enc };
}

describe('ObjectDecoder.takeBlock', () => {
  it('hands out each block once, with bytes that survive later decoders', () => {
    const first = randomBytes(4 * T * K);
    const { dec, enc } = decodeAll(first);
    expect(dec.complete).toBe(true);
    const taken: Uint8Array[] = [];
    for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) {
      expect(() => dec.copyBlock(sbn)).not.toThrow();
      taken.push(dec.takeBlock(sbn));
      expect(() => dec.takeBlock(sbn)).toThrow(BlockReleasedError);
      expect(dec.blockDecoded(sbn)).toBe(true);
    }
    dec.close();
    enc.close();
    // Other decodes now reuse the memory the first decoder released.
    for (let round = 0; round < 3; round++) {
      const other = decodeAll(randomBytes(4 * T * K));
      for (let sbn = 0; sbn < other.enc.sourceBlocks; sbn++) other.dec.takeBlock(sbn);
      other.dec.close();
      other.enc.close();
    }
    let offset = 0;
    for (const block of taken) {
      expect(Buffer.compare(Buffer.from(block), first.subarray(offset, offset + block.length))).toBe(0);
      offset += block.length;
    }
    expect(offset).toBe(first.length);
  });

  it('takes the short last block at its exact length', () => {
    const data = randomBytes(2 * T * K + 777);
    const { dec, enc } = decodeAll(data);
    const parts: Uint8Array[] = [];
    for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) parts.push(dec.takeBlock(sbn));
    expect(Buffer.compare(Buffer.concat(parts), data)).toBe(0);
    expect(() => dec.result()).toThrow(BlockReleasedError);
    dec.close();
    enc.close();
  });

  it('refuses a block that is not decoded', () => {
    const enc = new ObjectEncoder(randomBytes(T * K), { symbolSize: T, sourceBlocks: 1 });
    const dec = new ObjectDecoder(enc.oti);
    dec.pushMany(enc.packetList(0, 0, 10));
    expect(() => dec.takeBlock(0)).toThrow(NeedMoreSymbolsError);
    dec.close();
    enc.close();
  });
});
