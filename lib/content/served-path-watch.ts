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
 * Each scan walks the root with the catalogue's own function
 * (catalogue.ts servedFiles), so the files a rescan finds are those the
 * first scan would serve: a FILE by its base name; under a DIR, regular
 * files inside it, named by their path relative to it, with links leading
 * out and dotfiles only with `followSymlinks` / `dotfiles`. What the walk
 * skips, and a name the catalogue would refuse (objectNameProblem), is
 * reported once per path as 'skipped', with the catalogue's reason. The
 * watch does no I/O between scans, and the next scan starts only after
 * `onChanges` has settled.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CatalogueError, objectNameProblem, servedFiles, type SkippedFile } from './catalogue';

/** How often a served path is scanned again. */
export const RESCAN_MS = 500;
/** A file must keep its size and mtime this long before it is announced (serve --settle, seconds × 1000). */
export const DEFAULT_SETTLE_MS = 2000;

export interface PathChange {
  kind: 'added' | 'changed' | 'removed' | 'skipped';
  /** The object name (catalogue rules); empty for a path the walk skipped (a dotfile, a link leading out, …). */
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
  /** As serve --follow-symlinks (CatalogueOptions.followSymlinks). */
  followSymlinks?: boolean;
  /** As serve --dotfiles (CatalogueOptions.dotfiles). */
  dotfiles?: boolean;
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
  /** Paths already reported 'skipped' (or skipped by the catalogue's load). */
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

  /**
   * Records what is served now (name → file), then scans every rescanMs.
   * `skipped`: what the catalogue's load skipped (and logged) already, not
   * reported again.
   */
  async start(served: ReadonlyMap<string, string>, skipped: Iterable<SkippedFile> = []): Promise<void> {
    for (const s of skipped) this.skipped.add(s.path);
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
    const { files: found, skipped } = await this.list();
    const changes: PathChange[] = [];
    for (const s of skipped) {
      if (this.skipped.has(s.path)) continue;
      this.skipped.add(s.path);
      changes.push({ kind: 'skipped', name: '', path: s.path, reason: s.reason });
    }
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
      const problem = objectNameProblem(name);
      if (problem !== undefined) {
        if (!this.skipped.has(s.path)) changes.push({ kind: 'skipped', name, path: s.path, reason: `name cannot be served: ${problem}` });
        this.skipped.add(s.path);
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

  /**
   * The files the root serves now, by name, with their size and mtime (a
   * link's target's), and what the walk skipped: catalogue.ts servedFiles,
   * the rules of the first scan. A root that is gone lists nothing (its
   * files are removed); a directory that cannot be listed is skipped.
   */
  private async list(): Promise<{ files: Map<string, Omit<FileState, 'since'>>; skipped: SkippedFile[] }> {
    const files = new Map<string, Omit<FileState, 'since'>>();
    let walked: Awaited<ReturnType<typeof servedFiles>>;
    try {
      walked = await servedFiles(this.root, { followSymlinks: this.o.followSymlinks, dotfiles: this.o.dotfiles, unreadable: 'skip' });
    } catch (e) {
      if (e instanceof CatalogueError) return { files, skipped: [] };
      throw e;
    }
    for (const f of walked.found) {
      const st = await fsp.stat(f.path).catch(() => undefined);
      if (st?.isFile()) files.set(f.name, { path: f.path, size: st.size, mtimeMs: st.mtimeMs });
    }
    return { files, skipped: walked.skipped };
  }
}
