/**
 * rqcast URLs (docs/PROTOCOL.md, "URL"):
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
 */
import { isIP, isIPv6 } from 'net';
import { CHANNEL_NAME_MAX_BYTES, MAX_CHANNELS } from '../protocol/control-header';
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

function parseChannels(raw: string): string[] {
  if (raw === '') return [];
  const names = raw.split(',').map((part) => decodePart(part, 'channel list'));
  for (const n of names) {
    if (n === '') throw new InvalidUrlError('empty channel name in the channel list');
    const bytes = Buffer.byteLength(n, 'utf8');
    if (bytes > CHANNEL_NAME_MAX_BYTES) throw new InvalidUrlError(`channel name longer than ${CHANNEL_NAME_MAX_BYTES} bytes`);
    // Lone surrogates do not survive UTF-8; the server would see another name.
    if (Buffer.from(n, 'utf8').toString('utf8') !== n) throw new InvalidUrlError('channel name is not valid Unicode');
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
  if (/[\s\x00-\x1f\x7f]/.test(rest)) throw new InvalidUrlError('spaces and control characters must be percent-encoded');
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const { host, port } = parseHostPort(authority);
  const url: RqcastUrl = { host, port, channels: [] };
  if (slash < 0) return url;
  const path = rest.slice(slash + 1);
  const second = path.indexOf('/');
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

/** The canonical text of a URL; parseRqcastUrl(formatRqcastUrl(u)) equals u. */
export function formatRqcastUrl(url: RqcastUrl): string {
  let s = `rqcast://${encodeHost(url.host)}:${url.port}`;
  const channels = url.channels.map(encodeURIComponent).join(',');
  if (url.name !== undefined && url.name !== '') {
    s += `/${channels}/${url.name.split('/').map(encodeURIComponent).join('/')}`;
  } else if (channels !== '') {
    s += `/${channels}`;
  }
  return s;
}
