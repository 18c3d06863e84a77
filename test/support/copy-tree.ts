// Copies of the repository for the prebuild tests (test/prebuild.test.ts,
// test/prebuild-install.test.ts), which build and pack outside this tree.
import * as fs from 'fs';
import * as path from 'path';

/** Copies `from` into `to` recursively (regular files and directories), skipping the paths in `skip` (relative to `from`). */
export function copyTree(from: string, to: string, skip: ReadonlySet<string>, rel = ''): void {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const r = path.join(rel, entry.name);
    if (skip.has(r)) continue;
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst, skip, r);
    else if (entry.isFile()) fs.copyFileSync(src, dst);
  }
}
