/**
 * The client manager's counters: every message received, every refusal by
 * its reason, every session transition. A plain object of numbers, so
 * RqcastServer can merge it into its own counters and prom-client reads it
 * at scrape time (lib/server/metrics.ts) without touching the hot path.
 */
import type { CookieRefusal } from './cookie';

export interface ClientManagerCounters {
  helloReceived: number;
  cookiesIssued: number;
  joinReceived: number;
  leaveReceived: number;
  ackReceived: number;
  needReceived: number;
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
  /** New sessions refused: their IPv4 address or IPv6 /64 already held maxSessionsPerAddress. */
  joinTooManySessions: number;
  /** Accepted JOINs whose expiry was cut to their cookie's expiry (a session never outlives its cookie). */
  joinTtlCutToCookie: number;
  /** JOIN/LEAVE/ACK refused because their cookie was spent by a LEAVE (a replay). */
  cookieSpent: number;
  /** Spent cookies forgotten before their expiry because the set was full. */
  spentCookiesEvicted: number;
  /** Channels of accepted JOINs the client receives from their multicast group (bit set, channel has a group). */
  joinMulticastChannels: number;
  /** Multicast bits of accepted JOINs for channels without a group: ignored, the client is a unicast member. */
  joinMulticastNoGroup: number;
  /** A renewal cleared a channel's bit: the client went from the group to unicast (its fallback, §10.10). */
  multicastToUnicast: number;
  /** A renewal set a channel's bit: the client went from unicast to the group. */
  unicastToMulticast: number;
  leaveNotJoined: number;
  ackNotJoined: number;
  ackNotAckMode: number;
  ackUnknownChannel: number;
  /** ACKs for a channel the session receives from its group: ACKs are for unicast streams only (§6.5). */
  ackGroupChannel: number;
  ackMalformed: number;
  /** NEED from a client with no session (answered NotJoined), for a channel not its own, or one it receives from its group: ignored. */
  needNotJoined: number;
  needUnknownChannel: number;
  needGroupChannel: number;
  /** NEED beyond the (client, channel)'s rate (need-tracker.ts): dropped. */
  needTooFrequent: number;
  /** Replies not sent because they would exceed the datagram that caused them. */
  amplificationSuppressed: number;
  sessionsStarted: number;
  sessionsRenewed: number;
  sessionsLeft: number;
  sessionsExpired: number;
  /** Sessions ended because their connection closed (TCP: FIN, RST, timeout), not by LEAVE or expiry. */
  sessionsDisconnected: number;
  /** Sessions the server ended by leaving (ERROR ServerLeaving sent, docs/PROTOCOL.md §6.7). */
  sessionsServerLeft: number;
  /** HELLOs and JOINs answered with ERROR ServerLeaving while the server shut down. */
  refusedLeaving: number;
  /** Replacements asked of the data path (losses granted within the budget). */
  freshSymbolsRequested: number;
  /** Losses not replaced: the client's share of the channel rate was used up. */
  replacementsOverClientShare: number;
  /** Losses not replaced: all clients' share of the channel rate was used up. */
  replacementsOverChannelShare: number;
}

export function zeroClientManagerCounters(): ClientManagerCounters {
  return {
    helloReceived: 0,
    cookiesIssued: 0,
    joinReceived: 0,
    leaveReceived: 0,
    ackReceived: 0,
    needReceived: 0,
    unexpectedMessage: 0,
    cookieMalformed: 0,
    cookieUnknownKey: 0,
    cookieForged: 0,
    cookieWrongAddress: 0,
    cookieExpired: 0,
    joinUnknownChannel: 0,
    joinTooManyChannels: 0,
    joinBadTime: 0,
    joinTooManySessions: 0,
    joinTtlCutToCookie: 0,
    cookieSpent: 0,
    spentCookiesEvicted: 0,
    joinMulticastChannels: 0,
    joinMulticastNoGroup: 0,
    multicastToUnicast: 0,
    unicastToMulticast: 0,
    leaveNotJoined: 0,
    ackNotJoined: 0,
    ackNotAckMode: 0,
    ackUnknownChannel: 0,
    ackGroupChannel: 0,
    ackMalformed: 0,
    needNotJoined: 0,
    needUnknownChannel: 0,
    needGroupChannel: 0,
    needTooFrequent: 0,
    amplificationSuppressed: 0,
    sessionsStarted: 0,
    sessionsRenewed: 0,
    sessionsLeft: 0,
    sessionsExpired: 0,
    sessionsDisconnected: 0,
    sessionsServerLeft: 0,
    refusedLeaving: 0,
    freshSymbolsRequested: 0,
    replacementsOverClientShare: 0,
    replacementsOverChannelShare: 0,
  };
}

/** The counter of each cookie refusal (docs/PROTOCOL.md §5, table cookie-refusals). */
export const COOKIE_REFUSAL_COUNTER: Readonly<Record<CookieRefusal, keyof ClientManagerCounters>> = {
  malformed: 'cookieMalformed',
  unknownKey: 'cookieUnknownKey',
  forged: 'cookieForged',
  wrongAddress: 'cookieWrongAddress',
  expired: 'cookieExpired',
};
