/**
 * The client manager: the server's control-plane state machine.
 *
 * Independent sessions that start and end at any time. Like smoltcp's
 * sockets it does no I/O and never reads a clock: the caller passes each
 * decoded control message with its source and the current time, and takes
 * out the replies to send, the commands for the native replicator and the
 * events to log. One real timer, owned by the caller, calls `tick(now)` at
 * `nextDeadline()`.
 *
 * Rules (DESIGN.md, "Wire"):
 * - HELLO creates no state: the reply is a stateless cookie (cookie.ts).
 * - Anti-amplification: until a cookie verifies, every reply to a datagram is
 *   at most as large as that datagram (`Reply.maxBytes`); a reply that would
 *   be larger is not sent. Per-datagram accounting needs no per-address state
 *   and bounds bytes sent by bytes received over any sequence of datagrams.
 * - JOIN (valid cookie) replaces the client's channel set — a channel it
 *   omits is dropped — and sets its expiry: a duration or an absolute time,
 *   clamped to `maxTtlMs`. A refused JOIN changes nothing. A JOIN listing no
 *   channels ends the session like LEAVE.
 * - LEAVE (valid cookie) drops the client from all channels at once.
 * - ACK (valid cookie, ACK mode, a channel the client is on) asks the
 *   replicator for one fresh symbol per newly reported loss.
 */

import {
  type AckMessage,
  type ControlMessage,
  ErrorCode,
  type ErrorMessage,
  type JoinMessage,
  type LeaveMessage,
  type HelloMessage,
  MessageType,
  type TimeValue,
} from '../protocol/messages';
import { AckTracker, type AckTrackerOptions } from './ack-tracker';
import { ChannelMembership, type MembershipDiff } from './channel-membership';
import { type CookieAuthority, type CookieRefusal, normalizeAddress } from './cookie';
import { InvalidServerConfigError } from '../errors';
import { JoinTimer } from './join-timer';

export interface Endpoint {
  address: string;
  port: number;
}

/** Where a datagram came from and how many bytes it was on the wire. */
export interface Source extends Endpoint {
  bytesReceived: number;
}

export interface ChannelInfo {
  name: string;
  /** LCT Transport Session Identifier of the channel's stream. */
  tsi: number;
}

/** The catalogue's view of channels, as the client manager needs it. */
export interface ChannelDirectory {
  lookup(name: string): ChannelInfo | undefined;
}

/** A directory over a fixed list of channels. */
export function staticChannelDirectory(channels: Iterable<ChannelInfo>): ChannelDirectory {
  const byName = new Map<string, ChannelInfo>();
  for (const c of channels) byName.set(c.name, c);
  return { lookup: (name) => byName.get(name) };
}

export interface Reply {
  to: Endpoint;
  message: ControlMessage;
  /** Largest encoding the caller may send; undefined once the address is verified. */
  maxBytes?: number;
}

/** Commands for the native replicator, one per channel and kind (batched). */
export type ReplicationCommand =
  | { kind: 'addDestinations'; channel: string; tsi: number; destinations: Endpoint[] }
  | { kind: 'removeDestinations'; channel: string; tsi: number; destinations: Endpoint[] }
  /** Send `destination` one packet with a fresh symbol for each lost sequence number. */
  | { kind: 'sendFresh'; channel: string; tsi: number; destination: Endpoint; lost: number[] };

export type ClientEvent =
  | { kind: 'joined' | 'renewed'; client: Endpoint; channels: string[]; expiresAtMs: number; ack: boolean }
  | { kind: 'left' | 'expired'; client: Endpoint; channels: string[] };

export interface ManagerOutput {
  replies: Reply[];
  commands: ReplicationCommand[];
  events: ClientEvent[];
}

/** Every counter, as a plain object of numbers (prom-client is wired elsewhere). */
export interface ClientManagerCounters {
  helloReceived: number;
  cookiesIssued: number;
  joinReceived: number;
  leaveReceived: number;
  ackReceived: number;
  /** A message type the server never receives (COOKIE, JOINED, ERROR). */
  unexpectedMessage: number;
  cookieMalformed: number;
  cookieUnknownKey: number;
  cookieForged: number;
  cookieWrongAddress: number;
  cookieExpired: number;
  joinUnknownChannel: number;
  joinTooManyChannels: number;
  joinBadTime: number;
  leaveNotJoined: number;
  ackNotJoined: number;
  ackNotAckMode: number;
  ackUnknownChannel: number;
  ackMalformed: number;
  /** Replies not sent because they would exceed the datagram that caused them. */
  amplificationSuppressed: number;
  sessionsStarted: number;
  sessionsRenewed: number;
  sessionsLeft: number;
  sessionsExpired: number;
  freshSymbolsRequested: number;
}

function zeroCounters(): ClientManagerCounters {
  return {
    helloReceived: 0,
    cookiesIssued: 0,
    joinReceived: 0,
    leaveReceived: 0,
    ackReceived: 0,
    unexpectedMessage: 0,
    cookieMalformed: 0,
    cookieUnknownKey: 0,
    cookieForged: 0,
    cookieWrongAddress: 0,
    cookieExpired: 0,
    joinUnknownChannel: 0,
    joinTooManyChannels: 0,
    joinBadTime: 0,
    leaveNotJoined: 0,
    ackNotJoined: 0,
    ackNotAckMode: 0,
    ackUnknownChannel: 0,
    ackMalformed: 0,
    amplificationSuppressed: 0,
    sessionsStarted: 0,
    sessionsRenewed: 0,
    sessionsLeft: 0,
    sessionsExpired: 0,
    freshSymbolsRequested: 0,
  };
}

const COOKIE_COUNTER: Record<CookieRefusal, keyof ClientManagerCounters> = {
  malformed: 'cookieMalformed',
  unknownKey: 'cookieUnknownKey',
  forged: 'cookieForged',
  wrongAddress: 'cookieWrongAddress',
  expired: 'cookieExpired',
};

export interface ClientManagerOptions {
  cookies: CookieAuthority;
  channels: ChannelDirectory;
  /** Encoded size in bytes of a reply: the wire codec's encode(msg).length. */
  encodedSize: (message: ControlMessage) => number;
  /** Longest a JOIN may keep a client without renewal. Default 300 000 ms. */
  maxTtlMs?: number;
  /** Most channels in one JOIN. Default 16. */
  maxChannelsPerClient?: number;
  ack?: AckTrackerOptions;
  /** One past the highest sequence number sent on a channel, if the replicator reports it. */
  sentEnd?: (tsi: number) => number | undefined;
}

/** One joined client. */
export interface SessionInfo {
  client: Endpoint;
  channels: ChannelInfo[];
  expiresAtMs: number;
  ack: boolean;
}

interface Session {
  key: string;
  client: Endpoint;
  /** Channel name -> TSI, as resolved when joined. */
  channels: Map<string, number>;
  expiresAtMs: number;
  ack: boolean;
}

type Refusal = { code: ErrorCode; reason: string; counter: keyof ClientManagerCounters };

export class ClientManager {
  readonly counters: ClientManagerCounters = zeroCounters();
  private readonly cookies: CookieAuthority;
  private readonly directory: ChannelDirectory;
  private readonly encodedSize: (message: ControlMessage) => number;
  private readonly maxTtlMs: number;
  private readonly maxChannels: number;
  private readonly sentEnd?: (tsi: number) => number | undefined;
  private readonly sessions = new Map<string, Session>();
  private readonly membership = new ChannelMembership<string, string>();
  private readonly timers = new JoinTimer<string>();
  private readonly acks: AckTracker<string>;

  constructor(options: ClientManagerOptions) {
    this.cookies = options.cookies;
    this.directory = options.channels;
    this.encodedSize = options.encodedSize;
    this.maxTtlMs = options.maxTtlMs ?? 300_000;
    this.maxChannels = options.maxChannelsPerClient ?? 16;
    this.sentEnd = options.sentEnd;
    if (!Number.isFinite(this.maxTtlMs) || this.maxTtlMs <= 0) {
      throw new InvalidServerConfigError('maxTtlMs must be a positive number');
    }
    if (!Number.isInteger(this.maxChannels) || this.maxChannels <= 0) {
      throw new InvalidServerConfigError('maxChannelsPerClient must be a positive integer');
    }
    this.acks = new AckTracker<string>(options.ack);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The session of (address, port), if joined. */
  session(address: string, port: number): SessionInfo | undefined {
    const s = this.sessions.get(sessionKey(address, port));
    if (!s) return undefined;
    return {
      client: { ...s.client },
      channels: Array.from(s.channels, ([name, tsi]) => ({ name, tsi })),
      expiresAtMs: s.expiresAtMs,
      ack: s.ack,
    };
  }

  /** Members of a channel, as endpoints (for reconciliation with the replicator). */
  members(channel: string): Endpoint[] {
    const out: Endpoint[] = [];
    for (const key of this.membership.members(channel)) out.push({ ...(this.sessions.get(key) as Session).client });
    return out;
  }

  /** When `tick` next has work, or undefined if no client is joined. */
  nextDeadline(): number | undefined {
    return this.timers.nextDeadline();
  }

  /** Handles one decoded control message from `from` at time `now`. */
  handle(message: ControlMessage, from: Source, now: number): ManagerOutput {
    const out: ManagerOutput = { replies: [], commands: [], events: [] };
    switch (message.type) {
      case MessageType.Hello:
        this.onHello(message, from, now, out);
        break;
      case MessageType.Join:
        this.onJoin(message, from, now, out);
        break;
      case MessageType.Leave:
        this.onLeave(message, from, now, out);
        break;
      case MessageType.Ack:
        this.onAck(message, from, now, out);
        break;
      default:
        this.counters.unexpectedMessage++;
    }
    return out;
  }

  /** Drops every client whose JOIN ran out by `now`. */
  tick(now: number): ManagerOutput {
    const out: ManagerOutput = { replies: [], commands: [], events: [] };
    const due = this.timers.expire(now);
    if (due.length === 0) return out;
    const diff = { added: new Map(), removed: new Map() } as MembershipDiff<string, string>;
    const gone = new Map<string, Session>();
    for (const key of due) {
      const s = this.sessions.get(key) as Session;
      gone.set(key, s);
      this.membership.removeMember(key, diff);
      this.sessions.delete(key);
      this.acks.dropClient(key);
      this.counters.sessionsExpired++;
      out.events.push({ kind: 'expired', client: { ...s.client }, channels: Array.from(s.channels.keys()) });
    }
    this.emitDiff(diff, gone, out);
    return out;
  }

  private onHello(msg: HelloMessage, from: Source, now: number, out: ManagerOutput): void {
    this.counters.helloReceived++;
    const reply: ControlMessage = {
      type: MessageType.Cookie,
      nonce: msg.nonce,
      cookie: this.cookies.issue(from.address, from.port, now),
      serverTimeMs: now,
    };
    if (this.replyUnverified(reply, from, out)) this.counters.cookiesIssued++;
  }

  private onJoin(msg: JoinMessage, from: Source, now: number, out: ManagerOutput): void {
    this.counters.joinReceived++;
    if (!this.checkCookie(msg.cookie, from, now, out)) return;
    const key = sessionKey(from.address, from.port);

    if (msg.channels.length === 0) {
      this.endSession(key, 'left', out);
      this.reply({ type: MessageType.Joined, channels: [], expiresAtMs: now }, from, out);
      return;
    }
    const accepted = this.validateJoin(msg, now);
    if ('code' in accepted) {
      this.counters[accepted.counter]++;
      // The cookie verified, so the address is proven: no amplification bound.
      this.reply({ type: MessageType.Error, code: accepted.code, reason: accepted.reason }, from, out);
      return;
    }
    const { wanted, expiresAtMs } = accepted;

    let session = this.sessions.get(key);
    const renewed = session !== undefined;
    if (!session) {
      session = { key, client: { address: from.address, port: from.port }, channels: new Map(), expiresAtMs, ack: msg.ack };
      this.sessions.set(key, session);
      this.counters.sessionsStarted++;
    } else {
      this.counters.sessionsRenewed++;
    }
    const diff = this.membership.replace(key, wanted.keys());
    const old = session.channels; // removed channels' commands need their TSI
    for (const [name, tsi] of old) if (!wanted.has(name)) this.acks.dropChannel(key, tsi);
    if (!msg.ack) this.acks.dropClient(key);
    session.channels = wanted;
    session.expiresAtMs = expiresAtMs;
    session.ack = msg.ack;
    this.timers.schedule(key, expiresAtMs);
    this.emitDiff(diff, new Map([[key, session]]), out, old);
    out.events.push({
      kind: renewed ? 'renewed' : 'joined',
      client: { ...session.client },
      channels: Array.from(wanted.keys()),
      expiresAtMs,
      ack: msg.ack,
    });
    this.reply(
      { type: MessageType.Joined, channels: Array.from(wanted, ([name, tsi]) => ({ name, tsi })), expiresAtMs },
      from,
      out,
    );
  }

  private onLeave(msg: LeaveMessage, from: Source, now: number, out: ManagerOutput): void {
    this.counters.leaveReceived++;
    if (!this.checkCookie(msg.cookie, from, now, out)) return;
    const key = sessionKey(from.address, from.port);
    if (!this.sessions.has(key)) {
      this.counters.leaveNotJoined++;
      return;
    }
    this.endSession(key, 'left', out);
  }

  private onAck(msg: AckMessage, from: Source, now: number, out: ManagerOutput): void {
    this.counters.ackReceived++;
    if (!this.checkCookie(msg.cookie, from, now, out)) return;
    const key = sessionKey(from.address, from.port);
    const session = this.sessions.get(key);
    if (!session) {
      this.counters.ackNotJoined++;
      this.reply({ type: MessageType.Error, code: ErrorCode.NotJoined, reason: 'not joined' }, from, out);
      return;
    }
    if (!session.ack) {
      this.counters.ackNotAckMode++;
      return;
    }
    let channel: string | undefined;
    for (const [name, tsi] of session.channels) if (tsi === msg.tsi) channel = name;
    if (channel === undefined) {
      this.counters.ackUnknownChannel++;
      return;
    }
    const verdict = this.acks.onAck(key, msg.tsi, msg, this.sentEnd?.(msg.tsi));
    if (!verdict.ok) {
      this.counters.ackMalformed++;
      return;
    }
    if (verdict.lost.length > 0) {
      this.counters.freshSymbolsRequested += verdict.lost.length;
      out.commands.push({ kind: 'sendFresh', channel, tsi: msg.tsi, destination: { ...session.client }, lost: verdict.lost });
    }
  }

  /** Verifies a cookie; on refusal counts it and answers within the amplification budget. */
  private checkCookie(cookie: Uint8Array, from: Source, now: number, out: ManagerOutput): boolean {
    const verdict = this.cookies.verify(cookie, from.address, from.port, now);
    if (verdict.ok) return true;
    this.counters[COOKIE_COUNTER[verdict.reason]]++;
    const error: ErrorMessage =
      verdict.reason === 'expired'
        ? { type: MessageType.Error, code: ErrorCode.CookieExpired, reason: 'cookie expired' }
        : { type: MessageType.Error, code: ErrorCode.BadCookie, reason: 'bad cookie' };
    this.replyUnverified(error, from, out);
    return false;
  }

  private endSession(key: string, kind: 'left', out: ManagerOutput): void {
    const s = this.sessions.get(key);
    if (!s) return;
    const diff = this.membership.removeMember(key);
    this.timers.cancel(key);
    this.acks.dropClient(key);
    this.sessions.delete(key);
    this.counters.sessionsLeft++;
    this.emitDiff(diff, new Map([[key, s]]), out);
    out.events.push({ kind, client: { ...s.client }, channels: Array.from(s.channels.keys()) });
  }

  /** The channels (name -> TSI) and absolute expiry a JOIN asks for, or why it is refused. */
  private validateJoin(msg: JoinMessage, now: number): { wanted: Map<string, number>; expiresAtMs: number } | Refusal {
    if (msg.channels.length > this.maxChannels) {
      return { code: ErrorCode.TooManyChannels, reason: `at most ${this.maxChannels} channels`, counter: 'joinTooManyChannels' };
    }
    const wanted = new Map<string, number>();
    for (const name of msg.channels) {
      const info = this.directory.lookup(name);
      if (!info) {
        return { code: ErrorCode.UnknownChannel, reason: `unknown channel ${asciiSafe(name)}`, counter: 'joinUnknownChannel' };
      }
      wanted.set(info.name, info.tsi);
    }
    const expiresAtMs = this.expiryOf(msg.until, now);
    if (expiresAtMs === undefined) {
      return { code: ErrorCode.BadTime, reason: 'time value not in the future', counter: 'joinBadTime' };
    }
    return { wanted, expiresAtMs };
  }

  /** Absolute expiry for a JOIN's time value, or undefined if it is not in the future. */
  private expiryOf(until: TimeValue, now: number): number | undefined {
    const limit = now + this.maxTtlMs;
    if (until.kind === 'duration') {
      if (!Number.isFinite(until.ms) || until.ms <= 0) return undefined;
      return Math.min(now + until.ms, limit);
    }
    if (!Number.isFinite(until.unixMs) || until.unixMs <= now) return undefined;
    return Math.min(until.unixMs, limit);
  }

  private reply(message: ControlMessage, to: Endpoint, out: ManagerOutput): void {
    out.replies.push({ to: { address: to.address, port: to.port }, message });
  }

  /** Queues a reply to an unverified address if it is no larger than the datagram received. */
  private replyUnverified(message: ControlMessage, from: Source, out: ManagerOutput): boolean {
    const budget = Math.max(0, Math.floor(from.bytesReceived));
    if (!(this.encodedSize(message) <= budget)) {
      this.counters.amplificationSuppressed++;
      return false;
    }
    out.replies.push({ to: { address: from.address, port: from.port }, message, maxBytes: budget });
    return true;
  }

  /** Turns a membership diff into one command per channel and kind. */
  private emitDiff(
    diff: MembershipDiff<string, string>,
    sessions: Map<string, Session>,
    out: ManagerOutput,
    oldChannels?: Map<string, number>,
  ): void {
    const tsiOf = (channel: string, key: string, removed: boolean): number => {
      if (removed && oldChannels?.has(channel)) return oldChannels.get(channel) as number;
      return (sessions.get(key) as Session).channels.get(channel) as number;
    };
    for (const [channel, members] of diff.removed) {
      const keys = Array.from(members);
      out.commands.push({
        kind: 'removeDestinations',
        channel,
        tsi: tsiOf(channel, keys[0], true),
        destinations: keys.map((k) => ({ ...(sessions.get(k) as Session).client })),
      });
    }
    for (const [channel, members] of diff.added) {
      const keys = Array.from(members);
      out.commands.push({
        kind: 'addDestinations',
        channel,
        tsi: tsiOf(channel, keys[0], false),
        destinations: keys.map((k) => ({ ...(sessions.get(k) as Session).client })),
      });
    }
  }
}

/** Session identity: normalised address and port, so "::ffff:192.0.2.1" is "192.0.2.1". */
function sessionKey(address: string, port: number): string {
  return `${normalizeAddress(address).text} ${port}`;
}

/** Channel names are client-supplied: keep error text printable ASCII and short. */
function asciiSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}
