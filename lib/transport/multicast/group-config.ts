/**
 * The server side of a multicast group: checking a channel's group against
 * this host before anything is sent (docs/PROTOCOL.md §10.10), and what the
 * replication engine's multicast sink is then given.
 *
 * - The group is a numeric IPv4 224.0.0.0/4 (RFC 5771) or IPv6 ff00::/8
 *   (RFC 4291 §2.7) address; the port 1..65535; the TTL / hop limit 0..255
 *   (an IPv4 TTL and an IPv6 hop limit are both one octet, RFC 791, RFC
 *   8200 §3), default 1: the link only, unless the operator says otherwise.
 * - The interface is an interface of this host, by name, or a local
 *   address. The engine sets the outgoing interface of IPv4 by address or
 *   name but of IPv6 by name or index only (IPV6_MULTICAST_IF, RFC 3493
 *   §5.2), so an address of an IPv6 group's interface is handed over as the
 *   name of the interface that holds it.
 * - The source is the address the group stream's socket binds to, so the
 *   packets carry it and JOINED can announce it for source-specific joins
 *   (RFC 4607 §1): a unicast address of this host, of the group's family.
 *   When none is given, the announced source is the interface's address
 *   (when the interface was given as one of the group's family), else the
 *   control socket's bind address when it is not a wildcard and of the
 *   group's family; else none, and receivers join any-source.
 *
 * Errors are InvalidServerConfigErrors (a bad server configuration, exit 2
 * on the command line) with a code of their own each. Unlike the errors
 * raised for network input, they name the value: it comes from the
 * operator, not from a peer.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { InvalidServerConfigError } from '../../errors';
import { addressBytes, formatAddress, multicastAddressBytes, unicastAddressBytes } from '../../support/address';
import { DEFAULT_MULTICAST_LOOP, DEFAULT_MULTICAST_TTL, type MulticastGroupConfig } from '../replicator-contract';

// The engine's defaults, which a checked group fills in.
export { DEFAULT_MULTICAST_LOOP, DEFAULT_MULTICAST_TTL } from '../replicator-contract';

/** This host's interfaces as `os.networkInterfaces()` reports them (injectable for tests). */
export type HostInterfaces = () => NodeJS.Dict<NetworkInterfaceInfo[]>;

/** A channel's multicast group is unusable on this host. */
export class MulticastConfigError extends InvalidServerConfigError {
  override readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** The group is not a numeric IPv4 or IPv6 multicast address. */
export class NotMulticastGroupError extends MulticastConfigError {
  static readonly code = 'ERR_MULTICAST_GROUP';
  constructor(message: string) {
    super(NotMulticastGroupError.code, message);
  }
}

/** The group's port is not 1..65535. */
export class MulticastPortError extends MulticastConfigError {
  static readonly code = 'ERR_MULTICAST_PORT';
  constructor(message: string) {
    super(MulticastPortError.code, message);
  }
}

/** The TTL / hop limit is not an integer 0..255. */
export class MulticastTtlError extends MulticastConfigError {
  static readonly code = 'ERR_MULTICAST_TTL';
  constructor(message: string) {
    super(MulticastTtlError.code, message);
  }
}

/** The interface is neither an interface of this host nor one of its addresses. */
export class UnknownInterfaceError extends MulticastConfigError {
  static readonly code = 'ERR_MULTICAST_INTERFACE';
  constructor(message: string) {
    super(UnknownInterfaceError.code, message);
  }
}

/** The source is not a unicast address of this host of the group's family. */
export class MulticastSourceError extends MulticastConfigError {
  static readonly code = 'ERR_MULTICAST_SOURCE';
  constructor(message: string) {
    super(MulticastSourceError.code, message);
  }
}

/** A group checked against this host: what the multicast sink is given, and what JOINED announces. */
export interface CheckedGroup {
  /** The group address in its canonical text form (dotted quad; RFC 5952 for IPv6). */
  group: string;
  family: 4 | 6;
  port: number;
  ttl: number;
  loop: boolean;
  /** The outgoing interface as the sink takes it (IPv4: address or name; IPv6: name); absent: the kernel's choice. */
  interface?: string;
  /** The announced source, which the sink's socket binds to; absent: any-source. */
  source?: string;
}

export interface GroupCheckOptions {
  /** The control socket's bind address (RqcastServerOptions.host): the last default of the source. */
  bindHost?: string;
  /** Prefix of every error message, e.g. "channel main". */
  what?: string;
  interfaces?: HostInterfaces;
}

/**
 * Checks a channel's group against this host and fills in the defaults.
 * Throws a MulticastConfigError naming what is wrong.
 */
export function checkMulticastGroup(config: MulticastGroupConfig, options: GroupCheckOptions = {}): CheckedGroup {
  const prefix = options.what === undefined ? '' : `${options.what}: `;
  const interfaces = options.interfaces ?? networkInterfaces;
  const group = typeof config.group === 'string' ? multicastAddressBytes(config.group) : undefined;
  if (!group) {
    throw new NotMulticastGroupError(`${prefix}multicast group ${String(config.group)} is not a multicast address (224.0.0.0/4 or ff00::/8)`);
  }
  if (!Number.isInteger(config.port) || config.port < 1 || config.port > 0xffff) {
    throw new MulticastPortError(`${prefix}multicast port ${String(config.port)} is not 1..65535`);
  }
  const ttl = config.ttl ?? DEFAULT_MULTICAST_TTL;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) {
    throw new MulticastTtlError(`${prefix}multicast TTL ${String(ttl)} is not an integer 0..255`);
  }
  const loop = config.loop ?? DEFAULT_MULTICAST_LOOP;
  if (typeof loop !== 'boolean') throw new MulticastConfigError('ERR_MULTICAST_LOOP', `${prefix}multicast loop must be true or false`);

  const out: CheckedGroup = { group: formatAddress(group.bytes), family: group.family, port: config.port, ttl, loop };
  let interfaceAddress: string | undefined;
  if (config.interface !== undefined) {
    const found = findInterface(config.interface, interfaces);
    if (!found) {
      throw new UnknownInterfaceError(`${prefix}multicast interface ${String(config.interface)} is neither an interface nor an address of this host`);
    }
    if (found.address !== undefined && addressBytes(found.address)?.family === group.family) interfaceAddress = found.address;
    // IPv4 takes the interface by its address; IPv6 only by name (or index).
    out.interface = group.family === 4 && interfaceAddress !== undefined ? interfaceAddress : found.name;
  }
  if (config.source !== undefined) {
    if (!isLocalUnicast(config.source, group.family, interfaces)) {
      throw new MulticastSourceError(
        `${prefix}multicast source ${String(config.source)} is not a unicast IPv${group.family} address of this host (the group ${out.group} is IPv${group.family})`,
      );
    }
    out.source = canonical(config.source);
  } else {
    const fallback = [interfaceAddress, options.bindHost].find((a) => a !== undefined && isLocalUnicast(a, group.family, interfaces));
    if (fallback !== undefined) out.source = canonical(fallback);
  }
  return out;
}

/** What a replicator's multicast sink is given for a checked group. */
export function sinkConfig(g: CheckedGroup): MulticastGroupConfig {
  const out: MulticastGroupConfig = { group: g.group, port: g.port, ttl: g.ttl, loop: g.loop };
  if (g.interface !== undefined) out.interface = g.interface;
  if (g.source !== undefined) out.source = g.source;
  return out;
}

/**
 * The interface `text` names: an interface of this host by name, or the
 * interface holding the address `text` (an IPv6 zone is ignored: the
 * address alone says which interface). Undefined when there is none.
 */
export function findInterface(text: string, interfaces: HostInterfaces = networkInterfaces): { name: string; address?: string } | undefined {
  if (typeof text !== 'string' || text === '') return undefined;
  const all = interfaces();
  if (all[text] !== undefined) return { name: text };
  const wanted = keyOf(text);
  if (wanted === undefined) return undefined;
  for (const [name, infos] of Object.entries(all)) {
    if (infos?.some((i) => keyOf(i.address) === wanted)) return { name, address: canonical(text.split('%')[0]) };
  }
  return undefined;
}

/** Whether `address` is a unicast address of this host of IP version `family` (4 or 6). */
export function isLocalUnicast(address: string, family: 4 | 6, interfaces: HostInterfaces = networkInterfaces): boolean {
  if (typeof address !== 'string' || !unicastAddressBytes(address, family)) return false;
  const wanted = keyOf(address);
  return Object.values(interfaces()).some((infos) => infos?.some((i) => keyOf(i.address) === wanted));
}

/**
 * Identity of an address literal: its family and canonical text, the zone
 * dropped; undefined when it is none. By family, so that an IPv4-mapped
 * IPv6 literal is not taken for the IPv4 address an IPv6 socket cannot
 * bind to.
 */
function keyOf(address: string): string | undefined {
  const a = addressBytes(address.split('%')[0]);
  return a === undefined ? undefined : `${a.family} ${formatAddress(a.bytes)}`;
}

function canonical(address: string): string {
  return formatAddress((addressBytes(address) as { bytes: Uint8Array }).bytes);
}
