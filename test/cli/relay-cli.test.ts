/**
 * `rqcast relay`'s refusals (lib/cli/relay.ts): what is a usage error
 * (exit 2), with a message that names the fix, before anything is sent.
 * The relay at work is test/e2e/relay.test.ts.
 */
import { PassThrough } from 'node:stream';
import { runRelay, type RelayCliOptions } from '../../lib/cli/relay';
import { EXIT_USAGE } from '../../lib/cli/exit-codes';

const base: RelayCliOptions = { port: 0, bind: '127.0.0.1', rate: 10, mode: 'regenerate' };

async function run(upstream: string, opts: Partial<RelayCliOptions>): Promise<{ code: number; stderr: string }> {
  const err = new PassThrough();
  let stderr = '';
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runRelay(upstream, { ...base, ...opts }, { stdout: () => {}, stderr: err, stopSignal: () => new Promise<string>(() => {}) });
  return { code, stderr };
}

describe('rqcast relay refusals', () => {
  test('--mode forward: not built, exit 2, says to use regenerate', async () => {
    const r = await run('rqcast://127.0.0.1:9', { mode: 'forward' });
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toMatch(/--mode forward is not built yet.*--mode regenerate/);
  });
  test('an upstream that is not an rqcast:// URL: exit 2', async () => {
    const r = await run('http://127.0.0.1:9', {});
    expect(r.code).toBe(EXIT_USAGE);
  });
  test('--server-index without --servers: exit 2, names --servers', async () => {
    const r = await run('rqcast://127.0.0.1:9', { serverIndex: 1 });
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toMatch(/needs --servers N/);
  });
});
