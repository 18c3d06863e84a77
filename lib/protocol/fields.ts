/**
 * Field encodings shared by several control messages: cookies and
 * length-prefixed UTF-8 names. All lengths are one byte and bounded.
 */
import { ByteWriter } from './bytes';
import {
  CHANNEL_NAME_MAX_BYTES,
  COOKIE_MAX_BYTES,
  COOKIE_MIN_BYTES,
  ControlReader,
} from './control-header';
import { ProtocolEncodeError } from './errors';

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();
/** A UTF-16 surrogate without its pair has no UTF-8 encoding. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function readCookie(r: ControlReader): Uint8Array {
  const n = r.u8();
  if (n < COOKIE_MIN_BYTES || n > COOKIE_MAX_BYTES) r.fail('bad-cookie-length');
  // A copy: the message outlives the datagram buffer it arrived in.
  return r.take(n).slice();
}

export function writeCookie(w: ByteWriter, cookie: Uint8Array): void {
  if (!(cookie instanceof Uint8Array) || cookie.length < COOKIE_MIN_BYTES || cookie.length > COOKIE_MAX_BYTES) {
    throw new ProtocolEncodeError(`cookie must be ${COOKIE_MIN_BYTES}..${COOKIE_MAX_BYTES} bytes`);
  }
  w.u8(cookie.length);
  w.bytes(cookie);
}

export function cookieWireSize(cookie: Uint8Array): number {
  return 1 + cookie.length;
}

export function readChannelName(r: ControlReader): string {
  const n = r.u8();
  if (n === 0 || n > CHANNEL_NAME_MAX_BYTES) r.fail('bad-channel-name');
  const raw = r.take(n);
  try {
    return utf8Decoder.decode(raw);
  } catch {
    return r.fail('bad-utf8');
  }
}

/** UTF-8 bytes of a channel name, checked against the wire bounds. */
export function channelNameBytes(name: string): Uint8Array {
  if (typeof name !== 'string') throw new ProtocolEncodeError('channel name must be a string');
  if (LONE_SURROGATE.test(name)) throw new ProtocolEncodeError('channel name has a lone surrogate');
  const b = utf8Encoder.encode(name);
  if (b.length === 0 || b.length > CHANNEL_NAME_MAX_BYTES) {
    throw new ProtocolEncodeError(`channel name must be 1..${CHANNEL_NAME_MAX_BYTES} UTF-8 bytes`);
  }
  return b;
}

export function writeChannelName(w: ByteWriter, nameBytes: Uint8Array): void {
  w.u8(nameBytes.length);
  w.bytes(nameBytes);
}
