/**
 * Spent cookies: the cookies LEAVE has used, remembered until they expire.
 *
 * A cookie is stateless and can be presented many times while it is valid:
 * that is what lets a client renew, ACK and leave with one cookie. But
 * anyone on the path sees it, and an on-path attacker who can also send from
 * the client's address could otherwise JOIN with it after the client left,
 * starting the stream towards the client again. A LEAVE (or a JOIN with no
 * channels) ends a session on purpose, so its cookie is spent: the server
 * refuses it for JOIN, LEAVE and ACK until it expires (docs/PROTOCOL.md
 * §6.3). After its expiry the cookie is refused anyway, so the entry goes.
 *
 * Memory is bounded by `capacity` entries. When full, the entry that expires
 * first makes room (counted as evicted): that cookie could be replayed for
 * what is left of its life, which is the least of any entry's. Filling the
 * set takes one HELLO round trip per entry from a real address.
 *
 * Clock-free: every call takes `now` (Unix ms).
 */
import { InvalidServerConfigError } from '../errors';

interface Entry {
  key: string;
  expiresAtMs: number;
}

export const DEFAULT_SPENT_COOKIES = 32768;

export class SpentCookies {
  readonly capacity: number;
  /** Entries evicted before their expiry because the set was full. */
  evicted = 0;
  private readonly expiry = new Map<string, number>();
  /** Min-heap on expiresAtMs; may hold stale entries of keys re-spent later (skipped). */
  private readonly heap: Entry[] = [];

  constructor(capacity: number = DEFAULT_SPENT_COOKIES) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new InvalidServerConfigError('spentCookies capacity must be a positive integer');
    this.capacity = capacity;
  }

  get size(): number {
    return this.expiry.size;
  }

  /** Remembers `cookie` as spent until `expiresAtMs`. */
  spend(cookie: Uint8Array, expiresAtMs: number, now: number): void {
    this.purge(now);
    if (expiresAtMs <= now) return;
    const key = Buffer.from(cookie.buffer, cookie.byteOffset, cookie.length).toString('base64');
    const had = this.expiry.get(key);
    if (had !== undefined && had >= expiresAtMs) return;
    if (had === undefined) {
      while (this.expiry.size >= this.capacity) {
        this.popEarliest();
        this.evicted++;
      }
    }
    this.expiry.set(key, expiresAtMs);
    this.push({ key, expiresAtMs });
  }

  /** Whether `cookie` was spent and has not expired by `now`. */
  isSpent(cookie: Uint8Array, now: number): boolean {
    const key = Buffer.from(cookie.buffer, cookie.byteOffset, cookie.length).toString('base64');
    const at = this.expiry.get(key);
    return at !== undefined && now < at;
  }

  /** Forgets every entry expired by `now`. */
  purge(now: number): void {
    while (this.heap.length > 0 && this.heap[0].expiresAtMs <= now) this.popEarliest();
  }

  private popEarliest(): void {
    const top = this.heap[0];
    const last = this.heap.pop() as Entry;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    // A stale heap entry (the key was spent again with a later expiry) leaves the map alone.
    if (this.expiry.get(top.key) === top.expiresAtMs) this.expiry.delete(top.key);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].expiresAtMs <= h[i].expiresAtMs) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l].expiresAtMs < h[m].expiresAtMs) m = l;
      if (r < h.length && h[r].expiresAtMs < h[m].expiresAtMs) m = r;
      if (m === i) return;
      [h[m], h[i]] = [h[i], h[m]];
      i = m;
    }
  }
}
