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
 * - Pinned blocks are never released, so the budget holds as long as what
 *   is pinned fits in it: the server sizes each channel's window so that it
 *   does (RqcastServer).
 *
 * Blocks are keyed by their encoder object and SBN; the cache never
 * prepares a block nobody pinned.
 */

/** What the cache needs from an encoder (ObjectEncoder satisfies it). */
export interface PreparableSource {
  prepareBlockAsync(sbn: number): Promise<void>;
  releaseBlock(sbn: number): void;
  /** Bytes block sbn holds once prepared (source + intermediate symbols). */
  blockMemory(sbn: number): number;
}

export interface BlockCacheStats {
  /** Blocks prepared now, or being prepared. */
  preparedBlocks: number;
  /** Bytes they hold (PreparableSource.blockMemory), counted from the start of a preparation. */
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
}

type State = 'idle' | 'preparing' | 'ready';

interface Entry {
  source: PreparableSource;
  sbn: number;
  state: State;
  pins: number;
  bytes: number;
  /** Set while preparing: the promise, for whenReady. */
  pending?: Promise<void>;
}

export class BlockCache {
  readonly budgetBytes: number;
  private readonly entries = new Map<PreparableSource, Map<number, Entry>>();
  /** Ready, unpinned blocks, least recently unpinned first (Map keeps insertion order). */
  private readonly idle = new Map<Entry, true>();
  private readonly onReady?: BlockCacheOptions['onReady'];
  private readonly onError?: BlockCacheOptions['onError'];
  private closed = false;
  private readonly s: BlockCacheStats = { preparedBlocks: 0, preparedBytes: 0, preparedBytesPeak: 0, prepares: 0, releases: 0, prepareErrors: 0 };

  constructor(options: BlockCacheOptions) {
    if (!(Number.isFinite(options.budgetBytes) && options.budgetBytes >= 0)) throw new RangeError('budgetBytes must be >= 0');
    this.budgetBytes = options.budgetBytes;
    this.onReady = options.onReady;
    this.onError = options.onError;
  }

  get stats(): BlockCacheStats {
    return { ...this.s };
  }

  /** Keeps block sbn prepared (starting its preparation now if needed) until unpin. */
  pin(source: PreparableSource, sbn: number): void {
    const e = this.entry(source, sbn);
    e.pins++;
    this.idle.delete(e);
    if (e.state === 'idle') this.prepare(e);
  }

  unpin(source: PreparableSource, sbn: number): void {
    const e = this.entries.get(source)?.get(sbn);
    if (e === undefined || e.pins === 0) throw new RangeError(`block ${sbn} is not pinned`);
    e.pins--;
    if (e.pins === 0 && e.state === 'ready') {
      this.idle.set(e, true);
      this.trim();
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

  /** Forgets every block (the encoders are closed by their owner). */
  close(): void {
    this.closed = true;
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

  private prepare(e: Entry): void {
    e.state = 'preparing';
    this.s.prepares++;
    // The block's bytes count from now (it allocates while preparing): make
    // room first, so that the budget bounds the peak, not just the end state.
    e.bytes = e.source.blockMemory(e.sbn);
    this.s.preparedBlocks++;
    this.s.preparedBytes += e.bytes;
    this.trim();
    this.s.preparedBytesPeak = Math.max(this.s.preparedBytesPeak, this.s.preparedBytes);
    const p = e.source.prepareBlockAsync(e.sbn).then(
      () => {
        e.pending = undefined;
        if (this.closed) return;
        e.state = 'ready';
        if (e.pins === 0) {
          this.idle.set(e, true);
          this.trim();
        } else {
          this.onReady?.(e.source, e.sbn);
        }
      },
      (err: unknown) => {
        e.pending = undefined;
        e.state = 'idle';
        this.s.preparedBlocks--;
        this.s.preparedBytes -= e.bytes;
        e.bytes = 0;
        this.s.prepareErrors++;
        if (!this.closed) this.onError?.(err, e.source, e.sbn);
        throw err;
      },
    );
    // whenPinnedReady reports the failure; onError already has it otherwise.
    p.catch(() => undefined);
    e.pending = p;
  }

  /** Releases idle blocks, oldest first, until the prepared bytes fit the budget. */
  private trim(): void {
    for (const e of this.idle.keys()) {
      if (this.s.preparedBytes <= this.budgetBytes) return;
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
