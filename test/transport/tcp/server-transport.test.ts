/**
 * TcpServerTransport over a fake native server (fake-native-tcp-server.ts):
 * framing per connection, peers, replies, membership, the session ending
 * with its connection, framing errors, and the host filter's life around
 * the native server's.
 */
import { encodeFrame } from '../../../lib/protocol/framing';
import type { Peer } from '../../../lib/session/peer';
import { tcpPeer, udpPeer } from '../../../lib/session/peer';
import type { ControlReceived } from '../../../lib/transport/server-transport';
import { TcpServerStartError, TcpServerTransport } from '../../../lib/transport/tcp/server-transport';
import { FakeHostFilter, fakeFactory, FakeNativeTcpServer } from './fake-native-tcp-server';

interface Opened {
  t: TcpServerTransport;
  native: FakeNativeTcpServer;
  filter: FakeHostFilter;
  control: ControlReceived[];
  gone: Peer[];
}

async function opened(options: { maxBufferedBytes?: number } = {}): Promise<Opened> {
  const factory = fakeFactory();
  const filter = new FakeHostFilter();
  const t = new TcpServerTransport({ address: '10.0.0.1', port: 4433, createServer: factory, hostFilter: filter, limits: { maxConnections: 300 }, ...options });
  const control: ControlReceived[] = [];
  const gone: Peer[] = [];
  await t.open({ control: (m) => control.push(m), error: () => {}, peerGone: (p) => gone.push(p) });
  return { t, native: factory.servers[0], filter, control, gone };
}

const bytes = (...v: number[]): Uint8Array => Uint8Array.from(v);
const concat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p)));

describe('the sender path in the log', () => {
  async function logged(packetPath: { on: boolean; errno: number }, gsoSegments?: number): Promise<{ level: string; obj: object; msg?: string }[]> {
    const lines: { level: string; obj: object; msg?: string }[] = [];
    const logger = { debug: (obj: object, msg?: string) => lines.push({ level: 'debug', obj, msg }), warn: (obj: object, msg?: string) => lines.push({ level: 'warn', obj, msg }) };
    const factory = fakeFactory((s) => (s.packetPath = packetPath));
    const t = new TcpServerTransport({ address: '10.0.0.1', port: 4433, createServer: factory, hostFilter: new FakeHostFilter(), logger, ...(gsoSegments !== undefined ? { limits: { gsoSegments } } : {}) });
    await t.open({ control: () => {}, error: () => {}, peerGone: () => {} });
    await t.close();
    return lines;
  }

  test('GSO on: said at debug level', async () => {
    const lines = await logged({ on: true, errno: 0 });
    expect(lines).toEqual([{ level: 'debug', obj: { gsoSegments: 64 }, msg: expect.stringMatching(/GSO/) as unknown as string }]);
  });

  test('the packet socket refused: a warning with the errno, naming the path taken instead', async () => {
    const lines = await logged({ on: false, errno: 1 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', obj: { errno: 1 } });
    expect(lines[0].msg).toMatch(/routed raw socket/);
  });

  test('turned off (--tcp-gso 0): nothing to warn of', async () => {
    expect(await logged({ on: false, errno: 0 }, 0)).toEqual([]);
  });
});

describe('open and close', () => {
  test('the host filter goes in before the native server starts, with the address, port and limits; close stops it, then removes the filter', async () => {
    const order: string[] = [];
    const factory = fakeFactory((s) => {
      order.push('create');
      const start = s.start.bind(s);
      s.start = () => {
        order.push('start');
        start();
      };
    });
    const filter = new FakeHostFilter();
    const install = filter.install.bind(filter);
    filter.install = async () => {
      order.push('install');
      await install();
    };
    const t = new TcpServerTransport({ address: '10.0.0.1', port: 4433, createServer: factory, hostFilter: filter, limits: { mss: 1400 } });
    expect(t.kind).toBe('tcp');
    await expect(t.open({ control: () => {}, error: () => {} })).resolves.toEqual({ address: '10.0.0.1', port: 4433, family: 'IPv4' });
    expect(order).toEqual(['install', 'create', 'start']);
    expect(factory.servers[0].options).toEqual({ address: '10.0.0.1', port: 4433, mss: 1400 });
    await t.close();
    await t.close();
    expect(factory.servers[0].calls.filter((c) => c.op === 'stop')).toHaveLength(1);
    expect(filter.log).toEqual(['install', 'remove']);
  });

  test('a native server that cannot start (EPERM): TcpServerStartError naming CAP_NET_RAW, the filter removed again', async () => {
    const factory = fakeFactory((s) => {
      s.startError = Object.assign(new Error('socket: Operation not permitted'), { code: 'EPERM' });
    });
    const filter = new FakeHostFilter();
    const t = new TcpServerTransport({ address: '0.0.0.0', port: 4433, createServer: factory, hostFilter: filter });
    const err = await t.open({ control: () => {}, error: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TcpServerStartError);
    expect((err as TcpServerStartError).reason).toBe('EPERM');
    expect((err as Error).message).toMatch(/CAP_NET_RAW/);
    expect(filter.log).toEqual(['install', 'remove']);
    expect(factory.servers[0].stopped).toBe(true);
  });

  test('a host filter that cannot be installed: its error, and no native server', async () => {
    const factory = fakeFactory();
    const filter = new FakeHostFilter();
    filter.installError = new Error('no nft');
    const t = new TcpServerTransport({ address: '0.0.0.0', port: 4433, createServer: factory, hostFilter: filter });
    await expect(t.open({ control: () => {}, error: () => {} })).rejects.toThrow('no nft');
    expect(factory.servers).toHaveLength(0);
  });

  test('events after close are ignored; no command reaches a stopped server', async () => {
    const o = await opened();
    o.native.emit({ type: 'open', id: 1, address: '192.0.2.7', port: 40000 });
    await o.t.close();
    o.native.emit({ type: 'data', id: 1, bytes: Buffer.from(encodeFrame(bytes(0x52, 1))) });
    expect(o.control).toHaveLength(0);
    o.t.addMember(1, tcpPeer('192.0.2.7', 40000, 1));
    expect(o.t.sendControl(tcpPeer('192.0.2.7', 40000, 1), bytes(1))).toBe(false);
    expect(o.native.calls.map((c) => c.op)).toEqual(['start', 'stop']);
  });
});

describe('control messages', () => {
  test('frames split across and packed into data events become one control message each, from tcpPeer(address, port, id)', async () => {
    const o = await opened();
    o.native.emit({ type: 'open', id: 7, address: '192.0.2.7', port: 40000 });
    const a = encodeFrame(bytes(0x52, 0x51, 1, 2, 3));
    const b = encodeFrame(bytes(0x52, 0x51, 9));
    const stream = concat(a, b, a);
    o.native.emit({ type: 'data', id: 7, bytes: stream.subarray(0, 1) }, { type: 'data', id: 7, bytes: stream.subarray(1, 9) });
    expect(o.control).toHaveLength(1);
    o.native.emit({ type: 'data', id: 7, bytes: stream.subarray(9) });
    expect(o.control.map((m) => Array.from(m.bytes))).toEqual([[0x52, 0x51, 1, 2, 3], [0x52, 0x51, 9], [0x52, 0x51, 1, 2, 3]]);
    expect(o.control[0].from).toEqual(tcpPeer('192.0.2.7', 40000, 7));
    expect(o.control.map((m) => m.bytesReceived)).toEqual([7, 5, 7]);
    expect(o.t.counters).toMatchObject({ controlReceived: 3, controlBytesReceived: 13 });
  });

  test('two connections from one address and port (one after the other) are two peers', async () => {
    const o = await opened();
    o.native.emit({ type: 'open', id: 1, address: '192.0.2.7', port: 40000 }, { type: 'data', id: 1, bytes: Buffer.from(encodeFrame(bytes(0x52))) });
    o.native.emit({ type: 'close', id: 1, reason: 'normal' });
    o.native.emit({ type: 'open', id: 2, address: '192.0.2.7', port: 40000 }, { type: 'data', id: 2, bytes: Buffer.from(encodeFrame(bytes(0x52))) });
    expect(o.control.map((m) => m.from.connection)).toEqual([1, 2]);
  });

  test('a zero-length frame: the frames before it are delivered, then the connection is aborted and its session ends', async () => {
    const o = await opened();
    o.native.emit({ type: 'open', id: 3, address: '192.0.2.7', port: 40000 });
    o.native.emit({ type: 'data', id: 3, bytes: concat(encodeFrame(bytes(0x52, 1)), bytes(0, 0), encodeFrame(bytes(0x52, 2))) });
    expect(o.control.map((m) => Array.from(m.bytes))).toEqual([[0x52, 1]]);
    expect(o.native.calls).toContainEqual({ op: 'abort', id: 3 });
    expect(o.gone).toEqual([tcpPeer('192.0.2.7', 40000, 3)]);
    expect(o.t.tcp).toMatchObject({ framingErrors: 1, connectionsClosed: 1, closedAborted: 1 });
    // The native close that follows the abort finds nothing: the session ended once.
    o.native.emit({ type: 'close', id: 3, reason: 'aborted' }, { type: 'data', id: 3, bytes: Buffer.from(encodeFrame(bytes(1))) });
    expect(o.gone).toHaveLength(1);
    expect(o.t.tcp.unknownConnection).toBe(2);
    expect(o.t.connectionCount).toBe(0);
  });

  test('more unframed bytes than the bound (one huge frame on its way): aborted', async () => {
    const o = await opened({ maxBufferedBytes: 100 });
    o.native.emit({ type: 'open', id: 4, address: '192.0.2.7', port: 40000 });
    const big = encodeFrame(new Uint8Array(1000).fill(0x52));
    o.native.emit({ type: 'data', id: 4, bytes: Buffer.from(big.subarray(0, 100)) });
    expect(o.native.calls.some((c) => c.op === 'abort')).toBe(false);
    o.native.emit({ type: 'data', id: 4, bytes: Buffer.from(big.subarray(100, 200)) });
    expect(o.native.calls).toContainEqual({ op: 'abort', id: 4 });
    expect(o.t.tcp.framingErrors).toBe(1);
    expect(o.gone).toHaveLength(1);
    expect(o.control).toHaveLength(0);
  });

  test('a reply to a peer goes to its connection; maxBytes is honoured as over UDP', async () => {
    const o = await opened();
    o.native.emit({ type: 'open', id: 5, address: '192.0.2.7', port: 40000 });
    const peer = tcpPeer('192.0.2.7', 40000, 5);
    expect(o.t.sendControl(peer, bytes(1, 2, 3))).toBe(true);
    expect(o.t.sendControl(peer, bytes(1, 2, 3), 2)).toBe(false);
    expect(o.t.sendControl(peer, bytes(4), 1)).toBe(true);
    expect(o.native.calls.filter((c) => c.op === 'send')).toEqual([
      { op: 'send', id: 5, packet: bytes(1, 2, 3) },
      { op: 'send', id: 5, packet: bytes(4) },
    ]);
    expect(o.t.counters).toMatchObject({ repliesSent: 2, replyBytesSent: 4, repliesOverBudget: 1, replySendErrors: 0 });
  });

  test('a reply to a connection that is gone, or to a peer that is no connection of ours, is counted and not sent', async () => {
    const o = await opened();
    o.native.emit({ type: 'open', id: 5, address: '192.0.2.7', port: 40000 });
    o.native.open.delete(5); // gone natively, close event not yet delivered
    o.t.sendControl(tcpPeer('192.0.2.7', 40000, 5), bytes(1));
    o.t.sendControl(tcpPeer('192.0.2.7', 40000, 99), bytes(1));
    o.t.sendControl(udpPeer('192.0.2.7', 40000), bytes(1));
    expect(o.native.calls.filter((c) => c.op === 'send')).toHaveLength(1);
    expect(o.t.counters).toMatchObject({ repliesSent: 0, replySendErrors: 3 });
  });
});

describe('membership and sessions', () => {
  test('members are the connection added to and removed from the channel natively; sendFresh is counted only', async () => {
    const o = await opened();
    o.native.emit({ type: 'open', id: 8, address: '192.0.2.8', port: 1234 });
    const peer = tcpPeer('192.0.2.8', 1234, 8);
    o.t.addMember(2, peer);
    o.t.sendFresh(2, peer, [bytes(1), bytes(2)]);
    o.t.removeMember(2, peer);
    expect(o.native.calls.filter((c) => c.op !== 'start')).toEqual([
      { op: 'addMember', channel: 2, id: 8 },
      { op: 'removeMember', channel: 2, id: 8 },
    ]);
    expect(o.t.tcp.freshNotNeeded).toBe(2);
  });

  test('a closed connection ends its session (peerGone) and is no member any more; closes are counted by reason', async () => {
    const o = await opened();
    const reasons = ['normal', 'reset', 'timeout', 'aborted', 'protocol'] as const;
    reasons.forEach((_, i) => o.native.emit({ type: 'open', id: 10 + i, address: '192.0.2.9', port: 2000 + i }));
    expect(o.t.connectionCount).toBe(5);
    reasons.forEach((reason, i) => o.native.emit({ type: 'close', id: 10 + i, reason }));
    expect(o.gone).toEqual(reasons.map((_, i) => tcpPeer('192.0.2.9', 2000 + i, 10 + i)));
    expect(o.t.tcp).toMatchObject({ connectionsOpened: 5, connectionsClosed: 5, closedNormal: 1, closedReset: 1, closedTimeout: 1, closedAborted: 1, closedProtocol: 1 });
    o.t.removeMember(1, tcpPeer('192.0.2.9', 2000, 10));
    expect(o.native.calls.some((c) => c.op === 'removeMember')).toBe(false);
  });

  test('a native refusal of a membership command is counted, not thrown', async () => {
    const o = await opened();
    o.native.emit({ type: 'open', id: 1, address: '192.0.2.1', port: 1 });
    o.native.addMember = () => {
      throw new Error('unknown channel');
    };
    expect(() => o.t.addMember(9, tcpPeer('192.0.2.1', 1, 1))).not.toThrow();
    expect(o.t.counters.dataPathErrors).toBe(1);
  });
});
