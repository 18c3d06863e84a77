/**
 * A temporary directory of random files and the catalogue that serves them:
 * the set-up of the tests that run a real RqcastServer over loopback.
 *
 *   const src = await RandomFiles.create('rqcast-e2e-', { 'a.bin': 10_000 });
 *   new RqcastServer({ catalogue: src.catalogue, ... });
 *   expect(got.equals(src.files['a.bin'])).toBe(true);
 *   await src.close(); // closes the encoders, removes the directory
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Catalogue } from '../../lib/content/catalogue';

export class RandomFiles {
  private constructor(
    /** The temporary directory: `src/` holds the files; outDir() makes siblings. */
    readonly root: string,
    /** The served directory. */
    readonly src: string,
    /** Each file's bytes, by name. */
    readonly files: Record<string, Buffer>,
    readonly catalogue: Catalogue,
  ) {}

  /** Writes one file of random bytes per entry of `sizes` under a new temporary directory, and loads the catalogue of them. */
  static async create(prefix: string, sizes: Record<string, number>): Promise<RandomFiles> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    const src = path.join(root, 'src');
    await fs.mkdir(src);
    const files: Record<string, Buffer> = {};
    for (const [name, size] of Object.entries(sizes)) {
      files[name] = randomBytes(size);
      await fs.writeFile(path.join(src, name), files[name]);
    }
    return new RandomFiles(root, src, files, await Catalogue.load([src]));
  }

  /** A new empty directory under root, e.g. a fetch's output directory. */
  outDir(prefix = 'out-'): Promise<string> {
    return fs.mkdtemp(path.join(this.root, prefix));
  }

  async close(): Promise<void> {
    for (const o of this.catalogue.objects) o.encoder.close();
    await fs.rm(this.root, { recursive: true, force: true });
  }
}
