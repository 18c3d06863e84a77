/**
 * ServedPathWatch: what changed under a FILE or DIR argument of `serve`
 * while it is served (docs/PROTOCOL.md §10.2), found by rescanning it every
 * `rescanMs` (a rescan sees what inotify would, also on file systems
 * without it, and needs no limit raised for large trees):
 *
 * - a file is *settled* once its size and mtime have not changed for
 *   `settleMs`; only settled files are reported, so a file still being
 *   written (copied in, downloaded) is never announced half-written;
 * - 'added': a settled, non-empty regular file (or link to one) whose name
 *   is not served yet; 'changed': a served file whose settled size or mtime
 *   differs from what was announced (edited or replaced: the old version
 *   is withdrawn, the new one announced under a new TOI); 'removed': a
 *   served file that is gone (or emptied).
 *
 * Names follow the catalogue's rules (a FILE by its base name, a file
 * under a DIR by its path relative to it); a name the catalogue would
 * refuse is reported once as 'skipped'. The watch does no I/O between
 * scans, and the next scan starts only after `onChanges` has settled.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { isSafeObjectName } from './catalogue';

/** How often a served path is scanned again. */
export const RESCAN_MS = 500;
/** A file must keep its size and mtime this long before it is announced (serve --settle, seconds × 1000). */
export const DEFAULT_SETTLE_MS = 2000;

export interface PathChange {
  kind: 'added' | 'changed' | 'removed' | 'skipped';
  /** The object name (catalogue rules). */
  name: string;
  /** The file, as found under the root. */
  path: string;
  /** For 'skipped': why. */
  reason?: string;
}

export interface ServedPathWatchOptions {
  settleMs?: number;
  rescanMs?: number;
  /** What changed in one scan; the next scan waits for it. */
  onChanges: (changes: PathChange[]) => Promise<void>;
  /** Called with a scan's error (the root vanished, permissions); the watch goes on. */
  onError?: (err: unknown) => void;
  clock?: () => number;
}

interface FileState {
  path: string;
  size: number;
  mtimeMs: number;
  /** When size and mtime were last seen to change. */
  since: number;
}

export class ServedPathWatch {
  private readonly settleMs: number;
  private readonly rescanMs: number;
  private readonly clock: () => number;
  /** Every file seen on the last scan. */
  private readonly seen = new Map<string, FileState>();
  /** Every file served, as announced (size, mtime). */
  private readonly served = new Map<string, { size: number; mtimeMs: number }>();
  private readonly skipped = new Set<string>();
  private timer?: NodeJS.Timeout;
  private closed = false;

  /**
   * `root` is a FILE or DIR argument; `served` the names (with their files)
   * already in the catalogue from it, whose size and mtime are read now:
   * a change from then on is reported.
   */
  constructor(
    readonly root: string,
    private readonly o: ServedPathWatchOptions,
  ) {
    this.settleMs = o.settleMs ?? DEFAULT_SETTLE_MS;
    this.rescanMs = o.rescanMs ?? RESCAN_MS;
    this.clock = o.clock ?? Date.now;
  }

  /** Records what is served now (name → file), then scans every rescanMs. */
  async start(served: ReadonlyMap<string, string>): Promise<void> {
    for (const [name, file] of served) {
      const st = await fsp.stat(file).catch(() => undefined);
      this.served.set(name, { size: st?.size ?? -1, mtimeMs: st?.mtimeMs ?? -1 });
    }
    this.arm();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One scan at `now`: the changes it finds (also what start's timer hands to onChanges). */
  async scan(now = this.clock()): Promise<PathChange[]> {
    const found = await this.list();
    const changes: PathChange[] = [];
    for (const [name, state] of this.seen) if (!found.has(name)) this.seen.delete(name);
    for (const [name, f] of found) {
      const before = this.seen.get(name);
      if (!before || before.size !== f.size || before.mtimeMs !== f.mtimeMs || before.path !== f.path) this.seen.set(name, { ...f, since: now });
    }
    for (const [name, served] of this.served) {
      const s = this.seen.get(name);
      if (!s || s.size === 0) {
        changes.push({ kind: 'removed', name, path: s?.path ?? '' });
        this.served.delete(name);
        continue;
      }
      if (now - s.since < this.settleMs) continue;
      if (s.size !== served.size || s.mtimeMs !== served.mtimeMs) {
        changes.push({ kind: 'changed', name, path: s.path });
        this.served.set(name, { size: s.size, mtimeMs: s.mtimeMs });
      }
    }
    for (const [name, s] of this.seen) {
      if (this.served.has(name) || s.size === 0 || now - s.since < this.settleMs) continue;
      if (!isSafeObjectName(name)) {
        if (!this.skipped.has(name)) changes.push({ kind: 'skipped', name, path: s.path, reason: 'not a relative path of [A-Za-z0-9._~-] segments' });
        this.skipped.add(name);
        continue;
      }
      changes.push({ kind: 'added', name, path: s.path });
      this.served.set(name, { size: s.size, mtimeMs: s.mtimeMs });
    }
    return changes;
  }

  /** Forgets that `name` is served (its add failed): a later scan reports it again. */
  forget(name: string): void {
    this.served.delete(name);
  }

  private arm(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.scan()
        .then((changes) => (changes.length > 0 && !this.closed ? this.o.onChanges(changes) : undefined))
        .catch((err: unknown) => this.o.onError?.(err))
        .finally(() => this.arm());
    }, this.rescanMs);
    this.timer.unref?.();
  }

  /** The regular files under the root now (links to files followed), by name. */
  private async list(): Promise<Map<string, Omit<FileState, 'since'>>> {
    const out = new Map<string, Omit<FileState, 'since'>>();
    const st = await fsp.stat(this.root).catch(() => undefined);
    if (st?.isFile()) {
      out.set(path.basename(this.root), { path: this.root, size: st.size, mtimeMs: st.mtimeMs });
      return out;
    }
    if (!st?.isDirectory()) return out;
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const full = path.join(dir, e.name);
        const name = prefix === '' ? e.name : `${prefix}/${e.name}`;
        if (e.isDirectory()) {
          await walk(full, name);
          continue;
        }
        if (!e.isFile() && !e.isSymbolicLink()) continue;
        const f = await fsp.stat(full).catch(() => undefined);
        if (f?.isFile()) out.set(name, { path: full, size: f.size, mtimeMs: f.mtimeMs });
      }
    };
    await walk(this.root, '');
    return out;
  }
}
