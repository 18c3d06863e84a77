/**
 * `rqcast fetch URL [URL...] [-o PATH] [--ttl 30s | --until ISO] [--ack]
 *  [--timeout 60s] [--memory MIB] [--json] [--quiet] [--loss PCT]
 *  [--transport auto|multicast|udp|tcp] [--fallback-after 2s] [--multicast-if IF]
 *  [--tcp HOST:PORT] [--log-level LEVEL] [--log-format json|pretty] [--no-resume]
 *  [--from-start] [--latency-ms MS]`
 *
 * URL is rqcast://HOST… (a server: RqcastClient) or flute://GROUP:PORT?tsi=N
 * (a multicast group with no server: FluteReceiver, docs/PROTOCOL.md
 * §10.10); options that need a server (--ttl, --until, --ack, --transport
 * udp|tcp, --fallback-after, --tcp) are usage errors with flute://.
 *
 * Several servers (issue 11, docs/PROTOCOL.md §10.12): several rqcast://
 * URLs naming the same object (or none) are fetched together, one session
 * per server, their symbols combined; a server that stops sending is
 * dropped and the others carry on; --json's summary says how many symbols
 * came from each server and how many arrived twice.
 *
 * TCP (issue 9): --transport tcp fetches over one TCP connection to the
 * URL's host and port (or --tcp HOST:PORT); with --transport auto, TCP is
 * the last step after multicast and UDP. --ack has no effect over TCP.
 *
 * Logs (logging.ts): none unless --log-level is given; then pino lines on
 * stderr (joined, transport changes, objects fetched, warnings, the
 * summary; progress at debug), as JSON or, with --log-format pretty, one
 * line each for a person. The progress display and --json are unchanged.
 *
 * Exit codes (docs/PROTOCOL.md §10.9, exit-codes.ts): 0 every object
 * fetched and verified; 2 usage (bad URL or option); 3 the server refused
 * the JOIN (e.g. unknown channel); 4 timeout (nothing from the server for
 * --timeout, or --until reached first); 5 an object's SHA-256 did not match
 * the FDT; 6 the URL names an object the FDTs do not list (or, with one
 * segment, neither a channel nor an object); 130 interrupted
 * (SIGINT/SIGTERM); 1 anything else.
 *
 * Resume: objects are written resumably (client/sinks/resumable-sink.ts);
 * a fetch that stops short keeps what it has and says so (reportKept); the
 * next one starts from it, --no-resume discards it first.
 *
 * Playout (`-o -`, issue 10): the one object the URL names, or the live
 * stream of that name (docs/PROTOCOL.md §10.14), is written to stdout in
 * order as it decodes; JSON lines then go to stderr. What went to stdout
 * cannot be taken back, so nothing is resumed or kept. With several URLs
 * their symbols feed the one playout; a one-segment URL
 * (rqcast://HOST:PORT/X) plays the object or live stream X of channel X
 * if the server has that channel, else object X of the default channel.
 *
 * Option values are read by the parsers every command shares (options.ts).
 */
import { statSync } from 'fs';
import { Command, Option } from 'commander';
import { FetchSummary, RqcastClient, RqcastClientOptions } from '../client/client';
import type { TransportMode } from '../client/fallback';
import type { FluteReceiver } from '../client/flute-receiver';
import { chooseProgressMode, formatBytes, ProgressDisplay } from '../client/progress';
import { withUrlReadings } from '../client/one-segment';
import type { KeptPartial } from '../client/sinks/sink';
import { FluteUrl, parseFetchUrl, type RqcastUrl } from '../client/url';
import type { Logger } from 'pino';
import { UsageError } from './errors';
import { EXIT_OK, exitCodeFor } from './exit-codes';
import { exitWhenFlushed, type ProgramOptions } from './prompt-exit';
import { createLogger, type LogFormat, type LogLevel, logFetchEvents, parseLogFormat, parseLogLevel } from './logging';
import {
  optionParser,
  parseAbsoluteTime,
  parseDuration,
  parseJoinInterface,
  parseMebibytes,
  parseTcpEndpoint,
  parseTransportMode,
  percentage,
  type HostPort,
} from './options';

const parseLossPercent = percentage(100, { maxExcluded: true });

/** --latency-ms: a whole number of milliseconds, at least 1. */
function parseLatencyMs(text: string): number {
  const v = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(v) || v < 1) throw new UsageError(`--latency-ms ${text}: a whole number of milliseconds, at least 1`);
  return v;
}

export interface FetchCliOptions {
  output?: string;
  ttl?: number;
  until?: number;
  ack?: boolean;
  timeout: number;
  json?: boolean;
  quiet?: boolean;
  loss?: number;
  /** MiB (--memory). */
  memory?: number;
  transport?: TransportMode;
  /** ms (--fallback-after). */
  fallbackAfter?: number;
  multicastIf?: string;
  /** --tcp: where the server's TCP transport is. */
  tcp?: HostPort;
  /** false with --no-resume. */
  resume?: boolean;
  /** false with --no-need. */
  need?: boolean;
  /** --log-level (absent: no logs). */
  logLevel?: LogLevel;
  /** --log-format (absent: json). */
  logFormat?: LogFormat;
  /** Live playout (-o -): --from-start, --latency-ms. */
  fromStart?: boolean;
  latencyMs?: number;
}

/** What a fetch that stopped short kept, and how to go on: one line per object on stderr (and a JSON line with --json). */
export function reportKept(kept: KeptPartial[], json: boolean | undefined, jsonOut: NodeJS.WritableStream = process.stdout): void {
  for (const k of kept) {
    if (json) jsonOut.write(JSON.stringify({ type: 'partial', ...k }) + '\n');
    process.stderr.write(
      `rqcast fetch: kept ${k.blocksKept} of ${k.blocks} blocks (${formatBytes(k.bytesKept)} of ${formatBytes(k.bytes)})` +
        (k.symbolBytesKept > 0 ? ` and ${formatBytes(k.symbolBytesKept)} of symbols of the others` : '') +
        ` of "${k.name}" in ${k.partPath}; ` +
        'run the same fetch again to resume it (--no-resume to start over)\n',
    );
  }
}

/** Where runFetch's logs go; tests pass their own. */
export interface FetchIo {
  /** Default: stderr (fd 2). */
  logStream?: { write(text: string): unknown };
}

/**
 * Where objects go: -o PATH is a file when the URL names one object and
 * PATH is not an existing directory (nor ends with '/'); a directory
 * otherwise. Default: the current directory, under the objects' names.
 * `-o -`: the one object the URL names is played out to stdout, in order,
 * block by block as it decodes (its SHA-256 checked at the end).
 */
export function outputTarget(
  url: { name?: string },
  output: string | undefined,
  stdout: NodeJS.WritableStream = process.stdout,
): { outputDir?: string; outputFile?: string; playout?: NodeJS.WritableStream } {
  if (output === undefined) return { outputDir: process.cwd() };
  if (output === '-') {
    if (url.name === undefined) throw new UsageError('-o - plays one object out to stdout: name it in the URL (rqcast://HOST:PORT/CHANNELS/NAME)');
    return { playout: stdout };
  }
  let isDir = /[/\\]$/.test(output);
  if (!isDir) {
    try {
      isDir = statSync(output).isDirectory();
    } catch {
      /* does not exist yet */
    }
  }
  if (url.name !== undefined && !isDir) return { outputFile: output };
  return { outputDir: output };
}

/** -o -: playout to stdout. */
function playsOut(o: FetchCliOptions): boolean {
  return o.output === '-';
}

/** The client options of one reading of an rqcast:// URL. */
function clientOptions(url: RqcastUrl, o: FetchCliOptions): RqcastClientOptions {
  return {
    ...outputTarget(url, o.output),
    ttlMs: o.ttl,
    untilMs: o.until,
    ack: o.ack,
    ...(o.need === false ? { need: false } : {}),
    timeoutMs: o.timeout,
    lossRate: o.loss === undefined ? undefined : o.loss / 100,
    memoryBytes: o.memory === undefined ? undefined : o.memory * 2 ** 20,
    transport: o.transport,
    fallbackAfterMs: o.fallbackAfter,
    multicastInterface: o.multicastIf,
    ...(o.tcp ? { tcp: o.tcp } : {}),
    ...(o.fromStart ? { fromStart: true } : {}),
    ...(o.latencyMs !== undefined ? { latencyMs: o.latencyMs } : {}),
    // A playout cannot be resumed: what went to stdout is gone.
    ...(playsOut(o) ? {} : { resume: o.resume === false ? 'restart' : 'continue' }),
  };
}

/**
 * With -o -, a one-segment URL's channel reading names the stream too:
 * rqcast://HOST:PORT/X plays object (or live stream) X of channel X —
 * `serve --live X` puts live stream X on a channel X of its own.
 */
function playoutReading(url: RqcastUrl, reading: RqcastUrl): RqcastUrl {
  if (url.segment === undefined || reading.name !== undefined) return reading;
  return { ...reading, name: url.segment };
}

/**
 * Runs one fetch (of one URL, or of several servers' URLs together) for the
 * CLI; returns the process exit code. A lone one-segment URL is tried as a
 * channel, then as an object of the default channel (one-segment.ts).
 */
export async function runFetch(urlTexts: string | readonly string[], o: FetchCliOptions, io: FetchIo = {}): Promise<number> {
  // No --log-level: no logger at all (pino is not even loaded).
  const log = o.logLevel === undefined ? undefined : createLogger({ level: o.logLevel, format: o.logFormat ?? 'json', stream: io.logStream });
  try {
    return await fetchLogged(typeof urlTexts === 'string' ? [urlTexts] : urlTexts, o, log);
  } finally {
    log?.flush();
  }
}

async function fetchLogged(texts: readonly string[], o: FetchCliOptions, log: Logger | undefined): Promise<number> {
  const mode = chooseProgressMode({ json: o.json, quiet: o.quiet, isTTY: process.stderr.isTTY === true });
  // With -o -, stdout carries the object: JSON lines go to stderr.
  const toStdout = playsOut(o);
  const jsonOut: NodeJS.WritableStream = toStdout ? process.stderr : process.stdout;
  let display: ProgressDisplay | undefined;
  let lastClient: RqcastClient | FluteReceiver | undefined;
  /** One fetch by `make`'s client, displayed and stopped by SIGINT/SIGTERM (and, with -o -, by a reader gone away). */
  const once = async (make: () => RqcastClient | FluteReceiver): Promise<FetchSummary> => {
    const client = make();
    lastClient = client;
    if (log) logFetchEvents(client, log);
    display = new ProgressDisplay(client, mode, jsonOut);
    client.on('partial', (kept) => reportKept(kept, o.json, jsonOut));
    if (client instanceof RqcastClient) {
      // A gap is never silent: stderr, and a JSON line with --json.
      client.on('gap', (g) => {
        process.stderr.write(`rqcast fetch: gap: segment ${g.object} skipped (${g.reason === 'late' ? `not decoded within --latency-ms` : "it left the server's window before it decoded"})\n`);
        if (o.json) jsonOut.write(JSON.stringify({ type: 'gap', object: g.object, seq: g.seq, reason: g.reason }) + '\n');
      });
    }
    const onSignal = (): void => client.close();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // The reader of -o - went away (EPIPE): the fetch ends with the error, not the process.
    const onStdoutError = (): void => client.close();
    if (toStdout) process.stdout.on('error', onStdoutError);
    try {
      return await client.fetch();
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.stdout.off('error', onStdoutError);
    }
  };
  let summary: FetchSummary;
  try {
    const all = texts.map(parseFetchUrl);
    const parsed = all[0];
    if (all.length > 1 && all.some((p) => p.scheme === 'flute')) {
      throw new UsageError('several URLs are several rqcast:// servers to combine; a flute:// URL is fetched alone');
    }
    if (o.output === '') throw new UsageError("-o '' names nothing: give a file or a directory (-o . for the current directory)");
    if ((o.fromStart || o.latencyMs !== undefined) && !toStdout) throw new UsageError('--from-start and --latency-ms are for live playout: add -o -');
    if (parsed.scheme === 'flute') {
      const url = parsed.url;
      summary = await once(() => fluteReceiver(url, o));
    } else if (all.length > 1) {
      const urls = all.map((p) => p.url as RqcastUrl);
      summary = await once(() => new RqcastClient(urls, clientOptions(urls[0], o)));
    } else {
      const url = parsed.url;
      summary = await withUrlReadings(url, (reading) => {
        const r = toStdout ? playoutReading(url, reading) : reading;
        return once(() => new RqcastClient(r, clientOptions(r, o)));
      });
    }
  } catch (e) {
    return report(e, display, o, log, jsonOut);
  }
  (display as ProgressDisplay | undefined)?.succeed(summary);
  const client = lastClient as RqcastClient | FluteReceiver | undefined;
  const live = client instanceof RqcastClient ? client.playoutStats : undefined;
  if (live && live.startSeq >= 0) {
    if (o.json) jsonOut.write(JSON.stringify({ type: 'live', ...live }) + '\n');
    if (live.gaps > 0) process.stderr.write(`rqcast fetch: ${live.gaps} segment(s) skipped: ${live.gapSeqs.join(', ')}\n`);
  }
  return EXIT_OK;
}

/** A FLUTE-only receiver for `url`: the options that need a server are usage errors. */
function fluteReceiver(url: FluteUrl, o: FetchCliOptions): FluteReceiver {
  const serverOnly: [unknown, string][] = [
    [o.ttl, '--ttl'],
    [o.until, '--until'],
    [o.ack, '--ack'],
    [o.fallbackAfter, '--fallback-after'],
    [o.transport === 'udp' || o.transport === 'tcp' ? true : undefined, `--transport ${o.transport ?? ''}`],
    [o.tcp, '--tcp'],
    [o.fromStart, '--from-start'],
    [o.latencyMs, '--latency-ms'],
  ];
  for (const [value, name] of serverOnly) {
    if (value !== undefined) throw new UsageError(`${name} needs a server: a flute:// URL has none`);
  }
  if (o.multicastIf !== undefined && url.interface !== undefined && o.multicastIf !== url.interface) {
    throw new UsageError(`--multicast-if ${o.multicastIf} and the URL's if=${url.interface} disagree`);
  }
  // Loaded for a flute:// URL only, not at the top (a fetch's start-up, fetch --json startupMs).
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { FluteReceiver: Receiver } = require('../client/flute-receiver') as typeof import('../client/flute-receiver');
  return new Receiver(url, {
    ...outputTarget(url, o.output),
    timeoutMs: o.timeout,
    lossRate: o.loss === undefined ? undefined : o.loss / 100,
    memoryBytes: o.memory === undefined ? undefined : o.memory * 2 ** 20,
    multicastInterface: o.multicastIf,
    ...(playsOut(o) ? {} : { resume: o.resume === false ? 'restart' : 'continue' }),
  });
}

function report(e: unknown, display: ProgressDisplay | undefined, o: FetchCliOptions, log: Logger | undefined, jsonOut: NodeJS.WritableStream = process.stdout): number {
  const code = exitCodeFor(e);
  const err = e instanceof Error ? e : new Error(String(e));
  log?.error({ err, exitCode: code }, 'fetch failed');
  display?.fail(err, code);
  if (o.json && !display) jsonOut.write(JSON.stringify({ type: 'error', code: (err as { code?: string }).code ?? 'ERR_RQ_CLIENT', message: err.message, exitCode: code }) + '\n');
  process.stderr.write(`rqcast fetch: ${err.message}\n`);
  return code;
}

export function registerFetchCommand(program: Command, po: ProgramOptions = {}): Command {
  return program
    .command('fetch')
    .description('fetch objects from an rqcast server into files (verified by SHA-256, written atomically)')
    .argument(
      '<url...>',
      'rqcast://HOST[:PORT][/CHANNELS][/NAME] — CHANNELS comma-separated (default "main"), NAME one object (default all); ' +
        'one segment (rqcast://HOST:PORT/X) is channel X if the server has it, else object X of "main"; IPv6 hosts in brackets; ' +
        'several rqcast:// URLs (same NAME): fetch from all those servers at once and combine their symbols; ' +
        'or flute://GROUP:PORT[/NAME]?tsi=N[&source=ADDR][&if=IFACE] — a multicast group alone, no server',
    )
    .option(
      '-o, --output <path>',
      "a file (when the URL names one object) or a directory (default: current directory); '-': play the named object or live stream out to stdout in order, block by block (JSON lines then go to stderr; nothing is resumed)",
    )
    .addOption(new Option('--ttl <duration>', 'session time asked for in each JOIN, renewed at half (e.g. 30s, 2m; default 30s)').argParser(optionParser(parseDuration)).conflicts('until'))
    .addOption(new Option('--until <iso>', 'end the session at this absolute time (ISO 8601)').argParser(optionParser(parseAbsoluteTime)))
    .option('--ack', 'ACK mode: report losses, the server replaces them with fresh symbols')
    .option('--no-need', 'send no NEED reports: by default the client tells the server how many symbols each block still needs, so the server ends a block once every client has enough')
    .addOption(new Option('--timeout <duration>', 'give up after this long without anything from the server').argParser(optionParser(parseDuration)).default(60_000, '60s'))
    .addOption(
      new Option('--memory <MiB>', 'most memory for source blocks not yet decoded (at least two blocks; symbols of others are dropped and resent by the stream)')
        .argParser(optionParser(parseMebibytes))
        .default(1024, '1024'),
    )
    .option(
      '--no-resume',
      'start over: discard the blocks an interrupted fetch of the same object kept (.NAME.rqcast-part, .NAME.rqcast-state); by default they are verified and reused',
    )
    .option('--json', 'JSON lines on stdout: progress, objects, final summary')
    .option('-q, --quiet', 'no progress display and no summary (warnings and errors still go to stderr)')
    .addOption(new Option('--loss <pct>', 'test hook: drop this percentage of received data packets').argParser(optionParser(parseLossPercent)))
    .addOption(
      new Option(
        '--transport <mode>',
        'auto: multicast where the server announces a group, then UDP unicast, then TCP, each after --fallback-after of silence; multicast: never fall back; udp: UDP unicast only; tcp: one TCP connection',
      )
        .argParser(optionParser(parseTransportMode))
        .default('auto'),
    )
    .addOption(
      new Option('--fallback-after <duration>', 'auto: move a channel on (group -> UDP -> TCP) when it gets nothing for this long; with several servers: drop a server that sends nothing for this long (default 2s)').argParser(optionParser(parseDuration)),
    )
    .addOption(new Option('--tcp <host:port>', "where the server's TCP transport is, for --transport tcp|auto (default: the URL's host and port)").argParser(optionParser(parseTcpEndpoint)))
    .option('--from-start', 'live playout (-o -): start at the oldest segment the server keeps, not the newest')
    .addOption(new Option('--latency-ms <ms>', 'live playout (-o -): give up on a segment (reported, counted) once a later one has waited this long').argParser(optionParser(parseLatencyMs)))
    .addOption(new Option('--multicast-if <if>', 'join groups on this interface: an IPv4 address, a name or an index').argParser(optionParser(parseJoinInterface)))
    .addOption(new Option('--log-level <level>', 'log on stderr at this level: trace, debug, info, warn, error, fatal or silent (default: no logs)').argParser(optionParser(parseLogLevel)))
    .addOption(new Option('--log-format <format>', 'json: one JSON object per line (default); pretty: one line for a person').argParser(optionParser(parseLogFormat)))
    .addHelpText(
      'after',
      `
Examples:
  rqcast fetch rqcast://server.example:4433              every object of channel "main" into .
  rqcast fetch rqcast://server.example:4433/movie.mp4    channel "movie.mp4" if there is one, else that object of "main"
  rqcast fetch rqcast://[::1]:4433//movie.mp4 -o m.mp4   one object of "main" into m.mp4
  rqcast fetch rqcast://10.0.0.1:4433/main,hd/movie.mp4  combine channels "main" and "hd"
  rqcast fetch rqcast://10.0.0.1:4433//movie.ts -o - | ffplay -
                                                        play out in order while it downloads
  rqcast fetch rqcast://10.0.0.1:4433/cam -o - | ffplay -
                                                        the live stream "cam" (serve --live cam), from its newest segment
  rqcast fetch rqcast://10.0.0.1:4433 --transport udp    unicast only, even where a group is announced
  rqcast fetch rqcast://10.0.0.1:4433 --transport tcp    over one TCP connection (networks that pass only TCP)
  rqcast fetch rqcast://a.example//f.iso rqcast://b.example//f.iso -o f.iso
                                                        from two servers of one group at once (serve --server-index/--servers)
  rqcast fetch 'flute://232.1.1.1:5000?tsi=1&source=10.0.0.1' -o out/
                                                        every object of a FLUTE session, no server

Off a terminal (piped, scripted), warnings and a one-line summary go to stderr;
-q keeps warnings and errors only.

Resume: a fetch that stops short (Ctrl-C, SIGTERM, a timeout, kill -9, power loss)
keeps .NAME.rqcast-part and .NAME.rqcast-state beside NAME; the next fetch of the
same object verifies the blocks kept and fetches only the others. Not with -o -:
what went to stdout cannot be resumed.

Exit codes: 0 ok, 2 usage, 3 refused by the server, 4 timeout, 5 digest mismatch,
6 no such object (or channel), 130 interrupted, 1 other error. With -o -, a digest
mismatch (5) is found after the bytes went to stdout: they cannot be taken back.`,
    )
    .action(async (urls: string[], opts: FetchCliOptions) => {
      process.exitCode = await runFetch(urls, opts);
      // The command: out as soon as the objects are published and the lines written (prompt-exit.ts).
      if (po.command) await exitWhenFlushed(process.exitCode);
    });
}
