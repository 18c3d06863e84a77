/**
 * UdpServerTransport on loopback, with a replicator that only records what
 * it is asked: control messages in with their Peer and size, replies out
 * within their budget, members and fresh packets handed to the engine as
 * numeric endpoints. Every wait is for an event (a datagram, a callback),
 * never a sleep.
 */
import * as dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Peer } from '../../../lib/session/peer';
import { udpPeer } from '../../../lib/session/peer';
import type {
  MulticastGroupConfig,
  ReplicatorChannelConfig,
  ReplicatorChannelCounters,
  ReplicatorContract,
} from '../../../lib/transport/replicator-contract';
import type { ControlReceived, TransportLogger } from '../../../lib/transport/server-transport';
import { UdpServerTransport } from '../../../lib/transport/udp/server-transport';

/** Records every call; `fail` makes the data-path calls throw. */
class RecordingReplicator extends EventEmitter implements ReplicatorContract {
  readonly calls: unknown[][] = [];
  fail = false;
  createChannel(id: number, config: ReplicatorChannelConfig): void {
    this.calls.push(['createChannel', id, config]);
  }
  removeChannel(id: number): void {
    this.calls.push(['removeChannel', id]);
  }
  addDestination(id: number, address: string, port: number): void {
    this.check();
    this.calls.push(['addDestination', id, address, port]);
  }
  removeDestination(id: number, address: string, port: number): void {
    this.check();
    this.calls.push(['removeDestination', id, address, port]);
  }
  addGroup(channelId: number, group: MulticastGroupConfig): void {
    this.calls.push(['addGroup', channelId, group]);
  }
  removeGroup(channelId: number): void {
    this.calls.push(['removeGroup', channelId]);
  }
  push(_id: number, _packets: Uint8Array, _packetSize: number, count: number): number {
    return count;
  }
  sendTo(address: string, port: number, data: Uint8Array, id?: number): void {
    this.check();
    this.calls.push(['sendTo', address, port, Array.from(data), id]);
  }
  channelStats(): ReplicatorChannelCounters {
    return { queued: 0, destinations: 0, streamPackets: 0, datagrams: 0, bytes: 0 };
  }
  close(): void {}
  private check(): void {
    if (this.fail) throw new Error('refused');
  }
}

/** A client socket that queues what it receives. */
class Client {
  readonly got: Buffer[] = [];
  private waiters: (() => void)[] = [];
  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (m) => {
      this.got.push(m);
      const w = this.waiters;
      this.waiters = [];
      w.forEach((f) => f());
    });
  }
  static async open(host = '127.0.0.1'): Promise<Client> {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((r) => socket.bind(0, host, r));
    return new Client(socket);
  }
  get port(): number {
    return this.socket.address().port;
  }
  async next(n = 1): Promise<Buffer[]> {
    while (this.got.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.got.slice(0, n);
  }
  close(): void {
    this.socket.close();
  }
}

/** Opens a transport and collects what it delivers. */
async function opened(host = '127.0.0.1', logger?: TransportLogger) {
  const replicator = new RecordingReplicator();
  const transport = new UdpServerTransport({ host, port: 0, replicator, logger });
  const received: ControlReceived[] = [];
  let waiters: (() => void)[] = [];
  const address = await transport.open({
    control: (m) => {
      received.push(m);
      const w = waiters;
      waiters = [];
      w.forEach((f) => f());
    },
    error: (err) => {
      throw err;
    },
  });
  const nextControl = async (n: number): Promise<ControlReceived[]> => {
    while (received.length < n) await new Promise<void>((r) => waiters.push(r));
    return received.slice(0, n);
  };
  return { replicator, transport, address, nextControl };
}

describe('UdpServerTransport', () => {
  test('a datagram arrives as one control message with its Peer and byte count', async () => {
    const { transport, address, nextControl } = await opened();
    const c = await Client.open();
    try {
      expect(address).toEqual({ address: '127.0.0.1', port: expect.any(Number), family: 'IPv4' });
      c.socket.send(Buffer.from('hello there'), address.port, '127.0.0.1');
      c.socket.send(Buffer.alloc(300, 1), address.port, '127.0.0.1');
      const [a, b] = await nextControl(2);
      expect(Buffer.from(a.bytes).toString()).toBe('hello there');
      expect(a.from).toEqual(udpPeer('127.0.0.1', c.port));
      expect(a.bytesReceived).toBe(11);
      expect(b.bytesReceived).toBe(300);
      expect(transport.counters).toMatchObject({ controlReceived: 2, controlBytesReceived: 311 });
    } finally {
      c.close();
      await transport.close();
    }
  });

  test('a reply goes out within its budget; one over it is refused, counted and never sent', async () => {
    const { transport } = await opened();
    const c = await Client.open();
    try {
      const to = udpPeer('127.0.0.1', c.port);
      expect(transport.sendControl(to, Buffer.alloc(50, 2), 49)).toBe(false);
      expect(transport.sendControl(to, Buffer.alloc(50, 3), 50)).toBe(true);
      expect(transport.sendControl(to, Buffer.alloc(70, 4))).toBe(true);
      const got = await c.next(2);
      expect(got.map((b) => [b.length, b[0]])).toEqual([
        [50, 3],
        [70, 4],
      ]);
      expect(transport.counters).toMatchObject({ repliesSent: 2, replyBytesSent: 120, repliesOverBudget: 1, replySendErrors: 0 });
    } finally {
      c.close();
      await transport.close();
    }
  });

  test('a send the OS refuses is counted and logged, not thrown', async () => {
    const debug = jest.fn();
    const { transport } = await opened('127.0.0.1', { debug, warn: jest.fn() });
    try {
      // An IPv6 destination from an IPv4 socket: EINVAL, reported in the send callback.
      const failed = new Promise<void>((resolve) => debug.mockImplementation(() => resolve()));
      expect(transport.sendControl(udpPeer('::1', 9), Buffer.alloc(10))).toBe(true);
      await failed;
      expect(transport.counters.replySendErrors).toBe(1);
      expect(debug).toHaveBeenCalledWith({ code: 'EINVAL' }, 'control reply not sent');
    } finally {
      await transport.close();
    }
  });

  test('members and fresh packets reach the replicator as numeric endpoints on the channel', async () => {
    const { transport, replicator } = await opened();
    try {
      const p: Peer = udpPeer('::ffff:192.0.2.7', 4000);
      transport.addMember(3, p);
      transport.addMember(3, udpPeer('2001:db8::1', 4001));
      transport.sendFresh(3, p, [Uint8Array.of(1, 2), Uint8Array.of(3)]);
      transport.removeMember(3, p);
      expect(replicator.calls).toEqual([
        ['addDestination', 3, '192.0.2.7', 4000],
        ['addDestination', 3, '2001:db8::1', 4001],
        ['sendTo', '192.0.2.7', 4000, [1, 2], 3],
        ['sendTo', '192.0.2.7', 4000, [3], 3],
        ['removeDestination', 3, '192.0.2.7', 4000],
      ]);
    } finally {
      await transport.close();
    }
  });

  test('a data-path call the engine refuses is counted and logged, and the rest still go', async () => {
    const warn = jest.fn();
    const { transport, replicator } = await opened('127.0.0.1', { debug: jest.fn(), warn });
    try {
      replicator.fail = true;
      const p = udpPeer('192.0.2.7', 4000);
      expect(() => transport.addMember(1, p)).not.toThrow();
      transport.removeMember(1, p);
      transport.sendFresh(1, p, [Uint8Array.of(1), Uint8Array.of(2)]);
      expect(transport.counters.dataPathErrors).toBe(4);
      expect(warn).toHaveBeenCalledTimes(4);
      expect(warn.mock.calls[0][1]).toBe('replicator refused a command');
    } finally {
      await transport.close();
    }
  });

  test('dual-stack: an IPv4 client is the mapped address; replies reach it, the engine gets dotted quad', async () => {
    const { transport, replicator, address, nextControl } = await opened('::');
    const c = await Client.open('127.0.0.1');
    try {
      expect(address.family).toBe('IPv6');
      c.socket.send(Buffer.from('x'), address.port, '127.0.0.1');
      const [m] = await nextControl(1);
      expect(m.from).toEqual(udpPeer('::ffff:127.0.0.1', c.port));
      expect(transport.sendControl(m.from, Buffer.from('reply'))).toBe(true);
      expect((await c.next(1))[0].toString()).toBe('reply');
      transport.addMember(1, m.from);
      expect(replicator.calls).toEqual([['addDestination', 1, '127.0.0.1', c.port]]);
    } finally {
      c.close();
      await transport.close();
    }
  });

  test('open on a port in use rejects and leaves the transport closed', async () => {
    const first = await opened();
    const second = new UdpServerTransport({ host: '127.0.0.1', port: first.address.port, replicator: new RecordingReplicator() });
    try {
      await expect(second.open({ control() {}, error() {} })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      await expect(second.close()).resolves.toBeUndefined();
      expect(second.sendControl(udpPeer('127.0.0.1', 9), Buffer.alloc(1))).toBe(false);
    } finally {
      await first.transport.close();
    }
  });

  test('close is idempotent and ends sending', async () => {
    const { transport } = await opened();
    const closing = transport.close();
    expect(transport.close()).toBe(closing);
    await closing;
    expect(transport.sendControl(udpPeer('127.0.0.1', 9), Buffer.alloc(1))).toBe(false);
    expect(transport.counters.repliesSent).toBe(0);
  });
});
