/**
 * What the client manager hands back for each message and tick: the control
 * replies to send, the commands for the data path, and the events to log.
 * Everything names its Peer, so the server routes each item to the
 * transport that peer came over.
 */
import type { ControlMessage, NeedMessage } from '../protocol/messages';
import type { MembershipDiff } from './channel-membership';
import type { Peer } from './peer';

export interface Reply {
  to: Peer;
  message: ControlMessage;
  /**
   * Largest encoding the transport may send: the bytes received in the
   * message that caused the reply, while the peer's address is unverified
   * (docs/PROTOCOL.md §6.1). Undefined once a cookie verified.
   */
  maxBytes?: number;
}

/**
 * Commands for the data path, one per channel and kind (batched). Members
 * here are the channel's *unicast* destinations: a client that receives a
 * channel from its multicast group is on the channel but in none of these.
 */
export type ReplicationCommand =
  | { kind: 'addDestinations'; channel: string; tsi: number; destinations: Peer[] }
  | { kind: 'removeDestinations'; channel: string; tsi: number; destinations: Peer[] }
  /** Send `destination` one packet with a fresh symbol for each lost sequence number. */
  | { kind: 'sendFresh'; channel: string; tsi: number; destination: Peer; lost: number[] }
  /** `member`'s NEED report (docs/PROTOCOL.md §7a) for the channel's stream. */
  | { kind: 'need'; channel: string; tsi: number; member: Peer; report: NeedMessage };

export type ClientEvent =
  | {
      kind: 'joined' | 'renewed';
      client: Peer;
      channels: string[];
      expiresAtMs: number;
      ack: boolean;
      /** The channels the client receives from their multicast group, not by unicast; absent when none. */
      multicast?: string[];
    }
  | { kind: 'left' | 'expired'; client: Peer; channels: string[] };

export interface ManagerOutput {
  replies: Reply[];
  commands: ReplicationCommand[];
  events: ClientEvent[];
}

export function emptyOutput(): ManagerOutput {
  return { replies: [], commands: [], events: [] };
}

/** Who a member key is and the TSI its channel had for it on the side of the diff it is on. */
export type MemberResolver = (channel: string, member: string, side: 'added' | 'removed') => { peer: Peer; tsi: number };

/**
 * One removeDestinations command per channel that lost members, then one
 * addDestinations per channel that gained some: one boundary crossing per
 * channel and kind, never one per client (session/channel-membership.ts).
 */
export function membershipCommands(diff: MembershipDiff<string, string>, resolve: MemberResolver): ReplicationCommand[] {
  const out: ReplicationCommand[] = [];
  for (const [kind, side, byChannel] of [
    ['removeDestinations', 'removed', diff.removed],
    ['addDestinations', 'added', diff.added],
  ] as const) {
    for (const [channel, members] of byChannel) {
      const resolved = Array.from(members, (m) => resolve(channel, m, side));
      out.push({ kind, channel, tsi: resolved[0].tsi, destinations: resolved.map((r) => r.peer) });
    }
  }
  return out;
}
