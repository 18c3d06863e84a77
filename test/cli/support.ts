/** Helpers shared by the CLI tests. */
import { main } from '../../lib/cli/main';

/**
 * Runs `rqcast ...` in this process (fast: no ts-node start-up); returns
 * the exit code and what went to stderr.
 */
export async function runHere(args: string[]): Promise<{ code: number; stderr: string }> {
  const saved = process.exitCode;
  let stderr = '';
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    process.exitCode = undefined;
    await main(['node', 'rqcast', ...args]);
    return { code: Number(process.exitCode ?? 0), stderr };
  } finally {
    spy.mockRestore();
    process.exitCode = saved;
  }
}
