/**
 * TcpClientTransport against a small net.Server in the test that speaks
 * the framing (docs/PROTOCOL.md §3): control messages out framed, frames in
 * as batches read in place (one delivery per read into the connection's
 * frame storage, a frame cut by a read completed by the next), the connect
 * timeout, and every way the connection can end.
 */
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import { encodeFrame, FRAME_HEADER_SIZE, FRAME_MAX_PAYLOAD, FrameDecoder } from '../../../lib/protocol/framing';
import type { ClientTransportHandler, Datagrams } from '../../../lib/transport/client-transport';
import { FrameBatch, FrameBatcher } from '../../../lib/transport/tcp/frame-batch';
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

/**
 * Writes `bytes` into b's read buffer in reads of the given sizes (cycled);
 * returns the batches, each also handed to `onBatch` as it is made.
 */
function readInto(b: FrameBatcher, bytes: Uint8Array, sizes: number[], onBatch?: (batch: FrameBatch) => void): FrameBatch[] {
  const out: FrameBatch[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const buf = b.readBuffer();
    const n = Math.min(sizes[i % sizes.length], buf.length, bytes.length - at);
    buf.set(bytes.subarray(at, at + n));
    at += n;
    const batch = b.filled(n);
    if (batch) {
      out.push(batch);
      onBatch?.(batch);
    }
  }
  return out;
}

/** Every frame of the batches, as views (not copied). */
const viewsOf = (batches: FrameBatch[]): Buffer[] => batches.flatMap((d) => Array.from({ length: d.count }, (_, i) => d.datagram(i)));

const PATTERN = Uint8Array.from({ length: FRAME_MAX_PAYLOAD + 251 }, (_, j) => j % 251);
/** A frame of `n` bytes, byte j = (seed + j) mod 251. */
const payload = (n: number, seed: number): Uint8Array => PATTERN.slice(seed % 251, (seed % 251) + n);

/** A seeded PRNG (mulberry32), so that a failure replays: rand(n) is in [0, n). */
function randomBelow(seed: number): (n: number) => number {
  return (n: number): number => {
    let t = (seed = (seed + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}

/**
 * Random frames (up to 1 500 bytes, one in `largeOneIn` up to the largest),
 * their stream, and read sizes (half up to `smallRead`, half up to `largeRead`).
 */
function randomStream(
  rand: (n: number) => number,
  o: { frames: number; seed: number; largeOneIn: number; reads: number; smallRead: number; largeRead: number },
): { frames: Uint8Array[]; stream: Buffer; sizes: number[] } {
  const frames = Array.from({ length: o.frames }, (_, i) => payload(rand(o.largeOneIn) === 0 ? 1 + rand(FRAME_MAX_PAYLOAD) : 1 + rand(1500), o.seed + i));
  const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
  const sizes = Array.from({ length: o.reads }, () => 1 + rand(rand(2) === 0 ? o.smallRead : o.largeRead));
  return { frames, stream, sizes };
}

/** The smallest storage allowed for reads of at least `minRead` bytes: a whole frame and one read. */
const smallest = (minRead: number) => ({ storageBytes: FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD + minRead, minReadBytes: minRead });

describe('FrameBatcher', () => {
  test('a read is one batch of its whole frames, in the storage it was read into; a cut frame is completed in place by the next read', () => {
    const b = new FrameBatcher('192.0.2.1', 4433);
    const stream = Buffer.concat([encodeFrame(Uint8Array.from([1, 2, 3])), encodeFrame(Uint8Array.from([4])), encodeFrame(Uint8Array.from([5, 6]))]);
    const into = b.readBuffer();
    expect(b.readBuffer().byteOffset).toBe(into.byteOffset); // the same until filled()
    into.set(stream.subarray(0, 9));
    const one = b.filled(9);
    expect(one?.count).toBe(2);
    expect([one?.data.buffer, one?.data.byteOffset]).toEqual([into.buffer, into.byteOffset]); // read in place
    expect([one?.offset(0), one?.length(0), one?.offset(1), one?.length(1)]).toEqual([2, 3, 7, 1]);
    expect(b.buffered).toBe(1);
    const next = b.readBuffer();
    expect(next.byteOffset).toBe(into.byteOffset + 9); // after the bytes held
    next.set(stream.subarray(9));
    const two = b.filled(stream.length - 9);
    expect(two?.count).toBe(1);
    expect(Array.from(two?.datagram(0) ?? [])).toEqual([5, 6]);
    expect(two?.data.buffer).toBe(into.buffer); // the cut frame was not copied
    expect([two?.address(0), two?.port(0), two?.truncated]).toEqual(['192.0.2.1', 4433, 0]);
    b.readBuffer()[0] = 0;
    expect(b.filled(1)).toBeUndefined();
    expect(b.buffered).toBe(1);
    expect(b.filled(0)).toBeUndefined();
  });

  test('frames cut at every offset, by one read or two: the same frames, in order, none lost or repeated', () => {
    const frames = [payload(1, 0), payload(2, 1), payload(300, 2), payload(3, 3), payload(256, 4)];
    const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
    const lengths = frames.map((f) => f.length);
    const payloads = Buffer.concat(frames);
    for (let cut = 0; cut <= stream.length; cut++) {
      for (const second of [stream.length, cut + 1, cut + 2, cut + 257]) {
        const b = new FrameBatcher('192.0.2.1', 4433, smallest(1));
        const got = viewsOf(readInto(b, stream, [cut, Math.max(1, second - cut), stream.length]));
        expect(got.map((f) => f.length)).toEqual(lengths);
        expect(Buffer.compare(Buffer.concat(got), payloads)).toBe(0);
        expect(b.buffered).toBe(0);
      }
    }
  });

  test('a length longer than what follows is held until its bytes arrive, one byte per read', () => {
    const b = new FrameBatcher('192.0.2.1', 4433);
    const frame = encodeFrame(payload(FRAME_MAX_PAYLOAD, 7));
    const batches = readInto(b, frame.subarray(0, frame.length - 1), [1]);
    expect(batches).toEqual([]);
    expect(b.buffered).toBe(frame.length - 1);
    const last = readInto(b, frame.subarray(frame.length - 1), [1]);
    expect(last.map((d) => d.count)).toEqual([1]);
    expect(last[0].length(0)).toBe(FRAME_MAX_PAYLOAD);
    expect(Buffer.compare(last[0].datagram(0), Buffer.from(payload(FRAME_MAX_PAYLOAD, 7)))).toBe(0);
  });

  test('frames longer than the room left: fresh storage, the partial frame moved, and views from earlier reads unchanged', () => {
    const o = smallest(16);
    const frames = [payload(100, 1), payload(FRAME_MAX_PAYLOAD, 2), payload(5, 3), payload(FRAME_MAX_PAYLOAD, 4), payload(FRAME_MAX_PAYLOAD - 1, 5), payload(40_000, 6)];
    const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
    for (const sizes of [[o.storageBytes], [16], [4093, 17, 65_000], [1, 70_000]]) {
      const b = new FrameBatcher('192.0.2.1', 4433, o);
      const views = viewsOf(readInto(b, stream, sizes));
      expect(new Set(views.map((v) => v.buffer)).size).toBeGreaterThan(1); // storage was replaced
      expect(views.map((v) => v.length)).toEqual(frames.map((f) => f.length));
      views.forEach((v, i) => expect(Buffer.compare(v, Buffer.from(frames[i]))).toBe(0));
    }
  });

  test('random frames and reads: every frame delivered once, in order, and still intact after the last read', () => {
    const rand = randomBelow(12345);
    const o = smallest(1000);
    for (let round = 0; round < 20; round++) {
      const { frames, stream, sizes } = randomStream(rand, { frames: 60, seed: round * 100, largeOneIn: 8, reads: 7, smallRead: 2000, largeRead: 200_000 });
      const b = new FrameBatcher('192.0.2.1', 4433, o);
      const views = viewsOf(readInto(b, stream, sizes));
      expect(views.length).toBe(frames.length);
      views.forEach((v, i) => expect(Buffer.compare(v, Buffer.from(frames[i]))).toBe(0));
    }
  });

  test('deliveries released (nothing of them kept): the storage is read into again from its start, every frame whole when delivered; one delivery not released keeps its views intact', () => {
    const rand = randomBelow(777);
    const o = smallest(1000);
    for (let round = 0; round < 12; round++) {
      // About 6 storages' worth of frames, so that each storage fills several times over.
      const { frames, stream, sizes } = randomStream(rand, { frames: 400, seed: round * 1000, largeOneIn: 10, reads: 5, smallRead: 3000, largeRead: 150_000 });
      // Rounds 0-5 release every delivery; the others keep one (the k-th).
      const k = round < 6 ? -1 : rand(10);
      const b = new FrameBatcher('192.0.2.1', 4433, o);
      const buffers = new Set<ArrayBufferLike>();
      let next = 0;
      let kept: { views: Buffer[]; first: number } | undefined;
      let deliveries = 0;
      readInto(b, stream, sizes, (batch) => {
        buffers.add(batch.data.buffer);
        const views = viewsOf([batch]);
        views.forEach((v, j) => expect(Buffer.compare(v, Buffer.from(frames[next + j]))).toBe(0));
        if (deliveries++ === k) kept = { views, first: next };
        else b.release();
        next += views.length;
      });
      expect(next).toBe(frames.length);
      const held = kept as { views: Buffer[]; first: number } | undefined;
      if (held === undefined) {
        expect(buffers.size).toBe(1);
      } else {
        // The kept delivery's storage was never read into again: its views are as delivered.
        held.views.forEach((v, j) => expect(Buffer.compare(v, Buffer.from(frames[held.first + j]))).toBe(0));
        expect(buffers.size).toBe(2);
      }
    }
  });

  test('a zero-length frame: the frames before it, then failed and nothing more', () => {
    const b = new FrameBatcher('192.0.2.1', 4433);
    const batches = readInto(b, Buffer.concat([encodeFrame(Uint8Array.from([7])), Buffer.from([0, 0]), encodeFrame(Uint8Array.from([8]))]), [100]);
    expect(batches.map((d) => d.count)).toEqual([1]);
    expect(b.failed).toBe('empty-frame');
    expect(readInto(b, Buffer.from(encodeFrame(Uint8Array.from([9]))), [100])).toEqual([]);
  });

  test('storage that cannot hold a whole frame and a read is refused; so is a read longer than its buffer', () => {
    expect(() => new FrameBatcher('192.0.2.1', 4433, { storageBytes: FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD, minReadBytes: 1 })).toThrow(RangeError);
    expect(() => new FrameBatcher('192.0.2.1', 4433, { minReadBytes: 0 })).toThrow(RangeError);
    const b = new FrameBatcher('192.0.2.1', 4433, smallest(1));
    expect(() => b.filled(b.readBuffer().length + 1)).toThrow(RangeError);
    expect(() => b.filled(-1)).toThrow(RangeError);
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

  test('3 MiB of frames of every size, written in odd pieces: each frame once, in order; views kept from the first delivery unchanged at the end, the storage of the deliveries released (the handler says true) read into again', async () => {
    const frames: Uint8Array[] = [];
    for (let i = 0, total = 0; total < 3 << 20; i++) {
      const n = i % 50 === 49 ? FRAME_MAX_PAYLOAD : 1 + ((i * 7919) % 1600);
      frames.push(payload(n, i));
      total += n + FRAME_HEADER_SIZE;
    }
    const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
    let first: Buffer[] | undefined; // the first delivery's views, kept
    const got: Buffer[] = [];
    const storages = new Set<ArrayBufferLike>();
    const rec = new Recorder();
    const t = await openTcpClientTransport({ address: '127.0.0.1', port: server.port, family: 4 }, {
      onDatagrams: (d) => {
        const views = Array.from({ length: d.count }, (_, i) => d.datagram(i));
        const keep = first === undefined;
        first ??= views;
        for (const v of views) got.push(Buffer.from(v));
        storages.add(d.data.buffer);
        return !keep;
      },
      onError: (e) => rec.onError(e),
    });
    const s = await server.conn;
    for (let at = 0, k = 0; at < stream.length; k++) {
      const n = [1, 3, 4093, 65_537, 200_003][k % 5];
      s.write(stream.subarray(at, at + n));
      at += n;
    }
    await until(() => got.length === frames.length, 10_000);
    expect(first?.length).toBeGreaterThan(0);
    first?.forEach((v, i) => expect(Buffer.compare(v, Buffer.from(frames[i]))).toBe(0));
    got.forEach((v, i) => expect(Buffer.compare(v, Buffer.from(frames[i]))).toBe(0));
    // The first storage, kept, then one storage read into again and again.
    expect(storages.size).toBe(2);
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
      for (const [timeoutMs, said] of [[200, '200 ms'], [1200, '1.2 s']] as const) {
        const err = await openTcpClientTransport({ address: '127.0.0.1', port, family: 4 }, new Recorder(), { connectTimeoutMs: timeoutMs }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TcpTransportError);
        expect((err as Error).message).toBe(`no TCP connection to the server within ${said}`);
      }
    } finally {
      nft(`delete table inet ${table}`);
    }
  });
});
