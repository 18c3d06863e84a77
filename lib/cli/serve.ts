/**
 * `rqcast serve FILE|DIR... [--port 4433] [--bind 0.0.0.0] [--rate 100]
 *  [--channel NAME:FILE,FILE[:RATE][@GROUP:PORT]]... [--multicast GROUP:PORT]
 *  [--multicast-ttl 1] [--multicast-if ADDR|NAME] [--multicast-source ADDR]
 *  [--tcp [ADDR:]PORT] [--symbol-size 1280] [--no-code] [--memory 512]
 *  [--pass-overhead 15] [--secret HEX] [--max-sessions-per-address 64]
 *  [--metrics [ADDR:]PORT] [--log-level info] [--log-format json|pretty]
 *  [--server-index I --servers N]
 *  [--json] [--quiet]`
 *
 * - Every FILE/DIR (positional or named in a --channel) goes into one
 *   catalogue; TOIs follow the positional arguments, then the --channel
 *   paths not already covered by them.
 * - Channel `main` carries every object unless a --channel is named main.
 *   --channel NAME:PATHS[:RATE] adds a channel with the objects under those
 *   paths (files, or directories: every object read from them), paced at
 *   RATE Mbit/s (default --rate).
 * - Rates are Mbit/s (10^6 bit/s) of packet bytes, per channel.
 * - Multicast (docs/PROTOCOL.md §10.10): --multicast GROUP:PORT sends channel
 *   main to that group too, `@GROUP:PORT` at the end of a --channel does the
 *   same for that channel (IPv6 groups in brackets). --multicast-ttl,
 *   --multicast-if and --multicast-source apply to every group; without a
 *   group they are a usage error. The source is announced to clients; by
 *   default it is the --multicast-if address, else the --bind address when
 *   it is not a wildcard (lib/transport/multicast/group-config.ts).
 * - TCP (issue 9): --tcp also serves over TCP, on [ADDR:]PORT, or bare on
 *   the control port's number of the server's own address, so that one
 *   rqcast://HOST:PORT serves UDP and TCP alike. IPv4 only. It needs
 *   CAP_NET_RAW and CAP_NET_ADMIN, and a native addon built with the TCP
 *   server; it installs one nftables table, rqcast_tcp_PORT, removed on
 *   exit (and replaced at the next start after a SIGKILL).
 * - --memory MIB bounds the prepared blocks the server holds (files are
 *   read block by block, with pread, as the streams need them); channels
 *   whose blocks do not fit send a sliding window of blocks, each block
 *   getting K * (1 + --pass-overhead %) packets per pass (docs/PROTOCOL.md
 *   §10.3).
 * - Under a DIR only regular files inside it are served: symbolic links
 *   leading out of it, dotfiles and dot-directories are skipped and each
 *   is logged ("file skipped", with the reason) unless --follow-symlinks /
 *   --dotfiles; a name no client could write is skipped the same way.
 * - Server groups (issue 11, docs/PROTOCOL.md "Server groups"):
 *   --server-index I --servers N makes this server member I of N serving
 *   the same files; their repair ESIs are disjoint (ESI mod N = I), only
 *   member 0 sends the source symbols, so a client may combine them with
 *   no duplicate. --no-code ignores the index (every member sends every
 *   source symbol).
 * - Once the control port is bound, stdout gets one line,
 *   `listening on HOST:PORT` (with --json, one JSON object instead); logs
 *   (pino) go to stderr at --log-level (default info; --quiet: error), as
 *   JSON lines or, with --log-format pretty, one line each for a person
 *   (logging.ts).
 * - --metrics [ADDR:]PORT serves the Prometheus metrics (metrics.ts) at
 *   http://ADDR:PORT/metrics, ADDR 127.0.0.1 unless given (0.0.0.0 or an
 *   address to let another host scrape); the listening line names the URL.
 * - FILEs and DIRs are rescanned while served (unless --no-watch): a file
 *   added, replaced or removed is announced in a new FDT instance once it
 *   has kept its size and mtime for --settle (default 2 s); an edited one
 *   is announced again under a new TOI (docs/PROTOCOL.md §10.2). The
 *   rescans walk a DIR by the same rules as the first scan (catalogue.ts:
 *   --follow-symlinks, --dotfiles, names no client could write).
 * - SIGINT/SIGTERM stop the server cleanly (docs/PROTOCOL.md §6.7): no new
 *   session, every joined client told the server is leaving, the replies
 *   flushed, exit 0 (or 1 if that took more than SHUTDOWN_DEADLINE_MS); a
 *   second signal exits at once with 130. A bad option, a missing
 *   or unservable file exits 2 with one line on stderr; other failures
 *   (e.g. the port is taken) exit 1 (exit-codes.ts).
 *
 * Option values are read by the parsers every command shares (options.ts)
 * and serve's own (serve-options.ts); the listening line is listening.ts's,
 * shared with relay.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { Catalogue, DEFAULT_SYMBOL_SIZE } from '../content/catalogue';
import { LiveInputError, openLiveInput, parseLiveInput } from '../content/live-input';
import { DEFAULT_LIVE_BLOCK_MS, DEFAULT_LIVE_KEEP_MS, LiveSource } from '../content/live-source';
import {
  OtiOutOfBoundsError,
  SubSymbolTooSmallError,
  SymbolSizeNotAlignedError,
  TooManySourceSymbolsError,
  TransferTooLongError,
} from '../fec/errors';
import { DEFAULT_PASS_OVERHEAD } from '../stream/channel-stream';
import {
  DEFAULT_MEMORY_BYTES,
  DEFAULT_PORT,
  DEFAULT_RATE_MBPS,
  type ReplicatorLike,
  RqcastServer,
  type RqcastServerOptions,
  ServerAddress,
} from '../server/server';
import type { MetricsEndpoint } from '../server/metrics-http';
import { DEFAULT_MULTICAST_TTL } from '../transport/multicast/group-config';
import { DEFAULT_MAX_SESSIONS_PER_ADDRESS } from '../session/client-manager';
import { MAX_GROUP_SERVERS } from '../content/server-group';
import { DEFAULT_SETTLE_MS } from '../content/served-path-watch';
import { firstSignal } from './signals';
import { UsageError } from './errors';
import { createLogger, parseLogFormat, parseLogLevel } from './logging';
import { EXIT_INTERRUPTED, EXIT_OK, EXIT_OTHER, EXIT_USAGE, exitCodeFor } from './exit-codes';
import {
  bindAddress,
  hexSecret,
  integerIn,
  localUnicastAddress,
  networkInterface,
  optionParser,
  parseDuration,
  parseMebibytes,
  parseMetricsListen,
  parseMulticastGroup,
  parseMulticastTtl,
  parsePort,
  parsePositiveInteger,
  parseRateMbps,
  parseTcpListen,
  repeatableOptionParser,
} from './options';
import {
  channelConfigs,
  LIVE_BLOCK_BYTES,
  MIN_SECRET_BYTES,
  parseBlockMs,
  parseChannelSpec,
  parseLiveSpec,
  parsePassOverhead,
  parseServerIndex,
  parseServers,
  parseSymbolSize,
  type ServeCliOptions,
  serverGroupOf,
  within,
} from './serve-options';
import { hostPort, listeningJson, listeningText } from './listening';
import { openMetrics } from './open-metrics';
import { watchServedPaths } from './watch-served-paths';
import type { HostFilterLike } from '../transport/tcp/host-filter';
import type { NativeTcpServerFactory } from '../transport/tcp/native-tcp-server';

export {
  type ChannelSpec,
  LIVE_BLOCK_BYTES,
  type LiveSpec,
  MAX_SYMBOL_SIZE,
  parseBlockMs,
  parseChannelSpec,
  parseLiveSpec,
  type ServeCliOptions,
  serverGroupOf,
} from './serve-options';
export { hostPort } from './listening';

const MIB = 1024 * 1024;
const DEFAULT_PASS_OVERHEAD_PCT = Math.round(DEFAULT_PASS_OVERHEAD * 100);

/** serve's exit codes (docs/PROTOCOL.md §10.9): its rows of the one table in exit-codes.ts. */
export const SERVE_EXIT_OK = EXIT_OK;
export const SERVE_EXIT_OTHER = EXIT_OTHER;
export const SERVE_EXIT_USAGE = EXIT_USAGE;
/** A second SIGINT/SIGTERM while the first one's shutdown runs. */
export const SERVE_EXIT_INTERRUPTED = EXIT_INTERRUPTED;
/** A clean shutdown that takes longer than this exits 1 (SERVE_EXIT_OTHER) instead of 0. */
export const SHUTDOWN_DEADLINE_MS = 2000;
/** Where serve writes; tests pass their own. */
export interface ServeIo {
  stdout: (line: string) => void;
  stderr: NodeJS.WritableStream;
  /** Resolves when the server should stop. Default: the first SIGINT or SIGTERM. */
  stopSignal?: () => Promise<string>;
  /** The data engine. Default: the native Replicator; tests pass a fake (they close it). */
  replicator?: ReplicatorLike;
  /** --tcp's native server and host filter. Default: the addon's TcpServer and the nftables filter; tests pass fakes. */
  tcpServer?: NativeTcpServerFactory;
  tcpHostFilter?: HostFilterLike;
  /** Where the logs go. Default: stderr (fd 2). */
  logStream?: { write(text: string): unknown };
}

/** The server's TCP configuration for --tcp, with the test hooks of `io`. */
function tcpConfig(tcp: ServeCliOptions['tcp'], io: ServeIo, gsoSegments?: number): RqcastServerOptions['tcp'] {
  if (tcp === undefined) return undefined;
  return {
    ...(tcp !== true && tcp.address !== undefined ? { address: tcp.address } : {}),
    ...(tcp !== true ? { port: tcp.port } : {}),
    ...(gsoSegments !== undefined ? { limits: { gsoSegments } } : {}),
    ...(io.tcpServer ? { createServer: io.tcpServer } : {}),
    ...(io.tcpHostFilter ? { hostFilter: io.tcpHostFilter } : {}),
  };
}

export interface RunningServe {
  server: RqcastServer;
  catalogue: Catalogue;
  address: ServerAddress;
  /** The metrics endpoint, with --metrics. */
  metrics?: MetricsEndpoint;
  close(): Promise<void>;
}

/**
 * Loads the catalogue, starts the server, prints the listening line. Throws
 * on failure: a UsageError (or the catalogue's or server configuration's
 * own error) when the command line asks for the impossible.
 */
export async function startServe(paths: readonly string[], opts: ServeCliOptions, io: ServeIo): Promise<RunningServe> {
  const all: string[] = [];
  const add = (p: string): void => {
    const abs = path.resolve(p);
    if (!all.some((q) => within(abs, path.resolve(q)))) all.push(p);
  };
  paths.forEach(add);
  for (const c of opts.channel ?? []) c.paths.forEach(add);
  const liveSpecs = opts.live ?? [];
  if (all.length === 0 && liveSpecs.length === 0) throw new UsageError('nothing to serve: give at least one FILE or DIR, or --live NAME');
  const serverGroup = serverGroupOf(opts);
  if (serverGroup && serverGroup.servers > 1 && liveSpecs.length > 0) {
    throw new UsageError('--live with --servers: a live stream is served by one server alone (each server would cut its own segments); serve it without --server-index/--servers');
  }
  if (liveSpecs.filter((l) => l.input === undefined || l.input === '-').length > 1) throw new UsageError('only one --live stream can read stdin; give the others a PATH');
  // The inputs first: a PATH that does not exist is a usage error before anything listens.
  const lives: { name: string; source: LiveSource }[] = [];
  const spool = liveSpecs.length > 0 ? await fs.mkdtemp(path.join(os.tmpdir(), `rqcast-live-${process.pid}-`)) : undefined;
  for (const l of liveSpecs) {
    if (lives.some((x) => x.name === l.name)) throw new UsageError(`--live ${l.name} given twice`);
    let input;
    try {
      input = await openLiveInput(parseLiveInput(l.input));
    } catch (e) {
      if (e instanceof LiveInputError) throw new UsageError(e.message, { cause: e });
      throw e;
    }
    const source = new LiveSource({ name: l.name, dir: path.join(spool as string, l.name), blockBytes: LIVE_BLOCK_BYTES, blockMs: opts.blockMs ?? DEFAULT_LIVE_BLOCK_MS, keepMs: opts.keep ?? DEFAULT_LIVE_KEEP_MS });
    await source.start(input);
    lives.push({ name: l.name, source });
  }
  const closeLives = async (): Promise<void> => {
    for (const l of lives) await l.source.close();
    if (spool) await fs.rm(spool, { recursive: true, force: true });
  };

  const log = createLogger({ level: opts.logLevel ?? (opts.quiet ? 'error' : 'info'), format: opts.logFormat ?? 'json', stream: io.logStream });
  const catalogue = await Catalogue.load(all, { symbolSize: opts.symbolSize, followSymlinks: opts.followSymlinks, dotfiles: opts.dotfiles }).catch(async (e: unknown) => {
    await closeLives();
    throw asUsageError(e);
  });
  try {
    for (const s of catalogue.skipped) log.warn({ path: s.path, reason: s.reason }, 'file skipped');
    const channels = channelConfigs(opts, (c) => {
      const names = new Set<string>();
      for (const p of c.paths) for (const o of catalogue.objectsUnder(p)) names.add(o.name);
      if (names.size === 0) throw new UsageError(`channel ${c.name}: no object under ${c.paths.join(',')}`);
      return Array.from(names);
    });
    const server = new RqcastServer({
      catalogue,
      // Live streams alone: no file channel.
      channels: catalogue.objects.length === 0 && lives.length > 0 && (opts.channel ?? []).length === 0 ? [] : channels,
      port: opts.port,
      host: opts.bind,
      rateMbps: opts.rate,
      noCode: !opts.code,
      secret: opts.secret,
      maxSessionsPerAddress: opts.maxSessionsPerAddress,
      memoryBytes: opts.memory * MIB,
      passOverhead: opts.passOverhead / 100,
      // A restarted server must not resend the repair symbols its last run sent (§10.4).
      repairStart: 'random',
      logger: log,
      replicator: io.replicator,
      tcp: tcpConfig(opts.tcp, io, opts.tcpGso),
      live: lives,
      ...(serverGroup ? { serverGroup } : {}),
    });
    for (const l of lives) {
      l.source.on('error', (err) => log.error({ err, live: l.name }, 'live input failed'));
      l.source.on('end', () => log.info({ live: l.name, segments: l.source.stats.segmentsClosed }, 'live input ended'));
    }
    server.on('error', (err) => log.error({ err }, 'control socket error'));
    let address: ServerAddress;
    let metrics: MetricsEndpoint | undefined;
    try {
      address = await server.listen();
      if (opts.metrics) metrics = await openMetrics(server, opts.metrics);
    } catch (e) {
      await server.close();
      throw e;
    }
    if (metrics) log.info({ url: metrics.url }, 'metrics endpoint listening');
    const watches = opts.watch === false ? [] : await watchServedPaths(all, opts, catalogue, server, log);
    const tcp = server.tcpAddress();
    if (opts.json) {
      io.stdout(
        listeningJson(address, {
          ...(tcp ? { tcp: { host: tcp.address, port: tcp.port } } : {}),
          ...(metrics ? { metrics: metrics.url } : {}),
          noCode: !opts.code,
          serverGroup: server.serverGroup,
          symbolSize: opts.symbolSize,
          memoryMiB: opts.memory,
          channels: server.channels.map((c) => ({
            name: c.name,
            tsi: c.tsi,
            rateMbps: c.rateMbps,
            windowBlocks: c.stream.windowBlocks,
            sliding: c.stream.sliding,
            objects: c.objects.map((o) => o.name),
            multicast: c.multicast && { group: c.multicast.group, port: c.multicast.port, source: c.multicast.source, ttl: c.multicast.ttl },
          })),
          objects: catalogue.objects.map((o) => ({ toi: o.toi, name: o.name, length: o.length, sha256: Buffer.from(o.sha256).toString('hex') })),
          skipped: catalogue.skipped,
        }),
      );
    } else {
      io.stdout(listeningText(address, [...(tcp ? [`tcp ${hostPort(tcp)}`] : []), ...(metrics ? [`metrics ${metrics.url}`] : [])]));
    }
    return {
      server,
      catalogue,
      address,
      metrics,
      async close() {
        for (const w of watches) w.close();
        await server.shutdown();
        await metrics?.close();
        await closeLives();
        catalogue.close();
        log.flush();
      },
    };
  } catch (e) {
    catalogue.close();
    await closeLives();
    throw asUsageError(e);
  }
}

/**
 * The codec's refusals of an object's OTI (RFC 6330 §4.3, §4.4.1.2 bounds):
 * in serve they mean a --symbol-size the codec cannot use, or a FILE too
 * large for it, so the command line must change: a usage error. (A client
 * meeting them in a server's FDT is not, so this rule is serve's, not
 * exit-codes.ts's.)
 */
const SYMBOL_SIZE_REFUSALS: ReadonlySet<string> = new Set([
  SymbolSizeNotAlignedError.code,
  OtiOutOfBoundsError.code,
  TooManySourceSymbolsError.code,
  TransferTooLongError.code,
  SubSymbolTooSmallError.code,
]);

function asUsageError(e: unknown): unknown {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && SYMBOL_SIZE_REFUSALS.has(code)) return new UsageError((e as Error).message, { cause: e });
  return e;
}

/** The lines --help prints after the options. */
const SERVE_HELP_AFTER = `
While serving: FILEs and DIRs are rescanned every 0.5 s; a file added, replaced
or removed is announced to clients (a new FDT instance) once it has not changed
for --settle; --no-watch serves them as they were at start.

SIGTERM or SIGINT: no new clients, every joined client told the server is
leaving (their fetch exits 7 at once), exit 0; a second signal exits at once.

Exit codes: 0 stopped by SIGINT or SIGTERM, 2 usage (a bad option, a missing or
unservable file), 130 a second SIGINT or SIGTERM while stopping,
1 any other failure (e.g. the port is taken, or stopping took more than 2 s).

Multicast (a channel with a group still serves unicast members; docs/PROTOCOL.md §10.10):
  rqcast serve ./files --multicast 239.1.2.3:5000 --multicast-if eth0
  rqcast serve ./files --channel hd:./hd@[ff3e::8000:1]:5000 --multicast-source 2001:db8::1
  A channel with a group is also sent, once per packet, to the group; JOINED
  announces the group and its source (--multicast-source; default the
  --multicast-if address, else the --bind address unless a wildcard), so
  clients can join source-specific. --multicast-ttl, --multicast-if and
  --multicast-source apply to every group.

TCP (IPv4; clients behind networks that pass only TCP: fetch --transport tcp|auto):
  rqcast serve ./files --bind 192.0.2.10 --tcp          TCP on 192.0.2.10:4433, beside UDP 4433
  rqcast serve ./files --tcp 0.0.0.0:443                TCP on port 443 of every local address
  The server's own TCP implementation answers on that address and port (a
  lost segment is resent with fresh symbols); it needs root (CAP_NET_RAW,
  CAP_NET_ADMIN) and installs the nftables table rqcast_tcp_PORT so the
  host's stack leaves the port alone, removing it on exit. Runs of equal
  segments leave as one GSO packet (--tcp-gso, 0 to turn off) when the
  client's SYN came over Ethernet. A bare --tcp
  takes the next word as its value unless it is an option: put it after
  the paths.

Live streams (docs/PROTOCOL.md §10.14; play with: rqcast fetch rqcast://HOST:PORT/cam -o - | ffplay -):
  ffmpeg ... -f mpegts - | rqcast serve --live cam       from stdin, on channel "cam"
  rqcast serve ./files --live cam=udp://239.1.1.1:1234   an MPEG-TS feed, beside the files
  rqcast serve --live cam=/run/cam.fifo --block-ms 200   a FIFO (or a file that grows)
  Segments (NAME/0, NAME/1, ...) close after --block-ms or when full, are kept
  on disk for --keep, and are announced in the channel's FDT, which says
  Complete="true" once the input ends. A live stream is served by one server
  alone (not with --servers).

Metrics and logs:
  rqcast serve ./files --metrics 9464                   Prometheus metrics at http://127.0.0.1:9464/metrics
  rqcast serve ./files --metrics 0.0.0.0:9464           ... scrapable from other hosts
  rqcast serve ./files --log-format pretty --log-level debug
  Logs go to stderr (JSON lines by default, for journald or a collector).

Server groups (clients combine members: fetch URL1 URL2 ...; docs/PROTOCOL.md "Server groups"):
  rqcast serve ./files --server-index 0 --servers 2      on host A
  rqcast serve ./files --server-index 1 --servers 2      on host B
  Each member sends repair symbols whose ESI mod N is its index, member 0
  also the source symbols, so no two members ever send the same symbol.
  Serve the same files with the same --symbol-size on every member (objects
  are matched by name, SHA-256 and OTI); give them one --secret so a
  client's cookie works at any of them. With --no-code every member sends
  every source symbol (a client combining them gets duplicates).`;

export function registerServeCommand(program: Command, io?: ServeIo): void {
  program
    .command('serve')
    .description('serve files to any number of clients as RaptorQ streams')
    .argument('[paths...]', 'files and directories to serve')
    .addOption(new Option('--port <port>', 'UDP control port').default(DEFAULT_PORT).argParser(optionParser(parsePort)))
    .addOption(new Option('--bind <address>', 'address to bind the control port to: 0.0.0.0 or :: for every address, or one of this host').default('0.0.0.0').argParser(optionParser(bindAddress())))
    .addOption(new Option('--rate <mbps>', 'pacing rate per channel, Mbit/s').default(DEFAULT_RATE_MBPS).argParser(optionParser(parseRateMbps)))
    .addOption(
      new Option('--channel <spec>', 'a channel NAME:FILE[,FILE...][:RATE][@GROUP:PORT], also sent to multicast GROUP:PORT if given (repeatable)').argParser(
        repeatableOptionParser(parseChannelSpec),
      ),
    )
    .addOption(
      new Option('--multicast <group:port>', 'also send channel main to this IP multicast group (224.0.0.0/4, or ff00::/8 in brackets: [ff3e::1]:5000)').argParser(
        optionParser(parseMulticastGroup),
      ),
    )
    .addOption(
      new Option('--multicast-ttl <hops>', `TTL / hop limit of the groups' packets, 0..255 (default ${DEFAULT_MULTICAST_TTL}: this link only)`).argParser(
        optionParser(parseMulticastTtl),
      ),
    )
    .addOption(new Option('--multicast-if <addr|name>', 'interface the groups are sent on: a local address or an interface name').argParser(optionParser(networkInterface())))
    .addOption(
      new Option('--multicast-source <addr>', "source address of the groups' packets, announced for source-specific joins (a local address)").argParser(
        optionParser(localUnicastAddress()),
      ),
    )
    .addOption(
      new Option('--tcp [addr:port]', "also serve over TCP (IPv4) on [ADDR:]PORT; bare: the control port's number on the server's address (needs root: raw sockets and an nftables rule)").argParser(
        optionParser(parseTcpListen),
      ),
    )
    .addOption(
      new Option('--tcp-gso <segments>', 'with --tcp: TCP segments per GSO packet at most, 0..64 (default 64); 0 sends each segment on its own').argParser(
        optionParser(integerIn(0, 64, '--tcp-gso', 'segments per packet')),
      ),
    )
    .addOption(new Option('--symbol-size <bytes>', 'RaptorQ symbol size T').default(DEFAULT_SYMBOL_SIZE).argParser(optionParser(parseSymbolSize)))
    .option('--no-code', 'send a carousel of source symbols only (no repair symbols)')
    .addOption(
      new Option('--memory <mib>', 'MiB of prepared blocks to hold; larger channels send a sliding window of blocks')
        .default(DEFAULT_MEMORY_BYTES / MIB)
        .argParser(optionParser(parseMebibytes)),
    )
    .addOption(
      new Option('--pass-overhead <pct>', 'with a sliding window: packets per block per pass beyond K, % of K')
        .default(DEFAULT_PASS_OVERHEAD_PCT)
        .argParser(optionParser(parsePassOverhead)),
    )
    .addOption(new Option('--secret <hex>', 'cookie master secret shared by relays (>= 16 bytes, hex)').argParser(optionParser(hexSecret(MIN_SECRET_BYTES))))
    .addOption(
      new Option('--settle <duration>', 'announce a new or changed file once it has kept its size and mtime this long (500ms, 2s, ...)')
        .default(DEFAULT_SETTLE_MS, '2s')
        .argParser(optionParser(parseDuration)),
    )
    .option('--no-watch', 'serve the files as they were at start (no rescans of FILE and DIR for added, changed or removed files)')
    .addOption(
      new Option('--live <NAME[=PATH]>', 'serve a live stream on channel NAME, read from stdin, or PATH: a FIFO, a growing file, or udp://ADDR:PORT (repeatable)')
        .argParser(repeatableOptionParser(parseLiveSpec)),
    )
    .addOption(
      new Option('--block-ms <ms>', 'live: a segment (one source block) closes this long after its first byte, or when full')
        .default(DEFAULT_LIVE_BLOCK_MS)
        .argParser(optionParser(parseBlockMs)),
    )
    .addOption(new Option('--keep <duration>', 'live: how long segments stay on disk for late or lagging receivers').default(DEFAULT_LIVE_KEEP_MS, '60s').argParser(optionParser(parseDuration)))
    .option('--follow-symlinks', 'under a DIR, also serve symbolic links to files outside it (default: skipped, and logged)')
    .option('--dotfiles', 'under a DIR, also serve hidden files and directories (.git, .env; default: skipped, and logged)')
    .addOption(
      new Option('--max-sessions-per-address <n>', 'sessions one IPv4 address or IPv6 /64 may hold at once; more JOINs get ERROR 7 (TooManySessions)')
        .default(DEFAULT_MAX_SESSIONS_PER_ADDRESS)
        .argParser(optionParser(parsePositiveInteger)),
    )
    .addOption(
      new Option('--metrics <[addr:]port>', 'serve Prometheus metrics at http://ADDR:PORT/metrics (ADDR default 127.0.0.1: this host only; 0.0.0.0 for any)').argParser(
        optionParser(parseMetricsListen),
      ),
    )
    .addOption(new Option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent (default info; error with --quiet)').argParser(optionParser(parseLogLevel)))
    .addOption(new Option('--log-format <format>', 'json: one JSON object per line (default); pretty: one line for a person').argParser(optionParser(parseLogFormat)))
    .addOption(
      new Option('--server-index <i>', 'this server is member I (0..N-1) of a group serving the same files: its symbols never repeat another member\'s').argParser(
        optionParser(parseServerIndex),
      ),
    )
    .addOption(new Option('--servers <n>', `the number of servers in the group (1..${MAX_GROUP_SERVERS})`).argParser(optionParser(parseServers)))
    .option('--json', 'print the listening line as JSON')
    .option('--quiet', 'log errors only (unless --log-level)')
    .addHelpText('after', SERVE_HELP_AFTER)
    .action(async (paths: string[], opts: ServeCliOptions) => {
      const out: ServeIo = io ?? { stdout: (line) => process.stdout.write(line + '\n'), stderr: process.stderr };
      let running: RunningServe;
      try {
        running = await startServe(paths, opts, out);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        out.stderr.write(`rqcast serve: ${message}\n`);
        process.exitCode = exitCodeFor(e);
        return;
      }
      if (out.stopSignal) {
        await out.stopSignal();
        await running.close();
        process.exitCode = SERVE_EXIT_OK;
        return;
      }
      const signal = await firstSignal();
      // The shutdown is bounded, and a second signal cuts it short.
      const again = (): void => process.exit(SERVE_EXIT_INTERRUPTED);
      process.once('SIGINT', again);
      process.once('SIGTERM', again);
      const deadline = setTimeout(() => {
        out.stderr.write(`rqcast serve: shutdown (${signal}) took more than ${SHUTDOWN_DEADLINE_MS} ms; exiting\n`);
        process.exit(SERVE_EXIT_OTHER);
      }, SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      await running.close();
      clearTimeout(deadline);
      process.off('SIGINT', again);
      process.off('SIGTERM', again);
      process.exitCode = SERVE_EXIT_OK;
    });
}
