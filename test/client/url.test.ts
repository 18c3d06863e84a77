import fc from 'fast-check';
import { InvalidUrlError } from '../../lib/client/errors';
import { DEFAULT_CHANNEL, DEFAULT_PORT, formatRqcastUrl, joinChannels, parseRqcastUrl, RqcastUrl } from '../../lib/client/url';
import { channelName, channelNames } from '../protocol/arbitraries';

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const hostname = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')).filter((h) => !/^[0-9.]+$/.test(h));
const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const host = fc.oneof(hostname, ipv4, ipv6);
const objectName = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 });

const url: fc.Arbitrary<RqcastUrl> = fc.record(
  {
    host,
    port: fc.integer({ min: 1, max: 65535 }),
    channels: channelNames,
    name: objectName,
  },
  { requiredKeys: ['host', 'port', 'channels'] },
);

function rejects(text: string, pattern: RegExp): void {
  expect(() => parseRqcastUrl(text)).toThrow(InvalidUrlError);
  expect(() => parseRqcastUrl(text)).toThrow(pattern);
}

describe('parseRqcastUrl', () => {
  test('host and port only: default channel, every object', () => {
    const u = parseRqcastUrl('rqcast://example.org:5000');
    expect(u).toEqual({ host: 'example.org', port: 5000, channels: [] });
    expect(joinChannels(u)).toEqual([DEFAULT_CHANNEL]);
  });

  test('default port when omitted', () => {
    expect(parseRqcastUrl('rqcast://127.0.0.1').port).toBe(DEFAULT_PORT);
    expect(parseRqcastUrl('rqcast://[::1]/a').port).toBe(DEFAULT_PORT);
  });

  test('channels, name, IPv6 in brackets', () => {
    expect(parseRqcastUrl('rqcast://[2001:db8::1]:4433/main,hd/movies/a%20b.mp4')).toEqual({
      host: '2001:db8::1',
      port: 4433,
      channels: ['main', 'hd'],
      name: 'movies/a b.mp4',
    });
  });

  test('a name on the default channel has an empty channel list', () => {
    expect(parseRqcastUrl('rqcast://h:1//file.bin')).toEqual({ host: 'h', port: 1, channels: [], name: 'file.bin' });
    expect(formatRqcastUrl({ host: 'h', port: 1, channels: [], name: 'file.bin' })).toBe('rqcast://h:1//file.bin');
  });

  test('trailing slash means no name', () => {
    expect(parseRqcastUrl('rqcast://h:1/a/')).toEqual({ host: 'h', port: 1, channels: ['a'] });
    expect(parseRqcastUrl('rqcast://h:1/')).toEqual({ host: 'h', port: 1, channels: [] });
  });

  test('one segment: a channel first (segment), else an object of the default channel', () => {
    expect(parseRqcastUrl('rqcast://h:1/movie.bin')).toEqual({ host: 'h', port: 1, channels: ['movie.bin'], segment: 'movie.bin' });
    expect(formatRqcastUrl(parseRqcastUrl('rqcast://h:1/movie.bin'))).toBe('rqcast://h:1/movie.bin');
    // A percent-encoded comma is part of the one segment, not a list.
    expect(parseRqcastUrl('rqcast://h:1/a%2Cb%20c')).toEqual({ host: 'h', port: 1, channels: ['a,b c'], segment: 'a,b c' });
    // Too long for a channel name: only an object can be meant.
    const long = 'x'.repeat(65);
    expect(parseRqcastUrl(`rqcast://h:1/${long}`)).toEqual({ host: 'h', port: 1, channels: [], name: long });
    // A list, a trailing '/', or two segments are never one segment.
    expect(parseRqcastUrl('rqcast://h:1/a,b').segment).toBeUndefined();
    expect(parseRqcastUrl('rqcast://h:1/hd/')).toEqual({ host: 'h', port: 1, channels: ['hd'] });
    expect(formatRqcastUrl({ host: 'h', port: 1, channels: ['hd'] })).toBe('rqcast://h:1/hd/');
  });

  test('round trip of one-segment URLs', () => {
    const segmentUrl = fc.record({ host, port: fc.integer({ min: 1, max: 65535 }), s: channelName }).map(
      ({ host: h, port, s }): RqcastUrl => ({ host: h, port, channels: [s], segment: s }),
    );
    fc.assert(
      fc.property(segmentUrl, (u) => {
        expect(parseRqcastUrl(formatRqcastUrl(u))).toEqual(u);
      }),
    );
  });

  test('scheme is case-insensitive', () => {
    expect(parseRqcastUrl('RQCAST://h:2').port).toBe(2);
  });

  test('rejects with a reason', () => {
    rejects('http://h:1', /rqcast:\/\//);
    rejects('rqcast:/h:1', /rqcast:\/\//);
    rejects('rqcast://', /missing host/);
    rejects('rqcast://:4433', /missing host/);
    rejects('rqcast://::1:4433', /brackets/);
    rejects('rqcast://[::1', /unclosed/);
    rejects('rqcast://[::1]x', /after "\]"/);
    rejects('rqcast://[nothex]:1', /not an IPv6/);
    rejects('rqcast://h:0', /1\.\.65535/);
    rejects('rqcast://h:65536', /1\.\.65535/);
    rejects('rqcast://h:12a', /not a number/);
    rejects('rqcast://h:', /not a number/);
    rejects('rqcast://300.1.1.1:1', /IPv4/);
    rejects('rqcast://bad_host:1', /host name/);
    rejects('rqcast://u@h:1', /user information/);
    rejects('rqcast://h:1/a,,b', /empty channel/);
    rejects('rqcast://h:1/a,a', /twice/);
    rejects(`rqcast://h:1/${'x'.repeat(65)}/`, /64 bytes/);
    rejects(`rqcast://h:1/${Array.from({ length: 17 }, (_, i) => `c${i}`).join(',')}`, /at most 16/);
    rejects('rqcast://h:1/a/%E0%A4%A', /percent-encoding/);
    rejects('rqcast://h:1/a/x?y', /percent-encode/);
    rejects('rqcast://h:1/a/x y', /percent-encoded/);
  });

  test('round trip: format then parse gives the same URL', () => {
    fc.assert(
      fc.property(url, (u) => {
        const text = formatRqcastUrl(u);
        expect(parseRqcastUrl(text)).toEqual(u);
        // The canonical text is a fixed point.
        expect(formatRqcastUrl(parseRqcastUrl(text))).toBe(text);
      }),
    );
  });

  test('never throws anything but InvalidUrlError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (tail) => {
        try {
          parseRqcastUrl(`rqcast://${tail}`);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidUrlError);
        }
      }),
    );
  });
});
