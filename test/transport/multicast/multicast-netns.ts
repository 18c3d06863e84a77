/**
 * A network namespace with a multicast-capable interface, for the tests
 * that join groups. The host's own interfaces are not the tests' to use
 * (and `lo` has MULTICAST off), so each test file makes a namespace
 * holding a veth pair, `mc0` <-> `mc1`, with two addresses of each family
 * on mc0: a sender bound to one of them loops its group packets back to the
 * members on mc0 (IP_MULTICAST_LOOP), and the other address is "another
 * source". The kernel's source filters (SSM) apply to looped packets as to
 * any.
 *
 * A jest worker cannot enter a namespace, so a test body runs in a child
 * process (`ip netns exec NS node -r ts-node/register/transpile-only
 * SCRIPT ...`) that prints one JSON line with what it saw.
 *
 * Names follow test/support/netns.ts ("rqt<pid>-..."), so a run killed
 * before its teardown is cleaned up by the next one (removeStaleNamespaces).
 * Where the kernel or the user cannot make namespaces, probe() says why and
 * the tests skip with that reason printed.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { NsProcess, removeStaleNamespaces } from '../../support/netns';

export const REPO = path.resolve(__dirname, '..', '..', '..');

/** The interface the group is joined on, and its addresses. */
export const MC_IF = 'mc0';
export const SOURCE_V4 = '10.9.0.1';
export const OTHER_V4 = '10.9.0.2';
export const SOURCE_V6 = 'fd00:9::1';
export const OTHER_V6 = 'fd00:9::2';

export interface Probe {
  ok: boolean;
  reason?: string;
}

let sequence = 0;
const live = new Set<string>();
let handlers = false;

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: !r.error && r.status === 0, err: r.error ? String(r.error) : (r.stderr ?? '').trim() };
}

function deleteSync(ns: string): void {
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

let probed: Probe | undefined;

/** Whether namespaces with a veth pair can be made here (else why not). */
export function probe(): Probe {
  if (probed) return probed;
  const ns = `rqt${process.pid}-mcprobe`;
  const steps: [string, string[]][] = [
    ['ip netns add', ['netns', 'add', ns]],
    ['veth', ['-n', ns, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb']],
  ];
  probed = { ok: true };
  for (const [what, args] of steps) {
    const r = ip(args);
    if (!r.ok) {
      probed = { ok: false, reason: `${what} failed: ${r.err}` };
      break;
    }
  }
  deleteSync(ns);
  return probed;
}

export interface ChildResult<T> {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last line of stdout, parsed. */
  result: T;
}

export class MulticastNamespace {
  private destroyed = false;
  private constructor(readonly ns: string) {}

  static create(): MulticastNamespace {
    if (!handlers) {
      handlers = true;
      process.on('exit', () => {
        for (const ns of live) deleteSync(ns);
      });
    }
    removeStaleNamespaces();
    const ns = `rqt${process.pid}-mc${sequence++}`;
    const r = ip(['netns', 'add', ns]);
    if (!r.ok) throw new Error(`ip netns add ${ns}: ${r.err}`);
    live.add(ns);
    const cmds = [
      'link set lo up',
      `link add ${MC_IF} type veth peer name mc1`,
      `link set ${MC_IF} up`,
      'link set mc1 up',
      `addr add ${SOURCE_V4}/24 dev ${MC_IF}`,
      `addr add ${OTHER_V4}/24 dev ${MC_IF}`,
      `addr add ${SOURCE_V6}/64 dev ${MC_IF} nodad`,
      `addr add ${OTHER_V6}/64 dev ${MC_IF} nodad`,
      // Groups joined without an interface go where their route says.
      `route add 224.0.0.0/4 dev ${MC_IF}`,
      `route add ff00::/8 dev ${MC_IF}`,
    ];
    const b = spawnSync('ip', ['-n', ns, '-batch', '-'], { input: cmds.join('\n') + '\n', encoding: 'utf8' });
    if (b.status !== 0) {
      deleteSync(ns);
      live.delete(ns);
      throw new Error(`namespace set-up failed: ${b.stderr}`);
    }
    return new MulticastNamespace(ns);
  }

  /**
   * Runs `script` (a .ts file, by ts-node) in the namespace with `args`;
   * resolves with its last stdout line parsed as JSON. Killed after
   * `timeoutMs`.
   */
  async run<T>(script: string, args: string[], timeoutMs = 60_000): Promise<ChildResult<T>> {
    const p = new NsProcess(
      ['ip', 'netns', 'exec', this.ns, process.execPath, '-r', 'ts-node/register/transpile-only', script, ...args],
      {
        timeoutMs,
        cwd: REPO,
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(REPO, 'tsconfig.test.json') },
      },
    );
    const r = await p.wait();
    const lines = r.stdout.trim().split('\n');
    let result: T;
    try {
      result = JSON.parse(lines[lines.length - 1]) as T;
    } catch {
      throw new Error(`${path.basename(script)} ${args.join(' ')} printed no result (exit ${r.code ?? r.signal}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`);
    }
    return { code: r.code, stdout: r.stdout, stderr: r.stderr, result };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    deleteSync(this.ns);
    live.delete(this.ns);
  }
}
