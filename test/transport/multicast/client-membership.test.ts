/**
 * MulticastMembership (lib/transport/multicast/client-membership.ts): the
 * receive-only ClientTransport of one group. Its rules against a recording
 * socket (checks, bind address, join/leave bookkeeping, close); the two
 * sockets under it (membership-socket.ts: the native receiver by default,
 * node's dgram when asked or without the addon) and what the native one
 * asks of the addon; then real sockets in a network namespace
 * (multicast-netns.ts), with each receiver: source-specific filtering,
 * leave and rejoin, SO_REUSEADDR, IPv4 and IPv6, and a membership that
 * left while another socket of the host stays joined (the native receiver
 * hears nothing more; dgram goes on hearing the group).
 */
import * as dgram from 'dgram';
import * as path from 'path';
import { loadNative, type NativeBinding } from '../../../lib/native';
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
  MembershipSocketOpener,
  MembershipSocketOptions,
  MembershipTarget,
} from '../../../lib/transport/multicast/membership-socket';
import {
  membershipSocketOpener,
  openDgramMembershipSocket,
  openNativeMembershipSocket,
} from '../../../lib/transport/multicast/membership-socket';
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

/**
 * A binding whose UdpReceiver records what it is asked (the constructor's
 * arguments, memberships) and hands over the batches a test pushes.
 */
class FakeReceiver {
  static made: FakeReceiver[] = [];
  readonly args: unknown[];
  readonly calls: string[] = [];
  closed = 0;
  failJoin?: Error;
  readonly onBatch: (data: Buffer, lengths: Uint32Array, sources: Buffer, truncated: number) => void;
  constructor(...args: unknown[]) {
    this.args = args;
    this.onBatch = args[5] as FakeReceiver['onBatch'];
    FakeReceiver.made.push(this);
  }
  localAddress(): { address: string; port: number; family: 'IPv4' | 'IPv6' } {
    return { address: this.args[0] as string, port: (this.args[1] as number) || 40000, family: 'IPv4' };
  }
  addMembership(group: string, iface?: string, source?: string): void {
    if (this.failJoin) throw this.failJoin;
    this.calls.push(`add ${group} if=${iface ?? '-'} src=${source ?? '-'}`);
  }
  dropMembership(group: string, iface?: string, source?: string): void {
    this.calls.push(`drop ${group} if=${iface ?? '-'} src=${source ?? '-'}`);
  }
  send(): boolean {
    return true;
  }
  stats(): Record<string, number | boolean> {
    return {};
  }
  ref(): void {}
  unref(): void {}
  close(): void {
    this.closed++;
  }
  /** One batch: the datagrams end to end, and a 20-byte source record each from 192.0.2.1:4000. */
  push(...texts: string[]): void {
    const sources = Buffer.alloc(20 * texts.length);
    texts.forEach((_t, i) => {
      sources[i * 20] = 4;
      sources.writeUInt16BE(4000, i * 20 + 2);
      Buffer.from([192, 0, 2, 1]).copy(sources, i * 20 + 4);
    });
    this.onBatch(Buffer.from(texts.join('')), Uint32Array.from(texts.map((t) => t.length)), sources, 0);
  }
}
const FAKE_BINDING = { UdpReceiver: FakeReceiver } as unknown as NativeBinding;

describe('which socket a membership gets (membershipSocketOpener)', () => {
  const loopback: MembershipSocketOptions = { family: 4, address: '127.0.0.1', port: 0, receiveBufferBytes: 1 << 20 };
  const opened: MembershipSocket[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  const receiverOf = async (open: MembershipSocketOpener) => {
    const s = await open(loopback, new Handler());
    opened.push(s);
    return s.receiver;
  };

  test('the native receiver by default; dgram when asked, or when the addon has no UdpReceiver or one without memberships', async () => {
    expect(await receiverOf(membershipSocketOpener())).toBe('native');
    expect(await receiverOf(membershipSocketOpener({ useDgram: false }))).toBe('native');
    expect(await receiverOf(membershipSocketOpener({ useDgram: true }))).toBe('dgram');
    const { UdpReceiver: _omit, ...withoutReceiver } = loadNative();
    expect(await receiverOf(membershipSocketOpener({ binding: withoutReceiver as unknown as NativeBinding }))).toBe('dgram');
    // An addon from before receivers had memberships.
    class Older {}
    expect(await receiverOf(membershipSocketOpener({ binding: { ...loadNative(), UdpReceiver: Older } as unknown as NativeBinding }))).toBe('dgram');
    expect(await receiverOf(openNativeMembershipSocket)).toBe('native');
    expect(await receiverOf(openDgramMembershipSocket)).toBe('dgram');
  });

  test('a membership opened without a socket of its own takes the default opener; useDgram wins over any addon', async () => {
    FakeReceiver.made = [];
    const m = await openMulticastMembership({ group: '239.1.1.1', port: 5000 }, new Handler(), { interfaces: IFACES, binding: FAKE_BINDING });
    expect(m.receiver).toBe('native');
    expect(FakeReceiver.made).toHaveLength(1);
    await m.close();
    expect(await receiverOf(membershipSocketOpener({ useDgram: true, binding: FAKE_BINDING }))).toBe('dgram');
    expect(FakeReceiver.made).toHaveLength(1);
  });
});

describe('the native receiver under a membership (fake addon)', () => {
  beforeEach(() => {
    FakeReceiver.made = [];
  });

  test('binds the group and port with SO_REUSEADDR, reading like the client\'s unicast socket (batch, gather window, receive buffer)', async () => {
    const { m } = await openNative({ group: '232.1.1.1', port: 5000, source: '192.0.2.1', interface: 'eth0' }, { batch: 128, gatherMicros: 3000, receiveBufferBytes: 8 << 20 });
    const [rx] = FakeReceiver.made;
    // address, port, receiveBufferBytes, maxDatagram, batch, onBatch, gatherMicros, reuseAddress
    expect([rx.args[0], rx.args[1], rx.args[2], rx.args[3], rx.args[4], rx.args[6], rx.args[7]]).toEqual(['232.1.1.1', 5000, 8 << 20, 65535, 128, 3000, true]);
    expect(m.localPort()).toBe(5000);
    await m.close();
  });

  test('defaults: 256 datagrams a batch, an 8 ms gather window; a receive buffer above 1 GiB is asked as 1 GiB', async () => {
    await openNative({ group: 'ff3e::1', port: 5000 }, { receiveBufferBytes: 2 ** 31 });
    const [rx] = FakeReceiver.made;
    expect([rx.args[0], rx.args[2], rx.args[4], rx.args[6], rx.args[7]]).toEqual(['ff3e::1', 1 << 30, 256, 8000, true]);
  });

  test('join and leave go to the receiver with the interface by index and the source', async () => {
    const { m } = await openNative({ group: '232.1.1.1', port: 5000, source: '192.0.2.1', interface: '192.0.2.10' });
    m.leave();
    m.join();
    const v6 = await openNative({ group: 'ff3e::1', port: 5000 });
    v6.m.leave();
    const [rx, rx6] = FakeReceiver.made;
    expect(rx.calls).toEqual(['add 232.1.1.1 if=2 src=192.0.2.1', 'drop 232.1.1.1 if=2 src=192.0.2.1', 'add 232.1.1.1 if=2 src=192.0.2.1']);
    expect(rx6.calls).toEqual(['add ff3e::1 if=- src=-', 'drop ff3e::1 if=- src=-']);
  });

  test('its batches are handed over as they are, each datagram with its source; nothing after close, which closes the receiver once', async () => {
    const { m, handler } = await openNative({ group: '239.1.1.1', port: 5000 });
    const [rx] = FakeReceiver.made;
    rx.push('x', 'yy', 'zzz');
    const [d] = handler.deliveries;
    expect(d.count).toBe(3);
    expect([0, 1, 2].map((i) => [d.datagram(i).toString(), d.offset(i), d.length(i), d.address(i), d.port(i)])).toEqual([
      ['x', 0, 1, '192.0.2.1', 4000],
      ['yy', 1, 2, '192.0.2.1', 4000],
      ['zzz', 3, 3, '192.0.2.1', 4000],
    ]);
    await m.close();
    await m.close();
    rx.push('late');
    expect(handler.deliveries).toHaveLength(1);
    expect(rx.closed).toBe(1);
  });

  test('what the addon throws becomes a MembershipSocketError with the system error\'s name', async () => {
    const refusing = class extends FakeReceiver {
      constructor(...args: unknown[]) {
        super(...args);
        this.failJoin = Object.assign(new Error('addMembership: no interface to join the group on'), { code: 'ERR_RQ_NO_SUCH_INTERFACE', errno: 19 });
      }
    };
    const attempt = openMulticastMembership({ group: '239.1.1.1', port: 5000 }, new Handler(), { interfaces: IFACES, binding: { UdpReceiver: refusing } as unknown as NativeBinding });
    await expect(attempt).rejects.toMatchObject({ code: MembershipSocketError.code, errno: 'ENODEV', message: expect.stringMatching(/^cannot join 239\.1\.1\.1: /) });
    // The socket was closed with the failed open.
    expect(FakeReceiver.made[0].closed).toBe(1);
  });
});

async function openNative(spec: Parameters<typeof openMulticastMembership>[0], o: { batch?: number; gatherMicros?: number; receiveBufferBytes?: number } = {}) {
  const handler = new Handler();
  const m = await openMulticastMembership(spec, handler, { interfaces: IFACES, binding: FAKE_BINDING, ...o });
  return { m, handler };
}

describe.each([
  ['dgram', openDgramMembershipSocket],
  ['native', openNativeMembershipSocket],
] as const)('the %s socket under a membership', (receiver, openSocket) => {
  test('datagrams are handed over in batches laid end to end in one buffer, each with its source', async () => {
    const handler = new Handler();
    const sock = await openSocket({ family: 4, address: '127.0.0.1', port: 0, receiveBufferBytes: 1 << 20 }, handler);
    expect(sock.receiver).toBe(receiver);
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
    const attempt = openSocket({ family: 4, address: '127.0.0.1', port: squatter.address().port, receiveBufferBytes: 1 << 20 }, new Handler());
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

  type Beside = { a: Record<string, number>; b: Record<string, number>; joinedSources: string[] };

  // `native` runs the child without a receiver option: the default (each result says which receiver it got).
  // `whileLeft`: what a membership that left still gets of each source's 10 datagrams while another socket of
  // the host stays joined to the group on the same port. The native receiver turns IP(V6)_MULTICAST_ALL off and
  // hears nothing; node's dgram cannot, and Linux hands a socket with no membership of the group every
  // datagram of it the host takes (membership-socket.ts).
  describe.each([
    ['IPv4', '4', SOURCE_V4, OTHER_V4],
    ['IPv6', '6', SOURCE_V6, OTHER_V6],
  ])('%s', (_name, family, source, other) => {
    describe.each([
      ['native', 0],
      ['dgram', 10],
    ] as const)('%s receiver', (receiver, whileLeft) => {
      test('a source-specific join takes only the source (RFC 4607); after leave nothing arrives, after join again it does', async () => {
        const { result: r } = await ns.run(CHILD, ['leave-rejoin', family, receiver]);
        expect(r).toMatchObject({ other: 0, one: 20, left: 0, two: 20, sources: [source], joins: 2, joinedAfterLeave: false, joined: true, port: 5001, errors: [], receiver });
      });

      test('an any-source join takes every source; two memberships share the port (SO_REUSEADDR), each gets every datagram', async () => {
        const { result: r } = await ns.run(CHILD, ['any-source', family, receiver]);
        expect(r).toEqual({ a: 20, b: 20, aSources: [source, other].sort(), bSources: [source, other].sort(), receiver });
      });

      test('nothing is handed over after close', async () => {
        const { result: r } = await ns.run(CHILD, ['closed', family, receiver]);
        expect(r).toEqual({ before: 5, after: 5, witnessed: 5, receiver });
      });

      test('an any-source membership that left, beside another socket of the host still joined: native hears nothing more, dgram everything', async () => {
        const { result: r } = await ns.run<Beside>(CHILD, ['left-beside-any-source', family, receiver]);
        expect(r).toMatchObject({ receiver, errors: [] });
        expect(r.a).toEqual({ one: 10, left: whileLeft, leftOther: whileLeft, two: 10 });
        // The other socket got it all: the group reached the host while `a` was out.
        expect(r.b).toEqual({ one: 10, left: 10, leftOther: 10, two: 10 });
      });

      test('a source-specific membership takes only its source while another socket of the host takes every source; once left, native hears nothing, dgram every source', async () => {
        const { result: r } = await ns.run<Beside>(CHILD, ['left-beside-source-specific', family, receiver]);
        expect(r).toMatchObject({ joinedSources: [source], receiver, errors: [] });
        // Joined, and joined again: the kernel's filter of this socket's own membership.
        expect([r.a.o1, r.a.s1, r.a.o3, r.a.s3]).toEqual([0, 10, 0, 10]);
        // Left: with dgram, the foreign source that the other socket let in comes through too.
        expect([r.a.o2, r.a.s2]).toEqual([whileLeft, whileLeft]);
        expect(r.b).toEqual({ o1: 10, s1: 10, o2: 10, s2: 10, o3: 10, s3: 10 });
      });
    });
  });

  test.each(['native', 'dgram'] as const)('an IPv6 group of link-local scope is joined and bound on its interface (%s receiver)', async (receiver) => {
    const { result: r } = await ns.run(CHILD, ['link-local', '6', receiver]);
    expect(r).toEqual({ received: 10, sources: [SOURCE_V6], receiver });
  });
});
