/**
 * Finding 12's small things, each as it was seen (issue 13): serve's
 * "closed" log line before EADDRINUSE, `--bind nonsense` exiting 1, ENOENT
 * reported for a nested path on a read-only mount, `-o ''` read as the
 * working directory, serve's --help without exit codes and with
 * "(default: [])". (A missing object's exit 6: one-segment.test.ts and
 * fetch-stderr.test.ts.)
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { RunningServe, registerServeCommand, startServe } from '../../lib/cli/serve';
import { ObjectFileWriter } from '../../lib/client/sinks/file-writer';
import { Catalogue } from '../../lib/content/catalogue';
import { RqcastServer } from '../../lib/server/server';
import { runHere, serveOptions } from './support';

let root: string;
let file: string;
const A = randomBytes(30_000);

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-smalls-'));
  file = path.join(root, 'a.bin');
  await fs.writeFile(file, A);
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('serve', () => {
  test('a server that never started logs no "closed" line, only why (EADDRINUSE); one that ran does', async () => {
    const catalogue = await Catalogue.load([file]);
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', r));
    const logged: string[] = [];
    const logger = { info: (_o: object, m?: string) => logged.push(`info ${m}`), warn() {}, debug() {}, error: (_o: object, m?: string) => logged.push(`error ${m}`) };
    try {
      const never = new RqcastServer({ catalogue, port: taken.address().port, host: '127.0.0.1', logger });
      await expect(never.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
      await never.close();
      expect(logged).toEqual([]);
      const ran = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', logger });
      await ran.listen();
      await ran.close();
      expect(logged).toEqual(['info listening', 'info closed']);
    } finally {
      taken.close();
      catalogue.close();
    }
  });

  test('the rqcast serve command on a taken port: exit 1, one line on stderr saying why, no log lines', async () => {
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', r));
    try {
      const REPO = path.resolve(__dirname, '../..');
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(REPO, 'lib/cli/main.ts'), 'serve', file, '--bind', '127.0.0.1', '--port', String(taken.address().port)], {
        cwd: REPO,
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(REPO, 'tsconfig.json') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(code).toBe(1);
      expect(stderr).toBe(`rqcast serve: bind EADDRINUSE 127.0.0.1:${taken.address().port}\n`);
    } finally {
      taken.close();
    }
  }, 60_000);

  test.each([['nonsense'], ['localhost'], ['192.0.2.77']])('--bind %s is a usage error (exit 2) that names the fix', async (bind) => {
    const r = await runHere(['serve', file, '--bind', bind, '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--bind takes an IP address|is not an address of this host/);
    expect(r.stderr).toMatch(/0\.0\.0\.0 or :: for/);
  });

  test('--bind takes wildcards in any spelling and an address of this host', async () => {
    for (const bind of ['127.0.0.1', '::']) {
      const lines: string[] = [];
      const s = await startServe([file], serveOptions({ bind }), { stdout: (l) => lines.push(l), stderr: process.stderr });
      await s.close();
      expect(lines[0]).toMatch(/^listening on /);
    }
    let out = '';
    const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
    registerServeCommand(program, { stdout: () => undefined, stderr: process.stderr, stopSignal: () => Promise.resolve('test') });
    await program.parseAsync(['node', 'rqcast', 'serve', file, '--bind', '0:0::0', '--port', '0', '--quiet']);
    expect(process.exitCode).toBe(0);
    process.exitCode = undefined;
  });

  test('--help lists the exit codes and shows no "(default: [])"', async () => {
    let out = '';
    const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: () => {} });
    registerServeCommand(program);
    await expect(program.parseAsync(['node', 'rqcast', 'serve', '--help'])).rejects.toBeInstanceOf(CommanderError);
    expect(out).not.toContain('(default: [])');
    expect(out).toMatch(/Exit codes: 0 stopped by SIGINT or SIGTERM, 2 usage/);
    expect(out).toMatch(/1 any other failure/);
  });
});

describe('fetch', () => {
  test("-o '' is a usage error, not the working directory", async () => {
    const r = await runHere(['fetch', 'rqcast://127.0.0.1:9//a.bin', '-o', '']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-o '' names nothing: give a file or a directory \(-o \. for the current directory\)/);
  });

  describe('a nested output path on a read-only mount', () => {
    let ro: string;
    let serving: RunningServe;
    beforeAll(async () => {
      ro = path.join(root, 'ro');
      await fs.mkdir(ro);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]);
      serving = await startServe([file], serveOptions(), { stdout: () => undefined, stderr: process.stderr });
    }, 30_000);
    afterAll(async () => {
      await serving.close();
      execFileSync('umount', [ro]);
    });

    test('the writer reports EROFS, not ENOENT', async () => {
      await expect(ObjectFileWriter.create(path.join(ro, 'sub', 'deeper', 'x.bin'), 10)).rejects.toMatchObject({ code: 'EROFS' });
      // Levels that can be made are made as before.
      const w = await ObjectFileWriter.create(path.join(root, 'rw', 'sub', 'x.bin'), 10);
      await w.abort();
      expect(await fs.readdir(path.join(root, 'rw', 'sub'))).toEqual([]);
    });

    test('fetch says "read-only file system"', async () => {
      const r = await runHere(['fetch', `rqcast://127.0.0.1:${serving.address.port}//a.bin`, '-o', path.join(ro, 'sub', 'a.bin')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/EROFS: read-only file system, mkdir '.*\/ro\/sub'/);
      expect(r.stderr).not.toMatch(/ENOENT/);
    });
  });
});
