/**
 * The rules of a fetch from several servers (lib/client/client.ts,
 * lib/cli/fetch.ts): what is refused before anything is sent, with a
 * message that says what to do. The transfers themselves are
 * test/e2e/multi-server.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RqcastClient } from '../../lib/client/client';
import { Catalogue } from '../../lib/content/catalogue';
import { RqcastServer } from '../../lib/server/server';
import { InvalidClientOptionError } from '../../lib/client/errors';
import { runFetch } from '../../lib/cli/fetch';
import { EXIT_USAGE } from '../../lib/cli/exit-codes';

describe('RqcastClient with several URLs', () => {
  test('URLs naming different objects are refused: objects are matched by name', () => {
    expect(() => new RqcastClient(['rqcast://127.0.0.1:1//a.bin', 'rqcast://127.0.0.1:2//b.bin'])).toThrow(InvalidClientOptionError);
    expect(() => new RqcastClient(['rqcast://127.0.0.1:1//a.bin', 'rqcast://127.0.0.1:2'])).toThrow(/same object/);
  });

  test('--transport multicast and --tcp speak of one server: refused, naming the alternative', () => {
    expect(() => new RqcastClient(['rqcast://127.0.0.1:1', 'rqcast://127.0.0.1:2'], { transport: 'multicast' })).toThrow(/--transport udp or tcp/);
    expect(() => new RqcastClient(['rqcast://127.0.0.1:1', 'rqcast://127.0.0.1:2'], { tcp: { host: '127.0.0.1', port: 9 } })).toThrow(/each URL's host and port/);
  });

  test('no URL at all is refused', () => {
    expect(() => new RqcastClient([])).toThrow(InvalidClientOptionError);
  });

  test('the same object on each, with different channels per server, is accepted', () => {
    const c = new RqcastClient(['rqcast://127.0.0.1:1/main/a.bin', 'rqcast://127.0.0.1:2/hd/a.bin']);
    expect(c.urls.map((u) => u.channels)).toEqual([['main'], ['hd']]);
    expect(c.url).toBe(c.urls[0]);
  });
});

describe('rqcast fetch URL URL', () => {
  test('a flute:// URL among several is a usage error (exit 2)', async () => {
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const code = await runFetch(['rqcast://127.0.0.1:1', 'flute://239.1.1.1:5000?tsi=1'], { timeout: 1000, quiet: true });
      expect(code).toBe(EXIT_USAGE);
      expect(write.mock.calls.map((c) => String(c[0])).join('')).toMatch(/flute:\/\/ URL is fetched alone/);
    } finally {
      write.mockRestore();
    }
  });
});

describe('a fetch from two servers over loopback', () => {
  let dir: string;
  let data: Buffer;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rqcast-several-'));
    data = randomBytes(400_000);
    writeFileSync(path.join(dir, 'f.bin'), data);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a server that refuses the JOIN (no such channel) is dropped as failed; the other one completes the fetch', async () => {
    const catalogues = await Promise.all([Catalogue.load([path.join(dir, 'f.bin')]), Catalogue.load([path.join(dir, 'f.bin')])]);
    const good = new RqcastServer({ catalogue: catalogues[0], port: 0, host: '127.0.0.1', rateMbps: 40, serverGroup: { index: 0, servers: 2 } });
    // The other member has no channel "main": it answers JOIN with ERROR.
    const refusing = new RqcastServer({ catalogue: catalogues[1], port: 0, host: '127.0.0.1', rateMbps: 40, channels: [{ name: 'other' }], serverGroup: { index: 1, servers: 2 } });
    const out = mkdtempSync(path.join(dir, 'out-'));
    try {
      const [a, b] = [await good.listen(), await refusing.listen()];
      const client = new RqcastClient([`rqcast://127.0.0.1:${b.port}//f.bin`, `rqcast://127.0.0.1:${a.port}//f.bin`], { outputDir: out, transport: 'udp', timeoutMs: 20_000 });
      const warnings: string[] = [];
      client.on('warning', (w) => warnings.push(w));
      const summary = await client.fetch();
      expect(readFileSync(path.join(out, 'f.bin')).equals(data)).toBe(true);
      expect(summary.servers?.map((v) => [v.joined, v.dropped ?? 'kept'])).toEqual([
        [false, 'failed'],
        [true, 'kept'],
      ]);
      expect(summary.servers?.[0].symbols).toBe(0);
      expect(summary.duplicates).toBe(0);
      expect(warnings.some((w) => /carrying on with the other servers/.test(w))).toBe(true);
    } finally {
      await good.close();
      await refusing.close();
      for (const c of catalogues) c.close();
    }
  }, 30_000);
});
