/**
 * The content catalogue: the objects a server sends, each with its TOI,
 * name, length, SHA-256 digest, RaptorQ OTI and encoder, and the FLUTE FDT
 * instance (TOI 0, RFC 6726 §3.4) that describes a set of them.
 *
 * - TOIs are 1..n in catalogue order (TOI 0 is the FDT, RFC 6726 §3.3).
 *   A TOI names the same object on every channel of the server, so a client
 *   on several channels pools their symbols per TOI.
 * - Names are relative paths ('/'-separated segments, never empty, '.' or
 *   '..'): a FILE argument is named by its base name, a file under a DIR
 *   argument by its path relative to that DIR. Any Unicode goes (spaces,
 *   accents); the FDT's Content-Location is the name percent-encoded
 *   (lib/protocol/content-location.ts, RFC 3986). A name no client could
 *   write safely (control characters, a '\', bytes that are not UTF-8,
 *   over 1024 characters) is refused for a FILE argument and skipped, with
 *   its reason in `skipped`, under a DIR; two objects with one name are a
 *   configuration error.
 * - Under a DIR, only what is inside it is served: a symbolic link to a
 *   file outside it (and a link to anything but a file, a device, a FIFO)
 *   is skipped, and so are dotfiles and dot-directories (.git, .env),
 *   each reported in `skipped`; `followSymlinks` and `dotfiles` serve
 *   them. A FILE argument is served whatever it is named or links to: the
 *   operator named it.
 * - Empty files: RaptorQ has no encoding for F = 0 (RFC 6330 §4.4.1.2 needs
 *   F >= 1). An empty FILE argument is refused with EmptyObjectError; empty
 *   files found while walking a DIR are skipped and reported in `skipped`.
 * - Every object of a catalogue has the same symbol size T (the FDT too), so
 *   every data packet of a channel has one length: RFC 6330 §4.4.1.2 pads
 *   the last source symbol of an object to T bytes.
 * - Memory: nothing of an object is kept in memory. load() streams each
 *   file once for its SHA-256; the encoder (ObjectEncoder.fromFile) holds a
 *   descriptor of the file and reads a source block (pread, on a worker
 *   thread) when a stream needs it prepared, so objects may be larger than
 *   RAM (up to RFC 6330's limits: 256 source blocks of at most 56403
 *   symbols, i.e. about 18 GB at T = 1280). A file that changes while it is
 *   served makes clients fail its digest check; one that shrinks makes
 *   preparing its blocks fail, and the server withdraws the object
 *   (docs/PROTOCOL.md §10.2).
 */
import { type Dirent, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { EncoderOptions, ObjectEncoder } from '../fec/encoder';
import { DEFAULT_MAX_SUB_BLOCK_SIZE, Oti as FecOti } from '../fec/oti';
import type { RawCodecBinding } from '../native';
import { encodeContentLocation } from '../protocol/content-location';
import { FDT_MAX_ATTRIBUTE_CHARS, FdtChannel, FdtFile, buildFdt } from '../protocol/fdt';
import { MAX_SOURCE_BLOCKS, Oti as WireOti } from '../protocol/oti';
import { CatalogueError } from './catalogue-error';
import { digestFile } from './file-digest';

export const DEFAULT_SYMBOL_SIZE = 1280;
/** How long an FDT instance says it is valid (FLUTE Expires, RFC 6726 §3.4.1). */
export const DEFAULT_FDT_LIFETIME_MS = 365 * 24 * 3600 * 1000;

export { CatalogueError };
export class ObjectNotFoundError extends CatalogueError {
  constructor(what: string) {
    super('ERR_OBJECT_NOT_FOUND', `no such file or directory: ${what}`);
  }
}
/** A served file is not what was announced any more (size, mtime or inode changed): its blocks must not be read for the old object. */
export class ObjectChangedError extends CatalogueError {
  constructor(what: string) {
    super('ERR_OBJECT_CHANGED', `${what} changed since it was announced (size, mtime or inode)`);
  }
}
export class EmptyObjectError extends CatalogueError {
  constructor(what: string) {
    super('ERR_EMPTY_OBJECT', `${what} is empty: RaptorQ cannot carry a zero-length object`);
  }
}
export class BadObjectNameError extends CatalogueError {
  constructor(name: string, why = objectNameProblem(name) ?? 'not a relative path') {
    super('ERR_BAD_OBJECT_NAME', `object name ${JSON.stringify(name)} cannot be served: ${why}`);
  }
}
export class DuplicateObjectNameError extends CatalogueError {
  constructor(name: string) {
    super('ERR_DUPLICATE_OBJECT_NAME', `two objects are named ${JSON.stringify(name)}`);
  }
}

/** The longest object name, in characters (its Content-Location may be longer, up to the FDT's attribute limit). */
export const MAX_OBJECT_NAME_CHARS = 1024;

/** Why `name` cannot be an object's name, or undefined when it can. */
export function objectNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.length > MAX_OBJECT_NAME_CHARS) return `longer than ${MAX_OBJECT_NAME_CHARS} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return 'a control character in the name';
  if (name.includes('\\')) return "a '\\' in the name (a path separator to some clients)";
  // readdir gives U+FFFD for bytes that are not UTF-8: no file of that name could be opened, nor a client name it.
  if (name.includes('\uFFFD') || Buffer.from(name, 'utf8').toString('utf8') !== name) return 'not valid UTF-8';
  for (const s of name.split('/')) {
    if (s === '' || s === '.' || s === '..') return 'not a relative path (an empty, "." or ".." segment)';
  }
  if (encodeContentLocation(name).length > FDT_MAX_ATTRIBUTE_CHARS) return `its Content-Location is longer than ${FDT_MAX_ATTRIBUTE_CHARS} characters`;
  return undefined;
}

/** Whether `name` is an object name rqcast serves and clients may write under. */
export function isSafeObjectName(name: string): boolean {
  return objectNameProblem(name) === undefined;
}

/** The RFC 6330 OTI in the wire-format shape (lib/protocol) from the codec's. */
export function wireOti(oti: FecOti): WireOti {
  return { transferLength: oti.F, symbolSize: oti.T, sourceBlocks: oti.Z, subBlocks: oti.N, alignment: oti.Al };
}

export interface CatalogueObject {
  /** Transport Object Identifier, >= 1. */
  readonly toi: number;
  /** Content-Location: relative path. */
  readonly name: string;
  /** Absolute path of the file it was read from. */
  readonly path: string;
  /** Bytes (F of the OTI). */
  readonly length: number;
  readonly sha256: Uint8Array;
  readonly oti: FecOti;
  /** The object's blocks: a BlockSource (block-source.ts) as it is, every block sealed from the start. */
  readonly encoder: ObjectEncoder;
  /** The file as it was when it was read for the digest (checkUnchanged). */
  readonly stamp?: FileStamp;
}

/** What tells a file's versions apart without reading it. */
export interface FileStamp {
  size: number;
  mtimeMs: number;
  ino: number;
}

function stampOf(st: { size: number; mtimeMs: number; ino: number }): FileStamp {
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}

export interface CatalogueOptions {
  /** T, the symbol size of every object (default 1280). Z and N follow from RFC 6330 §4.3. */
  symbolSize?: number;
  /** Under a DIR, follow symbolic links whose target is outside it (default: skipped, reported in `skipped`). */
  followSymlinks?: boolean;
  /** Under a DIR, serve files and directories whose name starts with '.' (default: skipped, reported in `skipped`). */
  dotfiles?: boolean;
  binding?: RawCodecBinding;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface FoundFile {
  path: string;
  name: string;
  /** The argument it came from: an empty FILE argument is an error, an empty file in a DIR is skipped. */
  explicit: boolean;
}

/**
 * Encoder options for an object of F bytes at symbol size T: RFC 6330 §4.3's
 * derivation with WS (the largest block a receiver decodes in one piece) at
 * its default, 16 MiB, unless that would need more than 256 source blocks
 * (objects over about 4.29 GB): then WS grows just enough for 256 blocks
 * (5% of slack for Table 2's steps), up to the K' = 56403 limit.
 */
export function encoderOptionsFor(F: number, T: number): EncoderOptions {
  const perBlock = Math.ceil((F / MAX_SOURCE_BLOCKS) * 1.05);
  return { symbolSize: T, maxSubBlockSize: Math.max(DEFAULT_MAX_SUB_BLOCK_SIZE, perBlock) };
}

/** What a directory walk serves beyond regular files inside it. */
interface WalkRules {
  /** The DIR argument's real path: a link whose target is outside it is not followed unless followSymlinks. */
  root: string;
  followSymlinks: boolean;
  dotfiles: boolean;
  /** A directory that cannot be listed: the walk fails (load), or it is skipped with its reason (a rescan, served-path-watch.ts). */
  unreadable: 'throw' | 'skip';
}

export interface ServedFilesOptions {
  followSymlinks?: boolean;
  dotfiles?: boolean;
  /** As WalkRules.unreadable; default 'throw'. */
  unreadable?: 'throw' | 'skip';
}

/**
 * The files the FILE or DIR argument `p` serves, by the rules of the file
 * comment (a FILE as it is; under a DIR regular files inside it, links
 * leading out and dotfiles only with followSymlinks / dotfiles), and what
 * the walk skipped, with why. Names are not checked here
 * (objectNameProblem), nor sizes. Both load() and the rescans of a served
 * path (served-path-watch.ts) use it, so both serve the same files.
 * Throws ObjectNotFoundError when `p` does not exist, a CatalogueError
 * when it is neither a file nor a directory.
 */
export async function servedFiles(p: string, options: ServedFilesOptions = {}): Promise<{ found: FoundFile[]; skipped: SkippedFile[] }> {
  const found: FoundFile[] = [];
  const skipped: SkippedFile[] = [];
  const st = await fsp.stat(p).catch(() => undefined);
  if (st === undefined) throw new ObjectNotFoundError(p);
  if (st.isDirectory()) {
    const rules: WalkRules = {
      root: await fsp.realpath(p),
      followSymlinks: options.followSymlinks === true,
      dotfiles: options.dotfiles === true,
      unreadable: options.unreadable ?? 'throw',
    };
    await walk(p, '', found, skipped, rules);
  } else if (st.isFile()) found.push({ path: p, name: path.basename(p), explicit: true });
  else throw new CatalogueError('ERR_NOT_A_FILE', `${p} is neither a file nor a directory`);
  return { found, skipped };
}

/** Whether `p` is `dir` or inside it (both real paths). */
function inside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

async function walk(dir: string, prefix: string, out: FoundFile[], skipped: SkippedFile[], rules: WalkRules): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (rules.unreadable === 'throw') throw e;
    skipped.push({ path: dir, reason: `directory not readable (${(e as NodeJS.ErrnoException).code ?? String(e)})` });
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    const name = prefix === '' ? e.name : `${prefix}/${e.name}`;
    // Dotfiles and dot-directories (.git, .env, .ssh) are private by convention: one skip for a whole directory.
    if (!rules.dotfiles && e.name.startsWith('.')) {
      skipped.push({ path: full, reason: e.isDirectory() ? 'hidden directory (--dotfiles serves it)' : 'hidden file (--dotfiles serves it)' });
      continue;
    }
    if (e.isDirectory()) await walk(full, name, out, skipped, rules);
    else if (e.isFile()) out.push({ path: full, name, explicit: false });
    else if (e.isSymbolicLink()) {
      // Links to files only; links to directories are not followed (no loops).
      const target = await fsp.realpath(full).catch(() => undefined);
      const st = target === undefined ? undefined : await fsp.stat(target).catch(() => undefined);
      if (target === undefined || st === undefined) skipped.push({ path: full, reason: 'broken symbolic link' });
      else if (!st.isFile()) skipped.push({ path: full, reason: 'symbolic link to something other than a file' });
      else if (!rules.followSymlinks && !inside(target, rules.root)) {
        skipped.push({ path: full, reason: `symbolic link leading out of the served directory, to ${target} (--follow-symlinks serves it)` });
      } else out.push({ path: full, name, explicit: false });
    } else skipped.push({ path: full, reason: 'not a regular file (a device, FIFO or socket)' });
  }
}

export class Catalogue {
  readonly symbolSize: number;
  readonly skipped: readonly SkippedFile[];
  private readonly list: CatalogueObject[];
  private readonly byName = new Map<string, CatalogueObject>();
  private readonly byPath = new Map<string, CatalogueObject[]>();
  private readonly binding?: RawCodecBinding;
  /** The TOI the next object added takes: TOIs are never reused while the server runs (a client keys symbols by TOI). */
  private nextToi: number;
  /** Objects removed while served: their encoders are closed with the catalogue. */
  private readonly removed: CatalogueObject[] = [];

  private constructor(objects: CatalogueObject[], skipped: SkippedFile[], symbolSize: number, binding?: RawCodecBinding) {
    this.list = objects;
    this.nextToi = objects.length + 1;
    this.skipped = skipped;
    this.symbolSize = symbolSize;
    this.binding = binding;
    for (const o of objects) {
      this.byName.set(o.name, o);
      const list = this.byPath.get(o.path) ?? [];
      list.push(o);
      this.byPath.set(o.path, list);
    }
  }

  /**
   * Reads FILEs and DIRs (recursively, sorted by name) into a catalogue.
   * Throws a CatalogueError for a missing path, a bad or duplicate name, an
   * empty FILE argument; codec errors for a symbol size RFC 6330 refuses.
   */
  static async load(paths: readonly string[], options: CatalogueOptions = {}): Promise<Catalogue> {
    const symbolSize = options.symbolSize ?? DEFAULT_SYMBOL_SIZE;
    const found: FoundFile[] = [];
    const skipped: SkippedFile[] = [];
    for (const p of paths) {
      const r = await servedFiles(p, options);
      found.push(...r.found);
      skipped.push(...r.skipped);
    }
    const objects: CatalogueObject[] = [];
    const names = new Set<string>();
    try {
      for (const f of found) {
        const problem = objectNameProblem(f.name);
        if (problem !== undefined) {
          // One odd name in a directory must not stop the others being served.
          if (f.explicit) throw new BadObjectNameError(f.name, problem);
          skipped.push({ path: f.path, reason: `name cannot be served: ${problem}` });
          continue;
        }
        if (names.has(f.name)) throw new DuplicateObjectNameError(f.name);
        names.add(f.name);
        const st = await fsp.stat(f.path);
        if (st.size === 0) {
          if (f.explicit) throw new EmptyObjectError(f.path);
          skipped.push({ path: f.path, reason: 'empty file' });
          continue;
        }
        // The encoder first: it holds the file open, so the bytes hashed are
        // the ones it will read (unless the file is modified in place).
        const encoder = ObjectEncoder.fromFile(f.path, { ...encoderOptionsFor(st.size, symbolSize), length: st.size }, options.binding);
        objects.push({
          toi: objects.length + 1,
          name: f.name,
          path: path.resolve(f.path),
          length: st.size,
          sha256: await digestFile(f.path, st.size),
          oti: encoder.otiInfo,
          encoder,
          stamp: stampOf(st),
        });
      }
    } catch (e) {
      for (const o of objects) o.encoder.close();
      throw e;
    }
    return new Catalogue(objects, skipped, symbolSize, options.binding);
  }

  get objects(): readonly CatalogueObject[] {
    return this.list;
  }

  /**
   * Adds file `file` as object `name` (a directory being served changed):
   * the next unused TOI, its SHA-256 streamed as in load(). Throws a
   * CatalogueError for a bad or taken name, an empty file, or a file that
   * changed while it was read.
   */
  async addFile(file: string, name: string): Promise<CatalogueObject> {
    if (!isSafeObjectName(name)) throw new BadObjectNameError(name);
    if (this.byName.has(name)) throw new DuplicateObjectNameError(name);
    const st = await fsp.stat(file);
    if (st.size === 0) throw new EmptyObjectError(file);
    const encoder = ObjectEncoder.fromFile(file, { ...encoderOptionsFor(st.size, this.symbolSize), length: st.size }, this.binding);
    let sha256: Uint8Array;
    try {
      sha256 = await digestFile(file, st.size);
    } catch (e) {
      encoder.close();
      throw e;
    }
    // Checked again: another add of the name may have finished meanwhile.
    if (this.byName.has(name)) {
      encoder.close();
      throw new DuplicateObjectNameError(name);
    }
    const o: CatalogueObject = { toi: this.nextToi++, name, path: path.resolve(file), length: st.size, sha256, oti: encoder.otiInfo, encoder, stamp: stampOf(st) };
    this.list.push(o);
    this.byName.set(name, o);
    const list = this.byPath.get(o.path) ?? [];
    list.push(o);
    this.byPath.set(o.path, list);
    return o;
  }

  /**
   * Throws ObjectChangedError if `o`'s file is not the one announced any
   * more (its size, mtime or inode differ from when it was read): a block
   * read now might not match the digest clients check (the server calls
   * this before preparing each block, and withdraws the object).
   */
  async checkUnchanged(o: CatalogueObject): Promise<void> {
    if (!o.stamp) return;
    const st = await fsp.stat(o.path).catch(() => undefined);
    if (!st || st.size !== o.stamp.size || st.mtimeMs !== o.stamp.mtimeMs || st.ino !== o.stamp.ino) throw new ObjectChangedError(o.name);
  }

  /** Takes `o` out of the catalogue (its name is free again); its encoder stays open until `close()`, for the streams that still hold it. */
  remove(o: CatalogueObject): void {
    const i = this.list.indexOf(o);
    if (i < 0) return;
    this.list.splice(i, 1);
    this.removed.push(o);
    if (this.byName.get(o.name) === o) this.byName.delete(o.name);
    const same = (this.byPath.get(o.path) ?? []).filter((x) => x !== o);
    if (same.length > 0) this.byPath.set(o.path, same);
    else this.byPath.delete(o.path);
  }

  get(name: string): CatalogueObject | undefined {
    return this.byName.get(name);
  }

  byToi(toi: number): CatalogueObject | undefined {
    return this.list.find((o) => o.toi === toi);
  }

  /** Objects read from `p` (a FILE or DIR argument given to load). */
  objectsUnder(p: string): CatalogueObject[] {
    const abs = path.resolve(p);
    const exact = this.byPath.get(abs);
    if (exact) return exact.slice();
    const prefix = abs.endsWith(path.sep) ? abs : abs + path.sep;
    return this.list.filter((o) => o.path.startsWith(prefix));
  }

  /**
   * A FLUTE FDT instance (TOI 0) listing `objects`, and `channels` (the
   * server's, as rq:Channel elements) when given, FEC-encoded like any object.
   */
  fdt(
    objects: readonly CatalogueObject[],
    instanceId: number,
    nowMs: number,
    lifetimeMs = DEFAULT_FDT_LIFETIME_MS,
    channels?: readonly FdtChannel[],
  ): FdtObject {
    return buildFdtObject(objects, { instanceId, expiresAtMs: Math.ceil(nowMs + lifetimeMs), complete: true, channels, symbolSize: this.symbolSize, binding: this.binding });
  }

  /** Frees every encoder (of removed objects too). */
  close(): void {
    for (const o of this.list) o.encoder.close();
    for (const o of this.removed.splice(0)) o.encoder.close();
  }
}

/** What an FDT instance says of one object (its File element). */
export type FdtListed = Pick<CatalogueObject, 'toi' | 'name' | 'length' | 'oti' | 'sha256'>;

/**
 * The FDT instance listing `objects` (names percent-encoded, RFC 6330 OTI,
 * SHA-256), and `channels` (rq:Channel) when given, FEC-encoded like any
 * object: what a file catalogue and a live channel both send as TOI 0.
 */
export function buildFdtObject(
  objects: readonly FdtListed[],
  o: { instanceId: number; expiresAtMs: number; complete: boolean; channels?: readonly FdtChannel[]; symbolSize: number; binding?: RawCodecBinding },
): FdtObject {
  const files: FdtFile[] = objects.map((obj) => ({
    toi: BigInt(obj.toi),
    contentLocation: encodeContentLocation(obj.name),
    contentLength: obj.length,
    transferLength: obj.length,
    fecEncodingId: 6,
    oti: wireOti(obj.oti),
    sha256: obj.sha256,
  }));
  const xml = buildFdt({ expiresAtMs: o.expiresAtMs, complete: o.complete, files, ...(o.channels ? { channels: [...o.channels] } : {}) });
  const bytes = new TextEncoder().encode(xml);
  const encoder = new ObjectEncoder(bytes, { symbolSize: o.symbolSize }, o.binding);
  return { instanceId: o.instanceId, xml, bytes, encoder };
}

/** One FDT instance (RFC 6726 §3.4.2) as sent: TOI 0, EXT_FDT carries instanceId. */
export interface FdtObject {
  /** FDT Instance ID, 20 bits (RFC 6726 §3.4.1). */
  readonly instanceId: number;
  readonly xml: string;
  readonly bytes: Uint8Array;
  readonly encoder: ObjectEncoder;
}
