/**
 * JOINED (type 4), server -> client: the channels now joined.
 *
 *   header(8) | expiresAtMs u64 | count u8
 *             | count x (tsi u32 | nameLen u8 | name UTF-8)
 *             [ | groupCount u8 | groupCount x (index u8 | flags u8 | family u8
 *                 | group (4|16) | port u16 | source (4|16)) ]
 *
 * Sent only to a client whose cookie verified. The group section is present
 * only when a joined channel has a multicast group (docs/PROTOCOL.md §4.6),
 * so a JOINED without groups is byte for byte the first version's. Entry
 * flags bit 0 = UNICAST (the server also sends this client the channel's
 * unicast stream); other bits are sent as 0 and ignored. A source of all
 * zero bytes is "not announced" (any-source join, RFC 4607 §1).
 */
import { formatAddress, isMulticastAddress, multicastAddressBytes, unicastAddressBytes } from '../support/address';
import { ByteWriter, isU16, isU32, isU64Safe } from './bytes';
import { ControlReader, MAX_CHANNELS } from './control-header';
import { ProtocolEncodeError } from './errors';
import { readChannelName, writeChannelName } from './fields';
import { encodeChannelNames } from './join';
import { JoinedChannel, JoinedGroup, JoinedMessage, MessageType } from './messages';

export const JOINED_GROUP_UNICAST = 0x01;

export function writeJoinedBody(w: ByteWriter, msg: JoinedMessage): void {
  if (!isU64Safe(msg.expiresAtMs)) throw new ProtocolEncodeError('expiresAtMs must be a safe non-negative integer');
  if (!Array.isArray(msg.channels)) throw new ProtocolEncodeError('channels must be an array');
  const names = encodeChannelNames(msg.channels.map((c) => c.name));
  for (const c of msg.channels) {
    if (!isU32(c.tsi)) throw new ProtocolEncodeError('tsi must be a 32-bit unsigned integer');
  }
  const groups = msg.channels.map((c) => (c.multicast ? groupBytes(c.multicast) : undefined));
  w.u64(msg.expiresAtMs);
  w.u8(names.length);
  msg.channels.forEach((c, i) => {
    w.u32(c.tsi);
    writeChannelName(w, names[i]);
  });
  const count = groups.filter((g) => g !== undefined).length;
  if (count === 0) return;
  w.u8(count);
  groups.forEach((g, i) => {
    if (!g) return;
    w.u8(i);
    w.u8(g.unicast ? JOINED_GROUP_UNICAST : 0);
    w.u8(g.family);
    w.bytes(g.group);
    w.u16(g.port);
    w.bytes(g.source);
  });
}

function groupBytes(g: JoinedGroup): { family: 4 | 6; group: Uint8Array; port: number; source: Uint8Array; unicast: boolean } {
  const group = multicastAddressBytes(g.group);
  if (!group) throw new ProtocolEncodeError('a group must be a numeric IPv4 or IPv6 multicast address');
  if (!isU16(g.port) || g.port === 0) throw new ProtocolEncodeError('a group port must be 1..65535');
  let source: Uint8Array = new Uint8Array(group.bytes.length);
  if (g.source !== undefined) {
    const s = unicastAddressBytes(g.source, group.family);
    if (!s) throw new ProtocolEncodeError("a group's source must be a unicast address of the group's family");
    source = s.bytes;
  }
  return { family: group.family, group: group.bytes, port: g.port, source, unicast: g.unicast };
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
  if (r.remaining > 0) readGroups(r, channels);
  return { type: MessageType.Joined, channels, expiresAtMs };
}

function readGroups(r: ControlReader, channels: JoinedChannel[]): void {
  const count = r.u8();
  if (count === 0 || count > channels.length) r.fail('bad-group-entry');
  for (let k = 0; k < count; k++) {
    const index = r.u8();
    const flags = r.u8();
    const family = r.u8();
    if (index >= channels.length || channels[index].multicast || (family !== 4 && family !== 6)) r.fail('bad-group-entry');
    const size = family === 4 ? 4 : 16;
    const group = formatAddress(r.take(size));
    const port = r.u16();
    const sourceBytes = r.take(size);
    const source = sourceBytes.every((b) => b === 0) ? undefined : formatAddress(sourceBytes);
    if (!isMulticastAddress(group) || port === 0 || (source !== undefined && isMulticastAddress(source))) r.fail('bad-group-entry');
    channels[index].multicast = { group, port, ...(source !== undefined ? { source } : {}), unicast: (flags & JOINED_GROUP_UNICAST) !== 0 };
  }
}
