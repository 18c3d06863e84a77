/**
 * Counters of accepted and rejected inputs, one per decoder family.
 *
 * Every decoder takes an optional `RejectCounters` and records its verdict
 * there, so a server can export "dropped because <reason>" metrics without
 * wrapping each call. Plain in-memory numbers: reading them costs nothing.
 */
export class RejectCounters<R extends string> {
  private readonly counts = new Map<R, number>();
  private acceptedCount = 0;
  private rejectedCount = 0;

  accept(): void {
    this.acceptedCount++;
  }

  reject(reason: R): void {
    this.rejectedCount++;
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
  }

  get accepted(): number {
    return this.acceptedCount;
  }

  get rejected(): number {
    return this.rejectedCount;
  }

  /** How many inputs were rejected for `reason`. */
  get(reason: R): number {
    return this.counts.get(reason) ?? 0;
  }

  /** Reasons seen so far with their counts. */
  snapshot(): Partial<Record<R, number>> {
    const out: Partial<Record<R, number>> = {};
    for (const [k, v] of this.counts) out[k] = v;
    return out;
  }

  reset(): void {
    this.counts.clear();
    this.acceptedCount = 0;
    this.rejectedCount = 0;
  }
}
