/**
 * JOIN (type 3), client -> server: sets the client's channel set and expiry.
 *
 *   header(8) | flags u8 | timeKind u8 | time u64 | cookieLen u8 | cookie
 *             | count u8 | count x (nameLen u8 | name UTF-8)
 *             [ | multicast u16 ]            only if flags bit 1
 *
 * flags bit 0 = ACK mode; bit 1 = a multicast bitmap follows the names: bit
 * i (LSB first) set = the client listens to the group of the i-th channel,
 * so the server sends it no unicast stream of that channel if the channel
 * has a group (docs/PROTOCOL.md §4.5, §6.2). Bits 2..7 are sent as 0 and
 * ignored.
 * timeKind 0 = duration (ms from receipt), 1 = absolute Unix ms.
 * Names are 1..64 UTF-8 bytes, distinct, at most MAX_CHANNELS of them; 0
 * names is legal: the server drops the client from every channel and ends
 * the session as LEAVE would (client-manager.ts), answering JOINED with no
 * channel.
 */
import { ByteWriter, isU64Safe } from './bytes';
import { ControlReader, MAX_CHANNELS } from './control-header';
import { ProtocolEncodeError } from './errors';
import { channelNameBytes, readChannelName, readCookie, writeChannelName, writeCookie } from './fields';
import { JoinMessage, MessageType, TimeValue } from './messages';

export const JOIN_FLAG_ACK = 0x01;
export const JOIN_FLAG_MULTICAST = 0x02;
export const TIME_KIND_DURATION = 0;
export const TIME_KIND_ABSOLUTE = 1;

export function writeJoinBody(w: ByteWriter, msg: JoinMessage): void {
  const names = encodeChannelNames(msg.channels);
  const bitmap = multicastBitmap(msg.channels, msg.multicast);
  w.u8((msg.ack ? JOIN_FLAG_ACK : 0) | (bitmap !== undefined ? JOIN_FLAG_MULTICAST : 0));
  writeTimeValue(w, msg.until);
  writeCookie(w, msg.cookie);
  w.u8(names.length);
  for (const n of names) writeChannelName(w, n);
  if (bitmap !== undefined) w.u16(bitmap);
}

/** The u16 bitmap of `multicast` (names of `channels`), or undefined when there is none to send. */
function multicastBitmap(channels: string[], multicast: string[] | undefined): number | undefined {
  if (multicast === undefined || multicast.length === 0) return undefined;
  let bits = 0;
  for (const name of multicast) {
    const i = channels.indexOf(name);
    if (i < 0) throw new ProtocolEncodeError('a multicast channel must be one of the channels joined');
    bits |= 1 << i;
  }
  return bits;
}

export function readJoinBody(r: ControlReader): JoinMessage {
  const flags = r.u8();
  const until = readTimeValue(r);
  const cookie = readCookie(r);
  const channels = readChannelNames(r);
  const msg: JoinMessage = { type: MessageType.Join, cookie, channels, until, ack: (flags & JOIN_FLAG_ACK) !== 0 };
  if (flags & JOIN_FLAG_MULTICAST) {
    const bits = r.u16();
    if (bits >>> channels.length !== 0) r.fail('bad-multicast-bitmap');
    msg.multicast = channels.filter((_, i) => (bits & (1 << i)) !== 0);
  }
  return msg;
}

function writeTimeValue(w: ByteWriter, t: TimeValue): void {
  if (t.kind === 'duration') {
    if (!isU64Safe(t.ms)) throw new ProtocolEncodeError('duration must be a safe non-negative integer of ms');
    w.u8(TIME_KIND_DURATION);
    w.u64(t.ms);
  } else if (t.kind === 'absolute') {
    if (!isU64Safe(t.unixMs)) throw new ProtocolEncodeError('absolute time must be a safe non-negative integer of Unix ms');
    w.u8(TIME_KIND_ABSOLUTE);
    w.u64(t.unixMs);
  } else {
    throw new ProtocolEncodeError('unknown time value kind');
  }
}

function readTimeValue(r: ControlReader): TimeValue {
  const kind = r.u8();
  if (kind !== TIME_KIND_DURATION && kind !== TIME_KIND_ABSOLUTE) r.fail('bad-time-kind');
  const v = r.u64();
  return kind === TIME_KIND_DURATION ? { kind: 'duration', ms: v } : { kind: 'absolute', unixMs: v };
}

/** Checks a list of channel names for the wire and returns their bytes. */
export function encodeChannelNames(channels: string[]): Uint8Array[] {
  if (!Array.isArray(channels) || channels.length > MAX_CHANNELS) {
    throw new ProtocolEncodeError(`at most ${MAX_CHANNELS} channels`);
  }
  if (new Set(channels).size !== channels.length) throw new ProtocolEncodeError('duplicate channel name');
  return channels.map(channelNameBytes);
}

function readChannelNames(r: ControlReader): string[] {
  const count = r.u8();
  if (count > MAX_CHANNELS) r.fail('too-many-channels');
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const name = readChannelName(r);
    if (seen.has(name)) r.fail('duplicate-channel');
    seen.add(name);
  }
  return [...seen];
}
