/** Helpers shared by the CLI tests. */
import { main } from '../../lib/cli/main';
import type { ServeCliOptions } from '../../lib/cli/serve';
import { DEFAULT_MAX_SESSIONS_PER_ADDRESS } from '../../lib/session/client-manager';

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

/** serve's options as commander gives them with its defaults, on 127.0.0.1, any free port, quiet. */
export function serveOptions(over: Partial<ServeCliOptions> = {}): ServeCliOptions {
  return { port: 0, bind: '127.0.0.1', rate: 200, channel: [], symbolSize: 1280, memory: 64, passOverhead: 15, code: true, maxSessionsPerAddress: DEFAULT_MAX_SESSIONS_PER_ADDRESS, quiet: true, ...over };
}
