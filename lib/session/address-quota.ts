/**
 * Sessions per address: how many sessions one source may hold at once.
 *
 * A cookie proves that a client receives at its address, not that it is
 * one client: one host can open thousands of sockets, each with its own
 * cookie and session, and each session gets the whole stream. So the client
 * manager caps the sessions of one *address group* (docs/PROTOCOL.md §6.2):
 *
 * - IPv4 (and IPv4-mapped IPv6): the address itself;
 * - IPv6: its /64 prefix (and zone), since one host or one subscriber line
 *   usually holds a whole /64 and can pick any address in it.
 *
 * Counting only, no clock and no I/O: the manager calls `add` when a session
 * starts and `remove` when it ends. Memory is one entry per group that holds
 * a session, so it is bounded by the number of sessions.
 */
import { normalizeAddress } from '../support/address';
import { InvalidServerConfigError } from '../errors';

/** The address group of `address`: the IPv4 address, or the IPv6 /64 (with its zone). */
export function addressGroup(address: string): { key: string; ipv6: boolean } {
  const a = normalizeAddress(address);
  const b = a.bytes;
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return { key: `${b[12]}.${b[13]}.${b[14]}.${b[15]}`, ipv6: false };
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return { key: `${groups.join(':')}::/64${a.zone ? `%${a.zone}` : ''}`, ipv6: true };
}

export class AddressQuota {
  readonly limit: number;
  private readonly held = new Map<string, number>();

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit <= 0) throw new InvalidServerConfigError('maxSessionsPerAddress must be a positive integer');
    this.limit = limit;
  }

  /** Address groups holding at least one session. */
  get groups(): number {
    return this.held.size;
  }

  /** Sessions the group of `address` holds. */
  count(address: string): number {
    return this.held.get(addressGroup(address).key) ?? 0;
  }

  /** Whether the group of `address` may start one more session. */
  allows(address: string): boolean {
    return this.count(address) < this.limit;
  }

  add(address: string): void {
    const key = addressGroup(address).key;
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
  }

  remove(address: string): void {
    const key = addressGroup(address).key;
    const n = (this.held.get(key) ?? 0) - 1;
    if (n > 0) this.held.set(key, n);
    else this.held.delete(key);
  }
}
