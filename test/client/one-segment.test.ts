/**
 * One-segment URLs (lib/client/one-segment.ts, docs/PROTOCOL.md §10.8): the
 * readings in order, when the next one is tried, and the error when
 * neither holds. The real-server cases are in test/cli/one-segment.test.ts.
 */
import { JoinRefusedError, NoSuchObjectError, FetchTimeoutError } from '../../lib/client/errors';
import { NothingNamedError, urlReadings, withUrlReadings } from '../../lib/client/one-segment';
import { parseRqcastUrl, RqcastUrl } from '../../lib/client/url';
import { ErrorCode } from '../../lib/protocol/messages';

const unknownChannel = (name: string): JoinRefusedError => new JoinRefusedError(ErrorCode.UnknownChannel, `unknown channel ${name}`);

test('readings: the channel, then the object of the default channel; other URLs have one reading', () => {
  expect(urlReadings(parseRqcastUrl('rqcast://h:1/x.bin'))).toEqual([
    { host: 'h', port: 1, channels: ['x.bin'] },
    { host: 'h', port: 1, channels: [], name: 'x.bin' },
  ]);
  const explicit = parseRqcastUrl('rqcast://h:1//x.bin');
  expect(urlReadings(explicit)).toEqual([explicit]);
});

describe('withUrlReadings', () => {
  const url = parseRqcastUrl('rqcast://h:1/x.bin');

  test('a channel that exists is the only reading tried', async () => {
    const tried: RqcastUrl[] = [];
    await expect(withUrlReadings(url, async (r) => (tried.push(r), 'ok'))).resolves.toBe('ok');
    expect(tried).toEqual([{ host: 'h', port: 1, channels: ['x.bin'] }]);
  });

  test('no such channel: the object of the default channel is fetched', async () => {
    const tried: RqcastUrl[] = [];
    const got = await withUrlReadings(url, async (r) => {
      tried.push(r);
      if (r.channels.length > 0) throw unknownChannel('x.bin');
      return 'object';
    });
    expect(got).toBe('object');
    expect(tried.map((r) => [r.channels, r.name])).toEqual([
      [['x.bin'], undefined],
      [[], 'x.bin'],
    ]);
  });

  test('neither: NothingNamedError naming both readings and what the server offers', async () => {
    const offer = { objects: ['a.bin', 'b.txt'], channels: ['main', 'hd'] };
    const e = await withUrlReadings(url, async (r) => {
      throw r.channels.length > 0 ? unknownChannel('x.bin') : new NoSuchObjectError('x.bin', offer);
    }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(NothingNamedError);
    expect(e).toBeInstanceOf(NoSuchObjectError);
    const m = (e as Error).message;
    expect(m).toMatch(/"x\.bin" is neither a channel of the server nor an object of channel "main"/);
    expect(m).toContain('channels "main", "hd"');
    expect(m).toContain('objects "a.bin", "b.txt"');
    expect(m).toContain('rqcast ls');
  });

  test('neither, and no default channel: still NothingNamedError', async () => {
    const e = await withUrlReadings(url, async (r) => {
      throw unknownChannel(r.channels[0] ?? 'main');
    }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(NothingNamedError);
    expect((e as Error).message).toMatch(/no channel "main" either/);
  });

  test('any other failure of the channel reading ends it: no second reading', async () => {
    let calls = 0;
    const timeout = new FetchTimeoutError('no data');
    await expect(
      withUrlReadings(url, async () => {
        calls++;
        throw timeout;
      }),
    ).rejects.toBe(timeout);
    expect(calls).toBe(1);
  });

  test('a URL that is not one segment: its error unchanged', async () => {
    const refused = unknownChannel('hd');
    await expect(withUrlReadings(parseRqcastUrl('rqcast://h:1/hd/'), async () => Promise.reject(refused))).rejects.toBe(refused);
  });
});
