/**
 * ObjectFileWriter: writes an object's decoded source blocks, in whatever
 * order they decode, at their offsets in a temporary file next to the final
 * one, then verifies and publishes it atomically:
 *
 *   .NAME.rqcast-tmp-XXXXXXXX   (same directory, so rename(2) is atomic)
 *     <- writeAt(blockOffset, blockBytes)   ... once per source block
 *   commit(sha256): stream the file through SHA-256, compare with the FDT's
 *     rq:Content-SHA-256; equal -> fsync, rename to NAME, fsync the
 *     directory; different -> unlink, DigestMismatchError.
 *
 * So a file under the final name is always complete and verified; memory is
 * the blocks being written, never the whole object.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { DigestMismatchError, UnfetchableObjectError } from './errors';

const HASH_CHUNK = 1 << 20;

/**
 * The relative path an object name may be written to: '/'-separated,
 * without empty or '.' segments. Names that would leave the destination
 * directory ('..', absolute paths once stripped of leading '/', drive
 * letters), or hold control characters, are refused: the FDT is remote
 * input.
 */
export function safeObjectPath(name: string): string {
  if (typeof name !== 'string' || name === '') throw new UnfetchableObjectError(String(name), 'empty name');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) throw new UnfetchableObjectError(JSON.stringify(name), 'control characters in the name');
  const segments = name.split(/[/\\]/).filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) throw new UnfetchableObjectError(name, 'the name has no file part');
  for (const s of segments) {
    if (s === '..') throw new UnfetchableObjectError(name, '".." in the name');
    if (/^[A-Za-z]:$/.test(s)) throw new UnfetchableObjectError(name, 'drive letter in the name');
  }
  return segments.join('/');
}

export class ObjectFileWriter {
  /** Bytes written so far (each block once). */
  bytesWritten = 0;
  private handle: fs.FileHandle | undefined;
  private finished = false;
  private pending = new Set<Promise<void>>();

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

  /** Creates the directory if needed and a fresh temporary file in it. */
  static async create(finalPath: string, length: number): Promise<ObjectFileWriter> {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError('length must be a non-negative integer');
    const dir = path.dirname(finalPath);
    await fs.mkdir(dir, { recursive: true });
    const tempPath = path.join(dir, `.${path.basename(finalPath)}.rqcast-tmp-${randomBytes(4).toString('hex')}`);
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

  get done(): boolean {
    return this.finished;
  }

  /** Writes `data` at `offset`. Writes at distinct offsets may overlap in time. */
  writeAt(offset: number, data: Uint8Array): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) return Promise.reject(new Error('writer is closed'));
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.length) {
      return Promise.reject(new RangeError(`block at ${offset} (+${data.length}) is outside the object (${this.length} bytes)`));
    }
    const p = (async () => {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await handle.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
      this.bytesWritten += data.length;
    })();
    this.pending.add(p);
    const forget = () => this.pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** SHA-256 of the temporary file's contents, read back in 1 MiB chunks. */
  private async digest(handle: fs.FileHandle): Promise<Buffer> {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(1, this.length)));
    let position = 0;
    while (position < this.length) {
      const want = Math.min(buf.length, this.length - position);
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
    try {
      const actual = await this.digest(handle);
      if (sha256.length !== actual.length || !actual.equals(Buffer.from(sha256.buffer, sha256.byteOffset, sha256.byteLength))) {
        throw new DigestMismatchError(objectName);
      }
      await handle.sync();
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
