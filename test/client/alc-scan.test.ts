/**
 * scanAlcData (the client's allocation-free data path) against decodeAlc
 * (the general parser): whatever the scan takes, decodeAlc decodes to the
 * same fields; what rqcast servers send, the scan takes.
 */
import fc from 'fast-check';
import { AlcPacketFields, decodeAlc, encodeAlc, newAlcScan, scanAlcData } from '../../lib/protocol/alc';
import { HET_EXT_FDT, HET_EXT_FTI, HET_EXT_RQSEQ, ToiLength, TsiLength } from '../../lib/protocol/lct';

const extension = fc.oneof(
  fc.record({ het: fc.integer({ min: 0, max: 127 }), content: fc.integer({ min: 0, max: 6 }).chain((w) => fc.uint8Array({ minLength: 4 * w + 2, maxLength: 4 * w + 2 })) }),
  fc.record({ het: fc.integer({ min: 128, max: 255 }), content: fc.uint8Array({ minLength: 3, maxLength: 3 }) }),
  fc.constant({ het: HET_EXT_RQSEQ, content: Uint8Array.of(0, 0, 1, 2, 3, 4) }),
  fc.constant({ het: HET_EXT_FTI, content: new Uint8Array(14) }),
  fc.constant({ het: HET_EXT_FDT, content: Uint8Array.of(0x20, 0, 1) }),
);

const lengths = fc.constantFrom<[TsiLength, ToiLength]>([4, 4], [0, 0], [0, 4], [4, 8], [2, 2], [2, 6], [6, 2], [6, 6], [6, 14], [0, 12], [4, 0]);

const fields: fc.Arbitrary<AlcPacketFields> = fc
  .record({
    lengths,
    tsi: fc.maxSafeNat(),
    toi: fc.bigInt({ min: 0n, max: (1n << 112n) - 1n }),
    sbn: fc.integer({ min: 0, max: 255 }),
    esi: fc.integer({ min: 0, max: 0xff_ffff }),
    symbols: fc.uint8Array({ minLength: 1, maxLength: 40 }),
    sequence: fc.option(fc.integer({ min: 0, max: 0xffff_ffff }), { nil: undefined }),
    cciWords: fc.integer({ min: 1, max: 4 }),
    extensions: fc.array(extension, { maxLength: 3 }),
  })
  .map((r) => {
    const [tsiLength, toiLength] = r.lengths;
    const toi = toiLength === 0 ? 0n : r.toi % (1n << BigInt(8 * toiLength));
    return {
      tsi: tsiLength === 0 ? 0 : r.tsi % 2 ** (8 * tsiLength),
      toi,
      sbn: r.sbn,
      esi: r.esi,
      symbols: r.symbols,
      sequence: r.sequence,
      fdtInstanceId: toi === 0n ? 1 : undefined,
      tsiLength,
      toiLength,
      cci: new Uint8Array(4 * r.cciWords),
      extensions: r.extensions,
    };
  });

/** Flips, truncations and header-field edits of a valid packet. */
const mutated = fc.tuple(fields, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.option(fc.nat(), { nil: undefined })).map(([f, edits, cut]) => {
  const b = encodeAlc(f);
  for (const [i, v] of edits) b[i % b.length] = v;
  return cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
});

function agree(bytes: Uint8Array, at = 0, pad = 0): boolean {
  // The scan reads the packet inside a larger buffer, as it sits in a receive batch.
  const buf = new Uint8Array(at + bytes.length + pad).fill(0xee);
  buf.set(bytes, at);
  const s = newAlcScan();
  if (!scanAlcData(buf, at, bytes.length, s)) return false;
  const d = decodeAlc(bytes);
  expect(d.ok).toBe(true);
  if (!d.ok) return true;
  const p = d.packet;
  expect({ tsi: s.tsi, toi: BigInt(s.toi), sbn: s.sbn, esi: s.esi, sequence: s.sequence < 0 ? undefined : s.sequence, payloadOffset: s.payloadIdOffset - at + 4, payloadLength: s.payloadLength }).toEqual({
    tsi: p.tsi,
    toi: p.toi,
    sbn: p.sbn,
    esi: p.esi,
    sequence: p.sequence,
    payloadOffset: p.payloadOffset,
    payloadLength: p.payloadLength,
  });
  expect(p.oti).toBeUndefined();
  expect(p.fdt).toBeUndefined();
  return true;
}

describe('scanAlcData', () => {
  test('what it takes, decodeAlc decodes to the same fields (valid and mutated packets, inside a larger buffer)', () => {
    let taken = 0;
    fc.assert(
      fc.property(fc.oneof(fields.map((f) => encodeAlc(f)), mutated), fc.nat({ max: 64 }), fc.nat({ max: 8 }), (bytes, at, pad) => {
        if (agree(bytes, at, pad)) taken++;
      }),
      { numRuns: 4000 },
    );
    expect(taken).toBeGreaterThan(400);
  });

  test('rqcast data packets (TOI 1.., 32-bit TSI/TOI, EXT_RQSEQ or none) are all taken', () => {
    fc.assert(
      fc.property(fields, fc.integer({ min: 1, max: 0xffff_ffff }), fc.option(fc.integer({ min: 0, max: 0xffff_ffff }), { nil: undefined }), (f, toi, sequence) => {
        const bytes = encodeAlc({ ...f, tsi: f.tsi % 2 ** 32, toi, tsiLength: 4, toiLength: 4, cci: undefined, extensions: [], sequence, fdtInstanceId: undefined });
        expect(agree(bytes, 3, 5)).toBe(true);
      }),
    );
  });

  test('TOI 0 (the FDT), EXT_FTI, EXT_FDT, two EXT_RQSEQ, a 64-bit TOI go to decodeAlc', () => {
    const s = newAlcScan();
    const base: AlcPacketFields = { tsi: 1, toi: 5, sbn: 0, esi: 0, symbols: new Uint8Array(8), sequence: 1 };
    const fdt = encodeAlc({ ...base, toi: 0, fdtInstanceId: 3 });
    const fti = encodeAlc({ ...base, oti: { transferLength: 8, symbolSize: 8, sourceBlocks: 1, subBlocks: 1, alignment: 4 } });
    const fdtExt = encodeAlc({ ...base, fdtInstanceId: 3 });
    const twoSeq = encodeAlc({ ...base, extensions: [{ het: HET_EXT_RQSEQ, content: new Uint8Array(6) }] });
    const wide = encodeAlc({ ...base, toi: 1n << 40n, tsiLength: 4, toiLength: 8 } as AlcPacketFields);
    for (const b of [fdt, fti, fdtExt, twoSeq, wide]) expect(scanAlcData(b, 0, b.length, s)).toBe(false);
    expect(decodeAlc(twoSeq).ok).toBe(false);
    expect(decodeAlc(wide).ok).toBe(true);
  });
});
