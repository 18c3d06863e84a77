/**
 * serve's watch of what it serves (unless --no-watch): every FILE and DIR
 * is rescanned (lib/content/served-path-watch.ts), and each settled change
 * is applied to the catalogue and to the server's channels
 * (lib/server/channel-content.ts, docs/PROTOCOL.md §10.2).
 */
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { Catalogue, CatalogueObject } from '../content/catalogue';
import { type PathChange, ServedPathWatch } from '../content/served-path-watch';
import { DEFAULT_CHANNEL } from '../server/config';
import type { RqcastServer } from '../server/server';
import { type ServeCliOptions, within } from './serve-options';

/**
 * Watches every FILE and DIR served (lib/content/served-path-watch.ts): a
 * settled new file is added to the catalogue and announced on channel main
 * (unless a --channel is named main) and on every --channel whose paths
 * cover it; a removed one is taken off; a changed one is taken off and
 * announced again under a new TOI (docs/PROTOCOL.md §10.2).
 */
export async function watchServedPaths(paths: readonly string[], opts: ServeCliOptions, catalogue: Catalogue, server: RqcastServer, log: Logger): Promise<ServedPathWatch[]> {
  const channelsFor = (file: string): string[] => {
    const specs = opts.channel ?? [];
    const names = specs.some((c) => c.name === DEFAULT_CHANNEL) ? [] : [DEFAULT_CHANNEL];
    for (const c of specs) if (c.paths.some((p) => within(path.resolve(file), path.resolve(p)))) names.push(c.name);
    return names;
  };
  const watches: ServedPathWatch[] = [];
  for (const root of paths) {
    const watch: ServedPathWatch = new ServedPathWatch(root, {
      settleMs: opts.settle,
      // The rules of the catalogue's first scan (catalogue.ts servedFiles).
      followSymlinks: opts.followSymlinks,
      dotfiles: opts.dotfiles,
      onChanges: (changes) => applyChanges(changes),
      onError: (err) => log.warn({ root, reason: err instanceof Error ? err.message : String(err) }, 'served path not scanned'),
    });
    const applyChanges = async (changes: PathChange[]): Promise<void> => {
      for (const c of changes) {
        if (c.kind === 'skipped') {
          log.warn({ path: c.path, reason: c.reason }, 'file skipped');
          continue;
        }
        const old: CatalogueObject | undefined = c.kind === 'added' ? undefined : catalogue.get(c.name);
        if (old) catalogue.remove(old);
        if (c.kind === 'removed') {
          if (old) server.removeObject(old, 'file removed');
          continue;
        }
        try {
          const next = await catalogue.addFile(c.path, c.name);
          // A changed file: the old version goes and the new one comes in one FDT instance.
          if (old) server.replaceObject(old, next, channelsFor(c.path));
          else server.addObject(next, channelsFor(c.path));
        } catch (e) {
          if (old) server.removeObject(old, 'file changed');
          // Changed again while read, or a name another path took: tried again at a later scan.
          watch.forget(c.name);
          log.warn({ path: c.path, reason: e instanceof Error ? e.message : String(e) }, 'file not added');
        }
      }
    };
    const served = new Map<string, string>();
    for (const o of catalogue.objectsUnder(root)) served.set(o.name, o.path);
    await watch.start(served, catalogue.skipped);
    watches.push(watch);
  }
  return watches;
}
