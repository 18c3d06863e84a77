/**
 * The UDP client transport: the native batched receiver by default, node
 * dgram as the fallback for an addon without UdpReceiver; both deliver the
 * same datagrams with their sources, and send control messages to the
 * server from the receiving socket.
 */
import * as dgram from 'dgram';
import { loadNative, type NativeBinding } from '../../../lib/native';
import type { ServerEndpoint } from '../../../lib/transport/client-transport';
import { Datagrams, openUdpClientTransport, readSocketDrops, UdpClientTransport } from '../../../lib/transport/udp/client-socket';
import { InvalidArgumentError } from '../../../lib/fec/errors';
import { UdpReceiver } from '../../../lib/transport/udp/receiver';

interface Got {
  data: Buffer;
  address: string;
  port: number;
}

/** A server nobody listens at, for the tests that only receive. */
const NOWHERE: ServerEndpoint = { address: '127.0.0.1', port: 9, family: 4 };

async function open(o: {
  useDgram?: boolean;
  binding?: NativeBinding;
  server?: ServerEndpoint;
}): Promise<{ s: UdpClientTransport; got: Got[]; deliveries: number[] }> {
  const got: Got[] = [];
  const deliveries: number[] = [];
  const s = await openUdpClientTransport(
    o.server ?? NOWHERE,
    {
      onDatagrams: (d: Datagrams) => {
        deliveries.push(d.count);
        // Views share storage: copy, as the client's consumers do for what they keep.
        for (let i = 0; i < d.count; i++) got.push({ data: Buffer.from(d.datagram(i)), address: d.address(i), port: d.port(i) });
      },
      onError: (e: Error) => {
        throw e;
      },
    },
    { receiveBufferBytes: 1 << 20, batch: 64, gatherMicros: 1000, useDgram: o.useDgram, binding: o.binding },
  );
  return { s, got, deliveries };
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

const sockets: UdpClientTransport[] = [];
const peers: dgram.Socket[] = [];
afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => s.close()));
  await Promise.all(peers.splice(0).map((p) => new Promise<void>((r) => p.close(() => r()))));
});

async function peer(type: 'udp4' | 'udp6' = 'udp4'): Promise<dgram.Socket> {
  const p = dgram.createSocket(type);
  peers.push(p);
  await new Promise<void>((r) => p.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', () => r()));
  return p;
}

describe('openUdpClientTransport', () => {
  test('native receiver by default; dgram when asked or when the addon has no UdpReceiver', async () => {
    const a = await open({});
    sockets.push(a.s);
    expect(a.s.receiver).toBe('native');
    expect(a.s.kind).toBe('udp');
    expect(a.s.carriesControl).toBe(true);
    expect(a.s.server).toEqual(NOWHERE);
    const b = await open({ useDgram: true });
    sockets.push(b.s);
    expect(b.s.receiver).toBe('dgram');
    const { UdpReceiver: _omit, ...older } = loadNative();
    const c = await open({ binding: older as unknown as NativeBinding });
    sockets.push(c.s);
    expect(c.s.receiver).toBe('dgram');
  });

  test.each([
    ['native', false],
    ['dgram', true],
  ])('%s: every datagram arrives in order with its source; sendControl() goes to the server from the same port', async (_name, useDgram) => {
    const p = await peer();
    const r = await open({ useDgram, server: { address: '127.0.0.1', port: p.address().port, family: 4 } });
    sockets.push(r.s);
    const n = 300;
    // In rounds of 50, well within the smallest receive buffer a kernel grants.
    for (let i = 0; i < n; i++) {
      const d = Buffer.alloc(1 + (i % 7) * 200, i & 0xff);
      p.send(d, r.s.localPort(), '127.0.0.1');
      if (i % 50 === 49) await until(() => r.got.length > i);
    }
    await until(() => r.got.length >= n);
    expect(r.got).toHaveLength(n);
    r.got.forEach((g, i) => {
      expect(g.data.length).toBe(1 + (i % 7) * 200);
      expect(g.data.every((x) => x === (i & 0xff))).toBe(true);
      expect(g.address).toBe('127.0.0.1');
      expect(g.port).toBe(p.address().port);
    });
    expect(r.deliveries.reduce((a, b) => a + b, 0)).toBe(n);
    if (useDgram) expect(r.deliveries.every((c) => c === 1)).toBe(true);

    const echoed = new Promise<{ msg: Buffer; port: number }>((resolve) => p.once('message', (msg, rinfo) => resolve({ msg, port: rinfo.port })));
    r.s.sendControl(Buffer.from('RQ-hello'));
    const e = await echoed;
    expect(e.msg.toString()).toBe('RQ-hello');
    expect(e.port).toBe(r.s.localPort());
  });

  test('IPv6: native socket receives from ::1', async () => {
    const p = await peer('udp6');
    const r = await open({ server: { address: '::1', port: p.address().port, family: 6 } });
    sockets.push(r.s);
    p.send(Buffer.from([1, 2, 3]), r.s.localPort(), '::1');
    await until(() => r.got.length >= 1);
    expect(r.got[0]).toEqual({ data: Buffer.from([1, 2, 3]), address: '::1', port: p.address().port });
  });

  test('a gather window outside 0..1 s is refused; close() ends a receiver that is gathering', async () => {
    expect(() => new UdpReceiver({ gatherMicros: 1_000_001 })).toThrow(InvalidArgumentError);
    expect(() => new UdpReceiver({ gatherMicros: -1 })).toThrow(InvalidArgumentError);
    // A 1 s window: close() most likely comes while the thread sleeps in it; it returns, and nothing is delivered after.
    const rx = new UdpReceiver({ address: '127.0.0.1', gatherMicros: 1_000_000 });
    let closed = false;
    let afterClose = 0;
    rx.on('batch', () => {
      if (closed) afterClose++;
    });
    const p = await peer();
    p.send(Buffer.from([1]), rx.address().port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 20));
    rx.close();
    closed = true;
    await new Promise((r) => setTimeout(r, 20));
    expect(afterClose).toBe(0);
  });

  test('native: no gather window during the handshake; streaming() sets the configured one, once; datagrams flow either way', async () => {
    const real = loadNative();
    /** The gather window each receiver was made with, then each setGatherMicros call. */
    const windows: number[] = [];
    class Recording extends (real.UdpReceiver as unknown as new (...a: unknown[]) => { setGatherMicros(us: number): void }) {
      constructor(...args: unknown[]) {
        super(...args);
        windows.push(args[6] as number);
      }
      override setGatherMicros(us: number): void {
        windows.push(us);
        super.setGatherMicros(us);
      }
    }
    const p = await peer();
    const r = await open({ binding: { ...real, UdpReceiver: Recording } as unknown as NativeBinding, server: { address: '127.0.0.1', port: p.address().port, family: 4 } });
    sockets.push(r.s);
    expect(r.s.receiver).toBe('native');
    expect(windows).toEqual([0]);
    p.send(Buffer.from([1]), r.s.localPort(), '127.0.0.1');
    await until(() => r.got.length >= 1);
    r.s.streaming?.();
    r.s.streaming?.();
    expect(windows).toEqual([0, 1000]);
    for (let i = 2; i <= 4; i++) p.send(Buffer.from([i]), r.s.localPort(), '127.0.0.1');
    await until(() => r.got.length >= 4);
    expect(r.got.map((g) => g.data[0])).toEqual([1, 2, 3, 4]);
    // An addon without the call: the window is set at once, and streaming() changes nothing.
    windows.length = 0;
    class Older extends (real.UdpReceiver as unknown as new (...a: unknown[]) => object) {
      constructor(...args: unknown[]) {
        super(...args);
        windows.push(args[6] as number);
      }
    }
    Object.defineProperty(Older.prototype, 'setGatherMicros', { value: undefined });
    const o = await open({ binding: { ...real, UdpReceiver: Older } as unknown as NativeBinding });
    sockets.push(o.s);
    o.s.streaming?.();
    expect(windows).toEqual([1000]);
  });

  test('setGatherMicros refuses a window outside 0..1 s, and a closed receiver', () => {
    const rx = new UdpReceiver({ address: '127.0.0.1' });
    expect(() => rx.setGatherMicros(1_000_001)).toThrow(InvalidArgumentError);
    expect(() => rx.setGatherMicros(-1)).toThrow(InvalidArgumentError);
    expect(rx.setGatherMicros(8000)).toBe(true);
    rx.close();
    expect(() => rx.setGatherMicros(0)).toThrow();
  });

  test('nothing is delivered after close()', async () => {
    const r = await open({});
    const port = r.s.localPort();
    await r.s.close();
    await r.s.close();
    const p = await peer();
    p.send(Buffer.from([9]), port, '127.0.0.1');
    await new Promise((res) => setTimeout(res, 50));
    expect(r.got).toHaveLength(0);
  });

  test.each([
    ['native', false],
    ['dgram', true],
  ])('%s: stats() reads the socket drops (none on an idle socket), also once closed', async (_name, useDgram) => {
    const r = await open({ useDgram });
    expect(r.s.stats()).toEqual({ socketDrops: 0 });
    await r.s.close();
    expect(r.s.stats()).toEqual({ socketDrops: 0 });
  });

  test('readSocketDrops: 0 for a port no socket is bound to', () => {
    expect(readSocketDrops(0, 4)).toBe(0);
    expect(readSocketDrops(0, 6)).toBe(0);
  });
});
