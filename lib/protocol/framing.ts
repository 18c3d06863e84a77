/**
 * Framing of rqcast packets on a byte stream (TCP), and telling control
 * messages from ALC packets by their first byte.
 *
 * Every packet (a control message or an ALC/LCT data packet, the same bytes
 * as its UDP datagram) travels as
 *
 *   length u16 (big-endian, 1..65535) | packet (length bytes)
 *
 * A zero length is a framing error: the stream can no longer be trusted and
 * the connection is closed.
 */
import { CONTROL_MAGIC_0 } from './control-header';
import { ProtocolEncodeError } from './errors';

export const FRAME_HEADER_SIZE = 2;
export const FRAME_MAX_PAYLOAD = 0xffff;

export type PacketKind = 'control' | 'alc' | 'unknown';

/** Control messages start with 0x52; LCT headers with version 1 in the top nibble. */
export function classifyPacket(bytes: Uint8Array): PacketKind {
  if (bytes.length === 0) return 'unknown';
  if (bytes[0] === CONTROL_MAGIC_0) return 'control';
  if (bytes[0] >> 4 === 1) return 'alc';
  return 'unknown';
}

export function encodeFrame(packet: Uint8Array): Uint8Array {
  if (packet.length === 0 || packet.length > FRAME_MAX_PAYLOAD) {
    throw new ProtocolEncodeError(`a framed packet must be 1..${FRAME_MAX_PAYLOAD} bytes`);
  }
  const out = new Uint8Array(FRAME_HEADER_SIZE + packet.length);
  out[0] = packet.length >> 8;
  out[1] = packet.length & 0xff;
  out.set(packet, FRAME_HEADER_SIZE);
  return out;
}

/**
 * Incremental frame reader: push stream chunks, take whole packets. Holds at
 * most one partial frame (<= 65537 bytes). After a zero-length frame it
 * stops and reports `failed`; the caller closes the connection.
 */
export class FrameDecoder {
  private pending: Uint8Array = new Uint8Array(0);
  private failure: 'empty-frame' | undefined;

  get failed(): 'empty-frame' | undefined {
    return this.failure;
  }

  /** Bytes received but not yet part of a returned frame. */
  get buffered(): number {
    return this.pending.length;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure !== undefined) return [];
    let buf: Uint8Array;
    if (this.pending.length === 0) {
      buf = chunk;
    } else {
      buf = new Uint8Array(this.pending.length + chunk.length);
      buf.set(this.pending, 0);
      buf.set(chunk, this.pending.length);
    }
    const frames: Uint8Array[] = [];
    let at = 0;
    while (buf.length - at >= FRAME_HEADER_SIZE) {
      const len = (buf[at] << 8) | buf[at + 1];
      if (len === 0) {
        this.failure = 'empty-frame';
        this.pending = new Uint8Array(0);
        return frames;
      }
      if (buf.length - at - FRAME_HEADER_SIZE < len) break;
      // Copies: a frame must not alias a chunk buffer the caller reuses.
      frames.push(buf.slice(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + len));
      at += FRAME_HEADER_SIZE + len;
    }
    this.pending = buf.slice(at);
    return frames;
  }
}
