// `npm run prebuild` (prebuildify --napi --strip) must produce an addon
// that a package without any build/ folder loads and uses: what users get
// from the npm tarball (package.json "files" ships prebuilds/).
//
// Neither step touches the working tree: prebuildify runs `node-gyp
// rebuild`, which wipes build/ in its package directory, so it runs in a
// temporary copy of the package sources (package.json, binding.gyp,
// native/), with node_modules symlinked. A second temporary directory then
// holds only package.json, lib/ and the prebuilds/ that came out, and a
// child node process (ts-node, like the benchmarks) encodes and decodes an
// object through lib/, whose loader (lib/native.ts) calls node-gyp-build on
// the package root. node-gyp-build prefers build/Release and build/Debug
// over prebuilds/, which is why the clean copy must have no build/ at all
// and why the test asserts which file was resolved. Leaving prebuilds/ out
// of the repository keeps a stale prebuild from ever being loaded by the
// other tests (they load build/Release anyway; see the same order).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { copyTree } from './support/copy-tree';

const ROOT = path.resolve(__dirname, '..');

describe('npm run prebuild', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('builds prebuilds/linux-x64 that load from a copy without build/', () => {
    const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-prebuild-pkg-'));
    dirs.push(pkg);
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
    fs.copyFileSync(path.join(ROOT, 'binding.gyp'), path.join(pkg, 'binding.gyp'));
    // Build outputs of the standalone core and the fuzzers are not sources.
    copyTree(path.join(ROOT, 'native'), path.join(pkg, 'native'), new Set(['out', path.join('fuzz', 'build')]));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');

    // prebuildify's node-gyp dev-files cache goes inside the temp copy too.
    const build = spawnSync('npm', ['run', 'prebuild', '--', `--cache=${path.join(pkg, '.cache')}`], {
      cwd: pkg,
      encoding: 'utf8',
      env: { ...process.env, JOBS: String(Math.max(1, Math.min(2, os.cpus().length))) },
      maxBuffer: 64 << 20,
    });
    if (build.status !== 0) {
      throw new Error(`npm run prebuild exited ${build.status}:\n${build.stdout}\n${build.stderr}`.slice(-8000));
    }
    const outDir = path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`);
    const built = fs.readdirSync(outDir).filter((f) => f.endsWith('.node'));
    expect(built.length).toBe(1);
    // --strip: no symbol table left.
    const nm = spawnSync('nm', [path.join(outDir, built[0])], { encoding: 'utf8' });
    if (!nm.error) expect(`${nm.stdout}${nm.stderr}`).toMatch(/no symbols/);

    const clean = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-prebuild-clean-'));
    dirs.push(clean);
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(clean, 'package.json'));
    copyTree(path.join(ROOT, 'lib'), path.join(clean, 'lib'), new Set());
    copyTree(path.join(pkg, 'prebuilds'), path.join(clean, 'prebuilds'), new Set());
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(clean, 'node_modules'), 'dir');
    expect(fs.existsSync(path.join(clean, 'build'))).toBe(false);

    const script = `
      const path = require('path');
      const crypto = require('crypto');
      const resolved = require('node-gyp-build').resolve(process.cwd());
      const { ObjectEncoder, ObjectDecoder } = require('./lib/fec');
      const data = crypto.randomBytes(100_003);
      const enc = new ObjectEncoder(data, { symbolSize: 1024, sourceBlocks: 2 });
      const K = enc.layout.totalSymbols;
      const dec = new ObjectDecoder(enc.oti);
      // Every third source packet lost, replaced by repair packets.
      let done = false;
      for (let sbn = 0; sbn < enc.otiInfo.Z; sbn++) {
        const k = enc.layout.sourceSymbols(sbn);
        for (let esi = 0; esi < k + Math.ceil(k / 3) + 4 && !done; esi++) {
          if (esi < k && esi % 3 === 0) continue;
          done = dec.push(enc.packet(sbn, esi));
        }
      }
      const ok = done && Buffer.from(dec.result()).equals(data);
      process.stdout.write(JSON.stringify({ resolved: path.relative(process.cwd(), resolved), K, ok }));
    `;
    const run = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
      cwd: clean,
      encoding: 'utf8',
      env: {
        ...process.env,
        TS_NODE_SKIP_PROJECT: 'true',
        TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: 'commonjs', moduleResolution: 'node', target: 'es2020' }),
      },
    });
    if (run.status !== 0) throw new Error(`clean copy failed (exit ${run.status}):\n${run.stderr}`);
    const result = JSON.parse(run.stdout) as { resolved: string; K: number; ok: boolean };
    expect(result.resolved.split(path.sep).slice(0, 2)).toEqual(['prebuilds', `${process.platform}-${process.arch}`]);
    expect(result.K).toBeGreaterThan(50);
    expect(result.ok).toBe(true);
  }, 300_000);
});
