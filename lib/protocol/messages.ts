/**
 * Decoded control messages (client <-> server). The byte layouts live in one
 * file per message under lib/protocol/ and in docs/PROTOCOL.md; this file is
 * the shared vocabulary between the wire codecs and the server/client logic.
 */

export enum MessageType {
  Hello = 1,
  Cookie = 2,
  Join = 3,
  Joined = 4,
  Leave = 5,
  Ack = 6,
  Error = 7,
  Need = 8,
}

/** Client -> server. Padded by the client so that the server's COOKIE
 * reply is never larger than the HELLO that caused it (anti-amplification). */
export interface HelloMessage {
  type: MessageType.Hello;
  /** Client-chosen 8-byte nonce, echoed in COOKIE. */
  nonce: Uint8Array;
}

/** Server -> client: a stateless cookie bound to the client's address and
 * port, valid until `expiresAtMs`. The bytes are opaque to the client. */
export interface CookieMessage {
  type: MessageType.Cookie;
  nonce: Uint8Array;
  cookie: Uint8Array;
  /** Server clock (Unix ms) when sent, so clients can convert absolute times. */
  serverTimeMs: number;
}

/** Either a relative duration or an absolute Unix time, in milliseconds. */
export type TimeValue =
  | { kind: 'duration'; ms: number }
  | { kind: 'absolute'; unixMs: number };

/** Client -> server. Replaces the client's channel set: a channel the client
 * was on and that this JOIN omits is dropped. */
export interface JoinMessage {
  type: MessageType.Join;
  cookie: Uint8Array;
  /** Channel names wanted (UTF-8, 1..64 bytes each). */
  channels: string[];
  /** When the server drops the client unless another JOIN renews it. */
  until: TimeValue;
  /** Client wants ACK mode (fresh-symbol replacement of reported losses). */
  ack: boolean;
  /**
   * Channels (a subset of `channels`) whose multicast group the client
   * listens to: the server sends it no unicast stream of those that have a
   * group. Absent: none (the JOIN carries no multicast bitmap).
   */
  multicast?: string[];
}

/** A channel's multicast group, as JOINED announces it. */
export interface JoinedGroup {
  /** Numeric IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) group address. */
  group: string;
  port: number;
  /** The address the group's packets come from (for a source-specific join), if the server announces one. */
  source?: string;
  /** Whether the server also sends this client the channel's unicast stream. */
  unicast: boolean;
}

export interface JoinedChannel {
  name: string;
  /** LCT Transport Session Identifier of the channel's stream (the same on its group). */
  tsi: number;
  /** The channel's multicast group, if it has one. */
  multicast?: JoinedGroup;
}

/** Server -> client: the channels now joined and the absolute expiry. */
export interface JoinedMessage {
  type: MessageType.Joined;
  channels: JoinedChannel[];
  expiresAtMs: number;
}

export interface LeaveMessage {
  type: MessageType.Leave;
  cookie: Uint8Array;
}

/** A half-open range [start, end) of per-channel packet sequence numbers. */
export interface SeqRange {
  start: number;
  end: number;
}

/** Client -> server: which packets of a channel arrived, as ranges, over the
 * window [windowStart, windowEnd). Anything in the window and not in
 * `received` is reported lost. */
export interface AckMessage {
  type: MessageType.Ack;
  cookie: Uint8Array;
  tsi: number;
  windowStart: number;
  windowEnd: number;
  received: SeqRange[];
}

/** Blocks firstSbn..lastSbn of object `toi`, each still needing `need` symbols at the client. */
export interface NeedEntry {
  toi: number;
  firstSbn: number;
  lastSbn: number;
  /** Symbols the client still needs for each of these blocks: 0 = complete, or not wanted. */
  need: number;
}

/** Client -> server: what one channel's blocks still need at the client
 * (docs/PROTOCOL.md §4.11), as of the highest sequence number `rqseq` it
 * had received, with its observed loss fraction `loss` (1/65536ths). */
export interface NeedMessage {
  type: MessageType.Need;
  cookie: Uint8Array;
  tsi: number;
  rqseq: number;
  loss: number;
  entries: NeedEntry[];
}

export enum ErrorCode {
  BadCookie = 1,
  CookieExpired = 2,
  UnknownChannel = 3,
  TooManyChannels = 4,
  BadTime = 5,
  NotJoined = 6,
  TooManySessions = 7,
  /**
   * Not an answer: the server is shutting down (docs/PROTOCOL.md §6.7). It
   * has ended the client's session and accepts no HELLO or JOIN. Codes from
   * 20 on are notices a server sends unprompted.
   */
  ServerLeaving = 20,
  Internal = 100,
}

export interface ErrorMessage {
  type: MessageType.Error;
  code: ErrorCode;
  /** Short ASCII text; never a stack trace. */
  reason: string;
}

export type ControlMessage =
  | HelloMessage
  | CookieMessage
  | JoinMessage
  | JoinedMessage
  | LeaveMessage
  | AckMessage
  | ErrorMessage
  | NeedMessage;
