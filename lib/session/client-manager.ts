/**
 * The client manager: the server's control-plane state machine.
 *
 * Independent sessions that start and end at any time. Like smoltcp's
 * sockets it does no I/O and never reads a clock: the caller passes each
 * decoded control message with its source and the current time, and takes
 * out the replies to send, the commands for the data path and the events to
 * log (manager-output.ts). One real timer, owned by the caller, calls
 * `tick(now)` at `nextDeadline()`.
 *
 * A session belongs to a Peer (peer.ts): the transport a client came over
 * plus its address and port, so the same rules serve UDP today and TCP next,
 * and every reply, command and event names the peer it is for.
 *
 * Rules (DESIGN.md, "Wire"; docs/PROTOCOL.md §6):
 * - HELLO creates no state: the reply is a stateless cookie (cookie.ts).
 * - Anti-amplification: until a cookie verifies, every reply to a message is
 *   at most as large as that message (`Reply.maxBytes`); a reply that would
 *   be larger is not sent. Per-message accounting needs no per-address state
 *   and bounds bytes sent by bytes received over any sequence of messages.
 * - JOIN (valid cookie) replaces the client's channel set — a channel it
 *   omits is dropped — and sets its expiry: a duration or an absolute time,
 *   clamped to `maxTtlMs` (join-request.ts). A refused JOIN changes nothing.
 *   A JOIN listing no channels ends the session like LEAVE.
 * - Multicast (§6.2, §10.10): a channel the JOIN flags in its multicast
 *   bitmap and that has a group is on the session (channel list, expiry,
 *   JOINED) but the client is no unicast destination of it: the membership
 *   below holds unicast destinations only. A later JOIN that flips the bit
 *   adds or removes that one destination; LEAVE and expiry remove only the
 *   destinations that exist.
 * - LEAVE (valid cookie) drops the client from all channels at once.
 * - ACK (valid cookie, ACK mode, a channel the client receives by unicast)
 *   asks the data path for one fresh symbol per newly reported loss
 *   (ack-tracker.ts), within the client's and the channel's replacement
 *   budget (replacement-budget.ts). The group stream is nobody's to
 *   acknowledge.
 *
 * Hostile input (docs/PROTOCOL.md §6.2, §6.3):
 * - A new session needs room in its address group (address-quota.ts): at
 *   most `maxSessionsPerAddress` sessions per IPv4 address or IPv6 /64.
 * - A session never outlives the cookie of the JOIN that set its expiry,
 *   so a JOIN replayed by an on-path attacker keeps the stream going no
 *   longer than the cookie it copied; renewing takes a fresh cookie.
 * - The cookie of a LEAVE (or of a JOIN with no channels) is spent
 *   (spent-cookies.ts): refused for any message until it expires.
 * - Shutdown (§6.7): leaveAll() ends every session and tells its client
 *   (ERROR ServerLeaving); from then on HELLO and JOIN get the same ERROR.
 */

import {
  type AckMessage,
  type NeedMessage,
  type ControlMessage,
  ErrorCode,
  type ErrorMessage,
  type JoinedChannel,
  type JoinMessage,
  type LeaveMessage,
  type HelloMessage,
  MessageType,
} from '../protocol/messages';
import { AckTracker } from './ack-tracker';
import { NeedTracker } from './need-tracker';
import { AddressQuota, addressGroup } from './address-quota';
import { ReplacementBudget } from './replacement-budget';
import { SpentCookies } from './spent-cookies';
import { ChannelMembership, emptyDiff, type MembershipDiff } from './channel-membership';
import type { ChannelDirectory, ChannelInfo } from './channel-directory';
import type { CookieAuthority } from './cookie';
import { InvalidServerConfigError } from '../errors';
import { checkJoin, isJoinRefusal, type JoinLimits } from './join-request';
import { JoinTimer } from './join-timer';
import { type ClientEvent, emptyOutput, type ManagerOutput, membershipCommands } from './manager-output';
import { type Peer, peerKey, peerOf } from './peer';
import { COOKIE_REFUSAL_COUNTER, type ClientManagerCounters, zeroClientManagerCounters } from './session-counters';

export type { ChannelDirectory, ChannelGroup, ChannelInfo } from './channel-directory';
export { staticChannelDirectory } from './channel-directory';
export type { ClientEvent, ManagerOutput, ReplicationCommand, Reply } from './manager-output';
export type { ClientManagerCounters } from './session-counters';
export { type ClientManagerOptions, DEFAULT_MAX_SESSIONS_PER_ADDRESS } from './client-manager-options';
import { type ClientManagerOptions, DEFAULT_MAX_SESSIONS_PER_ADDRESS } from './client-manager-options';

/** What every client is told when the server shuts down (25 bytes: within any HELLO's or JOIN's budget). */
const SERVER_LEAVING: ErrorMessage = { type: MessageType.Error, code: ErrorCode.ServerLeaving, reason: 'server leaving' };

/** Who a control message came from and how many bytes it was on the wire. */
export interface Source extends Peer {
  bytesReceived: number;
}


/** One joined client. */
export interface SessionInfo {
  client: Peer;
  /** Every channel the client is on, in JOIN order (name and TSI). */
  channels: ChannelInfo[];
  expiresAtMs: number;
  ack: boolean;
  /** The channels it receives from their multicast group, not by unicast; absent when none. */
  multicast?: string[];
}

interface Session {
  key: string;
  client: Peer;
  /** Channel name -> TSI, as resolved when joined. */
  channels: Map<string, number>;
  /** The channels of `channels` received from their group: no unicast destination. */
  viaGroup: Set<string>;
  expiresAtMs: number;
  ack: boolean;
  /**
   * The cookie this session's last ACK or NEED verified with, and until
   * when it holds (its expiry, and its key's acceptance): the same bytes
   * from the session's own address and port skip the two HMACs until then
   * (feedbackTarget). Never a spent cookie: spending one ends the session.
   */
  verified?: { bytes: Buffer; untilMs: number };
}

/** The counters an ACK or a NEED is refused under (ClientManager.feedbackTarget). */
interface FeedbackRefusals {
  notJoined: keyof ClientManagerCounters;
  /** Only ACK: a session that did not join in ACK mode. */
  notAckMode?: keyof ClientManagerCounters;
  unknownChannel: keyof ClientManagerCounters;
  groupChannel: keyof ClientManagerCounters;
}
const ACK_REFUSALS: FeedbackRefusals = { notJoined: 'ackNotJoined', notAckMode: 'ackNotAckMode', unknownChannel: 'ackUnknownChannel', groupChannel: 'ackGroupChannel' };
const NEED_REFUSALS: FeedbackRefusals = { notJoined: 'needNotJoined', unknownChannel: 'needUnknownChannel', groupChannel: 'needGroupChannel' };

export class ClientManager {
  readonly counters: ClientManagerCounters = zeroClientManagerCounters();
  private readonly cookies: CookieAuthority;
  private readonly encodedSize: (message: ControlMessage) => number;
  private readonly limits: JoinLimits;
  private readonly sentEnd?: (tsi: number) => number | undefined;
  private readonly firstSequence?: (tsi: number) => number | undefined;
  private readonly packetRate?: (tsi: number) => number | undefined;
  private readonly budget: ReplacementBudget<string>;
  private readonly quota: AddressQuota;
  private readonly spent: SpentCookies;
  /** By peerKey. */
  private readonly sessions = new Map<string, Session>();
  private isLeaving = false;
  private readonly membership = new ChannelMembership<string, string>();
  private readonly timers = new JoinTimer<string>();
  private readonly acks: AckTracker<string>;
  private readonly needs: NeedTracker<string>;

  constructor(options: ClientManagerOptions) {
    this.cookies = options.cookies;
    this.encodedSize = options.encodedSize;
    this.limits = {
      channels: options.channels,
      maxTtlMs: options.maxTtlMs ?? 300_000,
      maxChannels: options.maxChannelsPerClient ?? 16,
    };
    this.sentEnd = options.sentEnd;
    this.firstSequence = options.firstSequence;
    this.packetRate = options.packetRate;
    this.budget = new ReplacementBudget<string>(options.replacements);
    this.quota = new AddressQuota(options.maxSessionsPerAddress ?? DEFAULT_MAX_SESSIONS_PER_ADDRESS);
    this.spent = new SpentCookies(options.spentCookies);
    if (!Number.isFinite(this.limits.maxTtlMs) || this.limits.maxTtlMs <= 0) {
      throw new InvalidServerConfigError('maxTtlMs must be a positive number');
    }
    if (!Number.isInteger(this.limits.maxChannels) || this.limits.maxChannels <= 0) {
      throw new InvalidServerConfigError('maxChannelsPerClient must be a positive integer');
    }
    this.acks = new AckTracker<string>(options.ack);
    this.needs = new NeedTracker<string>(options.need);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Sessions the address group of `address` holds (its IPv4 address or IPv6 /64). */
  sessionsOfAddress(address: string): number {
    return this.quota.count(address);
  }

  /** Spent cookies remembered now (bounded by the `spentCookies` option). */
  get spentCookieCount(): number {
    return this.spent.size;
  }

  /** The session of `peer`, if joined. */
  session(peer: Peer): SessionInfo | undefined {
    const s = this.sessions.get(peerKey(peer));
    if (!s) return undefined;
    const info: SessionInfo = {
      client: peerOf(s.client),
      channels: Array.from(s.channels, ([name, tsi]) => ({ name, tsi })),
      expiresAtMs: s.expiresAtMs,
      ack: s.ack,
    };
    if (s.viaGroup.size > 0) info.multicast = Array.from(s.viaGroup);
    return info;
  }

  /**
   * Unicast members of a channel (for reconciliation with the data path):
   * clients that receive it from its group are not among them.
   */
  members(channel: string): Peer[] {
    return Array.from(this.membership.members(channel), (key) => peerOf((this.sessions.get(key) as Session).client));
  }

  /** When `tick` next has work, or undefined if no client is joined. */
  nextDeadline(): number | undefined {
    return this.timers.nextDeadline();
  }

  /** leaveAll() was called: the server is shutting down. */
  get leaving(): boolean {
    return this.isLeaving;
  }

  /**
   * The server is shutting down (docs/PROTOCOL.md §6.7): every session ends
   * at once, as on LEAVE, and its client is told with ERROR ServerLeaving,
   * so that it need not wait for its timeout. From now on a HELLO or JOIN
   * is answered with the same ERROR (within the amplification budget, its
   * cookie unchecked: no state is made either way) and starts nothing.
   */
  leaveAll(): ManagerOutput {
    const out = emptyOutput();
    this.isLeaving = true;
    for (const key of Array.from(this.sessions.keys())) {
      const s = this.sessions.get(key) as Session;
      out.replies.push({ to: peerOf(s.client), message: SERVER_LEAVING });
      this.endSession(key, out, 'sessionsServerLeft');
    }
    return out;
  }

  /** Handles one decoded control message from `from` at time `now`. */
  handle(message: ControlMessage, from: Source, now: number): ManagerOutput {
    const out = emptyOutput();
    if (this.isLeaving && (message.type === MessageType.Hello || message.type === MessageType.Join)) {
      this.counters.refusedLeaving++;
      this.replyUnverified(SERVER_LEAVING, from, out);
      return out;
    }
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
      case MessageType.Need:
        this.onNeed(message, from, now, out);
        break;
      default:
        this.counters.unexpectedMessage++;
    }
    return out;
  }

  /**
   * `peer`'s connection is gone (a connection-oriented transport said so):
   * its session ends at once, as on LEAVE, since nothing can reach it any
   * more. Nothing for a peer without a session.
   */
  dropPeer(peer: Peer): ManagerOutput {
    const out = emptyOutput();
    this.endSession(peerKey(peer), out, 'sessionsDisconnected');
    return out;
  }

  /** Drops every client whose JOIN ran out by `now` (alive while now < expiresAtMs, §6.4). */
  tick(now: number): ManagerOutput {
    const out = emptyOutput();
    const due = this.timers.expire(now);
    if (due.length === 0) return out;
    const diff = emptyDiff<string, string>();
    const gone = new Map<string, Session>();
    for (const key of due) {
      const s = this.sessions.get(key) as Session;
      gone.set(key, s);
      this.membership.removeMember(key, diff);
      this.sessions.delete(key);
      this.acks.dropClient(key);
      this.needs.dropClient(key);
      this.budget.dropClient(key);
      this.quota.remove(s.client.address);
      this.counters.sessionsExpired++;
      out.events.push({ kind: 'expired', client: peerOf(s.client), channels: Array.from(s.channels.keys()) });
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
    const cookieExpiresAtMs = this.checkCookie(msg.cookie, from, now, out);
    if (cookieExpiresAtMs === undefined) return;
    const key = peerKey(from);

    if (msg.channels.length === 0) {
      this.spend(msg.cookie, cookieExpiresAtMs, now);
      this.endSession(key, out);
      this.reply({ type: MessageType.Joined, channels: [], expiresAtMs: now }, from, out);
      return;
    }
    const grant = checkJoin(msg, now, this.limits);
    if (isJoinRefusal(grant)) {
      this.counters[grant.counter]++;
      // The cookie verified, so the address is proven: no amplification bound.
      this.reply({ type: MessageType.Error, code: grant.code, reason: grant.reason }, from, out);
      return;
    }
    const { wanted, groups, viaGroup } = grant;
    // Never beyond the cookie's own expiry: a replayed JOIN lasts no longer than the cookie it copied.
    const expiresAtMs = Math.min(grant.expiresAtMs, cookieExpiresAtMs);

    let session = this.sessions.get(key);
    const renewed = session !== undefined;
    if (!session) {
      if (!this.quota.allows(from.address)) {
        this.counters.joinTooManySessions++;
        const ipv6 = addressGroup(from.address).ipv6;
        const reason = `too many sessions from this ${ipv6 ? '/64' : 'address'} (at most ${this.quota.limit}); leave unused ones first`;
        this.reply({ type: MessageType.Error, code: ErrorCode.TooManySessions, reason }, from, out);
        return;
      }
      session = { key, client: peerOf(from), channels: new Map(), viaGroup: new Set(), expiresAtMs, ack: msg.ack };
      this.sessions.set(key, session);
      this.quota.add(from.address);
      this.counters.sessionsStarted++;
    } else {
      this.counters.sessionsRenewed++;
    }
    if (expiresAtMs < grant.expiresAtMs) this.counters.joinTtlCutToCookie++;
    // Unicast destinations: every wanted channel but those received from their group.
    const unicast = Array.from(wanted.keys()).filter((name) => !viaGroup.has(name));
    const diff = this.membership.replace(key, unicast);
    const old = session.channels; // removed channels' commands need their TSI
    for (const [name, tsi] of old) {
      if (!wanted.has(name)) {
        this.acks.dropChannel(key, tsi);
        this.needs.dropChannel(key, tsi);
        this.budget.dropChannel(key, tsi);
      } else if (viaGroup.has(name) !== session.viaGroup.has(name)) this.countFlip(viaGroup.has(name));
    }
    // What was answered on a unicast stream means nothing once the group carries the channel.
    for (const name of viaGroup) this.acks.dropChannel(key, wanted.get(name) as number);
    if (!msg.ack) this.acks.dropClient(key);
    else {
      // Losses before the client became a destination are not its to claim.
      for (const name of unicast) {
        const tsi = wanted.get(name) as number;
        const first = this.firstSequence?.(tsi);
        if (first !== undefined) this.acks.startAt(key, tsi, first);
      }
    }
    this.counters.joinMulticastChannels += viaGroup.size;
    this.counters.joinMulticastNoGroup += grant.bitsWithoutGroup;
    session.channels = wanted;
    session.viaGroup = viaGroup;
    session.expiresAtMs = expiresAtMs;
    session.ack = msg.ack;
    this.timers.schedule(key, expiresAtMs);
    this.emitDiff(diff, new Map([[key, session]]), out, old);
    const event: ClientEvent = {
      kind: renewed ? 'renewed' : 'joined',
      client: peerOf(session.client),
      channels: Array.from(wanted.keys()),
      expiresAtMs,
      ack: msg.ack,
    };
    if (viaGroup.size > 0) event.multicast = Array.from(viaGroup);
    out.events.push(event);
    const channels = Array.from(wanted, ([name, tsi]): JoinedChannel => {
      const group = groups.get(name);
      if (!group) return { name, tsi };
      // UNICAST (§4.6): the client also gets this channel's unicast stream.
      return { name, tsi, multicast: { ...group, unicast: !viaGroup.has(name) } };
    });
    this.reply({ type: MessageType.Joined, channels, expiresAtMs }, from, out);
  }

  /** A renewal moved one channel between its group and unicast. */
  private countFlip(toGroup: boolean): void {
    if (toGroup) this.counters.unicastToMulticast++;
    else this.counters.multicastToUnicast++;
  }

  private onLeave(msg: LeaveMessage, from: Source, now: number, out: ManagerOutput): void {
    this.counters.leaveReceived++;
    const cookieExpiresAtMs = this.checkCookie(msg.cookie, from, now, out);
    if (cookieExpiresAtMs === undefined) return;
    this.spend(msg.cookie, cookieExpiresAtMs, now);
    const key = peerKey(from);
    if (!this.sessions.has(key)) {
      this.counters.leaveNotJoined++;
      return;
    }
    this.endSession(key, out);
  }

  private onAck(msg: AckMessage, from: Source, now: number, out: ManagerOutput): void {
    this.counters.ackReceived++;
    const target = this.feedbackTarget(msg, from, now, out, ACK_REFUSALS);
    if (target === undefined) return;
    const { key, session, channel } = target;
    const verdict = this.acks.onAck(key, msg.tsi, msg, this.sentEnd?.(msg.tsi));
    if (!verdict.ok) {
      this.counters.ackMalformed++;
      return;
    }
    let lost = verdict.lost;
    const rate = lost.length > 0 ? this.packetRate?.(msg.tsi) : undefined;
    if (rate !== undefined) {
      const grant = this.budget.take(key, msg.tsi, lost.length, rate, now);
      this.counters.replacementsOverClientShare += grant.overClientShare;
      this.counters.replacementsOverChannelShare += grant.overChannelShare;
      if (grant.granted < lost.length) lost = lost.slice(0, grant.granted);
    }
    if (lost.length > 0) {
      this.counters.freshSymbolsRequested += lost.length;
      out.commands.push({ kind: 'sendFresh', channel, tsi: msg.tsi, destination: peerOf(session.client), lost });
    }
  }

  /**
   * NEED (docs/PROTOCOL.md §7a): with a verified cookie, from a session, for
   * one of its unicast channels (not one it receives from its group: that
   * is another stream), within its rate: handed to the channel's stream.
   */
  private onNeed(msg: NeedMessage, from: Source, now: number, out: ManagerOutput): void {
    this.counters.needReceived++;
    const target = this.feedbackTarget(msg, from, now, out, NEED_REFUSALS);
    if (target === undefined) return;
    const { key, session, channel } = target;
    if (!this.needs.admit(key, msg.tsi, now)) {
      this.counters.needTooFrequent++;
      return;
    }
    out.commands.push({ kind: 'need', channel, tsi: msg.tsi, member: peerOf(session.client), report: msg });
  }

  /**
   * What ACK and NEED share (docs/PROTOCOL.md §7, §7a): a verified cookie,
   * a session from that address (ERROR NotJoined if none), in ACK mode for
   * an ACK, and one of the session's unicast channels — not one it receives
   * from its group, whose sequence numbers and blocks are the group
   * stream's, which no one reports on (§10.10). Refusals are counted under
   * the message's own names.
   */
  private feedbackTarget(
    msg: { cookie: Uint8Array; tsi: number },
    from: Source,
    now: number,
    out: ManagerOutput,
    refusals: FeedbackRefusals,
  ): { key: string; session: Session; channel: string } | undefined {
    const key = peerKey(from);
    const session = this.sessions.get(key);
    const v = session?.verified;
    // A report comes every few milliseconds: the session's last verified cookie, bytes for bytes, is not verified again.
    if (!(v !== undefined && now < v.untilMs && v.bytes.equals(msg.cookie))) {
      const expiresAtMs = this.checkCookie(msg.cookie, from, now, out);
      if (expiresAtMs === undefined) return undefined;
      if (session) session.verified = { bytes: Buffer.from(msg.cookie), untilMs: Math.min(expiresAtMs, this.cookies.keyAcceptedUntilMs(msg.cookie, now)) };
    }
    if (!session) {
      this.counters[refusals.notJoined]++;
      this.reply({ type: MessageType.Error, code: ErrorCode.NotJoined, reason: 'not joined' }, from, out);
      return undefined;
    }
    if (refusals.notAckMode !== undefined && !session.ack) {
      this.counters[refusals.notAckMode]++;
      return undefined;
    }
    let channel: string | undefined;
    for (const [name, tsi] of session.channels) if (tsi === msg.tsi) channel = name;
    if (channel === undefined) {
      this.counters[refusals.unknownChannel]++;
      return undefined;
    }
    if (session.viaGroup.has(channel)) {
      this.counters[refusals.groupChannel]++;
      return undefined;
    }
    return { key, session, channel };
  }

  /** Remembers a cookie a LEAVE (or an empty JOIN) used until it expires. */
  private spend(cookie: Uint8Array, expiresAtMs: number, now: number): void {
    const before = this.spent.evicted;
    this.spent.spend(cookie, expiresAtMs, now);
    this.counters.spentCookiesEvicted += this.spent.evicted - before;
  }

  /**
   * Verifies a cookie and returns its expiry; on refusal counts it, answers
   * within the amplification budget and returns undefined. A spent cookie
   * (LEAVE) is refused like a bad one: whoever sends it may be an on-path
   * attacker replaying it from the client's address.
   */
  private checkCookie(cookie: Uint8Array, from: Source, now: number, out: ManagerOutput): number | undefined {
    const verdict = this.cookies.verify(cookie, from.address, from.port, now);
    if (verdict.ok && !this.spent.isSpent(cookie, now)) return verdict.expiresAtMs;
    if (verdict.ok) {
      this.counters.cookieSpent++;
      this.replyUnverified({ type: MessageType.Error, code: ErrorCode.BadCookie, reason: 'bad cookie' }, from, out);
      return undefined;
    }
    this.counters[COOKIE_REFUSAL_COUNTER[verdict.reason]]++;
    const error: ErrorMessage =
      verdict.reason === 'expired'
        ? { type: MessageType.Error, code: ErrorCode.CookieExpired, reason: 'cookie expired' }
        : { type: MessageType.Error, code: ErrorCode.BadCookie, reason: 'bad cookie' };
    this.replyUnverified(error, from, out);
    return undefined;
  }

  /** LEAVE, a JOIN with no channels, or its connection gone: the session ends at once. */
  private endSession(key: string, out: ManagerOutput, counter: 'sessionsLeft' | 'sessionsDisconnected' | 'sessionsServerLeft' = 'sessionsLeft'): void {
    const s = this.sessions.get(key);
    if (!s) return;
    const diff = this.membership.removeMember(key);
    this.timers.cancel(key);
    this.acks.dropClient(key);
    this.needs.dropClient(key);
    this.budget.dropClient(key);
    this.quota.remove(s.client.address);
    this.sessions.delete(key);
    this.counters[counter]++;
    this.emitDiff(diff, new Map([[key, s]]), out);
    out.events.push({ kind: 'left', client: peerOf(s.client), channels: Array.from(s.channels.keys()) });
  }

  private reply(message: ControlMessage, to: Source, out: ManagerOutput): void {
    out.replies.push({ to: peerOf(to), message });
  }

  /** Queues a reply to an unverified address if it is no larger than the message received. */
  private replyUnverified(message: ControlMessage, from: Source, out: ManagerOutput): boolean {
    const budget = Math.max(0, Math.floor(from.bytesReceived));
    if (!(this.encodedSize(message) <= budget)) {
      this.counters.amplificationSuppressed++;
      return false;
    }
    out.replies.push({ to: peerOf(from), message, maxBytes: budget });
    return true;
  }

  /**
   * Turns a membership diff into data-path commands. A removed channel's TSI
   * is the one the session joined it with (`oldChannels` on a JOIN, the
   * session's own channels on LEAVE and expiry).
   */
  private emitDiff(
    diff: MembershipDiff<string, string>,
    sessions: Map<string, Session>,
    out: ManagerOutput,
    oldChannels?: Map<string, number>,
  ): void {
    out.commands.push(
      ...membershipCommands(diff, (channel, key, side) => {
        const s = sessions.get(key) as Session;
        const from = side === 'removed' && oldChannels?.has(channel) ? oldChannels : s.channels;
        return { peer: peerOf(s.client), tsi: from.get(channel) as number };
      }),
    );
  }
}
