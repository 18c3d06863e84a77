/** DecoderLane: symbols staged in place or copied, handed to the native decoder in one call per stage. */
import { codecPacket, DecoderLane } from '../../lib/client/decoder-lanes';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { ObjectEncoder } from '../../lib/fec/encoder';

const T = 64;
let enc: ObjectEncoder;
let dec: ObjectDecoder;
beforeEach(() => {
  enc = new ObjectEncoder(Buffer.alloc(2 * 100 * T, 7), { symbolSize: T, sourceBlocks: 2 });
  const o = enc.otiInfo;
  dec = new ObjectDecoder({ F: o.F, T: o.T, Z: o.Z, N: o.N, Al: o.Al });
});
afterEach(() => {
  enc.close();
  dec.close();
});

/** A receive batch of codec packets of block sbn (ESIs first..first+count-1), with a junk byte in front of each. */
function batch(sbn: number, first: number, count: number): { buf: Uint8Array; at: number[] } {
  const size = 4 + T;
  const buf = new Uint8Array(count * (size + 1));
  const at: number[] = [];
  for (let i = 0; i < count; i++) {
    buf.set(enc.packet(sbn, first + i), i * (size + 1) + 1);
    at.push(i * (size + 1) + 1);
  }
  return { buf, at };
}

describe('DecoderLane', () => {
  test('in place: one native call per flush; blocks holding K are ready', () => {
    const lane = new DecoderLane(dec, T);
    const K = enc.sourceSymbols(0);
    const { buf, at } = batch(0, 0, K);
    for (const a of at) lane.stageInPlace(buf, a);
    expect(lane.staged).toBe(K);
    const pushed: number[] = [];
    const stats = { batches: 0, rejected: 0 };
    const n = lane.flush(
      {
        pushedOne: (sbn) => {
          pushed.push(sbn);
          return pushed.length === K;
        },
      },
      stats,
    );
    expect(n).toBe(K);
    expect(stats).toEqual({ batches: 1, rejected: 0 });
    expect(lane.staged).toBe(0);
    expect([...lane.ready]).toEqual([0]);
    expect(dec.progress[0].received).toBe(K);
  });

  test('holdsOtherBuffer: staged packets of another buffer must be flushed first', () => {
    const lane = new DecoderLane(dec, T);
    const a = batch(0, 0, 2);
    const b = batch(0, 2, 2);
    expect(lane.holdsOtherBuffer(a.buf)).toBe(false);
    lane.stageInPlace(a.buf, a.at[0]);
    expect(lane.holdsOtherBuffer(a.buf)).toBe(false);
    expect(lane.holdsOtherBuffer(b.buf)).toBe(true);
  });

  test('copies: the lane\'s buffer grows past 64 packets; both stages flush, one call each', () => {
    const lane = new DecoderLane(dec, T);
    for (let esi = 0; esi < 90; esi++) lane.stageCopy(enc.packet(1, esi));
    const inPlace = batch(1, 90, 3);
    for (const a of inPlace.at) lane.stageInPlace(inPlace.buf, a);
    const stats = { batches: 0, rejected: 0 };
    expect(lane.flush({ pushedOne: () => false }, stats)).toBe(93);
    expect(stats.batches).toBe(2);
    expect(dec.progress[1].received).toBe(93);
  });

  test('unstage drops one block\'s packets from both stages; clear drops everything', () => {
    const lane = new DecoderLane(dec, T);
    const a = batch(0, 0, 3);
    for (const at of a.at) lane.stageInPlace(a.buf, at);
    lane.stageCopy(enc.packet(1, 0));
    lane.stageCopy(enc.packet(0, 5));
    expect(lane.unstage(0)).toBe(4);
    expect(lane.staged).toBe(1);
    lane.ready.add(1);
    lane.deferred.push(enc.packet(1, 1));
    lane.clear();
    expect(lane.staged).toBe(0);
    expect(lane.ready.size).toBe(0);
    expect(lane.deferred).toEqual([]);
  });

  test('codecPacket: the FEC Payload ID (SBN, 24-bit ESI) then the symbol', () => {
    const sym = new Uint8Array(T + 3).fill(9, 3);
    const p = codecPacket(2, 0x010203, sym, 3, T);
    expect([...p.subarray(0, 4)]).toEqual([2, 1, 2, 3]);
    expect(p.length).toBe(4 + T);
    expect(p.subarray(4).every((b) => b === 9)).toBe(true);
  });
});
