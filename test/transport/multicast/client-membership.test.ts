/**
 * MulticastMembership (lib/transport/multicast/client-membership.ts): the
 * receive-only ClientTransport of one group. Its rules against a recording
 * socket (checks, bind address, join/leave bookkeeping, close), then real
 * sockets in a network namespace (multicast-netns.ts): source-specific
 * filtering, leave and rejoin, SO_REUSEADDR, IPv4 and IPv6.
 */
import * as dgram from 'dgram';
import * as path from 'path';
import type { Datagrams } from '../../../lib/transport/client-transport';
import { checkMembershipGroup, membershipBindAddress, openMulticastMembership } from '../../../lib/transport/multicast/client-membership';
import {
  MembershipClosedError,
  MembershipGroupError,
  MembershipInterfaceError,
  MembershipSocketError,
  ReceiveOnlyTransportError,
} from '../../../lib/transport/multicast/membership-errors';
import type { LocalInterface } from '../../../lib/transport/multicast/membership-interface';
import type {
  MembershipSocket,
  MembershipSocketHandler,
  MembershipSocketOptions,
  MembershipTarget,
} from '../../../lib/transport/multicast/membership-socket';
import { openDgramMembershipSocket } from '../../../lib/transport/multicast/membership-socket';
import { MulticastNamespace, OTHER_V4, OTHER_V6, probe, SOURCE_V4, SOURCE_V6 } from './multicast-netns';

const IFACES: LocalInterface[] = [
  { name: 'eth0', index: 2, multicast: true, addresses: [{ family: 4, address: '192.0.2.10' }, { family: 6, address: '2001:db8::10' }] },
  { name: 'v6only', index: 3, multicast: true, addresses: [{ family: 6, address: 'fe80::1' }] },
];

/** A socket that records what the membership asks of it. */
class RecordingSocket implements MembershipSocket {
  readonly calls: string[] = [];
  closed = 0;
  failJoin?: Error;
  handler!: MembershipSocketHandler;
  options!: MembershipSocketOptions;
  readonly port = 5000;
  addMembership(group: string, t: MembershipTarget): void {
    if (this.failJoin) throw this.failJoin;
    this.calls.push(`add ${group} if=${t.interface?.name ?? '-'} src=${t.source ?? '-'}`);
  }
  dropMembership(group: string, t: MembershipTarget): void {
    this.calls.push(`drop ${group} if=${t.interface?.name ?? '-'} src=${t.source ?? '-'}`);
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

class Handler {
  readonly deliveries: Datagrams[] = [];
  readonly errors: Error[] = [];
  onDatagrams(d: Datagrams): void {
    this.deliveries.push(d);
  }
  onError(e: Error): void {
    this.errors.push(e);
  }
}

function one(bytes: string, address = '192.0.2.1'): Datagrams {
  const data = Buffer.from(bytes);
  return { count: 1, data, truncated: 0, offset: () => 0, length: () => data.length, datagram: () => data, address: () => address, port: () => 1 };
}

async function open(spec: Parameters<typeof openMulticastMembership>[0], sock = new RecordingSocket()) {
  const handler = new Handler();
  const m = await openMulticastMembership(spec, handler, {
    interfaces: IFACES,
    openSocket: async (o, h) => {
      sock.options = o;
      sock.handler = h;
      return sock;
    },
  });
  return { m, sock, handler };
}

describe('checkMembershipGroup', () => {
  test('IPv4 and IPv6 groups, with or without a source and an interface', () => {
    expect(checkMembershipGroup({ group: '232.1.1.1', port: 5000, source: '192.0.2.1', interface: 'eth0' }, IFACES)).toEqual({
      group: '232.1.1.1',
      port: 5000,
      family: 4,
      source: '192.0.2.1',
      interface: { spec: 'eth0', name: 'eth0', index: 2, ipv4: '192.0.2.10' },
    });
    expect(checkMembershipGroup({ group: 'ff3e::1', port: 1 }, IFACES)).toEqual({ group: 'ff3e::1', port: 1, family: 6 });
  });

  test.each([
    ['a unicast address', { group: '10.0.0.1', port: 5000 }, /not a multicast group/],
    ['a host name', { group: 'example.org', port: 5000 }, /not a multicast group/],
    ['an IPv4-mapped group', { group: '::ffff:239.1.1.1', port: 5000 }, /not a multicast group/],
    ['a zone', { group: 'ff02::1%eth0', port: 5000 }, /not a multicast group/],
    ['port 0', { group: '239.1.1.1', port: 0 }, /port is 1\.\.65535/],
    ['port 65536', { group: '239.1.1.1', port: 65536 }, /port is 1\.\.65535/],
    ['a fractional port', { group: '239.1.1.1', port: 1.5 }, /port is 1\.\.65535/],
    ['a source of the other family', { group: '239.1.1.1', port: 1, source: '2001:db8::1' }, /unicast IPv4 address/],
    ['a multicast source', { group: '239.1.1.1', port: 1, source: '239.1.1.2' }, /unicast IPv4 address/],
    ['the unspecified source', { group: 'ff3e::1', port: 1, source: '::' }, /unicast IPv6 address/],
    ['a source that is no address', { group: '239.1.1.1', port: 1, source: 'host' }, /unicast IPv4 address/],
  ])('refuses %s', (_what, spec, message) => {
    expect(() => checkMembershipGroup(spec, IFACES)).toThrow(MembershipGroupError);
    expect(() => checkMembershipGroup(spec, IFACES)).toThrow(message);
  });

  test.each([
    ['an unknown name', { interface: 'eth9' }, /no interface named "eth9"/],
    ['an address no interface has', { interface: '192.0.2.99' }, /no interface of this host has the address/],
    ['an IPv4 group on an interface without IPv4', { interface: 'v6only' }, /no IPv4 address/],
    ['an unknown index', { interface: '77' }, /no interface of this host has index 77/],
  ])('refuses %s', (_what, o, message) => {
    expect(() => checkMembershipGroup({ group: '239.1.1.1', port: 1, ...o }, IFACES)).toThrow(MembershipInterfaceError);
    expect(() => checkMembershipGroup({ group: '239.1.1.1', port: 1, ...o }, IFACES)).toThrow(message);
  });

  test('an IPv6 group is not joined on an interface named by an IPv4 address', () => {
    expect(() => checkMembershipGroup({ group: 'ff3e::1', port: 1, interface: '192.0.2.10' }, IFACES)).toThrow(/IPv4 address cannot name/);
  });
});

describe('membershipBindAddress', () => {
  const bind = (group: string, itf?: string) => membershipBindAddress(checkMembershipGroup({ group, port: 1, interface: itf }, IFACES));
  test('binds the group itself, so that only its datagrams arrive', () => {
    expect(bind('239.1.1.1')).toBe('239.1.1.1');
    expect(bind('ff3e::8000:1')).toBe('ff3e::8000:1');
    expect(bind('ff15::1')).toBe('ff15::1');
  });
  test('an IPv6 group of interface- or link-local scope takes the interface as zone, or the wildcard without one (RFC 4291 §2.7)', () => {
    expect(bind('ff02::1:3', 'eth0')).toBe('ff02::1:3%eth0');
    expect(bind('ff12::1', '2')).toBe('ff12::1%eth0');
    expect(bind('ff01::1', 'eth0')).toBe('ff01::1%eth0');
    expect(bind('ff02::1:3')).toBe('::');
  });
});

describe('MulticastMembership (recording socket)', () => {
  test('open binds the group port on the group and joins once, source-specific when a source is given', async () => {
    const { m, sock } = await open({ group: '232.1.1.1', port: 5000, source: '192.0.2.1', interface: '192.0.2.10' });
    expect(sock.options).toEqual({ family: 4, address: '232.1.1.1', port: 5000, receiveBufferBytes: 4 << 20 });
    expect(sock.calls).toEqual(['add 232.1.1.1 if=eth0 src=192.0.2.1']);
    expect(m.kind).toBe('multicast');
    expect(m.carriesControl).toBe(false);
    expect(m.server).toEqual({ address: '232.1.1.1', port: 5000, family: 4 });
    expect(m.joined).toBe(true);
    expect(m.joins).toBe(1);
    expect(m.localPort()).toBe(5000);
  });

  test('leave and join any number of times: one kernel call per change', async () => {
    const { m, sock } = await open({ group: 'ff3e::1', port: 5000 });
    for (let i = 0; i < 3; i++) {
      m.leave();
      m.leave();
      expect(m.joined).toBe(false);
      m.join();
      m.join();
      expect(m.joined).toBe(true);
    }
    expect(sock.calls).toEqual(['add ff3e::1 if=- src=-', ...Array(3).fill(['drop ff3e::1 if=- src=-', 'add ff3e::1 if=- src=-']).flat()]);
    expect(m.joins).toBe(4);
  });

  test('hands every delivery over until close, nothing after; close is idempotent and leaves', async () => {
    const { m, sock, handler } = await open({ group: '239.1.1.1', port: 5000 });
    sock.handler.onDatagrams(one('a'));
    sock.handler.onError(new Error('boom'));
    await m.close();
    await m.close();
    sock.handler.onDatagrams(one('b'));
    sock.handler.onError(new Error('late'));
    expect(handler.deliveries.map((d) => d.datagram(0).toString())).toEqual(['a']);
    expect(handler.errors.map((e) => e.message)).toEqual(['boom']);
    expect(sock.closed).toBe(1);
    expect(m.joined).toBe(false);
    // Leaving a closed membership is nothing; joining one is an error.
    m.leave();
    expect(() => m.join()).toThrow(MembershipClosedError);
    expect(m.stats()).toEqual({ socketDrops: 0 });
  });

  test('sendControl throws: a membership only receives', async () => {
    const { m } = await open({ group: '239.1.1.1', port: 5000 });
    expect(() => m.sendControl(new Uint8Array(8))).toThrow(ReceiveOnlyTransportError);
  });

  test('a join the kernel refuses at open fails the open and closes the socket', async () => {
    const sock = new RecordingSocket();
    sock.failJoin = new MembershipSocketError('cannot join 239.1.1.1: ENODEV', { errno: 'ENODEV' });
    await expect(open({ group: '239.1.1.1', port: 5000 }, sock)).rejects.toMatchObject({ code: MembershipSocketError.code, errno: 'ENODEV' });
    expect(sock.closed).toBe(1);
  });

  test('a bad group is refused before any socket is opened', async () => {
    let opened = 0;
    const attempt = openMulticastMembership({ group: '10.1.1.1', port: 5000 }, new Handler(), {
      openSocket: async () => {
        opened++;
        return new RecordingSocket();
      },
    });
    await expect(attempt).rejects.toBeInstanceOf(MembershipGroupError);
    expect(opened).toBe(0);
  });
});

describe('the dgram socket under a membership', () => {
  test('datagrams are handed over in batches laid end to end in one buffer, each with its source', async () => {
    const handler = new Handler();
    const sock = await openDgramMembershipSocket({ family: 4, address: '127.0.0.1', port: 0, receiveBufferBytes: 1 << 20 }, handler);
    const tx = dgram.createSocket('udp4');
    await new Promise<void>((r) => tx.bind(0, '127.0.0.1', r));
    const sends = ['x', 'yy', 'zzz'].map((p) => new Promise<void>((r) => tx.send(p, sock.port, '127.0.0.1', () => r())));
    await Promise.all(sends);
    while (handler.deliveries.reduce((n, d) => n + d.count, 0) < 3) await new Promise((r) => setTimeout(r, 10));
    const all = handler.deliveries.flatMap((d) => Array.from({ length: d.count }, (_, i) => ({ text: d.datagram(i).toString(), at: d.offset(i), len: d.length(i), address: d.address(i), port: d.port(i), data: d.data })));
    expect(all.map((x) => x.text)).toEqual(['x', 'yy', 'zzz']);
    for (const x of all) {
      expect(x.address).toBe('127.0.0.1');
      expect(x.port).toBe(tx.address().port);
      // The datagram sits in `data` where offset and length say (what the data path reads in place).
      expect(Buffer.from(x.data.subarray(x.at, x.at + x.len)).toString()).toBe(x.text);
    }
    tx.close();
    await sock.close();
    await sock.close();
  });

  test('a port already bound without SO_REUSEADDR is a MembershipSocketError', async () => {
    const squatter = dgram.createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(0, '127.0.0.1', r));
    const attempt = openDgramMembershipSocket({ family: 4, address: '127.0.0.1', port: squatter.address().port, receiveBufferBytes: 1 << 20 }, new Handler());
    await expect(attempt).rejects.toMatchObject({ code: MembershipSocketError.code, errno: 'EADDRINUSE' });
    squatter.close();
  });
});

// ---------------------------------------------------------------- netns --

const netns = probe();
if (!netns.ok) console.warn(`skipping multicast membership tests in a namespace: ${netns.reason}`);
const describeNetns = netns.ok ? describe : describe.skip;
const CHILD = path.join(__dirname, 'membership-child.ts');

describeNetns('MulticastMembership on a real interface (network namespace)', () => {
  let ns: MulticastNamespace;
  beforeAll(() => {
    ns = MulticastNamespace.create();
  });
  afterAll(() => ns?.destroy());

  describe.each([
    ['IPv4', '4', SOURCE_V4, OTHER_V4],
    ['IPv6', '6', SOURCE_V6, OTHER_V6],
  ])('%s', (_name, family, source, other) => {
    test('a source-specific join takes only the source (RFC 4607); after leave nothing arrives, after join again it does', async () => {
      const { result: r } = await ns.run(CHILD, ['leave-rejoin', family]);
      expect(r).toMatchObject({ other: 0, one: 20, left: 0, two: 20, sources: [source], joins: 2, joinedAfterLeave: false, joined: true, port: 5001, errors: [] });
    });

    test('an any-source join takes every source; two memberships share the port (SO_REUSEADDR), each gets every datagram', async () => {
      const { result: r } = await ns.run(CHILD, ['any-source', family]);
      expect(r).toEqual({ a: 20, b: 20, aSources: [source, other].sort(), bSources: [source, other].sort() });
    });

    test('nothing is handed over after close', async () => {
      const { result: r } = await ns.run(CHILD, ['closed', family]);
      expect(r).toEqual({ before: 5, after: 5, witnessed: 5 });
    });
  });

  test('an IPv6 group of link-local scope is joined and bound on its interface', async () => {
    const { result: r } = await ns.run(CHILD, ['link-local', '6']);
    expect(r).toEqual({ received: 10, sources: [SOURCE_V6] });
  });
});

