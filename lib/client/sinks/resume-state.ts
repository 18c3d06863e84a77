/**
 * Resume state: what an interrupted fetch leaves beside its destination so
 * that the next fetch of the same object starts from what it already has.
 * Three files, in the destination's directory:
 *
 *   .NAME.rqcast-part    the object being written, full size (F bytes),
 *                        each decoded source block at its offset, and the
 *                        source symbols of other blocks written through
 *   .NAME.rqcast-state   a journal: one header naming the object, then
 *                        records of what is known to be in the part file,
 *                        each with the SHA-256 of its bytes: the object's
 *                        first blocks (a prefix), a source block, or a run
 *                        of source symbols
 *   .NAME.rqcast-lock    the pid of the fetch writing NAME (while it runs)
 *
 * Every record is written only after its bytes are durable (fdatasync of
 * the part file, then the append), and every header and
 * record carries its own check, so whatever instant a fetch is killed at
 * (kill -9, power loss), the journal read back is a prefix of what was
 * appended: a torn last record fails its check and ends the journal there.
 * The next fetch still reads every recorded block and run back and keeps it
 * only if its SHA-256 matches (bytes torn or changed in the part file are
 * fetched again), and the finished object is checked against the FDT's
 * digest as always.
 *
 * Journal format (version 1; integers big-endian):
 *
 *   header, 64 bytes:
 *     0  8  "RQRESUM1"
 *     8 32  rq:Content-SHA-256 of the object
 *    40  8  F, transfer length
 *    48  2  T      50  2  Z      52  2  N      54  1  Al     55  1  zero
 *    56  8  first 8 bytes of SHA-256(bytes 0..55)
 *   then records, in any order, each checked on its own:
 *   block record, 48 bytes: a whole decoded source block
 *     0  4  "BLK1"
 *     4  4  SBN
 *     8 32  SHA-256 of the block's bytes in the object (RFC 6330 §4.4.1.2 partition)
 *    40  8  first 8 bytes of SHA-256(bytes 0..39)
 *   prefix record, 52 bytes: the object's first bytes, each block in
 *   them decoded and written (the running digest of the file, so no block
 *   of them is hashed on its own)
 *     0  4  "PFX1"
 *     4  8  N, a block's end: the record covers bytes [0, N) of the object
 *    12 32  SHA-256 of those bytes
 *    44  8  first 8 bytes of SHA-256(bytes 0..43)
 *   run record, 56 bytes: source symbols of a block not decoded yet,
 *   written through as they arrived (write-through.ts)
 *     0  4  "RUN1"
 *     4  8  offset in the object (a symbol boundary of its block)
 *    12  4  length (whole symbols, or up to the object's end)
 *    16 32  SHA-256 of those bytes
 *    48  8  first 8 bytes of SHA-256(bytes 0..47)
 *
 * A journal whose header names another digest or OTI belongs to another
 * version of the object: it and its part file are discarded.
 */
import type { Hash } from 'crypto';
import { createHash } from '../../support/crypto-when-used';
import { constants as fsConstants, promises as fs } from 'fs';
import * as path from 'path';
import type { Oti as WireOti } from '../../protocol/oti';

export const PART_SUFFIX = '.rqcast-part';
export const STATE_SUFFIX = '.rqcast-state';
export const LOCK_SUFFIX = '.rqcast-lock';
/** What earlier versions named their temporary files (random suffix): debris of a killed fetch. */
export const LEGACY_TEMP_INFIX = '.rqcast-tmp-';

const HEADER_MAGIC = Buffer.from('RQRESUM1', 'latin1');
const RECORD_TAG = Buffer.from('BLK1', 'latin1');
const RUN_TAG = Buffer.from('RUN1', 'latin1');
const PREFIX_TAG = Buffer.from('PFX1', 'latin1');
export const HEADER_SIZE = 64;
export const RECORD_SIZE = 48;
export const RUN_RECORD_SIZE = 56;
export const PREFIX_RECORD_SIZE = 52;
/** The longest run record accepted: far above what write-through gathers (160 KiB). */
const MAX_RUN_BYTES = 16 << 20;
/** Journals are read up to this size; what lies beyond is ignored (a journal of records, not of data). */
export const MAX_STATE_BYTES = 64 << 20;
const CHECK_SIZE = 8;
const READ_CHUNK = 1 << 20;

/** The files of a resumable fetch of the object published at `finalPath`. */
export interface PartialPaths {
  part: string;
  state: string;
  lock: string;
}

export function partialPaths(finalPath: string): PartialPaths {
  const dir = path.dirname(finalPath);
  const base = path.basename(finalPath);
  return {
    part: path.join(dir, `.${base}${PART_SUFFIX}`),
    state: path.join(dir, `.${base}${STATE_SUFFIX}`),
    lock: path.join(dir, `.${base}${LOCK_SUFFIX}`),
  };
}

/** What a journal must name to be this object's. */
export interface ResumeIdentity {
  oti: WireOti;
  sha256: Uint8Array;
}

/** Byte range of one source block in the object. */
export interface BlockSpan {
  offset: number;
  length: number;
}

/**
 * The source blocks of an object and where each lies in it: RFC 6330
 * §4.4.1.2, Kt = ceil(F/T) source symbols partitioned into Z blocks by
 * Partition[Kt, Z] (the first ZL blocks hold KL = ceil(Kt/Z) symbols, the
 * rest KS = floor(Kt/Z)); the last block may end before its last symbol.
 */
export function blockSpans(oti: WireOti): BlockSpan[] {
  const F = oti.transferLength;
  const T = oti.symbolSize;
  const Z = oti.sourceBlocks;
  const Kt = Math.ceil(F / T);
  const KL = Math.ceil(Kt / Z);
  const KS = Math.floor(Kt / Z);
  const ZL = Kt - KS * Z;
  const spans: BlockSpan[] = [];
  let symbols = 0;
  for (let sbn = 0; sbn < Z; sbn++) {
    const K = sbn < ZL ? KL : KS;
    const offset = symbols * T;
    spans.push({ offset, length: Math.max(0, Math.min(K * T, F - offset)) });
    symbols += K;
  }
  return spans;
}

function check(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest().subarray(0, CHECK_SIZE);
}

export function encodeStateHeader(id: ResumeIdentity): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  HEADER_MAGIC.copy(b, 0);
  Buffer.from(id.sha256).copy(b, 8, 0, 32);
  b.writeBigUInt64BE(BigInt(id.oti.transferLength), 40);
  b.writeUInt16BE(id.oti.symbolSize, 48);
  // Z is 1..256 (8-bit SBN); 256 fits 16 bits.
  b.writeUInt16BE(id.oti.sourceBlocks, 50);
  b.writeUInt16BE(id.oti.subBlocks, 52);
  b.writeUInt8(id.oti.alignment, 54);
  check(b.subarray(0, 56)).copy(b, 56);
  return b;
}

export function encodeBlockRecord(sbn: number, blockSha256: Uint8Array): Buffer {
  const b = Buffer.alloc(RECORD_SIZE);
  RECORD_TAG.copy(b, 0);
  b.writeUInt32BE(sbn, 4);
  Buffer.from(blockSha256).copy(b, 8, 0, 32);
  check(b.subarray(0, 40)).copy(b, 40);
  return b;
}

export function encodeRunRecord(offset: number, length: number, digest: Uint8Array): Buffer {
  const b = Buffer.alloc(RUN_RECORD_SIZE);
  RUN_TAG.copy(b, 0);
  b.writeBigUInt64BE(BigInt(offset), 4);
  b.writeUInt32BE(length, 12);
  Buffer.from(digest).copy(b, 16, 0, 32);
  check(b.subarray(0, 48)).copy(b, 48);
  return b;
}

export function encodePrefixRecord(length: number, digest: Uint8Array): Buffer {
  const b = Buffer.alloc(PREFIX_RECORD_SIZE);
  PREFIX_TAG.copy(b, 0);
  b.writeBigUInt64BE(BigInt(length), 4);
  Buffer.from(digest).copy(b, 12, 0, 32);
  check(b.subarray(0, 44)).copy(b, 44);
  return b;
}

/** Bytes of the object written through before their block decoded, and their SHA-256 (a run record). */
export interface SymbolRun {
  offset: number;
  length: number;
  digest: Buffer;
}

export interface ParsedState {
  /** 'match': this object's journal; 'other': another object or version; 'invalid': not a journal (or a torn header). */
  header: 'match' | 'other' | 'invalid';
  /** SBN -> SHA-256 of the block, the last record of each block (only for 'match'). */
  blocks: Map<number, Buffer>;
  /** Run records (only for 'match'), in journal order. */
  runs: SymbolRun[];
  /** Prefix records (only for 'match'): N -> SHA-256 of the object's bytes [0, N). */
  prefixes: Map<number, Buffer>;
  /** Bytes of the journal that are whole, checked records: appends go after them. */
  validBytes: number;
  /** Bytes after validBytes that were ignored (a torn or corrupt tail). */
  ignoredBytes: number;
}

/** Reads a journal: the header, then records up to the first that fails its check (the rest is ignored). */
export function parseState(buf: Uint8Array, id: ResumeIdentity): ParsedState {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const blocks = new Map<number, Buffer>();
  const runs: SymbolRun[] = [];
  const prefixes = new Map<number, Buffer>();
  if (b.length < HEADER_SIZE || !b.subarray(0, 8).equals(HEADER_MAGIC) || !check(b.subarray(0, 56)).equals(b.subarray(56, 64))) {
    return { header: 'invalid', blocks, runs, prefixes, validBytes: 0, ignoredBytes: b.length };
  }
  if (!b.subarray(0, HEADER_SIZE).equals(encodeStateHeader(id))) return { header: 'other', blocks, runs, prefixes, validBytes: HEADER_SIZE, ignoredBytes: b.length - HEADER_SIZE };
  const F = id.oti.transferLength;
  let at = HEADER_SIZE;
  for (;;) {
    const tag = b.subarray(at, at + 4);
    if (tag.equals(RECORD_TAG) && at + RECORD_SIZE <= b.length) {
      const r = b.subarray(at, at + RECORD_SIZE);
      if (!check(r.subarray(0, 40)).equals(r.subarray(40, 48))) break;
      const sbn = r.readUInt32BE(4);
      if (sbn >= id.oti.sourceBlocks) break;
      blocks.set(sbn, Buffer.from(r.subarray(8, 40)));
      at += RECORD_SIZE;
    } else if (tag.equals(RUN_TAG) && at + RUN_RECORD_SIZE <= b.length) {
      const r = b.subarray(at, at + RUN_RECORD_SIZE);
      if (!check(r.subarray(0, 48)).equals(r.subarray(48, 56))) break;
      const offset = r.readBigUInt64BE(4);
      const length = r.readUInt32BE(12);
      if (length === 0 || length > MAX_RUN_BYTES || offset + BigInt(length) > BigInt(F)) break;
      runs.push({ offset: Number(offset), length, digest: Buffer.from(r.subarray(16, 48)) });
      at += RUN_RECORD_SIZE;
    } else if (tag.equals(PREFIX_TAG) && at + PREFIX_RECORD_SIZE <= b.length) {
      const r = b.subarray(at, at + PREFIX_RECORD_SIZE);
      if (!check(r.subarray(0, 44)).equals(r.subarray(44, 52))) break;
      const length = r.readBigUInt64BE(4);
      if (length === 0n || length > BigInt(F)) break;
      prefixes.set(Number(length), Buffer.from(r.subarray(12, 44)));
      at += PREFIX_RECORD_SIZE;
    } else {
      break;
    }
  }
  return { header: 'match', blocks, runs, prefixes, validBytes: at, ignoredBytes: b.length - at };
}

/** Blocks of a part file that match their journal records. */
export interface VerifiedBlocks {
  /** SBNs whose bytes in the part file hash to their record (a block record, or a prefix record that covers them), ascending. */
  kept: number[];
  /** SBNs recorded whose bytes do not (torn or changed): fetched again. */
  torn: number[];
  /**
   * SHA-256 state over the object's bytes [0, prefixBytes): the kept blocks
   * that start at offset 0 and follow each other, so that the final digest
   * need not read them again.
   */
  prefix: Hash;
  prefixBytes: number;
}

/** The end of some block (a prefix record may only end there). */
function isBlockEnd(spans: readonly BlockSpan[], end: number): boolean {
  const sbn = blockOf(spans, end - 1);
  return sbn !== undefined && spans[sbn].offset + spans[sbn].length === end;
}

/**
 * Reads back from `part` what the journal records and keeps what still
 * hashes to it: the object's first bytes up to the longest prefix record
 * that matches (read once, checked at each recorded end), whose blocks are
 * kept, then each block with a block record of its own.
 */
export async function verifyBlocks(
  part: fs.FileHandle,
  spans: readonly BlockSpan[],
  recorded: ReadonlyMap<number, Buffer>,
  prefixes: ReadonlyMap<number, Buffer> = new Map(),
): Promise<VerifiedBlocks> {
  const kept: number[] = [];
  const torn: number[] = [];
  let prefix = createHash('sha256');
  let prefixBytes = 0;
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  const ends = [...prefixes.keys()].filter((end) => isBlockEnd(spans, end)).sort((a, b) => a - b);
  if (ends.length > 0) {
    const h = createHash('sha256');
    let at = 0;
    reading: for (const end of ends) {
      while (at < end) {
        const { bytesRead } = await part.read(buf, 0, Math.min(buf.length, end - at), at);
        if (bytesRead === 0) break reading;
        h.update(buf.subarray(0, bytesRead));
        at += bytesRead;
      }
      if (h.copy().digest().equals(prefixes.get(end) as Buffer)) {
        prefix = h.copy();
        prefixBytes = end;
      }
    }
    const recordedEnd = ends[ends.length - 1];
    for (let sbn = 0; sbn < spans.length; sbn++) {
      const end = spans[sbn].offset + spans[sbn].length;
      if (end <= prefixBytes) kept.push(sbn);
      else if (end <= recordedEnd && !recorded.has(sbn)) torn.push(sbn);
    }
  }
  for (const sbn of [...recorded.keys()].sort((a, b) => a - b)) {
    const span = spans[sbn];
    if (span.offset + span.length <= prefixBytes) continue;
    const h = createHash('sha256');
    // A block that continues the prefix feeds the prefix digest as it is
    // read; if it turns out torn, the digest goes back to before it (and
    // no later block can continue the prefix: they start after this one).
    const before = span.offset === prefixBytes ? prefix.copy() : undefined;
    let done = 0;
    while (done < span.length) {
      const { bytesRead } = await part.read(buf, 0, Math.min(buf.length, span.length - done), span.offset + done);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      h.update(chunk);
      if (before !== undefined) prefix.update(chunk);
      done += bytesRead;
    }
    if (done === span.length && h.digest().equals(recorded.get(sbn) as Buffer)) {
      kept.push(sbn);
      if (before !== undefined) prefixBytes += span.length;
    } else {
      torn.push(sbn);
      if (before !== undefined) prefix = before;
    }
  }
  kept.sort((a, b) => a - b);
  torn.sort((a, b) => a - b);
  return { kept, torn, prefix, prefixBytes };
}

/**
 * The runs whose bytes in `part` still hash to their record, leaving out
 * those inside `keptBlocks` (their whole block is kept) and those that do
 * not start on a symbol boundary of one block and stay in it.
 */
export async function verifyRuns(part: fs.FileHandle, oti: WireOti, spans: readonly BlockSpan[], runs: readonly SymbolRun[], keptBlocks: ReadonlySet<number>): Promise<SymbolRun[]> {
  const valid: SymbolRun[] = [];
  for (const run of runs) {
    const sbn = blockOf(spans, run.offset);
    if (sbn === undefined || keptBlocks.has(sbn)) continue;
    const span = spans[sbn];
    if ((run.offset - span.offset) % oti.symbolSize !== 0 || run.offset + run.length > span.offset + span.length) continue;
    const bytes = await readRun(part, run);
    if (bytes !== undefined && createHash('sha256').update(bytes).digest().equals(run.digest)) valid.push(run);
  }
  return valid;
}

/** The bytes of `run` in `part`, or undefined if the file is short. */
export async function readRun(part: fs.FileHandle, run: { offset: number; length: number }): Promise<Buffer | undefined> {
  const bytes = Buffer.allocUnsafe(run.length);
  let done = 0;
  while (done < run.length) {
    const { bytesRead } = await part.read(bytes, done, run.length - done, run.offset + done);
    if (bytesRead === 0) return undefined;
    done += bytesRead;
  }
  return bytes;
}

/** The block holding byte `offset` of the object. */
export function blockOf(spans: readonly BlockSpan[], offset: number): number | undefined {
  let lo = 0;
  let hi = spans.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const s = spans[mid];
    if (offset < s.offset) hi = mid - 1;
    else if (offset >= s.offset + s.length) lo = mid + 1;
    else return mid;
  }
  return undefined;
}

/** A process with this pid exists on this host (EPERM: it exists, owned by another user). */
function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The locks this process holds (by absolute path): two fetches in one process are refused like two processes. */
const heldHere = new Set<string>();

/**
 * Takes `lockPath` for this process: created exclusively, holding our pid.
 * A lock whose pid is not running (a killed fetch) is taken over. Returns
 * the pid of a live owner instead when another fetch holds it.
 */
export async function takeLock(lockPath: string): Promise<number | undefined> {
  const key = path.resolve(lockPath);
  if (heldHere.has(key)) return process.pid;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const h = await fs.open(lockPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o644);
      heldHere.add(key);
      try {
        await h.writeFile(`${process.pid}\n`);
      } finally {
        await h.close();
      }
      return undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let text = '';
    try {
      text = await fs.readFile(lockPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const pid = Number(text.trim());
    // A lock being written (empty) by a live process looks stale only for
    // an instant. One with our own pid that this process does not hold
    // (heldHere) is a leftover of a process that had our pid (a container
    // whose fetch is always pid 1).
    if (heldHere.has(key)) return process.pid;
    if (pid !== process.pid && alive(pid)) return pid;
    await fs.unlink(lockPath).catch(() => undefined);
  }
  throw new Error(`cannot take ${lockPath}: it keeps reappearing`);
}

/** Removes our lock (only if it is still ours). */
export async function releaseLock(lockPath: string): Promise<void> {
  if (!heldHere.delete(path.resolve(lockPath))) return;
  try {
    if (Number((await fs.readFile(lockPath, 'utf8')).trim()) === process.pid) await fs.unlink(lockPath);
  } catch {
    /* gone already */
  }
}

/**
 * Temporary files that earlier runs left for the same destination and no
 * running fetch can be using: the random-suffixed `.NAME.rqcast-tmp-…` of
 * versions before resume (every writer of NAME holds NAME's lock, which we
 * hold now). `names`: the directory's listing, if already read. Returns
 * the names removed.
 */
export async function removeLegacyTemps(finalPath: string, names?: readonly string[]): Promise<string[]> {
  const dir = path.dirname(finalPath);
  const prefix = `.${path.basename(finalPath)}${LEGACY_TEMP_INFIX}`;
  if (names === undefined) {
    try {
      names = await fs.readdir(dir);
    } catch {
      return [];
    }
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!n.startsWith(prefix) || !/^[0-9a-f]{8}$/.test(n.slice(prefix.length))) continue;
    const p = path.join(dir, n);
    try {
      if (!(await fs.lstat(p)).isFile()) continue;
      await fs.unlink(p);
      removed.push(n);
    } catch {
      /* raced or not ours to remove */
    }
  }
  return removed;
}

/**
 * The journal of a fetch being written: block records appended in groups.
 * Each group waits for the part file's fdatasync (its blocks are durable)
 * before its records are written, so a record never names bytes that a
 * power loss could take back. A failure to journal only loses records
 * (those blocks are fetched again by a later run), never the fetch.
 */
export class ResumeJournal {
  private queued: Buffer[] = [];
  private flushing?: Promise<void>;
  private broken = false;

  private constructor(
    private readonly handle: fs.FileHandle,
    /** Where the next record goes. */
    private size: number,
    /** Makes the part file's written bytes durable. */
    private readonly syncPart: () => Promise<void>,
  ) {}

  /**
   * A journal for `id` at `statePath` holding `records` (SBN and block
   * SHA-256): written whole to a new file and renamed over the old one, so
   * the state is the old one or the new one, never a mix.
   */
  static async write(
    statePath: string,
    id: ResumeIdentity,
    records: Iterable<[number, Uint8Array]>,
    syncPart: () => Promise<void>,
    runs: Iterable<SymbolRun> = [],
    prefix?: { bytes: number; digest: Uint8Array },
  ): Promise<ResumeJournal> {
    const parts = [encodeStateHeader(id)];
    if (prefix !== undefined && prefix.bytes > 0) parts.push(encodePrefixRecord(prefix.bytes, prefix.digest));
    for (const [sbn, digest] of records) parts.push(encodeBlockRecord(sbn, digest));
    for (const r of runs) parts.push(encodeRunRecord(r.offset, r.length, r.digest));
    const bytes = Buffer.concat(parts);
    const fresh = `${statePath}.new`;
    await fs.unlink(fresh).catch(() => undefined);
    const h = await fs.open(fresh, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o644);
    try {
      await h.write(bytes, 0, bytes.length, 0);
      await h.datasync();
      await fs.rename(fresh, statePath);
    } catch (e) {
      await h.close().catch(() => undefined);
      await fs.unlink(fresh).catch(() => undefined);
      throw e;
    }
    return new ResumeJournal(h, bytes.length, syncPart);
  }

  /** Block `sbn`, whose bytes have been written to the part file, hashes to `digest`: recorded with the next group. */
  record(sbn: number, digest: Uint8Array): void {
    if (this.broken) return;
    this.queued.push(encodeBlockRecord(sbn, digest));
    this.kick();
  }

  /** Bytes [0, length) of the object, every block in them written to the part file, hash to `digest`: recorded with the next group. */
  recordPrefix(length: number, digest: Uint8Array): void {
    if (this.broken) return;
    this.queued.push(encodePrefixRecord(length, digest));
    this.kick();
  }

  /** Starts a group write unless one is running (it takes what queued meanwhile). */
  private kick(): void {
    if (this.flushing !== undefined || this.queued.length === 0 || this.broken) return;
    this.flushing = this.flush().then(() => {
      this.flushing = undefined;
      this.kick();
    });
  }

  /** Bytes [offset, offset + length) of the object, written through, hash to `digest`: recorded with the next group. */
  recordRun(offset: number, length: number, digest: Uint8Array): void {
    if (this.broken) return;
    this.queued.push(encodeRunRecord(offset, length, digest));
    this.kick();
  }

  /**
   * No more records (the object is being published): those queued are
   * dropped, a group being written finishes (close waits for it).
   */
  stop(): void {
    this.broken = true;
    this.queued = [];
  }

  /** Resolves once every record made so far is written (or lost to an error). */
  async idle(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
  }

  async close(): Promise<void> {
    await this.idle();
    this.broken = true;
    await this.handle.close().catch(() => undefined);
  }

  private async flush(): Promise<void> {
    try {
      while (this.queued.length > 0 && !this.broken) {
        const group = Buffer.concat(this.queued);
        this.queued = [];
        await this.syncPart();
        await this.handle.write(group, 0, group.length, this.size);
        this.size += group.length;
      }
    } catch {
      this.broken = true;
      this.queued = [];
    }
  }
}
