import fc from 'fast-check';
import { InvalidServerConfigError } from '../../lib/errors';
import { CarriedSlot, SymbolHistory } from '../../lib/stream/symbol-history';

const SEQ = 2 ** 32;

describe('SymbolHistory', () => {
  test('at(seq): the slot a sequence number carried; the next one and unsent ones are unknown', () => {
    const h = new SymbolHistory(8);
    expect(h.at(0)).toBeUndefined();
    h.record(0, 1, -1, 0, 0); // an FDT packet
    h.record(1, 4, 0, 2, 100);
    h.record(5, 3, 1, 0, 7, 4); // ESIs with a stride: 7, 11, 15
    expect(h.end).toBe(8);
    expect(h.at(0)).toEqual({ source: -1, sbn: 0, esi: 0 });
    expect(h.at(3)).toEqual({ source: 0, sbn: 2, esi: 102 });
    expect(h.at(7)).toEqual({ source: 1, sbn: 0, esi: 15 });
    expect(h.at(8)).toBeUndefined();
    expect(h.at(-1)).toBeUndefined();
    expect(h.at(1.5)).toBeUndefined();
    expect(h.at(SEQ)).toBeUndefined();
  });

  test('the ring forgets the oldest segments beyond its capacity', () => {
    const h = new SymbolHistory(3);
    for (let i = 0; i < 5; i++) h.record(i * 2, 2, 0, i, 0);
    expect(h.at(3)).toBeUndefined();
    expect(h.at(4)).toEqual({ source: 0, sbn: 2, esi: 0 });
    expect(h.at(9)).toEqual({ source: 0, sbn: 4, esi: 1 });
  });

  test('sequence numbers unwrap across 2^32 against the end of what was recorded', () => {
    const h = new SymbolHistory(16);
    h.record(SEQ - 3, 2, 0, 1, 10);
    h.record(SEQ - 1, 4, 0, 2, 20);
    expect(h.at(SEQ - 3)).toEqual({ source: 0, sbn: 1, esi: 10 });
    expect(h.at(SEQ - 1)).toEqual({ source: 0, sbn: 2, esi: 20 });
    expect(h.at(2)).toEqual({ source: 0, sbn: 2, esi: 23 });
    expect(h.at(3)).toBeUndefined();
  });

  test('carried(first, length): every slot a sequence range overlapped, slots `width` long (bytes, for TCP)', () => {
    const h = new SymbolHistory(16);
    // Framed packets of 1000 bytes: segment 1 holds 3 packets, segment 2 two (with a stride).
    h.record(SEQ - 1500, 3, 0, 4, 50, 1, 1000);
    h.record(SEQ + 1500, 2, 1, 0, 9, 3, 1000);
    const slot = (source: number, sbn: number, esi: number): CarriedSlot => ({ source, sbn, esi });
    // One byte of the second packet.
    expect(h.carried(SEQ - 500, 1)).toEqual([slot(0, 4, 51)]);
    // From the middle of the first packet, across the 2^32 wrap, into the next segment.
    expect(h.carried(SEQ - 1000 - 1, 3000)).toEqual([slot(0, 4, 50), slot(0, 4, 51), slot(0, 4, 52), slot(1, 0, 9)]);
    expect(h.carried(1500, 2000)).toEqual([slot(1, 0, 9), slot(1, 0, 12)]);
    expect(h.carried(3500, 10)).toEqual([]);
    expect(h.carried(0, 0)).toEqual([]);
  });

  test('property: with width 1, carried(seq, 1) is [at(seq)] and carried over a segment lists its ESIs in order', () => {
    fc.assert(
      fc.property(
        fc.nat(SEQ - 1),
        fc.array(fc.record({ count: fc.integer({ min: 1, max: 6 }), sbn: fc.nat(255), esi: fc.nat(1000), stride: fc.integer({ min: 1, max: 4 }) }), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.integer({ min: 1, max: 40 }),
        (origin, segments, capacity) => {
          const h = new SymbolHistory(capacity);
          let at = origin;
          const all: { seq: number; slot: CarriedSlot }[] = [];
          segments.forEach((s, i) => {
            h.record(at, s.count, i, s.sbn, s.esi, s.stride);
            for (let k = 0; k < s.count; k++) all.push({ seq: (at + k) % SEQ, slot: { source: i, sbn: s.sbn, esi: s.esi + k * s.stride } });
            at += s.count;
          });
          const remembered = segments.slice(-capacity).reduce((n, s) => n + s.count, 0);
          all.forEach(({ seq, slot }, i) => {
            const known = i >= all.length - remembered;
            expect(h.at(seq)).toEqual(known ? slot : undefined);
            expect(h.carried(seq, 1)).toEqual(known ? [slot] : []);
          });
          const recent = all.slice(-remembered);
          expect(h.carried(recent[0].seq, recent.length)).toEqual(recent.map((r) => r.slot));
        },
      ),
      { numRuns: 100 },
    );
  });

  test('capacity must be a positive integer', () => {
    expect(() => new SymbolHistory(0)).toThrow(InvalidServerConfigError);
    expect(new SymbolHistory().capacity).toBe(16384);
  });
});
