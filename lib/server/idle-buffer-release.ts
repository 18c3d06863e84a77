/**
 * IdleBufferRelease: gives the codec's cached block buffers back to the
 * system once a server has stopped preparing blocks.
 *
 * Why: a block's preparation takes a copy of its source symbols, and a
 * block released from the budget gives back its work buffer; both go to a
 * process-wide cache (native/fec/symbol_buffer.h, up to 160 MiB) so that the
 * next preparation reuses them instead of memory the kernel must fault in
 * and zero (`npm run bench:prep`: 2-3x the CPU of the same preparation).
 * That memory is outside the server's `--memory` budget (BlockCache counts
 * prepared blocks), which is fine while preparations follow one another,
 * and a waste once they have stopped: a server whose blocks are all
 * prepared, or that nobody fetches from, would hold it for good.
 *
 * Idle means: the activity count (preparations started + blocks released)
 * did not change over one whole interval. Then the cache is emptied once;
 * the next activity re-arms it. A preparation running longer than an
 * interval may see its neighbours' buffers go: it costs that preparation's
 * successor a fault-in, nothing else.
 */

/** How long a server prepares nothing before the cached buffers go back. */
export const DEFAULT_IDLE_RELEASE_MS = 10_000;

export interface IdleBufferReleaseOptions {
  /** A count that moves whenever buffers may enter the cache (BlockCache: prepares + releases). */
  activity: () => number;
  /** Empties the cache (the codec binding's symbolBufferCounters(false, true)). */
  release: () => void;
  /** Default DEFAULT_IDLE_RELEASE_MS. */
  intervalMs?: number;
}

export class IdleBufferRelease {
  private last: number | undefined;
  private released = false;
  private readonly timer: ReturnType<typeof setInterval>;
  /** Times the cache was emptied. */
  releases = 0;

  constructor(private readonly o: IdleBufferReleaseOptions) {
    const ms = o.intervalMs ?? DEFAULT_IDLE_RELEASE_MS;
    if (!(Number.isFinite(ms) && ms > 0)) throw new RangeError('intervalMs must be > 0');
    this.last = o.activity();
    this.timer = setInterval(() => this.check(), ms);
    this.timer.unref?.();
  }

  /** One interval has passed: empties the cache if nothing happened during it (and it was not emptied since). Returns whether it did. */
  check(): boolean {
    const now = this.o.activity();
    if (now !== this.last) {
      this.last = now;
      this.released = false;
      return false;
    }
    if (this.released) return false;
    this.released = true;
    this.releases++;
    this.o.release();
    return true;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
