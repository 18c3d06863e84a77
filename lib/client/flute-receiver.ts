/**
 * FluteReceiver: objects from a multicast group alone, with no server
 * (docs/PROTOCOL.md §10.10, `rqcast fetch flute://GROUP:PORT?tsi=N`). It
 * never sends a packet: it joins the group (source-specific when the URL
 * gives a source, RFC 4607), learns the objects from the FDT instances of
 * TOI 0 (RFC 6726 §3.4), decodes them, checks each one's SHA-256 and writes
 * it atomically, then leaves.
 *
 * The same parts as RqcastClient, without the session: a membership
 * (group-link.ts over lib/transport/multicast/client-membership.ts), the
 * data path's group filter (only the URL's TSI, from its source), and the
 * object registry, file sinks, report and ending (fetch-run.ts).
 * leaveGroup() and joinGroup() may be called any number of times while it
 * receives: the registry keeps every symbol, so each membership period
 * adds to the last.
 *
 * Ends with the summary once every object of the FDT (or the URL's NAME)
 * is verified; fails with NoSuchObjectError when the FDT does not list the
 * name, FetchTimeoutError when nothing useful arrives for timeoutMs while
 * joined, DigestMismatchError on a bad object, FetchAbortedError on
 * close(). Temp files are removed on every failure.
 */
import { randomBytes } from 'crypto';
import { EventEmitter } from 'events';
import type { ControlMessage } from '../protocol/messages';
import { addressBytes } from '../support/address';
import { Rng } from '../support/rng';
import type { MembershipSocketOpener } from '../transport/multicast/membership-socket';
import { PartialBlockBudget } from './block-budget';
import { DataPath, DataPathOwner } from './data-path';
import { FetchAbortedError, FetchTimeoutError, InvalidClientOptionError } from './errors';
import { ClientStats, FetchSummary, newClientStats, ObjectResult, PacketInfo, ProgressInfo } from './events';
import { checkResumeMode } from './options';
import type { ResumeMode } from './sinks/resumable-sink';
import type { KeptPartial } from './sinks/sink';
import { groupText } from './fetch-report';
import { FetchRun } from './fetch-run';
import { GroupLink, GroupLinkHost } from './group-link';
import { checkMulticastInterface } from './options';
import { FluteUrl, parseFluteUrl } from './url';
import { durationText } from '../support/duration-text';

/** The registry's name for the one channel of a FLUTE session. */
export const FLUTE_CHANNEL = 'flute';

export interface FluteReceiverOptions {
  /** Directory the objects are written to (under their sanitised names). Default the current directory. */
  outputDir?: string;
  /** Exact file path for the one object the URL names (requires NAME in the URL). */
  outputFile?: string;
  /** Play the one object the URL names out to this stream, in order (as RqcastClientOptions.playout). */
  playout?: NodeJS.WritableStream;
  /** As RqcastClientOptions.resume (files only, not with playout). */
  resume?: ResumeMode;
  /** Give up after this long joined without anything useful from the group. Default 60 000 ms. */
  timeoutMs?: number;
  /** Most bytes held by source blocks not decoded yet (as RqcastClientOptions.memoryBytes). Default 1 GiB. */
  memoryBytes?: number;
  /** Receive buffer request. Default 32 MiB. */
  recvBufferBytes?: number;
  /** Packets of TOIs not yet in an FDT kept. Default 4096. */
  maxUnknownPackets?: number;
  /** 'progress' events every this many ms. Default 250. */
  progressIntervalMs?: number;
  /** Test hook: drop this fraction (0..1) of the group's data packets before processing. */
  lossRate?: number;
  lossSeed?: number;
  /** Keep a log of every (tsi, toi, sbn, esi) received in stats.esiLog. */
  recordEsis?: boolean;
  /** The interface to join on, when the URL gives none (if=). */
  multicastInterface?: string;
  /** Use node's dgram socket (one event per datagram) instead of the native batched receiver. */
  useDgram?: boolean;
  /** The socket under the membership (tests). Default the native batched receiver (dgram with useDgram, or without the addon). */
  openSocket?: MembershipSocketOpener;
}

export declare interface FluteReceiver {
  on(event: 'joined', listener: (info: { group: string; port: number; tsi: number; source?: string }) => void): this;
  on(event: 'progress', listener: (p: ProgressInfo) => void): this;
  on(event: 'object', listener: (o: ObjectResult) => void): this;
  on(event: 'done', listener: (s: FetchSummary) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'warning', listener: (message: string) => void): this;
  on(event: 'packet', listener: (p: PacketInfo) => void): this;
  /** The fetch failed with `resume` on: what was kept for the next fetch (before 'error'). */
  on(event: 'partial', listener: (kept: KeptPartial[]) => void): this;
}

function positive(v: number | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  if (!Number.isFinite(v) || v <= 0) throw new InvalidClientOptionError(`${name} must be a positive number`);
  return v;
}

export class FluteReceiver extends EventEmitter implements DataPathOwner {
  readonly url: FluteUrl;
  readonly stats: ClientStats = newClientStats();
  readonly budget: PartialBlockBudget;
  private readonly run: FetchRun;
  private readonly dataPath: DataPath;
  private readonly group: GroupLink;
  private readonly timeoutMs: number;
  private readonly progressIntervalMs: number;
  private started?: Promise<void>;
  /** Every wanted object is decoded: nothing more is read, the group is left. */
  private receiving = true;
  private lastActivity = 0;
  private tickTimer?: NodeJS.Timeout;
  /** Settles once every object is verified, or the reception failed. */
  readonly done: Promise<FetchSummary>;

  constructor(url: string | FluteUrl, options: FluteReceiverOptions = {}) {
    super();
    this.url = typeof url === 'string' ? parseFluteUrl(url) : url;
    const o = options;
    if (o.outputFile !== undefined && this.url.name === undefined) {
      throw new InvalidClientOptionError('an output file needs a URL that names one object; give a directory otherwise');
    }
    if (o.playout !== undefined && this.url.name === undefined) throw new InvalidClientOptionError('playout to a stream needs a URL that names one object');
    if (o.playout !== undefined && o.resume !== undefined) throw new InvalidClientOptionError('resume is for files: a playout stream cannot be resumed');
    const lossRate = o.lossRate ?? 0;
    if (!(lossRate >= 0 && lossRate < 1)) throw new InvalidClientOptionError('lossRate must be in [0, 1)');
    this.timeoutMs = positive(o.timeoutMs, 'timeoutMs', 60_000);
    this.progressIntervalMs = positive(o.progressIntervalMs, 'progressIntervalMs', 250);
    const itf = checkMulticastInterface(this.url.interface ?? o.multicastInterface);
    this.budget = new PartialBlockBudget(Math.round(positive(o.memoryBytes, 'memoryBytes', 1 << 30)));
    this.run = new FetchRun(
      this,
      {
        name: this.url.name,
        outputDir: o.outputDir ?? process.cwd(),
        outputFile: o.outputFile,
        playout: o.playout,
        maxUnknownPackets: Math.round(positive(o.maxUnknownPackets, 'maxUnknownPackets', 4096)),
        budget: this.budget,
        stats: this.stats,
        resume: o.resume === undefined ? undefined : checkResumeMode(o.resume),
      },
      {
        decodingMoved: () => this.stopIfAllDecoded(),
        socketDrops: () => this.group.socketDrops(),
        channels: () => {
          const u = this.url;
          return [{ name: FLUTE_CHANNEL, tsi: u.tsi, transport: 'multicast', group: groupText(u.group, u.port) }];
        },
        shutdown: () => this.shutdown(),
      },
    );
    this.done = this.run.outcome();
    // A failure nobody awaits yet must not be an unhandled rejection: the 'error' event and fetch() report it.
    this.done.catch(() => undefined);
    const family = (addressBytes(this.url.group) as { family: 4 | 6 }).family;
    const rng = new Rng(o.lossSeed ?? randomBytes(4).readUInt32BE(0));
    this.dataPath = new DataPath(0, { address: this.url.group, port: this.url.port, family }, this.run.registry, this, {
      lossRate,
      random: () => rng.unit(),
      ack: false,
      ackEveryPackets: 1,
      recordEsis: o.recordEsis ?? false,
      stats: this.stats,
    });
    this.dataPath.addChannels([{ name: FLUTE_CHANNEL, tsi: this.url.tsi }]);
    this.group = new GroupLink(
      FLUTE_CHANNEL,
      {
        group: this.url.group,
        port: this.url.port,
        ...(this.url.source !== undefined ? { source: this.url.source } : {}),
        ...(itf !== undefined ? { interface: itf } : {}),
      },
      { tsi: this.url.tsi, ...(this.url.source !== undefined ? { source: this.url.source } : {}) },
      this.dataPath,
      this.groupHost(),
      {
        receiveBufferBytes: Math.min(1 << 30, Math.round(positive(o.recvBufferBytes, 'recvBufferBytes', 32 << 20))),
        ...(o.useDgram !== undefined ? { useDgram: o.useDgram } : {}),
        openSocket: o.openSocket,
      },
    );
  }

  /** Joins the group; resolves once joined (rejects with a MembershipError if it cannot be). Later calls return the same promise. */
  start(): Promise<void> {
    this.started ??= this.open();
    return this.started;
  }

  /** start(), then the summary once every object is verified. */
  async fetch(): Promise<FetchSummary> {
    await this.start();
    return this.done;
  }

  /** Leaves the group (its port stays bound); no timeout runs while left. Nothing if not joined. */
  leaveGroup(): void {
    if (!this.ended) this.group.leave();
  }

  /** Joins the group again; symbols of every membership period count. Nothing if joined, not started or over. */
  joinGroup(): void {
    if (this.ended || !this.started || this.group.joined) return;
    this.group.join();
    this.lastActivity = Date.now();
  }

  /** The group is joined now. */
  get groupJoined(): boolean {
    return this.group.joined;
  }

  /** Times the group was joined. */
  get memberships(): number {
    return this.group.joins;
  }

  /** Packets taken from the group so far. */
  get groupPackets(): number {
    return this.group.packets;
  }

  /** Progress now (also what 'progress' events carry). */
  progress(now = Date.now()): ProgressInfo {
    return this.run.report.progress(now);
  }

  /** Aborts (FetchAbortedError); temp files are removed. */
  close(): void {
    this.run.fail(new FetchAbortedError());
  }

  // DataPathOwner

  get ended(): boolean {
    return this.run.ended;
  }
  get joined(): boolean {
    return true;
  }
  get left(): boolean {
    return !this.receiving;
  }
  get cookie(): Uint8Array | undefined {
    return undefined;
  }
  control(_msg: ControlMessage): void {
    /* a group carries no control messages (data-path.ts drops them) */
  }
  send(_msg: ControlMessage): void {
    /* a FLUTE receiver never sends */
  }
  activity(now: number): void {
    this.lastActivity = now;
  }
  watchingPackets(): boolean {
    return this.listenerCount('packet') > 0;
  }
  packet(info: PacketInfo): void {
    this.emit('packet', info);
  }

  // ---------------------------------------------------------------------

  private groupHost(): GroupLinkHost {
    return {
      // No fallback: the group is all there is.
      groupPackets: () => undefined,
      groupFailed: (_link, e) => this.run.fail(e),
    };
  }

  private async open(): Promise<void> {
    this.run.report.startedAt = Date.now();
    try {
      await this.group.open();
    } catch (e) {
      this.run.fail(e);
      throw e;
    }
    if (this.ended) return;
    const now = Date.now();
    this.run.report.joinedAt = now;
    this.lastActivity = now;
    this.tickTimer = setInterval(() => this.tick(), Math.min(250, this.progressIntervalMs));
    const u = this.url;
    this.emit('joined', { group: u.group, port: u.port, tsi: u.tsi, ...(u.source !== undefined ? { source: u.source } : {}) });
  }

  private tick(): void {
    const now = Date.now();
    // Left on purpose: the wait starts again at the next join.
    if (!this.group.joined) this.lastActivity = now;
    if (now - this.lastActivity > this.timeoutMs) {
      this.run.fail(new FetchTimeoutError(`no data from the group for ${durationText(this.timeoutMs)}`));
      return;
    }
    const report = this.run.report;
    if (report.progressDue(now, this.progressIntervalMs)) this.emit('progress', report.progress(now, true));
  }

  /** Every wanted object decoded: stop reading and leave, while the last blocks are written and verified. */
  private stopIfAllDecoded(): void {
    if (this.ended || !this.run.allDecoded()) return;
    this.receiving = false;
    this.group.leave();
  }

  private async shutdown(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    await this.group.close();
  }
}
