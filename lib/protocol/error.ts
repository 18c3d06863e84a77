/**
 * ERROR (type 7), server -> client.
 *
 *   header(8) | code u16 | reasonLen u8 | reason (printable ASCII)
 *
 * At most ERROR_MAX_SIZE (107) bytes, less than HELLO_MIN_SIZE, so an ERROR
 * may answer an unverified HELLO. The reason is short text chosen by the
 * server, never a stack trace; the one piece of client input it may quote is
 * a channel name from a JOIN whose cookie verified (UnknownChannel), made
 * printable and cut to fit ERROR_REASON_MAX_BYTES.
 */
import { ByteWriter } from './bytes';
import { ControlReader, ERROR_REASON_MAX_BYTES } from './control-header';
import { ProtocolEncodeError } from './errors';
import { ErrorCode, ErrorMessage, MessageType } from './messages';

const KNOWN_CODES = new Set<number>(
  Object.values(ErrorCode).filter((v): v is number => typeof v === 'number'),
);

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function isPrintableAscii(b: Uint8Array): boolean {
  for (const c of b) if (c < 0x20 || c > 0x7e) return false;
  return true;
}

export function writeErrorBody(w: ByteWriter, msg: ErrorMessage): void {
  if (!KNOWN_CODES.has(msg.code)) throw new ProtocolEncodeError(`unknown error code ${String(msg.code)}`);
  if (typeof msg.reason !== 'string') throw new ProtocolEncodeError('reason must be a string');
  if (!PRINTABLE_ASCII.test(msg.reason) || msg.reason.length > ERROR_REASON_MAX_BYTES) {
    throw new ProtocolEncodeError(`reason must be printable ASCII of at most ${ERROR_REASON_MAX_BYTES} bytes`);
  }
  const text = Uint8Array.from(msg.reason, (c) => c.charCodeAt(0));
  w.u16(msg.code);
  w.u8(text.length);
  w.bytes(text);
}

export function readErrorBody(r: ControlReader): ErrorMessage {
  const code = r.u16();
  if (!KNOWN_CODES.has(code)) r.fail('unknown-error-code');
  const n = r.u8();
  if (n > ERROR_REASON_MAX_BYTES) r.fail('bad-reason-text');
  const text = r.take(n);
  if (!isPrintableAscii(text)) r.fail('bad-reason-text');
  return { type: MessageType.Error, code: code as ErrorCode, reason: String.fromCharCode(...text) };
}
