/**
 * What a ClientManager (./client-manager) is configured with: its cookie
 * authority and channel directory, the wire codec's size of a reply, and
 * the limits and rates of JOIN, ACK, NEED, replacements and sessions.
 */
import type { ControlMessage } from '../protocol/messages';
import type { AckTrackerOptions } from './ack-tracker';
import type { ChannelDirectory } from './channel-directory';
import type { CookieAuthority } from './cookie';
import type { NeedTrackerOptions } from './need-tracker';
import type { ReplacementBudgetOptions } from './replacement-budget';

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
  /** How many NEED reports per (client, channel) go through (need-tracker.ts). */
  need?: NeedTrackerOptions;
  /** One past the highest sequence number sent on a channel, if the data path reports it. */
  sentEnd?: (tsi: number) => number | undefined;
  /**
   * The sequence number of the first packet a destination added to a
   * channel now receives, if the data path reports it: losses below it are
   * not the client's to claim.
   */
  firstSequence?: (tsi: number) => number | undefined;
  /**
   * Stream packets per second of a channel, if known: the rate the
   * replacement budget is a share of. Without it (or for a channel it does
   * not know) ACK replacements are not budgeted.
   */
  packetRate?: (tsi: number) => number | undefined;
  replacements?: ReplacementBudgetOptions;
  /** Most sessions one IPv4 address or IPv6 /64 may hold at once. Default 64. */
  maxSessionsPerAddress?: number;
  /** Most spent cookies remembered (LEAVE). Default 32768. */
  spentCookies?: number;
}

export const DEFAULT_MAX_SESSIONS_PER_ADDRESS = 64;
