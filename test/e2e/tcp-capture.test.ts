// The capture analysis of test/e2e/tcp.test.ts, on made-up segments: it must
// tell a fresh retransmission from a stale one and notice changed boundaries
// and re-segmentation, or the wire check proves nothing.
import { encodeAlc } from '../../lib/protocol/alc';
import type { TcpSegmentRecord } from '../support/pcap';
import { analyzeRetransmissions, frameLengths } from './tcp-capture';

const PORT = 4433;

function frame(packet: Uint8Array): Buffer {
  const b = Buffer.alloc(2 + packet.length);
  b.writeUInt16BE(packet.length, 0);
  b.set(packet, 2);
  return b;
}

function data(toi: number, sbn: number, esi: number): Buffer {
  return frame(encodeAlc({ tsi: 1, toi, sbn, esi, symbols: new Uint8Array(16).fill(esi & 0xff), sequence: esi }));
}

function seg(seq: number, ...frames: Buffer[]): TcpSegmentRecord {
  return { time: 0, src: '10.0.0.1', dst: '10.0.0.2', srcPort: PORT, dstPort: 40000, seq, ack: 1, flags: 0x18, payload: Buffer.concat(frames), checksumOk: true };
}

describe('analyzeRetransmissions', () => {
  it('counts a retransmission with new symbols at the same boundaries as fresh', () => {
    const a = data(1, 0, 1);
    const b = data(1, 0, 2);
    const first = seg(1000, a, b);
    const r = analyzeRetransmissions([first, seg(1000 + first.payload.length, data(1, 0, 3)), seg(1000, data(1, 0, 7), data(1, 0, 8))], PORT);
    expect(r).toMatchObject({ connections: 1, dataSegments: 3, retransmissions: 1, boundaryMismatches: 0, resegmented: 0, dataRetransmissions: 1, freshRetransmissions: 1, dataFrames: 2, staleFrames: 0 });
  });

  it('counts a frame repeating any earlier version as stale', () => {
    const r = analyzeRetransmissions([seg(5, data(1, 0, 1)), seg(5, data(1, 0, 2)), seg(5, data(1, 0, 1))], PORT);
    expect(r).toMatchObject({ retransmissions: 2, dataRetransmissions: 2, freshRetransmissions: 1, staleFrames: 1 });
  });

  it('does not judge control frames (the FDT, TOI 0) and passes them as they were', () => {
    const fdt = frame(encodeAlc({ tsi: 1, toi: 0, sbn: 0, esi: 0, symbols: new Uint8Array(8), sequence: 1, fdtInstanceId: 1 }));
    const r = analyzeRetransmissions([seg(5, fdt), seg(5, fdt)], PORT);
    expect(r).toMatchObject({ retransmissions: 1, dataRetransmissions: 0, boundaryMismatches: 0 });
  });

  it('notices other lengths, other frame boundaries and re-segmentation', () => {
    const a = data(1, 0, 1);
    const r = analyzeRetransmissions(
      [seg(0, a, data(1, 0, 2)), seg(0, data(1, 0, 3)), seg(a.length, data(1, 0, 4))],
      PORT,
    );
    expect(r).toMatchObject({ retransmissions: 1, boundaryMismatches: 1, resegmented: 1 });
  });

  it('compares sequence numbers across a wrap of the sequence space', () => {
    const a = data(1, 0, 1);
    const r = analyzeRetransmissions([seg(0xffff_fff0, a), seg((0xffff_fff0 + a.length) >>> 0, data(1, 0, 2)), seg(0xffff_fff0, data(1, 0, 9))], PORT);
    expect(r).toMatchObject({ retransmissions: 1, freshRetransmissions: 1, resegmented: 0 });
  });

  it('counts data segments with a wrong checksum and the largest payload', () => {
    const r = analyzeRetransmissions([seg(0, data(1, 0, 1)), { ...seg(100, data(1, 0, 2), data(1, 0, 3)), checksumOk: false }], PORT);
    expect(r).toMatchObject({ dataSegments: 2, badChecksums: 1, largestPayload: 2 * data(1, 0, 2).length });
  });

  it('splits payloads into frames, refusing a torn one', () => {
    expect(frameLengths(Buffer.concat([frame(new Uint8Array(3)), frame(new Uint8Array(1))]))).toEqual([3, 1]);
    expect(frameLengths(Buffer.from([0, 5, 1, 2]))).toBeUndefined();
    expect(frameLengths(Buffer.from([0, 0]))).toBeUndefined();
  });
});
