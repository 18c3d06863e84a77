/**
 * ObjectFileWriter: writes an object's decoded source blocks, in whatever
 * order they decode, at their offsets in a temporary file next to the final
 * one, then verifies and publishes it atomically:
 *
 *   .NAME.rqcast-tmp-XXXXXXXX   (same directory, so rename(2) is atomic)
 *     <- writeAt(blockOffset, blockBytes)   ... once per source block
 *   commit(sha256): fsync started, SHA-256 of the contents (what is left
 *     of it) computed meanwhile, compared with the FDT's
 *     rq:Content-SHA-256; equal -> fsync done, rename to NAME, fsync the
 *     directory; different -> unlink, DigestMismatchError.
 *
 * The digest runs ahead: a block that extends the hashed prefix is hashed
 * from memory as it is written, and a block that decodes early is kept
 * (within a budget) until the prefix reaches it. Against a round-robin
 * stream every block fills up, and decodes, at about the same time at the
 * end of a transfer, in no particular order; so the hashing overlaps the
 * block writes (which take longer: page-cache copies of the whole object),
 * and commit only reads back what the prefix had not reached. The block
 * that completes the object is kept too, with the blocks kept after it,
 * for commit, which hashes them while the fsync runs (the last block of an
 * in-order stream: its hash beside the fsync instead of before it; a
 * receiver that joined late gets its first blocks last, and holds most of
 * the object then). Anything unusual (a
 * region written twice, or overlapping writes) falls back to reading the
 * whole file back.
 *
 * So a file under the final name is always complete and verified; memory is
 * the blocks being written plus the early ones kept for the digest (at most
 * the budget), never the whole of a large object.
 */
import type { Hash } from 'crypto';
import { createHash, nodeCrypto } from '../../support/crypto-when-used';
import { constants as fsConstants, promises as fs } from 'fs';
import * as path from 'path';
import { loadNative, type RawFileWritesBinding } from '../../native';
import { DigestMismatchError, UnfetchableObjectError } from '../errors';
import type { ByteRange } from './sink';

const HASH_CHUNK = 1 << 20;
/**
 * Default bytes of early blocks kept for the running digest: enough for a
 * 256 MiB object whose blocks all decode at the end in any order to be
 * hashed from memory while its writes are in flight (the decoders have
 * released those bytes by then). Larger objects read back the rest.
 */
const DEFAULT_HOLD_BYTES = 256 << 20;

/**
 * The relative path an object name may be written to: '/'-separated,
 * without empty or '.' segments. Names that would leave the destination
 * directory ('..', absolute paths once stripped of leading '/', drive
 * letters), or hold control characters, are refused: the FDT is remote
 * input. So are the names of a fetch's own temporary files.
 */
export function safeObjectPath(name: string): string {
  if (typeof name !== 'string' || name === '') throw new UnfetchableObjectError(String(name), 'empty name');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) throw new UnfetchableObjectError(name, 'control characters in the name');
  const segments = name.split(/[/\\]/).filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) throw new UnfetchableObjectError(name, 'the name has no file part');
  for (const s of segments) {
    if (s === '..') throw new UnfetchableObjectError(name, '".." in the name');
    if (/^[A-Za-z]:$/.test(s)) throw new UnfetchableObjectError(name, 'drive letter in the name');
  }
  // Another object's part file, journal or lock (resume-state.ts): publishing
  // over one would swap bytes under a fetch that has verified its own.
  if (/^\..+\.rqcast-(part|state|state\.new|lock|tmp-[0-9a-f]{8})$/.test(segments[segments.length - 1])) {
    throw new UnfetchableObjectError(name, 'the name is one rqcast uses for the temporary files of a fetch');
  }
  return segments.join('/');
}

/**
 * mkdir -p that reports the real cause. Node's recursive mkdir says ENOENT
 * when a missing parent cannot be made (on a read-only mount, EROFS; without
 * permission, EACCES): each missing level is then made in turn, so the
 * first that fails says why.
 */
export async function makeDirectory(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const missing: string[] = [];
  for (let at = path.resolve(dir); ; ) {
    const exists = await fs.stat(at).then(
      () => true,
      () => false,
    );
    if (exists) break;
    missing.push(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing.reverse()) {
    await fs.mkdir(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}

/**
 * The parts of [0, length) of a block at `offset` not covered by `inPlace`
 * (object offsets, ascending), as [from, to) within the block.
 */
function gaps(offset: number, length: number, inPlace: readonly ByteRange[]): [number, number][] {
  const out: [number, number][] = [];
  let at = 0;
  for (const r of inPlace) {
    const from = Math.max(at, r.offset - offset);
    const to = Math.min(length, r.offset + r.length - offset);
    if (to <= from) continue;
    if (from > at) out.push([at, from]);
    at = to;
  }
  if (at < length) out.push([at, length]);
  return out;
}

export class ObjectFileWriter {
  /** Bytes written so far (each block once). */
  bytesWritten = 0;
  /** Bytes handed to the file (block writes and prewrites): the object's length when each byte is written once. */
  bytesToFile = 0;
  /**
   * Thread-pool jobs of the block writes (writeAt): one per block, however
   * many ranges the write-through left to it (native pwriteRanges).
   */
  blockWriteJobs = 0;
  /** pwrite calls those jobs made: one per range (more only after a short write). */
  blockWriteCalls = 0;
  /** The native batched write; tests may replace it. */
  pwriteRanges: RawFileWritesBinding['pwriteRanges'] = (fd, data, position, ranges) => loadNative().pwriteRanges(fd, data, position, ranges);
  private handle: fs.FileHandle | undefined;
  private finished = false;
  private pending = new Set<Promise<void>>();
  /** The running digest of bytes [0, hashedUpTo); undefined once it cannot be trusted (overlap). */
  private hash: Hash | undefined = createHash('sha256');
  private hashedUpTo = 0;
  /**
   * Every block written past the prefix, by offset: its length, and its
   * bytes while they fit the budget (`data` undefined: read back at commit).
   * Writes never overlap while the running digest is trusted.
   */
  private readonly ahead = new Map<number, { length: number; data?: Uint8Array }>();
  /** The keys of `ahead`, ascending. */
  private aheadStarts: number[] = [];
  private heldBytes = 0;
  /** Most bytes `held` keeps; a block that does not fit is read back at commit. */
  holdBytes = DEFAULT_HOLD_BYTES;
  /** Bytes handed over so far (writeAt, alreadyWritten): once every byte has been, nothing more can continue the prefix. */
  private handedBytes = 0;
  /**
   * SHA-256 of bytes [0, end) at each end the running digest reached a
   * block's end at (`end` → digest): what a resumable sink records for the
   * blocks that start the object instead of hashing each again
   * (prefixDigest). A copy of the digest state per block, 32 bytes each.
   */
  private readonly marks = new Map<number, Buffer>();

  private constructor(
    /** Where the verified object ends up. */
    readonly finalPath: string,
    /** The temporary file, in the same directory. */
    readonly tempPath: string,
    /** F, the object's length in bytes. */
    readonly length: number,
    handle: fs.FileHandle,
  ) {
    this.handle = handle;
  }

  /**
   * Creates the directory if needed and a fresh temporary file in it: at
   * `tempPath` if given (a resumable fetch's part file, resume-state.ts),
   * else under a random name.
   */
  static async create(finalPath: string, length: number, tempPath?: string): Promise<ObjectFileWriter> {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError('length must be a non-negative integer');
    const dir = path.dirname(finalPath);
    await makeDirectory(dir);
    tempPath ??= path.join(dir, `.${path.basename(finalPath)}.rqcast-tmp-${nodeCrypto().randomBytes(4).toString('hex')}`);
    // 'wx+': never reuse (or follow a link planted at) an existing path.
    const handle = await fs.open(tempPath, 'wx+', 0o666);
    try {
      await handle.truncate(length);
    } catch (e) {
      await handle.close().catch(() => undefined);
      await fs.unlink(tempPath).catch(() => undefined);
      throw e;
    }
    return new ObjectFileWriter(finalPath, tempPath, length, handle);
  }

  /**
   * Opens the part file of an interrupted fetch to go on writing it: a
   * regular file (no link followed) of exactly `length` bytes, else
   * undefined. `prefix` is the digest of its first `prefixBytes` bytes, as
   * read when its kept blocks were verified (resume-state.ts).
   */
  static async reopen(finalPath: string, tempPath: string, length: number, prefix?: { hash: Hash; bytes: number }): Promise<ObjectFileWriter | undefined> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(tempPath, fsConstants.O_RDWR | fsConstants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    const st = await handle.stat();
    if (!st.isFile() || st.size !== length) {
      await handle.close();
      return undefined;
    }
    const w = new ObjectFileWriter(finalPath, tempPath, length, handle);
    if (prefix !== undefined && prefix.bytes > 0 && prefix.bytes <= length) {
      w.hash = prefix.hash;
      w.hashedUpTo = prefix.bytes;
      w.mark();
    }
    return w;
  }

  /**
   * Bytes already in the file at `offset` (a resumed fetch's kept block),
   * not written again: part of the digest, read back at commit unless the
   * digest's prefix already covers them.
   */
  alreadyWritten(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.length) throw new RangeError(`block at ${offset} (+${length}) is outside the object`);
    this.bytesWritten += length;
    this.handedBytes += length;
    if (this.hash === undefined || length === 0 || offset + length <= this.hashedUpTo) return;
    if (offset < this.hashedUpTo || this.overlapsAhead(offset, length)) {
      this.dropDigest();
      return;
    }
    this.ahead.set(offset, { length });
    this.aheadStarts.splice(this.firstAfter(offset), 0, offset);
  }

  /**
   * SHA-256 of the object's bytes [0, end) as handed to writeAt (and kept
   * from a resumed part file), if the running digest passed `end` at the
   * end of a block; undefined otherwise (`end` inside a block, or not
   * reached, or the digest dropped). The bytes may still be on their way
   * to the file: a caller that records it waits for their writes.
   */
  prefixDigest(end: number): Buffer | undefined {
    return this.hash === undefined ? undefined : this.marks.get(end);
  }

  /** Bytes [0, n) are in the running digest (every block in it handed to writeAt or kept); 0 once the digest is dropped. */
  get digestedBytes(): number {
    return this.hash === undefined ? 0 : this.hashedUpTo;
  }

  /** The running digest was given up (a region written twice): commit reads the whole file back, and no prefix digest is known. */
  get digestDropped(): boolean {
    return this.hash === undefined;
  }

  /** Reads `length` bytes at `offset` back from the file (what its writes left there); undefined if closed or short. */
  async readBack(offset: number, length: number): Promise<Buffer | undefined> {
    const handle = this.handle;
    if (handle === undefined) return undefined;
    const bytes = Buffer.allocUnsafe(length);
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
        if (bytesRead === 0) return undefined;
        done += bytesRead;
      }
    } catch {
      // Closed meanwhile (suspend, abort).
      return undefined;
    }
    return bytes;
  }

  /** Makes the bytes written so far durable (fdatasync), so that a journal may record them. */
  async datasync(): Promise<void> {
    const handle = this.handle;
    if (handle !== undefined) await handle.datasync();
  }

  /** Closes the file and keeps it (an interrupted resumable fetch). */
  async suspend(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    const handle = this.handle;
    this.handle = undefined;
    await Promise.allSettled(this.pending);
    if (handle !== undefined) {
      await handle.datasync().catch(() => undefined);
      await handle.close().catch(() => undefined);
    }
  }

  get done(): boolean {
    return this.finished;
  }

  /**
   * Writes `data` at `offset`, except the ranges `inPlace` (object offsets)
   * that hold these bytes already (written through, write-through.ts): the
   * whole of `data` counts for the digest and bytesWritten. Writes at
   * distinct offsets may overlap in time.
   */
  writeAt(offset: number, data: Uint8Array, inPlace: readonly ByteRange[] = []): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) return Promise.reject(new Error('writer is closed'));
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.length) {
      return Promise.reject(new RangeError(`block at ${offset} (+${data.length}) is outside the object (${this.length} bytes)`));
    }
    // The write first: the kernel copies the block (on the thread pool) while
    // this thread hashes it. For the last block of a transfer that is most of
    // the tail; neither touches what the other does to `data`.
    // Every range the write-through left (one per lost symbol at a lossy
    // stream) in one thread-pool job: one hand-off and one promise per
    // block, not per range. The fd stays open until it settles: suspend,
    // commit and abort wait for `pending` before closing it.
    const ranges = gaps(offset, data.length, inPlace).flat();
    const p = (async () => {
      if (ranges.length > 0) {
        this.blockWriteJobs++;
        const { bytes, calls } = await this.pwriteRanges(handle.fd, data, offset, ranges);
        this.blockWriteCalls += calls;
        this.bytesToFile += bytes;
      }
      this.bytesWritten += data.length;
    })();
    this.handedBytes += data.length;
    this.digestAhead(offset, data);
    this.pending.add(p);
    const forget = () => this.pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  /**
   * Writes bytes that a later writeAt will write again, the same ones (source
   * symbols written through as they arrive, ObjectReceiver's BlockSink.prewrite):
   * so that the page cache holds the object's pages before its blocks
   * decode. Not part of the digest or of the write accounting; a failure is
   * ignored (the block's own write reports it). commit and abort wait for it.
   * Resolves true once the bytes are written whole (a resumable sink then
   * records them), false if they were not.
   */
  prewrite(offset: number, data: Uint8Array): Promise<boolean> {
    const handle = this.handle;
    if (handle === undefined || !Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.length) return Promise.resolve(false);
    const p = handle.write(data, 0, data.length, offset).then(
      ({ bytesWritten }) => {
        this.bytesToFile += bytesWritten;
        return bytesWritten === data.length;
      },
      () => false,
    );
    const settled = p.then(() => undefined);
    this.pending.add(settled);
    settled.then(() => this.pending.delete(settled));
    return p;
  }

  /** Whether the writer holds `data` (a block kept for the running digest until the prefix reaches it). */
  keeps(data: Uint8Array): boolean {
    for (const b of this.ahead.values()) if (b.data === data) return true;
    return false;
  }

  /** Feeds the running digest with a block being written at `offset`. */
  private digestAhead(offset: number, data: Uint8Array): void {
    if (this.hash === undefined || data.length === 0) return;
    if (offset < this.hashedUpTo || this.overlapsAhead(offset, data.length)) {
      // Written again: the file's bytes may not be what was hashed or kept.
      this.dropDigest();
      return;
    }
    const keep = this.heldBytes + data.length <= this.holdBytes;
    // The block that completes the object (the last of the stream, or the
    // first for a receiver that joined late), with the kept blocks after
    // it, is hashed by commit beside the file's fsync, not here before it:
    // the tail then waits for the longer of the two, not for both.
    if (offset === this.hashedUpTo && !(keep && this.handedBytes >= this.length)) {
      this.hash.update(data);
      this.hashedUpTo += data.length;
      this.mark();
      if (this.handedBytes < this.length) this.advance();
      return;
    }
    if (keep) this.heldBytes += data.length;
    this.ahead.set(offset, { length: data.length, data: keep ? data : undefined });
    this.aheadStarts.splice(this.firstAfter(offset), 0, offset);
  }

  /** Index of the first start in aheadStarts greater than `offset`. */
  private firstAfter(offset: number): number {
    let lo = 0;
    let hi = this.aheadStarts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.aheadStarts[mid] <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private overlapsAhead(offset: number, length: number): boolean {
    const i = this.firstAfter(offset);
    if (i > 0) {
      const prev = this.aheadStarts[i - 1];
      if (prev + (this.ahead.get(prev) as { length: number }).length > offset) return true;
    }
    return i < this.aheadStarts.length && offset + length > this.aheadStarts[i];
  }

  /** Hashes the kept blocks that now continue the prefix (stops at one not kept). */
  private advance(): void {
    while (this.hash !== undefined && this.aheadStarts.length > 0 && this.aheadStarts[0] === this.hashedUpTo) {
      const next = this.ahead.get(this.hashedUpTo) as { length: number; data?: Uint8Array };
      if (next.data === undefined) return;
      this.ahead.delete(this.hashedUpTo);
      this.aheadStarts.shift();
      this.heldBytes -= next.length;
      this.hash.update(next.data);
      this.hashedUpTo += next.length;
      this.mark();
    }
  }

  /** Keeps the digest of the prefix as it stands (a block's end). */
  private mark(): void {
    if (this.hash !== undefined) this.marks.set(this.hashedUpTo, this.hash.copy().digest());
  }

  private dropDigest(): void {
    this.hash = undefined;
    this.marks.clear();
    this.ahead.clear();
    this.aheadStarts = [];
    this.heldBytes = 0;
  }

  /**
   * SHA-256 of the temporary file's contents: the running digest's prefix,
   * then the rest from the kept blocks or read back in 1 MiB chunks (all
   * of it when overlapping writes made the running digest untrustworthy).
   */
  private async digest(handle: fs.FileHandle): Promise<Buffer> {
    let hash = this.hash;
    let position = this.hashedUpTo;
    if (hash === undefined) {
      hash = createHash('sha256');
      position = 0;
    }
    const kept = new Map<number, Uint8Array>();
    for (const [offset, b] of this.ahead) if (b.data !== undefined) kept.set(offset, b.data);
    const starts = [...kept.keys()].sort((a, b) => a - b);
    this.dropDigest();
    let s = 0;
    const buf = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(1, this.length)));
    while (position < this.length) {
      while (s < starts.length && starts[s] < position) s++;
      const block = kept.get(position);
      if (block !== undefined) {
        hash.update(block);
        position += block.length;
        continue;
      }
      // Up to the next kept block, if one starts within this chunk.
      let want = Math.min(buf.length, this.length - position);
      if (s < starts.length) want = Math.min(want, starts[s] - position);
      const { bytesRead } = await handle.read(buf, 0, want, position);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      position += bytesRead;
    }
    return hash.digest();
  }

  /**
   * Verifies the whole file against `sha256` and, if it matches, makes it
   * durable and renames it to the final name. On a mismatch the temporary
   * file is deleted and DigestMismatchError thrown; nothing appears under
   * the final name either way unless it verified.
   */
  async commit(sha256: Uint8Array, objectName = path.basename(this.finalPath)): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) throw new Error('writer is closed');
    await Promise.all(this.pending);
    // The fsync runs (on the thread pool) while this thread finishes the
    // digest: what was written is made durable before it is known to match,
    // which publishes nothing; a mismatch still removes the file.
    const synced = handle.sync();
    synced.catch(() => undefined);
    try {
      let actual: Buffer;
      try {
        actual = await this.digest(handle);
      } finally {
        await synced.catch(() => undefined);
      }
      if (sha256.length !== actual.length || !actual.equals(Buffer.from(sha256.buffer, sha256.byteOffset, sha256.byteLength))) {
        throw new DigestMismatchError(objectName);
      }
      await synced;
      await handle.close();
      this.handle = undefined;
      await fs.rename(this.tempPath, this.finalPath);
      this.finished = true;
    } catch (e) {
      await this.abort();
      throw e;
    }
    // The rename is durable once the directory is synced; not every file
    // system allows opening a directory, and the file itself is intact.
    try {
      const dir = await fs.open(path.dirname(this.finalPath), 'r');
      await dir.sync().finally(() => dir.close());
    } catch {
      /* best effort */
    }
  }

  /** Closes and deletes the temporary file. Idempotent; a no-op after commit. */
  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    const handle = this.handle;
    this.handle = undefined;
    await Promise.allSettled(this.pending);
    if (handle !== undefined) await handle.close().catch(() => undefined);
    await fs.unlink(this.tempPath).catch(() => undefined);
  }
}
