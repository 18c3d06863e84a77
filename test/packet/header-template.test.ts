/**
 * The LCT header templates native/packet builds in C++ (lct_header.cc,
 * alc_packet.cc) are byte for byte the ones lib/protocol/lct.ts writes for
 * the same (TSI, TOI, extensions), as the channel stream builds them: the
 * data header with and without EXT_RQSEQ, the FDT header with EXT_FDT,
 * EXT_FTI and EXT_RQSEQ; TSI and TOI of 16 bits when both fit, else of 32.
 * And a run written with the C++ template is, packet for packet, what
 * encodeAlc builds from the same fields.
 */
import fc from 'fast-check';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { loadNative } from '../../lib/native';
import { encodeAlc } from '../../lib/protocol/alc';
import { LctHeaderExtension, fdtExtension, ftiExtension } from '../../lib/protocol/lct';
import { headerTemplate } from '../../lib/stream/header-template';
import { Oti, encodeOti } from '../../lib/protocol/oti';
import { wireOti } from '../../lib/content/catalogue';
import { Rng } from '../../lib/support/rng';
import { oti as anyOti } from '../protocol/arbitraries';

const native = loadNative();

interface Template {
  bytes: Uint8Array;
  seqAt: number;
}

interface Case {
  tsi: number;
  toi: number;
  fdtInstanceId?: number;
  oti?: Oti;
  withSeq: boolean;
}

function tsFor(c: Case): Template {
  const ext: LctHeaderExtension[] = [];
  if (c.fdtInstanceId !== undefined) ext.push(fdtExtension(c.fdtInstanceId));
  if (c.oti !== undefined) ext.push(ftiExtension(c.oti));
  // The TypeScript side: what lib/stream/channel-stream.ts's packets start with.
  return headerTemplate(c.tsi, c.toi, ext, c.withSeq);
}

function cppFor(c: Case): Template {
  const t = native.lctHeaderTemplate(c.tsi, c.toi, c.fdtInstanceId ?? -1, c.oti === undefined ? null : encodeOti(c.oti), c.withSeq);
  return { bytes: new Uint8Array(t.bytes), seqAt: t.seqAt };
}

const OTI: Oti = { transferLength: 1_000_000, symbolSize: 1280, sourceBlocks: 1, subBlocks: 1, alignment: 4 };
// Z = 256 goes out as 0 (PROTOCOL.md §8.4); N > 1.
const OTI_Z256: Oti = { transferLength: 512 * 1280, symbolSize: 1280, sourceBlocks: 256, subBlocks: 5, alignment: 8 };

describe('native/packet LCT header templates', () => {
  const cases: [string, Case][] = [
    ['data packet, stream', { tsi: 1, toi: 1, withSeq: true }],
    ['data packet, fresh symbol', { tsi: 1, toi: 1, withSeq: false }],
    ['data packet, widest TSI and TOI', { tsi: 2 ** 32 - 1, toi: 2 ** 32 - 1, withSeq: true }],
    ['data packet, TSI and TOI 65535 (16 bits)', { tsi: 65535, toi: 65535, withSeq: true }],
    ['data packet, TOI 65536 (32 bits)', { tsi: 1, toi: 65536, withSeq: true }],
    ['data packet, TSI 65536 (32 bits)', { tsi: 65536, toi: 1, withSeq: false }],
    ['FDT packet, stream', { tsi: 7, toi: 0, fdtInstanceId: 0, oti: OTI, withSeq: true }],
    ['FDT packet, fresh symbol', { tsi: 7, toi: 0, fdtInstanceId: 0xabcde, oti: OTI, withSeq: false }],
    ['FDT packet, last instance ID, Z = 256', { tsi: 0x01020304, toi: 0, fdtInstanceId: 0xfffff, oti: OTI_Z256, withSeq: true }],
    ['EXT_FDT alone', { tsi: 3, toi: 0, fdtInstanceId: 17, withSeq: false }],
    ['EXT_FTI alone', { tsi: 3, toi: 9, oti: OTI, withSeq: true }],
  ];

  test.each(cases)('%s: C++ and TypeScript agree byte for byte', (_name, c) => {
    const cpp = cppFor(c);
    const ts = tsFor(c);
    expect(Buffer.from(cpp.bytes).toString('hex')).toBe(Buffer.from(ts.bytes).toString('hex'));
    expect(cpp.seqAt).toBe(ts.seqAt);
  });

  test('the FDT stream header is PROTOCOL.md §8.1: 40 bytes, HDR_LEN 10, H = 1, EXT_RQSEQ last; 44 with a 32-bit TSI', () => {
    const t = cppFor({ tsi: 7, toi: 0, fdtInstanceId: 1, oti: OTI, withSeq: true });
    expect(t.bytes.length).toBe(40);
    expect([...t.bytes.subarray(0, 4)]).toEqual([0x10, 0x10, 10, 6]);
    expect([...t.bytes.subarray(8, 12)]).toEqual([0, 7, 0, 0]);
    expect(t.bytes[12]).toBe(192);
    expect(t.bytes[16]).toBe(64);
    expect(t.bytes[32]).toBe(120);
    expect(t.seqAt).toBe(36);
    const wide = cppFor({ tsi: 0x10007, toi: 0, fdtInstanceId: 1, oti: OTI, withSeq: true });
    expect(wide.bytes.length).toBe(44);
    expect([...wide.bytes.subarray(0, 4)]).toEqual([0x10, 0xa0, 11, 6]);
    expect(wide.bytes[16]).toBe(192);
    expect(wide.bytes[36]).toBe(120);
    expect(wide.seqAt).toBe(40);
  });

  test('a stream data header is 20 bytes when TSI and TOI both fit 16 bits, else 24 (boundaries 65535 / 65536)', () => {
    const lengths = [0, 1, 65535, 65536, 2 ** 32 - 1].flatMap((tsi) =>
      [0, 1, 65535, 65536, 2 ** 32 - 1].map((toi) => [tsi, toi, headerTemplate(tsi, toi, [], true).bytes.length, cppFor({ tsi, toi, withSeq: true }).bytes.length]),
    );
    for (const [tsi, toi, ts, cpp] of lengths) {
      const want = tsi <= 65535 && toi <= 65535 ? 20 : 24;
      expect({ tsi, toi, ts, cpp }).toEqual({ tsi, toi, ts: want, cpp: want });
    }
  });

  test('any TSI, TOI, FDT Instance ID and valid OTI', () => {
    fc.assert(
      fc.property(
        fc.record({
          // Half of them near the 16-bit boundary, on either side.
          tsi: fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 65500, max: 65600 })),
          toi: fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 65500, max: 65600 })),
          fdtInstanceId: fc.option(fc.integer({ min: 0, max: 0xfffff }), { nil: undefined }),
          oti: fc.option(anyOti, { nil: undefined }),
          withSeq: fc.boolean(),
        }),
        (c) => {
          const cpp = cppFor(c);
          const ts = tsFor(c);
          expect(Buffer.compare(Buffer.from(cpp.bytes), Buffer.from(ts.bytes))).toBe(0);
          expect(cpp.seqAt).toBe(ts.seqAt);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('refuses what it cannot write, as lct.ts does', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return undefined;
    };
    expect(code(() => native.lctHeaderTemplate(2 ** 32, 1, -1, null, true))).toBe('ERR_RQ_INVALID_ARGUMENT');
    expect(code(() => native.lctHeaderTemplate(1, -1, -1, null, true))).toBe('ERR_RQ_INVALID_ARGUMENT');
    expect(() => fdtExtension(0x100000)).toThrow();
    expect(code(() => native.lctHeaderTemplate(1, 0, 0x100000, null, true))).toBe('ERR_RQ_INVALID_ARGUMENT');
    // T not a multiple of Al: refused by both.
    const bad = encodeOti(OTI);
    bad[11] = 3;
    expect(code(() => native.lctHeaderTemplate(1, 0, 0, bad, true))).toBe('ERR_RQ_SYMBOL_SIZE_NOT_ALIGNED');
    expect(() => ftiExtension({ ...OTI, alignment: 3 })).toThrow();
    expect(code(() => native.lctHeaderTemplate(1, 0, 0, new Uint8Array(11), true))).toBe('ERR_RQ_INVALID_ARGUMENT');
    expect(code(() => native.lctHeaderTemplate(1, 0, 0, null, 1 as unknown as boolean))).toBe('ERR_RQ_INVALID_ARGUMENT');
  });

  test('a run built on the C++ template is what encodeAlc builds, packet for packet', () => {
    const data = new Rng(3).bytes(30000);
    const enc = new ObjectEncoder(data, { symbolSize: 128, sourceBlocks: 2, subBlocks: 2 });
    try {
      const fdtOti = wireOti(enc.otiInfo);
      const runs: { c: Case; sbn: number; firstEsi: number; firstSeq: number }[] = [
        { c: { tsi: 5, toi: 3, withSeq: true }, sbn: 1, firstEsi: 110, firstSeq: 2 ** 32 - 3 },
        { c: { tsi: 5, toi: 3, withSeq: false }, sbn: 0, firstEsi: 9000, firstSeq: 0 },
        { c: { tsi: 5, toi: 0, fdtInstanceId: 42, oti: fdtOti, withSeq: true }, sbn: 0, firstEsi: 0, firstSeq: 64 },
        { c: { tsi: 5, toi: 65536, withSeq: true }, sbn: 1, firstEsi: 7, firstSeq: 9 },
        { c: { tsi: 65536, toi: 3, withSeq: false }, sbn: 0, firstEsi: 1, firstSeq: 0 },
      ];
      const count = 6;
      for (const { c, sbn, firstEsi, firstSeq } of runs) {
        const t = cppFor(c);
        const size = t.bytes.length + enc.packetSize;
        const out = new Uint8Array(count * size);
        expect(enc.packetsWithHeader(out, 0, t.bytes, t.seqAt, firstSeq, sbn, firstEsi, count)).toBe(count * size);
        const symbols = Buffer.from(enc.packets(sbn, firstEsi, count));
        for (let i = 0; i < count; i++) {
          const want = encodeAlc({
            tsi: c.tsi,
            toi: c.toi,
            sbn,
            esi: firstEsi + i,
            symbols: symbols.subarray(i * enc.packetSize + 4, (i + 1) * enc.packetSize),
            fdtInstanceId: c.fdtInstanceId,
            oti: c.oti,
            sequence: c.withSeq ? (firstSeq + i) % 2 ** 32 : undefined,
          });
          expect(Buffer.from(out.subarray(i * size, (i + 1) * size)).toString('hex')).toBe(Buffer.from(want).toString('hex'));
        }
      }
    } finally {
      enc.close();
    }
  });
});
