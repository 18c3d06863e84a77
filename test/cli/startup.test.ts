// What `rqcast fetch` loads before it sends its first HELLO (fetch --json
// startupMs is mostly module loading): main registers only the command it
// runs, a fetch without --log-level or a terminal's bar loads neither
// pino nor cli-progress, and one over unicast none of the TCP, multicast,
// playout or flute:// modules (each loaded when first used), nor node:crypto. Counted in a fresh process of the transpiled CLI
// (test/e2e/helpers.ts), not timed.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { transpiledRoot } from '../e2e/helpers';
import { listenSilently } from './silent-peer';

/** The modules (paths relative to the transpiled root, and node's own as `node:NAME`) loaded once `rqcast ARGS` has run. */
function modulesAfter(args: string[]): string[] {
  const root = transpiledRoot();
  const main = path.join(root, 'dist', 'cli', 'main.js');
  const script = `
    const { main } = require(${JSON.stringify(main)});
    process.stdout.write = () => true;
    main(['node', 'rqcast', ...${JSON.stringify(args)}]).finally(() => {
      const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => 'node:' + m.slice(13));
      process.stderr.write(JSON.stringify([...Object.keys(require.cache).map((m) => m.slice(${JSON.stringify(root.length + 1)})), ...builtins]) + '\\n');
    });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 });
  const line = r.stderr.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as string[];
}

const has = (mods: string[], part: string): boolean => mods.some((m) => m.includes(part));

describe('rqcast start-up', () => {
  test('fetch loads the fetch command only: no server, relay, ls, catalogue, pino or cli-progress', () => {
    // --help: parses and prints without a network; the fetch module and its client are loaded all the same.
    const mods = modulesAfter(['fetch', '--help']);
    expect(has(mods, 'dist/cli/fetch.js')).toBe(true);
    expect(has(mods, 'dist/client/client.js')).toBe(true);
    for (const absent of ['dist/cli/serve.js', 'dist/cli/relay.js', 'dist/cli/ls.js', 'dist/server/', 'dist/relay/', 'dist/content/catalogue.js', 'prom-client', 'node_modules/pino/', 'cli-progress']) {
      expect([absent, has(mods, absent)]).toEqual([absent, false]);
    }
  }, 120_000);

  test('a fetch over unicast sends its HELLO without the modules of TCP, multicast, playout, flute:// or name resolution', async () => {
    // A socket that never answers: the fetch sends HELLO (counted here) and gives up after --timeout; what it loaded by then is all it loaded before its HELLO left.
    const silent = await listenSilently();
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-startup-'));
    try {
      const mods = modulesAfter(['fetch', `rqcast://127.0.0.1:${silent.port}`, '-o', out, '--timeout', '1s']);
      expect(await silent.someArrived()).toBe(true);
      for (const present of ['dist/client/client.js', 'dist/client/session.js', 'dist/transport/udp/client-socket.js', 'dist/client/data-path.js']) {
        expect([present, has(mods, present)]).toEqual([present, true]);
      }
      for (const absent of [
        'dist/transport/tcp/',
        'dist/protocol/framing.js',
        'dist/client/group-link.js',
        'dist/transport/multicast/client-membership.js',
        'dist/transport/multicast/membership-socket.js',
        'dist/client/live-playout.js',
        'dist/client/object-stream.js',
        'dist/client/sinks/playout-sink.js',
        'dist/client/flute-receiver.js',
        'node:dns',
        // The nonce is read from the kernel (support/kernel-random.ts); digests load crypto when data comes.
        'node:crypto',
        'node_modules/pino/',
        'cli-progress',
      ]) {
        expect([absent, has(mods, absent)]).toEqual([absent, false]);
      }
    } finally {
      silent.close();
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);

  test('the top-level help still lists every command (each one registered)', () => {
    const mods = modulesAfter(['--help']);
    for (const cmd of ['serve', 'fetch', 'ls', 'relay']) expect(has(mods, `dist/cli/${cmd}.js`)).toBe(true);
  }, 120_000);

  test('serve loads its own command, not fetch', () => {
    const mods = modulesAfter(['serve', '--help']);
    expect(has(mods, 'dist/cli/serve.js')).toBe(true);
    expect(has(mods, 'dist/cli/fetch.js')).toBe(false);
  }, 120_000);
});
