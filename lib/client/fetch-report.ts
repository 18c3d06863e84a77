/**
 * FetchReport: what a fetch reports about its objects (progress, each
 * verified object, the summary), for every kind of fetch: RqcastClient
 * (a server's session, unicast and multicast) and FluteReceiver (a group
 * alone). One place computes them, so both print the same lines.
 */
import { performance } from 'perf_hooks';
import type { PartialBlockBudget } from './block-budget';
import { CLI_START_MARK } from './events';
import type { ChannelSummary, ClientStats, FetchSummary, ObjectProgress, ObjectResult, ProgressInfo, StartupPhases, TailPhases } from './events';
import type { ObjectRegistry, RegisteredObject } from './object-registry';

export class FetchReport {
  /** Verified objects, in the order they were verified. */
  readonly results: ObjectResult[] = [];
  /** When the fetch started (Unix ms). */
  startedAt = 0;
  /** When data could first arrive (JOINED, or the group joined); times are counted from it. */
  joinedAt?: number;
  private lastProgress = { at: 0, bytes: 0 };
  /** When the last object was verified (Unix ms), and the latest useful packet of the objects verified so far. */
  private lastVerifiedAt = 0;
  private lastUsefulAt = 0;
  /** The tail's steps of the object verified last (undefined if one of its times is missing). */
  private lastTail?: TailPhases;
  /** When the last object was published (performance.now()). */
  private lastPublishedMs = 0;

  constructor(
    private readonly registry: ObjectRegistry,
    private readonly stats: ClientStats,
    private readonly budget: PartialBlockBudget,
  ) {}

  /** The result of an object just verified (kept for the summary). */
  objectVerified(obj: RegisteredObject, now: number): ObjectResult {
    const r = obj.receiver;
    const result: ObjectResult = {
      name: obj.name,
      path: obj.sink.path,
      bytes: obj.oti.transferLength,
      sha256: Buffer.from(obj.sha256).toString('hex'),
      seconds: (now - this.since()) / 1000,
      tailSeconds: (now - obj.lastUsefulAt) / 1000,
      symbolsReceived: r.stats.symbolsReceived,
      symbolsUsed: r.stats.symbolsUsed,
      symbolsDuplicate: r.stats.symbolsDuplicate,
      neededSymbols: r.neededSymbols,
      blocksResumed: r.stats.blocksResumed,
      symbolsResumed: r.stats.symbolsResumed,
      symbolsReplayed: r.stats.symbolsReplayed,
    };
    this.results.push(result);
    this.lastVerifiedAt = now;
    this.lastPublishedMs = performance.now();
    this.lastUsefulAt = Math.max(this.lastUsefulAt, obj.lastUsefulAt);
    const { decodedAt, writtenAt } = obj;
    // The steps of tailMs, which counts from the last useful packet of any
    // object: one that came after this object's own cuts its steps from
    // there (an earlier object's packets can arrive while this one solves).
    const from = this.lastUsefulAt;
    const decoded = decodedAt === undefined ? undefined : Math.max(decodedAt, from);
    const written = writtenAt === undefined || decoded === undefined ? undefined : Math.max(writtenAt, decoded);
    this.lastTail =
      decoded !== undefined && written !== undefined ? { solve: decoded - from, write: written - decoded, verify: Math.max(now, written) - written } : undefined;
    return result;
  }

  /** Whether a 'progress' event is due at `now`, every `intervalMs`. */
  progressDue(now: number, intervalMs: number): boolean {
    return now - this.lastProgress.at >= intervalMs;
  }

  /** Progress now; the receive rate over the time since the last progress taken with `mark`. */
  progress(now: number, mark = false): ProgressInfo {
    const objects: ObjectProgress[] = [];
    let held = 0;
    let needed = 0;
    let blocksDecoded = 0;
    let blocks = 0;
    for (const o of this.registry.objects) {
      const h = o.done ? o.receiver.neededSymbols : o.receiver.heldSymbols;
      objects.push({
        name: o.name,
        bytes: o.oti.transferLength,
        heldSymbols: h,
        neededSymbols: o.receiver.neededSymbols,
        blocksDecoded: o.receiver.stats.blocksDone,
        blocks: o.receiver.blocks,
        done: o.done,
      });
      held += h;
      needed += o.receiver.neededSymbols;
      blocksDecoded += o.receiver.stats.blocksDone;
      blocks += o.receiver.blocks;
    }
    const dt = (now - this.lastProgress.at) / 1000;
    const rate = this.lastProgress.at > 0 && dt > 0 ? (this.stats.bytesReceived - this.lastProgress.bytes) / dt : 0;
    const info: ProgressInfo = {
      elapsedMs: now - this.since(),
      objects,
      heldSymbols: held,
      neededSymbols: needed,
      blocksDecoded,
      blocks,
      packetsReceived: this.stats.packetsReceived,
      bytesReceived: this.stats.bytesReceived,
      rateBytesPerSec: rate,
    };
    if (rate > 0 && needed > 0 && this.stats.packetsReceived > 0) {
      const perPacket = this.stats.bytesReceived / this.stats.packetsReceived;
      info.etaSeconds = ((needed - held) * perPacket) / rate;
    }
    if (mark) this.lastProgress = { at: now, bytes: this.stats.bytesReceived };
    return info;
  }

  summary(now: number, channels: ChannelSummary[]): FetchSummary {
    let symbolsReceived = 0;
    let symbolsUsed = 0;
    let symbolsDuplicate = 0;
    let symbolsLate = 0;
    let symbolsSurplus = 0;
    let symbolsDropped = 0;
    let needed = 0;
    let symbolsResumed = 0;
    let blocksResumed = 0;
    let symbolsReplayed = 0;
    for (const o of this.registry.objects) {
      symbolsReplayed += o.receiver.stats.symbolsReplayed;
      symbolsResumed += o.receiver.stats.symbolsResumed;
      blocksResumed += o.receiver.stats.blocksResumed;
      symbolsReceived += o.receiver.stats.symbolsReceived;
      symbolsUsed += o.receiver.stats.symbolsUsed;
      symbolsDuplicate += o.receiver.stats.symbolsDuplicate;
      symbolsLate += o.receiver.stats.symbolsLate;
      symbolsSurplus += o.receiver.stats.symbolsSurplus;
      symbolsDropped += o.receiver.stats.symbolsDropped;
      needed += o.receiver.neededSymbols;
    }
    const s = this.stats;
    return {
      objects: [...this.results],
      channels,
      bytes: this.results.reduce((a, r) => a + r.bytes, 0),
      seconds: (now - this.since()) / 1000,
      packetsReceived: s.packetsReceived,
      bytesReceived: s.bytesReceived,
      symbolsReceived,
      symbolsUsed,
      symbolsDuplicate,
      symbolsLate,
      symbolsSurplus,
      symbolsDropped,
      fdtPackets: s.fdtPackets,
      neededSymbols: needed,
      symbolsResumed,
      blocksResumed,
      symbolsReplayed,
      // Over what this fetch had to receive: a resumed fetch needs only what it lacked.
      overhead: needed - symbolsResumed - symbolsReplayed > 0 ? symbolsReceived / (needed - symbolsResumed - symbolsReplayed) - 1 : 0,
      replacements: s.replacements,
      acksSent: s.acksSent,
      simulatedDrops: s.simulatedDrops,
      multicastPackets: s.multicastPackets,
      multicastForeign: s.multicastForeign,
      socketDrops: s.socketDrops,
      budgetDrops: this.budget.stats.symbolsDropped,
      blocksEvicted: this.budget.stats.blocksEvicted,
      peakPartialBlockBytes: this.budget.stats.peakBytes,
      memoryBytes: this.budget.limitBytes,
      ...(s.firstPacketMs > 0 ? { startupMs: Math.round(s.firstPacketMs) } : {}),
      ...(this.results.length > 0 ? { tailMs: this.lastVerifiedAt - this.lastUsefulAt } : {}),
      ...startupPhases(s),
      ...(this.results.length > 0 && this.lastTail ? { tailPhasesMs: { ...this.lastTail } } : {}),
      ...(this.results.length > 0 ? { publishedAtMs: this.lastPublishedMs } : {}),
    };
  }

  private since(): number {
    return this.joinedAt ?? this.startedAt;
  }
}

/**
 * The start-up's steps (StartupPhases), when every one happened: each the
 * difference of two rounded times, so that they add up to startupMs.
 * `cliStartMs`: when the CLI marked its start (CLI_START_MARK), if it did.
 */
export function startupPhases(s: ClientStats, cliStartMs = cliStart()): { startupPhasesMs?: StartupPhases } {
  const steps = [s.fetchStartMs, s.helloSentMs, s.cookieMs, s.joinedMs, s.firstPacketMs];
  if (steps.some((t) => !(t > 0))) return {};
  const [fetch, hello, cookie, joined, first] = steps.map(Math.round);
  const cli = cliStartMs !== undefined && cliStartMs <= s.fetchStartMs ? Math.round(cliStartMs) : undefined;
  return {
    startupPhasesMs: {
      ...(cli !== undefined ? { process: cli } : {}),
      modules: fetch - (cli ?? 0),
      hello: hello - fetch,
      cookie: cookie - hello,
      joined: joined - cookie,
      data: first - joined,
    },
  };
}

/** When the CLI marked its start, in this process (performance.now() units). */
function cliStart(): number | undefined {
  return performance.getEntriesByName(CLI_START_MARK, 'mark')[0]?.startTime;
}

/** GROUP:PORT, an IPv6 group in brackets (RFC 3986 §3.2.2). */
export function groupText(group: string, port: number): string {
  return group.includes(':') ? `[${group}]:${port}` : `${group}:${port}`;
}
