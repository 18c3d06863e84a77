/**
 * The interface a group is joined on (`--multicast-if`, `if=` in a
 * flute:// URL): checked against this host's interfaces before any socket
 * is opened, so that a typo is a clear error at start-up rather than an
 * ENODEV from the kernel at JOINED time.
 *
 * An interface is given as (the same forms the native receiver takes):
 * - an IPv4 address of a local interface (IPv4 groups: IP_ADD_MEMBERSHIP
 *   names the interface by an address, RFC 1112 §7.1);
 * - an interface name ("eth0");
 * - an interface index ("2") or an IPv6 address of a local interface (IPv6
 *   groups name the interface by index, RFC 3493 §5.2).
 */
import { readdirSync, readFileSync } from 'fs';
import { isIP } from 'net';
import { networkInterfaces } from 'os';
import { normalizeAddress } from '../../support/address';
import { MembershipInterfaceError } from './membership-errors';

/** IFF_MULTICAST (linux/if.h): the interface can send and receive multicast. */
const IFF_MULTICAST = 0x1000;

/** One interface of this host, as the resolver sees it. */
export interface LocalInterface {
  name: string;
  /** The kernel's index (Linux /sys/class/net/NAME/ifindex; else from an IPv6 scope id), if known. */
  index?: number;
  /** Whether IFF_MULTICAST is set, if known (Linux). */
  multicast?: boolean;
  /** Numeric addresses, IPv6 without zone. */
  addresses: { family: 4 | 6; address: string }[];
}

/** An interface checked for a membership. */
export interface MembershipInterface {
  /** As the user gave it. */
  readonly spec: string;
  readonly name: string;
  readonly index?: number;
  /** The IPv4 address that names it for an IPv4 group (the one given, else its first). */
  readonly ipv4?: string;
}

function readSys(name: string, file: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** This host's interfaces: os.networkInterfaces(), with index and flags from /sys/class/net where there is one. */
export function systemInterfaces(): LocalInterface[] {
  const byName = new Map<string, LocalInterface>();
  const get = (name: string): LocalInterface => {
    let i = byName.get(name);
    if (!i) byName.set(name, (i = { name, addresses: [] }));
    return i;
  };
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    const i = get(name);
    for (const a of addrs ?? []) {
      const family = a.family === 'IPv6' ? 6 : 4;
      i.addresses.push({ family, address: a.address.split('%')[0] });
      if (family === 6 && a.scopeid && i.index === undefined) i.index = a.scopeid;
    }
  }
  let names: string[] = [];
  try {
    names = readdirSync('/sys/class/net');
  } catch {
    /* not Linux: what os.networkInterfaces() says is all there is */
  }
  for (const name of names) {
    const i = get(name);
    const index = Number(readSys(name, 'ifindex'));
    if (Number.isSafeInteger(index) && index > 0) i.index = index;
    const flags = readSys(name, 'flags');
    if (flags !== undefined && /^0x[0-9a-f]+$/i.test(flags)) i.multicast = (parseInt(flags, 16) & IFF_MULTICAST) !== 0;
  }
  return [...byName.values()];
}

/**
 * Whether `text` has the form of an interface: an IPv4 or IPv6 address
 * (no zone), a decimal index, or a Linux interface name (1..15 bytes, not
 * "." or "..", no "/", ":", "%" or white space: dev_valid_name).
 */
export function isInterfaceSpec(text: string): boolean {
  if (typeof text !== 'string' || text.length === 0) return false;
  if (isIP(text) !== 0) return !text.includes('%');
  if (/^[0-9]+$/.test(text)) return text.length <= 10 && Number(text) > 0 && Number(text) <= 0xffffffff;
  return text.length <= 15 && text !== '.' && text !== '..' && /^[\x21-\x7e]+$/.test(text) && !/[/:%]/.test(text);
}

function sameAddress(a: string, b: string): boolean {
  try {
    return normalizeAddress(a).text === normalizeAddress(b).text;
  } catch {
    return false;
  }
}

/**
 * The interface `spec` names, checked for a group of `family` (or for
 * either, when the family is not known yet): it exists, has multicast on
 * (where the system says), and for an IPv4 group has an IPv4 address.
 * Throws MembershipInterfaceError saying what is wrong.
 */
export function resolveMembershipInterface(spec: string, family?: 4 | 6, table: LocalInterface[] = systemInterfaces()): MembershipInterface {
  if (!isInterfaceSpec(spec)) {
    throw new MembershipInterfaceError(`"${spec}" is not an interface name, index, or address`);
  }
  const literal = isIP(spec);
  let found: LocalInterface | undefined;
  if (literal !== 0) {
    found = table.find((i) => i.addresses.some((a) => a.family === literal && sameAddress(a.address, spec)));
    if (!found) throw new MembershipInterfaceError(`no interface of this host has the address ${spec}`);
  } else if (/^[0-9]+$/.test(spec)) {
    found = table.find((i) => i.index === Number(spec));
    if (!found) throw new MembershipInterfaceError(`no interface of this host has index ${spec}`);
  } else {
    found = table.find((i) => i.name === spec);
    if (!found) throw new MembershipInterfaceError(`no interface named "${spec}" on this host`);
  }
  if (found.multicast === false) throw new MembershipInterfaceError(`interface "${found.name}" has multicast off`);
  const ipv4 = literal === 4 ? spec : found.addresses.find((a) => a.family === 4)?.address;
  if (family === 4 && ipv4 === undefined) {
    throw new MembershipInterfaceError(`interface "${found.name}" has no IPv4 address to join an IPv4 group on`);
  }
  if (family === 6 && literal === 4) {
    throw new MembershipInterfaceError(`an IPv4 address cannot name the interface of an IPv6 group; give the interface's name`);
  }
  return { spec, name: found.name, ...(found.index !== undefined ? { index: found.index } : {}), ...(ipv4 !== undefined ? { ipv4 } : {}) };
}
