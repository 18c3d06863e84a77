/**
 * BlockCache: which source blocks have their intermediate symbols in memory
 * (RFC 6330 §5.3.3.4: "prepared"), so that the server's memory is bounded by
 * a budget and not by the size of what it serves.
 *
 * - A stream pins the blocks it is sending and the next one it will send
 *   (ChannelStream's sliding window). A pinned block is prepared on a worker
 *   thread (prepareBlockAsync) and stays prepared until unpinned; `ready`
 *   says, without blocking, whether its packets can be produced now.
 * - An unpinned block stays prepared while the prepared bytes fit the
 *   budget (so a catalogue that fits is prepared once, as before); beyond
 *   the budget the least recently unpinned blocks are released first.
 * - A preparation starts only when its bytes fit the budget beside what is
 *   prepared or being prepared (idle blocks are released to make room);
 *   otherwise it waits for one in progress to finish, so blocks pinned
 *   together (a window at start-up) are prepared a few at a time. One
 *   preparation always runs, so a budget smaller than a block still makes
 *   progress.
 * - Pinned blocks are never released, so the budget holds as long as what
 *   is pinned fits in it: the server sizes each channel's window so that it
 *   does (RqcastServer).
 *
 * Blocks are keyed by their source object and SBN; the cache never
 * prepares a block nobody pinned (a stream pins sealed blocks only).
 */

import type { BlockPreparation } from './block-source';

/**
 * What the cache needs from a source: the preparation part of a BlockSource
 * (block-source.ts), which files, live ingest and relays all implement.
 */
export type PreparableSource = BlockPreparation;

export interface BlockCacheStats {
  /** Blocks prepared now, or being prepared. */
  preparedBlocks: number;
  /** Bytes they hold (PreparableSource.blockMemory; twice that while being prepared). */
  preparedBytes: number;
  /** The most preparedBytes has been. */
  preparedBytesPeak: number;
  /** Preparations started / released. */
  prepares: number;
  releases: number;
  /** Preparations that failed (I/O error, file changed). */
  prepareErrors: number;
}

export interface BlockCacheOptions {
  /** Bytes of prepared blocks kept beyond those pinned. */
  budgetBytes: number;
  /** Called (on the JS thread) when a pinned block has become ready. */
  onReady?: (source: PreparableSource, sbn: number) => void;
  onError?: (err: unknown, source: PreparableSource, sbn: number) => void;
  /** Runs before each preparation; a rejection is that preparation's failure (a file that changed since it was announced). */
  beforePrepare?: (source: PreparableSource, sbn: number) => Promise<void>;
}

type State = 'idle' | 'queued' | 'preparing' | 'ready';

/** A block being prepared counts this many times its prepared size: it also holds a copy of its source symbols (K <= L). */
export const PREPARING_FACTOR = 2;

interface Entry {
  source: PreparableSource;
  sbn: number;
  state: State;
  pins: number;
  /** Bytes counted in preparedBytes: PREPARING_FACTOR x its size while preparing, its size once ready. */
  bytes: number;
  /** While queued or preparing: settles when it is ready (or failed, or dropped from the queue). */
  pending?: Promise<void>;
  settle?: (err?: unknown) => void;
}

export class BlockCache {
  readonly budgetBytes: number;
  private readonly entries = new Map<PreparableSource, Map<number, Entry>>();
  /** Ready, unpinned blocks, least recently unpinned first (Map keeps insertion order). */
  private readonly idle = new Map<Entry, true>();
  /** Preparations waiting for room, in pin order. */
  private readonly queue: Entry[] = [];
  private inFlight = 0;
  private readonly onReady?: BlockCacheOptions['onReady'];
  private readonly onError?: BlockCacheOptions['onError'];
  private readonly beforePrepare?: BlockCacheOptions['beforePrepare'];
  private closed = false;
  private readonly s: BlockCacheStats = { preparedBlocks: 0, preparedBytes: 0, preparedBytesPeak: 0, prepares: 0, releases: 0, prepareErrors: 0 };

  constructor(options: BlockCacheOptions) {
    if (!(Number.isFinite(options.budgetBytes) && options.budgetBytes >= 0)) throw new RangeError('budgetBytes must be >= 0');
    this.budgetBytes = options.budgetBytes;
    this.onReady = options.onReady;
    this.onError = options.onError;
    this.beforePrepare = options.beforePrepare;
  }

  get stats(): BlockCacheStats {
    return { ...this.s };
  }

  /** Keeps block sbn prepared (starting its preparation as soon as it fits) until unpin. */
  pin(source: PreparableSource, sbn: number): void {
    const e = this.entry(source, sbn);
    e.pins++;
    this.idle.delete(e);
    if (e.state === 'idle') {
      e.state = 'queued';
      e.pending = new Promise<void>((resolve, reject) => {
        e.settle = (err?: unknown) => (err === undefined ? resolve() : reject(err));
      });
      // whenPinnedReady reports a failure; onError has it otherwise.
      e.pending.catch(() => undefined);
      this.queue.push(e);
      this.pump();
    }
  }

  unpin(source: PreparableSource, sbn: number): void {
    const e = this.entries.get(source)?.get(sbn);
    if (e === undefined || e.pins === 0) throw new RangeError(`block ${sbn} is not pinned`);
    e.pins--;
    if (e.pins === 0 && e.state === 'ready') {
      this.idle.set(e, true);
      this.trim(0);
      this.pump();
    }
  }

  /** Whether block sbn's packets can be produced now without preparing it on this thread. */
  ready(source: PreparableSource, sbn: number): boolean {
    return this.entries.get(source)?.get(sbn)?.state === 'ready';
  }

  /** Resolves once every pinned block is ready (rejects if one failed). */
  async whenPinnedReady(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const m of this.entries.values()) {
      for (const e of m.values()) if (e.pins > 0 && e.pending) waits.push(e.pending);
    }
    await Promise.all(waits);
  }

  /** Forgets every block (the sources are closed by their owner). */
  close(): void {
    this.closed = true;
    for (const e of this.queue) e.settle?.();
    this.queue.length = 0;
    this.entries.clear();
    this.idle.clear();
  }

  private entry(source: PreparableSource, sbn: number): Entry {
    let m = this.entries.get(source);
    if (!m) this.entries.set(source, (m = new Map()));
    let e = m.get(sbn);
    if (!e) m.set(sbn, (e = { source, sbn, state: 'idle', pins: 0, bytes: 0 }));
    return e;
  }

  /** Starts queued preparations, in order, while they fit (one at least). */
  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      const e = this.queue[0];
      if (e.pins === 0) {
        // Unpinned while it waited: nobody needs it now.
        this.queue.shift();
        e.state = 'idle';
        e.settle?.();
        e.pending = e.settle = undefined;
        continue;
      }
      const need = PREPARING_FACTOR * e.source.blockMemory(e.sbn);
      this.trim(need);
      if (this.inFlight > 0 && this.s.preparedBytes + need > this.budgetBytes) return;
      this.queue.shift();
      this.start(e, need);
    }
  }

  private start(e: Entry, need: number): void {
    e.state = 'preparing';
    this.inFlight++;
    this.s.prepares++;
    // Counted from now (it allocates while preparing): the budget bounds the peak.
    e.bytes = need;
    this.s.preparedBlocks++;
    this.s.preparedBytes += need;
    this.s.preparedBytesPeak = Math.max(this.s.preparedBytesPeak, this.s.preparedBytes);
    const check = this.beforePrepare;
    (check ? check(e.source, e.sbn).then(() => e.source.prepareBlockAsync(e.sbn)) : e.source.prepareBlockAsync(e.sbn)).then(
      () => {
        this.inFlight--;
        if (this.closed) return;
        e.state = 'ready';
        const held = e.source.blockMemory(e.sbn);
        this.s.preparedBytes += held - e.bytes;
        e.bytes = held;
        const settle = e.settle;
        e.pending = e.settle = undefined;
        settle?.();
        if (e.pins === 0) {
          this.idle.set(e, true);
          this.trim(0);
        } else {
          this.onReady?.(e.source, e.sbn);
        }
        this.pump();
      },
      (err: unknown) => {
        this.inFlight--;
        e.state = 'idle';
        this.s.preparedBlocks--;
        this.s.preparedBytes -= e.bytes;
        e.bytes = 0;
        this.s.prepareErrors++;
        const settle = e.settle;
        e.pending = e.settle = undefined;
        settle?.(err);
        if (this.closed) return;
        this.onError?.(err, e.source, e.sbn);
        this.pump();
      },
    );
  }

  /** Releases idle blocks, oldest first, until `extra` more bytes fit the budget. */
  private trim(extra: number): void {
    for (const e of this.idle.keys()) {
      if (this.s.preparedBytes + extra <= this.budgetBytes) return;
      this.idle.delete(e);
      e.source.releaseBlock(e.sbn);
      e.state = 'idle';
      this.s.preparedBlocks--;
      this.s.preparedBytes -= e.bytes;
      this.s.releases++;
      e.bytes = 0;
    }
  }
}
