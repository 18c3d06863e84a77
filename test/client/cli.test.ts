/**
 * The `rqcast` command end to end: `rqcast serve` and `rqcast fetch` as
 * child processes (ts-node, as a user would run them from a checkout), exit
 * codes per docs/PROTOCOL.md: 0 ok, 2 usage, 3 refused, 4 timeout, 5 digest
 * mismatch.
 */
import { ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import * as dgram from 'dgram';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildProgram } from '../../lib/cli/main';
import { runHere } from '../cli/support';
import { FakeServer } from './fake-server';
import { finished, rqcastChild } from '../support/rqcast-child';


interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return finished(rqcastChild(args));
}

let root: string;
let src: string;
let serveProcess: ChildProcess | undefined;
let port = 0;
const silent = dgram.createSocket('udp4');
let fake: FakeServer | undefined;
const A = randomBytes(50_000);
const B = Buffer.from('b');

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-cli-'));
  src = path.join(root, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'a.bin'), A);
  await fs.writeFile(path.join(src, 'b.txt'), B);
  serveProcess = rqcastChild(['serve', src, '--port', '0', '--bind', '127.0.0.1', '--rate', '200', '--quiet']);
  port = await new Promise<number>((resolve, reject) => {
    let out = '';
    serveProcess?.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on [^\n]*:(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    serveProcess?.on('exit', (code) => reject(new Error(`rqcast serve exited with ${code}`)));
  });
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
}, 60_000);

afterAll(async () => {
  const p = serveProcess;
  if (p && p.exitCode === null) {
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }
  silent.close();
  await fake?.close();
  await fs.rm(root, { recursive: true, force: true });
});

async function outDir(): Promise<string> {
  return fs.mkdtemp(path.join(root, 'out-'));
}

describe('rqcast (child processes)', () => {
  test('fetch: exit 0 with files and a JSON summary; exit 3 when refused; exit 4 on timeout', async () => {
    const [dirAll, dirRefused, dirTimeout] = await Promise.all([outDir(), outDir(), outDir()]);
    const [all, refused, timeout] = await Promise.all([
      run(['fetch', `rqcast://127.0.0.1:${port}`, '-o', dirAll, '--json']),
      run(['fetch', `rqcast://127.0.0.1:${port}/nosuch/`, '-o', dirRefused]),
      run(['fetch', `rqcast://127.0.0.1:${silent.address().port}`, '-o', dirTimeout, '--timeout', '1s']),
    ]);

    expect(all.stderr).toBe('');
    expect(all.code).toBe(0);
    expect((await fs.readFile(path.join(dirAll, 'a.bin'))).equals(A)).toBe(true);
    expect((await fs.readFile(path.join(dirAll, 'b.txt'))).equals(B)).toBe(true);
    const lines = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; [k: string]: unknown });
    const summary = lines[lines.length - 1];
    expect(summary.type).toBe('summary');
    expect(summary.bytes).toBe(A.length + 1);
    expect(lines.filter((l) => l.type === 'object')).toHaveLength(2);
    for (const key of ['seconds', 'packetsReceived', 'symbolsUsed', 'overhead', 'replacements']) expect(typeof summary[key]).toBe('number');

    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/refused.*unknown channel nosuch/);
    expect(await fs.readdir(dirRefused)).toEqual([]);

    expect(timeout.code).toBe(4);
    expect(timeout.stderr).toMatch(/no answer to HELLO/);
    expect(await fs.readdir(dirTimeout)).toEqual([]);
  });
});

describe('rqcast fetch (in process)', () => {
  test('one object into a file, under 10% loss, ACK mode: exit 0, off a terminal only the summary line (none with -q)', async () => {
    const dir = await outDir();
    const file = path.join(dir, 'copy.bin');
    const r = await runHere(['fetch', `rqcast://127.0.0.1:${port}//a.bin`, '-o', file, '--loss', '10', '--ack', '--ttl', '5s']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^fetched 1 object, 48\.8 KiB in [0-9.]+ s \([0-9.]+ Mbit\/s\), overhead [0-9.]+%(, [0-9]+ replacements)?\n$/);
    expect((await fs.readFile(file)).equals(A)).toBe(true);
    const quiet = await runHere(['fetch', `rqcast://127.0.0.1:${port}//a.bin`, '-o', file, '-q']);
    expect(quiet).toEqual({ code: 0, stderr: '' });
    expect((await fs.readFile(file)).equals(A)).toBe(true);
    expect(await fs.readdir(dir)).toEqual(['copy.bin']);
  });

  test('exit 5 on a digest mismatch, 2 on usage errors; no files left', async () => {
    fake = new FakeServer({ objects: [{ name: 'x.bin', data: A, sha256: Buffer.alloc(32, 9) }] });
    const fakePort = await fake.listen();
    const dir = await outDir();
    const digest = await runHere(['fetch', `rqcast://127.0.0.1:${fakePort}`, '-o', dir]);
    expect(digest.code).toBe(5);
    expect(digest.stderr).toMatch(/SHA-256/);
    expect(await fs.readdir(dir)).toEqual([]);
    for (const args of [
      ['fetch', 'http://example.org/'],
      ['fetch', 'rqcast://[::1'],
      ['fetch', `rqcast://127.0.0.1:${port}`, '--loss', '150'],
      ['fetch', `rqcast://127.0.0.1:${port}`, '--ttl', 'soon'],
      ['fetch', `rqcast://127.0.0.1:${port}`, '--memory', '0'],
      ['fetch', `rqcast://127.0.0.1:${port}`, '--memory', '1.5'],
      ['fetch', `rqcast://127.0.0.1:${port}`, '--ttl', '5s', '--until', '2030-01-01T00:00:00Z'],
      ['fetch', `rqcast://127.0.0.1:${port}`, '--until', '2001-01-01T00:00:00Z'],
      ['fetch'],
      ['fetch', 'rqcast://h:1', '--bogus'],
    ]) {
      const r = await runHere(args);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
    }
  });

  test('--help: both commands, every fetch option', () => {
    const program = buildProgram();
    const top = program.helpInformation();
    expect(top).toMatch(/serve/);
    expect(top).toMatch(/fetch/);
    const fetch = program.commands.find((c) => c.name() === 'fetch');
    const text = fetch?.helpInformation() ?? '';
    for (const opt of ['--output', '--ttl', '--until', '--ack', '--timeout', '--json', '--quiet', '--loss', '--memory']) expect(text).toContain(opt);
  });
});
