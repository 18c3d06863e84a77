/**
 * ACK (type 6), client -> server: which packets of one channel arrived.
 *
 *   header(8) | cookieLen u8 | cookie | tsi u32 | windowStart u32
 *             | windowEnd u32 | count u8 | count x (start u32 | end u32)
 *
 * Sequence numbers are the per-channel 32-bit packet sequence numbers of the
 * EXT_RQSEQ LCT extension (lct.ts) and wrap modulo 2^32: every position is
 * taken as its offset from windowStart, (x - windowStart) mod 2^32.
 * The window [windowStart, windowEnd) holds 1..ACK_MAX_WINDOW packets.
 * Ranges are half-open, non-empty, inside the window, in ascending order,
 * and neither overlap nor touch (so each set of packets has one encoding).
 * Every packet of the window not inside a range is reported lost.
 */
import { ByteWriter, isU32 } from './bytes';
import { ACK_MAX_RANGES, ACK_MAX_WINDOW, ControlReader } from './control-header';
import { ProtocolEncodeError } from './errors';
import { readCookie, writeCookie } from './fields';
import { AckMessage, MessageType, SeqRange } from './messages';

/** (b - a) mod 2^32 for 32-bit sequence numbers. */
export function seqDistance(a: number, b: number): number {
  return (b - a) >>> 0;
}

/** Why a window and ranges are not canonical, or undefined if they are. */
function checkAckShape(
  windowStart: number,
  windowEnd: number,
  received: readonly SeqRange[],
): 'bad-window' | 'too-many-ranges' | 'bad-range' | undefined {
  const windowLen = seqDistance(windowStart, windowEnd);
  if (windowLen === 0 || windowLen > ACK_MAX_WINDOW) return 'bad-window';
  if (received.length > ACK_MAX_RANGES) return 'too-many-ranges';
  let prevEnd = -1;
  for (const { start, end } of received) {
    const s = seqDistance(windowStart, start);
    const e = seqDistance(windowStart, end);
    if (!(s > prevEnd && e > s && e <= windowLen)) return 'bad-range';
    prevEnd = e;
  }
  return undefined;
}

export function writeAckBody(w: ByteWriter, msg: AckMessage): void {
  for (const v of [msg.tsi, msg.windowStart, msg.windowEnd]) {
    if (!isU32(v)) throw new ProtocolEncodeError('tsi and window bounds must be 32-bit unsigned integers');
  }
  if (!Array.isArray(msg.received)) throw new ProtocolEncodeError('received must be an array');
  for (const r of msg.received) {
    if (!isU32(r.start) || !isU32(r.end)) throw new ProtocolEncodeError('range bounds must be 32-bit unsigned integers');
  }
  const bad = checkAckShape(msg.windowStart, msg.windowEnd, msg.received);
  if (bad !== undefined) throw new ProtocolEncodeError(`ACK is not canonical: ${bad}`);
  writeCookie(w, msg.cookie);
  w.u32(msg.tsi);
  w.u32(msg.windowStart);
  w.u32(msg.windowEnd);
  w.u8(msg.received.length);
  for (const r of msg.received) {
    w.u32(r.start);
    w.u32(r.end);
  }
}

export function readAckBody(r: ControlReader): AckMessage {
  const cookie = readCookie(r);
  const tsi = r.u32();
  const windowStart = r.u32();
  const windowEnd = r.u32();
  const count = r.u8();
  if (count > ACK_MAX_RANGES) r.fail('too-many-ranges');
  const received: SeqRange[] = [];
  for (let i = 0; i < count; i++) received.push({ start: r.u32(), end: r.u32() });
  const bad = checkAckShape(windowStart, windowEnd, received);
  if (bad !== undefined) r.fail(bad);
  return { type: MessageType.Ack, cookie, tsi, windowStart, windowEnd, received };
}

/**
 * The sequence numbers of the window that the ACK reports lost, as ranges in
 * window order (the complement of `received` inside the window).
 */
export function lostRanges(msg: Pick<AckMessage, 'windowStart' | 'windowEnd' | 'received'>): SeqRange[] {
  const out: SeqRange[] = [];
  let cursor = msg.windowStart;
  for (const r of msg.received) {
    if (r.start !== cursor) out.push({ start: cursor, end: r.start });
    cursor = r.end;
  }
  if (cursor !== msg.windowEnd) out.push({ start: cursor, end: msg.windowEnd });
  return out;
}
