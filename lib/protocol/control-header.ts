/**
 * The common header of every rqcast control message, its limits, and the
 * reasons a control message can be rejected. Byte layouts: docs/PROTOCOL.md.
 *
 *   0      1      2        3      4      5      6      7
 *   +------+------+--------+------+------+------+------+------+
 *   | 0x52 | 0x51 | version| type | total length| reserved    |
 *   +------+------+--------+------+------+------+------+------+
 *
 * The first byte, 0x52 ('R'), has 5 in its top nibble; an LCT header's top
 * nibble is its version, 1 (RFC 5651 §5.1), so control messages and ALC
 * packets can share a socket or a TCP stream and be told apart by one byte.
 */
import { ByteReader, ByteWriter, ReaderReasons } from './bytes';
import { MessageType } from './messages';

export const CONTROL_MAGIC_0 = 0x52; // 'R'
export const CONTROL_MAGIC_1 = 0x51; // 'Q'
export const CONTROL_VERSION = 1;
export const CONTROL_HEADER_SIZE = 8;

/** No control message is larger: it fits an IPv6 minimum-MTU datagram. */
export const CONTROL_MAX_SIZE = 1200;
export const NONCE_SIZE = 8;
export const COOKIE_MIN_BYTES = 16;
export const COOKIE_MAX_BYTES = 64;
export const CHANNEL_NAME_MAX_BYTES = 64;
/** Channels per JOIN or JOINED; 16 full-length names still fit CONTROL_MAX_SIZE. */
export const MAX_CHANNELS = 16;
export const ACK_MAX_RANGES = 64;
/** Largest ACK window, in packets ((windowEnd - windowStart) mod 2^32). */
export const ACK_MAX_WINDOW = 1 << 20;
export const ERROR_REASON_MAX_BYTES = 96;
/** Entries per NEED: 64 of 8 bytes, with the longest cookie, fit CONTROL_MAX_SIZE. */
export const NEED_MAX_ENTRIES = 64;
/** NEED's loss field counts in 1/NEED_LOSS_SCALE of the packets. */
export const NEED_LOSS_SCALE = 65536;

/** Largest COOKIE reply: header, nonce, server time, length, longest cookie. */
export const COOKIE_MAX_SIZE = CONTROL_HEADER_SIZE + NONCE_SIZE + 8 + 1 + COOKIE_MAX_BYTES;
/** Largest ERROR reply: header, code, length, longest reason. */
export const ERROR_MAX_SIZE = CONTROL_HEADER_SIZE + 2 + 1 + ERROR_REASON_MAX_BYTES;
/**
 * Every HELLO is padded to at least this size. The only replies a server
 * sends to an address whose cookie it has not verified are COOKIE and ERROR,
 * both at most this size, so it never sends such an address more bytes than
 * it received from it (anti-amplification).
 */
export const HELLO_MIN_SIZE = 128;

export type ControlRejectReason =
  /** Shorter than the 8-byte header. */
  | 'too-short'
  /** Longer than CONTROL_MAX_SIZE. */
  | 'too-large'
  /** First two bytes are not 'R' 'Q'. */
  | 'bad-magic'
  | 'unknown-version'
  | 'unknown-type'
  /** Header total length differs from the bytes received. */
  | 'length-mismatch'
  /** A field runs past the end of the message. */
  | 'truncated'
  /** Bytes left over after the last field. */
  | 'trailing-bytes'
  /** A 64-bit value above 2^53 - 1. */
  | 'u64-unsafe'
  /** HELLO below HELLO_MIN_SIZE (would allow amplification). */
  | 'hello-too-short'
  | 'bad-cookie-length'
  | 'bad-time-kind'
  | 'too-many-channels'
  /** Channel name of 0 bytes or more than CHANNEL_NAME_MAX_BYTES. */
  | 'bad-channel-name'
  | 'bad-utf8'
  | 'duplicate-channel'
  /** JOIN multicast bitmap names a channel beyond its list. */
  | 'bad-multicast-bitmap'
  /** JOINED group entry: index out of range or repeated, family not 4 or 6, not a multicast group, port 0, or a multicast source. */
  | 'bad-group-entry'
  /** ACK window empty or larger than ACK_MAX_WINDOW. */
  | 'bad-window'
  | 'too-many-ranges'
  /** ACK range empty, outside the window, unsorted, overlapping or adjacent. */
  | 'bad-range'
  /** NEED with no entry or more than NEED_MAX_ENTRIES. */
  | 'bad-need-count'
  /** NEED entry with TOI 0 or firstSbn > lastSbn, out of order, overlapping, or one that should be merged with the one before. */
  | 'bad-need-entry'
  | 'unknown-error-code'
  /** ERROR reason empty-allowed but not printable ASCII, or too long. */
  | 'bad-reason-text'
  /** An unexpected exception inside a decoder (a bug; never expected). */
  | 'decoder-bug';

export const CONTROL_READER_REASONS: ReaderReasons<ControlRejectReason> = {
  truncated: 'truncated',
  unsafeInteger: 'u64-unsafe',
};

export type ControlReader = ByteReader<ControlRejectReason>;

export interface ControlHeader {
  version: number;
  type: MessageType;
  totalLength: number;
}

const KNOWN_TYPES = new Set<number>(
  Object.values(MessageType).filter((v): v is number => typeof v === 'number'),
);

/** Reads and checks the header against the received length. */
export function readControlHeader(r: ControlReader): ControlHeader {
  const received = r.remaining;
  if (received < CONTROL_HEADER_SIZE) r.fail('too-short');
  if (received > CONTROL_MAX_SIZE) r.fail('too-large');
  if (r.u8() !== CONTROL_MAGIC_0 || r.u8() !== CONTROL_MAGIC_1) r.fail('bad-magic');
  const version = r.u8();
  if (version !== CONTROL_VERSION) r.fail('unknown-version');
  const type = r.u8();
  if (!KNOWN_TYPES.has(type)) r.fail('unknown-type');
  const totalLength = r.u16();
  if (totalLength !== received) r.fail('length-mismatch');
  r.skip(2); // reserved: sent as 0, ignored on receipt
  return { version, type: type as MessageType, totalLength };
}

/** Writes a header whose length field is patched by `finishControl`. */
export function writeControlHeader(w: ByteWriter, type: MessageType): void {
  w.u8(CONTROL_MAGIC_0);
  w.u8(CONTROL_MAGIC_1);
  w.u8(CONTROL_VERSION);
  w.u8(type);
  w.u16(0);
  w.u16(0);
}

export function finishControl(w: ByteWriter): Uint8Array {
  w.patchU16(4, w.offset);
  return w.finish();
}
