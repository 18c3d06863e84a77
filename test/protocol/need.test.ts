/** NEED (type 8): round trip, canonical form, every malformed variant dropped with its reason (docs/PROTOCOL.md §4.11). */
import fc from 'fast-check';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { ControlCounters } from '../../lib/protocol/control';
import { RejectCounters } from '../../lib/protocol/counters';
import { NEED_MAX_ENTRIES } from '../../lib/protocol/control-header';
import { ProtocolEncodeError } from '../../lib/protocol/errors';
import { MessageType, NeedEntry, NeedMessage } from '../../lib/protocol/messages';
import { needEntries } from '../../lib/protocol/need';

const COOKIE = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
const need = (entries: NeedEntry[], extra: Partial<NeedMessage> = {}): NeedMessage => ({
  type: MessageType.Need,
  cookie: COOKIE,
  tsi: 3,
  rqseq: 99,
  loss: 1000,
  entries,
  ...extra,
});

/** Bytes of a NEED with `entries` written raw (no encoder check), so that non-canonical forms can be sent. */
function raw(entries: NeedEntry[], count = entries.length): Uint8Array {
  const good = encodeControl(need([{ toi: 1, firstSbn: 0, lastSbn: 0, need: 0 }]));
  const head = good.subarray(0, good.length - 9); // up to rqseq and loss, without count and the one entry
  const out = Buffer.alloc(head.length + 1 + 8 * entries.length);
  out.set(head);
  out[head.length] = count;
  let at = head.length + 1;
  for (const e of entries) {
    out.writeUInt32BE(e.toi, at);
    out[at + 4] = e.firstSbn;
    out[at + 5] = e.lastSbn;
    out.writeUInt16BE(e.need, at + 6);
    at += 8;
  }
  out.writeUInt16BE(out.length, 4);
  return new Uint8Array(out);
}

function reason(b: Uint8Array): string {
  const r = decodeControl(b);
  return r.ok ? 'ok' : r.reason;
}

/** Per-block needs, distinct (toi, sbn). */
const blocksArb = fc
  .uniqueArray(fc.record({ toi: fc.integer({ min: 1, max: 5 }), sbn: fc.integer({ min: 0, max: 20 }) }), {
    minLength: 1,
    maxLength: 80,
    selector: (b) => `${b.toi}/${b.sbn}`,
  })
  .chain((keys) => fc.tuple(fc.constant(keys), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: keys.length, maxLength: keys.length })))
  .map(([keys, needs]) => keys.map((k, i) => ({ ...k, need: needs[i] })));

describe('NEED', () => {
  test('needEntries → encode → decode gives back every block (of the first 64 entries) and one encoding', () => {
    fc.assert(
      fc.property(blocksArb, fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffff }), (blocks, rqseq, loss) => {
        const entries = needEntries(blocks);
        expect(entries.length).toBeLessThanOrEqual(NEED_MAX_ENTRIES);
        const b = encodeControl(need(entries, { rqseq, loss }));
        const d = decodeControl(b);
        if (!d.ok || d.msg.type !== MessageType.Need) throw new Error(`decoded as ${JSON.stringify(d)}`);
        expect(d.msg).toEqual(need(entries, { rqseq, loss }));
        const covered = new Map<string, number>();
        for (const e of d.msg.entries) for (let s = e.firstSbn; s <= e.lastSbn; s++) covered.set(`${e.toi}/${s}`, e.need);
        for (const blk of blocks) {
          const got = covered.get(`${blk.toi}/${blk.sbn}`);
          if (got !== undefined) expect(got).toBe(blk.need);
        }
        // Re-encoding the decoded message gives the same bytes: one encoding.
        expect(Buffer.from(encodeControl(d.msg)).equals(Buffer.from(b))).toBe(true);
        if (entries.length < NEED_MAX_ENTRIES) expect(covered.size).toBe(blocks.length);
      }),
    );
  });

  test('every malformed variant is dropped with its counted reason', () => {
    const counters: ControlCounters = new RejectCounters();
    const cases: [Uint8Array, string][] = [
      [raw([], 0), 'bad-need-count'],
      [raw(Array.from({ length: 65 }, (_, i) => ({ toi: i + 1, firstSbn: 0, lastSbn: 0, need: 1 }))), 'bad-need-count'],
      [raw([{ toi: 0, firstSbn: 0, lastSbn: 0, need: 1 }]), 'bad-need-entry'],
      [raw([{ toi: 1, firstSbn: 3, lastSbn: 2, need: 1 }]), 'bad-need-entry'],
      // Out of order, overlapping, and touching with the same need (two encodings of one set).
      [raw([{ toi: 2, firstSbn: 0, lastSbn: 0, need: 1 }, { toi: 1, firstSbn: 0, lastSbn: 0, need: 1 }]), 'bad-need-entry'],
      [raw([{ toi: 1, firstSbn: 0, lastSbn: 4, need: 1 }, { toi: 1, firstSbn: 4, lastSbn: 5, need: 2 }]), 'bad-need-entry'],
      [raw([{ toi: 1, firstSbn: 0, lastSbn: 4, need: 1 }, { toi: 1, firstSbn: 5, lastSbn: 5, need: 1 }]), 'bad-need-entry'],
      [raw([{ toi: 1, firstSbn: 0, lastSbn: 0, need: 1 }]).subarray(0, 30), 'length-mismatch'],
    ];
    for (const [bytes, why] of cases) {
      expect(reason(bytes)).toBe(why);
      decodeControl(bytes, counters);
    }
    // The same cases, canonical neighbours: accepted.
    expect(reason(raw([{ toi: 1, firstSbn: 0, lastSbn: 4, need: 1 }, { toi: 1, firstSbn: 5, lastSbn: 5, need: 2 }]))).toBe('ok');
    expect(reason(raw([{ toi: 1, firstSbn: 0, lastSbn: 4, need: 1 }, { toi: 2, firstSbn: 0, lastSbn: 5, need: 1 }]))).toBe('ok');
    expect(counters.get('bad-need-count')).toBe(2);
    expect(counters.get('bad-need-entry')).toBe(5);
    expect(counters.rejected).toBe(cases.length);
  });

  test('a truncated entry is truncated, a byte too many trailing', () => {
    const b = raw([{ toi: 1, firstSbn: 0, lastSbn: 0, need: 1 }]);
    const short = Buffer.from(b.subarray(0, b.length - 1));
    short.writeUInt16BE(short.length, 4);
    expect(reason(short)).toBe('truncated');
    const long = Buffer.concat([Buffer.from(b), Buffer.alloc(1)]);
    long.writeUInt16BE(long.length, 4);
    expect(reason(long)).toBe('trailing-bytes');
  });

  test('the encoder refuses what cannot go on the wire', () => {
    expect(() => encodeControl(need([]))).toThrow(ProtocolEncodeError);
    expect(() => encodeControl(need([{ toi: 1, firstSbn: 0, lastSbn: 0, need: 70000 }]))).toThrow(ProtocolEncodeError);
    expect(() => encodeControl(need([{ toi: 1, firstSbn: 0, lastSbn: 0, need: 1 }], { loss: 65536 }))).toThrow(ProtocolEncodeError);
    expect(() => encodeControl(need([{ toi: 1, firstSbn: 2, lastSbn: 1, need: 1 }]))).toThrow(ProtocolEncodeError);
  });
});
