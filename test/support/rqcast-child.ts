// The rqcast CLI of this tree as a child process (ts-node, transpile only),
// for the tests that run it as a user would: spawned, its output collected.
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';

export const REPO = path.resolve(__dirname, '../..');
const MAIN = path.join(REPO, 'lib/cli/main.ts');
const ENV = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(REPO, 'tsconfig.json') };

/** `rqcast ARGS...` from this tree's sources; stdout and stderr piped, stdin piped or ignored. */
export function rqcastChild(args: string[], stdin: 'pipe' | 'ignore' = 'ignore'): ChildProcess {
  return spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', MAIN, ...args], { cwd: REPO, env: ENV, stdio: [stdin, 'pipe', 'pipe'] });
}

/** Resolves once `child` has closed, with its exit code and all it wrote. */
export function finished(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
