/**
 * The commands' logs: pino, on stderr, at `--log-level` and in
 * `--log-format json|pretty`.
 *
 * - json (the default): pino's own JSON lines, one per event, for log
 *   collectors (journald keeps them as they are; `jq` reads them).
 * - pretty: one line per event for a person, written by our own small
 *   formatter (no pino-pretty dependency): `HH:MM:SS.mmm LEVEL message
 *   key=value ...`, nested values as JSON, an error as its message (and
 *   its stack at debug or below).
 */
import type { EventEmitter } from 'node:events';
import type { DestinationStream, Logger } from 'pino';
import { UsageError } from './errors';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export const parseLogLevel = (text: string): LogLevel => {
  const t = text.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(t)) return t as LogLevel;
  throw new UsageError(`"${text}" is not a log level: use one of ${LOG_LEVELS.join(', ')}`);
};

export const parseLogFormat = (text: string): LogFormat => {
  const t = text.trim().toLowerCase();
  if ((LOG_FORMATS as readonly string[]).includes(t)) return t as LogFormat;
  throw new UsageError(`"${text}" is not a log format: use json (one JSON object per line) or pretty (for a person)`);
};

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** pino's own fields, not shown as key=value. */
const OWN_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);

function clock(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function valueText(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** One pino JSON line as one line for a person (the JSON line itself if it does not parse). */
export function prettyLine(json: string, showStacks = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : json + '\n';
  }
  const level = LEVEL_NAMES[Number(o.level)] ?? String(o.level);
  const parts = [clock(typeof o.time === 'number' ? o.time : Date.now()), level.padEnd(5), String(o.msg ?? '')];
  let stack: string | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (OWN_FIELDS.has(k) || v === undefined) continue;
    const e = v as { message?: unknown; stack?: unknown };
    if (k === 'err' && typeof v === 'object' && v !== null && typeof e.message === 'string') {
      parts.push(`err=${valueText(e.message)}`);
      if (showStacks && typeof e.stack === 'string') stack = e.stack;
      continue;
    }
    parts.push(`${k}=${valueText(v)}`);
  }
  return parts.join(' ') + '\n' + (stack ? stack.replace(/^/gm, '    ') + '\n' : '');
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Default: stderr (fd 2). */
  stream?: { write(text: string): unknown };
}

/** The command's logger. */
export function createLogger(o: LoggerOptions): Logger {
  // Loaded here, not at the top: a fetch without --log-level never needs pino (its start-up, fetch --json startupMs).
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const pino = require('pino') as typeof import('pino');
  const base = { name: 'rqcast', level: o.level };
  if (o.format === 'pretty') {
    const out = o.stream ?? process.stderr;
    const stacks = o.level === 'trace' || o.level === 'debug';
    return pino(base, { write: (line: string) => out.write(prettyLine(line, stacks)) });
  }
  if (o.stream) return pino(base, o.stream as DestinationStream);
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

/**
 * Logs a fetch's events (an RqcastClient's or a FluteReceiver's): joined, transport changes and objects fetched at
 * info, warnings at warn, progress at debug, the summary at info ('done').
 */
export function logFetchEvents(client: EventEmitter, log: Logger): void {
  client.on('joined', (info: object) => log.info(info, 'joined'));
  client.on('transport', (t: object) => log.info(t, 'transport'));
  client.on('warning', (message: string) => log.warn({}, message));
  client.on('object', (o: { name: string; path: string; bytes: number; sha256: string; seconds: number; symbolsReceived: number; neededSymbols: number }) =>
    log.info({ name: o.name, path: o.path, bytes: o.bytes, sha256: o.sha256, seconds: o.seconds, symbolsReceived: o.symbolsReceived, neededSymbols: o.neededSymbols }, 'object fetched'),
  );
  client.on('progress', (p: { heldSymbols: number; neededSymbols: number; blocksDecoded: number; blocks: number; rateBytesPerSec: number }) =>
    log.debug({ heldSymbols: p.heldSymbols, neededSymbols: p.neededSymbols, blocksDecoded: p.blocksDecoded, blocks: p.blocks, rateBytesPerSec: Math.round(p.rateBytesPerSec) }, 'progress'),
  );
  client.on('done', (s: { objects: unknown[]; bytes: number; seconds: number; packetsReceived: number; symbolsReceived: number; neededSymbols: number; symbolsDuplicate?: number }) =>
    log.info(
      { objects: s.objects.length, bytes: s.bytes, seconds: s.seconds, packetsReceived: s.packetsReceived, symbolsReceived: s.symbolsReceived, symbolsDuplicate: s.symbolsDuplicate, neededSymbols: s.neededSymbols },
      'fetched',
    ),
  );
}
