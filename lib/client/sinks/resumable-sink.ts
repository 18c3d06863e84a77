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
 * Source symbols written through before their block decoded
 * (write-through.ts) are recorded too, as runs with their SHA-256: the next
 * fetch hands the verified ones to the receiver as received symbols
 * (resumeSymbols), so that a fetch stopped while every block was in
 * progress (a round-robin stream) still keeps what it received.
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
}

/** What the sink found before the first write. */
interface Prepared {
  /** Verified blocks of an earlier run, with their records (empty: start afresh). */
  kept: Map<number, Buffer>;
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
  /** Blocks in the part file and its journal: kept from before, and written (and recorded) since. */
  private readonly held = new Set<number>();
  private readonly writes = new Set<Promise<void>>();
  /** Runs of written-through source symbols in the part file and its journal. */
  private readonly runs: { offset: number; length: number }[] = [];
  private lockTaken = false;
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
    this.paths = partialPaths(path);
    this.spans = blockSpans(object.oti);
    this.prepared = this.prepare();
    this.resumed = this.prepared.then((p) => [...p.kept.keys()]);
    // Failures surface through `resumed`, writeBlock and commit; keep the promises handled meanwhile.
    this.resumed.catch(() => undefined);
  }

  async writeBlock(sbn: number, offset: number, data: Uint8Array, inPlace?: readonly ByteRange[]): Promise<void> {
    return this.track(async () => {
      const { writer, journal } = await this.open();
      await writer.writeAt(offset, data, inPlace);
      if (this.ended) return;
      this.held.add(sbn);
      if (this.held.size === this.spans.length) {
        this.unrecorded = { sbn, data };
        return;
      }
      journal.record(sbn, createHash('sha256').update(data).digest());
    });
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
      const { writer, journal } = await this.open();
      landed = await writer.prewrite(offset, data);
      if (!landed || this.ended) return;
      for (const r of symbols ?? [{ offset, length: data.length }]) {
        const bytes = data.subarray(r.offset - offset, r.offset - offset + r.length);
        journal.recordRun(r.offset, r.length, createHash('sha256').update(bytes).digest());
        this.runs.push({ offset: r.offset, length: r.length });
      }
    }).then(
      () => landed,
      () => landed,
    );
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

  async abort(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
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
      if (last !== undefined) opened.journal.record(last.sbn, createHash('sha256').update(last.data).digest());
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
    const fresh: Prepared = { kept: new Map(), runs: [] };
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
      verified = await verifyBlocks(part, this.spans, parsed.blocks);
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
    const kept = new Map<number, Buffer>();
    for (const sbn of verified.kept) kept.set(sbn, parsed.blocks.get(sbn) as Buffer);
    for (const sbn of kept.keys()) this.held.add(sbn);
    return { kept, verified, runs };
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
        if (p.kept.size > 0 || p.runs.length > 0) {
          const v = p.verified as VerifiedBlocks;
          writer = await ObjectFileWriter.reopen(this.path, this.paths.part, F, { hash: v.prefix, bytes: v.prefixBytes });
          // The receiver already counts the kept blocks as decoded: a part file gone meanwhile cannot be papered over.
          if (writer === undefined) throw new UnfetchableObjectError(this.object.name, `${this.paths.part} changed while the fetch was resuming it; run the fetch again`);
          for (const sbn of p.kept.keys()) writer.alreadyWritten(this.spans[sbn].offset, this.spans[sbn].length);
        } else {
          await this.removePartial();
          writer = await ObjectFileWriter.create(this.path, F, this.paths.part);
        }
        const records: Iterable<[number, Uint8Array]> = p.kept;
        if (this.holdBytes) writer.holdBytes = Math.min(writer.holdBytes, this.holdBytes());
        const w = writer;
        // The record of the kept blocks only (torn ones dropped), replacing the old one at once.
        const journal = await ResumeJournal.write(this.paths.state, this.object, records, () => w.datasync(), p.runs);
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
