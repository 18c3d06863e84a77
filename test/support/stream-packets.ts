// What the stream tests read out of a ChannelStream: its packets decoded,
// and each packet's FEC Payload ID + symbol as an ObjectDecoder takes it.
import { type AlcPacket, decodeAlc } from '../../lib/protocol/alc';
import type { ServedStream } from '../../lib/stream/served-stream';

/** `n` packets of `stream`, decoded (from copies: the stream reuses its staging buffer); throws if decodeAlc refuses one. */
export function takePackets(stream: Pick<ServedStream, 'fill'>, n: number): AlcPacket[] {
  const out: AlcPacket[] = [];
  stream.fill(n, (buf, size, count) => {
    for (let i = 0; i < count; i++) {
      const r = decodeAlc(buf.slice(i * size, (i + 1) * size));
      if (!r.ok) throw new Error(`decodeAlc refused: ${r.reason}`);
      out.push(r.packet);
    }
    return count;
  });
  return out;
}

/** FEC Payload ID + symbol, as the decoder takes it. */
export function codecPacket(p: AlcPacket): Uint8Array {
  const out = new Uint8Array(4 + p.payload.length);
  out.set([p.sbn, p.esi >>> 16, (p.esi >>> 8) & 0xff, p.esi & 0xff]);
  out.set(p.payload, 4);
  return out;
}
