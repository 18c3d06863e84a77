/**
 * COOKIE (type 2), server -> client: the answer to HELLO.
 *
 *   header(8) | nonce(8) | serverTimeMs u64 | cookieLen u8 | cookie
 *
 * At most COOKIE_MAX_SIZE (89) bytes, less than HELLO_MIN_SIZE (128). The
 * cookie bytes are opaque to clients (layout: lib/session/cookie.ts and
 * docs/PROTOCOL.md).
 */
import { ByteWriter, isU64Safe } from './bytes';
import { ControlReader, NONCE_SIZE } from './control-header';
import { ProtocolEncodeError } from './errors';
import { readCookie, writeCookie } from './fields';
import { checkNonce } from './hello';
import { CookieMessage, MessageType } from './messages';

export function writeCookieBody(w: ByteWriter, msg: CookieMessage): void {
  checkNonce(msg.nonce);
  if (!isU64Safe(msg.serverTimeMs)) throw new ProtocolEncodeError('serverTimeMs must be a safe non-negative integer');
  w.bytes(msg.nonce);
  w.u64(msg.serverTimeMs);
  writeCookie(w, msg.cookie);
}

export function readCookieBody(r: ControlReader): CookieMessage {
  const nonce = r.take(NONCE_SIZE).slice();
  const serverTimeMs = r.u64();
  const cookie = readCookie(r);
  return { type: MessageType.Cookie, nonce, cookie, serverTimeMs };
}
