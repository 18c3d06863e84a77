/**
 * `rqcast ls rqcast://HOST[:PORT][/CHANNELS] [--json] [--timeout 10s]`:
 * what a server offers, from its FDTs (lib/client/catalogue-reader.ts):
 * each channel with its rate and transports, and each object of it with
 * its size and the first 12 hex digits of its SHA-256. Without CHANNELS,
 * every channel the server lists; with them, those.
 *
 * Exit codes (docs/PROTOCOL.md §10.9, exit-codes.ts): 0 listed; 2 usage;
 * 3 refused (no such channel); 4 no answer or no FDT for --timeout; 1
 * anything else.
 */
import { Command, Option } from 'commander';
import { CatalogueListing, ListedChannel, readCatalogue } from '../client/catalogue-reader';
import { JoinRefusedError, printableName } from '../client/errors';
import { formatBytes } from '../client/progress';
import { DEFAULT_CHANNEL, parseRqcastUrl, RqcastUrl } from '../client/url';
import { ErrorCode } from '../protocol/messages';
import { EXIT_OK, exitCodeFor } from './exit-codes';
import { optionParser, parseDuration } from './options';

export interface LsCliOptions {
  json?: boolean;
  /** ms (--timeout). */
  timeout: number;
}

/** Hex digits of the SHA-256 shown in the table: enough to tell objects apart by eye, and to compare with sha256sum. */
export const SHA256_PREFIX_HEX = 12;

function rateText(bps: number | undefined): string {
  if (bps === undefined) return '? Mbit/s';
  return `${Number((bps / 1e6).toFixed(3))} Mbit/s`;
}

/** How a channel is received: its transports, the group after "multicast". */
function transportsText(c: ListedChannel): string {
  if (c.transports === undefined) return c.group ? `multicast ${c.group}` : '';
  return c.transports.map((t) => (t === 'multicast' && c.group ? `multicast ${c.group}` : t)).join(', ');
}

/** The listing as people read it: one header line per channel, its objects in aligned columns beneath. */
export function listingText(listing: CatalogueListing): string {
  const lines: string[] = [];
  for (const c of listing.channels) {
    const how = transportsText(c);
    lines.push(`channel ${printableName(c.name)}${c.tsi !== undefined ? ` (tsi ${c.tsi})` : ''}: ${rateText(c.rateBps)}${how ? `, ${how}` : ''}${c.live ? ', live (segments kept now)' : ''}`);
    if (c.objects === undefined) {
      lines.push('  (objects not read)');
      continue;
    }
    if (c.objects.length === 0) {
      lines.push('  (no objects)');
      continue;
    }
    const rows = c.objects.map((o) => [printableName(o.name), o.size === undefined ? '?' : formatBytes(o.size), o.sha256 === undefined ? '-' : o.sha256.slice(0, SHA256_PREFIX_HEX)]);
    const nameWidth = Math.max(...rows.map((r) => r[0].length));
    const sizeWidth = Math.max(...rows.map((r) => r[1].length));
    for (const [name, size, sha] of rows) lines.push(`  ${name.padEnd(nameWidth)}  ${size.padStart(sizeWidth)}  ${sha}`);
  }
  return lines.join('\n') + '\n';
}

/** The listing as one JSON object (sizes in bytes, rates in bit/s, full SHA-256 in hex). */
export function listingJson(listing: CatalogueListing): string {
  return JSON.stringify({ type: 'listing', channels: listing.channels });
}

/** What a refusal means to someone listing: the channel named is not there. */
function explain(e: unknown, url: RqcastUrl): unknown {
  if (e instanceof JoinRefusedError && e.serverCode === ErrorCode.UnknownChannel) {
    const which = url.channels.length === 0 ? `the server has no channel "${DEFAULT_CHANNEL}" to read its channel list from; name one` : 'name channels the server has';
    return new JoinRefusedError(e.serverCode, `${e.serverReason}: ${which} (rqcast ls rqcast://HOST:PORT/CHANNEL)`);
  }
  return e;
}

export async function runLs(urlText: string, o: LsCliOptions, out: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  let url: RqcastUrl | undefined;
  try {
    const parsed = parseRqcastUrl(urlText);
    // One segment here can only be a channel: ls lists channels.
    url = { host: parsed.host, port: parsed.port, channels: parsed.channels, ...(parsed.name !== undefined ? { name: parsed.name } : {}) };
    const listing = await readCatalogue(url, { timeoutMs: o.timeout });
    out(o.json ? listingJson(listing) + '\n' : listingText(listing));
    return EXIT_OK;
  } catch (e) {
    const err = url ? explain(e, url) : e;
    const code = exitCodeFor(err);
    const message = err instanceof Error ? err.message : String(err);
    if (o.json) out(JSON.stringify({ type: 'error', code: (err as { code?: string }).code ?? 'ERR_RQ_CLIENT', message, exitCode: code }) + '\n');
    process.stderr.write(`rqcast ls: ${message}\n`);
    return code;
  }
}

export function registerLsCommand(program: Command): Command {
  return program
    .command('ls')
    .description("list a server's channels and objects (from its FDTs; nothing is fetched)")
    .argument('<url>', 'rqcast://HOST[:PORT][/CHANNELS] — CHANNELS comma-separated; none: every channel the server lists')
    .option('--json', 'one JSON object on stdout: channels (name, tsi, rateBps, transports, group) with their objects (name, toi, size, sha256)')
    .addOption(new Option('--timeout <duration>', 'give up after this long without an answer or an FDT').argParser(optionParser(parseDuration)).default(10_000, '10s'))
    .addHelpText(
      'after',
      `
Examples:
  rqcast ls rqcast://server.example:4433          every channel and its objects
  rqcast ls rqcast://server.example:4433/hd --json

Columns: name, size, the first ${SHA256_PREFIX_HEX} hex digits of the SHA-256.
Exit codes: 0 ok, 2 usage, 3 refused (no such channel), 4 timeout, 1 other error.`,
    )
    .action(async (url: string, opts: LsCliOptions) => {
      process.exitCode = await runLs(url, opts);
    });
}
