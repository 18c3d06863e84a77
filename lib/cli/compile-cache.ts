/**
 * A V8 code cache for the modules the CLI loads (issue 12: a fetch's
 * start-up, `fetch --json` startupPhasesMs.modules). Node 20 compiles every
 * CommonJS module from source at each start and resolves every require()
 * against the file system; most of a fetch's start-up went there. Once
 * installed (main.ts, only when it is the process's main module), this
 * cache
 *
 * - compiles each module with the bytecode V8 produced for the same source
 *   in an earlier run (`vm.Script` `cachedData`), functions that ran then
 *   included, and
 * - answers a require() of a module compiled from the cache with the file
 *   the same require() resolved to then, if that file is still there.
 *
 * One file per command (`fetch`, `serve`, ...), installation (this
 * file's directory) and Node/V8 build, under
 * `$RQCAST_COMPILE_CACHE`, else `$XDG_CACHE_HOME/rqcast`, else
 * `~/.cache/rqcast`; `RQCAST_COMPILE_CACHE=off` turns it off. It holds each
 * module's bytecode, the SHA-1 of its source, the key of its file (inode,
 * size, modification and change times) and its resolutions, after a header
 * that names the Node and V8 versions and carries a CRC-32 of the rest (bodySum). A
 * module is compiled from its entry only when its source now is exactly the
 * source stored (V8's own check compares lengths only): its file has the
 * key stored (a key is stored only for a file changed at least 2 s before
 * the cache was written, so an edit within a coarse file system's clock
 * tick is not missed), or else its source has the SHA-1 stored; an entry V8
 * rejects is compiled from source. A file that is corrupt, truncated, of another Node,
 * or in a directory another user could write is ignored (and replaced when
 * the directory is ours); a directory that cannot be made or written costs
 * nothing but the cache. Written at exit, only when this run compiled
 * something the file lacked, through a temporary file renamed over it (runs
 * at once each write a whole file; the last one stays). Entries of modules
 * this run did not load are kept while their files are as they were (the
 * same key), for 30 days since a run last loaded them. A cache file read
 * is touched once a day; files of the directory (other installations,
 * other Nodes) untouched for 30 days are removed when one is written.
 */
import * as fs from 'fs';
import Module from 'module';
import * as path from 'path';
import * as vm from 'vm';

/** The parts of Node's CommonJS loader (lib/internal/modules/cjs/loader.js) this cache stands in for. */
interface LoadedModule {
  id: string;
  filename: string;
  exports: unknown;
  require(id: string): unknown;
  _compile(content: string, filename: string, format?: string): unknown;
}
interface ModuleStatics {
  prototype: LoadedModule;
  _resolveFilename(request: string, parent: LoadedModule | undefined, isMain: boolean, options?: unknown): string;
  _resolveLookupPaths(request: string, parent: LoadedModule | undefined): string[] | null;
  _cache: Record<string, unknown>;
  _extensions: Record<string, unknown>;
}
const Loader = Module as unknown as ModuleStatics;

const MAGIC = 'rqcast-compile-cache 2\n';
const DAY_MS = 86_400_000;
/** Days an entry no run loaded, or a cache file no run read, is kept. */
const KEEP_DAYS = 30;
/** A file changed this close to a save gets no key (a coarse clock's tick could hide a later edit). */
const RACY_NS = 2_000_000_000n;
/** Node's own wrapper (Module.wrap): a module's lines keep their numbers. */
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) { ';
const WRAP_TAIL = '\n});';

/** One module of a cache file: where its source and bytecode are in the file. */
interface StoredEntry {
  /** Absolute file name, as Node's loader names the module. */
  f: string;
  /** Source: its length in UTF-16 units (a cheap first check) and the SHA-1 (hex) of its UTF-8 bytes. */
  sc: number;
  sh: string;
  /** Its file's key when written (fileKey), or '' (changed too close to the save). */
  k: string;
  /** Day (since the epoch) a run last loaded it. */
  u: number;
  /** Bytecode: byte offset and length. */
  co: number;
  cn: number;
  /** require() request → resolved absolute file name. */
  r: Record<string, string>;
}
interface Header {
  node: string;
  v8: string;
  arch: string;
  /** bodySum of everything after the header: `crc32:HEX`, or a SHA-1 (hex) where Node has no zlib.crc32. */
  sum: string;
  entries: StoredEntry[];
}

/** What a cache did in this process: counted, for tests and for `save`. */
export interface CompileCacheStats {
  /** Why the file was not used, if it was not ('' when it was, or there was none). */
  ignored: string;
  /** Entries in the file read. */
  entries: number;
  /** Modules compiled from a stored entry. */
  hits: number;
  /** Of those, the modules whose source was known the same by their file's key (not hashed). */
  byKey: number;
  /** Modules compiled from source: no entry, or its source differed. */
  misses: number;
  /** Entries V8 refused (their modules compiled from source). */
  rejected: number;
  /** require() calls answered from stored resolutions. */
  resolved: number;
  /** Whether `save` wrote the file, and why not if it did not. */
  written: boolean;
  notWritten: string;
}

interface Compiled {
  script: vm.Script;
  source: string;
}

/**
 * The code cache over one file (`file`; undefined: none, nothing read or
 * written). `install` hooks Node's loader, `save` writes what this run
 * compiled, `uninstall` puts the loader back.
 */
export class CompileCache {
  readonly stats: CompileCacheStats = { ignored: '', entries: 0, hits: 0, byKey: 0, misses: 0, rejected: 0, resolved: 0, written: false, notWritten: '' };
  private blob: Buffer | undefined;
  private readonly stored = new Map<string, StoredEntry>();
  private readonly compiled = new Map<string, Compiled>();
  /** Resolutions seen this run, per parent file. */
  private readonly resolutions = new Map<string, Record<string, string>>();
  /** Files compiled from their stored entry: their stored resolutions hold. */
  private readonly fromCache = new Set<string>();
  private dirty = false;
  private saved: { compile: LoadedModule['_compile']; resolve: ModuleStatics['_resolveFilename'] } | undefined;

  constructor(readonly file: string | undefined) {
    if (file !== undefined) this.read(file);
  }

  private read(file: string): void {
    let fd: number | undefined;
    try {
      const why = unsafeDirectory(path.dirname(file));
      if (why) {
        this.stats.ignored = why;
        return;
      }
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      const st = fs.fstatSync(fd);
      if (!st.isFile() || !ownedSafely(st)) {
        this.stats.ignored = 'not a regular file of ours, or writable by others';
        return;
      }
      // Read, so in use: its time moved on once a day (pruneDirectory removes files untouched for KEEP_DAYS).
      if (Date.now() - st.mtimeMs > DAY_MS) touch(fd, st);
      const blob = Buffer.allocUnsafe(st.size);
      let got = 0;
      while (got < blob.length) {
        const n = fs.readSync(fd, blob, got, blob.length - got, got);
        if (n === 0) break;
        got += n;
      }
      this.stats.ignored = this.parse(blob.subarray(0, got));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      this.stats.ignored = code === 'ENOENT' ? '' : `unreadable (${code ?? String(e)})`;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /** Takes `blob` if it is a whole cache file of this Node; else says why not. */
  private parse(blob: Buffer): string {
    const magic = Buffer.byteLength(MAGIC);
    if (blob.length < magic + 4 || blob.toString('latin1', 0, magic) !== MAGIC) return 'not a cache file';
    const headerLength = blob.readUInt32LE(magic);
    const bodyStart = magic + 4 + headerLength;
    if (bodyStart > blob.length) return 'truncated';
    let header: Header;
    try {
      header = JSON.parse(blob.toString('utf8', magic + 4, bodyStart)) as Header;
    } catch {
      return 'corrupt header';
    }
    if (header.node !== process.version || header.v8 !== process.versions.v8 || header.arch !== process.arch) return 'another Node';
    const body = blob.subarray(bodyStart);
    if (!Array.isArray(header.entries) || bodySum(body) !== header.sum) return 'corrupt';
    for (const e of header.entries) {
      const inside = (o: unknown, n: unknown): boolean => Number.isSafeInteger(o) && Number.isSafeInteger(n) && (o as number) >= 0 && (n as number) >= 0 && (o as number) + (n as number) <= body.length;
      if (typeof e?.f !== 'string' || typeof e.sh !== 'string' || typeof e.k !== 'string' || !inside(e.co, e.cn) || typeof e.r !== 'object' || e.r === null) return 'corrupt entry';
      this.stored.set(e.f, e);
    }
    this.blob = body;
    this.stats.entries = this.stored.size;
    return '';
  }

  /**
   * Hooks Node's loader: modules compiled and requires resolved from here on
   * go through the cache. Not where it would change what Node does: with
   * source maps on (Node maps a module's stack traces as it compiles it),
   * or in a Node whose vm cannot give a script the main context's import().
   */
  install(): this {
    if (this.saved) return this;
    if ((process as { sourceMapsEnabled?: boolean }).sourceMapsEnabled === true || vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER === undefined) {
      this.stats.ignored = 'not installed: source maps on, or an older Node';
      return this;
    }
    const cache = this;
    const proto = Loader.prototype;
    this.saved = { compile: proto._compile, resolve: Loader._resolveFilename };
    const { compile, resolve } = this.saved;
    proto._compile = function (this: LoadedModule, content: string, filename: string, format?: string): unknown {
      // ES modules, and sources V8 will not take inside a function (a #! line), stay Node's.
      if (format === 'module' || content.startsWith('#!')) return compile.call(this, content, filename, format);
      return cache.run(this, content, filename);
    };
    Loader._resolveFilename = function (this: unknown, request: string, parent: LoadedModule | undefined, isMain: boolean, options?: unknown): string {
      // Only requires made by the modules this cache compiled are remembered.
      const from = options === undefined && !isMain && parent !== undefined && cache.compiled.has(parent.filename) ? parent.filename : undefined;
      if (from !== undefined && cache.fromCache.has(from)) {
        const known = storedResolution(cache.stored.get(from), request);
        if (known !== undefined && isFile(known)) {
          cache.stats.resolved++;
          cache.remember(from, request, known);
          return known;
        }
      }
      // eslint-disable-next-line prefer-rest-params
      const found = resolve.apply(this, arguments as unknown as Parameters<typeof resolve>);
      if (from !== undefined && path.isAbsolute(found)) {
        if (storedResolution(cache.stored.get(from), request) !== found) cache.dirty = true;
        cache.remember(from, request, found);
      }
      return found;
    };
    return this;
  }

  /** Puts Node's loader back as it was. */
  uninstall(): void {
    if (!this.saved) return;
    Loader.prototype._compile = this.saved.compile;
    Loader._resolveFilename = this.saved.resolve;
    this.saved = undefined;
  }

  private remember(from: string, request: string, file: string): void {
    let r = this.resolutions.get(from);
    if (!r) this.resolutions.set(from, (r = {}));
    r[request] = file;
  }

  /** Compiles `content` (from its entry when the source is the same) and runs it as Node's loader would. */
  private run(mod: LoadedModule, content: string, filename: string): unknown {
    const entry = this.stored.get(filename);
    const cachedData = entry && this.sameSource(entry, filename, content) ? this.blob?.subarray(entry.co, entry.co + entry.cn) : undefined;
    const script = new vm.Script(WRAP_HEAD + content + WRAP_TAIL, {
      filename,
      cachedData,
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
    if (cachedData === undefined) {
      this.stats.misses++;
      this.dirty = true;
    } else if (script.cachedDataRejected === true) {
      this.stats.rejected++;
      this.dirty = true;
    } else {
      this.stats.hits++;
      this.fromCache.add(filename);
    }
    this.compiled.set(filename, { script, source: content });
    const fn = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    return Reflect.apply(fn, mod.exports, [mod.exports, requireFor(mod), mod, filename, path.dirname(filename)]);
  }

  /**
   * Whether `content` (of `filename`) is exactly the source stored in
   * `entry`: by its file's key, else by its SHA-1. The same source under
   * another key (its file written again with the same text: a rebuild, a
   * reinstall) makes the cache written anew with the key, once the file
   * has settled (RACY_NS), so that later runs do not hash it (and load
   * `crypto`) at every start.
   */
  private sameSource(entry: StoredEntry, filename: string, content: string): boolean {
    if (!this.blob || entry.sc !== content.length) return false;
    // One stat: a stored key belongs to a file settled when it was saved, so it is also this settled key.
    const key = fileKey(filename, BigInt(Date.now()) * 1_000_000n - RACY_NS);
    if (entry.k !== '' && entry.k === key) {
      this.stats.byKey++;
      return true;
    }
    const same = sha1(content) === entry.sh;
    if (same && key !== '') this.dirty = true;
    return same;
  }

  /**
   * Writes the cache file if this run compiled or resolved anything it did
   * not hold; never throws (a cache that cannot be written is no cache).
   */
  save(): boolean {
    if (this.file === undefined) return this.notWritten('no file');
    if (!this.dirty) return this.notWritten('nothing new');
    try {
      const dir = path.dirname(this.file);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const why = unsafeDirectory(dir);
      if (why) return this.notWritten(why);
      const parts: Buffer[] = [];
      let offset = 0;
      const push = (b: Buffer): [number, number] => {
        parts.push(b);
        offset += b.length;
        return [offset - b.length, b.length];
      };
      const entries: StoredEntry[] = [];
      const now = Date.now();
      const today = Math.floor(now / DAY_MS);
      for (const [f, c] of this.compiled) {
        const [co, cn] = push(c.script.createCachedData());
        const stored = this.fromCache.has(f) ? this.stored.get(f) : undefined;
        const sh = stored?.sh ?? sha1(c.source);
        entries.push({ f, sc: c.source.length, sh, k: fileKey(f, BigInt(now) * 1_000_000n - RACY_NS), u: today, co, cn, r: { ...stored?.r, ...this.resolutions.get(f) } });
      }
      // Modules this run did not load (another fetch loaded a logger, say): kept while their files are as they were, for KEEP_DAYS since last loaded.
      for (const [f, e] of this.stored) {
        if (this.compiled.has(f) || !this.blob || !(today - e.u <= KEEP_DAYS) || !unchangedSince(f, e)) continue;
        const [co, cn] = push(this.blob.subarray(e.co, e.co + e.cn));
        entries.push({ ...e, co, cn });
      }
      const body = Buffer.concat(parts, offset);
      const header: Header = { node: process.version, v8: process.versions.v8, arch: process.arch, sum: bodySum(body), entries };
      const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(headerBytes.length);
      const tmp = `${this.file}.${process.pid}.tmp`;
      try {
        fs.writeFileSync(tmp, Buffer.concat([Buffer.from(MAGIC, 'latin1'), length, headerBytes, body]), { mode: 0o600, flag: 'wx' });
        fs.renameSync(tmp, this.file);
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw e;
      }
      this.stats.written = true;
      pruneDirectory(dir, now);
      return true;
    } catch (e) {
      return this.notWritten(`unwritable (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  }

  private notWritten(why: string): false {
    this.stats.notWritten = why;
    return false;
  }
}

/** The require() a module gets from Node's loader (makeRequireFunction in lib/internal/modules/helpers.js). */
function requireFor(mod: LoadedModule): NodeJS.Require {
  const req = ((id: string) => mod.require(id)) as NodeJS.Require;
  const resolveFn = ((request: string, options?: { paths?: string[] }) => Loader._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
  resolveFn.paths = (request: string) => Loader._resolveLookupPaths(request, mod);
  req.resolve = resolveFn;
  req.main = require.main;
  req.extensions = Loader._extensions as NodeJS.Require['extensions'];
  req.cache = Loader._cache as NodeJS.Require['cache'];
  return req;
}

/** What `request` resolved to from `entry`'s module when it was stored (a file name), if it was. */
function storedResolution(entry: StoredEntry | undefined, request: string): string | undefined {
  const r = entry === undefined || !Object.prototype.hasOwnProperty.call(entry.r, request) ? undefined : entry.r[request];
  return typeof r === 'string' && path.isAbsolute(r) ? r : undefined;
}

/**
 * The check of a cache file's body, against a torn or damaged file (it is
 * the user's own, mode 0600: not against an attacker): CRC-32 where Node
 * has zlib.crc32 (20.15 on), so that a start reads its cache without
 * loading crypto (about 10 ms of CPU, issue 12); else SHA-1.
 */
function bodySum(body: Buffer): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { crc32 } = require('zlib') as { crc32?: (data: Uint8Array) => number };
  return crc32 ? `crc32:${crc32(body).toString(16)}` : sha1(body);
}

/** SHA-1 (hex) of `data` (a string as UTF-8). */
function sha1(data: string | Buffer): string {
  // Required here, not at the top: a start whose files have their keys hashes nothing (bodySum).
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('crypto') as typeof import('crypto')).createHash('sha1').update(data).digest('hex');
}

/**
 * `file`'s key: inode, size, modification and change times (ns); '' if it
 * cannot be read or, when `before` (ns since the epoch) is given, it changed
 * later than that. Any write to the file changes its change time.
 */
function fileKey(file: string, before?: bigint): string {
  const st = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  if (st === undefined || (before !== undefined && st.ctimeNs > before)) return '';
  return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function touch(fd: number, st: fs.Stats): void {
  try {
    fs.futimesSync(fd, st.atime, new Date());
  } catch {
    // Not ours to touch: read all the same.
  }
}

/** Removes the cache files in `dir` (and temporary files left by runs killed while writing) untouched for KEEP_DAYS. */
function pruneDirectory(dir: string, now: number): void {
  try {
    for (const name of fs.readdirSync(dir)) {
      if (!/^compile-.*\.bin(\.\d+\.tmp)?$/.test(name)) continue;
      const file = path.join(dir, name);
      const st = fs.lstatSync(file, { throwIfNoEntry: false });
      if (st?.isFile() === true && now - st.mtimeMs > KEEP_DAYS * DAY_MS) fs.rmSync(file, { force: true });
    }
  } catch {
    // Another run removing the same files, or a directory we cannot list: the next save tries again.
  }
}

/**
 * Whether an entry no run loaded lately is worth keeping: its file is
 * there and, if the entry has a key, still has it. A file written again (a
 * rebuild, a reinstall) most likely holds another source; its entry would
 * only be read and checked at every start until a run loads it.
 */
function unchangedSince(file: string, e: StoredEntry): boolean {
  return e.k === '' ? isFile(file) : fileKey(file) === e.k;
}

function isFile(file: string): boolean {
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true;
}

/** Owned by this user and writable by no one else (where the system has users). */
function ownedSafely(st: fs.Stats): boolean {
  return typeof process.getuid !== 'function' || (st.uid === process.getuid() && (st.mode & 0o022) === 0);
}

/** Why `dir` must not hold a cache (another user could write bytecode we would run), or '' if it may. */
function unsafeDirectory(dir: string): string {
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (st === undefined) return 'no directory';
  if (!st.isDirectory()) return 'not a directory';
  if (!ownedSafely(st)) return 'directory not ours, or writable by others';
  return '';
}

/**
 * The cache file of `command` under the directory the environment names
 * (RQCAST_COMPILE_CACHE, XDG_CACHE_HOME/rqcast, HOME/.cache/rqcast); undefined
 * when turned off (RQCAST_COMPILE_CACHE=off) or no directory is named.
 */
export function compileCacheFile(command: string, env: NodeJS.ProcessEnv = process.env, root: string = __dirname): string | undefined {
  const named = env.RQCAST_COMPILE_CACHE;
  if (named === 'off' || named === '0') return undefined;
  const dir = named ? path.resolve(named) : env.XDG_CACHE_HOME ? path.join(path.resolve(env.XDG_CACHE_HOME), 'rqcast') : env.HOME ? path.join(env.HOME, '.cache', 'rqcast') : undefined;
  if (dir === undefined) return undefined;
  const name = /^[a-z]+$/.test(command) ? command : 'other';
  return path.join(dir, `compile-${name}-${fnv1a(root)}-node${process.versions.node}-v8-${process.versions.v8}-${process.arch}.bin`);
}

/** FNV-1a (32 bits, hex) of `text`: one installation's files apart from another's (dist/ and ts-node's lib/, two checkouts). */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** main.ts's one call: the cache of `command`, installed, saved when the process exits. */
export function startCompileCache(command: string): CompileCache | undefined {
  const file = compileCacheFile(command);
  if (file === undefined) return undefined;
  const cache = new CompileCache(file).install();
  process.once('exit', () => {
    cache.uninstall();
    cache.save();
  });
  return cache;
}
