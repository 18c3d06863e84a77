/**
 * ObjectDecoder.result() of an object of 32 MiB or more: copied into
 * block memory lent as an external Buffer (native/napi/decoder.cc, Result)
 * instead of a Buffer faulted in 4 KiB at a time, which was nearly half of
 * a K = 50 000 decode. What
 * must not change with it: every call returns the object's bytes in a
 * buffer of its own, the decoder keeps its blocks, and a returned buffer
 * outlives close(). Large symbols keep the block small (K = 513) so the
 * test is about the bytes, not the solve.
 */
import { ObjectDecoder } from '../../lib/fec/decoder';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { Rng } from '../../lib/support/rng';

describe('result() of a large object', () => {
  it('returns the bytes in a buffer of its own at every call, valid after close()', () => {
    const T = 65528;
    const F = 32 * 1024 * 1024 + 12345;  // over the 32 MiB line, not a whole symbol
    // A random 4 099-byte pattern repeated (a prime period: no two symbols
    // alike), filled natively: 32 MiB drawn byte by byte took seconds.
    const data = new Uint8Array(Buffer.alloc(F, new Rng(0x1a26e).bytes(4099)));
    const want = Buffer.from(data.buffer, data.byteOffset, data.length);  // a view, not a copy
    const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 8 });
    const K = enc.sourceSymbols(0);
    const dec = new ObjectDecoder(enc.oti);
    // Source symbol 3 lost, two repair symbols: a real solve.
    const packets = [];
    for (let esi = 0; esi < K; esi++) if (esi !== 3) packets.push(enc.packet(0, esi));
    packets.push(enc.packet(0, K), enc.packet(0, K + 1));
    expect(dec.pushMany(packets).complete).toBe(true);
    enc.close();

    const a = dec.result();
    const b = dec.result();
    expect(a.length).toBe(F);
    expect(Buffer.from(a.buffer, a.byteOffset, a.length).equals(want)).toBe(true);
    expect(a.buffer).not.toBe(b.buffer);
    a[0] ^= 0xff;  // the caller's to change: neither the other copy nor the decoder sees it
    a[F - 1] ^= 0xff;
    expect(b[0]).toBe(data[0]);
    expect(b[F - 1]).toBe(data[F - 1]);
    const c = dec.result();
    expect(Buffer.from(c.buffer, c.byteOffset, c.length).equals(want)).toBe(true);
    expect(dec.blockDecoded(0)).toBe(true);
    dec.close();
    expect(Buffer.from(b.buffer, b.byteOffset, b.length).equals(want)).toBe(true);
  });
});
