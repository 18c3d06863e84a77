/**
 * GroupLink: one channel's multicast group, received beside the channel's
 * session (docs/PROTOCOL.md §10.10), or on its own by a FLUTE-only receiver
 * (flute-receiver.ts). It owns the receive-only membership
 * (lib/transport/multicast/client-membership.ts) and feeds what arrives to
 * the data path of the channel, which keeps only the channel's TSI from the
 * announced source; the packets it took are reported to the owner (the
 * fallback watches them).
 *
 * The group feeds the same channel entry as the session's unicast stream:
 * one FDT and one set of objects per channel, whichever carriage brings
 * them, so that a fallback to unicast carries on from what the group gave.
 */
import type { ClientTransportHandler, Datagrams } from '../transport/client-transport';
import {
  MulticastGroupSpec,
  MulticastMembership,
  MulticastMembershipOptions,
  openMulticastMembership,
} from '../transport/multicast/client-membership';
import type { DataPath, GroupFeed } from './data-path';

export interface GroupLinkHost {
  /** `count` packets of the group were taken at `now`. */
  groupPackets(link: GroupLink, count: number, now: number): void;
  /** The membership's socket failed: nothing more arrives by it. */
  groupFailed(link: GroupLink, e: Error): void;
}

export class GroupLink implements ClientTransportHandler {
  private membership?: MulticastMembership;
  private closed = false;
  /** Joins of a membership already closed. */
  private closedJoins = 0;
  /** Packets taken from the group, over every membership period. */
  packets = 0;

  constructor(
    /** The channel's name, as JOIN named it (or the FLUTE session's). */
    readonly channel: string,
    readonly spec: MulticastGroupSpec,
    private readonly feed: GroupFeed,
    private readonly dataPath: DataPath,
    private readonly host: GroupLinkHost,
    private readonly o: MulticastMembershipOptions = {},
  ) {}

  /** Binds the group's port and joins the group; throws a MembershipError. Closed at once if close() came first. */
  async open(): Promise<void> {
    if (this.closed || this.membership) return;
    const m = await openMulticastMembership(this.spec, this, this.o);
    if (this.closed) {
      await m.close();
      return;
    }
    this.membership = m;
  }

  /** The group is joined now. */
  get joined(): boolean {
    return this.membership?.joined ?? false;
  }

  /** Times the group was joined (kept after close). */
  get joins(): number {
    return this.membership?.joins ?? this.closedJoins;
  }

  /** Joins the group again (after leave()); throws a MembershipError if the kernel refuses. */
  join(): void {
    this.membership?.join();
  }

  /** Leaves the group; the port stays bound for join(). */
  leave(): void {
    this.membership?.leave();
  }

  /** Receive-buffer overflows of the group's port, as the kernel counts them (MulticastMembership.stats). */
  socketDrops(): number {
    return this.membership?.stats().socketDrops ?? 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    const m = this.membership;
    this.membership = undefined;
    this.closedJoins = m?.joins ?? this.closedJoins;
    await m?.close();
  }

  // ClientTransportHandler

  onDatagrams(d: Datagrams): void {
    if (this.closed) return;
    const n = this.dataPath.onGroupDatagrams(d, this.feed);
    if (n > 0) {
      this.packets += n;
      this.host.groupPackets(this, n, Date.now());
    }
  }

  onError(e: Error): void {
    if (!this.closed) this.host.groupFailed(this, e);
  }
}
