/**
 * The URLs `rqcast fetch` takes (docs/PROTOCOL.md §10.8, §10.10):
 * rqcast:// (a server) and flute:// (a multicast group, no server).
 *
 * rqcast URLs:
 *
 *   rqcast://HOST[:PORT][/CHANNELS][/NAME]
 *
 * - HOST: a DNS name, an IPv4 address, or an IPv6 address in brackets
 *   (RFC 3986 §3.2.2), e.g. rqcast://[::1]:4433.
 * - PORT: the server's control port, 1..65535 (default 4433, the port
 *   `rqcast serve` listens on by default).
 * - CHANNELS: comma-separated channel names (each 1..64 UTF-8 bytes,
 *   percent-encoded as needed). Empty or absent = the default channel, "main".
 * - NAME: the object's Content-Location in the FDT, percent-encoded; it may
 *   hold '/'. Absent = every object of the joined channels. A name on the
 *   default channel is written with an empty CHANNELS: rqcast://h:4433//NAME.
 * - One path segment, as people write it (rqcast://h:4433/movie.bin, no
 *   comma, no second '/'): a channel if the server has one of that name,
 *   else an object of the default channel (`segment`; one-segment.ts tries
 *   both). One that cannot be a channel name (over 64 bytes) is the object.
 *   A trailing '/' (rqcast://h:4433/hd/) says "a channel" only.
 */
import { isIP, isIPv6 } from 'net';
import { CHANNEL_NAME_MAX_BYTES, MAX_CHANNELS } from '../protocol/control-header';
import { addressBytes, isMulticastAddress } from '../support/address';
import { isInterfaceSpec } from '../transport/multicast/membership-interface';
import { InvalidUrlError } from './errors';

export const RQCAST_SCHEME = 'rqcast:';
export const DEFAULT_PORT = 4433;
export const DEFAULT_CHANNEL = 'main';

export interface RqcastUrl {
  /** Host name or address, without brackets. */
  host: string;
  port: number;
  /** Channel names as written; empty = the default channel. */
  channels: string[];
  /** Object name (Content-Location); undefined = every object. */
  name?: string;
  /**
   * The URL's one path segment (rqcast://HOST:PORT/SEGMENT): `channels` is
   * [SEGMENT], read first as a channel; if the server has none of that
   * name, it is an object of the default channel (one-segment.ts).
   */
  segment?: string;
}

/** The channel names a JOIN for this URL carries. */
export function joinChannels(url: RqcastUrl): string[] {
  return url.channels.length === 0 ? [DEFAULT_CHANNEL] : [...url.channels];
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function decodePart(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new InvalidUrlError(`bad percent-encoding in the ${what}`);
  }
}

function parseHostPort(authority: string): { host: string; port: number } {
  if (authority === '') throw new InvalidUrlError('missing host: expected rqcast://HOST:PORT');
  if (authority.includes('@')) throw new InvalidUrlError('user information is not allowed in an rqcast URL');
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw new InvalidUrlError('unclosed "[" in the host');
    host = authority.slice(1, close);
    const rest = authority.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new InvalidUrlError('unexpected text after "]"; expected ":PORT"');
    portText = rest === '' ? undefined : rest.slice(1);
    // Zone ids ("fe80::1%eth0") are written %25 in URLs (RFC 6874).
    const zone = host.indexOf('%25');
    const plain = zone < 0 ? host : host.slice(0, zone) + '%' + host.slice(zone + 3);
    if (!isIPv6(plain)) throw new InvalidUrlError(`"${host}" is not an IPv6 address`);
    host = plain;
  } else {
    const colons = authority.split(':').length - 1;
    if (colons > 1) throw new InvalidUrlError('IPv6 addresses must be in brackets: rqcast://[ADDRESS]:PORT');
    const colon = authority.indexOf(':');
    host = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (host === '') throw new InvalidUrlError('missing host: expected rqcast://HOST:PORT');
    if (/^[0-9.]+$/.test(host) && isIP(host) !== 4) throw new InvalidUrlError(`"${host}" is not a valid IPv4 address`);
    if (isIP(host) !== 4 && !HOSTNAME.test(host)) throw new InvalidUrlError(`"${host}" is not a valid host name or IPv4 address`);
  }
  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) throw new InvalidUrlError(`port "${portText}" is not a number 1..65535`);
    port = Number(portText);
    if (port < 1 || port > 65535) throw new InvalidUrlError(`port ${port} is not in 1..65535`);
  }
  return { host, port };
}

/** Why `n` cannot be a channel name a JOIN carries, or undefined. */
function channelNameProblem(n: string): string | undefined {
  if (n === '') return 'empty channel name in the channel list';
  if (Buffer.byteLength(n, 'utf8') > CHANNEL_NAME_MAX_BYTES) return `channel name longer than ${CHANNEL_NAME_MAX_BYTES} bytes`;
  // Lone surrogates do not survive UTF-8; the server would see another name.
  if (Buffer.from(n, 'utf8').toString('utf8') !== n) return 'channel name is not valid Unicode';
  return undefined;
}

function parseChannels(raw: string): string[] {
  if (raw === '') return [];
  const names = raw.split(',').map((part) => decodePart(part, 'channel list'));
  for (const n of names) {
    const problem = channelNameProblem(n);
    if (problem) throw new InvalidUrlError(problem);
  }
  if (names.length > MAX_CHANNELS) throw new InvalidUrlError(`at most ${MAX_CHANNELS} channels`);
  if (new Set(names).size !== names.length) throw new InvalidUrlError('a channel is listed twice');
  return names;
}

/** Parses an rqcast:// URL; throws InvalidUrlError saying what is wrong. */
export function parseRqcastUrl(text: string): RqcastUrl {
  if (typeof text !== 'string') throw new InvalidUrlError('URL must be a string');
  const schemeEnd = text.indexOf('://');
  if (schemeEnd < 0 || text.slice(0, schemeEnd + 1).toLowerCase() !== RQCAST_SCHEME) {
    throw new InvalidUrlError('URL must start with rqcast:// (rqcast://HOST:PORT[/CHANNELS][/NAME])');
  }
  const rest = text.slice(schemeEnd + 3);
  if (/[?#]/.test(rest)) throw new InvalidUrlError('"?" and "#" are not allowed; percent-encode them in names (%3F, %23)');
  if (/[\s\x00-\x1f\x7f]/.test(rest)) throw new InvalidUrlError(`spaces and control characters must be percent-encoded (e.g. ${JSON.stringify(text.replace(/[\s\x00-\x1f\x7f]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')))})`);
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const { host, port } = parseHostPort(authority);
  const url: RqcastUrl = { host, port, channels: [] };
  if (slash < 0) return url;
  const path = rest.slice(slash + 1);
  const second = path.indexOf('/');
  if (second < 0 && path !== '' && !path.includes(',')) {
    // One segment: a channel or an object of the default channel.
    const segment = decodePart(path, 'path');
    if (channelNameProblem(segment) === undefined) {
      url.channels = [segment];
      url.segment = segment;
    } else {
      url.name = segment;
    }
    return url;
  }
  url.channels = parseChannels(second < 0 ? path : path.slice(0, second));
  if (second >= 0) {
    const name = decodePart(path.slice(second + 1), 'object name');
    if (name !== '') url.name = name;
  }
  return url;
}

function encodeHost(host: string): string {
  if (!isIPv6(host.split('%')[0])) return host;
  return `[${host.replace('%', '%25')}]`;
}

/**
 * The canonical text of a URL; parseRqcastUrl(formatRqcastUrl(u)) equals u.
 * One channel and no name is written with a trailing '/' (a channel only),
 * unless the URL is a one-segment one.
 */
export function formatRqcastUrl(url: RqcastUrl): string {
  let s = `rqcast://${encodeHost(url.host)}:${url.port}`;
  const channels = url.channels.map(encodeURIComponent).join(',');
  if (url.segment !== undefined) {
    s += `/${encodeURIComponent(url.segment)}`;
  } else if (url.name !== undefined && url.name !== '') {
    s += `/${channels}/${url.name.split('/').map(encodeURIComponent).join('/')}`;
  } else if (url.channels.length === 1) {
    s += `/${channels}/`;
  } else if (channels !== '') {
    s += `/${channels}`;
  }
  return s;
}

// ----------------------------------------------------------------- flute --

/*
 * FLUTE URLs: a multicast group to receive without any server
 * (docs/PROTOCOL.md §10.10, RFC 6726 §1.1.4: a FLUTE session is the
 * (source, TSI) pair on a channel):
 *
 *   flute://GROUP:PORT[/NAME]?tsi=N[&source=ADDR][&if=IFACE]
 *
 * - GROUP: a numeric multicast address, IPv4 224.0.0.0/4 or IPv6 ff00::/8
 *   in brackets (no zone: the interface is `if=`). PORT: 1..65535, required.
 * - NAME: one object's Content-Location, percent-encoded; absent = every
 *   object of the FDT.
 * - tsi: the LCT Transport Session Identifier, decimal, < 2^48 (RFC 5651
 *   §5.1: TSI is at most 48 bits). Required: a group may carry several
 *   sessions.
 * - source: the sender's unicast address (same family as GROUP, IPv6 may be
 *   in brackets): a source-specific join (RFC 4607), and packets from any
 *   other source are dropped.
 * - if: the interface to join on (an address, a name or an index).
 */

const FLUTE_SCHEME = 'flute:';
/** LCT TSI is at most 48 bits (RFC 5651 §5.1). */
const MAX_TSI = 2 ** 48 - 1;

export interface FluteUrl {
  /** Numeric multicast address, without brackets. */
  group: string;
  port: number;
  tsi: number;
  /** The sender's address: source-specific reception. */
  source?: string;
  /** The interface to join on. */
  interface?: string;
  /** Object name (Content-Location); undefined = every object. */
  name?: string;
}

function parseGroupAuthority(authority: string): { group: string; port: number } {
  const usage = 'expected flute://GROUP:PORT?tsi=N (an IPv6 group in brackets)';
  if (authority === '') throw new InvalidUrlError(`missing group: ${usage}`);
  if (authority.includes('@')) throw new InvalidUrlError('user information is not allowed in a flute URL');
  let group: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw new InvalidUrlError('unclosed "[" in the group');
    group = authority.slice(1, close);
    const rest = authority.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new InvalidUrlError('unexpected text after "]"; expected ":PORT"');
    portText = rest === '' ? undefined : rest.slice(1);
    if (group.includes('%')) throw new InvalidUrlError('a group takes no zone; give the interface with if=');
    if (!isIPv6(group)) throw new InvalidUrlError(`"${group}" is not an IPv6 address`);
  } else {
    if (authority.split(':').length - 1 > 1) throw new InvalidUrlError('an IPv6 group must be in brackets: flute://[GROUP]:PORT');
    const colon = authority.indexOf(':');
    group = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (isIP(group) !== 4) throw new InvalidUrlError(`"${group}" is not a numeric group address (a group is never a host name)`);
  }
  if (!isMulticastAddress(group)) throw new InvalidUrlError(`${group} is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)`);
  if (portText === undefined) throw new InvalidUrlError(`missing port: ${usage}`);
  if (!/^[0-9]{1,5}$/.test(portText)) throw new InvalidUrlError(`port "${portText}" is not a number 1..65535`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new InvalidUrlError(`port ${port} is not in 1..65535`);
  return { group, port };
}

function parseSource(raw: string, group: string): string {
  const text = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  if (text.includes('%')) throw new InvalidUrlError('a source takes no zone');
  const s = isIP(text) !== 0 ? addressBytes(text) : undefined;
  if (!s) throw new InvalidUrlError(`source "${raw}" is not a numeric IP address`);
  const g = addressBytes(group) as { family: 4 | 6 };
  if (s.family !== g.family) throw new InvalidUrlError(`source ${text} is not of the group's family (IPv${g.family})`);
  if (isMulticastAddress(text) || s.bytes.every((b) => b === 0)) throw new InvalidUrlError(`source ${text} is not a unicast address`);
  return text;
}

/** Parses a flute:// URL; throws InvalidUrlError saying what is wrong. */
export function parseFluteUrl(text: string): FluteUrl {
  if (typeof text !== 'string') throw new InvalidUrlError('URL must be a string');
  const schemeEnd = text.indexOf('://');
  if (schemeEnd < 0 || text.slice(0, schemeEnd + 1).toLowerCase() !== FLUTE_SCHEME) {
    throw new InvalidUrlError('URL must start with flute:// (flute://GROUP:PORT?tsi=N[&source=ADDR][&if=IFACE])');
  }
  const rest = text.slice(schemeEnd + 3);
  if (rest.includes('#')) throw new InvalidUrlError('"#" is not allowed; percent-encode it in names (%23)');
  if (/[\s\x00-\x1f\x7f]/.test(rest)) throw new InvalidUrlError(`spaces and control characters must be percent-encoded (e.g. ${JSON.stringify(text.replace(/[\s\x00-\x1f\x7f]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')))})`);
  const q = rest.indexOf('?');
  if (q < 0) throw new InvalidUrlError('missing ?tsi=N: a group may carry several FLUTE sessions');
  const before = rest.slice(0, q);
  const query = rest.slice(q + 1);
  const slash = before.indexOf('/');
  const { group, port } = parseGroupAuthority(slash < 0 ? before : before.slice(0, slash));
  const url: FluteUrl = { group, port, tsi: 0 };
  if (slash >= 0) {
    const name = decodePart(before.slice(slash + 1), 'object name');
    if (name !== '') url.name = name;
  }
  const seen = new Set<string>();
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (key === '') throw new InvalidUrlError('empty parameter in the query');
    if (!['tsi', 'source', 'if'].includes(key)) throw new InvalidUrlError(`unknown parameter "${key}" (tsi, source, if)`);
    if (seen.has(key)) throw new InvalidUrlError(`"${key}" is given twice`);
    seen.add(key);
    const value = eq < 0 ? '' : decodePart(part.slice(eq + 1), `${key} parameter`);
    if (value === '') throw new InvalidUrlError(`"${key}" needs a value`);
    if (key === 'tsi') {
      if (!/^[0-9]{1,15}$/.test(value) || Number(value) > MAX_TSI) throw new InvalidUrlError(`tsi "${value}" is not an integer 0..2^48-1`);
      url.tsi = Number(value);
    } else if (key === 'source') {
      url.source = parseSource(value, group);
    } else {
      if (!isInterfaceSpec(value)) throw new InvalidUrlError(`if "${value}" is not an interface name, index or address`);
      url.interface = value;
    }
  }
  if (!seen.has('tsi')) throw new InvalidUrlError('missing tsi=N: a group may carry several FLUTE sessions');
  return url;
}

/** The canonical text of a flute URL; parseFluteUrl(formatFluteUrl(u)) equals u. */
export function formatFluteUrl(url: FluteUrl): string {
  const group = url.group.includes(':') ? `[${url.group}]` : url.group;
  let s = `flute://${group}:${url.port}`;
  if (url.name !== undefined && url.name !== '') s += `/${url.name.split('/').map(encodeURIComponent).join('/')}`;
  s += `?tsi=${url.tsi}`;
  if (url.source !== undefined) s += `&source=${encodeURIComponent(url.source)}`;
  if (url.interface !== undefined) s += `&if=${encodeURIComponent(url.interface)}`;
  return s;
}

/** A URL `rqcast fetch` takes: a server (rqcast://) or a group (flute://). */
export type FetchUrl = { scheme: 'rqcast'; url: RqcastUrl } | { scheme: 'flute'; url: FluteUrl };

/** Parses either kind, by its scheme; throws InvalidUrlError. */
export function parseFetchUrl(text: string): FetchUrl {
  if (typeof text !== 'string') throw new InvalidUrlError('URL must be a string');
  if (/^flute:\/\//i.test(text)) return { scheme: 'flute', url: parseFluteUrl(text) };
  return { scheme: 'rqcast', url: parseRqcastUrl(text) };
}
