/**
 * Peer addresses, normalised in one place.
 *
 * A dual-stack socket names an IPv4 peer "::ffff:192.0.2.1"; an IPv4 socket
 * names it "192.0.2.1". Both are the same host. `normalizeAddress` parses any
 * IPv4/IPv6 literal into 16 bytes (IPv4 as IPv4-mapped IPv6, RFC 4291
 * §2.5.5.2) plus its zone, with a canonical text form that is usable as a map
 * key; the cookie binding (session/cookie.ts) and session identity use it.
 * `unmapIPv4` is the cheap form for hot paths and for the native engine,
 * which takes numeric addresses: it only turns the IPv4-mapped form back into
 * dotted quad and leaves every other string as it is.
 */
import { InvalidAddressError } from '../errors';

/** Normalised peer address: 16 address bytes plus an optional IPv6 zone. */
export interface NormalizedAddress {
  bytes: Uint8Array;
  zone: string;
  /** Canonical text form, usable as a map key ("192.0.2.1", "2001:db8:0:0:0:0:0:1%eth0"). */
  text: string;
}

function parseIPv4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    out.push(v);
  }
  return out;
}

function parseIPv6(s: string): number[] | undefined {
  // Optional dotted-quad tail (RFC 4291 §2.2 form 3): "::ffff:192.0.2.1".
  let tail: number[] = [];
  if (s.includes('.')) {
    const lastColon = s.lastIndexOf(':');
    if (lastColon < 0) return undefined;
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    const prefix = s.slice(0, lastColon + 1);
    s = prefix.endsWith('::') ? prefix : prefix.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0]);
  if (!head) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const rest = parseGroups(halves[1]);
    if (!rest) return undefined;
    const fill = 8 - head.length - rest.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  } else {
    groups = [...head, ...tail];
  }
  if (groups.length !== 8) return undefined;
  return groups;
}

/** Parses an IPv4/IPv6 literal into its normalised form. Throws InvalidAddressError. */
export function normalizeAddress(address: string): NormalizedAddress {
  const bytes = new Uint8Array(16);
  const v4 = parseIPv4(address);
  if (v4) {
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    bytes.set(v4, 12);
    return { bytes, zone: '', text: v4.join('.') };
  }
  const pct = address.indexOf('%');
  const zone = pct >= 0 ? address.slice(pct + 1) : '';
  const body = pct >= 0 ? address.slice(0, pct) : address;
  if (pct >= 0 && (zone.length === 0 || Buffer.byteLength(zone, 'utf8') > 255)) throw new InvalidAddressError();
  const groups = parseIPv6(body);
  if (!groups) throw new InvalidAddressError();
  for (let i = 0; i < 8; i++) {
    bytes[2 * i] = groups[i] >> 8;
    bytes[2 * i + 1] = groups[i] & 0xff;
  }
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  const text = mapped && zone === ''
    ? `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
    : groups.map((g) => g.toString(16)).join(':') + (zone ? `%${zone}` : '');
  return { bytes, zone, text };
}

/** "::ffff:a.b.c.d" -> "a.b.c.d"; any other string unchanged. */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1] : address;
}

/** The address bytes of a numeric IPv4 (4 bytes) or IPv6 (16 bytes) literal without zone, or undefined. */
export function addressBytes(address: string): { family: 4 | 6; bytes: Uint8Array } | undefined {
  if (address.includes('%')) return undefined;
  let n: NormalizedAddress;
  try {
    n = normalizeAddress(address);
  } catch {
    return undefined;
  }
  // An IPv4 literal is 4 bytes; an IPv6 literal is 16, even in its IPv4-mapped form.
  if (!address.includes(':')) return { family: 4, bytes: n.bytes.slice(12) };
  return { family: 6, bytes: n.bytes };
}

/**
 * Text form of 4 or 16 address bytes: dotted quad, or the RFC 5952 form of
 * an IPv6 address (lowercase, leading zeros dropped, the longest run of two
 * or more zero groups as "::", an IPv4-mapped address as ::ffff:a.b.c.d,
 * RFC 5952 §5).
 */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new InvalidAddressError();
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[2 * i] << 8) | bytes[2 * i + 1]);
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The family and bytes of a numeric literal (addressBytes). */
export type AddressBytes = NonNullable<ReturnType<typeof addressBytes>>;

/** 224.0.0.0/4 (RFC 5771) or ff00::/8 (RFC 4291 §2.7). */
function isMulticast(a: AddressBytes): boolean {
  return a.family === 4 ? (a.bytes[0] & 0xf0) === 0xe0 : a.bytes[0] === 0xff;
}

/** Whether a numeric literal is an IP multicast address: 224.0.0.0/4 (RFC 5771) or ff00::/8 (RFC 4291 §2.7). */
export function isMulticastAddress(address: string): boolean {
  const a = addressBytes(address);
  return a !== undefined && isMulticast(a);
}

/** The bytes of a numeric multicast literal (as isMulticastAddress), or undefined. */
export function multicastAddressBytes(address: string): AddressBytes | undefined {
  const a = addressBytes(address);
  return a !== undefined && isMulticast(a) ? a : undefined;
}

/**
 * The bytes of a numeric unicast literal of IP version `family`, or
 * undefined: neither multicast nor the unspecified address (all zero), so
 * a sender can bind to it and a receiver can name it as a source (RFC 4607
 * §1).
 */
export function unicastAddressBytes(address: string, family: 4 | 6): AddressBytes | undefined {
  const a = addressBytes(address);
  if (a === undefined || a.family !== family || isMulticast(a) || a.bytes.every((b) => b === 0)) return undefined;
  return a;
}
