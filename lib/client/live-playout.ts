/**
 * LivePlayout: `fetch rqcast://HOST:PORT/CH/NAME -o -` (issue 10). NAME is
 * either one object (a file: played out by a PlayoutSink) or a live stream,
 * whose objects are its segments `NAME/N` (docs/PROTOCOL.md §10.14). For a
 * live stream:
 *
 * - the start is chosen from the first FDT instance that lists a segment:
 *   the newest one listed (every listed segment is complete on the server),
 *   or the oldest with `fromStart`; earlier segments are not wanted;
 * - each segment is verified by its own SHA-256 and written to the stream
 *   in order, as soon as it and every one before it are written;
 * - a gap is never silent: a segment is given up on (counted, reported by
 *   `onGap`, its receiver closed) when an FDT instance no longer lists it
 *   while it is not decoded (it left the server's window), or when
 *   `latencyMs` is set and a later segment has waited that long for it;
 * - the fetch ends when the FDT is complete (the input ended) and every
 *   listed segment from the start is written or given up on.
 *
 * It is the registry's FileSelector (which Files are wanted) and its
 * SinkFactory (where they go).
 */
import { createHash } from 'crypto';
import { decodeContentLocation } from '../protocol/content-location';
import type { FdtFile } from '../protocol/fdt-schema';
import { DigestMismatchError } from './errors';
import type { FileSelector } from './object-registry';
import { PlayoutSink, type PlayoutStream } from './sinks/playout-sink';
import type { ObjectSink, SinkFactory, SinkObject } from './sinks/sink';

export interface LiveGap {
  seq: number;
  /** 'left-window': an FDT no longer lists it; 'late': a later segment waited latencyMs for it. */
  reason: 'left-window' | 'late';
}

export interface LivePlayoutOptions {
  /** The URL's NAME. */
  name: string;
  /** Where the bytes go (`-o -`), unless `target` takes them. */
  out?: PlayoutStream;
  /** Instead of `out`: a reader of its own (object-stream.ts, client.stream()) takes the file's blocks and each segment as it comes in order. */
  target?: PlayoutTarget;
  fromStart?: boolean;
  /** Give up on a segment once a later one has waited this long (ms). Default: only when it leaves the window. */
  latencyMs?: number;
  /** A segment was given up on: the fetch reports it and closes its receiver (objectName). */
  onGap(gap: LiveGap, objectName: string): void;
  clock?: () => number;
}

/** What takes the played-out bytes when they do not go to a Writable. */
export interface PlayoutTarget {
  /** The sink of the object NAME (a file). */
  openFile(object: SinkObject): ObjectSink;
  /** Segment `seq`, verified, in order; never waits (the target bounds what it keeps). */
  segment(seq: number, data: Buffer): void;  /** Segment `seq` was given up on (after onGap): the target tells its reader. */
  gap(gap: LiveGap): void;
}

export interface LivePlayoutStats {
  /** The first segment played, or -1 before the start is known. */
  startSeq: number;
  segmentsWritten: number;
  bytesWritten: number;
  gaps: number;
  gapSeqs: number[];
}

export class LivePlayout implements FileSelector, SinkFactory {
  readonly stats: LivePlayoutStats = { startSeq: -1, segmentsWritten: 0, bytesWritten: 0, gaps: 0, gapSeqs: [] };
  private readonly prefix: string;
  private readonly clock: () => number;
  /** The next segment to write. */
  private next = -1;
  /** Segments listed by the last instance, and the highest ever listed. */
  private listed = new Set<number>();
  private highest = -1;
  private complete = false;
  /** Verified segments waiting for the ones before them, and when each became ready. */
  private readonly ready = new Map<number, { data: Buffer; at: number }>();
  /** Per segment: resolves when it has been written or given up on. */
  private readonly settled = new Map<number, () => void>();
  private tail: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: LivePlayoutOptions) {
    this.prefix = o.name + '/';
    this.clock = o.clock ?? Date.now;
    if (o.latencyMs !== undefined) {
      this.timer = setInterval(() => this.advance(), Math.max(10, Math.min(100, o.latencyMs / 4)));
      this.timer.unref?.();
    }
  }

  /** The segment number of a `NAME/N` object name, else undefined. */
  seqOf(name: string): number | undefined {
    if (!name.startsWith(this.prefix)) return undefined;
    const rest = name.slice(this.prefix.length);
    if (!/^(0|[1-9]\d{0,15})$/.test(rest)) return undefined;
    const n = Number(rest);
    return Number.isSafeInteger(n) ? n : undefined;
  }

  // FileSelector
  instance(files: readonly FdtFile[], complete: boolean | undefined): void {
    const seqs: number[] = [];
    for (const f of files) {
      const s = this.seqOf(decodeContentLocation(f.contentLocation));
      if (s !== undefined) seqs.push(s);
    }
    this.listed = new Set(seqs);
    for (const s of seqs) this.highest = Math.max(this.highest, s);
    this.complete = complete === true;
    if (this.next < 0 && seqs.length > 0) {
      this.next = this.o.fromStart ? Math.min(...seqs) : Math.max(...seqs);
      this.stats.startSeq = this.next;
    }
    this.advance();
  }

  wants(file: FdtFile): boolean {
    const name = decodeContentLocation(file.contentLocation);
    if (name === this.o.name) return true;
    const s = this.seqOf(name);
    return s !== undefined && this.next >= 0 && s >= this.next;
  }

  // SinkFactory
  open(object: SinkObject): ObjectSink {
    if (object.name === this.o.name) return this.o.target ? this.o.target.openFile(object) : new PlayoutSink(object, this.out, '-');
    const seq = this.seqOf(object.name) as number;
    return new SegmentSink(object, seq, this);
  }

  /** Every listed segment from the start is written or given up on, and the FDT is complete. */
  get finished(): boolean {
    return this.complete && this.next > this.highest;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const resolve of this.settled.values()) resolve();
    this.settled.clear();
  }

  /** Segment `seq` verified: written once its turn comes; resolves then (or when given up on). */
  deliver(seq: number, data: Buffer): Promise<void> {
    if (seq < this.next) return Promise.resolve();
    this.ready.set(seq, { data, at: this.clock() });
    const done = new Promise<void>((resolve) => this.settled.set(seq, resolve));
    this.advance();
    return done;
  }

  /** Writes what is next in order; gives up on a missing segment when the rules above say so. */
  private advance(): void {
    if (this.next < 0) return;
    for (;;) {
      const r = this.ready.get(this.next);
      if (r) {
        this.ready.delete(this.next);
        const seq = this.next++;
        this.tail = this.tail.then(() => this.write(seq, r.data)).then(() => this.settle(seq));
        continue;
      }
      const later = [...this.ready.entries()].filter(([s]) => s > this.next);
      const leftWindow = !this.listed.has(this.next) && (this.highest > this.next || this.complete) && this.next <= this.highest;
      const late = this.o.latencyMs !== undefined && later.some(([, v]) => this.clock() - v.at >= (this.o.latencyMs as number));
      if (this.next <= this.highest && (leftWindow || late)) {
        const seq = this.next++;
        this.stats.gaps++;
        this.stats.gapSeqs.push(seq);
        const gap: LiveGap = { seq, reason: leftWindow ? 'left-window' : 'late' };
        this.o.onGap(gap, this.prefix + seq);
        this.o.target?.gap(gap);
        this.settle(seq);
        continue;
      }
      return;
    }
  }

  private settle(seq: number): void {
    const resolve = this.settled.get(seq);
    this.settled.delete(seq);
    resolve?.();
  }

  private get out(): PlayoutStream {
    if (!this.o.out) throw new RangeError('live playout needs an output stream or a target');
    return this.o.out;
  }

  private write(seq: number, data: Buffer): Promise<void> {
    this.stats.segmentsWritten++;
    this.stats.bytesWritten += data.length;
    if (this.o.target) {
      this.o.target.segment(seq, data);
      return Promise.resolve();
    }
    const out = this.out;
    return new Promise<void>((resolve, reject) => {
      const ok = out.write(data, (e?: Error | null) => {
        if (e) reject(e);
      });
      if (ok) resolve();
      else out.once('drain', () => resolve());
    });
  }
}

/** One live segment: its blocks gathered, verified at commit, then handed to the playout. */
class SegmentSink implements ObjectSink {
  readonly path = '-';
  private readonly data: Buffer;

  constructor(
    private readonly object: SinkObject,
    private readonly seq: number,
    private readonly playout: LivePlayout,
  ) {
    this.data = Buffer.alloc(object.oti.transferLength);
  }

  async writeBlock(_sbn: number, offset: number, data: Uint8Array): Promise<void> {
    if (offset < 0 || offset + data.length > this.data.length) throw new RangeError(`block at ${offset} is outside segment "${this.object.name}"`);
    this.data.set(data, offset);
  }

  async commit(): Promise<void> {
    const got = createHash('sha256').update(this.data).digest();
    if (!got.equals(Buffer.from(this.object.sha256))) throw new DigestMismatchError(this.object.name);
    await this.playout.deliver(this.seq, this.data);
  }

  async abort(): Promise<void> {
    /* nothing written yet that could be taken back */
  }
}
