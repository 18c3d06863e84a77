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
 * symbols written through.
 *
 * mode 'continue' resumes what it finds; 'restart' (fetch --no-resume)
 * discards it first. Either way the new run is itself resumable.
 */
import { createHash } from 'crypto';
import { constants as fsConstants, promises as fs } from 'fs';
import * as path from 'path';
import { UnfetchableObjectError } from '../errors';
import { makeDirectory, ObjectFileWriter } from './file-writer';
import {
  blockOf,
  BlockSpan,
  blockSpans,
  MAX_STATE_BYTES,
  parseState,
  PartialPaths,
  partialPaths,
  releaseLock,
  removeLegacyTemps,
  readRun,
  ResumeJournal,
  type SymbolRun,
  takeLock,
  verifyBlocks,
  verifyRuns,
  type VerifiedBlocks,
} from './resume-state';
import type { ByteRange, KeptPartial, ObjectSink, SinkObject } from './sink';

export type ResumeMode = 'continue' | 'restart';

/**
 * How long a run of written-through symbols waits before it is recorded
 * (hashed): a block of 16 MiB at 200 Mbit/s arrives and decodes within
 * about a second, and its runs then need no record.
 */
export const RUN_RECORD_DELAY_MS = 2000;

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

/** What the sink found before the first write. */
interface Prepared {
  /** Verified blocks of an earlier run (empty: start afresh). */
  kept: number[];
  /** The block records of those past the verified prefix, to be written again. */
  records: Map<number, Buffer>;
  verified?: VerifiedBlocks;
  /** Verified runs of source symbols of the other blocks (written through by the earlier run). */
  runs: SymbolRun[];
}

/** Reads a whole file without following a link at its name; undefined if it does not exist. */
async function readNoFollow(p: string, most: number): Promise<Buffer | undefined> {
  let h: fs.FileHandle;
  try {
    h = await fs.open(p, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') return undefined;
    throw e;
  }
  try {
    const st = await h.stat();
    if (!st.isFile()) return undefined;
    const buf = Buffer.alloc(Math.min(st.size, most));
    const { bytesRead } = await h.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await h.close();
  }
}

async function unlinkIfThere(p: string): Promise<void> {
  await fs.unlink(p).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

export class ResumableFileSink implements ObjectSink {
  readonly resumed: Promise<number[]>;
  readonly paths: PartialPaths;
  private readonly spans: BlockSpan[];
  private readonly prepared: Promise<Prepared>;
  private opened?: Promise<{ writer: ObjectFileWriter; journal: ResumeJournal }>;
  /** The writer once open. */
  private writer?: ObjectFileWriter;
  /** Blocks in the part file and its journal: kept from before, and written (and recorded) since. */
  private readonly held = new Set<number>();
  private readonly writes = new Set<Promise<void>>();
  /** Runs of written-through source symbols in the part file and its journal. */
  private readonly runs: { offset: number; length: number }[] = [];
  private lockTaken = false;
  /** SHA-256 passes over object bytes (tests). */
  readonly stats: ResumableSinkStats = { blocksHashed: 0, runsHashed: 0, bytesHashed: 0, prefixRecords: 0, runsSkipped: 0 };
  /** Blocks 0 .. heldPrefix - 1 are all held. */
  private heldPrefix = 0;
  /** The journal records bytes [0, recordedPrefix) (a prefix record). */
  private recordedPrefix = 0;
  /** Blocks written inside the running digest's prefix, waiting for the blocks before them to be written: a prefix record will cover them. */
  private readonly waiting = new Map<number, Uint8Array>();
  /** Runs written through, not recorded yet (RUN_RECORD_DELAY_MS), oldest first. */
  private pendingRuns: { offset: number; length: number; sbn: number; at: number }[] = [];
  private runTimer?: NodeJS.Timeout;
  private readonly runDelay: number;
  /**
   * The block that completed the part file, written but not recorded: commit
   * follows at once and needs no record of it (nor its SHA-256, a pass over
   * the block at the end of the transfer); suspend records it.
   */
  private unrecorded?: { sbn: number; data: Uint8Array };
  /** No more records: published, given up or suspended. */
  private ended = false;
  private suspending = false;

  private readonly mode: ResumeMode;
  private readonly holdBytes?: () => number;
  private readonly warning: (message: string) => void;
  private readonly listDir: (dir: string) => Promise<string[]>;
  private locking?: Promise<void>;

  constructor(
    private readonly object: SinkObject,
    readonly path: string,
    options: ResumableSinkOptions,
  ) {
    this.mode = options.mode;
    this.holdBytes = options.holdBytes;
    this.warning = options.warning ?? (() => undefined);
    this.listDir = options.listDir ?? ((d) => fs.readdir(d).catch(() => []));
    this.runDelay = options.runRecordDelayMs ?? RUN_RECORD_DELAY_MS;
    this.paths = partialPaths(path);
    this.spans = blockSpans(object.oti);
    this.prepared = this.prepare();
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
      const at = Date.now();
      for (const r of symbols ?? [{ offset, length: data.length }]) this.pendingRuns.push({ offset: r.offset, length: r.length, sbn, at });
      this.scheduleRuns();
    }).then(
      () => landed,
      () => landed,
    );
  }

  /** The next look at the pending runs, when the oldest is due. */
  private scheduleRuns(): void {
    if (this.runTimer !== undefined || this.pendingRuns.length === 0 || this.ended || !Number.isFinite(this.runDelay)) return;
    const wait = Math.max(0, this.pendingRuns[0].at + this.runDelay - Date.now());
    this.runTimer = setTimeout(() => {
      this.runTimer = undefined;
      // suspend records every pending run itself.
      if (!this.suspending && !this.ended) void this.track(() => this.recordDueRuns());
    }, wait);
    this.runTimer.unref();
  }

  /**
   * Records the pending runs that have waited RUN_RECORD_DELAY_MS (all of
   * them with `all`) and whose block is still not written, each hashed as
   * the part file holds it; those of blocks written are dropped (the
   * block's record covers them).
   */
  async recordDueRuns(all = false): Promise<void> {
    const { writer, journal } = await this.open();
    if (this.ended && !all) return;
    const cutoff = all ? Infinity : Date.now() - this.runDelay;
    const due: { offset: number; length: number; sbn: number }[] = [];
    const later: typeof this.pendingRuns = [];
    for (const r of this.pendingRuns) {
      if (this.held.has(r.sbn)) this.stats.runsSkipped++;
      else if (r.at <= cutoff) due.push(r);
      else later.push(r);
    }
    this.pendingRuns = later;
    for (const r of due) {
      const bytes = await writer.readBack(r.offset, r.length);
      if (bytes === undefined) continue;
      if (this.held.has(r.sbn)) {
        this.stats.runsSkipped++;
        continue;
      }
      this.stats.runsHashed++;
      this.stats.bytesHashed += r.length;
      journal.recordRun(r.offset, r.length, createHash('sha256').update(bytes).digest());
      this.runs.push({ offset: r.offset, length: r.length });
    }
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
    this.stats.runsSkipped += this.pendingRuns.length;
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
    if (this.runTimer !== undefined) clearTimeout(this.runTimer);
    this.runTimer = undefined;
    this.pendingRuns = [];
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
      if (this.runTimer !== undefined) clearTimeout(this.runTimer);
      this.runTimer = undefined;
      // The records wait for the part file's fdatasync; then the file is closed, kept.
      await opened.journal.close();
      await opened.writer.suspend();
    }
    // Runs of blocks not kept whole; a run may have been recorded twice (a symbol received twice): counted once per offset.
    const symbolRuns = new Map<number, number>();
    for (const r of [...prepared.runs, ...this.runs]) {
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

  /** Lock, debris, the earlier run's record and blocks. */
  private async prepare(): Promise<Prepared> {
    const fresh: Prepared = { kept: [], records: new Map(), runs: [] };
    // The previous version of this object (replaced on the server) still lets go of these files.
    if (this.object.after) await this.object.after;
    // Nothing left by an earlier fetch: the lock (and the sweep of debris)
    // wait for the first write, so that a fetch of many objects does not
    // lock them all at once.
    const there = async (p: string): Promise<boolean> => (await fs.lstat(p).catch(() => undefined)) !== undefined;
    if (!(await there(this.paths.state)) && !(await there(this.paths.part))) return fresh;
    await this.lock();
    if (this.mode === 'restart') {
      await this.removePartial();
      return fresh;
    }
    const state = await readNoFollow(this.paths.state, MAX_STATE_BYTES);
    if (state === undefined) {
      // A part file without its record cannot be trusted block by block.
      await this.removePartial();
      return fresh;
    }
    const parsed = parseState(state, this.object);
    if (parsed.header !== 'match') {
      if (parsed.header === 'other') this.warning(`the server's "${this.object.name}" changed (digest or OTI) since the interrupted fetch: starting over`);
      await this.removePartial();
      return fresh;
    }
    let part: fs.FileHandle;
    try {
      part = await fs.open(this.paths.part, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch {
      await this.removePartial();
      return fresh;
    }
    let verified: VerifiedBlocks;
    let runs: SymbolRun[];
    try {
      const st = await part.stat();
      if (!st.isFile() || st.size !== this.object.oti.transferLength) {
        await part.close();
        await this.removePartial();
        return fresh;
      }
      verified = await verifyBlocks(part, this.spans, parsed.blocks, parsed.prefixes);
      runs = await verifyRuns(part, this.object.oti, this.spans, parsed.runs, new Set(verified.kept));
    } finally {
      await part.close().catch(() => undefined);
    }
    if (verified.torn.length > 0) {
      const n = verified.torn.length;
      this.warning(`${n} block${n === 1 ? '' : 's'} of "${this.object.name}" kept by the interrupted fetch did not match ${n === 1 ? 'its' : 'their'} checksum: fetching ${n === 1 ? 'it' : 'them'} again`);
    }
    if (verified.kept.length === 0 && runs.length === 0) {
      await this.removePartial();
      return fresh;
    }
    // Blocks in the verified prefix need no record of their own: the rewritten journal's prefix record covers them.
    const records = new Map<number, Buffer>();
    for (const sbn of verified.kept) {
      this.held.add(sbn);
      if (this.end(sbn) > verified.prefixBytes) records.set(sbn, parsed.blocks.get(sbn) as Buffer);
    }
    while (this.held.has(this.heldPrefix)) this.heldPrefix++;
    this.recordedPrefix = verified.prefixBytes;
    return { kept: verified.kept, records, verified, runs };
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

  private async removePartial(): Promise<void> {
    await unlinkIfThere(this.paths.part);
    await unlinkIfThere(this.paths.state);
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
          await this.removePartial();
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
