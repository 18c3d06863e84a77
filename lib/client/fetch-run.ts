/**
 * FetchRun: what every kind of fetch does with its objects and how it
 * ends, once, for RqcastClient (a server's session, unicast and multicast)
 * and FluteReceiver (a group alone), which add how the packets come:
 *
 * - the object registry, each object written by a file sink within the
 *   memory budget (early blocks kept for the running digest too), or the
 *   one object of the URL played out in order to a stream (playout-sink.ts,
 *   `fetch -o -`); its warnings and failures the fetch's;
 * - each verified object reported ('object'); the fetch finishes once every
 *   joined channel has delivered an FDT and every wanted object is
 *   verified, and fails with NoSuchObjectError when the FDTs do not list
 *   the URL's NAME;
 * - the end, whichever comes first: finish() reads the summary while the
 *   sockets are open, shuts down, then emits 'done' and resolves; fail()
 *   aborts the sinks of unverified objects (their temp files are removed;
 *   resumable sinks keep their blocks instead and 'partial' lists them),
 *   shuts down, then emits 'error' (when someone listens) and rejects.
 */
import type { EventEmitter } from 'events';
import { performance } from 'perf_hooks';
import type { PartialBlockBudget } from './block-budget';
import { NoSuchObjectError } from './errors';
import type { ChannelSummary, ClientStats, FetchSummary, ServerSummary } from './events';
import { FetchReport } from './fetch-report';
import { ObjectRegistry, RegisteredObject } from './object-registry';
import { FileSinkFactory } from './sinks/file-sink';
import type { LivePlayout, PlayoutTarget } from './live-playout';
import type { PlayoutStream } from './sinks/playout-sink';
import type { ResumeMode } from './sinks/resumable-sink';
import type { SymbolTally } from './symbol-tally';
import type { PacketTap } from './packet-tap';

export interface FetchRunOptions {
  /** The one object wanted (the URL's NAME); every object of the FDTs if undefined. */
  name?: string;
  outputDir: string;
  /** Exact file path for the one object `name` names. */
  outputFile?: string;
  /**
   * Play `name` out to this stream, in order, instead of writing a file:
   * the object of that name, or the segments `name/N` of a live stream
   * (live-playout.ts).
   */
  playout?: PlayoutStream;
  /** Instead of `playout`: a reader of its own takes the bytes and the gaps (object-stream.ts, client.stream()). */
  target?: PlayoutTarget;
  /** Live playout: start at the oldest kept segment instead of the newest. */
  fromStart?: boolean;
  /** Live playout: give up on a segment once a later one has waited this long (ms). */
  latencyMs?: number;
  /** Packets of TOIs not yet in an FDT kept per channel. */
  maxUnknownPackets: number;
  /** Partial blocks of every object; also bounds the early blocks kept for the running digest. */
  budget: PartialBlockBudget;
  stats: ClientStats;
  /**
   * Resumable file sinks (sinks/resumable-sink.ts): 'continue' resumes what
   * an interrupted fetch left, 'restart' starts over; either way a fetch
   * that fails keeps its blocks and emits 'partial'. Undefined: nothing is
   * kept or resumed.
   */
  resume?: ResumeMode;
  /** A fetch from several servers: where each symbol came from. */
  tally?: SymbolTally;
  /** Decode nothing (a forward relay; packet-tap.ts). */
  tap?: PacketTap;
}

/** What a run needs from the fetch it belongs to. */
export interface FetchRunHost {
  /** An FDT was applied or an object decoded: every wanted object may be decoded now (allDecoded()). */
  decodingMoved(): void;
  /** Receive-buffer overflows of every socket, read while they are open. */
  socketDrops(): number;
  /** The joined channels and the transport each ended on, for the summary. */
  channels(): ChannelSummary[];
  /** Stops the timers and closes every transport (LEAVE where joined). */
  shutdown(): Promise<void>;
  /** A fetch from several servers: each server's share, for the summary. */
  servers?(): ServerSummary[];
}

export class FetchRun {
  readonly registry: ObjectRegistry;
  readonly report: FetchReport;
  /** With a playout stream: the in-order playout of the named object or live stream. */
  readonly playout?: LivePlayout;
  private _ended = false;
  private settle?: { resolve: (s: FetchSummary) => void; reject: (e: Error) => void };
  private outcomePromise?: Promise<FetchSummary>;

  constructor(
    /** The fetch, which emits 'warning', 'object', 'done' and 'error'. */
    private readonly emitter: EventEmitter,
    private readonly o: FetchRunOptions,
    private readonly host: FetchRunHost,
  ) {
    const budget = o.budget;
    if ((o.playout !== undefined || o.target !== undefined) && o.name !== undefined) {
      // Loaded for a playout only, not at the top (a fetch's start-up, fetch --json startupMs).
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { LivePlayout: Playout } = require('./live-playout') as typeof import('./live-playout');
      this.playout = new Playout({
        name: o.name,
        ...(o.target ? { target: o.target } : { out: o.playout }),
        fromStart: o.fromStart,
        latencyMs: o.latencyMs,
        onGap: (gap, objectName) => {
          for (const obj of this.registry.objects) if (obj.name === objectName) this.registry.skip(obj, new Error(`segment ${objectName} given up (${gap.reason})`));
          emitter.emit('gap', { ...gap, object: objectName });
          this.checkFinished();
        },
      });
    }
    const playout = this.playout;
    this.registry = new ObjectRegistry({
      // Playout selects its Files itself (the object named, or a live stream's segments).
      name: playout ? undefined : o.name,
      selector: playout,
      maxUnknownPackets: o.maxUnknownPackets,
      budget,
      // A playout is not resumable (what it wrote is out on the stream): `resume` applies to files only.
      sinks:
        playout !== undefined
          ? playout
          : new FileSinkFactory({
              outputDir: o.outputDir,
              outputFile: o.outputFile,
              // Early blocks kept for the running digest: within the same budget.
              holdBytes: () => budget.limitBytes,
              resume: o.resume,
              warning: (m) => emitter.emit('warning', m),
            }),
      stats: o.stats,
      ...(o.tally ? { tally: o.tally } : {}),
      ...(o.tap ? { tap: o.tap } : {}),
      events: {
        warning: (m) => emitter.emit('warning', m),
        failed: (e) => this.fail(e),
        fdtApplied: () => {
          this.checkFinished();
          host.decodingMoved();
        },
        objectDecoded: () => host.decodingMoved(),
        objectVerified: (obj) => this.onObjectVerified(obj),
      },
    });
    this.report = new FetchReport(this.registry, o.stats, budget);
  }

  /** The fetch has finished or failed. */
  get ended(): boolean {
    return this._ended;
  }

  /**
   * Resolves with the summary, or rejects with what ended the fetch; later
   * calls return the same promise. An end that came before the first call
   * settles nothing: the 'error' event alone reported it.
   */
  outcome(): Promise<FetchSummary> {
    this.outcomePromise ??= new Promise<FetchSummary>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    return this.outcomePromise;
  }

  /** Every wanted object is decoded (their last blocks may still be being written and verified). */
  allDecoded(): boolean {
    const r = this.registry;
    return r.fdtsComplete() && !r.missingNamed() && r.allDecoded();
  }

  /** Ends the fetch with `e`, unless it has ended. */
  fail(e: unknown): void {
    if (this._ended) return;
    this._ended = true;
    const err = e instanceof Error ? e : new Error(String(e));
    const cleanup = async (): Promise<void> => {
      const kept = await this.registry.abort(err);
      if (kept.length > 0) this.emitter.emit('partial', kept);
      await this.shutdown();
    };
    void cleanup().then(() => {
      if (this.emitter.listenerCount('error') > 0) this.emitter.emit('error', err);
      this.settle?.reject(err);
    });
  }

  /** The set of channels that must deliver an FDT changed (a server was dropped): the fetch may be over. */
  channelsChanged(): void {
    this.checkFinished();
    this.host.decodingMoved();
  }

  // ---------------------------------------------------------------------

  private onObjectVerified(obj: RegisteredObject): void {
    const result = this.report.objectVerified(obj, Date.now());
    if (!this._ended) this.emitter.emit('object', result);
    this.checkFinished();
  }

  private checkFinished(): void {
    if (this._ended || !this.registry.fdtsComplete()) return;
    if (this.registry.missingNamed() || (this.playout !== undefined && this.registry.size === 0)) {
      this.fail(new NoSuchObjectError(this.o.name as string, this.registry.offer()));
      return;
    }
    if (this.registry.allVerified()) this.finish();
  }

  private finish(): void {
    if (this._ended) return;
    // The kernel's count of receive-buffer overflows, while the sockets are open.
    this.o.stats.socketDrops = this.host.socketDrops();
    const summary = this.report.summary(Date.now(), this.host.channels());
    const servers = this.host.servers?.();
    if (servers) {
      summary.servers = servers;
      summary.duplicates = servers.reduce((n, s) => n + s.duplicates, 0);
    }
    this._ended = true;
    void this.shutdown().then(() => {
      if (summary.publishedAtMs !== undefined) summary.closeMs = performance.now() - summary.publishedAtMs;
      this.emitter.emit('done', summary);
      this.settle?.resolve(summary);
    });
  }

  private async shutdown(): Promise<void> {
    this.playout?.close();
    this.registry.close();
    await this.host.shutdown();
  }
}
