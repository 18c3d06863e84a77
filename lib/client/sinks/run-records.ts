/**
 * Run records: the resume journal's record of source symbols written
 * through (write-through.ts) before their block decoded. A run waits
 * RUN_RECORD_DELAY_MS; if its block has still not been written by then (or
 * when the fetch stops short), it is read back from the part file as it
 * holds it, hashed, and recorded (ResumeJournal.recordRun). Runs whose
 * block was written meanwhile are dropped: the block's record covers them.
 * Most blocks decode within the delay, so most runs are never hashed.
 */
import { createHash } from '../../support/crypto-when-used';
import type { ObjectFileWriter } from './file-writer';
import type { ResumeJournal } from './resume-state';

/**
 * How long a run of written-through symbols waits before it is recorded
 * (hashed): a block of 16 MiB at 200 Mbit/s arrives and decodes within
 * about a second, and its runs then need no record.
 */
export const RUN_RECORD_DELAY_MS = 2000;

/** The counters run records add to (the sink's stats). */
export interface RunRecordCounters {
  runsHashed: number;
  runsSkipped: number;
  bytesHashed: number;
}

interface PendingRun {
  offset: number;
  length: number;
  sbn: number;
  /** Date.now() when it landed. */
  at: number;
}

export class RunRecords {
  /** Runs recorded in the journal (this run's). */
  readonly recorded: { offset: number; length: number }[] = [];
  /** Not recorded yet, oldest first. */
  private pending: PendingRun[] = [];
  private timer?: NodeJS.Timeout;

  /**
   * `written`: the blocks in the part file (a run of one of them needs no
   * record); `due`: called when the oldest pending run has waited
   * `delayMs` (Infinity: never; runs are then recorded only by
   * recordDue(..., true)).
   */
  constructor(
    private readonly delayMs: number,
    private readonly written: ReadonlySet<number>,
    private readonly counters: RunRecordCounters,
    private readonly due: () => void,
  ) {}

  /** Ranges of block `sbn` landed in the part file now. */
  add(sbn: number, ranges: readonly { offset: number; length: number }[]): void {
    const at = Date.now();
    for (const r of ranges) this.pending.push({ offset: r.offset, length: r.length, sbn, at });
  }

  /** Arms the timer for the oldest pending run, unless armed or nothing waits. */
  schedule(): void {
    if (this.timer !== undefined || this.pending.length === 0 || !Number.isFinite(this.delayMs)) return;
    const wait = Math.max(0, this.pending[0].at + this.delayMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.due();
    }, wait);
    this.timer.unref();
  }

  /**
   * Records the pending runs that have waited the delay (all of them with
   * `all`) and whose block is still not written, each hashed as the part
   * file holds it; drops those of blocks written.
   */
  async recordDue(writer: ObjectFileWriter, journal: ResumeJournal, all: boolean): Promise<void> {
    const cutoff = all ? Infinity : Date.now() - this.delayMs;
    const due: PendingRun[] = [];
    const later: PendingRun[] = [];
    for (const r of this.pending) {
      if (this.written.has(r.sbn)) this.counters.runsSkipped++;
      else if (r.at <= cutoff) due.push(r);
      else later.push(r);
    }
    this.pending = later;
    for (const r of due) {
      const bytes = await writer.readBack(r.offset, r.length);
      if (bytes === undefined) continue;
      if (this.written.has(r.sbn)) {
        this.counters.runsSkipped++;
        continue;
      }
      this.counters.runsHashed++;
      this.counters.bytesHashed += r.length;
      journal.recordRun(r.offset, r.length, createHash('sha256').update(bytes).digest());
      this.recorded.push({ offset: r.offset, length: r.length });
    }
  }

  /** Every block is written: no pending run needs a record (they count as skipped). */
  skipPending(): void {
    this.counters.runsSkipped += this.pending.length;
    this.pending = [];
  }

  /** No run will be recorded from now on, by the timer or otherwise. */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
  }

  /** The timer only; pending runs stay (suspend records them itself). */
  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
