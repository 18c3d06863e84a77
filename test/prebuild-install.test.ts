// What a user of the npm tarball gets, on a machine with no compiler:
//
// 1. `npm pack` of a copy of the package that holds a prebuild for this
//    machine (prebuilds/linux-<arch>/rqcast.<libc>.node, the name
//    `prebuildify --napi --tag-libc` gives it: the tree's own prebuild when
//    it has one, as in CI, else the addon this tree built stands in for it;
//    test/prebuild.test.ts shows that prebuildify makes one that loads)
//    puts the prebuild, dist/ and the bin in the tarball, and no build/;
// 2. `npm install` of that tarball into an empty project, with a PATH that
//    holds node, npm and sh and nothing else (no cc, gcc, g++, make,
//    python3), succeeds: its install script (node-gyp-build) finds the
//    prebuild instead of compiling; node-gyp-build resolves the prebuild;
// 3. the installed `rqcast` bin serves a file and fetches it over loopback,
//    bit-exact, and the server exits 0 on SIGTERM.
//
// Dependencies come from the local npm cache when it has them
// (--prefer-offline), else from the registry.
//
// Also here: .github/workflows/prebuild.yml parses (js-yaml) and says what
// it must: the four targets, prebuildify with --napi --tag-libc, the suite
// run against the prebuild with build/ removed, an install on images
// without a compiler, and the release upload.
import { spawn, spawnSync } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { copyTree } from './support/copy-tree';

const ROOT = path.resolve(__dirname, '..');
const WORKFLOW = path.join(ROOT, '.github', 'workflows', 'prebuild.yml');

/** The real path of `cmd` on this process's PATH. */
function which(cmd: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.realpathSync(p);
    } catch {
      // not here
    }
  }
  throw new Error(`${cmd} is not on PATH`);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The C library tag node-gyp-build looks for (it takes Alpine for musl). */
const LIBC = process.env.LIBC ?? (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc');
const TARGET = `${process.platform}-${process.arch}`;
const PREBUILD = `rqcast.${LIBC}.node`;
/** The addon to ship as this machine's prebuild. */
const ADDON = [path.join(ROOT, 'prebuilds', TARGET, PREBUILD), path.join(ROOT, 'build', 'Release', 'rqcast.node')].find((f) => fs.existsSync(f));
const canRun = process.platform === 'linux' && ADDON !== undefined;

describe('the npm tarball with a prebuild, installed where there is no compiler', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  (canRun ? test : test.skip)('packs with the prebuild, installs without compiling, and its rqcast bin serves and fetches a file', async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-tarball-'));
    dirs.push(work);

    // 1. The package, as `npm pack` sees it, with a prebuild.
    const pkg = path.join(work, 'pkg');
    fs.mkdirSync(pkg);
    for (const f of ['package.json', 'binding.gyp', 'tsconfig.json']) fs.copyFileSync(path.join(ROOT, f), path.join(pkg, f));
    copyTree(path.join(ROOT, 'lib'), path.join(pkg, 'lib'), new Set());
    copyTree(path.join(ROOT, 'tools'), path.join(pkg, 'tools'), new Set());
    copyTree(path.join(ROOT, 'bin'), path.join(pkg, 'bin'), new Set());
    copyTree(path.join(ROOT, 'native'), path.join(pkg, 'native'), new Set(['out', path.join('fuzz', 'build')]));
    fs.mkdirSync(path.join(pkg, 'prebuilds', TARGET), { recursive: true });
    fs.copyFileSync(ADDON as string, path.join(pkg, 'prebuilds', TARGET, PREBUILD));
    // `prepare` (tsc, for dist/) runs at pack time with the tree's dev dependencies.
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
    const pack = spawnSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: pkg, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (pack.status !== 0) throw new Error(`npm pack exited ${pack.status}:\n${pack.stderr}`.slice(-4000));
    const packed = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    const files = packed[0].files.map((f) => f.path);
    expect(files).toContain(`prebuilds/${TARGET}/${PREBUILD}`);
    expect(files).toContain('bin/rqcast');
    expect(files).toContain('dist/cli/main.js');
    expect(files).toContain('dist/index.js');
    expect(files.some((f) => f.startsWith('build/'))).toBe(false);
    expect(files.some((f) => f.startsWith('test/'))).toBe(false);
    const tarball = path.join(work, packed[0].filename);

    // 2. A PATH with node, npm and sh only.
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    for (const cmd of ['node', 'npm', 'sh']) fs.symlinkSync(which(cmd), path.join(bin, cmd));
    for (const tool of ['cc', 'gcc', 'g++', 'c++', 'clang', 'make', 'python3', 'python']) expect(fs.existsSync(path.join(bin, tool))).toBe(false);
    const env = { HOME: process.env.HOME ?? os.homedir(), PATH: bin, npm_config_cache: spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).stdout.trim() };
    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    // npm >= 11 runs a dependency's install script only when the project allows it.
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, allowScripts: { rqcast: true } }));
    const install = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], { cwd: app, env, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (install.status !== 0) throw new Error(`npm install exited ${install.status}:\n${install.stdout}\n${install.stderr}`.slice(-6000));
    // The install script ran, and found the prebuild (a compile would have failed on this PATH).
    expect(install.stdout).toMatch(/rqcast@[^\n]* install\n> node-gyp-build/);
    const resolved = spawnSync('node', ['-e', 'process.stdout.write(require("node-gyp-build").resolve("node_modules/rqcast"))'], { cwd: app, env, encoding: 'utf8' });
    expect(resolved.stdout).toBe(path.join(fs.realpathSync(app), 'node_modules', 'rqcast', 'prebuilds', TARGET, PREBUILD));
    expect(fs.existsSync(path.join(app, 'node_modules', 'rqcast', 'build'))).toBe(false);

    // 3. A transfer with the installed bin.
    const rqcast = path.join(app, 'node_modules', '.bin', 'rqcast');
    const data = randomBytes(500_000);
    fs.writeFileSync(path.join(app, 'object.bin'), data);
    const server = spawn(rqcast, ['serve', 'object.bin', '--bind', '127.0.0.1', '--port', '0', '--quiet'], { cwd: app, env });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        server.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        server.on('exit', (code) => reject(new Error(`serve exited ${code} before listening`)));
      });
      const fetch = spawnSync(rqcast, ['fetch', `rqcast://127.0.0.1:${port}`, '-o', 'out/', '--quiet', '--timeout', '30s'], { cwd: app, env, encoding: 'utf8', timeout: 60_000 });
      expect(fetch.stderr).toBe('');
      expect(fetch.status).toBe(0);
      expect(sha(fs.readFileSync(path.join(app, 'out', 'object.bin')))).toBe(sha(data));
      const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
      server.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
    }
  }, 300_000);
});

describe('.github/workflows/prebuild.yml', () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const yaml = require('js-yaml') as { load(text: string): unknown };
  type Step = { uses?: string; run?: string; with?: Record<string, unknown> };
  type Job = { needs?: string | string[]; if?: string; 'runs-on': string; strategy?: { matrix: { include: Record<string, string>[] } }; steps: Step[]; permissions?: Record<string, string> };
  const wf = yaml.load(fs.readFileSync(WORKFLOW, 'utf8')) as { on: Record<string, unknown>; jobs: Record<string, Job> };

  test('parses; runs on tags v*, pull requests touching the native code, and by hand', () => {
    expect(Object.keys(wf.jobs)).toEqual(['prebuild', 'pack', 'install', 'release']);
    expect((wf.on.push as { tags: string[] }).tags).toEqual(['v*']);
    expect(wf.on).toHaveProperty('workflow_dispatch');
  });

  test('prebuild: linux x64 and arm64, glibc and musl, each on a runner of its CPU; prebuildify --napi --strip --tag-libc; the suite against the prebuild with build/ removed', () => {
    const job = wf.jobs.prebuild;
    const targets = job.strategy!.matrix.include.map((t) => `${t.arch}-${t.libc}`).sort();
    expect(targets).toEqual(['arm64-glibc', 'arm64-musl', 'x64-glibc', 'x64-musl']);
    for (const t of job.strategy!.matrix.include) {
      expect(t.runner).toBe(t.arch === 'arm64' ? 'ubuntu-24.04-arm' : 'ubuntu-24.04');
      expect(t.image).toBe(t.libc === 'musl' ? 'node:20-alpine' : 'node:20-bullseye');
    }
    const run = job.steps.map((s) => s.run ?? '').join('\n');
    expect(run).toMatch(/npx prebuildify --napi --strip --tag-libc/);
    const order = ['npx prebuildify', 'rm -rf build', 'node-gyp-build', 'npm test'].map((s) => run.indexOf(s));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(job.steps.some((s) => s.uses?.startsWith('actions/upload-artifact@') && s.with?.path === 'prebuilds/')).toBe(true);
  });

  test('pack checks the four prebuilds are in the tarball; install runs on images without a compiler; release attaches the tarball and the prebuilds', () => {
    const pack = wf.jobs.pack.steps.map((s) => s.run ?? '').join('\n');
    expect(pack).toMatch(/npm pack/);
    expect(pack).toMatch(/grep -x 4/);
    const install = wf.jobs.install;
    expect(install.needs).toBe('pack');
    expect(install.strategy!.matrix.include.map((t) => t.image).sort()).toEqual(['node:20-alpine', 'node:20-alpine', 'node:20-bookworm-slim', 'node:20-bookworm-slim']);
    const script = install.steps.map((s) => s.run ?? '').join('\n');
    expect(script).toMatch(/for tool in cc gcc g\+\+ make python3/);
    expect(script).toMatch(/rqcast serve object\.bin/);
    expect(script).toMatch(/rqcast fetch rqcast:\/\/127\.0\.0\.1:4433/);
    expect(script).toMatch(/cmp object\.bin out\/object\.bin/);
    const release = wf.jobs.release;
    expect(release.needs).toEqual(['pack', 'install']);
    expect(release.permissions).toEqual({ contents: 'write' });
    expect(release.steps.map((s) => s.run ?? '').join('\n')).toMatch(/gh release upload "\$TAG" .*rqcast-\*\.tgz prebuilds-linux\.tar\.gz/);
  });

  test('package.json ships prebuilds/ and the install script is node-gyp-build', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[]; scripts: Record<string, string> };
    expect(pkg.files).toContain('prebuilds/');
    expect(pkg.scripts.install).toBe('node-gyp-build');
  });
});
