/**
 * `rqcast relay`'s refusals (lib/cli/relay.ts): what is a usage error
 * (exit 2), with a message that names the fix, before anything is sent.
 * The relay at work is test/e2e/relay.test.ts (regenerate) and
 * test/relay/forward.test.ts (forward); here, that --mode auto picks
 * forward for a live channel.
 */
import { PassThrough } from 'node:stream';
import { runRelay, type RelayCliOptions } from '../../lib/cli/relay';
import { EXIT_USAGE } from '../../lib/cli/exit-codes';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Catalogue } from '../../lib/content/catalogue';
import { LiveSource } from '../../lib/content/live-source';
import { RqcastServer } from '../../lib/server/server';

const base: RelayCliOptions = { port: 0, bind: '127.0.0.1', rate: 10, mode: 'regenerate' };

async function run(upstream: string, opts: Partial<RelayCliOptions>): Promise<{ code: number; stderr: string }> {
  const err = new PassThrough();
  let stderr = '';
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runRelay(upstream, { ...base, ...opts }, { stdout: () => {}, stderr: err, stopSignal: () => new Promise<string>(() => {}) });
  return { code, stderr };
}

describe('rqcast relay: the mode auto picks, and refusals', () => {
  test('--mode auto (the default) relays a live channel in forward mode: the listening line says so', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rqcast-relay-cli-'));
    const input = new PassThrough();
    const source = new LiveSource({ name: 'cam', dir: path.join(dir, 'live'), blockBytes: 16 * 1024, blockMs: 100 });
    await source.start(input);
    const catalogue = await Catalogue.load([mkdtempSync(path.join(dir, 'none-'))]);
    const origin = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', rateMbps: 10, live: [{ name: 'cam', source }] });
    let stop: (s: string) => void = () => undefined;
    const lines: string[] = [];
    try {
      const o = await origin.listen();
      input.write(randomBytes(20_000));
      const listening = new Promise<void>((resolve) => {
        const code = runRelay(`rqcast://127.0.0.1:${o.port}/cam`, { ...base, mode: 'auto', json: true, quiet: true }, {
          stdout: (l) => {
            lines.push(l);
            resolve();
          },
          stderr: new PassThrough(),
          stopSignal: () => new Promise<string>((r) => (stop = r)),
        });
        void code.then((c) => lines.push(`exit ${c}`)).finally(resolve);
      });
      await listening;
      const first = JSON.parse(lines[0]) as { mode: string; channels: { name: string }[] };
      expect(first.mode).toBe('forward');
      expect(first.channels.map((c) => c.name)).toEqual(['cam']);
    } finally {
      stop('SIGTERM');
      input.end();
      await origin.close();
      catalogue.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
  test('--mode forward with --server-index/--servers: exit 2 (its ESIs are the upstream\'s), names the fix', async () => {
    const r = await run('rqcast://127.0.0.1:9', { mode: 'forward', serverIndex: 1, servers: 2 });
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toMatch(/forward relay sends its upstream's symbols.*leave out --server-index\/--servers, or use --mode regenerate/);
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
