/**
 * IdleBufferRelease: gives the codec's cached block buffers back to the
 * system once the process has stopped preparing blocks.
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
 * Idle means: the activity count did not change over one whole interval.
 * Then the cache is emptied once; the next activity re-arms it. A
 * preparation running longer than an interval may see its neighbours'
 * buffers go: it costs that preparation's successor a fault-in, nothing
 * else.
 *
 * The cache is the process's, so the rule is too: every server of the
 * process (a relay's, a test's several) holds one shared IdleBufferRelease
 * while it listens (holdIdleBufferRelease), whose activity is the codec's
 * own process-wide count of buffers taken and freed. One server going
 * idle does not empty the cache under another one's preparations, and a
 * process with several servers runs one timer.
 */
import { loadNative } from '../native';

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

/** The process's rule and how many servers hold it. */
let shared: { rule: IdleBufferRelease; holders: number; warn: (err: unknown) => void } | undefined;

/**
 * Block buffers taken from the system or the cache, and freed, by anyone in
 * the process (encoders and decoders alike): it moves whenever buffers may
 * enter the cache.
 */
function processActivity(): number {
  const c = loadNative().symbolBufferCounters();
  return c.fresh + c.reused + c.freed;
}

/**
 * A server's hold on the process's idle rule, made when the first holder
 * comes (its `intervalMs` and `warn` are the rule's) and stopped when the
 * last one lets go. Returns the function that lets go (once).
 */
export function holdIdleBufferRelease(options: { intervalMs?: number; warn?: (err: unknown) => void } = {}): () => void {
  if (shared === undefined) {
    const warn = options.warn ?? ((): void => undefined);
    const rule = new IdleBufferRelease({
      activity: processActivity,
      release: () => {
        try {
          loadNative().symbolBufferCounters(false, true);
        } catch (err) {
          shared?.warn(err);
        }
      },
      intervalMs: options.intervalMs,
    });
    shared = { rule, holders: 0, warn };
  }
  const held = shared;
  held.holders++;
  let holding = true;
  return () => {
    if (!holding) return;
    holding = false;
    if (--held.holders === 0) {
      held.rule.stop();
      if (shared === held) shared = undefined;
    }
  };
}

/** The rule the servers of this process hold now, if any (tests, metrics). */
export function sharedIdleBufferRelease(): IdleBufferRelease | undefined {
  return shared?.rule;
}
