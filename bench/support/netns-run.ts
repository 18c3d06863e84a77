// Running measured processes in the benchmarks' network namespaces.
import { NsProcess } from '../../test/support/netns';
import { childPids } from './measure';

/**
 * Stops the command that GNU time (the process `p`, as `ip netns exec`
 * execs it) runs, so that time writes its report; SIGKILL after 10 s.
 */
export async function stopTimed(p: NsProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p.running || p.pid === undefined) return;
  for (const c of childPids(p.pid)) {
    try {
      process.kill(c, signal);
    } catch {
      // gone
    }
  }
  const killer = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await p.wait();
  clearTimeout(killer);
}
