/**
 * ServerWatch: which servers of a multi-server fetch (issue 11) still send.
 * I/O-free, time passed in. A server is watched for silence from its JOINED; each time
 * its session delivers, the owner reports how many data packets it has
 * taken so far; a watched server whose count has not grown for
 * `silentAfterMs` is dropped (tick returns it), so the fetch carries on
 * with the others without waiting on it. The last joined server not
 * dropped is never dropped for silence: with nobody else to carry on
 * with, the fetch's own timeout decides (FetchTimeoutError, with its usual
 * message). A server whose session fails is dropped too, unless it was
 * the last one left: then its error is the fetch's.
 */
export type DropReason = 'silent' | 'failed';

interface Watched {
  /** JOINED has arrived: silence counts from then. */
  joined: boolean;
  packets: number;
  heardAt: number;
  dropped?: DropReason;
}

export class ServerWatch {
  private readonly servers = new Map<number, Watched>();
  private finished = false;

  constructor(private readonly silentAfterMs: number) {}

  /** Server `id` is one of the fetch's (before it answers). */
  add(id: number): void {
    if (!this.servers.has(id)) this.servers.set(id, { joined: false, packets: 0, heardAt: 0 });
  }

  /** Server `id` joined at `now`: watched for silence from now on. */
  joined(id: number, now: number): void {
    const s = this.servers.get(id);
    if (!s) this.servers.set(id, { joined: true, packets: 0, heardAt: now });
    else if (!s.joined) {
      s.joined = true;
      s.heardAt = now;
    }
  }

  /** Server `id` has delivered `packets` data packets so far (a running count). */
  heard(id: number, packets: number, now: number): void {
    const s = this.servers.get(id);
    if (!s || s.dropped || packets <= s.packets) return;
    s.packets = packets;
    s.heardAt = now;
  }

  /**
   * Server `id` failed (its session ended with an error): dropped, and true,
   * unless no other server is left that has not failed or been dropped
   * (false: the failure is the fetch's).
   */
  failed(id: number): boolean {
    let s = this.servers.get(id);
    if (!s) this.servers.set(id, (s = { joined: false, packets: 0, heardAt: 0 }));
    if (s.dropped) return true;
    const self = s;
    if (![...this.servers.values()].some((x) => x !== self && !x.dropped)) return false;
    s.dropped = 'failed';
    return true;
  }

  /** Every wanted object is decoded: nothing more is dropped. */
  finish(): void {
    this.finished = true;
  }

  /** The servers silent for longer than silentAfterMs at `now`, dropped now (never the last live one). */
  tick(now: number): number[] {
    if (this.finished) return [];
    const out: number[] = [];
    for (const [id, s] of this.servers) {
      if (s.dropped || !s.joined || now - s.heardAt <= this.silentAfterMs) continue;
      if (this.liveJoined() <= 1) break;
      s.dropped = 'silent';
      out.push(id);
    }
    return out;
  }

  /** Why server `id` was dropped, if it was. */
  dropped(id: number): DropReason | undefined {
    return this.servers.get(id)?.dropped;
  }

  /** Joined servers not dropped. */
  private liveJoined(): number {
    let n = 0;
    for (const s of this.servers.values()) if (s.joined && !s.dropped) n++;
    return n;
  }
}
