/**
 * `rqcast serve FILE|DIR... [--port 4433] [--bind 0.0.0.0] [--rate 100]
 *  [--channel NAME:FILE,FILE[:RATE]]... [--symbol-size 1280] [--no-code]
 *  [--memory 512] [--pass-overhead 15] [--secret HEX] [--json] [--quiet]`
 *
 * - Every FILE/DIR (positional or named in a --channel) goes into one
 *   catalogue; TOIs follow the positional arguments, then the --channel
 *   paths not already covered by them.
 * - Channel `main` carries every object unless a --channel is named main.
 *   --channel NAME:PATHS[:RATE] adds a channel with the objects under those
 *   paths (files, or directories: every object read from them), paced at
 *   RATE Mbit/s (default --rate).
 * - Rates are Mbit/s (10^6 bit/s) of packet bytes, per channel.
 * - --memory MIB bounds the prepared blocks the server holds (files are
 *   read block by block, with pread, as the streams need them); channels
 *   whose blocks do not fit send a sliding window of blocks, each block
 *   getting K * (1 + --pass-overhead %) packets per pass (docs/PROTOCOL.md
 *   §10.3).
 * - Once the control port is bound, stdout gets one line,
 *   `listening on HOST:PORT` (with --json, one JSON object instead); logs
 *   (pino, JSON lines) go to stderr; --quiet keeps only errors.
 * - SIGINT/SIGTERM stop the server cleanly (exit 0). A bad option, a missing
 *   or unservable file exits 2 with one line on stderr; other failures
 *   (e.g. the port is taken) exit 1 (exit-codes.ts).
 *
 * Option values are read by the parsers every command shares (options.ts).
 */
import * as path from 'node:path';
import { Command, Option } from 'commander';
import pino from 'pino';
import { Catalogue, DEFAULT_SYMBOL_SIZE } from '../content/catalogue';
import {
  OtiOutOfBoundsError,
  SubSymbolTooSmallError,
  SymbolSizeNotAlignedError,
  TooManySourceSymbolsError,
  TransferTooLongError,
} from '../fec/errors';
import { DEFAULT_PASS_OVERHEAD } from '../stream/channel-stream';
import { ChannelConfig, DEFAULT_CHANNEL, DEFAULT_MEMORY_BYTES, DEFAULT_PORT, DEFAULT_RATE_MBPS, RqcastServer, ServerAddress } from '../server/server';
import { UsageError } from './errors';
import { EXIT_OK, EXIT_OTHER, EXIT_USAGE, exitCodeFor } from './exit-codes';
import { hexSecret, integerIn, optionParser, parseMebibytes, parsePort, parseRateMbps, percentage, repeatableOptionParser } from './options';

const MIB = 1024 * 1024;
const DEFAULT_PASS_OVERHEAD_PCT = Math.round(DEFAULT_PASS_OVERHEAD * 100);

/** serve's exit codes (docs/PROTOCOL.md §10.9): its rows of the one table in exit-codes.ts. */
export const SERVE_EXIT_OK = EXIT_OK;
export const SERVE_EXIT_OTHER = EXIT_OTHER;
export const SERVE_EXIT_USAGE = EXIT_USAGE;
/** The largest stream packet (an FDT packet) is 48 + T bytes; an IPv4 UDP datagram carries at most 65507. */
export const MAX_SYMBOL_SIZE = 65_456;
/** The cookie master secret's least length (lib/session/cookie.ts refuses shorter). */
const MIN_SECRET_BYTES = 16;

/** A --channel argument: NAME:PATH[,PATH...][:RATE]. */
export interface ChannelSpec {
  name: string;
  paths: string[];
  rateMbps?: number;
}

export interface ServeCliOptions {
  port: number;
  bind: string;
  rate: number;
  channel: ChannelSpec[];
  symbolSize: number;
  /** MiB of prepared blocks (--memory). */
  memory: number;
  /** Percent of K (--pass-overhead). */
  passOverhead: number;
  /** commander's --no-code: code === false. */
  code: boolean;
  secret?: Uint8Array;
  json?: boolean;
  quiet?: boolean;
}

/** Where serve writes; tests pass their own. */
export interface ServeIo {
  stdout: (line: string) => void;
  stderr: NodeJS.WritableStream;
  /** Resolves when the server should stop. Default: the first SIGINT or SIGTERM. */
  stopSignal?: () => Promise<string>;
}

const parseSymbolSize = integerIn(16, MAX_SYMBOL_SIZE, 'symbol size', 'bytes');
const parsePassOverhead = percentage(1000, { of: 'K' });

/** NAME:PATH[,PATH...][:RATE] */
export function parseChannelSpec(text: string): ChannelSpec {
  const first = text.indexOf(':');
  if (first <= 0) throw new UsageError(`--channel ${text}: expected NAME:FILE[,FILE...][:RATE]`);
  const name = text.slice(0, first);
  let rest = text.slice(first + 1);
  let rateMbps: number | undefined;
  const last = rest.lastIndexOf(':');
  if (last >= 0) {
    rateMbps = parseRateMbps(rest.slice(last + 1));
    rest = rest.slice(0, last);
  }
  const paths = rest.split(',').filter((p) => p !== '');
  if (paths.length === 0) throw new UsageError(`--channel ${text}: no FILE`);
  if (Buffer.byteLength(name, 'utf8') > 64) throw new UsageError(`--channel ${text}: a channel name is 1..64 bytes`);
  return { name, paths, rateMbps };
}

/** Whether `p` is `dir` or inside it. */
function within(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function hostPort(a: ServerAddress): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export interface RunningServe {
  server: RqcastServer;
  catalogue: Catalogue;
  address: ServerAddress;
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
  for (const c of opts.channel) c.paths.forEach(add);
  if (all.length === 0) throw new UsageError('nothing to serve: give at least one FILE or DIR');

  const log = pino({ name: 'rqcast', level: opts.quiet ? 'error' : 'info' }, pino.destination({ dest: 2, sync: false }));
  const catalogue = await Catalogue.load(all, { symbolSize: opts.symbolSize }).catch((e: unknown) => {
    throw asUsageError(e);
  });
  try {
    for (const s of catalogue.skipped) log.warn({ path: s.path, reason: s.reason }, 'file skipped');
    const channels: ChannelConfig[] = [];
    if (!opts.channel.some((c) => c.name === DEFAULT_CHANNEL)) {
      channels.push({ name: DEFAULT_CHANNEL, rateMbps: opts.rate });
    }
    for (const c of opts.channel) {
      const names = new Set<string>();
      for (const p of c.paths) for (const o of catalogue.objectsUnder(p)) names.add(o.name);
      if (names.size === 0) throw new UsageError(`channel ${c.name}: no object under ${c.paths.join(',')}`);
      channels.push({ name: c.name, objects: Array.from(names), rateMbps: c.rateMbps ?? opts.rate });
    }
    const server = new RqcastServer({
      catalogue,
      channels,
      port: opts.port,
      host: opts.bind,
      rateMbps: opts.rate,
      noCode: !opts.code,
      secret: opts.secret,
      memoryBytes: opts.memory * MIB,
      passOverhead: opts.passOverhead / 100,
      logger: log,
    });
    server.on('error', (err) => log.error({ err }, 'control socket error'));
    let address: ServerAddress;
    try {
      address = await server.listen();
    } catch (e) {
      await server.close();
      throw e;
    }
    if (opts.json) {
      io.stdout(
        JSON.stringify({
          event: 'listening',
          host: address.address,
          port: address.port,
          noCode: !opts.code,
          symbolSize: opts.symbolSize,
          memoryMiB: opts.memory,
          channels: server.channels.map((c) => ({
            name: c.name,
            tsi: c.tsi,
            rateMbps: c.rateMbps,
            windowBlocks: c.stream.windowBlocks,
            sliding: c.stream.sliding,
            objects: c.objects.map((o) => o.name),
          })),
          objects: catalogue.objects.map((o) => ({ toi: o.toi, name: o.name, length: o.length, sha256: Buffer.from(o.sha256).toString('hex') })),
        }),
      );
    } else {
      io.stdout(`listening on ${hostPort(address)}`);
    }
    return {
      server,
      catalogue,
      address,
      async close() {
        await server.close();
        catalogue.close();
        log.flush();
      },
    };
  } catch (e) {
    catalogue.close();
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

function firstSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(sig);
    };
    const onInt = (): void => on('SIGINT');
    const onTerm = (): void => on('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}

export function registerServeCommand(program: Command, io?: ServeIo): void {
  program
    .command('serve')
    .description('serve files to any number of clients as RaptorQ streams')
    .argument('[paths...]', 'files and directories to serve')
    .addOption(new Option('--port <port>', 'UDP control port').default(DEFAULT_PORT).argParser(optionParser(parsePort)))
    .addOption(new Option('--bind <address>', 'address to bind the control port to').default('0.0.0.0'))
    .addOption(new Option('--rate <mbps>', 'pacing rate per channel, Mbit/s').default(DEFAULT_RATE_MBPS).argParser(optionParser(parseRateMbps)))
    .addOption(
      new Option('--channel <spec>', 'a channel NAME:FILE[,FILE...][:RATE] (repeatable)').default([]).argParser(repeatableOptionParser(parseChannelSpec)),
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
    .option('--json', 'print the listening line as JSON')
    .option('--quiet', 'log errors only')
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
      await (out.stopSignal ?? firstSignal)();
      await running.close();
      process.exitCode = SERVE_EXIT_OK;
    });
}
