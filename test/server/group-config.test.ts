/**
 * A channel's multicast group checked against the host
 * (lib/transport/multicast/group-config.ts, docs/PROTOCOL.md §10.10): every
 * refusal with its typed error, the defaults, the interface handed to the
 * sink and the announced source. The host's interfaces are injected, so
 * the rules are checked whatever this machine has; the last tests use the
 * real host's loopback.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { RqcastError, InvalidServerConfigError } from '../../lib/errors';
import {
  checkMulticastGroup,
  DEFAULT_MULTICAST_LOOP,
  DEFAULT_MULTICAST_TTL,
  findInterface,
  type HostInterfaces,
  isLocalUnicast,
  MulticastConfigError,
  MulticastPortError,
  MulticastSourceError,
  MulticastTtlError,
  NotMulticastGroupError,
  sinkConfig,
  UnknownInterfaceError,
} from '../../lib/transport/multicast/group-config';
import type { MulticastGroupConfig } from '../../lib/transport/replicator-contract';

function info(address: string, scopeid?: number): NetworkInterfaceInfo {
  const v6 = address.includes(':');
  const base = { address, netmask: v6 ? 'ffff:ffff:ffff:ffff::' : '255.255.255.0', mac: '02:00:00:00:00:01', internal: false, cidr: null };
  return v6 ? { ...base, family: 'IPv6', scopeid: scopeid ?? 0 } : { ...base, family: 'IPv4' };
}

/** A host with loopback and two interfaces. */
const HOST: HostInterfaces = () => ({
  lo: [info('127.0.0.1'), info('::1')],
  eth0: [info('192.0.2.10'), info('2001:db8::10'), info('fe80::10', 2)],
  eth1: [info('198.51.100.20')],
});

const check = (config: MulticastGroupConfig, bindHost = '0.0.0.0') => checkMulticastGroup(config, { bindHost, interfaces: HOST, what: 'channel main' });

describe('defaults', () => {
  test('TTL 1 and loop on; no interface (the kernel chooses) and no source (any-source) when the bind address is a wildcard', () => {
    expect(DEFAULT_MULTICAST_TTL).toBe(1);
    expect(DEFAULT_MULTICAST_LOOP).toBe(true);
    expect(check({ group: '239.1.2.3', port: 5000 })).toEqual({ group: '239.1.2.3', family: 4, port: 5000, ttl: 1, loop: true });
    expect(check({ group: 'ff3e::1', port: 5000 }, '::')).toEqual({ group: 'ff3e::1', family: 6, port: 5000, ttl: 1, loop: true });
  });

  test('the group in its canonical text form', () => {
    expect(check({ group: '239.001.002.003', port: 1 }).group).toBe('239.1.2.3');
    expect(check({ group: 'FF3E:0000::8000:0001', port: 1 }).group).toBe('ff3e::8000:1');
  });

  test('the edges of each range are accepted', () => {
    expect(check({ group: '224.0.0.0', port: 65535, ttl: 0 })).toMatchObject({ port: 65535, ttl: 0 });
    expect(check({ group: '239.255.255.255', port: 1, ttl: 255, loop: false })).toMatchObject({ ttl: 255, loop: false });
    expect(check({ group: 'ff00::', port: 1 }).family).toBe(6);
  });
});

describe('refusals: typed, InvalidServerConfigErrors, naming the channel and the value', () => {
  type ErrorClass = abstract new (...args: never[]) => MulticastConfigError;
  const refusals: [string, MulticastGroupConfig, ErrorClass, string][] = [
    ['a unicast IPv4 address', { group: '10.0.0.1', port: 5000 }, NotMulticastGroupError, 'channel main: multicast group 10.0.0.1 is not a multicast address (224.0.0.0/4 or ff00::/8)'],
    ['the top of 224/4', { group: '240.0.0.1', port: 5000 }, NotMulticastGroupError, 'multicast group 240.0.0.1'],
    ['a unicast IPv6 address', { group: '2001:db8::1', port: 5000 }, NotMulticastGroupError, 'multicast group 2001:db8::1'],
    ['an IPv4-mapped group', { group: '::ffff:239.1.1.1', port: 5000 }, NotMulticastGroupError, 'multicast group ::ffff:239.1.1.1'],
    ['a zone', { group: 'ff02::1%eth0', port: 5000 }, NotMulticastGroupError, 'multicast group ff02::1%eth0'],
    ['a host name', { group: 'group.example', port: 5000 }, NotMulticastGroupError, 'group.example'],
    ['brackets', { group: '[ff3e::1]', port: 5000 }, NotMulticastGroupError, '[ff3e::1]'],
    ['an empty group', { group: '', port: 5000 }, NotMulticastGroupError, 'multicast group  is'],
    ['a group that is no string', { group: 4026531841 as unknown as string, port: 5000 }, NotMulticastGroupError, 'multicast group 4026531841'],
    ['port 0', { group: '239.1.2.3', port: 0 }, MulticastPortError, 'channel main: multicast port 0 is not 1..65535'],
    ['port 65536', { group: '239.1.2.3', port: 65536 }, MulticastPortError, 'multicast port 65536'],
    ['a fractional port', { group: '239.1.2.3', port: 1.5 }, MulticastPortError, 'multicast port 1.5'],
    ['a NaN port', { group: '239.1.2.3', port: Number.NaN }, MulticastPortError, 'multicast port NaN'],
    ['TTL 256', { group: '239.1.2.3', port: 1, ttl: 256 }, MulticastTtlError, 'channel main: multicast TTL 256 is not an integer 0..255'],
    ['TTL -1', { group: '239.1.2.3', port: 1, ttl: -1 }, MulticastTtlError, 'multicast TTL -1'],
    ['a fractional TTL', { group: '239.1.2.3', port: 1, ttl: 1.5 }, MulticastTtlError, 'multicast TTL 1.5'],
    ['loop that is no boolean', { group: '239.1.2.3', port: 1, loop: 1 as unknown as boolean }, MulticastConfigError, 'multicast loop must be true or false'],
    ['an unknown interface', { group: '239.1.2.3', port: 1, interface: 'eth9' }, UnknownInterfaceError, 'channel main: multicast interface eth9 is neither an interface nor an address of this host'],
    ['an address of no interface', { group: '239.1.2.3', port: 1, interface: '192.0.2.99' }, UnknownInterfaceError, 'interface 192.0.2.99'],
    ['an empty interface', { group: '239.1.2.3', port: 1, interface: '' }, UnknownInterfaceError, 'interface  is'],
    ['a source of no interface', { group: '239.1.2.3', port: 1, source: '192.0.2.99' }, MulticastSourceError, 'channel main: multicast source 192.0.2.99 is not a unicast IPv4 address of this host (the group 239.1.2.3 is IPv4)'],
    ['a source of the other family', { group: 'ff3e::1', port: 1, source: '192.0.2.10' }, MulticastSourceError, 'is not a unicast IPv6 address of this host (the group ff3e::1 is IPv6)'],
    ['an IPv4-mapped source for an IPv6 group', { group: 'ff3e::1', port: 1, source: '::ffff:192.0.2.10' }, MulticastSourceError, 'source ::ffff:192.0.2.10'],
    ['a multicast source', { group: '239.1.2.3', port: 1, source: '239.1.2.3' }, MulticastSourceError, 'source 239.1.2.3'],
    ['the unspecified source', { group: '239.1.2.3', port: 1, source: '0.0.0.0' }, MulticastSourceError, 'source 0.0.0.0'],
    ['a host name as source', { group: '239.1.2.3', port: 1, source: 'localhost' }, MulticastSourceError, 'source localhost'],
  ];
  test.each(refusals)('%s', (_name, config, Cls, message) => {
    let caught: unknown;
    try {
      check(config);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Cls);
    expect(caught).toBeInstanceOf(InvalidServerConfigError);
    expect(caught).toBeInstanceOf(RqcastError);
    expect((caught as Error).message).toContain(message);
    expect((caught as RqcastError).code).toBe((Cls as unknown as { code?: string }).code ?? 'ERR_MULTICAST_LOOP');
  });

  test('each kind of refusal has its own code', () => {
    const codes = [NotMulticastGroupError, MulticastPortError, MulticastTtlError, UnknownInterfaceError, MulticastSourceError].map((c) => c.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.every((c) => /^ERR_MULTICAST_/.test(c))).toBe(true);
  });

  test('without `what` the message starts with what is wrong', () => {
    expect(() => checkMulticastGroup({ group: '10.0.0.1', port: 1 }, { interfaces: HOST })).toThrow(/^multicast group 10\.0\.0\.1 /);
  });
});

describe('the interface handed to the sink', () => {
  test.each([
    ['an IPv4 group, an interface name', { group: '239.1.2.3', port: 1, interface: 'eth1' }, 'eth1'],
    ['an IPv4 group, an IPv4 address: the address (IP_MULTICAST_IF takes it)', { group: '239.1.2.3', port: 1, interface: '198.51.100.20' }, '198.51.100.20'],
    ['an IPv4 group, an IPv6 address: the name of its interface', { group: '239.1.2.3', port: 1, interface: '2001:db8::10' }, 'eth0'],
    ['an IPv6 group, an interface name', { group: 'ff3e::1', port: 1, interface: 'eth0' }, 'eth0'],
    ['an IPv6 group, an IPv6 address: the name (IPV6_MULTICAST_IF takes an index)', { group: 'ff3e::1', port: 1, interface: '2001:DB8:0::10' }, 'eth0'],
    ['an IPv6 group, a zoned link-local address', { group: 'ff02::1:3', port: 1, interface: 'fe80::10%eth0' }, 'eth0'],
    ['an IPv6 group, an IPv4 address', { group: 'ff3e::1', port: 1, interface: '192.0.2.10' }, 'eth0'],
  ] as [string, MulticastGroupConfig, string][])('%s', (_name, config, iface) => {
    expect(check(config).interface).toBe(iface);
  });
});

describe('the announced source (§10.10)', () => {
  test('the configured source wins, in canonical form', () => {
    expect(check({ group: 'ff3e::1', port: 1, source: '2001:DB8:0:0::10', interface: 'eth0' }, '::1').source).toBe('2001:db8::10');
    expect(check({ group: '239.1.2.3', port: 1, source: '198.51.100.20', interface: '192.0.2.10' }, '127.0.0.1').source).toBe('198.51.100.20');
  });

  test('else the interface address, when the interface was given as an address of the group family', () => {
    expect(check({ group: '239.1.2.3', port: 1, interface: '192.0.2.10' }, '127.0.0.1').source).toBe('192.0.2.10');
    expect(check({ group: 'ff3e::1', port: 1, interface: '2001:db8::10' }, '::1').source).toBe('2001:db8::10');
  });

  test('else the bind address, when it is not a wildcard and of the group family', () => {
    expect(check({ group: '239.1.2.3', port: 1, interface: 'eth0' }, '127.0.0.1').source).toBe('127.0.0.1');
    expect(check({ group: '239.1.2.3', port: 1, interface: '2001:db8::10' }, '192.0.2.10').source).toBe('192.0.2.10');
    expect(check({ group: 'ff3e::1', port: 1 }, '::1').source).toBe('::1');
  });

  test.each([
    ['a wildcard IPv4 bind', '239.1.2.3', '0.0.0.0'],
    ['a wildcard IPv6 bind', 'ff3e::1', '::'],
    ['an IPv4 bind, an IPv6 group', 'ff3e::1', '127.0.0.1'],
    ['an IPv6 bind, an IPv4 group', '239.1.2.3', '::1'],
    ['a bind host name', '239.1.2.3', 'localhost'],
  ])('else none (any-source): %s', (_name, group, bindHost) => {
    expect(check({ group, port: 1 }, bindHost)).not.toHaveProperty('source');
  });

  test('sinkConfig: what the multicast sink is given, with no absent field', () => {
    expect(sinkConfig(check({ group: '239.1.2.3', port: 7 }))).toStrictEqual({ group: '239.1.2.3', port: 7, ttl: 1, loop: true });
    expect(sinkConfig(check({ group: '239.1.2.3', port: 7, ttl: 4, loop: false, interface: '192.0.2.10' }))).toStrictEqual({
      group: '239.1.2.3',
      port: 7,
      ttl: 4,
      loop: false,
      interface: '192.0.2.10',
      source: '192.0.2.10',
    });
  });
});

describe('this host', () => {
  test('findInterface: the loopback by name and by address; nothing for an address no interface holds', () => {
    expect(findInterface('lo')).toEqual({ name: 'lo' });
    expect(findInterface('127.0.0.1')).toEqual({ name: 'lo', address: '127.0.0.1' });
    expect(findInterface('rqcast-no-such-if0')).toBeUndefined();
    expect(findInterface('')).toBeUndefined();
  });

  test('isLocalUnicast: 127.0.0.1 is, in its own family only', () => {
    expect(isLocalUnicast('127.0.0.1', 4)).toBe(true);
    expect(isLocalUnicast('127.0.0.1', 6)).toBe(false);
    expect(isLocalUnicast('::ffff:127.0.0.1', 6)).toBe(false);
    expect(isLocalUnicast('0.0.0.0', 4)).toBe(false);
  });
});
