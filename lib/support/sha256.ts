/**
 * A SHA-256 state that can be fed on the thread pool (native/napi/sha256.cc).
 *
 * A fetch hashes each object whole as its blocks are written. Over TCP the
 * server's round trip is how soon the fetch's JS thread comes back to its
 * socket, so that thread should not hash: updateOffThread queues the bytes
 * to a libuv worker, one job at a time and in the order called, the state
 * carried from job to job. update/copy/digest are the same on this thread
 * (for a few bytes, or a resumed fetch's read-back), and refuse while jobs
 * are queued: the state is then the worker's.
 */
import { loadNative } from '../native';

export class Sha256 {
  /** The last queued job, settled either way. */
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  /** Why a job failed: the state then lacks its bytes, and every later use fails. */
  private failed: unknown;

  private constructor(private readonly state: Uint8Array) {}

  static create(): Sha256 {
    return new Sha256(loadNative().sha256Init());
  }

  /** Hashes `data` now, on this thread. */
  update(data: Uint8Array): this {
    this.idle();
    loadNative().sha256Update(this.state, data);
    return this;
  }

  /** An independent state with the bytes so far. */
  copy(): Sha256 {
    this.idle();
    return new Sha256(this.state.slice());
  }

  /** The digest of the bytes so far; the state can go on. */
  digest(): Buffer {
    this.idle();
    return loadNative().sha256Digest(this.state);
  }

  /**
   * Hashes `data` on the thread pool once every update queued before it is
   * done; resolves to the digest of the bytes so far. `data` must not
   * change until it settles.
   */
  updateOffThread(data: Uint8Array): Promise<Buffer> {
    this.queued++;
    const p = this.tail.then(() => {
      if (this.failed !== undefined) throw this.failed;
      return loadNative().sha256UpdateAsync(this.state, data);
    });
    this.tail = p.then(
      () => this.queued--,
      (e: unknown) => {
        this.queued--;
        this.failed ??= e;
      },
    );
    return p;
  }

  /** Whether updates are queued (the state is not this thread's). */
  get busy(): boolean {
    return this.queued > 0;
  }

  /** Resolves once every update queued so far is done. */
  async settled(): Promise<void> {
    await this.tail;
  }

  private idle(): void {
    if (this.failed !== undefined) throw this.failed;
    if (this.queued > 0) throw new Error('the SHA-256 state is in use by a thread-pool job');
  }
}
