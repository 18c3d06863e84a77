/**
 * ObjectStream: `client.stream(name)` (issue 10's typed API), a Node
 * Readable of one object's bytes in order, fed by the fetch as it decodes.
 *
 * A file (NAME one object): each source block goes out as soon as it and
 * every block before it have decoded; the SHA-256 runs over the bytes in
 * that order and is compared with the FDT's at the end. A mismatch makes
 * the stream error with DigestMismatchError once the consumer has read
 * every byte before it (bytes handed out cannot be taken back).
 *
 * A live stream (NAME's segments NAME/N, live-playout.ts): each verified
 * segment in order. A segment the fetch gives up on is a 'gap' event
 * (reason 'left-window' or 'late'), counted, never silent.
 *
 * Backpressure. The stream pushes only when the consumer asks (_read), one
 * chunk at a time, and its own buffer is one byte deep: what waits for the
 * consumer waits here, where it is counted.
 * - File: every decoded block that has not been handed to the consumer is
 *   held in the client's PartialBlockBudget (hold/unhold): while held bytes
 *   fill the budget no new block is admitted and its symbols are dropped
 *   (counted in budget.stats.symbolsDropped; the server keeps sending, a
 *   fountain needs no retransmission). So decoded bytes waiting for a slow
 *   consumer never pass memoryBytes (plus one block, below). So that held
 *   blocks that decoded out of order cannot keep out the block they wait
 *   for, the budget admits the next block in order past its limit when the
 *   consumer has nothing left to read (budget.priority): at most one such
 *   block at a time (budget.stats.peakPriorityBytes).
 * - Live: segments waiting for the consumer are kept up to
 *   maxQueuedSegments; past it the oldest waiting one is skipped (a 'gap'
 *   with reason 'slow-consumer', counted): a slow consumer drops to the
 *   newest segments.
 *
 * Destroying the stream aborts the fetch; the fetch's end ends the stream
 * ('end' after the last byte), its failure errors it (after the bytes
 * already decoded in order have been read).
 */
import { createHash, Hash } from 'crypto';
import { Readable } from 'stream';
import type { BudgetedReceiver, PartialBlockBudget } from './block-budget';
import { DigestMismatchError } from './errors';
import type { LiveGap, PlayoutTarget } from './live-playout';
import type { ObjectSink, SinkObject } from './sinks/sink';

export interface ObjectStreamOptions {
  /** Live: start at the oldest kept segment instead of the newest. */
  fromStart?: boolean;
  /** Live: give up on a segment once a later one has waited this long (ms). */
  latencyMs?: number;
  /** Live: segments kept for a slow consumer; past it the oldest is skipped (a gap). Default 8. */
  maxQueuedSegments?: number;
}

/** A gap in a live stream: a segment skipped, and why. */
export interface StreamGap {
  seq: number;
  /** 'left-window' / 'late': the fetch gave up on it (live-playout.ts); 'slow-consumer': it waited while newer ones came. */
  reason: LiveGap['reason'] | 'slow-consumer';
}

export interface ObjectStreamStats {
  /** Bytes and chunks (blocks or segments) handed to the consumer. */
  bytesOut: number;
  chunksOut: number;
  /** File: decoded bytes not yet handed to the consumer (held in the budget), now and at most. */
  heldBytes: number;
  peakHeldBytes: number;
  /** Live: segments skipped, every reason, and those skipped for a slow consumer. */
  gaps: number;
  slowConsumerGaps: number;
  /** Live: the most segments that waited for the consumer at once. */
  peakQueuedSegments: number;
}

interface Queued {
  data: Uint8Array;
  /** Bytes of it held in the budget (0 for live segments). */
  held: number;
  seq?: number;
}

export declare interface ObjectStream {
  on(event: 'gap', listener: (g: StreamGap) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class ObjectStream extends Readable implements PlayoutTarget {
  readonly stats: ObjectStreamStats = { bytesOut: 0, chunksOut: 0, heldBytes: 0, peakHeldBytes: 0, gaps: 0, slowConsumerGaps: 0, peakQueuedSegments: 0 };
  readonly maxQueuedSegments: number;
  private readonly queue: Queued[] = [];
  private wanting = false;
  private finished = false;
  private failure?: Error;
  private sink?: StreamSink;

  constructor(
    private readonly budget: PartialBlockBudget,
    readonly options: ObjectStreamOptions,
    /** Aborts the fetch (the consumer destroyed the stream). */
    private readonly abortFetch: () => void,
  ) {
    // One byte deep: a chunk is pushed only when the consumer has taken the last one.
    super({ highWaterMark: 1 });
    const m = options.maxQueuedSegments ?? 8;
    if (!Number.isInteger(m) || m < 1) throw new RangeError(`maxQueuedSegments must be a whole number >= 1 (got ${m})`);
    this.maxQueuedSegments = m;
  }

  // PlayoutTarget
  openFile(object: SinkObject): ObjectSink {
    const sink = new StreamSink(object, this, this.budget);
    this.sink = sink;
    this.budget.priority = (_owner: BudgetedReceiver, sbn: number) => this.queue.length === 0 && sbn === sink.nextSbn;
    return sink;
  }

  segment(seq: number, data: Buffer): void {
    this.queue.push({ data, held: 0, seq });
    while (this.queue.length > this.maxQueuedSegments) {
      const old = this.queue.shift() as Queued;
      this.stats.slowConsumerGaps++;
      this.gap({ seq: old.seq as number, reason: 'slow-consumer' });
    }
    this.stats.peakQueuedSegments = Math.max(this.stats.peakQueuedSegments, this.queue.length);
    this.pump();
  }

  /** A live segment skipped: counted and told ('gap'). */
  gap(g: StreamGap): void {
    this.stats.gaps++;
    this.emit('gap', { seq: g.seq, reason: g.reason });
  }

  /** The fetch finished: 'end' once the consumer has read everything. */
  finish(): void {
    this.finished = true;
    this.pump();
  }

  /** The fetch failed: the stream errors with `e` once the consumer has read what is queued. */
  fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.pump();
  }

  /** A block of the file, in order, `held` bytes of it held in the budget. */
  enqueueBlock(data: Uint8Array, held: number): void {
    this.queue.push({ data, held });
    this.pump();
  }

  /** Bytes held in the budget for the file (decoded, not yet handed out). */
  held(bytes: number): void {
    this.budget.hold(bytes);
    this.stats.heldBytes += bytes;
    this.stats.peakHeldBytes = Math.max(this.stats.peakHeldBytes, this.stats.heldBytes);
  }

  unheld(bytes: number): void {
    if (bytes === 0) return;
    this.budget.unhold(bytes);
    this.stats.heldBytes -= bytes;
  }

  override _read(): void {
    this.wanting = true;
    this.pump();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    for (const q of this.queue) this.unheld(q.held);
    this.queue.length = 0;
    this.sink?.release();
    this.budget.priority = undefined;
    if (!this.finished && !this.failure) this.abortFetch();
    callback(err);
  }

  /** Hands the consumer the next chunk if it asked, else the end or the failure once nothing is left. */
  private pump(): void {
    if (!this.wanting || this.destroyed) return;
    const q = this.queue.shift();
    if (q) {
      this.wanting = false;
      this.unheld(q.held);
      this.stats.bytesOut += q.data.length;
      this.stats.chunksOut++;
      this.push(q.data);
      return;
    }
    // Nothing queued and the one-byte buffer is empty (_read asked): every byte is out.
    if (this.failure) {
      this.budget.priority = undefined;
      this.destroy(this.failure);
    } else if (this.finished) {
      this.wanting = false;
      this.budget.priority = undefined;
      this.push(null);
    }
  }
}

/** The file's sink: blocks in decode order in, in block order out to the stream, each held in the budget until handed out. */
class StreamSink implements ObjectSink {
  readonly path = '-';
  /** The next block the stream needs, and the offset it must start at. */
  nextSbn = 0;
  private nextOffset = 0;
  /** Decoded blocks waiting for an earlier one (held in the budget too). */
  private readonly early = new Map<number, { offset: number; data: Uint8Array }>();
  private readonly hash: Hash = createHash('sha256');

  constructor(
    private readonly object: SinkObject,
    private readonly stream: ObjectStream,
    private readonly budget: PartialBlockBudget,
  ) {}

  async writeBlock(sbn: number, offset: number, data: Uint8Array): Promise<void> {
    if (sbn < this.nextSbn || this.early.has(sbn)) throw new RangeError(`block ${sbn} of "${this.object.name}" handed to the stream twice`);
    // Its reservation as a partial block (larger) was released when it decoded.
    this.stream.held(data.length);
    this.early.set(sbn, { offset, data });
    for (let b = this.early.get(this.nextSbn); b; b = this.early.get(this.nextSbn)) {
      this.early.delete(this.nextSbn);
      if (b.offset !== this.nextOffset) throw new RangeError(`block ${this.nextSbn} of "${this.object.name}" starts at ${b.offset}, expected ${this.nextOffset}`);
      this.nextSbn++;
      this.nextOffset += b.data.length;
      this.hash.update(b.data);
      this.stream.enqueueBlock(b.data, b.data.length);
    }
  }

  /** Every block is queued in order: the digest of what the consumer gets must be the FDT's. */
  async commit(): Promise<void> {
    if (this.early.size > 0 || this.nextOffset !== this.object.oti.transferLength) {
      throw new RangeError(`"${this.object.name}": ${this.nextOffset} of ${this.object.oti.transferLength} bytes in order at commit`);
    }
    this.budget.priority = undefined;
    if (!this.hash.digest().equals(Buffer.from(this.object.sha256))) throw new DigestMismatchError(this.object.name);
  }

  /** What is queued in order stays for the consumer (the error follows it); blocks out of order are let go. */
  async abort(): Promise<void> {
    this.release();
  }

  release(): void {
    for (const b of this.early.values()) this.stream.unheld(b.data.length);
    this.early.clear();
  }
}
