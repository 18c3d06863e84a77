/**
 * What a resumable fetch finds before its first write: the part file and
 * record (`.NAME.rqcast-part`, `.NAME.rqcast-state`) an interrupted fetch of
 * the same object left, read and checked block by block and run by run
 * (resume-state.ts: the format and the checks). Anything that cannot be
 * trusted (no record, another object's record, a part file of the wrong
 * size, nothing verified) is removed, and the fetch starts afresh.
 */
import { constants as fsConstants, promises as fs } from 'fs';
import {
  BlockSpan,
  MAX_STATE_BYTES,
  parseState,
  PartialPaths,
  type SymbolRun,
  verifyBlocks,
  verifyRuns,
  type VerifiedBlocks,
} from './resume-state';
import type { SinkObject } from './sink';

export type ResumeMode = 'continue' | 'restart';

/** What the sink found before the first write. */
export interface PreparedResume {
  /** Verified blocks of an earlier run (empty: start afresh). */
  kept: number[];
  /** The block records of those past the verified prefix, to be written again. */
  records: Map<number, Buffer>;
  verified?: VerifiedBlocks;
  /** Verified runs of source symbols of the other blocks (written through by the earlier run). */
  runs: SymbolRun[];
}

export interface PrepareContext {
  object: SinkObject;
  paths: PartialPaths;
  spans: readonly BlockSpan[];
  mode: ResumeMode;
  /** Takes the destination's lock (before anything is read or removed). */
  lock: () => Promise<void>;
  warning: (message: string) => void;
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

export async function unlinkIfThere(p: string): Promise<void> {
  await fs.unlink(p).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

/** Removes the part file and its record. */
export async function removePartial(paths: PartialPaths): Promise<void> {
  await unlinkIfThere(paths.part);
  await unlinkIfThere(paths.state);
}

/** Lock, debris, the earlier run's record and blocks. */
export async function prepareResume(c: PrepareContext): Promise<PreparedResume> {
  const fresh: PreparedResume = { kept: [], records: new Map(), runs: [] };
  // The previous version of this object (replaced on the server) still lets go of these files.
  if (c.object.after) await c.object.after;
  // Nothing left by an earlier fetch: the lock (and the sweep of debris)
  // wait for the first write, so that a fetch of many objects does not
  // lock them all at once.
  const there = async (p: string): Promise<boolean> => (await fs.lstat(p).catch(() => undefined)) !== undefined;
  if (!(await there(c.paths.state)) && !(await there(c.paths.part))) return fresh;
  await c.lock();
  const startOver = async (): Promise<PreparedResume> => {
    await removePartial(c.paths);
    return fresh;
  };
  if (c.mode === 'restart') return startOver();
  const state = await readNoFollow(c.paths.state, MAX_STATE_BYTES);
  // A part file without its record cannot be trusted block by block.
  if (state === undefined) return startOver();
  const parsed = parseState(state, c.object);
  if (parsed.header !== 'match') {
    if (parsed.header === 'other') c.warning(`the server's "${c.object.name}" changed (digest or OTI) since the interrupted fetch: starting over`);
    return startOver();
  }
  let part: fs.FileHandle;
  try {
    part = await fs.open(c.paths.part, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch {
    return startOver();
  }
  let verified: VerifiedBlocks;
  let runs: SymbolRun[];
  try {
    const st = await part.stat();
    if (!st.isFile() || st.size !== c.object.oti.transferLength) {
      await part.close();
      return startOver();
    }
    verified = await verifyBlocks(part, c.spans, parsed.blocks, parsed.prefixes);
    runs = await verifyRuns(part, c.object.oti, c.spans, parsed.runs, new Set(verified.kept));
  } finally {
    await part.close().catch(() => undefined);
  }
  if (verified.torn.length > 0) {
    const n = verified.torn.length;
    c.warning(`${n} block${n === 1 ? '' : 's'} of "${c.object.name}" kept by the interrupted fetch did not match ${n === 1 ? 'its' : 'their'} checksum: fetching ${n === 1 ? 'it' : 'them'} again`);
  }
  if (verified.kept.length === 0 && runs.length === 0) return startOver();
  // Blocks in the verified prefix need no record of their own: the rewritten journal's prefix record covers them.
  const records = new Map<number, Buffer>();
  for (const sbn of verified.kept) {
    const span = c.spans[sbn];
    if (span.offset + span.length > verified.prefixBytes) records.set(sbn, parsed.blocks.get(sbn) as Buffer);
  }
  return { kept: verified.kept, records, verified, runs };
}
