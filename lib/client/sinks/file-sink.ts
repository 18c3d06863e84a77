/**
 * The file sink: each object into its own file under the output directory
 * (or into the one output file), through an ObjectFileWriter (temporary
 * file, running SHA-256, atomic rename).
 *
 * The temporary file is created with the first block or symbol written, not
 * when the FDT lists the object, so that an FDT of many objects does not
 * open as many files at once.
 *
 * With `resume`, each object goes through a ResumableFileSink instead: a
 * part file and a journal that outlive an interrupted fetch.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { UnfetchableObjectError } from '../errors';
import { ObjectFileWriter, safeObjectPath } from './file-writer';
import { ResumableFileSink, type ResumeMode } from './resumable-sink';
import { LEGACY_TEMP_INFIX } from './resume-state';
import type { ByteRange, ObjectSink, SinkFactory, SinkObject } from './sink';

export interface FileSinkOptions {
  /** Objects go under this directory, at their sanitised names. */
  outputDir: string;
  /** The one object of the fetch goes to this exact path instead. */
  outputFile?: string;
  /**
   * The most bytes of early blocks a writer keeps for its running digest,
   * read when the writer is created: the client's memory budget bounds them
   * too.
   */
  holdBytes?: () => number;
  /**
   * Resumable sinks (resumable-sink.ts): 'continue' resumes what an
   * interrupted fetch left, 'restart' discards it first; either keeps what
   * it writes when the fetch stops short. Undefined: the temporary file is
   * removed on any failure, nothing is resumed.
   */
  resume?: ResumeMode;
  /** Warnings of resumable sinks (a changed object, torn blocks, debris removed). */
  warning?: (message: string) => void;
}

export class FileSinkFactory implements SinkFactory {
  /** Output paths in use, and the object that uses each. */
  private readonly used = new Map<string, string>();
  /** Per directory, the names that may be debris of earlier versions: listed once per fetch (resumable sinks). */
  private readonly debris = new Map<string, Promise<string[]>>();

  constructor(private readonly options: FileSinkOptions) {}

  open(object: SinkObject): FileSink | ResumableFileSink {
    const o = this.options;
    const target = o.outputFile !== undefined ? path.resolve(o.outputFile) : path.resolve(o.outputDir, safeObjectPath(object.name));
    const other = this.used.get(target);
    // The same name again is a new version of the object (the registry keeps one per name; each writer has its own temp file).
    if (other !== undefined && other !== object.name) throw new UnfetchableObjectError(object.name, `its output path is already used by "${other}"`);
    this.used.set(target, object.name);
    if (o.resume !== undefined) {
      return new ResumableFileSink(object, target, { mode: o.resume, holdBytes: o.holdBytes, warning: o.warning, listDir: (d) => this.listDebris(d) });
    }
    return new FileSink(object, target, o.holdBytes);
  }

  private listDebris(dir: string): Promise<string[]> {
    let names = this.debris.get(dir);
    if (names === undefined) {
      names = fs.readdir(dir).then(
        (all) => all.filter((n) => n.includes(LEGACY_TEMP_INFIX)),
        () => [],
      );
      this.debris.set(dir, names);
    }
    return names;
  }
}

export class FileSink implements ObjectSink {
  private writer?: Promise<ObjectFileWriter>;
  /** The writer once open. */
  private opened?: ObjectFileWriter;

  constructor(
    private readonly object: SinkObject,
    readonly path: string,
    private readonly holdBytes?: () => number,
  ) {}

  async writeBlock(_sbn: number, offset: number, data: Uint8Array, inPlace?: readonly ByteRange[]): Promise<void> {
    const w = await this.open();
    this.opened = w;
    return w.writeAt(offset, data, inPlace);
  }

  /** Written (writeBlock resolved) and not kept for the running digest. */
  doneWithBlock(_sbn: number, data: Uint8Array): boolean {
    return this.opened !== undefined && !this.opened.keeps(data);
  }

  /** Resolves true once `data` is in the file whole. */
  prewrite(offset: number, data: Uint8Array): Promise<boolean> {
    return this.open().then(
      (w) => w.prewrite(offset, data),
      () => false,
    );
  }

  async commit(): Promise<void> {
    const w = await this.open();
    await w.commit(this.object.sha256, this.object.name);
  }

  async abort(): Promise<void> {
    if (this.writer) await this.writer.then((w) => w.abort(), () => undefined);
  }

  /** The writer, created on first use. */
  private open(): Promise<ObjectFileWriter> {
    if (this.writer === undefined) {
      this.writer = ObjectFileWriter.create(this.path, this.object.oti.transferLength).then((w) => {
        if (this.holdBytes) w.holdBytes = Math.min(w.holdBytes, this.holdBytes());
        return w;
      });
      // Failures surface through writeBlock and commit; keep the promise handled meanwhile.
      this.writer.catch(() => undefined);
    }
    return this.writer;
  }
}
