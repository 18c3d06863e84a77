/**
 * ResumableFileSink: the file sink of a fetch that can be resumed. The
 * object is written to `.NAME.rqcast-part` beside its destination, and each
 * block written is recorded, with its SHA-256, in `.NAME.rqcast-state`
 * (resume-state.ts: format and ordering). A fetch that stops short keeps
 * both (suspend); the next fetch of the same object (same OTI and SHA-256)
 * reads the record, reads every recorded block back, keeps those that still
 * hash to their record and fetches only the others. The published object is
 * still checked against the FDT's digest (ObjectFileWriter.commit).
 *
 * Before anything else the sink takes `.NAME.rqcast-lock` (our pid): two
 * fetches of one destination would overwrite each other's part file, so
 * the second is refused while the first runs, and a lock whose process is
 * gone (kill -9) is taken over. Holding it, the sink removes the
 * random-named temporary files of earlier versions for the same
 * destination, which nothing else can be using.
 *
 * Blocks written in order cost no hash of their own: once every block up
 * to a block's end is written, one prefix record carries the file's
 * running digest at that end (ObjectFileWriter.prefixDigest), which the
 * file's final check computes anyway; only a block written past that
 * prefix gets a block record with its own SHA-256.
 *
 * Source symbols written through before their block decoded
 * (write-through.ts) are recorded too, as runs with their SHA-256: the next
 * fetch hands the verified ones to the receiver as received symbols
 * (resumeSymbols), so that a fetch stopped while every block was in
 * progress (a round-robin stream) still keeps what it received. A run is
 * recorded once it has waited RUN_RECORD_DELAY_MS and its block has still
 * not decoded (or when the fetch stops short), hashed as the part file
 * holds it: most blocks decode sooner, and their runs are never hashed. A
 * fetch killed outright (kill -9) thus loses at most that last while of
 * symbols written through (run-records.ts).
 *
 * What an earlier run left is read and checked before the first write
 * (resume-prepare.ts); mode 'continue' resumes what it finds; 'restart' (fetch --no-resume)
 * discards it first. Either way the new run is itself resumable.
 */
import { createHash } from '../../support/crypto-when-used';
import { constants as fsConstants, promises as fs } from 'fs';
import * as path from 'path';
import { UnfetchableObjectError } from '../errors';
import { makeDirectory, ObjectFileWriter } from './file-writer';
import { blockOf, BlockSpan, blockSpans, PartialPaths, partialPaths, readRun, releaseLock, removeLegacyTemps, ResumeJournal, takeLock, type VerifiedBlocks } from './resume-state';
import { prepareResume, type PreparedResume, removePartial, type ResumeMode, unlinkIfThere } from './resume-prepare';
import { RUN_RECORD_DELAY_MS, RunRecords } from './run-records';
import type { ByteRange, KeptPartial, ObjectSink, SinkObject } from './sink';

export { RUN_RECORD_DELAY_MS } from './run-records';
export type { ResumeMode } from './resume-prepare';

/** SHA-256 passes the sink made over object bytes (tests count them). */
export interface ResumableSinkStats {
  /** Blocks hashed for block records of their own. */
  blocksHashed: number;
  /** Runs hashed for run records. */
  runsHashed: number;
  /** Bytes of those blocks and runs. */
  bytesHashed: number;
  /** Prefix records made (from the running digest: no bytes hashed). */
  prefixRecords: number;
  /** Runs never recorded: their block was written first. */
  runsSkipped: number;
}

export interface ResumableSinkOptions {
  mode: ResumeMode;
  /** As FileSinkOptions.holdBytes. */
  holdBytes?: () => number;
  /** A changed object, torn blocks, debris removed. */
  warning?: (message: string) => void;
  /**
   * The names in a directory, for the debris of earlier versions: a fetch of
   * many objects lists each directory once (FileSinkFactory), not once per
   * object.
   */
  listDir?: (dir: string) => Promise<string[]>;
  /** RUN_RECORD_DELAY_MS by default; Infinity: runs are recorded only when the fetch stops short (tests). */
  runRecordDelayMs?: number;
}

export class ResumableFileSink implements ObjectSink {
  readonly resumed: Promise<number[]>;
  readonly paths: PartialPaths;
  private readonly spans: BlockSpan[];
  private readonly prepared: Promise<PreparedResume>;
  private opened?: Promise<{ writer: ObjectFileWriter; journal: ResumeJournal }>;
  /** The writer once open. */
  private writer?: ObjectFileWriter;
  /** Blocks in the part file and its journal: kept from before, and written (and recorded) since. */
  private readonly held = new Set<number>();
  private readonly writes = new Set<Promise<void>>();
  private lockTaken = false;
  /** SHA-256 passes over object bytes (tests). */
  readonly stats: ResumableSinkStats = { blocksHashed: 0, runsHashed: 0, bytesHashed: 0, prefixRecords: 0, runsSkipped: 0 };
  /** Blocks 0 .. heldPrefix - 1 are all held. */
  private heldPrefix = 0;
  /** The journal records bytes [0, recordedPrefix) (a prefix record). */
  private recordedPrefix = 0;
  /** Blocks written inside the running digest's prefix, waiting for the blocks before them to be written: a prefix record will cover them. */
  private readonly waiting = new Map<number, Uint8Array>();
  /** Runs of written-through source symbols: recorded, and waiting (RUN_RECORD_DELAY_MS). */
  private readonly runRecords: RunRecords;
  /**
   * The block that completed the part file, written but not recorded: commit
   * follows at once and needs no record of it (nor its SHA-256, a pass over
   * the block at the end of the transfer); suspend records it.
   */
  private unrecorded?: { sbn: number; data: Uint8Array };
  /** No more records: published, given up or suspended. */
  private ended = false;
  private suspending = false;

  private readonly holdBytes?: () => number;
  private readonly warning: (message: string) => void;
  private readonly listDir: (dir: string) => Promise<string[]>;
  private locking?: Promise<void>;

  constructor(
    private readonly object: SinkObject,
    readonly path: string,
    options: ResumableSinkOptions,
  ) {
    this.holdBytes = options.holdBytes;
    this.warning = options.warning ?? (() => undefined);
    this.listDir = options.listDir ?? ((d) => fs.readdir(d).catch(() => []));
    this.runRecords = new RunRecords(options.runRecordDelayMs ?? RUN_RECORD_DELAY_MS, this.held, this.stats, () => {
      // suspend records every pending run itself.
      if (!this.suspending && !this.ended) void this.track(() => this.recordDueRuns());
    });
    this.paths = partialPaths(path);
    this.spans = blockSpans(object.oti);
    this.prepared = prepareResume({ object, paths: this.paths, spans: this.spans, mode: options.mode, lock: () => this.lock(), warning: this.warning }).then((p) => {
      this.adopt(p.kept, p.verified);
      return p;
    });
    this.resumed = this.prepared.then((p) => [...p.kept]);
    // Failures surface through `resumed`, writeBlock and commit; keep the promises handled meanwhile.
    this.resumed.catch(() => undefined);
  }

  async writeBlock(sbn: number, offset: number, data: Uint8Array, inPlace?: readonly ByteRange[]): Promise<void> {
    return this.track(async () => {
      const { writer, journal } = await this.open();
      this.writer = writer;
      await writer.writeAt(offset, data, inPlace);
      if (this.ended) return;
      this.held.add(sbn);
      if (this.held.size === this.spans.length) {
        this.unrecorded = { sbn, data };
        return;
      }
      this.recordBlock(writer, journal, sbn, data);
    });
  }

  /** Written, recorded, and held neither for a prefix record nor by the writer's running digest. */
  doneWithBlock(sbn: number, data: Uint8Array): boolean {
    const w = this.writer;
    return w !== undefined && this.held.has(sbn) && !this.waiting.has(sbn) && this.unrecorded?.data !== data && !w.keeps(data);
  }

  private end(sbn: number): number {
    return this.spans[sbn].offset + this.spans[sbn].length;
  }

  /**
   * Records block `sbn`, written: a block the running digest has passed
   * waits for a prefix record (once every block before it is written);
   * any other gets a block record of its own.
   */
  private recordBlock(writer: ObjectFileWriter, journal: ResumeJournal, sbn: number, data: Uint8Array): void {
    while (this.held.has(this.heldPrefix)) this.heldPrefix++;
    if (this.end(sbn) <= writer.digestedBytes) this.waiting.set(sbn, data);
    else this.hashBlock(journal, sbn, data);
    this.recordPrefix(writer, journal);
  }

  private hashBlock(journal: ResumeJournal, sbn: number, data: Uint8Array): void {
    this.stats.blocksHashed++;
    this.stats.bytesHashed += data.length;
    journal.record(sbn, createHash('sha256').update(data).digest());
  }

  /**
   * A prefix record for the blocks written from the start of the object
   * (their digest from the file's running digest), covering the waiting
   * blocks; if the running digest was dropped (a region written twice),
   * the waiting blocks are hashed on their own instead. `all`: the fetch
   * stops, nothing more will be written: no block waits any longer.
   */
  private recordPrefix(writer: ObjectFileWriter, journal: ResumeJournal, all = false): void {
    if (this.heldPrefix > 0) {
      // Written up to one end, digested up to another (both ends of blocks, where the digest has a mark).
      const end = Math.min(this.end(this.heldPrefix - 1), writer.digestedBytes);
      const digest = end > this.recordedPrefix ? writer.prefixDigest(end) : undefined;
      if (digest !== undefined) {
        journal.recordPrefix(end, digest);
        this.recordedPrefix = end;
        this.stats.prefixRecords++;
      }
    }
    for (const [sbn, data] of this.waiting) {
      if (this.end(sbn) <= this.recordedPrefix) this.waiting.delete(sbn);
      else if (all || writer.digestDropped) {
        this.waiting.delete(sbn);
        this.hashBlock(journal, sbn, data);
      }
    }
  }

  /**
   * Source symbols written through: once they land, a run record keeps them
   * for a later run, block decoded or not (a record per range of
   * `symbols`, when given: filler is not recorded). Resolves true once
   * they are in the part file whole.
   */
  prewrite(offset: number, data: Uint8Array, symbols?: readonly ByteRange[]): Promise<boolean> {
    let landed = false;
    return this.track(async () => {
      const { writer } = await this.open();
      landed = await writer.prewrite(offset, data);
      if (!landed || this.ended) return;
      const sbn = blockOf(this.spans, offset);
      if (sbn === undefined) return;
      this.runRecords.add(sbn, symbols ?? [{ offset, length: data.length }]);
      this.scheduleRuns();
    }).then(
      () => landed,
      () => landed,
    );
  }

  /** The next look at the pending runs, when the oldest is due. */
  private scheduleRuns(): void {
    if (!this.ended) this.runRecords.schedule();
  }

  /**
   * Records the pending runs that have waited RUN_RECORD_DELAY_MS (all of
   * them with `all`) and whose block is still not written (run-records.ts).
   */
  async recordDueRuns(all = false): Promise<void> {
    const { writer, journal } = await this.open();
    if (this.ended && !all) return;
    await this.runRecords.recordDue(writer, journal, all);
    this.scheduleRuns();
  }

  /**
   * Hands `add` the source symbols the earlier run wrote through for blocks
   * not kept whole, each run read back and checked against its record
   * again; returns the bytes handed over.
   */
  async resumeSymbols(add: (offset: number, bytes: Uint8Array) => void): Promise<number> {
    const p = await this.prepared;
    if (p.runs.length === 0) return 0;
    const part = await fs.open(this.paths.part, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    let n = 0;
    try {
      for (const run of p.runs) {
        if (this.ended) break;
        const bytes = await readRun(part, run);
        if (bytes === undefined || !createHash('sha256').update(bytes).digest().equals(run.digest)) continue;
        add(run.offset, bytes);
        n += bytes.length;
      }
    } finally {
      await part.close();
    }
    return n;
  }

  /** Runs `job`, which suspend and abort wait for. */
  private track(job: () => Promise<void>): Promise<void> {
    const p = job();
    this.writes.add(p);
    const forget = (): void => void this.writes.delete(p);
    p.then(forget, forget);
    return p;
  }

  async commit(): Promise<void> {
    const { writer, journal } = await this.open();
    // Publishing makes every record moot (and a failure removes the part
    // file): none is started from now on, and commit does not wait for the
    // one being written (discard does, after the rename).
    this.unrecorded = undefined;
    // Every block is written: no pending run needs a record.
    this.runRecords.skipPending();
    this.stopRuns();
    journal.stop();
    try {
      await writer.commit(this.object.sha256, this.object.name);
    } catch (e) {
      // The writer removed the part file (digest mismatch or failure).
      await this.discard(journal);
      throw e;
    }
    // Published: the record has nothing left to resume.
    await this.discard(journal);
  }

  /** No run will be recorded: the object is published or given up. */
  private stopRuns(): void {
    this.runRecords.stop();
    this.waiting.clear();
  }

  async abort(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.stopRuns();
    await Promise.allSettled(this.writes);
    const opened = await this.opened?.catch(() => undefined);
    if (opened !== undefined) {
      await opened.writer.abort();
      await this.discard(opened.journal);
      return;
    }
    // Only files this fetch owns (it holds the lock) are taken back.
    if (this.lockTaken) {
      await unlinkIfThere(this.paths.part).catch(() => undefined);
      await unlinkIfThere(this.paths.state).catch(() => undefined);
    }
    await this.unlock();
  }

  async suspend(): Promise<KeptPartial | undefined> {
    if (this.ended || this.suspending) return undefined;
    this.suspending = true;
    // Writes in flight land and are recorded first.
    await Promise.allSettled(this.writes);
    this.ended = true;
    const prepared = await this.prepared.catch(() => undefined);
    const opened = await this.opened?.catch(() => undefined);
    if (prepared === undefined || !this.lockTaken) {
      // Never owned the destination's files (another fetch holds them, or there were none): nothing kept.
      await this.unlock();
      return undefined;
    }
    if (opened !== undefined) {
      const last = this.unrecorded;
      this.unrecorded = undefined;
      if (last !== undefined) this.recordBlock(opened.writer, opened.journal, last.sbn, last.data);
      // Nothing more is written: blocks waiting for a prefix record get their own, and every run not covered by a block is recorded now.
      this.recordPrefix(opened.writer, opened.journal, true);
      await this.recordDueRuns(true);
      this.runRecords.disarm();
      // The records wait for the part file's fdatasync; then the file is closed, kept.
      await opened.journal.close();
      await opened.writer.suspend();
    }
    // Runs of blocks not kept whole; a run may have been recorded twice (a symbol received twice): counted once per offset.
    const symbolRuns = new Map<number, number>();
    for (const r of [...prepared.runs, ...this.runRecords.recorded]) {
      const sbn = blockOf(this.spans, r.offset);
      if (sbn !== undefined && !this.held.has(sbn)) symbolRuns.set(r.offset, Math.max(r.length, symbolRuns.get(r.offset) ?? 0));
    }
    if (this.held.size === 0 && symbolRuns.size === 0) {
      // Nothing to resume from: leave no files behind.
      await unlinkIfThere(this.paths.part).catch(() => undefined);
      await unlinkIfThere(this.paths.state).catch(() => undefined);
      await this.unlock();
      return undefined;
    }
    await this.unlock();
    let bytesKept = 0;
    for (const sbn of this.held) bytesKept += this.spans[sbn].length;
    let symbolBytesKept = 0;
    for (const length of symbolRuns.values()) symbolBytesKept += length;
    return {
      name: this.object.name,
      path: this.path,
      partPath: this.paths.part,
      statePath: this.paths.state,
      blocksKept: this.held.size,
      blocks: this.spans.length,
      bytesKept,
      symbolBytesKept,
      bytes: this.object.oti.transferLength,
    };
  }

  // ---------------------------------------------------------------------

  /** The blocks an earlier run left verified are held from the start. */
  private adopt(kept: readonly number[], verified?: VerifiedBlocks): void {
    for (const sbn of kept) this.held.add(sbn);
    while (this.held.has(this.heldPrefix)) this.heldPrefix++;
    this.recordedPrefix = verified?.prefixBytes ?? 0;
  }

  /** Takes the destination's lock (once), then removes the debris of earlier versions beside it. */
  private lock(): Promise<void> {
    this.locking ??= (async () => {
      const dir = path.dirname(this.path);
      await makeDirectory(dir);
      const owner = await takeLock(this.paths.lock);
      if (owner !== undefined) {
        throw new UnfetchableObjectError(
          this.object.name,
          `another rqcast fetch (pid ${owner}) is writing ${this.path}; wait for it to end, or delete ${this.paths.lock} if that process is not an rqcast fetch`,
        );
      }
      this.lockTaken = true;
      const legacy = await removeLegacyTemps(this.path, await this.listDir(dir));
      if (legacy.length > 0) this.warning(`removed ${legacy.length} temporary file${legacy.length === 1 ? '' : 's'} an interrupted fetch left beside ${this.path}`);
    })();
    return this.locking;
  }

  /** The part file and its journal: the earlier run's (its kept blocks only) or new ones. Created on first use. */
  private open(): Promise<{ writer: ObjectFileWriter; journal: ResumeJournal }> {
    if (this.opened === undefined) {
      this.opened = this.prepared.then(async (p) => {
        await this.lock();
        const F = this.object.oti.transferLength;
        let writer: ObjectFileWriter | undefined;
        // The verified prefix's digest, taken before the writer goes on with its state.
        const v = p.verified;
        const prefix = v !== undefined && v.prefixBytes > 0 ? { bytes: v.prefixBytes, digest: v.prefix.copy().digest() } : undefined;
        if (p.kept.length > 0 || p.runs.length > 0) {
          const verified = p.verified as VerifiedBlocks;
          writer = await ObjectFileWriter.reopen(this.path, this.paths.part, F, { hash: verified.prefix, bytes: verified.prefixBytes });
          // The receiver already counts the kept blocks as decoded: a part file gone meanwhile cannot be papered over.
          if (writer === undefined) throw new UnfetchableObjectError(this.object.name, `${this.paths.part} changed while the fetch was resuming it; run the fetch again`);
          for (const sbn of p.kept) writer.alreadyWritten(this.spans[sbn].offset, this.spans[sbn].length);
        } else {
          await removePartial(this.paths);
          writer = await ObjectFileWriter.create(this.path, F, this.paths.part);
        }
        if (this.holdBytes) writer.holdBytes = Math.min(writer.holdBytes, this.holdBytes());
        const w = writer;
        // The record of the kept blocks only (torn ones dropped), replacing the old one at once.
        const journal = await ResumeJournal.write(this.paths.state, this.object, p.records, () => w.datasync(), p.runs, prefix);
        return { writer: w, journal };
      });
      this.opened.catch(() => undefined);
    }
    return this.opened;
  }

  /** The object is published or given up: its record and lock go. */
  private async discard(journal: ResumeJournal): Promise<void> {
    this.ended = true;
    await journal.close();
    await unlinkIfThere(this.paths.state).catch(() => undefined);
    await this.unlock();
  }

  private async unlock(): Promise<void> {
    if (!this.lockTaken) return;
    this.lockTaken = false;
    await releaseLock(this.paths.lock);
  }
}
