/**
 * flute:// URLs (lib/client/url.ts, docs/PROTOCOL.md §10.10): what they
 * name, their canonical text, and every malformed or hostile form refused
 * with a message that says what is wrong.
 */
import fc from 'fast-check';
import { InvalidUrlError } from '../../lib/client/errors';
import { formatFluteUrl, FluteUrl, parseFetchUrl, parseFluteUrl } from '../../lib/client/url';

/** LCT TSI is at most 48 bits (RFC 5651 §5.1). */
const MAX_TSI = 2 ** 48 - 1;

function rejects(text: string, pattern: RegExp): void {
  expect(() => parseFluteUrl(text)).toThrow(InvalidUrlError);
  expect(() => parseFluteUrl(text)).toThrow(pattern);
}

describe('parseFluteUrl', () => {
  test('group, port and TSI', () => {
    expect(parseFluteUrl('flute://239.1.2.3:5000?tsi=7')).toEqual({ group: '239.1.2.3', port: 5000, tsi: 7 });
  });

  test('source, interface and an object name; parameters in any order; percent-encoding', () => {
    expect(parseFluteUrl('flute://232.1.1.1:5000/movies/a%20b.mp4?if=eth0&source=10.0.0.1&tsi=0')).toEqual({
      group: '232.1.1.1',
      port: 5000,
      tsi: 0,
      source: '10.0.0.1',
      interface: 'eth0',
      name: 'movies/a b.mp4',
    });
    expect(parseFluteUrl('flute://232.1.1.1:5000?tsi=1&source=10.0.0.1&if=10.0.0.2').interface).toBe('10.0.0.2');
  });

  test('IPv6 group in brackets, IPv6 source bare, bracketed or percent-encoded, interface by index', () => {
    const want = { group: 'ff3e::8000:1', port: 5000, tsi: 281474976710655, source: '2001:db8::1', interface: '3' };
    expect(parseFluteUrl(`flute://[ff3e::8000:1]:5000?tsi=${MAX_TSI}&source=2001:db8::1&if=3`)).toEqual(want);
    expect(parseFluteUrl(`flute://[ff3e::8000:1]:5000?tsi=${MAX_TSI}&source=[2001:db8::1]&if=3`)).toEqual(want);
    expect(parseFluteUrl(`flute://[ff3e::8000:1]:5000?tsi=${MAX_TSI}&source=2001%3Adb8%3A%3A1&if=3`)).toEqual(want);
  });

  test('the scheme is case-insensitive; a trailing slash names nothing', () => {
    expect(parseFluteUrl('FLUTE://239.1.1.1:1/?tsi=1')).toEqual({ group: '239.1.1.1', port: 1, tsi: 1 });
  });

  test.each([
    ['another scheme', 'rqcast://239.1.1.1:5000?tsi=1', /must start with flute:\/\//],
    ['no scheme', '239.1.1.1:5000?tsi=1', /must start with flute:\/\//],
    ['no query', 'flute://239.1.1.1:5000', /missing \?tsi=N/],
    ['no tsi', 'flute://239.1.1.1:5000?source=10.0.0.1', /missing tsi=N/],
    ['an empty query', 'flute://239.1.1.1:5000?', /empty parameter/],
    ['an empty parameter', 'flute://239.1.1.1:5000?tsi=1&&if=eth0', /empty parameter/],
    ['an unknown parameter', 'flute://239.1.1.1:5000?tsi=1&ttl=3', /unknown parameter "ttl"/],
    ['a parameter twice', 'flute://239.1.1.1:5000?tsi=1&tsi=2', /"tsi" is given twice/],
    ['a parameter without value', 'flute://239.1.1.1:5000?tsi', /"tsi" needs a value/],
    ['a negative tsi', 'flute://239.1.1.1:5000?tsi=-1', /not an integer 0\.\.2\^48-1/],
    ['a hex tsi', 'flute://239.1.1.1:5000?tsi=0x10', /not an integer/],
    ['a fractional tsi', 'flute://239.1.1.1:5000?tsi=1.5', /not an integer/],
    ['a tsi beyond 48 bits', `flute://239.1.1.1:5000?tsi=${MAX_TSI + 1}`, /not an integer 0\.\.2\^48-1/],
    ['a huge tsi', 'flute://239.1.1.1:5000?tsi=99999999999999999999', /not an integer/],
    ['no group', 'flute://:5000?tsi=1', /is not a numeric group address/],
    ['nothing at all', 'flute://?tsi=1', /missing group/],
    ['a host name', 'flute://example.org:5000?tsi=1', /never a host name/],
    ['a unicast address', 'flute://10.0.0.1:5000?tsi=1', /10\.0\.0\.1 is not a multicast address/],
    ['leading zeros', 'flute://239.001.1.1:5000?tsi=1', /not a numeric group address/],
    ['an IPv4-mapped group', 'flute://[::ffff:239.1.1.1]:5000?tsi=1', /is not a multicast address/],
    ['an unbracketed IPv6 group', 'flute://ff3e::1:5000?tsi=1', /must be in brackets/],
    ['an unclosed bracket', 'flute://[ff3e::1:5000?tsi=1', /unclosed "\["/],
    ['text after the bracket', 'flute://[ff3e::1]x:5000?tsi=1', /unexpected text after "\]"/],
    ['a zone in the group', 'flute://[ff02::1%25eth0]:5000?tsi=1', /takes no zone; give the interface with if=/],
    ['not IPv6 in brackets', 'flute://[239.1.1.1]:5000?tsi=1', /is not an IPv6 address/],
    ['no port', 'flute://239.1.1.1?tsi=1', /missing port/],
    ['port 0', 'flute://239.1.1.1:0?tsi=1', /port 0 is not in 1\.\.65535/],
    ['port 65536', 'flute://239.1.1.1:65536?tsi=1', /port 65536 is not in 1\.\.65535/],
    ['a port that is no number', 'flute://239.1.1.1:http?tsi=1', /port "http" is not a number/],
    ['user information', 'flute://me@239.1.1.1:5000?tsi=1', /user information/],
    ['a fragment', 'flute://239.1.1.1:5000?tsi=1#x', /"#" is not allowed/],
    ['a space', 'flute://239.1.1.1:5000?tsi=1 ', /spaces and control characters/],
    ['a control character', 'flute://239.1.1.1:5000/a\u0000b?tsi=1', /spaces and control characters/],
    ['bad percent-encoding', 'flute://239.1.1.1:5000/%zz?tsi=1', /bad percent-encoding in the object name/],
    ['bad percent-encoding in a value', 'flute://239.1.1.1:5000?tsi=1&if=%e0', /bad percent-encoding in the if parameter/],
    ['a source that is no address', 'flute://239.1.1.1:5000?tsi=1&source=host', /not a numeric IP address/],
    ['a source of the other family', 'flute://239.1.1.1:5000?tsi=1&source=2001:db8::1', /not of the group's family \(IPv4\)/],
    ['a multicast source', 'flute://239.1.1.1:5000?tsi=1&source=239.1.1.2', /not a unicast address/],
    ['the unspecified source', 'flute://[ff3e::1]:5000?tsi=1&source=::', /not a unicast address/],
    ['a source with a zone', 'flute://[ff3e::1]:5000?tsi=1&source=fe80::1%25eth0', /takes no zone/],
    ['an interface with a slash', 'flute://239.1.1.1:5000?tsi=1&if=a%2Fb', /not an interface name/],
    ['an interface name too long', 'flute://239.1.1.1:5000?tsi=1&if=abcdefghijklmnop', /not an interface name/],
  ])('refuses %s', (_what, text, message) => {
    rejects(text, message);
  });

  test('refuses what is not a string', () => {
    expect(() => parseFluteUrl(undefined as unknown as string)).toThrow(InvalidUrlError);
    expect(() => parseFetchUrl(42 as unknown as string)).toThrow(InvalidUrlError);
  });
});

describe('formatFluteUrl', () => {
  test('the canonical text', () => {
    expect(formatFluteUrl({ group: 'ff3e::1', port: 5, tsi: 9, source: '2001:db8::1', interface: 'eth0', name: 'a b/c?d' })).toBe(
      'flute://[ff3e::1]:5/a%20b/c%3Fd?tsi=9&source=2001%3Adb8%3A%3A1&if=eth0',
    );
  });

  test('parse(format(u)) is u', () => {
    const v4group = fc.tuple(fc.integer({ min: 224, max: 239 }), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
    const v6group = fc.tuple(fc.nat(0xff), fc.array(fc.nat(0xffff), { minLength: 6, maxLength: 6 })).map(
      ([b, rest]) => `ff${b.toString(16).padStart(2, '0')}:${rest.map((g) => g.toString(16)).join(':')}:1`,
    );
    const url: fc.Arbitrary<FluteUrl> = fc.oneof(v4group, v6group).chain((group) =>
      fc.record(
        {
          group: fc.constant(group),
          port: fc.integer({ min: 1, max: 65535 }),
          tsi: fc.integer({ min: 0, max: MAX_TSI }),
          source: group.includes(':') ? fc.constant('2001:db8::7') : fc.constant('192.0.2.7'),
          interface: fc.constantFrom('eth0', '2', 'br-lan.10'),
          name: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((n) => !n.startsWith('/')),
        },
        { requiredKeys: ['group', 'port', 'tsi'] },
      ),
    );
    fc.assert(fc.property(url, (u) => expect(parseFluteUrl(formatFluteUrl(u))).toEqual(u)));
  });
});

describe('parseFetchUrl', () => {
  test('takes either scheme', () => {
    expect(parseFetchUrl('flute://239.1.1.1:5000?tsi=1')).toEqual({ scheme: 'flute', url: { group: '239.1.1.1', port: 5000, tsi: 1 } });
    expect(parseFetchUrl('rqcast://h:1/a')).toEqual({ scheme: 'rqcast', url: { host: 'h', port: 1, channels: ['a'], segment: 'a' } });
    expect(() => parseFetchUrl('http://h/')).toThrow(/must start with rqcast:\/\//);
  });
});
