/**
 * LiveSource: live ingest (issue 10). A byte stream comes in (a Node
 * Readable: stdin, a FIFO, a growing file, datagrams of a UDP feed) and is
 * cut into segments, each one source block's worth of the stream, stored on
 * disk as it closes and dropped once it is older than the kept window.
 *
 * - A segment opens with its first byte and closes when it holds
 *   `blockBytes` bytes or `blockMs` have passed since it opened, whichever
 *   comes first. An input that stalls closes nothing (a segment needs at
 *   least one byte: RFC 6330 F >= 1); one that stalls mid-segment has that
 *   segment closed on time. The end of the input closes the open segment
 *   (shorter than the others) and then ends the source.
 * - Each closed segment is written to its own file under `dir` (one file
 *   per segment, so dropping one is one unlink) with its SHA-256, and
 *   announced ('segment'). Only the open segment is in memory, at most
 *   `blockBytes`.
 * - Segments whose close is more than `keepMs` old are dropped: their file
 *   is removed and 'dropped' says so. The newest segment is never dropped
 *   while the input runs.
 *
 * Why segments and not one growing object: an RFC 6330 object has a fixed
 * transfer length F and at most 256 source blocks (§3.3.2, SBN 8 bits), so
 * an endless stream cannot be one object. Each segment is a small object
 * of its own (docs/PROTOCOL.md §10.14), which any FLUTE receiver can take
 * from the FDT like a file.
 *
 * Time is read from `clock` and timers are Node's; tests pass a clock and
 * drive the timers with Jest's fake timers, or count segments of a real
 * run.
 */
import { createHash } from 'crypto';
import { EventEmitter } from 'events';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { Readable } from 'stream';

export const DEFAULT_LIVE_BLOCK_MS = 500;
export const DEFAULT_LIVE_KEEP_MS = 60_000;

/** One closed segment of a live stream. */
export interface LiveSegment {
  /** 0, 1, 2, … in stream order. */
  readonly seq: number;
  /** Offset of its first byte in the whole stream. */
  readonly streamOffset: number;
  readonly length: number;
  readonly sha256: Uint8Array;
  /** Where it is stored. */
  readonly path: string;
  /** clock() when its first byte arrived, and when it closed. */
  readonly openedAtMs: number;
  readonly closedAtMs: number;
  /** Why it closed: full, its time was up, or the input ended. */
  readonly closedBy: 'size' | 'time' | 'end';
}

export interface LiveSourceOptions {
  /** The stream's name (Content-Location prefix); used in file names. */
  name: string;
  /** Directory the segments are stored in (created if missing). */
  dir: string;
  /** Most bytes per segment (a source block's K·T). */
  blockBytes: number;
  /** A segment closes this long after its first byte at the latest. Default 500. */
  blockMs?: number;
  /** Segments are kept this long after they close. Default 60 000. */
  keepMs?: number;
  clock?: () => number;
}

export interface LiveSourceStats {
  segmentsClosed: number;
  segmentsDropped: number;
  bytesIn: number;
  closedBySize: number;
  closedByTime: number;
}

export declare interface LiveSource {
  on(event: 'segment', listener: (s: LiveSegment) => void): this;
  on(event: 'dropped', listener: (s: LiveSegment) => void): this;
  on(event: 'end', listener: () => void): this;
  on(event: 'error', listener: (e: Error) => void): this;
}

export class LiveSource extends EventEmitter {
  readonly name: string;
  readonly blockBytes: number;
  readonly blockMs: number;
  readonly keepMs: number;
  readonly stats: LiveSourceStats = { segmentsClosed: 0, segmentsDropped: 0, bytesIn: 0, closedBySize: 0, closedByTime: 0 };
  private readonly dir: string;
  private readonly clock: () => number;
  private readonly kept: LiveSegment[] = [];
  /** The open segment: its chunks, length and first byte's time. */
  private open?: { chunks: Buffer[]; length: number; openedAtMs: number; timer: NodeJS.Timeout };
  private nextSeq = 0;
  private streamOffset = 0;
  /** Writes of closed segments, in order (a segment is announced after its file is complete). */
  private writes: Promise<void> = Promise.resolve();
  private dropTimer?: NodeJS.Timeout;
  private input?: Readable;
  private _ended = false;
  private closed = false;

  constructor(options: LiveSourceOptions) {
    super();
    if (!/^[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(options.name) || options.name.split('/').some((s) => s === '.' || s === '..')) {
      throw new RangeError(`live stream name "${options.name}": use segments of A-Z a-z 0-9 . _ ~ - joined by /`);
    }
    if (!Number.isSafeInteger(options.blockBytes) || options.blockBytes < 1) throw new RangeError('blockBytes must be a positive integer');
    this.name = options.name;
    this.dir = options.dir;
    this.blockBytes = options.blockBytes;
    this.blockMs = options.blockMs ?? DEFAULT_LIVE_BLOCK_MS;
    this.keepMs = options.keepMs ?? DEFAULT_LIVE_KEEP_MS;
    if (!(this.blockMs > 0) || !Number.isFinite(this.blockMs)) throw new RangeError('blockMs must be a positive number of milliseconds');
    if (!(this.keepMs > 0) || !Number.isFinite(this.keepMs)) throw new RangeError('keepMs must be a positive number of milliseconds');
    this.clock = options.clock ?? Date.now;
  }

  /** The segments kept now, oldest first. */
  get segments(): readonly LiveSegment[] {
    return this.kept;
  }

  /** The input has ended and its last segment is stored and announced. */
  get ended(): boolean {
    return this._ended;
  }

  /** Starts reading `input`; segments are announced as they close. */
  async start(input: Readable): Promise<void> {
    if (this.input) throw new Error('a live source reads one input');
    await fs.mkdir(this.dir, { recursive: true });
    this.input = input;
    input.on('data', (chunk: Buffer | string) => this.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    input.once('end', () => this.finish());
    input.once('error', (e: Error) => this.fail(e));
    this.dropTimer = setInterval(() => this.dropOld(), Math.max(50, Math.min(1000, this.keepMs / 4)));
    this.dropTimer.unref?.();
  }

  /** Resolves once every segment closed so far is stored and announced. */
  async whenStored(): Promise<void> {
    await this.writes.catch(() => undefined);
  }

  /** Reads segment `seq` back from disk (undefined once dropped). */
  async read(seq: number): Promise<Buffer | undefined> {
    const s = this.kept.find((k) => k.seq === seq);
    if (!s) return undefined;
    return fs.readFile(s.path);
  }

  /** Stops reading and removes every stored segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.open) clearTimeout(this.open.timer);
    this.open = undefined;
    if (this.dropTimer) clearInterval(this.dropTimer);
    this.input?.removeAllListeners('data');
    this.input?.pause();
    await this.writes.catch(() => undefined);
    for (const s of this.kept.splice(0)) await fs.rm(s.path, { force: true });
  }

  /** Bytes in: fill the open segment, closing it each time it is full. */
  private push(chunk: Buffer): void {
    if (this.closed || this._ended) return;
    this.stats.bytesIn += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      if (!this.open) {
        const timer = setTimeout(() => this.closeOpen('time'), this.blockMs);
        this.open = { chunks: [], length: 0, openedAtMs: this.clock(), timer };
      }
      const o = this.open;
      const take = Math.min(chunk.length - at, this.blockBytes - o.length);
      o.chunks.push(chunk.subarray(at, at + take));
      o.length += take;
      at += take;
      if (o.length === this.blockBytes) this.closeOpen('size');
    }
  }

  private closeOpen(by: LiveSegment['closedBy']): void {
    const o = this.open;
    if (!o || this.closed) return;
    clearTimeout(o.timer);
    this.open = undefined;
    const data = Buffer.concat(o.chunks, o.length);
    const seq = this.nextSeq++;
    const segment: LiveSegment = {
      seq,
      streamOffset: this.streamOffset,
      length: data.length,
      sha256: createHash('sha256').update(data).digest(),
      path: path.join(this.dir, `${this.name.replace(/\//g, '_')}.${seq}.seg`),
      openedAtMs: o.openedAtMs,
      closedAtMs: this.clock(),
      closedBy: by,
    };
    this.streamOffset += data.length;
    if (by === 'size') this.stats.closedBySize++;
    else if (by === 'time') this.stats.closedByTime++;
    this.writes = this.writes.then(async () => {
      if (this.closed) return;
      await fs.writeFile(segment.path, data);
      if (this.closed) {
        await fs.rm(segment.path, { force: true });
        return;
      }
      this.kept.push(segment);
      this.stats.segmentsClosed++;
      this.emit('segment', segment);
      this.dropOld();
    });
    this.writes.catch((e: unknown) => this.fail(e));
  }

  private finish(): void {
    if (this.closed || this._ended) return;
    this.closeOpen('end');
    void this.writes.then(() => {
      if (this.closed || this._ended) return;
      this._ended = true;
      this.emit('end');
    }, () => undefined);
  }

  /** Drops the segments closed more than keepMs ago (never the newest while the input runs). */
  private dropOld(): void {
    const limit = this.clock() - this.keepMs;
    while (this.kept.length > (this._ended ? 0 : 1) && this.kept[0].closedAtMs < limit) {
      const s = this.kept.shift()!;
      this.stats.segmentsDropped++;
      void fs.rm(s.path, { force: true }).catch(() => undefined);
      this.emit('dropped', s);
    }
  }

  private fail(e: unknown): void {
    if (this.closed) return;
    const err = e instanceof Error ? e : new Error(String(e));
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}
