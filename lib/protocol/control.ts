/**
 * encodeControl / decodeControl: every rqcast control message, header and
 * body. decodeControl never throws: hostile input yields
 * `{ ok: false, reason }`, counted in the optional counters.
 */
import { ByteReader, ByteWriter, catchReject } from './bytes';
import { readAckBody, writeAckBody } from './ack';
import {
  CONTROL_MAX_SIZE,
  CONTROL_READER_REASONS,
  ControlReader,
  ControlRejectReason,
  finishControl,
  readControlHeader,
  writeControlHeader,
} from './control-header';
import { readCookieBody, writeCookieBody } from './cookie';
import { readErrorBody, writeErrorBody } from './error';
import { ProtocolEncodeError } from './errors';
import { RejectCounters } from './counters';
import { readHelloBody, writeHelloBody } from './hello';
import { readJoinBody, writeJoinBody } from './join';
import { readJoinedBody, writeJoinedBody } from './joined';
import { readLeaveBody, writeLeaveBody } from './leave';
import { readNeedBody, writeNeedBody } from './need';
import { ControlMessage, MessageType } from './messages';

export type ControlDecodeResult =
  | { ok: true; msg: ControlMessage }
  | { ok: false; reason: ControlRejectReason };

export type ControlCounters = RejectCounters<ControlRejectReason>;

/** Encodes a control message. Throws ProtocolEncodeError for values that
 * cannot go on the wire (a caller's bug, not a network condition). */
export function encodeControl(msg: ControlMessage): Uint8Array {
  // A value outside the encoder's checks (e.g. a bad type) must surface as
  // ProtocolEncodeError, not as a RangeError from the writer.
  const w = new ByteWriter(CONTROL_MAX_SIZE + 64);
  writeControlHeader(w, msg.type);
  switch (msg.type) {
    case MessageType.Hello:
      writeHelloBody(w, msg);
      break;
    case MessageType.Cookie:
      writeCookieBody(w, msg);
      break;
    case MessageType.Join:
      writeJoinBody(w, msg);
      break;
    case MessageType.Joined:
      writeJoinedBody(w, msg);
      break;
    case MessageType.Leave:
      writeLeaveBody(w, msg);
      break;
    case MessageType.Ack:
      writeAckBody(w, msg);
      break;
    case MessageType.Error:
      writeErrorBody(w, msg);
      break;
    case MessageType.Need:
      writeNeedBody(w, msg);
      break;
    default:
      throw new ProtocolEncodeError(`unknown message type ${String((msg as { type: unknown }).type)}`);
  }
  if (w.offset > CONTROL_MAX_SIZE) throw new ProtocolEncodeError(`message exceeds ${CONTROL_MAX_SIZE} bytes`);
  return finishControl(w);
}

function readBody(r: ControlReader): ControlMessage {
  const header = readControlHeader(r);
  let msg: ControlMessage;
  switch (header.type) {
    case MessageType.Hello:
      msg = readHelloBody(r, header);
      break;
    case MessageType.Cookie:
      msg = readCookieBody(r);
      break;
    case MessageType.Join:
      msg = readJoinBody(r);
      break;
    case MessageType.Joined:
      msg = readJoinedBody(r);
      break;
    case MessageType.Leave:
      msg = readLeaveBody(r);
      break;
    case MessageType.Ack:
      msg = readAckBody(r);
      break;
    case MessageType.Error:
      msg = readErrorBody(r);
      break;
    case MessageType.Need:
      msg = readNeedBody(r);
      break;
  }
  if (r.remaining !== 0) r.fail('trailing-bytes');
  return msg;
}

/**
 * Decodes one control message: a whole UDP datagram, or one TCP frame's
 * contents (framing.ts). Never throws.
 */
export function decodeControl(bytes: Uint8Array, counters?: ControlCounters): ControlDecodeResult {
  const result = catchReject(
    () => readBody(new ByteReader(bytes, CONTROL_READER_REASONS)),
    'decoder-bug' as ControlRejectReason,
  );
  if (result.ok) {
    counters?.accept();
    return { ok: true, msg: result.value };
  }
  counters?.reject(result.reason);
  return result;
}
