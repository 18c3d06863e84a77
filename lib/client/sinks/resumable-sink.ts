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
 * mode 'continue' resumes what it finds; 'restart' (fetch --no-resume)
 * discards it first. Either way the new run is itself resumable.
 */
import { createHash } from 'crypto';
import { constants as fsConstants, promises as fs } from 'fs';
import * as path from 'path';
import { UnfetchableObjectError } from '../errors';
import { ObjectFileWriter } from './file-writer';
import {
  BlockSpan,
  blockSpans,
  parseState,
  PartialPaths,
  partialPaths,
  releaseLock,
  removeLegacyTemps,
  ResumeJournal,
  takeLock,
  verifyBlocks,
  type VerifiedBlocks,
} from './resume-state';
import type { KeptPartial, ObjectSink, SinkObject } from './sink';

export type ResumeMode = 'continue' | 'restart';

/** What the sink found before the first write. */
interface Prepared {
  /** Verified blocks of an earlier run, with their records (empty: start afresh). */
  kept: Map<number, Buffer>;
  verified?: VerifiedBlocks;
}

/** Reads a whole file without following a link at its name; undefined if it does not exist. */
async function readNoFollow(p: string): Promise<Buffer | undefined> {
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
    if (!(await h.stat()).isFile()) return undefined;
    return await h.readFile();
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
  private lockTaken = false;
  private ended = false;

  constructor(
    private readonly object: SinkObject,
    readonly path: string,
    private readonly mode: ResumeMode,
    private readonly holdBytes?: () => number,
    private readonly warning: (message: string) => void = () => undefined,
  ) {
    this.paths = partialPaths(path);
    this.spans = blockSpans(object.oti);
    this.prepared = this.prepare();
    this.resumed = this.prepared.then((p) => [...p.kept.keys()]);
    // Failures surface through `resumed`, writeBlock and commit; keep the promises handled meanwhile.
    this.resumed.catch(() => undefined);
  }

  async writeBlock(sbn: number, offset: number, data: Uint8Array): Promise<void> {
    const p = (async () => {
      const { writer, journal } = await this.open();
      await writer.writeAt(offset, data);
      if (this.ended) return;
      journal.record(sbn, createHash('sha256').update(data).digest());
      this.held.add(sbn);
    })();
    this.writes.add(p);
    const forget = (): void => void this.writes.delete(p);
    p.then(forget, forget);
    return p;
  }

  prewrite(offset: number, data: Uint8Array): void {
    this.open().then(
      ({ writer }) => writer.prewrite(offset, data),
      () => undefined,
    );
  }

  async commit(): Promise<void> {
    const { writer, journal } = await this.open();
    await journal.idle();
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
    if (await this.prepared.then(() => true, () => false)) {
      await unlinkIfThere(this.paths.part).catch(() => undefined);
      await unlinkIfThere(this.paths.state).catch(() => undefined);
    }
    await this.unlock();
  }

  async suspend(): Promise<KeptPartial | undefined> {
    if (this.ended) return undefined;
    this.ended = true;
    await Promise.allSettled(this.writes);
    const prepared = await this.prepared.catch(() => undefined);
    if (prepared === undefined) return undefined;
    const opened = await this.opened?.catch(() => undefined);
    if (opened !== undefined) {
      // The records wait for the part file's fdatasync; then the file is closed, kept.
      await opened.journal.close();
      await opened.writer.suspend();
    }
    await this.unlock();
    if (this.held.size === 0) {
      // Nothing to resume from: leave no files behind.
      await unlinkIfThere(this.paths.part).catch(() => undefined);
      await unlinkIfThere(this.paths.state).catch(() => undefined);
      return undefined;
    }
    let bytesKept = 0;
    for (const sbn of this.held) bytesKept += this.spans[sbn].length;
    return {
      name: this.object.name,
      path: this.path,
      partPath: this.paths.part,
      statePath: this.paths.state,
      blocksKept: this.held.size,
      blocks: this.spans.length,
      bytesKept,
      bytes: this.object.oti.transferLength,
    };
  }

  // ---------------------------------------------------------------------

  /** Lock, debris, the earlier run's record and blocks. */
  private async prepare(): Promise<Prepared> {
    const dir = path.dirname(this.path);
    await fs.mkdir(dir, { recursive: true });
    const owner = await takeLock(this.paths.lock);
    if (owner !== undefined) {
      throw new UnfetchableObjectError(
        this.object.name,
        `another rqcast fetch (pid ${owner}) is writing ${this.path}; wait for it to end, or delete ${this.paths.lock} if that process is not an rqcast fetch`,
      );
    }
    this.lockTaken = true;
    const legacy = await removeLegacyTemps(this.path);
    if (legacy.length > 0) this.warning(`removed ${legacy.length} temporary file${legacy.length === 1 ? '' : 's'} an interrupted fetch left beside ${this.path}`);
    const fresh: Prepared = { kept: new Map() };
    if (this.mode === 'restart') {
      await this.removePartial();
      return fresh;
    }
    const state = await readNoFollow(this.paths.state);
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
    try {
      const st = await part.stat();
      if (!st.isFile() || st.size !== this.object.oti.transferLength) {
        await this.removePartial();
        return fresh;
      }
      verified = await verifyBlocks(part, this.spans, parsed.blocks);
    } finally {
      await part.close();
    }
    if (verified.torn.length > 0) {
      const n = verified.torn.length;
      this.warning(`${n} block${n === 1 ? '' : 's'} of "${this.object.name}" kept by the interrupted fetch did not match ${n === 1 ? 'its' : 'their'} checksum: fetching ${n === 1 ? 'it' : 'them'} again`);
    }
    if (verified.kept.length === 0) {
      await this.removePartial();
      return fresh;
    }
    const kept = new Map<number, Buffer>();
    for (const sbn of verified.kept) kept.set(sbn, parsed.blocks.get(sbn) as Buffer);
    for (const sbn of kept.keys()) this.held.add(sbn);
    return { kept, verified };
  }

  private async removePartial(): Promise<void> {
    await unlinkIfThere(this.paths.part);
    await unlinkIfThere(this.paths.state);
  }

  /** The part file and its journal: the earlier run's (its kept blocks only) or new ones. Created on first use. */
  private open(): Promise<{ writer: ObjectFileWriter; journal: ResumeJournal }> {
    if (this.opened === undefined) {
      this.opened = this.prepared.then(async (p) => {
        const F = this.object.oti.transferLength;
        let writer: ObjectFileWriter | undefined;
        if (p.kept.size > 0) {
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
        const journal = await ResumeJournal.write(this.paths.state, this.object, records, () => w.datasync());
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
