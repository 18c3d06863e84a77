/**
 * UdpReceiver (lib/transport/udp/receiver.ts over native/udp/batch_receiver):
 * datagrams from loopback senders arrive byte-exact, in order per sender,
 * with their source address and port, many per 'batch' event; the same
 * socket sends; the Replicator feeds it end to end. Waits are for events,
 * bounded only by the jest timeout.
 */
import { spawnSync } from 'child_process';
import * as dgram from 'dgram';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';
import { InvalidArgumentError } from '../../../lib/fec/errors';
import {
  BadAddressError,
  DatagramBatch,
  PacketTooLargeError,
  ReceiverClosedError,
  Replicator,
  ReplicatorSocketError,
  UdpReceiver,
} from '../../../lib/transport';

interface Got {
  data: Buffer;
  address: string;
  port: number;
  family: string;
}

/** Collects every datagram; resolves waiters once `n` have arrived. */
function collect(rx: UdpReceiver): { got: Got[]; batches: DatagramBatch[]; waitFor: (n: number) => Promise<void> } {
  const got: Got[] = [];
  const batches: DatagramBatch[] = [];
  let waiters: Array<{ n: number; resolve: () => void }> = [];
  rx.on('batch', (b) => {
    batches.push(b);
    for (let i = 0; i < b.count; i++) {
      got.push({ data: Buffer.from(b.datagram(i)), address: b.address(i), port: b.port(i), family: b.family(i) });
    }
    waiters = waiters.filter((w) => {
      if (got.length >= w.n) w.resolve();
      return got.length < w.n;
    });
  });
  return {
    got,
    batches,
    waitFor: (n) => (got.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

async function dgramSocket(type: 'udp4' | 'udp6', address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  await new Promise<void>((resolve) => s.bind(0, address, resolve));
  return s;
}

function payload(seq: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let j = 0; j < size; j++) b[j] = (seq * 13 + j) & 0xff;
  if (size >= 4) b.writeUInt32BE(seq, 0);
  return b;
}

describe('UdpReceiver', () => {
  const open: Array<{ close: () => void }> = [];
  afterEach(() => {
    for (const x of open.splice(0)) x.close();
  });

  test('datagrams from several senders arrive byte-exact with their sources, many per batch', async () => {
    const rx = new UdpReceiver({ address: '127.0.0.1', batch: 64 });
    open.push(rx);
    const { got, batches, waitFor } = collect(rx);
    const { port } = rx.address();
    const a = await dgramSocket('udp4', '127.0.0.1');
    const b = await dgramSocket('udp4', '127.0.0.1');
    open.push(a, b);
    // One maximal datagram; the rest small enough that all of them fit the
    // receive buffer at once.
    const sizes = [1, 0, 1200, 1400, 7, 9000];
    // Sent synchronously in one tick: they queue in the kernel and the
    // native thread takes them in recvmmsg batches.
    const n = 300;
    const size = (i: number): number => (i === 150 ? 65507 : sizes[i % sizes.length]);
    for (let i = 0; i < n; i++) {
      (i % 2 ? b : a).send(payload(i, size(i)), port, '127.0.0.1');
    }
    await waitFor(n);
    expect(got.length).toBe(n);
    const fromA = got.filter((g) => g.port === a.address().port);
    const fromB = got.filter((g) => g.port === b.address().port);
    expect(fromA.length + fromB.length).toBe(n);
    // Loopback keeps each sender's order.
    const expectSeqs = (list: Got[], parity: number): void => {
      list.forEach((g, k) => {
        const seq = 2 * k + parity;
        expect(g.data.equals(payload(seq, size(seq)))).toBe(true);
        expect(g.address).toBe('127.0.0.1');
        expect(g.family).toBe('IPv4');
      });
    };
    expectSeqs(fromA, 0);
    expectSeqs(fromB, 1);
    expect(batches.some((x) => x.count > 1)).toBe(true);
    expect(batches.every((x) => x.count <= 64)).toBe(true);
    const st = rx.stats();
    expect(st).toMatchObject({ datagrams: n, truncated: 0, errors: 0, batches: batches.length });
    expect(st.bytes).toBe(got.reduce((s, g) => s + g.data.length, 0));
  });

  test('batch storage is lent to JS: kept views stay intact while collected batches are received into again', async () => {
    // A collection between rounds returns the batches nobody holds to the
    // native pool, and the next rounds are received into them; the ones
    // held (every third round's) must keep their bytes.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const rx = new UdpReceiver({ address: '127.0.0.1', batch: 16 });
    open.push(rx);
    const { port } = rx.address();
    const tx = await dgramSocket('udp4', '127.0.0.1');
    open.push(tx);
    const kept: Array<{ data: Buffer; seqs: number[] }> = [];
    let round = 0;
    let seen = 0;
    let waiter: (() => void) | undefined;
    rx.on('batch', (b) => {
      const seqs: number[] = [];
      for (let i = 0; i < b.count; i++) seqs.push(b.datagram(i).readUInt32BE(0));
      if (round % 3 === 0) kept.push({ data: b.data, seqs });
      seen += b.count;
      waiter?.();
    });
    const perRound = 64;
    for (round = 0; round < 12; round++) {
      const want = (round + 1) * perRound;
      for (let i = 0; i < perRound; i++) tx.send(payload(round * perRound + i, 300), port, '127.0.0.1');
      while (seen < want) await new Promise<void>((r) => (waiter = r));
      gc();
      await new Promise((r) => setImmediate(r));
    }
    expect(kept.length).toBeGreaterThan(4);
    for (const k of kept) {
      k.seqs.forEach((seq, i) => expect(k.data.subarray(i * 300, (i + 1) * 300).equals(payload(seq, 300))).toBe(true));
    }
  });

  test('IPv6 sources are reported in RFC 5952 form; over-long datagrams are dropped and counted', async () => {
    let rx: UdpReceiver;
    try {
      rx = new UdpReceiver({ address: '::1', maxDatagram: 1000 });
    } catch (e) {
      if (e instanceof ReplicatorSocketError) return; // no IPv6 loopback on this host
      throw e;
    }
    open.push(rx);
    const { got, waitFor } = collect(rx);
    const tx = await dgramSocket('udp6', '::1');
    open.push(tx);
    tx.send(payload(1, 1001), rx.address().port, '::1');
    tx.send(payload(2, 1000), rx.address().port, '::1');
    await waitFor(1);
    expect(got[0]).toMatchObject({ address: '::1', port: tx.address().port, family: 'IPv6' });
    expect(got[0].data.equals(payload(2, 1000))).toBe(true);
    expect(rx.stats().truncated).toBe(1);
  });

  test('send() uses the same socket: a peer sees the receiver as the source', async () => {
    const rx = new UdpReceiver({ address: '127.0.0.1' });
    open.push(rx);
    const { got, waitFor } = collect(rx);
    const peer = await dgramSocket('udp4', '127.0.0.1');
    open.push(peer);
    const echoed = new Promise<dgram.RemoteInfo>((resolve) =>
      peer.once('message', (m, info) => {
        peer.send(m, info.port, info.address); // echo back to the sender
        resolve(info);
      }),
    );
    expect(rx.send(Buffer.from('HELLO'), '127.0.0.1', peer.address().port)).toBe(true);
    const info = await echoed;
    expect(info.port).toBe(rx.address().port);
    await waitFor(1);
    expect(got[0].data.toString()).toBe('HELLO');
    expect(() => rx.send(Buffer.alloc(65_508), '127.0.0.1', 9)).toThrow(PacketTooLargeError);
    expect(() => rx.send(Buffer.alloc(1), 'localhost', 9)).toThrow(BadAddressError);
    expect(() => rx.send(Buffer.alloc(1), '127.0.0.1', 0)).toThrow(InvalidArgumentError);
  });

  test('receives a Replicator stream end to end (GSO super-datagrams arrive as separate packets)', async () => {
    const rx = new UdpReceiver({ address: '127.0.0.1', batch: 128 });
    open.push(rx);
    const { got, waitFor } = collect(rx);
    const rep = new Replicator();
    open.push(rep);
    rep.createChannel(1, { slotSize: 1200, capacity: 256 });
    rep.addDestination(1, '127.0.0.1', rx.address().port);
    const chunk = 32;
    const all = Buffer.concat(Array.from({ length: 8 * chunk }, (_, i) => payload(i, 1200)));
    for (let c = 0; c < 8; c++) {
      rep.push(1, all.subarray(c * chunk * 1200, (c + 1) * chunk * 1200), 1200, chunk);
      await waitFor((c + 1) * chunk);
    }
    expect(got.map((g) => g.data.readUInt32BE(0))).toEqual(Array.from({ length: 8 * chunk }, (_, i) => i));
    got.forEach((g, i) => expect(g.data.equals(payload(i, 1200))).toBe(true));
    // Loopback keeps a GSO send whole up to a socket that asked for UDP_GRO:
    // the runs arrived as coalesced messages, split back into these packets.
    const st = rx.stats();
    if (rep.stats().gsoActive && st.gro) expect(st.coalesced).toBeGreaterThan(0);
    else console.log(`[receiver] GSO ${rep.stats().gsoActive ? 'on' : 'off'}, GRO ${st.gro ? 'on' : 'off'}: no coalesced messages to check`);
    expect(st.datagrams).toBe(8 * chunk);
  });

  test('bad options and use after close throw typed errors; close is idempotent', async () => {
    expect(() => new UdpReceiver({ address: 'localhost' })).toThrow(BadAddressError);
    expect(() => new UdpReceiver({ maxDatagram: 0 })).toThrow(InvalidArgumentError);
    expect(() => new UdpReceiver({ batch: 5000 })).toThrow(InvalidArgumentError);
    const rx = new UdpReceiver({ address: '127.0.0.1' });
    // The port is taken: binding it again fails with the socket's errno.
    let err: unknown;
    try {
      open.push(new UdpReceiver({ address: '127.0.0.1', port: rx.address().port }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReplicatorSocketError);
    rx.close();
    rx.close();
    expect(() => rx.send(Buffer.alloc(1), '127.0.0.1', 9)).toThrow(ReceiverClosedError);
    expect(() => rx.address()).toThrow(ReceiverClosedError);
    expect(rx.stats().datagrams).toBe(0);
  });

  test('a process exits after close(), and with an unref()ed receiver left open', () => {
    const root = path.resolve(__dirname, '../../..');
    const script = `
      const { UdpReceiver } = require('./lib/transport');
      const dgram = require('dgram');
      const rx = new UdpReceiver({ address: '127.0.0.1' });
      const idle = new UdpReceiver({ address: '127.0.0.1' }).unref();
      const tx = dgram.createSocket('udp4');
      rx.on('batch', () => { rx.close(); tx.close(); console.log('done'); });
      tx.send(Buffer.from('x'), rx.address().port, '127.0.0.1');
    `;
    const out = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000, // a hang guard only
    });
    expect(out.error).toBeUndefined();
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('done');
    expect(out.status).toBe(0);
  });
});
