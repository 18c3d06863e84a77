/**
 * The rules of a fetch from several servers (lib/client/client.ts,
 * lib/cli/fetch.ts): what is refused before anything is sent, with a
 * message that says what to do. The transfers themselves are
 * test/e2e/multi-server.test.ts.
 */
import { RqcastClient } from '../../lib/client/client';
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
