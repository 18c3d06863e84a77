/**
 * TcpClientTransport against a small net.Server in the test that speaks
 * the framing (docs/PROTOCOL.md §3): control messages out framed, frames in
 * as batches read in place (one delivery per chunk, a frame cut by a chunk
 * joined with the next), the connect timeout, and every way the
 * connection can end.
 */
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import { encodeFrame, FrameDecoder } from '../../../lib/protocol/framing';
import type { ClientTransportHandler, Datagrams } from '../../../lib/transport/client-transport';
import { FrameBatcher } from '../../../lib/transport/tcp/frame-batch';
import { openTcpClientTransport, TcpTransportError } from '../../../lib/transport/tcp/client-stream';

interface Server {
  port: number;
  /** The server side of the first connection. */
  conn: Promise<net.Socket>;
  /** Frames the server received, decoded. */
  received: Uint8Array[];
  close(): Promise<void>;
}

async function frameServer(): Promise<Server> {
  const received: Uint8Array[] = [];
  let resolveConn!: (s: net.Socket) => void;
  const conn = new Promise<net.Socket>((r) => (resolveConn = r));
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    const d = new FrameDecoder();
    s.on('data', (chunk) => received.push(...d.push(chunk)));
    s.on('error', () => {});
    resolveConn(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    conn,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

class Recorder implements ClientTransportHandler {
  readonly deliveries: { count: number; packets: number[][]; from: string[] }[] = [];
  readonly errors: Error[] = [];
  onDatagrams(d: Datagrams): void {
    const packets: number[][] = [];
    const from: string[] = [];
    for (let i = 0; i < d.count; i++) {
      packets.push(Array.from(d.data.subarray(d.offset(i), d.offset(i) + d.length(i))));
      expect(Array.from(d.datagram(i))).toEqual(packets[i]);
      from.push(`${d.address(i)}:${d.port(i)}`);
    }
    this.deliveries.push({ count: d.count, packets, from });
  }
  onError(e: Error): void {
    this.errors.push(e);
  }
}

const until = async (f: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('FrameBatcher', () => {
  test('a chunk is one batch of its whole frames, in place; a cut frame is joined with the next chunk', () => {
    const b = new FrameBatcher('192.0.2.1', 4433);
    const stream = Buffer.concat([encodeFrame(Uint8Array.from([1, 2, 3])), encodeFrame(Uint8Array.from([4])), encodeFrame(Uint8Array.from([5, 6]))]);
    const first = stream.subarray(0, 9);
    const one = b.push(first);
    expect(one?.count).toBe(2);
    expect(one?.data).toBe(first); // read in place
    expect([one?.offset(0), one?.length(0), one?.offset(1), one?.length(1)]).toEqual([2, 3, 7, 1]);
    expect(b.buffered).toBe(1);
    const two = b.push(stream.subarray(9));
    expect(two?.count).toBe(1);
    expect(Array.from(two?.datagram(0) ?? [])).toEqual([5, 6]);
    expect([two?.address(0), two?.port(0), two?.truncated]).toEqual(['192.0.2.1', 4433, 0]);
    expect(b.push(Buffer.from([0]))).toBeUndefined();
    expect(b.buffered).toBe(1);
  });

  test('a zero-length frame: the frames before it, then failed and nothing more', () => {
    const b = new FrameBatcher('192.0.2.1', 4433);
    const batch = b.push(Buffer.concat([encodeFrame(Uint8Array.from([7])), Buffer.from([0, 0]), encodeFrame(Uint8Array.from([8]))]));
    expect(batch?.count).toBe(1);
    expect(b.failed).toBe('empty-frame');
    expect(b.push(Buffer.from(encodeFrame(Uint8Array.from([9]))))).toBeUndefined();
  });
});

describe('TcpClientTransport', () => {
  let server: Server;
  beforeEach(async () => {
    server = await frameServer();
  });
  afterEach(async () => {
    await server.close();
  });

  test('control messages go out framed; frames come back as batches from the server endpoint', async () => {
    const rec = new Recorder();
    const endpoint = { address: '127.0.0.1', port: server.port, family: 4 as const };
    const t = await openTcpClientTransport(endpoint, rec);
    expect([t.kind, t.carriesControl, t.server]).toEqual(['tcp', true, endpoint]);
    expect(t.localPort()).toBeGreaterThan(0);
    t.sendControl(Uint8Array.from([0x52, 0x51, 1]));
    t.sendControl(Uint8Array.from([0x52, 0x51, 2, 3]));
    await until(() => server.received.length === 2);
    expect(server.received.map((f) => Array.from(f))).toEqual([
      [0x52, 0x51, 1],
      [0x52, 0x51, 2, 3],
    ]);
    const s = await server.conn;
    const frames = Buffer.concat([encodeFrame(Uint8Array.from([0x10, 1])), encodeFrame(Uint8Array.from([0x10, 2])), encodeFrame(Uint8Array.from([0x10, 3]))]);
    s.write(frames.subarray(0, 5));
    await until(() => rec.deliveries.length === 1);
    s.write(frames.subarray(5));
    await until(() => rec.deliveries.reduce((n, d) => n + d.count, 0) === 3);
    expect(rec.deliveries.flatMap((d) => d.packets)).toEqual([
      [0x10, 1],
      [0x10, 2],
      [0x10, 3],
    ]);
    expect(new Set(rec.deliveries.flatMap((d) => d.from))).toEqual(new Set([`127.0.0.1:${server.port}`]));
    expect(t.stats()).toEqual({ socketDrops: 0 });
    expect(rec.errors).toEqual([]);
    await t.close();
  });

  test('close() lets the message just sent go out, ends with FIN, and resolves; nothing is delivered after it', async () => {
    const rec = new Recorder();
    const t = await openTcpClientTransport({ address: '127.0.0.1', port: server.port, family: 4 }, rec);
    const s = await server.conn;
    const ended = new Promise<void>((r) => s.once('end', () => r()));
    t.sendControl(Uint8Array.from([0x52, 0x51, 0x07]));
    const closing = t.close();
    await ended;
    s.end(); // the server's FIN completes the close
    await closing;
    await t.close();
    expect(server.received.map((f) => Array.from(f))).toEqual([[0x52, 0x51, 0x07]]);
    t.sendControl(Uint8Array.from([1]));
    expect(rec.errors).toEqual([]);
  });

  test('the server closing the connection is the transport failing', async () => {
    const rec = new Recorder();
    const t = await openTcpClientTransport({ address: '127.0.0.1', port: server.port, family: 4 }, rec);
    (await server.conn).end();
    await until(() => rec.errors.length === 1);
    expect(rec.errors[0]).toBeInstanceOf(TcpTransportError);
    expect(rec.errors[0].message).toMatch(/server closed/);
    await t.close();
  });

  test('a zero-length frame from the server: the frames before it, then the transport fails', async () => {
    const rec = new Recorder();
    const t = await openTcpClientTransport({ address: '127.0.0.1', port: server.port, family: 4 }, rec);
    (await server.conn).write(Buffer.concat([encodeFrame(Uint8Array.from([0x10])), Buffer.from([0, 0])]));
    await until(() => rec.errors.length === 1);
    expect(rec.deliveries.flatMap((d) => d.packets)).toEqual([[0x10]]);
    expect(rec.errors[0].message).toMatch(/zero-length frame/);
    await t.close();
  });

  test('nothing listening: a TcpTransportError naming ECONNREFUSED', async () => {
    const port = server.port;
    await server.close();
    await expect(openTcpClientTransport({ address: '127.0.0.1', port, family: 4 }, new Recorder())).rejects.toThrow(/ECONNREFUSED/);
  });

  test('a SYN nobody answers: a TcpTransportError naming the connect timeout', async () => {
    // Loopback only: an nftables rule of this test's own table drops the SYNs
    // to one port of 127.0.0.1, so the connect is never answered (no RST).
    const port = server.port;
    await server.close();
    const table = `rqcast_synless_${process.pid}`;
    const nft = (script: string): boolean => spawnSync('nft', ['-f', '-'], { input: script }).status === 0;
    const rule = `table inet ${table} {\n chain input {\n  type filter hook input priority 0;\n  iifname "lo" ip daddr 127.0.0.1 tcp dport ${port} drop\n }\n}\n`;
    expect(nft(rule)).toBe(true);
    try {
      const err = await openTcpClientTransport({ address: '127.0.0.1', port, family: 4 }, new Recorder(), { connectTimeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TcpTransportError);
      expect((err as Error).message).toBe('no TCP connection to the server within 200 ms');
    } finally {
      nft(`delete table inet ${table}`);
    }
  });
});
