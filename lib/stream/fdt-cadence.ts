/**
 * FdtCadence: which stream positions carry an FDT packet (docs/PROTOCOL.md
 * §10.3). Every p with p mod interval = 0 (so position 0 too) as long as
 * the interval does not change; after a change, the position `interval`
 * (or the sparse interval) after the previous FDT packet.
 *
 * An FDT packet serves a member that has not got the FDT instance yet (a
 * joiner, or one that lost its packets); every other member just reads past
 * it, and at the channel's rate it takes the place of a data packet (one in
 * 191 at 200 Mbit/s: 0.5 % of the stream). A member that sent a NEED report
 * holds the instance, since a report's entries name the blocks of the
 * objects the instance lists (§7a.1), and a stream starts with every member
 * unknown (§10.2). So while every member of a stream by need has reported
 * (`everyoneHasFdt`), the interval is `FDT_SPARSE_FACTOR` times longer. A
 * destination added is unknown until it reports, and the next FDT packet
 * then comes at most `interval` after the last one: what is built from
 * then on serves it as before; what the ring held already (built sparse) it
 * keeps as packets of a TOI not in an FDT yet (the client's
 * maxUnknownPackets, 4096 by default) until the instance arrives.
 */

/** While every member holds the FDT, one FDT packet every this many intervals. */
export const FDT_SPARSE_FACTOR = 5;

export class FdtCadence {
  /** Position of the last FDT packet (undefined before the first). */
  private last: number | undefined;

  /**
   * `interval`: positions between FDT packets; `everyoneHasFdt`: whether
   * every member holds the instance now (absent: never known, always
   * `interval`).
   */
  constructor(
    readonly interval: number,
    private readonly everyoneHasFdt?: () => boolean,
  ) {}

  /** Positions from `position` to the next FDT packet (0: `position` is one). */
  toNext(position: number): number {
    // The first: the first multiple of the interval at or after `position`, whoever holds the FDT.
    if (this.last === undefined) return Math.ceil(position / this.interval) * this.interval - position;
    const every = this.everyoneHasFdt?.() === true ? this.interval * FDT_SPARSE_FACTOR : this.interval;
    return Math.max(0, this.last + every - position);
  }

  /** An FDT packet was built at `position`. */
  sent(position: number): void {
    this.last = position;
  }
}
