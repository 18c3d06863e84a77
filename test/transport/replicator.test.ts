/**
 * Replicator (lib/transport/replicator.ts over native/replicate) against
 * loopback dgram receivers. No wall-clock thresholds: every wait is for an
 * event (datagrams arriving, counters reaching a value), bounded only by the
 * jest timeout; pacing is checked by totals and order.
 */
import { spawnSync } from 'child_process';
import * as dgram from 'dgram';
import * as path from 'path';
import { InvalidArgumentError } from '../../lib/fec/errors';
import {
  BadAddressError,
  ChannelExistsError,
  PacketTooLargeError,
  Replicator,
  ReplicatorClosedError,
  UnknownChannelError,
} from '../../lib/transport';

const SIZE = 1200;
// Chunks small enough that a receiver's socket buffer never overflows
// while the JS side lags behind the native sender.
const CHUNK = 32;

class Sink {
  readonly messages: Buffer[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  private constructor(
    readonly socket: dgram.Socket,
    readonly address: string,
  ) {
    socket.on('message', (m) => {
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (this.messages.length >= w.n) w.resolve();
        return this.messages.length < w.n;
      });
    });
  }
  static async open(address = '127.0.0.1'): Promise<Sink> {
    const type = address.includes(':') ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type, recvBufferSize: 4 << 20 });
    await new Promise<void>((resolve) => socket.bind(0, address, resolve));
    return new Sink(socket, address);
  }
  get port(): number {
    return this.socket.address().port;
  }
  /** Resolves once `n` datagrams in total have arrived. */
  waitFor(n: number): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
  close(): void {
    this.socket.close();
  }
}

/** Packets whose bytes depend on their sequence number and a salt. */
function makePackets(first: number, count: number, size = SIZE, salt = 0): Buffer {
  const b = Buffer.alloc(count * size);
  for (let i = 0; i < count; i++) {
    const seq = first + i;
    const p = b.subarray(i * size, (i + 1) * size);
    for (let j = 0; j < size; j++) p[j] = (seq * 31 + j * 7 + salt) & 0xff;
    if (size >= 8) {
      p.writeUInt32BE(seq, 0);
      p.writeUInt32BE(salt, 4);
    }
  }
  return b;
}

function packet(all: Buffer, i: number, size = SIZE): Buffer {
  return all.subarray(i * size, (i + 1) * size);
}

/** Polls a condition on counters the sender thread updates (no time limit but jest's). */
async function until(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((r) => setTimeout(r, 2));
}

function hasIpv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp6');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(0, '::1', () => {
      s.close();
      resolve(true);
    });
  });
}

describe('Replicator', () => {
  const open: Array<Replicator | Sink> = [];
  const track = <T extends Replicator | Sink>(x: T): T => {
    open.push(x);
    return x;
  };
  afterEach(() => {
    for (const x of open.splice(0)) x.close();
  });

  for (const gso of [true, false]) {
    test(`every receiver gets every packet byte-exact and in order (gso: ${gso})`, async () => {
      const r = track(new Replicator({ gso }));
      r.createChannel(7, { slotSize: SIZE, capacity: 256 });
      const sinks = [await Sink.open(), await Sink.open(), await Sink.open()];
      if (await hasIpv6Loopback()) sinks.push(await Sink.open('::1'));
      for (const s of sinks) {
        track(s);
        r.addDestination(7, s.address, s.port);
      }
      const total = 10 * CHUNK;
      const all = makePackets(0, total);
      for (let c = 0; c < total / CHUNK; c++) {
        const chunk = all.subarray(c * CHUNK * SIZE, (c + 1) * CHUNK * SIZE);
        expect(r.push(7, chunk, SIZE, CHUNK)).toBe(CHUNK);
        await Promise.all(sinks.map((s) => s.waitFor((c + 1) * CHUNK)));
      }
      for (const s of sinks) {
        expect(s.messages.length).toBe(total);
        s.messages.forEach((m, i) => expect(m.equals(packet(all, i))).toBe(true));
      }
      await until(() => r.channelStats(7).streamPackets === total);
      const st = r.channelStats(7);
      expect(st).toMatchObject({
        streamPackets: total,
        datagrams: total * sinks.length,
        bytes: total * sinks.length * SIZE,
        errors: 0,
        dropsEagain: 0,
        dropsEnobufs: 0,
        oneOffs: 0,
        destinations: sinks.length,
        queued: 0,
      });
      const g = r.stats();
      if (!gso) expect(g.gsoActive).toBe(false);
      if (g.gsoActive) {
        // Runs of a chunk's packets went to each destination as super-datagrams.
        expect(st.gsoSends).toBeGreaterThan(0);
        expect(st.syscalls).toBeLessThan(st.datagrams);
      } else {
        expect(st.gsoSends).toBe(0);
      }
      expect(g.syscalls).toBeGreaterThanOrEqual(st.syscalls);
    });
  }

  test('mixed packet sizes keep their datagram boundaries', async () => {
    const r = track(new Replicator());
    r.createChannel(1, { slotSize: 1400 });
    const s = track(await Sink.open());
    r.addDestination(1, s.address, s.port);
    const sizes = [1000, 1000, 1400, 1400, 700, 1400, 20, 20, 20, 1000, 1, 1400];
    const sent = sizes.map((n, i) => makePackets(i, 1, n, 5));
    r.setPaused(1, true); // queue them all so they leave as one run
    sent.forEach((p, i) => expect(r.push(1, p, sizes[i], 1)).toBe(1));
    r.setPaused(1, false);
    await s.waitFor(sizes.length);
    expect(s.messages.map((m) => m.length)).toEqual(sizes);
    s.messages.forEach((m, i) => expect(m.equals(sent[i])).toBe(true));
  });

  test('destinations added before a push get it, removed ones do not', async () => {
    const r = track(new Replicator());
    r.createChannel(3, { slotSize: SIZE });
    const a = track(await Sink.open());
    const b = track(await Sink.open());
    const all = makePackets(0, 4 * CHUNK);
    const chunk = (c: number): Buffer => all.subarray(c * CHUNK * SIZE, (c + 1) * CHUNK * SIZE);

    r.addDestination(3, '127.0.0.1', a.port);
    r.addDestination(3, '127.0.0.1', a.port); // a no-op
    r.addDestination(3, '::ffff:127.0.0.1', a.port); // a dual-stack name of the same
    expect(r.channelStats(3).destinations).toBe(1);
    r.push(3, chunk(0), SIZE, CHUNK);
    await a.waitFor(CHUNK);

    r.addDestination(3, '127.0.0.1', b.port);
    expect(r.channelStats(3).destinations).toBe(2);
    r.push(3, chunk(1), SIZE, CHUNK);
    await Promise.all([a.waitFor(2 * CHUNK), b.waitFor(CHUNK)]);

    r.removeDestination(3, '127.0.0.1', a.port);
    r.removeDestination(3, '127.0.0.1', a.port); // absent: a no-op
    r.removeDestination(3, '127.0.0.2', 9); // never added: a no-op
    expect(r.channelStats(3).destinations).toBe(1);
    r.push(3, chunk(2), SIZE, CHUNK);
    await b.waitFor(2 * CHUNK);

    // Fence: a rejoins for chunk 3; loopback keeps each socket's order, so
    // once a has chunk 3 it has everything it will ever get before it.
    r.addDestination(3, '127.0.0.1', a.port);
    r.push(3, chunk(3), SIZE, CHUNK);
    await Promise.all([a.waitFor(3 * CHUNK), b.waitFor(3 * CHUNK)]);
    const seqs = (s: Sink): number[] => s.messages.map((m) => m.readUInt32BE(0));
    const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
    expect(seqs(a)).toEqual([...range(0, 2 * CHUNK), ...range(3 * CHUNK, CHUNK)]);
    expect(seqs(b)).toEqual(range(CHUNK, 3 * CHUNK));

    // No destination: packets are held, not consumed.
    r.clearDestinations(3);
    expect(r.channelStats(3).destinations).toBe(0);
    r.push(3, chunk(0), SIZE, 5);
    expect(r.channelStats(3).queued).toBe(5);
    r.addDestination(3, '127.0.0.1', b.port);
    await b.waitFor(3 * CHUNK + 5);
    expect(b.messages.slice(3 * CHUNK).map((m) => m.readUInt32BE(0))).toEqual(range(0, 5));
  });

  test('pacing: a paused channel holds its packets; a paced one sends them all, in order', async () => {
    const r = track(new Replicator());
    // 120 kB/s with a two-packet burst: 40 packets take about 0.4 s.
    r.createChannel(9, { slotSize: SIZE, rateBytesPerSec: 120_000, burstBytes: 2 * SIZE });
    const s = track(await Sink.open());
    r.setPaused(9, true);
    r.addDestination(9, s.address, s.port);
    const all = makePackets(100, 40);
    expect(r.push(9, all, SIZE, 40)).toBe(40);
    // Paused before the push: by the ordering promise none of these may go.
    expect(r.channelStats(9)).toMatchObject({ queued: 40, streamPackets: 0 });
    r.setPaused(9, false);
    await s.waitFor(40);
    s.messages.forEach((m, i) => expect(m.equals(packet(all, i))).toBe(true));
    await until(() => r.channelStats(9).streamPackets === 40);
    expect(r.channelStats(9)).toMatchObject({ datagrams: 40, bytes: 40 * SIZE, queued: 0 });

    // Faster rate, then unpaced: totals stay exact.
    r.setRate(9, 1_000_000, 4 * SIZE);
    r.push(9, all, SIZE, 20);
    r.setRate(9, 0);
    r.push(9, all.subarray(20 * SIZE), SIZE, 20);
    await s.waitFor(80);
    expect(s.messages.slice(40).map((m) => m.readUInt32BE(0))).toEqual(Array.from({ length: 40 }, (_, i) => 100 + i));
  });

  test("'lowWater' fires on the JS thread, batched, naming each drained channel", async () => {
    const r = track(new Replicator());
    const s = track(await Sink.open());
    for (const id of [1, 2]) {
      r.createChannel(id, { slotSize: 100, capacity: 16, lowWater: 4 });
      r.addDestination(id, s.address, s.port);
    }
    const events: number[][] = [];
    const seen = new Set<number>();
    const both = new Promise<void>((resolve) => {
      r.on('lowWater', (ids) => {
        events.push(ids);
        ids.forEach((id) => seen.add(id));
        if (seen.has(1) && seen.has(2)) resolve();
      });
    });
    const pk = makePackets(0, 20, 100);
    expect(r.push(1, pk, 100, 20)).toBe(16); // the ring holds 16
    expect(r.push(2, pk, 100, 3)).toBe(3);
    await both;
    await s.waitFor(19);
    // One signal per channel per push, whatever the batching.
    expect(events.flat().sort()).toEqual([1, 2]);
    // A refill after the event is signalled again.
    const again = new Promise<number[]>((resolve) => r.once('lowWater', resolve));
    r.push(1, pk, 100, 1);
    expect(await again).toEqual([1]);
  });

  test('sendTo: one datagram outside the stream, with or without a channel', async () => {
    const r = track(new Replicator());
    r.createChannel(4, { slotSize: SIZE, rateBytesPerSec: 1_000_000 });
    const s = track(await Sink.open());
    const v6 = (await hasIpv6Loopback()) ? track(await Sink.open('::1')) : undefined;
    const one = Buffer.from('replacement symbol');
    r.sendTo('127.0.0.1', s.port, one);
    r.sendTo('127.0.0.1', s.port, Buffer.alloc(0));
    r.sendTo('127.0.0.1', s.port, makePackets(1, 1), 4);
    if (v6) r.sendTo('::1', v6.port, one, 4);
    await s.waitFor(3);
    expect(s.messages[0].equals(one)).toBe(true);
    expect(s.messages[1].length).toBe(0);
    expect(s.messages[2].equals(makePackets(1, 1))).toBe(true);
    if (v6) {
      await v6.waitFor(1);
      expect(v6.messages[0].equals(one)).toBe(true);
    }
    const onChannel = v6 ? 2 : 1;
    await until(() => r.channelStats(4).oneOffs === onChannel && r.stats().oneOffs === 2);
    expect(r.channelStats(4)).toMatchObject({
      oneOffs: onChannel,
      datagrams: onChannel,
      bytes: SIZE + (v6 ? one.length : 0),
      streamPackets: 0,
    });
    expect(r.stats()).toMatchObject({ oneOffs: 2, oneOffErrors: 0 });
    expect(r.stats().commands).toBeGreaterThanOrEqual(3 + onChannel);
  });

  test('bad input throws typed errors', async () => {
    const r = track(new Replicator());
    r.createChannel(1, { slotSize: 100 });
    expect(() => r.createChannel(1, { slotSize: 100 })).toThrow(ChannelExistsError);
    expect(() => r.createChannel(2, { slotSize: 0 })).toThrow(InvalidArgumentError);
    expect(() => r.createChannel(2, { slotSize: 70_000 })).toThrow(InvalidArgumentError);
    expect(() => r.createChannel(2, { slotSize: 100, capacity: -1 })).toThrow(InvalidArgumentError);
    expect(() => r.createChannel(2, { slotSize: 100, burstBytes: 50, rateBytesPerSec: 10 })).toThrow(
      InvalidArgumentError,
    );
    for (const bad of ['localhost', '1.2.3.256', '', '127.0.0.1:80', '::1::2', 'fe80::1%nosuchif']) {
      expect(() => r.addDestination(1, bad, 9)).toThrow(BadAddressError);
      expect(() => r.sendTo(bad, 9, Buffer.alloc(1))).toThrow(BadAddressError);
    }
    expect(() => r.addDestination(1, '127.0.0.1', 0)).toThrow(InvalidArgumentError);
    expect(() => r.addDestination(1, '127.0.0.1', 65536)).toThrow(InvalidArgumentError);
    for (const call of [
      () => r.addDestination(5, '127.0.0.1', 9),
      () => r.removeDestination(5, '127.0.0.1', 9),
      () => r.clearDestinations(5),
      () => r.setRate(5, 1000),
      () => r.setPaused(5, true),
      () => r.push(5, Buffer.alloc(100), 100, 1),
      () => r.sendTo('127.0.0.1', 9, Buffer.alloc(1), 5),
      () => r.channelStats(5),
      () => r.removeChannel(5),
    ]) {
      expect(call).toThrow(UnknownChannelError);
    }
    expect(() => r.push(1, Buffer.alloc(101), 101, 1)).toThrow(PacketTooLargeError);
    expect(() => r.sendTo('127.0.0.1', 9, Buffer.alloc(65_508))).toThrow(PacketTooLargeError);
    expect(() => r.push(1, Buffer.alloc(100), 50, 3)).toThrow(InvalidArgumentError);
    expect(() => r.push(1, Buffer.alloc(100), 0, 1)).toThrow(InvalidArgumentError);
    expect(() => r.push(1, 'not bytes' as unknown as Uint8Array, 100, 1)).toThrow(InvalidArgumentError);
    expect(() => new Replicator({ sendBufferBytes: -5 })).toThrow(InvalidArgumentError);
    expect(r.channelStats(1)).toMatchObject({ streamPackets: 0, queued: 0, destinations: 0 });
    // Typed errors keep the native error as their cause, and no address.
    try {
      r.addDestination(1, '203.0.113.300', 9);
    } catch (e) {
      expect(e).toBeInstanceOf(BadAddressError);
      expect((e as Error).message).not.toContain('203.0.113');
    }
  });

  test('close is idempotent; calls after it throw ReplicatorClosedError; stats stay readable', async () => {
    const r = new Replicator();
    r.createChannel(1, { slotSize: 100 });
    const s = track(await Sink.open());
    r.addDestination(1, s.address, s.port);
    r.push(1, makePackets(0, 3, 100), 100, 3);
    await s.waitFor(3);
    r.close();
    r.close();
    expect(() => r.push(1, Buffer.alloc(100), 100, 1)).toThrow(ReplicatorClosedError);
    expect(() => r.createChannel(2, { slotSize: 100 })).toThrow(ReplicatorClosedError);
    expect(() => r.addDestination(1, '127.0.0.1', 9)).toThrow(ReplicatorClosedError);
    expect(() => r.sendTo('127.0.0.1', 9, Buffer.alloc(1))).toThrow(ReplicatorClosedError);
    expect(r.channelStats(1).streamPackets).toBe(3);
    expect(typeof r.stats().syscalls).toBe('number');
  });

  test('a process exits by itself after close(), and a worker torn down without close() leaves no thread', () => {
    const root = path.resolve(__dirname, '../..');
    const script = `
      const { Replicator } = require('./lib/transport');
      const dgram = require('dgram');
      const { Worker } = require('worker_threads');
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => {
        const r = new Replicator();
        r.createChannel(1, { slotSize: 10, capacity: 8, lowWater: 4 });
        r.addDestination(1, '127.0.0.1', s.address().port);
        r.on('lowWater', () => {});
        r.push(1, Buffer.alloc(80), 10, 8);
        s.once('message', () => {
          r.close();
          s.close();
          // A worker that never closes its replicator: terminating it runs
          // the environment cleanup hook, which stops the sender thread.
          const w = new Worker(
            "const b = require('node-gyp-build')(process.argv[2]);" +
            "const r = new b.Replicator({}, () => {});" +
            "r.createChannel(1, 10, 8, 2, 0, 0);" +
            "require('worker_threads').parentPort.postMessage('up');" +
            "setInterval(() => {}, 1000);",
            { eval: true, argv: [${JSON.stringify(root)}] });
          w.once('message', () => w.terminate().then(() => console.log('done')));
        });
      });
    `;
    const out = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000, // a hang guard only: a clean run takes well under a second
    });
    expect(out.error).toBeUndefined();
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('done');
    expect(out.status).toBe(0);
  });
});
