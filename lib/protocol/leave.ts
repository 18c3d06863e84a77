/**
 * LEAVE (type 5), client -> server: ends the session at once.
 *
 *   header(8) | cookieLen u8 | cookie
 */
import { ByteWriter } from './bytes';
import { ControlReader } from './control-header';
import { readCookie, writeCookie } from './fields';
import { LeaveMessage, MessageType } from './messages';

export function writeLeaveBody(w: ByteWriter, msg: LeaveMessage): void {
  writeCookie(w, msg.cookie);
}

export function readLeaveBody(r: ControlReader): LeaveMessage {
  return { type: MessageType.Leave, cookie: readCookie(r) };
}
