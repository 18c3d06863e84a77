/** Content-Location as a URI (lib/protocol/content-location.ts, RFC 3986): names percent-encoded on the way out, decoded on the way in. */
import fc from 'fast-check';
import { decodeContentLocation, encodeContentLocation } from '../../lib/protocol/content-location';

test.each([
  ['a.bin', 'a.bin'],
  ['dir/sub/a-b_c~d.e', 'dir/sub/a-b_c~d.e'],
  ['a b.bin', 'a%20b.bin'],
  ['é/ü.txt', '%C3%A9/%C3%BC.txt'],
  ['100%', '100%25'],
  ["it's (1)*!", 'it%27s%20%281%29%2A%21'],
  ['a?b#c', 'a%3Fb%23c'],
  ['😀', '%F0%9F%98%80'],
])('%j is sent as %j and read back', (name, location) => {
  expect(encodeContentLocation(name)).toBe(location);
  expect(decodeContentLocation(location)).toBe(name);
});

test('only unreserved characters, "%" escapes and "/" are ever sent', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }), (name) => {
      const location = encodeContentLocation(name);
      expect(location).toMatch(/^(?:[A-Za-z0-9._~/-]|%[0-9A-F]{2})*$/);
      expect(decodeContentLocation(location)).toBe(name);
    }),
  );
});

test('what other senders write as is (not a valid encoding) is read as written; a decoded name may hold "/" and ".."', () => {
  expect(decodeContentLocation('100%')).toBe('100%');
  expect(decodeContentLocation('%E0%A4%A')).toBe('%E0%A4%A');
  expect(decodeContentLocation('%FF.bin')).toBe('%FF.bin');
  expect(decodeContentLocation('plain name.bin')).toBe('plain name.bin');
  // The sink decides what may be written (test/client/hostile-names.test.ts).
  expect(decodeContentLocation('..%2F..%2Fetc%2Fpasswd')).toBe('../../etc/passwd');
  expect(decodeContentLocation('a%00b')).toBe('a\u0000b');
});
