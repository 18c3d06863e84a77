// lib/support/address.ts: the one place addresses are parsed, printed and classified.
import fc from 'fast-check';
import { InvalidAddressError } from '../../lib/errors';
import { addressBytes, formatAddress, isMulticastAddress, multicastAddressBytes, normalizeAddress, unicastAddressBytes, unmapIPv4 } from '../../lib/support/address';

describe('formatAddress', () => {
  test.each([
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1'],
    ['ff3e:0:0:0:0:0:8000:1', 'ff3e::8000:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'], // the longest zero run is compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group stays (RFC 5952 §4.2.2)
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'], // equal runs: the first
  ])('%s -> %s (RFC 5952)', (input, text) => {
    const a = addressBytes(input);
    expect(a?.family).toBe(6);
    expect(formatAddress(a!.bytes)).toBe(text);
  });

  test('agrees with the URL parser for any 16 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        const text = formatAddress(b);
        // The URL parser prints an IPv4-mapped address in hex; RFC 5952 §5 (and this) in dotted form.
        const mapped = /^::ffff:(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
        const hexForm = mapped ? `::ffff:${((+mapped[1] << 8) | +mapped[2]).toString(16)}:${((+mapped[3] << 8) | +mapped[4]).toString(16)}` : text;
        expect(new URL(`http://[${text}]/`).hostname).toBe(`[${hexForm}]`);
        expect(addressBytes(text)?.bytes).toEqual(b);
      }),
    );
  });

  test('IPv4-mapped IPv6 in dotted form (RFC 5952 §5)', () => {
    expect(formatAddress(addressBytes('::ffff:192.0.2.1')!.bytes)).toBe('::ffff:192.0.2.1');
    expect(fc.sample(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), 20).every((q) => formatAddress(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...q)) === `::ffff:${q.join('.')}`)).toBe(true);
  });

  test('IPv4: dotted quad; other lengths are refused', () => {
    expect(formatAddress(Uint8Array.of(192, 0, 2, 1))).toBe('192.0.2.1');
    expect(() => formatAddress(new Uint8Array(5))).toThrow();
  });
});

describe('addressBytes and isMulticastAddress', () => {
  test('family from the literal: an IPv4-mapped IPv6 literal stays IPv6', () => {
    expect(addressBytes('239.1.2.3')).toEqual({ family: 4, bytes: Uint8Array.of(239, 1, 2, 3) });
    expect(addressBytes('::ffff:239.1.2.3')?.family).toBe(6);
    expect(addressBytes('fe80::1%eth0')).toBeUndefined();
    expect(addressBytes('example.org')).toBeUndefined();
  });

  test.each([
    ['224.0.0.1', true],
    ['239.255.255.255', true],
    ['223.255.255.255', false],
    ['240.0.0.1', false],
    ['ff02::1', true],
    ['ff3e::8000:1', true],
    ['fe80::1', false],
    ['::ffff:239.1.1.1', false],
    ['not an address', false],
  ])('%s multicast: %s', (a, want) => {
    expect(isMulticastAddress(a)).toBe(want);
    expect(multicastAddressBytes(a) !== undefined).toBe(want);
  });

  test('multicastAddressBytes: the bytes addressBytes reads', () => {
    expect(multicastAddressBytes('239.1.2.3')).toEqual(addressBytes('239.1.2.3'));
    expect(multicastAddressBytes('ff3e::8000:1')).toEqual(addressBytes('ff3e::8000:1'));
  });

  test.each([
    ['192.0.2.1', 4, true],
    ['2001:db8::1', 6, true],
    ['::ffff:192.0.2.1', 6, true],
    ['192.0.2.1', 6, false], // the other family
    ['2001:db8::1', 4, false],
    ['239.1.2.3', 4, false], // multicast
    ['ff3e::1', 6, false],
    ['0.0.0.0', 4, false], // unspecified
    ['::', 6, false],
    ['fe80::1%eth0', 6, false], // a zone is no numeric literal here
    ['not an address', 4, false],
  ] as const)('unicastAddressBytes(%s, %d): %s', (a, family, want) => {
    const got = unicastAddressBytes(a, family);
    expect(got !== undefined).toBe(want);
    if (want) expect(got).toEqual(addressBytes(a));
  });
});

describe('normalizeAddress', () => {
  test.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:c000:0201', '192.0.2.1'],
    ['2001:db8::1', '2001:db8:0:0:0:0:0:1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8:0:0:0:0:0:1'],
    ['::', '0:0:0:0:0:0:0:0'],
    ['::1', '0:0:0:0:0:0:0:1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0:0:0:c000:201'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['fe80::1%eth0', 'fe80:0:0:0:0:0:0:1%eth0'],
  ])('%s -> %s', (input, text) => {
    expect(normalizeAddress(input).text).toBe(text);
  });

  test.each(['', '1.2.3', '1.2.3.256', '1.2.3.4.5', '1::2::3', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', 'fe80::1%', 'example.com', '1:2:3:4:5:6:7:1.2.3.4'])(
    'rejects %j',
    (input) => {
      expect(() => normalizeAddress(input)).toThrow(InvalidAddressError);
    },
  );
});

describe('normalizeAddress and unmapIPv4', () => {
  test('an IPv4 peer is one key whichever socket family saw it', () => {
    expect(normalizeAddress('::ffff:192.0.2.1').text).toBe(normalizeAddress('192.0.2.1').text);
    expect(unmapIPv4('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(unmapIPv4('2001:db8::1')).toBe('2001:db8::1');
  });
});
