/**
 * The interface a group is joined on (membership-interface.ts): the forms
 * it may be given in, checked against a table of this host's interfaces,
 * and what is refused.
 */
import { MembershipInterfaceError } from '../../../lib/transport/multicast/membership-errors';
import { isInterfaceSpec, LocalInterface, resolveMembershipInterface, systemInterfaces } from '../../../lib/transport/multicast/membership-interface';

const TABLE: LocalInterface[] = [
  { name: 'lo', index: 1, multicast: false, addresses: [{ family: 4, address: '127.0.0.1' }, { family: 6, address: '::1' }] },
  {
    name: 'eth0',
    index: 2,
    multicast: true,
    addresses: [
      { family: 4, address: '192.0.2.10' },
      { family: 4, address: '192.0.2.11' },
      { family: 6, address: '2001:db8::10' },
    ],
  },
  { name: 'wg0', index: 5, addresses: [] },
];

describe('isInterfaceSpec', () => {
  test.each(['eth0', 'enp0s31f6', 'br-1.100', 'veth_a', 'x', 'abcdefghijklmno', '2', '4294967295', '192.0.2.1', '2001:db8::1', 'fe80::1'])('%s is an interface', (t) => {
    expect(isInterfaceSpec(t)).toBe(true);
  });
  test.each([
    ['empty', ''],
    ['16 bytes', 'abcdefghijklmnop'],
    ['"."', '.'],
    ['".."', '..'],
    ['a slash', 'a/b'],
    ['a colon', 'eth0:1'],
    ['a zone', 'fe80::1%eth0'],
    ['a percent sign', 'et%h'],
    ['white space', 'eth 0'],
    ['a control character', 'eth\n0'],
    ['non-ASCII', 'ethé'],
    ['index 0', '0'],
    ['an index beyond 32 bits', '4294967296'],
  ])('%s is not', (_what, t) => {
    expect(isInterfaceSpec(t)).toBe(false);
  });
  test('a value that is not a string is not', () => {
    expect(isInterfaceSpec(undefined as unknown as string)).toBe(false);
  });
});

describe('resolveMembershipInterface', () => {
  test('by name, by index, by IPv4 address (which then names it for IPv4 groups), by IPv6 address', () => {
    expect(resolveMembershipInterface('eth0', 4, TABLE)).toEqual({ spec: 'eth0', name: 'eth0', index: 2, ipv4: '192.0.2.10' });
    expect(resolveMembershipInterface('2', 6, TABLE)).toEqual({ spec: '2', name: 'eth0', index: 2, ipv4: '192.0.2.10' });
    expect(resolveMembershipInterface('192.0.2.11', 4, TABLE)).toEqual({ spec: '192.0.2.11', name: 'eth0', index: 2, ipv4: '192.0.2.11' });
    expect(resolveMembershipInterface('2001:db8:0::10', 6, TABLE)).toMatchObject({ name: 'eth0', index: 2 });
  });

  test('before the family is known, only that the interface exists and has multicast on', () => {
    expect(resolveMembershipInterface('wg0', undefined, TABLE)).toEqual({ spec: 'wg0', name: 'wg0', index: 5 });
    expect(() => resolveMembershipInterface('wg0', 4, TABLE)).toThrow(/no IPv4 address/);
    expect(resolveMembershipInterface('wg0', 6, TABLE)).toEqual({ spec: 'wg0', name: 'wg0', index: 5 });
  });

  test.each([
    ['multicast off', 'lo', /has multicast off/],
    ['by its address too', '127.0.0.1', /has multicast off/],
    ['an unknown name', 'eth1', /no interface named "eth1"/],
    ['an unknown index', '9', /no interface of this host has index 9/],
    ['an unknown address', '198.51.100.1', /no interface of this host has the address 198\.51\.100\.1/],
    ['not an interface at all', 'a/b', /is not an interface name, index, or address/],
  ])('refuses %s', (_what, spec, message) => {
    expect(() => resolveMembershipInterface(spec, undefined, TABLE)).toThrow(MembershipInterfaceError);
    expect(() => resolveMembershipInterface(spec, undefined, TABLE)).toThrow(message);
  });

  test("this host's own table lists its loopback", () => {
    const table = systemInterfaces();
    expect(table.some((i) => i.addresses.some((a) => a.address === '127.0.0.1'))).toBe(true);
  });
});
