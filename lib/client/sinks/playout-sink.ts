/**
 * The playout sink: an object written to a stream (stdout for `fetch -o -`)
 * in order, each source block as soon as it and every block before it have
 * decoded (progressive playout).
 *
 * Blocks decode in any order (RFC 6330: each source block on its own); a
 * block that decodes before the ones ahead of it is held until they have
 * been written. The SHA-256 runs over the bytes as they are written, so
 * commit() compares it with the FDT's rq:Content-SHA-256 without reading
 * anything back. What has been written cannot be taken back: on a mismatch
 * commit() throws DigestMismatchError (the CLI's exit 5) after the whole
 * object went out, and abort() only stops writing.
 *
 * Backpressure: writeBlock resolves once the block's bytes have been
 * accepted by the stream (its 'drain' when write() returned false), so a
 * slow reader holds back the receiver's completion, never grows a queue in
 * the sink beyond the blocks decoded out of order.
 */
import { createHash, Hash } from 'crypto';
import { DigestMismatchError, UnfetchableObjectError } from '../errors';
import type { ObjectSink, SinkFactory, SinkObject } from './sink';

/** Where a playout sink writes: a Node Writable (process.stdout, a PassThrough). */
export type PlayoutStream = NodeJS.WritableStream;

/** Blocks written out, bytes written, and blocks held because an earlier one had not decoded. */
export interface PlayoutStats {
  blocksWritten: number;
  bytesWritten: number;
  /** The most blocks held at once, waiting for an earlier block. */
  peakHeldBlocks: number;
  /** Date.now() when the first byte was handed to the stream (0: none yet). */
  firstByteAtMs: number;
}

export class PlayoutSinkFactory implements SinkFactory {
  private opened?: string;

  constructor(
    private readonly out: PlayoutStream,
    /** '-' in results and messages. */
    private readonly label = '-',
  ) {}

  open(object: SinkObject): PlayoutSink {
    if (this.opened !== undefined) {
      throw new UnfetchableObjectError(object.name, `the output stream already carries "${this.opened}": name one object in the URL to play it out`);
    }
    this.opened = object.name;
    return new PlayoutSink(object, this.out, this.label);
  }
}

export class PlayoutSink implements ObjectSink {
  readonly stats: PlayoutStats = { blocksWritten: 0, bytesWritten: 0, peakHeldBlocks: 0, firstByteAtMs: 0 };
  /** Decoded blocks waiting for an earlier one, by SBN. */
  private readonly held = new Map<number, { offset: number; data: Uint8Array }>();
  /** The next block to write, and the object offset it must start at. */
  private nextSbn = 0;
  private nextOffset = 0;
  private readonly hash: Hash = createHash('sha256');
  /** The chain of writes: each block goes out after the one before it has been accepted. */
  private tail: Promise<void> = Promise.resolve();
  private aborted = false;

  constructor(
    private readonly object: SinkObject,
    private readonly out: PlayoutStream,
    readonly path: string,
  ) {}

  writeBlock(sbn: number, offset: number, data: Uint8Array): Promise<void> {
    if (this.aborted) return Promise.resolve();
    if (sbn < this.nextSbn || this.held.has(sbn)) return Promise.reject(new RangeError(`block ${sbn} of "${this.object.name}" handed to the playout sink twice`));
    this.held.set(sbn, { offset, data });
    // Every block that is next in order goes out now, behind the writes before it.
    while (this.held.has(this.nextSbn)) {
      const b = this.held.get(this.nextSbn)!;
      this.held.delete(this.nextSbn);
      if (b.offset !== this.nextOffset) {
        return Promise.reject(new RangeError(`block ${this.nextSbn} of "${this.object.name}" starts at ${b.offset}, expected ${this.nextOffset}`));
      }
      this.nextSbn++;
      this.nextOffset += b.data.length;
      this.tail = this.tail.then(() => this.emit(b.data));
    }
    this.stats.peakHeldBlocks = Math.max(this.stats.peakHeldBlocks, this.held.size);
    return this.tail;
  }

  /** Every block has been written: the running digest must be the FDT's. */
  async commit(): Promise<void> {
    await this.tail;
    if (this.held.size > 0 || this.nextOffset !== this.object.oti.transferLength) {
      throw new RangeError(`"${this.object.name}": ${this.nextOffset} of ${this.object.oti.transferLength} bytes played out at commit`);
    }
    const got = this.hash.digest();
    if (!got.equals(Buffer.from(this.object.sha256))) throw new DigestMismatchError(this.object.name);
  }

  /** What was written stays written; stop writing more. */
  async abort(): Promise<void> {
    this.aborted = true;
    this.held.clear();
  }

  private emit(data: Uint8Array): Promise<void> {
    if (this.aborted) return Promise.resolve();
    this.hash.update(data);
    if (this.stats.firstByteAtMs === 0 && data.length > 0) this.stats.firstByteAtMs = Date.now();
    this.stats.blocksWritten++;
    this.stats.bytesWritten += data.length;
    return new Promise<void>((resolve, reject) => {
      const onError = (e: unknown): void => reject(e);
      this.out.once('error', onError);
      const flushed = this.out.write(data, (e?: Error | null) => {
        if (e) reject(e);
      });
      const done = (): void => {
        this.out.removeListener('error', onError);
        resolve();
      };
      if (flushed) done();
      else this.out.once('drain', done);
    });
  }
}
