/**
 * The option parsers every rqcast command shares, so that one kind of value
 * is read by one rule whichever command takes it (serve and fetch used to
 * disagree on `--memory 1.5`). Each parser is a plain function from the
 * option's text to its value that throws a UsageError; `optionParser` adapts
 * one to commander, whose parse error main.ts turns into exit 2, printed as
 * "error: option '--memory <mib>' argument '1.5' is invalid. <message>".
 *
 * Rules:
 * - integers (ports, counts, bytes, MiB) are decimal digits only: no sign,
 *   fraction, exponent or hex;
 * - other numbers (rates, percentages) are whatever Number() reads, finite;
 * - surrounding white space is ignored.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidArgumentError } from 'commander';
import { TRANSPORT_MODES, TransportMode } from '../client/fallback';
import { MembershipError } from '../transport/multicast/membership-errors';
import { resolveMembershipInterface } from '../transport/multicast/membership-interface';
import { addressBytes, formatAddress, multicastAddressBytes } from '../support/address';
import { findInterface, type HostInterfaces, isLocalUnicast } from '../transport/multicast/group-config';
import { UsageError } from './errors';

/** Reads one option's text; throws UsageError with a message that says what is expected. */
export type Parser<T> = (text: string) => T;

/** commander's argParser for `parse`: a UsageError becomes commander's usage error, with the same message. */
export function optionParser<T>(parse: Parser<T>): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (e) {
      if (e instanceof UsageError) throw new InvalidArgumentError(e.message);
      throw e;
    }
  };
}

/** commander's argParser for a repeatable option: every occurrence parsed, in order. */
export function repeatableOptionParser<T>(parse: Parser<T>): (text: string, previous: T[] | undefined) => T[] {
  const one = optionParser(parse);
  // A new array each time: commander hands back the option's default, which must stay empty.
  return (text, previous) => [...(previous ?? []), one(text)];
}

// --------------------------------------------------------------- numbers --

function decimalInteger(text: string): number | undefined {
  const t = text.trim();
  if (!/^[0-9]+$/.test(t)) return undefined;
  const v = Number(t);
  return Number.isSafeInteger(v) ? v : undefined;
}

function finiteNumber(text: string): number | undefined {
  if (text.trim() === '') return undefined; // Number('') is 0
  const v = Number(text);
  return Number.isFinite(v) ? v : undefined;
}

/** A parser of integers in min..max; `what` names the value in the message ("symbol size"). */
export function integerIn(min: number, max: number, what: string, unit?: string): Parser<number> {
  const message = `${what} is an integer ${min}..${max}${unit === undefined ? '' : ` (${unit})`}`;
  return (text) => {
    const v = decimalInteger(text);
    if (v === undefined || v < min || v > max) throw new UsageError(message);
    return v;
  };
}

/** An integer >= 1 (a count). */
export const parsePositiveInteger: Parser<number> = integerIn(1, Number.MAX_SAFE_INTEGER, 'a count');

/** A number > 0 and at most `max`. */
export function positiveNumberUpTo(max: number, what: string): Parser<number> {
  return (text) => {
    const v = finiteNumber(text);
    if (v === undefined || v <= 0 || v > max) throw new UsageError(what);
    return v;
  };
}

/** A port, 0..65535 (0: any free port, for a socket that binds). */
export const parsePort: Parser<number> = (text) => {
  const v = decimalInteger(text);
  if (v === undefined || v > 65535) throw new UsageError('a port is an integer 0..65535');
  return v;
};

/** Largest rate accepted, Mbit/s: 1 Tbit/s, far beyond any NIC, so a typo in units is caught. */
export const MAX_RATE_MBPS = 1_000_000;

const RATE_RULE = 'a rate is a positive number of Mbit/s';

/**
 * What `--rate 0` gets: rqcast offers no uncapped stream (issue 12). Its
 * UDP and multicast streams have no congestion control, and one stream
 * serves every member of a channel, so nothing but the rate keeps it from
 * flooding the slowest path (README "Choosing a rate").
 */
export const UNCAPPED_RATE_REFUSED =
  `${RATE_RULE}: 0 (no cap) is not offered, because a channel's stream has no congestion control ` +
  '(README "Choosing a rate"); give the rate of the slowest path to your receivers, e.g. 100';

/** A pacing rate in Mbit/s (10^6 bit/s of packet bytes), > 0; fractions allowed. */
export const parseRateMbps: Parser<number> = (text) => {
  if (finiteNumber(text) === 0) throw new UsageError(UNCAPPED_RATE_REFUSED);
  return positiveNumberUpTo(MAX_RATE_MBPS, RATE_RULE)(text);
};

/**
 * Largest memory budget, MiB (1 PiB): MiB * 2^20 stays an exact integer
 * number of bytes.
 */
export const MAX_MEBIBYTES = 2 ** 30;

/**
 * A memory budget in MiB (2^20 bytes), for serve's and fetch's --memory
 * alike: a whole number, 1..2^30. Whole numbers because a budget is only
 * ever compared with whole source blocks, each far larger than a fraction of
 * a MiB could matter to; fetch refused fractions first, serve now does too.
 */
export const parseMebibytes: Parser<number> = (text) => {
  const v = decimalInteger(text);
  if (v === undefined || v < 1 || v > MAX_MEBIBYTES) throw new UsageError(`a memory size is a whole number of MiB, 1..${MAX_MEBIBYTES}`);
  return v;
};

/** A percentage in [0, max] (or [0, max) when `maxExcluded`), fractions allowed. */
export function percentage(max: number, options: { maxExcluded?: boolean; of?: string } = {}): Parser<number> {
  const range = options.maxExcluded ? `[0, ${max})` : `[0, ${max}]`;
  const message = `a percentage${options.of === undefined ? '' : ` of ${options.of}`} in ${range}`;
  return (text) => {
    const v = finiteNumber(text);
    if (v === undefined || v < 0 || v > max || (options.maxExcluded === true && v === max)) throw new UsageError(message);
    return v;
  };
}

// ------------------------------------------------------------------ time --

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "500ms", "30s", "2m", "1h", "1.5s", or a bare number of seconds -> ms (> 0, whole). */
export const parseDuration: Parser<number> = (text) => {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new UsageError(`"${text}" is not a duration (e.g. 500ms, 30s, 2m, 1h)`);
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']);
  if (!(ms > 0) || !Number.isSafeInteger(ms)) throw new UsageError(`"${text}" must be a positive duration`);
  return ms;
};

/** An absolute time, ISO 8601 date-time ("2030-01-01T12:00:00Z") -> Unix ms. */
export const parseAbsoluteTime: Parser<number> = (text) => {
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) throw new UsageError(`"${text}" is not an ISO 8601 date-time (e.g. 2030-01-01T12:00:00Z)`);
  const t = Date.parse(text);
  if (!Number.isFinite(t)) throw new UsageError(`"${text}" is not a valid date-time`);
  return t;
};

// -------------------------------------------------------------- addresses --

export interface HostPort {
  /** A host name, an IPv4 literal, or an IPv6 literal without its brackets. */
  host: string;
  port: number;
}

/**
 * HOST:PORT, IPv6 literals in brackets ("[ff02::1]:5000", as in URLs, RFC
 * 3986 §3.2.2), port 1..65535 (a destination, never "any port"). For
 * addresses such as a multicast GROUP:PORT; whether the host is a group is
 * the caller's check.
 */
export const parseHostPort: Parser<HostPort> = (text) => {
  const t = text.trim();
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]+)$/.exec(t);
  const message = `"${text}" is not HOST:PORT (IPv6 hosts in brackets, port 1..65535)`;
  if (!m) throw new UsageError(message);
  const host = m[1] ?? m[2];
  if (m[1] !== undefined && !isIPv6(host)) throw new UsageError(message);
  if (m[2] !== undefined && !/^[A-Za-z0-9.-]+$/.test(host)) throw new UsageError(message);
  const port = decimalInteger(m[3]);
  if (port === undefined || port < 1 || port > 65535) throw new UsageError(message);
  return { host, port };
};

/** A multicast group and its UDP port (serve --multicast, --channel ...@GROUP:PORT). */
export interface MulticastGroupSpec {
  /** Numeric IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) address, canonical text, without brackets. */
  group: string;
  port: number;
}

const GROUP_PORT_FORM = 'GROUP:PORT (a multicast address, 224.0.0.0/4 or ff00::/8, IPv6 in brackets, and a port 1..65535)';

/** GROUP:PORT: a numeric multicast address (IPv6 in brackets: "[ff3e::1]:5000") and a port 1..65535. */
export const parseMulticastGroup: Parser<MulticastGroupSpec> = (text) => {
  let hp: HostPort;
  try {
    hp = parseHostPort(text);
  } catch {
    throw new UsageError(`"${text}" is not ${GROUP_PORT_FORM}`);
  }
  const a = multicastAddressBytes(hp.host);
  if (!a) throw new UsageError(`${hp.host} is not a multicast group (224.0.0.0/4 or ff00::/8)`);
  return { group: formatAddress(a.bytes), port: hp.port };
};

/** An IPv4 TTL / IPv6 hop limit, 0..255 (one octet in both headers, RFC 791, RFC 8200 §3). */
export const parseMulticastTtl: Parser<number> = integerIn(0, 255, 'a multicast TTL', 'hops');

/**
 * A network interface of this host, by name ("eth0") or by one of its
 * addresses ("192.0.2.1"): checked now, so a typo fails before any file is
 * read. `interfaces` is for tests.
 */
export function networkInterface(interfaces?: HostInterfaces): Parser<string> {
  return (text) => {
    const t = text.trim();
    if (!findInterface(t, interfaces)) throw new UsageError(`"${text}" is neither a network interface nor an address of this host`);
    return t;
  };
}

/** A unicast IPv4 or IPv6 address of this host (serve --multicast-source). `interfaces` is for tests. */
export function localUnicastAddress(interfaces?: HostInterfaces): Parser<string> {
  return (text) => {
    const t = text.trim();
    const a = addressBytes(t);
    if (!a || !isLocalUnicast(t, a.family, interfaces)) throw new UsageError(`"${text}" is not a unicast address of this host`);
    return formatAddress(a.bytes);
  };
}

/**
 * `serve --bind`: the address of the control socket. A wildcard (0.0.0.0,
 * ::, or another spelling of them) or a unicast address of this host; a
 * host name or an address the host does not have is a usage error, said
 * before anything starts (binding would fail with ENOTFOUND or
 * EADDRNOTAVAIL, which read like faults of the server).
 */
export function bindAddress(interfaces?: HostInterfaces): Parser<string> {
  return (text) => {
    const t = text.trim();
    const a = addressBytes(t.split('%')[0]);
    if (!a) throw new UsageError(`--bind takes an IP address, not a name: 0.0.0.0 or :: for every address of this host, or one of its addresses`);
    if (a.bytes.every((b) => b === 0)) return a.family === 4 ? '0.0.0.0' : '::';
    if (!isLocalUnicast(t, a.family, interfaces)) throw new UsageError(`${t} is not an address of this host: give one of its addresses, or 0.0.0.0 or :: for every address`);
    return t;
  };
}

// ---------------------------------------------------------------- secrets --

/** A parser of secrets in hex, at least `minBytes` bytes (e.g. a cookie master secret). */
export function hexSecret(minBytes: number): Parser<Uint8Array> {
  return (text) => {
    if (!/^([0-9a-fA-F]{2})+$/.test(text) || text.length < 2 * minBytes) {
      throw new UsageError(`the secret is at least ${minBytes} bytes in hex (${2 * minBytes}+ hex digits)`);
    }
    return new Uint8Array(Buffer.from(text, 'hex'));
  };
}

// ------------------------------------------------- fetch: multicast (§10.10) --

/** `fetch --transport`: how the channels are received. */
export const parseTransportMode: Parser<TransportMode> = (text) => {
  const t = text.trim();
  if (!(TRANSPORT_MODES as readonly string[]).includes(t)) throw new UsageError(`a transport is one of ${TRANSPORT_MODES.join(', ')}`);
  return t as TransportMode;
};

/**
 * `fetch --multicast-if`: the interface groups are joined on, an interface
 * of this host given by address, name or index, with multicast on. Checked
 * here so that a typo exits 2 before anything is sent.
 */
export const parseJoinInterface: Parser<string> = (text) => {
  const t = text.trim();
  try {
    resolveMembershipInterface(t);
  } catch (e) {
    if (e instanceof MembershipError) throw new UsageError(e.message);
    throw e;
  }
  return t;
};

// ----------------------------------------------------------- TCP (issue 9) --

/** `serve --tcp [ADDR:]PORT`: where the TCP transport accepts connections; no address = the server's own. */
export interface TcpListenSpec {
  /** A numeric IPv4 address of this host, or 0.0.0.0 (absent: --bind's, when IPv4). */
  address?: string;
  port: number;
}

/** [ADDR:]PORT, ADDR a numeric IPv4 address (TCP is IPv4 only), PORT 1..65535. */
export const parseTcpListen: Parser<TcpListenSpec> = (text) => {
  const t = text.trim();
  const message = `"${text}" is not [ADDR:]PORT (an IPv4 address, TCP is IPv4 only, and a port 1..65535)`;
  const m = /^(?:([0-9.]+):)?([0-9]+)$/.exec(t);
  if (!m) throw new UsageError(message);
  const port = decimalInteger(m[2]);
  if (port === undefined || port < 1 || port > 65535) throw new UsageError(message);
  if (m[1] === undefined) return { port };
  if (!isIPv4(m[1])) throw new UsageError(message);
  return { address: m[1], port };
};

/** `fetch --tcp HOST:PORT`: where the server's TCP transport is (a name or an IPv4 address; IPv6 in brackets is refused later by the connect). */
export const parseTcpEndpoint: Parser<HostPort> = parseHostPort;

// ---------------------------------------------------- metrics (issue 13) --

/** `serve --metrics [ADDR:]PORT`: where the Prometheus endpoint listens. */
export interface MetricsListenSpec {
  /** A numeric IPv4 or IPv6 address (absent: 127.0.0.1, this host only). */
  address?: string;
  /** 0: any free port (the listening line says which). */
  port: number;
}

/** [ADDR:]PORT, ADDR a numeric IPv4 address or an IPv6 one in brackets, PORT 0..65535. */
export const parseMetricsListen: Parser<MetricsListenSpec> = (text) => {
  const t = text.trim();
  const message = `"${text}" is not [ADDR:]PORT (e.g. 9464, 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464)`;
  const m = /^(?:(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):)?([0-9]+)$/.exec(t);
  if (!m) throw new UsageError(message);
  const port = decimalInteger(m[3]);
  if (port === undefined || port > 65535) throw new UsageError(message);
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) throw new UsageError(message);
    return { address: m[1], port };
  }
  if (m[2] !== undefined) {
    if (!isIPv4(m[2])) throw new UsageError(message);
    return { address: m[2], port };
  }
  return { port };
};
