/**
 * `rqcast fetch` piped or scripted (finding 10): with stderr not a terminal
 * it still says what happened there: warnings, and a one-line summary at
 * the end; -q drops the summary, never warnings or errors. Run as a child
 * process with stderr piped, as a script or systemd would.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunningServe, startServe } from '../../lib/cli/serve';
import { serveOptions } from './support';

const REPO = path.resolve(__dirname, '../..');
const MAIN = path.join(REPO, 'lib/cli/main.ts');

function rqcast(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', MAIN, ...args], {
    cwd: REPO,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(REPO, 'tsconfig.json') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

let root: string;
let serving: RunningServe;
let base: string;
// One source block of 3 MB: two of them do not fit --memory 1, so the client warns that it raised its budget.
const BIG = randomBytes(3_000_000);

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-stderr-'));
  await fs.writeFile(path.join(root, 'big.bin'), BIG);
  serving = await startServe([path.join(root, 'big.bin')], serveOptions({ rate: 400 }), { stdout: () => undefined, stderr: process.stderr });
  base = `rqcast://127.0.0.1:${serving.address.port}`;
}, 60_000);

afterAll(async () => {
  await serving.close();
  await fs.rm(root, { recursive: true, force: true });
});

test('stderr piped: the warning and the summary line; -q: the warning only; errors always', async () => {
  const [plain, quiet, missing] = await Promise.all([
    rqcast(['fetch', `${base}//big.bin`, '-o', path.join(root, 'plain.bin'), '--memory', '1']),
    rqcast(['fetch', `${base}//big.bin`, '-o', path.join(root, 'quiet.bin'), '--memory', '1', '-q']),
    rqcast(['fetch', `${base}//nothing.bin`, '-o', path.join(root, 'nothing.bin'), '-q']),
  ]);
  expect([plain.code, quiet.code, missing.code]).toEqual([0, 0, 6]);
  expect(plain.stdout + quiet.stdout + missing.stdout).toBe('');
  const warning = /^warning: memory budget raised to [0-9]+ MiB: two source blocks of "big\.bin" must fit$/;
  const summary = /^fetched 1 object, 2\.86 MiB in [0-9.]+ s \([0-9.]+ Mbit\/s\), overhead [0-9.]+%$/;
  const lines = plain.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(warning);
  expect(lines[1]).toMatch(summary);
  const quietLines = quiet.stderr.trimEnd().split('\n');
  expect(quietLines).toHaveLength(1);
  expect(quietLines[0]).toMatch(warning);
  expect(missing.stderr).toMatch(/^rqcast fetch: no joined channel carries an object named "nothing\.bin" \(the server offers channels "main"; objects "big\.bin"/);
  expect((await fs.readFile(path.join(root, 'plain.bin'))).equals(BIG)).toBe(true);
}, 120_000);
