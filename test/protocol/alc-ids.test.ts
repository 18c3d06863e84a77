/**
 * The TSI and TOI layout rqcast sends (docs/PROTOCOL.md §8.1): 16 bits each
 * (S = 0, O = 0, H = 1) when both fit, else 32 bits each (S = 1, O = 1,
 * H = 0); and whatever the form, decodeAlc and scanAlcData read back what
 * encodeAlc wrote.
 */
import fc from 'fast-check';
import { decodeAlc, encodeAlc, idLengths, MAX_SHORT_ID, newAlcScan, scanAlcData, streamPacketOverhead } from '../../lib/protocol/alc';

/** S, O and H of an encoded packet's second byte. */
function sohOf(packet: Uint8Array): { S: number; O: number; H: number } {
  return { S: packet[1] >> 7, O: (packet[1] >> 5) & 3, H: (packet[1] >> 4) & 1 };
}

const SHORT = { S: 0, O: 0, H: 1 };
const LONG = { S: 1, O: 1, H: 0 };

/** Around 2^16 on either side, or anywhere in 32 bits. */
const id = fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: MAX_SHORT_ID - 40, max: MAX_SHORT_ID + 40 }), fc.integer({ min: 0, max: 40 }));

function roundTrip(tsi: number, toi: number, sequence?: number): void {
  const symbols = Uint8Array.from({ length: 12 }, (_, i) => (tsi + toi + i) & 0xff);
  const bytes = encodeAlc({ tsi, toi, sbn: 3, esi: 0x10203, symbols, sequence });
  const d = decodeAlc(bytes);
  if (!d.ok) throw new Error(d.reason);
  const short = tsi <= MAX_SHORT_ID && toi <= MAX_SHORT_ID;
  expect(sohOf(bytes)).toEqual(short ? SHORT : LONG);
  expect(d.packet.header.headerLength).toBe((short ? 12 : 16) + (sequence === undefined ? 0 : 8));
  expect([d.packet.tsi, d.packet.toi, d.packet.sbn, d.packet.esi, d.packet.sequence]).toEqual([tsi, BigInt(toi), 3, 0x10203, sequence]);
  expect([d.packet.header.tsiLength, d.packet.header.toiLength]).toEqual(short ? [2, 2] : [4, 4]);
  expect(Buffer.from(d.packet.payload).equals(Buffer.from(symbols))).toBe(true);
  if (toi === 0) return; // the FDT: scanAlcData leaves it to decodeAlc
  const scan = newAlcScan();
  expect(scanAlcData(bytes, 0, bytes.length, scan)).toBe(true);
  expect([scan.tsi, scan.toi, scan.sbn, scan.esi, scan.sequence, scan.payloadIdOffset]).toEqual([tsi, toi, 3, 0x10203, sequence ?? -1, d.packet.header.headerLength]);
}

describe('TSI and TOI of 16 bits when both fit (RFC 5651 §5.1 H = 1)', () => {
  test.each([
    [0, 1, 2],
    [1, 1, 2],
    [MAX_SHORT_ID, MAX_SHORT_ID, 2],
    [MAX_SHORT_ID + 1, MAX_SHORT_ID, 4],
    [MAX_SHORT_ID, MAX_SHORT_ID + 1, 4],
    [1, MAX_SHORT_ID + 1, 4],
    [MAX_SHORT_ID + 1, 1, 4],
    [2 ** 32 - 1, 2 ** 32 - 1, 4],
  ])('TSI %d, TOI %d: %d bytes each', (tsi, toi, bytes) => {
    expect(idLengths(tsi, toi)).toEqual({ tsiLength: bytes, toiLength: bytes });
    expect(idLengths(tsi, BigInt(toi))).toEqual({ tsiLength: bytes, toiLength: bytes });
    roundTrip(tsi, toi, 0xfedcba98);
    roundTrip(tsi, toi);
  });

  test('a stream packet spends 24 bytes before its symbol, 28 in the 32-bit form', () => {
    expect(MAX_SHORT_ID).toBe(0xffff);
    expect(streamPacketOverhead(1, 1)).toBe(24);
    expect(streamPacketOverhead(MAX_SHORT_ID, MAX_SHORT_ID)).toBe(24);
    expect(streamPacketOverhead(1, MAX_SHORT_ID + 1)).toBe(28);
    expect(streamPacketOverhead(MAX_SHORT_ID + 1, 1)).toBe(28);
  });

  test('an FDT packet (TOI 0) takes the 16-bit form too', () => {
    const oti = { transferLength: 100, symbolSize: 16, sourceBlocks: 1, subBlocks: 1, alignment: 4 };
    const p = encodeAlc({ tsi: 9, toi: 0, sbn: 0, esi: 0, symbols: new Uint8Array(16), oti, fdtInstanceId: 5, sequence: 1 });
    expect(sohOf(p)).toEqual(SHORT);
    expect(p[2] * 4).toBe(12 + 4 + 16 + 8);
    const d = decodeAlc(p);
    expect(d.ok && [d.packet.toi, d.packet.fdt?.instanceId, d.packet.oti?.symbolSize]).toEqual([0n, 5, 16]);
  });

  test('lengths the caller gives win: 32-bit fields for small ids, or any other legal layout', () => {
    const p = encodeAlc({ tsi: 1, toi: 1, sbn: 0, esi: 0, symbols: new Uint8Array(4), tsiLength: 4, toiLength: 4 });
    expect(sohOf(p)).toEqual(LONG);
    const q = encodeAlc({ tsi: 1, toi: 1, sbn: 0, esi: 0, symbols: new Uint8Array(4), tsiLength: 6, toiLength: 2 });
    expect(sohOf(q)).toEqual({ S: 1, O: 0, H: 1 });
    // One length given: the other is 32 bits, as before the 16-bit form.
    expect(() => encodeAlc({ tsi: 1, toi: 1, sbn: 0, esi: 0, symbols: new Uint8Array(4), toiLength: 2 })).toThrow('disagree on the H flag');
  });

  test('property: any TSI and TOI of 32 bits round-trip, H = 1 exactly when both fit', () => {
    fc.assert(
      fc.property(id, id, fc.option(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { nil: undefined }), (tsi, toi, sequence) => {
        roundTrip(tsi, toi === 0 ? 1 : toi, sequence);
      }),
      { numRuns: 500 },
    );
  });
});
