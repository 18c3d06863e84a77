/**
 * `rqcast fetch URL [-o PATH] [--ttl 30s | --until ISO] [--ack]
 *  [--timeout 60s] [--memory MIB] [--json] [--quiet] [--loss PCT]
 *  [--transport auto|multicast|udp|tcp] [--fallback-after 2s] [--multicast-if IF]
 *  [--tcp HOST:PORT]`
 *
 * URL is rqcast://HOST… (a server: RqcastClient) or flute://GROUP:PORT?tsi=N
 * (a multicast group with no server: FluteReceiver, docs/PROTOCOL.md
 * §10.10); options that need a server (--ttl, --until, --ack, --transport
 * udp|tcp, --fallback-after, --tcp) are usage errors with flute://.
 *
 * TCP (issue 9): --transport tcp fetches over one TCP connection to the
 * URL's host and port (or --tcp HOST:PORT); with --transport auto, TCP is
 * the last step after multicast and UDP. --ack has no effect over TCP.
 *
 * Exit codes (docs/PROTOCOL.md §10.9, exit-codes.ts): 0 every object
 * fetched and verified; 2 usage (bad URL or option); 3 the server refused
 * the JOIN (e.g. unknown channel); 4 timeout (nothing from the server for
 * --timeout, or --until reached first); 5 an object's SHA-256 did not match
 * the FDT; 130 interrupted (SIGINT/SIGTERM); 1 anything else.
 *
 * Option values are read by the parsers every command shares (options.ts).
 */
import { statSync } from 'fs';
import { Command, Option } from 'commander';
import { FetchSummary, RqcastClient, RqcastClientOptions } from '../client/client';
import type { TransportMode } from '../client/fallback';
import { FluteReceiver } from '../client/flute-receiver';
import { chooseProgressMode, ProgressDisplay } from '../client/progress';
import { FluteUrl, parseFetchUrl } from '../client/url';
import { UsageError } from './errors';
import { EXIT_OK, exitCodeFor } from './exit-codes';
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
  /** Live playout (-o -): --from-start, --latency-ms. */
  fromStart?: boolean;
  latencyMs?: number;
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

/** Runs one fetch for the CLI; returns the process exit code. */
export async function runFetch(urlText: string, o: FetchCliOptions): Promise<number> {
  const mode = chooseProgressMode({ json: o.json, quiet: o.quiet, isTTY: process.stderr.isTTY === true });
  // With -o -, stdout carries the object: JSON lines go to stderr.
  const toStdout = o.output === '-';
  const jsonOut: NodeJS.WritableStream = toStdout ? process.stderr : process.stdout;
  let client: RqcastClient | FluteReceiver;
  let display: ProgressDisplay | undefined;
  try {
    const parsed = parseFetchUrl(urlText);
    if (parsed.scheme === 'flute') {
      client = fluteReceiver(parsed.url, o);
    } else {
      const url = parsed.url;
      const options: RqcastClientOptions = {
        ...outputTarget(url, o.output),
        ttlMs: o.ttl,
        untilMs: o.until,
        ack: o.ack,
        timeoutMs: o.timeout,
        lossRate: o.loss === undefined ? undefined : o.loss / 100,
        memoryBytes: o.memory === undefined ? undefined : o.memory * 2 ** 20,
        transport: o.transport,
        fallbackAfterMs: o.fallbackAfter,
        multicastInterface: o.multicastIf,
        ...(o.tcp ? { tcp: o.tcp } : {}),
        ...(o.fromStart ? { fromStart: true } : {}),
        ...(o.latencyMs !== undefined ? { latencyMs: o.latencyMs } : {}),
      };
      if ((o.fromStart || o.latencyMs !== undefined) && o.output !== '-') throw new UsageError('--from-start and --latency-ms are for live playout: add -o -');
      client = new RqcastClient(url, options);
      // A gap is never silent: stderr, and a JSON line with --json.
      client.on('gap', (g) => {
        process.stderr.write(`rqcast fetch: gap: segment ${g.object} skipped (${g.reason === 'late' ? `not decoded within --latency-ms` : "it left the server's window before it decoded"})\n`);
        if (o.json) jsonOut.write(JSON.stringify({ type: 'gap', object: g.object, seq: g.seq, reason: g.reason }) + '\n');
      });
    }
  } catch (e) {
    return report(e, undefined, o, jsonOut);
  }
  display = new ProgressDisplay(client, mode, jsonOut);
  const onSignal = (): void => client.close();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // The reader of -o - went away (EPIPE): the fetch ends with the error, not the process.
  const onStdoutError = (): void => client.close();
  if (toStdout) process.stdout.on('error', onStdoutError);
  let summary: FetchSummary;
  try {
    summary = await client.fetch();
  } catch (e) {
    return report(e, display, o, jsonOut);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onStdoutError);
  }
  display.succeed(summary);
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
  ];
  for (const [value, name] of serverOnly) {
    if (value !== undefined) throw new UsageError(`${name} needs a server: a flute:// URL has none`);
  }
  if (o.multicastIf !== undefined && url.interface !== undefined && o.multicastIf !== url.interface) {
    throw new UsageError(`--multicast-if ${o.multicastIf} and the URL's if=${url.interface} disagree`);
  }
  return new FluteReceiver(url, {
    ...outputTarget(url, o.output),
    timeoutMs: o.timeout,
    lossRate: o.loss === undefined ? undefined : o.loss / 100,
    memoryBytes: o.memory === undefined ? undefined : o.memory * 2 ** 20,
    multicastInterface: o.multicastIf,
  });
}

function report(e: unknown, display: ProgressDisplay | undefined, o: FetchCliOptions, jsonOut: NodeJS.WritableStream = process.stdout): number {
  const code = exitCodeFor(e);
  const err = e instanceof Error ? e : new Error(String(e));
  display?.fail(err, code);
  if (o.json && !display) jsonOut.write(JSON.stringify({ type: 'error', code: (err as { code?: string }).code ?? 'ERR_RQ_CLIENT', message: err.message, exitCode: code }) + '\n');
  process.stderr.write(`rqcast fetch: ${err.message}\n`);
  return code;
}

export function registerFetchCommand(program: Command): Command {
  return program
    .command('fetch')
    .description('fetch objects from an rqcast server into files (verified by SHA-256, written atomically)')
    .argument(
      '<url>',
      'rqcast://HOST[:PORT][/CHANNELS][/NAME] — CHANNELS comma-separated (default "main"), NAME one object (default all); IPv6 hosts in brackets; ' +
        'or flute://GROUP:PORT[/NAME]?tsi=N[&source=ADDR][&if=IFACE] — a multicast group alone, no server',
    )
    .option('-o, --output <path>', "a file (when the URL names one object) or a directory (default: current directory); '-': play the named object out to stdout in order, block by block (JSON lines then go to stderr)")
    .addOption(new Option('--ttl <duration>', 'session time asked for in each JOIN, renewed at half (e.g. 30s, 2m; default 30s)').argParser(optionParser(parseDuration)).conflicts('until'))
    .addOption(new Option('--until <iso>', 'end the session at this absolute time (ISO 8601)').argParser(optionParser(parseAbsoluteTime)))
    .option('--ack', 'ACK mode: report losses, the server replaces them with fresh symbols')
    .addOption(new Option('--timeout <duration>', 'give up after this long without anything from the server').argParser(optionParser(parseDuration)).default(60_000, '60s'))
    .addOption(
      new Option('--memory <MiB>', 'most memory for source blocks not yet decoded (at least two blocks; symbols of others are dropped and resent by the stream)')
        .argParser(optionParser(parseMebibytes))
        .default(1024, '1024'),
    )
    .option('--json', 'JSON lines on stdout: progress, objects, final summary')
    .option('-q, --quiet', 'no progress display')
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
      new Option('--fallback-after <duration>', 'auto: move a channel on (group -> UDP -> TCP) when it gets nothing for this long (default 2s)').argParser(optionParser(parseDuration)),
    )
    .addOption(new Option('--tcp <host:port>', "where the server's TCP transport is, for --transport tcp|auto (default: the URL's host and port)").argParser(optionParser(parseTcpEndpoint)))
    .option('--from-start', 'live playout (-o -): start at the oldest segment the server keeps, not the newest')
    .addOption(new Option('--latency-ms <ms>', 'live playout (-o -): give up on a segment (reported, counted) once a later one has waited this long').argParser(optionParser(parseLatencyMs)))
    .addOption(new Option('--multicast-if <if>', 'join groups on this interface: an IPv4 address, a name or an index').argParser(optionParser(parseJoinInterface)))
    .addHelpText(
      'after',
      `
Examples:
  rqcast fetch rqcast://server.example:4433              every object of channel "main" into .
  rqcast fetch rqcast://[::1]:4433//movie.mp4 -o m.mp4   one object of "main" into m.mp4
  rqcast fetch rqcast://10.0.0.1:4433/main,hd/movie.mp4  combine channels "main" and "hd"
  rqcast fetch rqcast://10.0.0.1:4433//movie.ts -o - | ffplay -
                                                        play out in order while it downloads
  rqcast fetch rqcast://10.0.0.1:4433 --transport udp    unicast only, even where a group is announced
  rqcast fetch rqcast://10.0.0.1:4433 --transport tcp    over one TCP connection (networks that pass only TCP)
  rqcast fetch 'flute://232.1.1.1:5000?tsi=1&source=10.0.0.1' -o out/
                                                        every object of a FLUTE session, no server

Exit codes: 0 ok, 2 usage, 3 refused by the server, 4 timeout, 5 digest mismatch,
130 interrupted, 1 other error. With -o -, a digest mismatch (5) is found after the
bytes went to stdout: they cannot be taken back.`,
    )
    .action(async (url: string, opts: FetchCliOptions) => {
      process.exitCode = await runFetch(url, opts);
    });
}
