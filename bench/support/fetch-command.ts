// How the end-to-end benches run `rqcast fetch`: as users do, through the
// `rqcast` launcher (bin/rqcast, docs/ARCHITECTURE.md "The launcher") in
// front of this tree's transpiled lib/ (test/e2e/helpers.ts transpiledRoot),
// so that Node starts without NODE_EXTRA_CA_CERTS's bundle where the
// environment sets one. Node options (--fetch-node-args: profiling) go in
// NODE_OPTIONS; an option Node refuses there (--cpu-prof) makes the fetches
// run as `node OPTIONS main.js` instead, without the launcher, and says so.
import { spawnSync } from 'child_process';
import { rqcastArgv, rqcastCommandArgv } from '../../test/e2e/helpers';

export interface FetchCommand {
  /** argv of `rqcast fetch ARGS`. */
  argv(...args: string[]): string[];
  /** The environment to run it with. */
  env: NodeJS.ProcessEnv;
  /** Through the launcher (false: node with the options, then main.js). */
  launcher: boolean;
  /** Why not through the launcher, when it is not. */
  why?: string;
}

/** Whether Node takes `nodeArgs` in NODE_OPTIONS ('' if so, else what it says). */
function refusedInNodeOptions(nodeArgs: string[]): string {
  const r = spawnSync(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS: nodeArgs.join(' ') }, encoding: 'utf8' });
  return r.status === 0 ? '' : r.stderr.trim() || `exit ${r.status}`;
}

/** `rqcast fetch` with `nodeArgs` (node options of each fetch; none: Node's defaults). */
export function fetchCommand(nodeArgs: string[] = []): FetchCommand {
  const refused = nodeArgs.length > 0 ? refusedInNodeOptions(nodeArgs) : '';
  if (refused !== '') {
    return {
      argv: (...args) => {
        const [node, main, ...rest] = rqcastArgv('fetch', ...args);
        return [node, ...nodeArgs, main, ...rest];
      },
      env: process.env,
      launcher: false,
      why: refused,
    };
  }
  return {
    argv: (...args) => rqcastCommandArgv('fetch', ...args),
    env: nodeArgs.length > 0 ? { ...process.env, NODE_OPTIONS: nodeArgs.join(' ') } : process.env,
    launcher: true,
  };
}
