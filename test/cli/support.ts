/** Helpers shared by the CLI tests. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../lib/cli/main';
import { type RunningServe, type ServeCliOptions, startServe } from '../../lib/cli/serve';
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

/** What servedFiles serves: read once its beforeAll has run. */
export interface ServedFiles {
  /** The temporary directory (removed after the file's tests); the files are under ROOT/src. */
  readonly root: string;
  readonly serving: RunningServe;
  /** rqcast://127.0.0.1:PORT of the server. */
  readonly base: string;
}

/**
 * `files` (names may hold directories) written under a temporary ROOT/src
 * and served by startServe in this process for the whole test file: started
 * in beforeAll with serveOptions(options(src)), closed and removed in afterAll.
 */
export function servedFiles(prefix: string, files: Record<string, Buffer>, options: (src: string) => Partial<ServeCliOptions>): ServedFiles {
  const s: { root: string; serving?: RunningServe; base: string } = { root: '', base: '' };
  beforeAll(async () => {
    s.root = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    const src = path.join(s.root, 'src');
    for (const [name, data] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(src, name)), { recursive: true });
      await fs.writeFile(path.join(src, name), data);
    }
    s.serving = await startServe([src], serveOptions(options(src)), { stdout: () => undefined, stderr: process.stderr });
    s.base = `rqcast://127.0.0.1:${s.serving.address.port}`;
  }, 60_000);
  afterAll(async () => {
    await s.serving?.close();
    await fs.rm(s.root, { recursive: true, force: true });
  });
  return {
    get root() {
      return s.root;
    },
    get serving() {
      return s.serving as RunningServe;
    },
    get base() {
      return s.base;
    },
  };
}
