/**
 * serve's own options (lib/cli/serve.ts): the shape commander hands over
 * (ServeCliOptions), the parsers of --channel, --live, --block-ms,
 * --symbol-size, --pass-overhead, --server-index and --servers, and the
 * channels and server group the command line asks for. The parsers every
 * command shares are options.ts's.
 */
import * as path from 'node:path';
import { type ChannelConfig, DEFAULT_CHANNEL } from '../server/config';
import { MAX_GROUP_SERVERS, type ServerGroup } from '../content/server-group';
import { UsageError } from './errors';
import type { LogFormat, LogLevel } from './logging';
import { integerIn, type MetricsListenSpec, type MulticastGroupSpec, parseMulticastGroup, parseRateMbps, percentage, type TcpListenSpec } from './options';

/** The largest stream packet (an FDT packet) is 48 + T bytes; an IPv4 UDP datagram carries at most 65507. */
export const MAX_SYMBOL_SIZE = 65_456;
/** The cookie master secret's least length (lib/session/cookie.ts refuses shorter). */
export const MIN_SECRET_BYTES = 16;

/** A --channel argument: NAME:PATH[,PATH...][:RATE][@GROUP:PORT]. */
export interface ChannelSpec {
  name: string;
  paths: string[];
  rateMbps?: number;
  /** The group the channel is also sent to. */
  multicast?: MulticastGroupSpec;
}

export interface ServeCliOptions {
  port: number;
  bind: string;
  rate: number;
  /** --channel, in the order given; undefined when none (commander shows no "(default: [])"). */
  channel?: ChannelSpec[];
  symbolSize: number;
  /** MiB of prepared blocks (--memory). */
  memory: number;
  /** Percent of K (--pass-overhead). */
  passOverhead: number;
  /** commander's --no-code: code === false. */
  code: boolean;
  secret?: Uint8Array;
  /** --max-sessions-per-address: sessions one IPv4 address or IPv6 /64 may hold. */
  maxSessionsPerAddress?: number;
  /** --multicast: the group of channel main. */
  multicast?: MulticastGroupSpec;
  /** --multicast-ttl; commander leaves it undefined unless given (its default shows in --help only). */
  multicastTtl?: number;
  /** --multicast-if: an interface name or address of this host. */
  multicastIf?: string;
  /** --multicast-source: the announced source of every group. */
  multicastSource?: string;
  /** --tcp: true when given bare (the control port's number on the server's address). */
  tcp?: true | TcpListenSpec;
  /** --tcp-gso: segments per GSO packet at most (0: none). */
  tcpGso?: number;
  /** --settle: ms a new or changed file must stay unchanged before it is announced. */
  settle?: number;
  /** commander's --no-watch: watch === false. */
  watch?: boolean;
  /** --follow-symlinks: serve links under a DIR that lead out of it. */
  followSymlinks?: boolean;
  /** --dotfiles: serve hidden files and directories under a DIR. */
  dotfiles?: boolean;
  /** --metrics: where the Prometheus endpoint listens. */
  metrics?: MetricsListenSpec;
  /** --log-level (absent: info, or error with --quiet). */
  logLevel?: LogLevel;
  /** --log-format (absent: json). */
  logFormat?: LogFormat;
  /** --server-index and --servers: this server's place in a group (both or neither). */
  serverIndex?: number;
  servers?: number;
  json?: boolean;
  quiet?: boolean;
  /** --live NAME[=PATH] (repeatable): live streams, each on a channel NAME of its own. */
  live?: LiveSpec[];
  /** --block-ms: a live segment closes this long after its first byte at the latest (default DEFAULT_LIVE_BLOCK_MS). */
  blockMs?: number;
  /** --keep (ms): live segments kept on disk this long (default DEFAULT_LIVE_KEEP_MS). */
  keep?: number;
}

/** A --live argument: NAME, and where its bytes come from (no PATH: stdin). */
export interface LiveSpec {
  name: string;
  input?: string;
}

/** --block-ms: a whole number of milliseconds, 10..60000. */
export function parseBlockMs(text: string): number {
  const v = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(v) || v < 10 || v > 60_000) throw new UsageError(`--block-ms ${text}: a whole number of milliseconds, 10..60000`);
  return v;
}

/** Bytes of a live segment at most: one source block (Z = 1 up to 8 MiB at T = 1280). */
export const LIVE_BLOCK_BYTES = 4 * 1024 * 1024;

/** Parses NAME[=PATH] of --live. */
export function parseLiveSpec(text: string): LiveSpec {
  const eq = text.indexOf('=');
  const name = eq < 0 ? text : text.slice(0, eq);
  if (!/^[A-Za-z0-9._~-]+$/.test(name) || name === '.' || name === '..') {
    throw new UsageError(`--live ${text}: NAME is one segment of A-Z a-z 0-9 . _ ~ - (e.g. --live cam or --live cam=/dev/stdin)`);
  }
  return eq < 0 ? { name } : { name, input: text.slice(eq + 1) };
}

export const parseSymbolSize = integerIn(16, MAX_SYMBOL_SIZE, 'symbol size', 'bytes');
export const parseServers = integerIn(1, MAX_GROUP_SERVERS, 'a number of servers');
export const parseServerIndex = integerIn(0, MAX_GROUP_SERVERS - 1, 'a server index');

/** --server-index and --servers, checked together (absent: a server alone). */
export function serverGroupOf(opts: Pick<ServeCliOptions, 'serverIndex' | 'servers'>): ServerGroup | undefined {
  const { serverIndex, servers } = opts;
  if (serverIndex === undefined && servers === undefined) return undefined;
  if (servers === undefined) throw new UsageError('--server-index needs --servers N: the number of servers in the group');
  const index = serverIndex ?? 0;
  if (index >= servers) throw new UsageError(`--server-index ${index} is not below --servers ${servers}: the members are numbered 0..${servers - 1}`);
  return { index, servers };
}
export const parsePassOverhead = percentage(1000, { of: 'K' });

/**
 * A trailing `@GROUP:PORT` of a --channel: the text after its last '@' when
 * that starts like a numeric group ('[' of an IPv6 literal, or a dotted
 * quad); any other '@' belongs to a file name ("icon@2x.png").
 */
const GROUP_SUFFIX = /@(\[[^@]*|[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[^@]*)?)$/;

/** NAME:PATH[,PATH...][:RATE][@GROUP:PORT] */
export function parseChannelSpec(text: string): ChannelSpec {
  let body = text;
  let multicast: MulticastGroupSpec | undefined;
  const suffix = GROUP_SUFFIX.exec(text);
  if (suffix) {
    try {
      multicast = parseMulticastGroup(suffix[1]);
    } catch (e) {
      throw e instanceof UsageError ? new UsageError(`--channel ${text}: ${e.message}`) : e;
    }
    body = text.slice(0, suffix.index);
  }
  const first = body.indexOf(':');
  if (first <= 0) throw new UsageError(`--channel ${text}: expected NAME:FILE[,FILE...][:RATE][@GROUP:PORT]`);
  const name = body.slice(0, first);
  let rest = body.slice(first + 1);
  let rateMbps: number | undefined;
  const last = rest.lastIndexOf(':');
  if (last >= 0) {
    rateMbps = parseRateMbps(rest.slice(last + 1));
    rest = rest.slice(0, last);
  }
  const paths = rest.split(',').filter((p) => p !== '');
  if (paths.length === 0) throw new UsageError(`--channel ${text}: no FILE`);
  if (Buffer.byteLength(name, 'utf8') > 64) throw new UsageError(`--channel ${text}: a channel name is 1..64 bytes`);
  const spec: ChannelSpec = { name, paths, rateMbps };
  if (multicast) spec.multicast = multicast;
  return spec;
}

/**
 * The ChannelConfig.multicast of a channel with group `spec`: the
 * server-wide --multicast-* options applied (the server checks them against
 * this host and fills in the default source).
 */
export function groupConfig(spec: MulticastGroupSpec, opts: ServeCliOptions): NonNullable<ChannelConfig['multicast']> {
  const g: NonNullable<ChannelConfig['multicast']> = { group: spec.group, port: spec.port };
  if (opts.multicastTtl !== undefined) g.ttl = opts.multicastTtl;
  if (opts.multicastIf !== undefined) g.interface = opts.multicastIf;
  if (opts.multicastSource !== undefined) g.source = opts.multicastSource;
  return g;
}

/** The channels the command line asks for: main (unless a --channel is named so) and every --channel, with their groups. */
export function channelConfigs(opts: ServeCliOptions, objectsOf: (spec: ChannelSpec) => string[]): ChannelConfig[] {
  const channels: ChannelConfig[] = [];
  const specs = opts.channel ?? [];
  const explicitMain = specs.find((c) => c.name === DEFAULT_CHANNEL);
  if (opts.multicast && explicitMain?.multicast) {
    throw new UsageError(`channel ${DEFAULT_CHANNEL} has two groups: --multicast and its --channel @GROUP:PORT`);
  }
  if (!explicitMain) {
    const main: ChannelConfig = { name: DEFAULT_CHANNEL, rateMbps: opts.rate };
    if (opts.multicast) main.multicast = groupConfig(opts.multicast, opts);
    channels.push(main);
  }
  for (const c of specs) {
    const config: ChannelConfig = { name: c.name, objects: objectsOf(c), rateMbps: c.rateMbps ?? opts.rate };
    const group = c.multicast ?? (c === explicitMain ? opts.multicast : undefined);
    if (group) config.multicast = groupConfig(group, opts);
    channels.push(config);
  }
  if (!channels.some((c) => c.multicast)) {
    const stray = [
      ['--multicast-ttl', opts.multicastTtl],
      ['--multicast-if', opts.multicastIf],
      ['--multicast-source', opts.multicastSource],
    ].find(([, v]) => v !== undefined);
    if (stray) throw new UsageError(`${String(stray[0])} needs a group: --multicast GROUP:PORT or --channel NAME:FILES@GROUP:PORT`);
  }
  return channels;
}

/** Whether `p` is `dir` or inside it. */
export function within(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
