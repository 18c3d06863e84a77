/**
 * `rqcast relay rqcast://UPSTREAM:PORT[/CHANNELS] [--port 4433]
 *  [--bind 0.0.0.0] [--rate 100] [--server-index I --servers N]
 *  [--secret HEX] [--spool DIR] [--mode auto|regenerate|forward] [--transport MODE]
 *  [--json] [--quiet]`
 *
 * Joins the upstream server's channels like a client, decodes every object
 * once into the spool directory (verified by SHA-256), and serves the
 * same objects under the same channel names with its own server
 * (lib/relay/relay.ts, docs/PROTOCOL.md §10.13). Give it its own place in
 * the origin's server group (--server-index/--servers) so that clients
 * can combine it with the origin and other relays (fetch URL1 URL2 …).
 *
 * - stdout gets `listening on HOST:PORT` (or, with --json, one JSON object)
 *   once the relay serves; logs (pino) go to stderr.
 * - Without --spool, a temporary directory is used and removed on exit.
 * - --mode auto (the default): regenerate, unless an upstream channel is
 *   live (its FDT says Complete="false"): then forward. --mode forward with
 *   --server-index/--servers is a usage error (its ESIs are the upstream's).
 * - SIGINT/SIGTERM stop the relay (exit 0); a bad option exits 2; other
 *   failures 1 (exit-codes.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import pino from 'pino';
import { parseRqcastUrl } from '../client/url';
import type { TransportMode } from '../client/fallback';
import { DEFAULT_PORT, DEFAULT_RATE_MBPS } from '../server/server';
import { LiveChannelRelayError, Relay, type RelayMode } from '../relay/relay';
import { ForwardRelay } from '../relay/forward-relay';
import type { ServerAddress } from '../server/server';
import { MAX_GROUP_SERVERS } from '../content/server-group';
import { firstSignal } from './signals';
import { UsageError } from './errors';
import { EXIT_OK, exitCodeFor } from './exit-codes';
import { hexSecret, integerIn, optionParser, parseDuration, parsePort, parseRateMbps, parseTransportMode } from './options';
import { listeningJson, listeningText } from './listening';
import { serverGroupOf } from './serve-options';

export interface RelayCliOptions {
  port: number;
  bind: string;
  rate: number;
  serverIndex?: number;
  servers?: number;
  secret?: Uint8Array;
  spool?: string;
  mode: RelayMode | 'auto';
  transport?: TransportMode;
  /** ms (--upstream-ttl). */
  upstreamTtl?: number;
  json?: boolean;
  quiet?: boolean;
}

const RELAY_MODES: readonly (RelayMode | 'auto')[] = ['auto', 'regenerate', 'forward'];

function parseRelayMode(text: string): RelayMode | 'auto' {
  const m = text.trim() as RelayMode | 'auto';
  if (!RELAY_MODES.includes(m)) throw new UsageError(`a relay mode is one of ${RELAY_MODES.join(', ')}`);
  return m;
}

export interface RelayIo {
  stdout: (line: string) => void;
  stderr: NodeJS.WritableStream;
  /** Resolves when the relay should stop. Default: the first SIGINT or SIGTERM. */
  stopSignal?: () => Promise<string>;
}

/** Runs a relay until stopped; returns the exit code. */
export async function runRelay(upstreamText: string, opts: RelayCliOptions, io: RelayIo): Promise<number> {
  let relay: Relay | ForwardRelay | undefined;
  let ownSpool: string | undefined;
  const stop = (io.stopSignal ?? firstSignal)();
  try {
    const upstream = parseRqcastUrl(upstreamText);
    const serverGroup = serverGroupOf(opts);
    if (opts.mode === 'forward' && serverGroup) {
      throw new UsageError(
        "a forward relay sends its upstream's symbols (the same ESIs): it has no place in a server group; leave out --server-index/--servers, or use --mode regenerate",
      );
    }
    const spool = opts.spool ?? (ownSpool = mkdtempSync(path.join(tmpdir(), 'rqcast-relay-')));
    const log = pino({ name: 'rqcast-relay', level: opts.quiet ? 'error' : 'info' }, pino.destination({ dest: 2, sync: false }));
    const server = {
      port: opts.port,
      host: opts.bind,
      rateMbps: opts.rate,
      ...(opts.secret ? { secret: opts.secret } : {}),
    };
    const client = { ...(opts.transport ? { transport: opts.transport } : {}), ...(opts.upstreamTtl !== undefined ? { ttlMs: opts.upstreamTtl } : {}) };
    const forward = (): ForwardRelay => {
      const r = new ForwardRelay({ upstream, server, client, logger: log });
      r.on('warning', (m) => log.warn({ upstream: upstreamText }, m));
      r.on('upstream-failed', (err) => log.warn({ err: err.message }, 'upstream session failed; trying again'));
      return r;
    };
    if (opts.mode === 'forward') relay = forward();
    else {
      const regenerate = new Relay({
        upstream,
        spoolDir: spool,
        // A restarted relay must not resend the repair symbols its last run sent (§10.4), as serve.
        server: { ...server, repairStart: 'random', ...(serverGroup ? { serverGroup } : {}) },
        client,
        logger: log,
      });
      relay = regenerate;
      regenerate.on('warning', (m) => log.warn({ upstream: upstreamText }, m));
      regenerate.on('upstream-object', (o) => log.info(o, 'upstream object complete'));
      regenerate.on('upstream-progress', (p) => log.info({ heldSymbols: p.heldSymbols, neededSymbols: p.neededSymbols, blocksDecoded: p.blocksDecoded, blocks: p.blocks }, 'upstream progress'));
      regenerate.on('upstream-failed', (err) => log.warn({ err: err.message }, 'upstream fetch failed; trying again'));
      regenerate.on('upstream-done', (s) =>
        log.info({ objects: s.objects.length, bytes: s.bytes, symbolsReceived: s.symbolsReceived, neededSymbols: s.neededSymbols, attempts: regenerate.attempts }, 'upstream complete'),
      );
    }
    // auto: regenerate, unless the upstream channels are live (an open FDT): then forward, the only mode that relays them.
    const start = async (): Promise<ServerAddress> => {
      try {
        return await (relay as Relay | ForwardRelay).start();
      } catch (e) {
        if (opts.mode !== 'auto' || !(e instanceof LiveChannelRelayError) || serverGroup) throw e;
        await relay?.close();
        log.info({ channels: e.channels }, 'live channel upstream: relaying in forward mode');
        relay = forward();
        return relay.start();
      }
    };
    const started = start();
    const first = await Promise.race([started.then((a) => ({ a })), stop.then(() => undefined)]);
    if (first === undefined) {
      await relay?.close();
      await started.catch(() => undefined);
      return EXIT_OK;
    }
    const address = first.a;
    const served = (relay as Relay | ForwardRelay).downstream!;
    if (opts.json) {
      io.stdout(
        listeningJson(address, {
          upstream: upstreamText,
          mode: (relay as Relay | ForwardRelay).mode,
          serverGroup: served.serverGroup,
          channels: served.channels.map((c) => ({ name: c.name, tsi: c.tsi, objects: c.objects.map((o) => o.name) })),
        }),
      );
    } else {
      io.stdout(listeningText(address, [`relaying ${upstreamText}`]));
    }
    await stop;
    await relay?.close();
    return EXIT_OK;
  } catch (e) {
    await relay?.close();
    io.stderr.write(`rqcast relay: ${e instanceof Error ? e.message : String(e)}\n`);
    return exitCodeFor(e);
  } finally {
    if (ownSpool) rmSync(ownSpool, { recursive: true, force: true });
  }
}

export function registerRelayCommand(program: Command, io?: RelayIo): void {
  program
    .command('relay')
    .description("join an upstream rqcast server's channels like a client and serve the same objects to clients of its own")
    .argument('<upstream>', 'rqcast://HOST[:PORT][/CHANNELS] — the server (origin or relay) and channels to relay (default "main")')
    .addOption(new Option('--port <port>', 'UDP control port of the relay').default(DEFAULT_PORT).argParser(optionParser(parsePort)))
    .addOption(new Option('--bind <address>', 'address to bind the control port to').default('0.0.0.0'))
    .addOption(new Option('--rate <mbps>', 'pacing rate per channel, Mbit/s').default(DEFAULT_RATE_MBPS).argParser(optionParser(parseRateMbps)))
    .addOption(
      new Option('--server-index <i>', "the relay's place in the origin's server group (0..N-1): its symbols never repeat another member's").argParser(
        optionParser(integerIn(0, MAX_GROUP_SERVERS - 1, 'a server index')),
      ),
    )
    .addOption(new Option('--servers <n>', `the number of servers in the group, relays included (1..${MAX_GROUP_SERVERS})`).argParser(optionParser(integerIn(1, MAX_GROUP_SERVERS, 'a number of servers'))))
    .addOption(new Option('--secret <hex>', "the relay's own cookie master secret (>= 16 bytes, hex); the upstream's need not be the same").argParser(optionParser(hexSecret(16))))
    .addOption(new Option('--spool <dir>', 'regenerate mode: where decoded objects are kept and served from (default: a temporary directory, removed on exit)'))
    .addOption(
      new Option(
        '--mode <mode>',
        "regenerate: decode each object once, serve fresh symbols from its own ESI range (combine it with the origin); forward: decode nothing, pass the upstream's symbols on as they arrive (live channels; its symbols are the upstream's); auto: regenerate, or forward when an upstream channel is live",
      )
        .default('auto')
        .argParser(optionParser(parseRelayMode)),
    )
    .addOption(new Option('--transport <mode>', 'how the relay receives from upstream: auto, multicast, udp or tcp (as fetch --transport)').argParser(optionParser(parseTransportMode)))
    .addOption(
      new Option('--upstream-ttl <duration>', 'session time the relay asks upstream for, renewed at half: an upstream that restarts hears from the relay within half of it (default 30s)').argParser(
        optionParser(parseDuration),
      ),
    )
    .option('--json', 'print the listening line as JSON')
    .option('--quiet', 'log errors only')
    .addHelpText(
      'after',
      `
An origin with two relays, clients combining any of them (docs/PROTOCOL.md §10.12, §10.13):
  rqcast serve ./files --server-index 0 --servers 3                       origin
  rqcast relay rqcast://origin:4433 --server-index 1 --servers 3          relay A
  rqcast relay rqcast://relay-a:4433 --server-index 2 --servers 3         relay B, fed by relay A
  rqcast fetch rqcast://relay-a:4433//f.iso rqcast://relay-b:4433//f.iso  a client of both
A regenerating relay serves as soon as each channel has a decoded object, and
adds the others as they decode; if the upstream goes away meanwhile it keeps
serving what it has, and the rest goes on when the upstream comes back.
A live channel is relayed in forward mode (the default picks it):
  rqcast relay rqcast://origin:4433/cam --mode forward                    symbols passed on as they arrive`,
    )
    .action(async (upstream: string, opts: RelayCliOptions) => {
      const out: RelayIo = io ?? { stdout: (line) => process.stdout.write(line + '\n'), stderr: process.stderr };
      process.exitCode = await runRelay(upstream, opts, out);
    });
}
