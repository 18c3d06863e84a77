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

/** Where the whole frames of a buffer are (scanFrames). */
export interface FrameScan {
  /** Payload offset and length of each whole frame, in order. */
  offsets: number[];
  lengths: number[];
  /** Where the first frame not yet whole starts (the bytes to keep for later). */
  end: number;
  /** A zero-length frame stopped the scan at `end`: nothing after it can be read. */
  emptyFrame: boolean;
}

/** The whole frames of `buf` from its start: the one framing rule both readers below apply. */
export function scanFrames(buf: Uint8Array): FrameScan {
  const offsets: number[] = [];
  const lengths: number[] = [];
  let at = 0;
  while (buf.length - at >= FRAME_HEADER_SIZE) {
    const len = (buf[at] << 8) | buf[at + 1];
    if (len === 0) return { offsets, lengths, end: at, emptyFrame: true };
    if (buf.length - at - FRAME_HEADER_SIZE < len) break;
    offsets.push(at + FRAME_HEADER_SIZE);
    lengths.push(len);
    at += FRAME_HEADER_SIZE + len;
  }
  return { offsets, lengths, end: at, emptyFrame: false };
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
    const scan = scanFrames(buf);
    // Copies: a frame must not alias a chunk buffer the caller reuses.
    const frames = scan.offsets.map((o, i) => buf.slice(o, o + scan.lengths[i]));
    if (scan.emptyFrame) {
      this.failure = 'empty-frame';
      this.pending = new Uint8Array(0);
    } else {
      this.pending = buf.slice(scan.end);
    }
    return frames;
  }
}
