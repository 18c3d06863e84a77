/**
 * Channel membership: which members (clients) are on which channels, indexed
 * both ways. Every mutation returns the diff it caused, grouped by channel, so
 * the caller can turn it into one add-destinations and one
 * remove-destinations command per channel for the native replicator instead
 * of one boundary crossing per client.
 */

/**
 * Net change made by one or more mutations: applying `removed` and `added`
 * (in either order) to the membership before yields the membership after. A
 * member added and then removed again within one diff appears in neither.
 */
export interface MembershipDiff<M, C> {
  added: Map<C, Set<M>>;
  removed: Map<C, Set<M>>;
}

export function emptyDiff<M, C>(): MembershipDiff<M, C> {
  return { added: new Map(), removed: new Map() };
}

export function isEmptyDiff<M, C>(diff: MembershipDiff<M, C>): boolean {
  return diff.added.size === 0 && diff.removed.size === 0;
}

function note<M, C>(side: Map<C, Set<M>>, opposite: Map<C, Set<M>>, channel: C, member: M): void {
  const undo = opposite.get(channel);
  if (undo?.delete(member)) {
    if (undo.size === 0) opposite.delete(channel);
    return;
  }
  const set = side.get(channel);
  if (set) set.add(member);
  else side.set(channel, new Set([member]));
}

export class ChannelMembership<M, C> {
  private readonly byChannel = new Map<C, Set<M>>();
  private readonly byMember = new Map<M, Set<C>>();

  /** Members of `channel` (live view; do not mutate). */
  members(channel: C): ReadonlySet<M> {
    return this.byChannel.get(channel) ?? new Set<M>();
  }

  /** Channels of `member` (live view; do not mutate). */
  channelsOf(member: M): ReadonlySet<C> {
    return this.byMember.get(member) ?? new Set<C>();
  }

  has(member: M, channel: C): boolean {
    return this.byMember.get(member)?.has(channel) ?? false;
  }

  get memberCount(): number {
    return this.byMember.size;
  }

  get channelCount(): number {
    return this.byChannel.size;
  }

  /** Adds `member` to `channel`; the diff is empty if it was already there. */
  add(member: M, channel: C, diff: MembershipDiff<M, C> = emptyDiff()): MembershipDiff<M, C> {
    let chans = this.byMember.get(member);
    if (chans?.has(channel)) return diff;
    if (!chans) this.byMember.set(member, (chans = new Set()));
    chans.add(channel);
    let mems = this.byChannel.get(channel);
    if (!mems) this.byChannel.set(channel, (mems = new Set()));
    mems.add(member);
    note(diff.added, diff.removed, channel, member);
    return diff;
  }

  /** Removes `member` from `channel`; the diff is empty if it was not there. */
  remove(member: M, channel: C, diff: MembershipDiff<M, C> = emptyDiff()): MembershipDiff<M, C> {
    const chans = this.byMember.get(member);
    if (!chans?.delete(channel)) return diff;
    if (chans.size === 0) this.byMember.delete(member);
    const mems = this.byChannel.get(channel) as Set<M>;
    mems.delete(member);
    if (mems.size === 0) this.byChannel.delete(channel);
    note(diff.removed, diff.added, channel, member);
    return diff;
  }

  /**
   * Makes `channels` exactly the member's channel set: channels not listed
   * are dropped (a JOIN that omits a channel leaves it), new ones are added.
   */
  replace(member: M, channels: Iterable<C>, diff: MembershipDiff<M, C> = emptyDiff()): MembershipDiff<M, C> {
    const wanted = new Set(channels);
    const current = this.byMember.get(member);
    if (current) {
      for (const c of Array.from(current)) if (!wanted.has(c)) this.remove(member, c, diff);
    }
    for (const c of wanted) this.add(member, c, diff);
    return diff;
  }

  /** Drops `member` from every channel at once (LEAVE, expiry). */
  removeMember(member: M, diff: MembershipDiff<M, C> = emptyDiff()): MembershipDiff<M, C> {
    const current = this.byMember.get(member);
    if (current) for (const c of Array.from(current)) this.remove(member, c, diff);
    return diff;
  }

  /** Drops every member of `channel` (the channel was withdrawn from the catalogue). */
  removeChannel(channel: C, diff: MembershipDiff<M, C> = emptyDiff()): MembershipDiff<M, C> {
    const mems = this.byChannel.get(channel);
    if (mems) for (const m of Array.from(mems)) this.remove(m, channel, diff);
    return diff;
  }
}
