/**
 * From ALC packets to the codec's packets. An ALC packet (RFC 5775) carries
 * one FEC Payload ID (SBN, ESI) and G >= 1 encoding symbols of T bytes with
 * consecutive ESIs (RFC 6330 §3.2); the codec takes one symbol per packet,
 * each with its own 4-byte payload ID.
 */
import { AlcPacket, FEC_PAYLOAD_ID_SIZE, MAX_ESI } from '../protocol/alc';

/**
 * The codec packets (4 + T bytes each) of an ALC packet, or undefined if its
 * payload is not a whole number of T-byte symbols. For G = 1 (what rqcast
 * sends) the result is a view of the received bytes, no copy: the FEC
 * Payload ID sits just before the symbol. Symbols whose ESI would pass
 * 2^24 - 1 are left out.
 */
export function codecPackets(packet: AlcPacket, T: number): Uint8Array[] | undefined {
  const len = packet.payloadLength;
  if (len === 0 || len % T !== 0) return undefined;
  const G = len / T;
  const p = packet.payload;
  if (G === 1) return [new Uint8Array(p.buffer, p.byteOffset - FEC_PAYLOAD_ID_SIZE, FEC_PAYLOAD_ID_SIZE + T)];
  const out: Uint8Array[] = [];
  for (let i = 0; i < G; i++) {
    const esi = packet.esi + i;
    if (esi > MAX_ESI) break;
    const one = new Uint8Array(FEC_PAYLOAD_ID_SIZE + T);
    one[0] = packet.sbn;
    one[1] = esi >> 16;
    one[2] = (esi >> 8) & 0xff;
    one[3] = esi & 0xff;
    one.set(p.subarray(i * T, (i + 1) * T), FEC_PAYLOAD_ID_SIZE);
    out.push(one);
  }
  return out;
}
