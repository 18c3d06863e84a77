// OTI (RFC 6330 §3.3.2-3): wire layout, round trips, every bound as a
// typed error, §4.3 derivation against the RFC's formulas, §4.4.1.2 layout.
import fc from 'fast-check';
import {
  InvalidArgumentError,
  ObjectDecoder,
  ObjectEncoder,
  Oti,
  OtiFields,
  OtiOutOfBoundsError,
  SubSymbolTooSmallError,
  SymbolSizeNotAlignedError,
  TooManySourceSymbolsError,
  TransferTooLongError,
} from '../../lib';
import { otiWireBytes } from '../../lib/fec/oti';
import { loadNative } from '../../lib/native';
import { deriveOti, loadTables, partition, Rfc6330 } from './rfc-reference';

const MAX_F = 946270874880;

/** The 12 bytes written from the RFC's field table, independently of the core. */
function encodeByHand(o: OtiFields): Uint8Array {
  const b = new Uint8Array(12);
  const hi = Math.floor(o.F / 2 ** 32);
  b[0] = hi;
  new DataView(b.buffer).setUint32(1, o.F % 2 ** 32);
  b[5] = 0;
  b[6] = o.T >> 8;
  b[7] = o.T & 0xff;
  b[8] = o.Z === 256 ? 0 : o.Z;
  b[9] = o.N >> 8;
  b[10] = o.N & 0xff;
  b[11] = o.Al;
  return b;
}

/** Valid OTIs: every bound of codec.h respected by construction. */
const validOti: fc.Arbitrary<OtiFields> = fc
  .record({
    Al: fc.integer({ min: 1, max: 255 }),
    tUnits: fc.integer({ min: 1, max: 65535 }),
    zPick: fc.integer({ min: 1, max: 256 }),
    nPick: fc.integer({ min: 1, max: 65535 }),
    kPick: fc.double({ min: 0, max: 1, noNaN: true }),
    fPick: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ Al, tUnits, zPick, nPick, kPick, fPick }) => {
    const T = Al * (1 + ((tUnits - 1) % Math.floor(65535 / Al)));
    const maxKt = Math.floor(MAX_F / T);
    const Z = Math.min(zPick, maxKt);
    // Kt in [Z, Z * 56403] and F in ((Kt-1)*T, Kt*T], F <= MAX_F.
    const Kt = Math.min(maxKt, Z + Math.floor(kPick * (Z * 56403 - Z)));
    const F = Math.min(MAX_F, (Kt - 1) * T + 1 + Math.floor(fPick * (T - 1)));
    const N = 1 + ((nPick - 1) % (T / Al));
    return { F, T, Z, N, Al };
  });

describe('OTI wire format', () => {
  test('round trips and matches the RFC byte layout', () => {
    fc.assert(
      fc.property(validOti, (fields) => {
        const oti = Oti.from(fields);
        const bytes = oti.toBytes();
        expect(Buffer.from(bytes).toString('hex')).toBe(Buffer.from(encodeByHand(fields)).toString('hex'));
        const back = Oti.parse(bytes);
        expect(back.toJSON()).toEqual(fields);
        expect(back.equals(oti)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  test('Z = 256 travels as 0 (8-bit field)', () => {
    const fields = { F: 256 * 10, T: 4, Z: 256, N: 1, Al: 4 };
    const bytes = Oti.from(fields).toBytes();
    expect(bytes[8]).toBe(0);
    expect(Oti.parse(bytes).Z).toBe(256);
  });

  test('the reserved byte is ignored on receipt and written as zero', () => {
    const bytes = encodeByHand({ F: 1000, T: 100, Z: 1, N: 1, Al: 4 });
    bytes[5] = 0xab;
    const oti = Oti.parse(bytes);
    expect(oti.F).toBe(1000);
    expect(oti.toBytes()[5]).toBe(0);
  });

  test('parse gives the bytes the core encodes from the fields it read, whatever the reserved byte', () => {
    // Oti.parse clears the reserved byte itself instead of asking the core
    // to encode the fields again: the two must agree byte for byte.
    fc.assert(
      fc.property(validOti, fc.integer({ min: 0, max: 255 }), (fields, reserved) => {
        const bytes = encodeByHand(fields);
        bytes[5] = reserved;
        const parsed = Oti.parse(bytes);
        expect(Buffer.from(parsed.toBytes()).equals(Buffer.from(Oti.from(parsed.toJSON()).toBytes()))).toBe(true);
        expect(bytes[5]).toBe(reserved);  // the caller's bytes are not touched
      }),
      { numRuns: 500 },
    );
  });

  test('largest transfer length', () => {
    // F's bound (946270874880 = 56403 * 256 * 2^16) needs T = 2^16, which
    // the 16-bit T field cannot carry: with the largest aligned T the most
    // a valid OTI can describe is 56403 * 256 * T (K <= 56403 in Z = 256
    // blocks). One byte more needs a 56404th symbol in some block.
    const T = 65532;
    const F = 56403 * 256 * T;
    const oti = Oti.from({ F, T, Z: 256, N: 1, Al: 4 });
    expect(Oti.parse(oti.toBytes()).F).toBe(F);
    expect(() => Oti.from({ F: F + 1, T, Z: 256, N: 1, Al: 4 })).toThrow(TooManySourceSymbolsError);
    expect(() => Oti.from({ F: MAX_F, T, Z: 256, N: 1, Al: 4 })).toThrow(TooManySourceSymbolsError);
  });
});

describe('OTI bounds → typed errors (same check for fields and bytes)', () => {
  const base: OtiFields = { F: 100000, T: 1000, Z: 2, N: 2, Al: 4 };
  const cases: Array<[string, Partial<OtiFields>, new (...a: never[]) => Error]> = [
    ['F = 0', { F: 0 }, OtiOutOfBoundsError],
    ['F > 946270874880', { F: MAX_F + 1 }, TransferTooLongError],
    ['T = 0', { T: 0 }, OtiOutOfBoundsError],
    ['Al = 0', { Al: 0 }, OtiOutOfBoundsError],
    ['T not a multiple of Al', { T: 1001 }, SymbolSizeNotAlignedError],
    ['Z = 0', { Z: 0 }, OtiOutOfBoundsError],
    ['Z > Kt (empty blocks)', { F: 1000, Z: 2 }, OtiOutOfBoundsError],
    ['N = 0', { N: 0 }, OtiOutOfBoundsError],
    ['N > T/Al (empty sub-symbols)', { N: 251 }, SubSymbolTooSmallError],
    ['K > 56403', { F: 56404 * 1000, Z: 1 }, TooManySourceSymbolsError],
  ];
  test.each(cases)('%s', (_name, change, Cls) => {
    const fields = { ...base, ...change };
    expect(() => Oti.from(fields)).toThrow(Cls);
    // The same fields arriving as bytes are refused with the same class
    // (F > 2^40 - 1 cannot be written in 40 bits, so skip that one).
    if (fields.F < 2 ** 40) {
      expect(() => Oti.parse(encodeByHand(fields))).toThrow(Cls);
      expect(() => new (loadNative().Decoder)(encodeByHand(fields))).toThrow(
        expect.objectContaining({ code: (Cls as unknown as { code: string }).code }),
      );
    }
  });

  test('fields wider than their wire field are OTI bound errors', () => {
    expect(() => Oti.from({ ...base, T: 65536 })).toThrow(OtiOutOfBoundsError);
    expect(() => Oti.from({ ...base, Z: 257 })).toThrow(OtiOutOfBoundsError);
    expect(() => Oti.from({ ...base, N: 65536 })).toThrow(OtiOutOfBoundsError);
    expect(() => Oti.from({ ...base, Al: 256 })).toThrow(OtiOutOfBoundsError);
  });

  test('non-integers and wrong lengths are invalid arguments', () => {
    expect(() => Oti.from({ ...base, T: 1000.5 })).toThrow(InvalidArgumentError);
    expect(() => Oti.from({ ...base, F: NaN })).toThrow(InvalidArgumentError);
    expect(() => Oti.parse(new Uint8Array(11))).toThrow(InvalidArgumentError);
    expect(() => Oti.parse(new Uint8Array(13))).toThrow(InvalidArgumentError);
    expect(() => Oti.parse('x' as unknown as Uint8Array)).toThrow(InvalidArgumentError);
  });

  test('random 12-byte strings: parsed or refused with a typed error, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), (bytes) => {
        try {
          const oti = Oti.parse(bytes);
          expect(oti.F).toBeGreaterThan(0);
          expect(oti.T % oti.Al).toBe(0);
        } catch (e) {
          expect((e as { code?: string }).code).toMatch(/^ERR_RQ_/);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

/** What constructing throws, as the error's class and code, or 'ok'. */
function outcome(make: () => unknown): string {
  try {
    make();
    return 'ok';
  } catch (e) {
    return `${(e as Error).constructor.name} ${(e as { code?: string }).code}`;
  }
}

/** Fields near and past every bound and wire width, integers or not. */
const anyFields: fc.Arbitrary<OtiFields> = fc.record({
  F: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.constantFrom(2 ** 40 - 1, 2 ** 40, MAX_F, MAX_F + 1, 12.5, -1)),
  T: fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.constantFrom(65535, 65536, 4.5, -4)),
  Z: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(256, 257, 1.5)),
  N: fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.constantFrom(65535, 65536, 0.5)),
  Al: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(255, 256, 2.5)),
});

describe('OTI written here for the native constructor to check (otiWireBytes, Oti.accepted)', () => {
  // ObjectEncoder and ObjectDecoder hand OTI bytes written in JS to the
  // native constructor, which checks every bound, instead of a native
  // otiEncode/otiDecode call first: the OTI and the errors must be those
  // of Oti.from / Oti.parse.
  test('valid fields: the bytes the core writes, read back as the same fields', () => {
    fc.assert(
      fc.property(validOti, (fields) => {
        const bytes = otiWireBytes(fields);
        expect(bytes).toBeDefined();
        expect(Buffer.from(bytes as Uint8Array).equals(Buffer.from(Oti.from(fields).toBytes()))).toBe(true);
        expect(Oti.accepted(bytes as Uint8Array).toJSON()).toEqual(fields);
      }),
      { numRuns: 1000 },
    );
  });

  test('a decoder from any fields: the OTI or the error of Oti.from', () => {
    fc.assert(
      fc.property(anyFields, (fields) => {
        const want = outcome(() => Oti.from(fields));
        let got: ObjectDecoder | undefined;
        expect(outcome(() => (got = new ObjectDecoder(fields)))).toBe(want);
        if (got !== undefined) {
          expect(got.otiInfo.toJSON()).toEqual(Oti.from(fields).toJSON());
          got.close();
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('a decoder from any bytes: the OTI or the error of Oti.parse; the caller\'s bytes untouched', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 10, maxLength: 14 }), fc.boolean(), (raw, asBuffer) => {
        const bytes = asBuffer ? Buffer.from(raw) : raw;
        const copy = Buffer.from(bytes);
        const want = outcome(() => Oti.parse(bytes));
        let got: ObjectDecoder | undefined;
        expect(outcome(() => (got = new ObjectDecoder(bytes)))).toBe(want);
        expect(Buffer.from(bytes).equals(copy)).toBe(true);
        if (got !== undefined) {
          const parsed = Oti.parse(bytes);
          expect(got.otiInfo.toJSON()).toEqual(parsed.toJSON());
          expect(Buffer.from(got.oti).equals(Buffer.from(parsed.toBytes()))).toBe(true);
          got.close();
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('the OTI read after construction is the one accepted, whatever the caller did to its bytes since', () => {
    // The constructors keep the accepted bytes and build otiInfo on first
    // use: that must read their own copy, never the caller's buffer.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200_000 }),
        fc.integer({ min: 1, max: 64 }),
        fc.constantFrom(1, 2, 4, 8),
        fc.integer({ min: 0, max: 255 }),
        (F, symbols, Al, fill) => {
          const T = symbols * Al * 4;
          const enc = new ObjectEncoder(new Uint8Array(F), { symbolSize: T, sourceBlocks: 1, alignment: Al });
          const want = enc.otiInfo.toJSON();
          const bytes = enc.oti;
          const dec = new ObjectDecoder(bytes);
          const again = new ObjectEncoder(new Uint8Array(F), { oti: bytes });
          bytes.fill(fill);
          expect(dec.otiInfo.toJSON()).toEqual(want);
          expect(again.otiInfo.toJSON()).toEqual(want);
          expect(Oti.parse(dec.oti).toJSON()).toEqual(want);
          expect(dec.packetSize).toBe(4 + T);
          for (const c of [enc, dec, again]) c.close();
        },
      ),
      { numRuns: 300 },
    );
  });

  test('an encoder from any given T, Z, N, Al: the OTI or the error of Oti.from', () => {
    fc.assert(
      fc.property(anyFields, fc.integer({ min: 1, max: 5000 }), (fields, F) => {
        const data = new Uint8Array(F);
        const options = { symbolSize: fields.T, sourceBlocks: fields.Z, subBlocks: fields.N, alignment: fields.Al };
        const want = outcome(() => Oti.from({ ...fields, F }));
        let got: ObjectEncoder | undefined;
        expect(outcome(() => (got = new ObjectEncoder(data, options)))).toBe(want);
        if (got !== undefined) {
          expect(got.otiInfo.toJSON()).toEqual({ ...fields, F });
          got.close();
        }
      }),
      { numRuns: 2000 },
    );
  });
});

const { tables, reason } = loadTables();
if (tables === undefined) {
  // eslint-disable-next-line no-console
  console.warn(`skipping §4.3 derivation test: ${reason}`);
}
(tables === undefined ? describe.skip : describe)('§4.3 derivation', () => {
  const rfc = new Rfc6330(tables!);
  test('agrees with the RFC formulas', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 34 }),
        fc.integer({ min: 1, max: 4096 }),
        fc.constantFrom(1, 2, 4, 8, 16),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 2 ** 16, max: 2 ** 28 }),
        (F, pUnits, Al, SS, WS) => {
          const P = pUnits * Al;
          if (P > 65535) return;
          let expected: { T: number; Z: number; N: number } | undefined;
          try {
            expected = deriveOti(rfc, F, P, Al, SS, WS);
          } catch {
            expected = undefined;
          }
          const valid =
            expected !== undefined &&
            Number.isFinite(expected.Z) &&
            expected.Z >= 1 &&
            expected.Z <= 256 &&
            Math.floor(P / (SS * Al)) >= 1;
          if (valid) {
            const oti = Oti.derive(F, { payloadSize: P, alignment: Al, subSymbolSize: SS, maxSubBlockSize: WS });
            expect({ T: oti.T, Z: oti.Z, N: oti.N }).toEqual(expected);
            expect(oti.Al).toBe(Al);
            expect(oti.F).toBe(F);
          } else {
            expect(() => Oti.derive(F, { payloadSize: P, alignment: Al, subSymbolSize: SS, maxSubBlockSize: WS })).toThrow(
              expect.objectContaining({ code: expect.stringMatching(/^ERR_RQ_/) }),
            );
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  test('defaults: no sub-blocking, 1280-byte symbols, blocks within 16 MiB', () => {
    const oti = Oti.derive(100 * 2 ** 20);
    expect(oti.T).toBe(1280);
    expect(oti.N).toBe(1);
    expect(oti.Al).toBe(4);
    expect(oti.layout.KL * oti.T).toBeLessThanOrEqual(16 * 2 ** 20);
  });
});

describe('object layout (§4.4.1.2)', () => {
  test('blocks tile the object; TS layout agrees with the core', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200000 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 8 }),
        (F, tUnits, zPick) => {
          const T = tUnits * 4;
          const Kt = Math.ceil(F / T);
          if (Kt / Math.min(zPick, Kt) > 56403) return;
          const Z = Math.min(zPick, Kt);
          const N = 1 + (zPick % tUnits);
          const oti = Oti.from({ F, T, Z, N, Al: 4 });
          const l = oti.layout;
          const blocks = partition(Kt, Z);
          expect([l.KL, l.KS, l.ZL, l.ZS]).toEqual([blocks.IL, blocks.IS, blocks.JL, blocks.JS]);
          const sub = partition(T / 4, N);
          expect([l.TL, l.TS, l.NL, l.NS]).toEqual([sub.IL, sub.IS, sub.JL, sub.JS]);
          const raw = new (loadNative().Encoder)(new Uint8Array(F), oti.toBytes());
          let offset = 0;
          for (let sbn = 0; sbn < Z; sbn++) {
            expect(l.blockOffset(sbn)).toBe(offset);
            expect(l.blockLength(sbn)).toBe(raw.blockLength(sbn));
            expect(l.sourceSymbols(sbn)).toBe(raw.sourceSymbols(sbn));
            offset += l.blockLength(sbn);
          }
          expect(offset).toBe(F);
          raw.close();
        },
      ),
      { numRuns: 300 },
    );
  });

  test('encoder options pick the OTI as documented', () => {
    const data = new Uint8Array(50000);
    expect(new ObjectEncoder(data, { symbolSize: 1000, sourceBlocks: 3 }).otiInfo.toJSON()).toEqual({
      F: 50000,
      T: 1000,
      Z: 3,
      N: 1,
      Al: 4,
    });
    expect(new ObjectEncoder(data, { symbolSize: 1001 }).otiInfo.Al).toBe(1);
    expect(() => new ObjectEncoder(data, { symbolSize: 1001, alignment: 4 })).toThrow(SymbolSizeNotAlignedError);
    expect(new ObjectEncoder(data, { symbolSize: 1000, subBlocks: 5 }).otiInfo.N).toBe(5);
    const explicit = { F: 50000, T: 500, Z: 2, N: 3, Al: 2 };
    expect(new ObjectEncoder(data, { oti: explicit }).otiInfo.toJSON()).toEqual(explicit);
    expect(new ObjectEncoder(data, { oti: Oti.from(explicit).toBytes() }).otiInfo.toJSON()).toEqual(explicit);
    expect(() => new ObjectEncoder(data, { oti: { ...explicit, F: 49999 } })).toThrow(InvalidArgumentError);
  });
});
