/**
 * How `rqcast fetch` shows a fetch:
 * - 'bar': a cli-progress bar on a terminal (stderr): symbols held vs
 *   needed, receive rate, ETA; one summary line at the end.
 * - 'json': JSON lines on stdout: {"type":"progress",...} every progress
 *   event, {"type":"transport",...} each time a channel's transport is set
 *   or falls back, {"type":"object",...} per verified object, and a final
 *   {"type":"summary",...} (or {"type":"error",...}).
 * - 'lines': off a terminal (piped, scripted, under systemd): no bar, but
 *   warnings and transport changes as lines on stderr, and the one-line
 *   summary at the end, so a log keeps what happened.
 * - 'quiet' (--quiet): warnings only, on stderr; no progress, no summary.
 *   Errors are the caller's to print, in every mode.
 */
import type { SingleBar } from 'cli-progress';
import type { EventEmitter } from 'events';
import { performance } from 'perf_hooks';
import type { FetchSummary, ObjectResult, ProgressInfo, TransportEvent } from './events';

export type ProgressMode = 'bar' | 'lines' | 'json' | 'quiet';

export function chooseProgressMode(o: { json?: boolean; quiet?: boolean; isTTY?: boolean }): ProgressMode {
  if (o.json) return 'json';
  if (o.quiet) return 'quiet';
  return o.isTTY ? 'bar' : 'lines';
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

export function formatRate(bytesPerSec: number): string {
  return `${((bytesPerSec * 8) / 1e6).toFixed(1)} Mbit/s`;
}

/**
 * The summary as JSON-safe numbers (bigint-free, rounded). `writtenAtMs`:
 * when the line is written (performance.now()), for the fetch's end
 * (endPhases) and `summaryAtMs`.
 */
export function summaryJson(s: FetchSummary, writtenAtMs?: number): Record<string, unknown> {
  return {
    type: 'summary',
    objects: s.objects.map((o) => ({ name: o.name, path: o.path, bytes: o.bytes, sha256: o.sha256, seconds: o.seconds })),
    channels: s.channels.map((c) => ({
      name: c.name,
      tsi: c.tsi,
      transport: c.transport,
      ...(c.group !== undefined ? { group: c.group } : {}),
      ...(c.server !== undefined ? { server: c.server } : {}),
    })),
    bytes: s.bytes,
    seconds: s.seconds,
    packetsReceived: s.packetsReceived,
    bytesReceived: s.bytesReceived,
    symbolsReceived: s.symbolsReceived,
    symbolsUsed: s.symbolsUsed,
    symbolsDuplicate: s.symbolsDuplicate,
    symbolsLate: s.symbolsLate,
    symbolsSurplus: s.symbolsSurplus,
    symbolsDropped: s.symbolsDropped,
    fdtPackets: s.fdtPackets,
    neededSymbols: s.neededSymbols,
    symbolsResumed: s.symbolsResumed,
    blocksResumed: s.blocksResumed,
    symbolsReplayed: s.symbolsReplayed,
    overhead: Number(s.overhead.toFixed(6)),
    replacements: s.replacements,
    acksSent: s.acksSent,
    simulatedDrops: s.simulatedDrops,
    multicastPackets: s.multicastPackets,
    multicastForeign: s.multicastForeign,
    socketDrops: s.socketDrops,
    budgetDrops: s.budgetDrops,
    blocksEvicted: s.blocksEvicted,
    peakPartialBlockBytes: s.peakPartialBlockBytes,
    memoryBytes: s.memoryBytes,
    ...(s.servers ? { servers: s.servers.map((v) => ({ ...v })), duplicates: s.duplicates ?? 0 } : {}),
    ...(s.startupMs !== undefined ? { startupMs: s.startupMs } : {}),
    ...(s.tailMs !== undefined ? { tailMs: s.tailMs } : {}),
    ...(s.startupPhasesMs !== undefined ? { startupPhasesMs: { ...s.startupPhasesMs } } : {}),
    ...(s.tailPhasesMs !== undefined ? { tailPhasesMs: { ...s.tailPhasesMs } } : {}),
    ...(writtenAtMs !== undefined ? { ...endPhases(s, writtenAtMs), summaryAtMs: Math.round(writtenAtMs) } : {}),
  };
}

/**
 * What came after the tail, in whole milliseconds that add up to the time
 * from the last object published to the summary line written: `close`
 * (every transport closed, LEAVE sent where joined) and `summary` (the rest,
 * to the line written). Absent when no object was published.
 */
function endPhases(s: FetchSummary, writtenAtMs: number): { endPhasesMs?: { close: number; summary: number } } {
  if (s.publishedAtMs === undefined || s.closeMs === undefined) return {};
  const close = Math.round(s.closeMs);
  return { endPhasesMs: { close, summary: Math.round(writtenAtMs - s.publishedAtMs) - close } };
}

export function summaryLine(s: FetchSummary): string {
  const rate = s.seconds > 0 ? s.bytes / s.seconds : 0;
  const n = s.objects.length;
  return (
    `fetched ${n} object${n === 1 ? '' : 's'}, ${formatBytes(s.bytes)} in ${s.seconds.toFixed(2)} s ` +
    `(${formatRate(rate)}), overhead ${(s.overhead * 100).toFixed(1)}%` +
    (s.replacements > 0 ? `, ${s.replacements} replacements` : '') +
    (s.blocksResumed > 0 ? `, ${s.blocksResumed} block${s.blocksResumed === 1 ? '' : 's'} resumed` : '') +
    (s.symbolsReplayed > 0 ? `, ${s.symbolsReplayed} symbols resumed` : '') +
    // A fetch from several servers: each one's symbols, and the duplicates.
    (s.servers ? `, from ${s.servers.map((v) => `${v.url} ${v.symbols} symbols${v.dropped ? ` (dropped: ${v.dropped})` : ''}`).join(', ')}, ${s.duplicates ?? 0} duplicates` : '') +
    // Which transport each channel ended on, once a group or TCP is in play.
    (s.channels.some((c) => c.group !== undefined || c.transport === 'tcp') ? `, ${s.channels.map((c) => `${c.name} by ${c.transport}`).join(', ')}` : '')
  );
}

/** Why a channel moved to UDP, for a person. */
const FALLBACK_WHY: Partial<Record<TransportEvent['reason'], string>> = {
  'no-data': 'nothing arrived from its group',
  silent: 'its group went silent',
  failed: 'its group could not be joined',
  'tcp-failed': 'no TCP connection could be made',
};

/** Why a channel moved to TCP (the last step of the 'auto' chain), for a person. */
const TCP_WHY: Partial<Record<TransportEvent['reason'], string>> = {
  'no-data': 'nothing arrived by UDP',
  silent: 'UDP went silent',
};

/** Attaches a display to a fetch (an RqcastClient or a FluteReceiver); call `end` with the outcome. */
export class ProgressDisplay {
  private bar?: SingleBar;

  constructor(
    client: EventEmitter,
    readonly mode: ProgressMode,
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {
    client.on('warning', (w: string) => this.onWarning(w));
    if (mode === 'quiet') return;
    client.on('transport', (t: TransportEvent) => this.onTransport(t));
    if (mode === 'lines') return;
    client.on('progress', (p: ProgressInfo) => this.onProgress(p));
    client.on('object', (o: ObjectResult) => this.onObject(o));
  }

  private line(obj: Record<string, unknown>): void {
    this.out.write(JSON.stringify(obj) + '\n');
  }

  private onProgress(p: ProgressInfo): void {
    if (this.mode === 'json') {
      this.line({
        type: 'progress',
        elapsedMs: p.elapsedMs,
        heldSymbols: p.heldSymbols,
        neededSymbols: p.neededSymbols,
        blocksDecoded: p.blocksDecoded,
        blocks: p.blocks,
        packetsReceived: p.packetsReceived,
        bytesReceived: p.bytesReceived,
        rateBytesPerSec: Math.round(p.rateBytesPerSec),
        etaSeconds: p.etaSeconds === undefined ? null : Number(p.etaSeconds.toFixed(2)),
      });
      return;
    }
    if (p.neededSymbols === 0) return;
    const payload = {
      rate: formatRate(p.rateBytesPerSec),
      eta: p.etaSeconds === undefined ? '?' : `${Math.ceil(p.etaSeconds)}s`,
      objects: `${p.objects.filter((o) => o.done).length}/${p.objects.length}`,
      blocks: `${p.blocksDecoded}/${p.blocks}`,
    };
    if (!this.bar) {
      // Loaded only for a terminal's bar: --json and piped fetches start without it.
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { SingleBar: Bar } = require('cli-progress') as typeof import('cli-progress');
      this.bar = new Bar(
        {
          format: '{bar} {percentage}% | {value}/{total} symbols | {blocks} blocks | {objects} objects | {rate} | ETA {eta}',
          stream: this.err,
          hideCursor: true,
          clearOnComplete: false,
        },
      );
      this.bar.start(p.neededSymbols, p.heldSymbols, payload);
    } else {
      this.bar.setTotal(p.neededSymbols);
      this.bar.update(p.heldSymbols, payload);
    }
  }

  private onObject(o: ObjectResult): void {
    if (this.mode === 'json') this.line({ type: 'object', name: o.name, path: o.path, bytes: o.bytes, sha256: o.sha256, seconds: o.seconds, tailSeconds: o.tailSeconds });
  }

  private onTransport(t: TransportEvent): void {
    if (this.mode === 'json') {
      this.line({ type: 'transport', channel: t.channel, transport: t.transport, reason: t.reason });
      return;
    }
    const why = (t.transport === 'tcp' ? TCP_WHY : FALLBACK_WHY)[t.reason];
    if (why === undefined) return;
    this.bar?.stop();
    this.bar = undefined;
    this.err.write(`channel "${t.channel}" now by ${t.transport}: ${why}\n`);
  }

  private onWarning(w: string): void {
    if (this.mode === 'json') this.line({ type: 'warning', message: w });
    else {
      this.bar?.stop();
      this.bar = undefined;
      this.err.write(`warning: ${w}\n`);
    }
  }

  /** Ends the display with the summary (success). */
  succeed(s: FetchSummary): void {
    if (this.bar) {
      this.bar.update(this.bar.getTotal());
      this.bar.stop();
    }
    if (this.mode === 'json') this.line(summaryJson(s, performance.now()));
    else if (this.mode !== 'quiet') this.err.write(summaryLine(s) + '\n');
  }

  /** Ends the display with an error (the caller prints it for humans). */
  fail(e: Error & { code?: string }, exitCode: number): void {
    this.bar?.stop();
    if (this.mode === 'json') this.line({ type: 'error', code: e.code ?? 'ERR_RQ_CLIENT', message: e.message, exitCode });
  }
}
