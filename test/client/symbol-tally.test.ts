/**
 * SymbolTally (lib/client/symbol-tally.ts) against a model: a Set of
 * (object, SBN, ESI) keys. Whatever the sources, objects, blocks and runs,
 * each source's symbols and duplicates are what the model counts.
 */
import fc from 'fast-check';
import { CHUNK_ESIS, SymbolTally } from '../../lib/client/symbol-tally';

describe('SymbolTally', () => {
  test('per-source symbols and duplicates match a set model, for any packets (ESIs up to 2^24 - 1, runs of G symbols)', () => {
    const packet = fc.record({
      source: fc.integer({ min: 0, max: 3 }),
      object: fc.integer({ min: 0, max: 1 }),
      sbn: fc.integer({ min: 0, max: 3 }),
      esi: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 2 ** 24 - 1 })),
      count: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(fc.array(packet, { maxLength: 300 }), (packets) => {
        const objects = [{}, {}];
        const tally = new SymbolTally();
        const seen = new Set<string>();
        const model = new Map<number, { symbols: number; duplicates: number }>();
        for (const p of packets) {
          tally.record(p.source, objects[p.object], p.sbn, p.esi, p.count);
          const m = model.get(p.source) ?? { symbols: 0, duplicates: 0 };
          model.set(p.source, m);
          for (let e = p.esi; e < Math.min(p.esi + p.count, 2 ** 24); e++) {
            const key = `${p.object}/${p.sbn}/${e}`;
            m.symbols++;
            if (seen.has(key)) m.duplicates++;
            seen.add(key);
          }
        }
        let symbols = 0;
        let duplicates = 0;
        for (let source = 0; source <= 3; source++) {
          const m = model.get(source) ?? { symbols: 0, duplicates: 0 };
          expect(tally.of(source)).toEqual(m);
          symbols += m.symbols;
          duplicates += m.duplicates;
        }
        expect(tally.symbols).toBe(symbols);
        expect(tally.duplicates).toBe(duplicates);
      }),
      { numRuns: 300 },
    );
  });

  test('the same ESI of another block, or of another object, is not a duplicate', () => {
    const t = new SymbolTally();
    const a = {};
    const b = {};
    t.record(0, a, 0, 7, 1);
    t.record(1, a, 1, 7, 1);
    t.record(1, b, 0, 7, 1);
    expect(t.duplicates).toBe(0);
    t.record(1, a, 0, 7, 1);
    expect(t.of(1)).toEqual({ symbols: 3, duplicates: 1 });
    expect(t.of(0)).toEqual({ symbols: 1, duplicates: 0 });
  });

  test('hostile ESIs spread over the 24-bit space, in every block: at most one 512-byte chunk per packet, never a bitmap of the whole space', () => {
    const t = new SymbolTally();
    const obj = {};
    let packets = 0;
    for (let sbn = 0; sbn < 256; sbn++) {
      for (let i = 0; i < 16; i++) {
        t.record(1, obj, sbn, 2 ** 24 - 1 - i * CHUNK_ESIS * 97, 1);
        packets++;
      }
    }
    expect(t.chunks).toBeLessThanOrEqual(packets);
    expect(t.chunks * (CHUNK_ESIS / 8)).toBeLessThanOrEqual(packets * 512);
    // Symbols in one chunk share it: a well-behaved stream costs a chunk per 4096 ESIs of a block.
    const calm = new SymbolTally();
    for (let esi = 0; esi < 20_000; esi++) calm.record(0, obj, 0, esi, 1);
    expect(calm.chunks).toBe(Math.ceil(20_000 / CHUNK_ESIS));
  });
});
