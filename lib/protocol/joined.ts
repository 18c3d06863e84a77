/**
 * JOINED (type 4), server -> client: the channels now joined.
 *
 *   header(8) | expiresAtMs u64 | count u8
 *             | count x (tsi u32 | nameLen u8 | name UTF-8)
 *
 * Sent only to a client whose cookie verified.
 */
import { ByteWriter, isU32, isU64Safe } from './bytes';
import { ControlReader, MAX_CHANNELS } from './control-header';
import { ProtocolEncodeError } from './errors';
import { readChannelName, writeChannelName } from './fields';
import { encodeChannelNames } from './join';
import { JoinedChannel, JoinedMessage, MessageType } from './messages';

export function writeJoinedBody(w: ByteWriter, msg: JoinedMessage): void {
  if (!isU64Safe(msg.expiresAtMs)) throw new ProtocolEncodeError('expiresAtMs must be a safe non-negative integer');
  if (!Array.isArray(msg.channels)) throw new ProtocolEncodeError('channels must be an array');
  const names = encodeChannelNames(msg.channels.map((c) => c.name));
  for (const c of msg.channels) {
    if (!isU32(c.tsi)) throw new ProtocolEncodeError('tsi must be a 32-bit unsigned integer');
  }
  w.u64(msg.expiresAtMs);
  w.u8(names.length);
  msg.channels.forEach((c, i) => {
    w.u32(c.tsi);
    writeChannelName(w, names[i]);
  });
}

export function readJoinedBody(r: ControlReader): JoinedMessage {
  const expiresAtMs = r.u64();
  const count = r.u8();
  if (count > MAX_CHANNELS) r.fail('too-many-channels');
  const channels: JoinedChannel[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const tsi = r.u32();
    const name = readChannelName(r);
    if (seen.has(name)) r.fail('duplicate-channel');
    seen.add(name);
    channels.push({ name, tsi });
  }
  return { type: MessageType.Joined, channels, expiresAtMs };
}
