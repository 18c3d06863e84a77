/**
 * RqcastServer over loopback, with a raw dgram test client.
 *
 * The data plane is a replicator: the real native one ((lib/transport)) and,
 * to pin down the server's own behaviour, a small in-test fake that forwards
 * ring packets to its destinations with dgram.
 */
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { AlcPacket, decodeAlc } from '../../lib/protocol/alc';
import { encodeControl } from '../../lib/protocol/control';
import { tryParseFdt } from '../../lib/protocol/fdt';
import { ErrorCode, MessageType } from '../../lib/protocol/messages';
import { Catalogue } from '../../lib/content/catalogue';
import { Replicator } from '../../lib/transport/replicator';
import type {
  MulticastGroupConfig,
  ReplicatorChannelConfig,
  ReplicatorChannelCounters,
  ReplicatorContract,
} from '../../lib/transport/replicator-contract';
import { registerServerMetrics } from '../../lib/server/metrics';
import { RqcastServer, RqcastServerOptions } from '../../lib/server/server';
import { codecPacket } from '../support/stream-packets';
import { RawClient, serverRig, type ServerRig } from '../support/server-rig';

// ----------------------------------------------------------------- fake --

interface FakeChannel {
  capacity: number;
  lowWater: number;
  queue: Uint8Array[];
  dests: Map<string, { address: string; port: number }>;
  armed: boolean;
  streamPackets: number;
  datagrams: number;
  bytes: number;
  /** The multicast sink, if any. */
  group?: MulticastGroupConfig;
  /** The first packets sent to the group (up to GROUP_RECORD), as they left. */
  groupSent: Uint8Array[];
}

/** Group packets a FakeReplicator keeps per channel for inspection. */
const GROUP_RECORD = 4096;

/**
 * The Replicator contract over dgram: a few packets per channel every
 * millisecond or so. A group sink sends each packet once: recorded, and
 * forwarded to the local sockets that `listen` to the group (standing in
 * for IP multicast on loopback).
 */
class FakeReplicator extends EventEmitter implements ReplicatorContract {
  private readonly socket = dgram.createSocket('udp4');
  private readonly channels = new Map<number, FakeChannel>();
  private readonly groupListeners = new Map<string, Set<number>>();
  private readonly timer: NodeJS.Timeout;
  oneOffs = 0;
  readonly calls: string[] = [];

  constructor(private readonly perTick = 16) {
    super();
    this.socket.bind(0, '127.0.0.1');
    this.timer = setInterval(() => this.pump(), 1);
  }
  createChannel(id: number, config: ReplicatorChannelConfig): void {
    const capacity = config.capacity ?? 4096;
    this.channels.set(id, {
      capacity,
      lowWater: config.lowWater ?? capacity / 4,
      queue: [],
      dests: new Map(),
      armed: true,
      streamPackets: 0,
      datagrams: 0,
      bytes: 0,
      groupSent: [],
    });
    this.calls.push(`createChannel ${id}`);
  }
  removeChannel(id: number): void {
    this.channels.delete(id);
    this.calls.push(`removeChannel ${id}`);
  }
  addGroup(channelId: number, group: MulticastGroupConfig): void {
    const c = this.ch(channelId);
    if (c.group) throw new Error('EEXIST');
    c.group = group;
    this.calls.push(`addGroup ${channelId} ${JSON.stringify(group)}`);
  }
  removeGroup(channelId: number): void {
    const c = this.ch(channelId);
    if (!c.group) throw new Error('ENOENT');
    c.group = undefined;
    this.calls.push(`removeGroup ${channelId}`);
  }
  /** The local UDP port `port` receives what is sent to `group`:`groupPort` from now on. */
  listen(group: string, groupPort: number, port: number): void {
    const key = `${group} ${groupPort}`;
    let set = this.groupListeners.get(key);
    if (!set) this.groupListeners.set(key, (set = new Set()));
    set.add(port);
  }
  unlisten(group: string, groupPort: number, port: number): void {
    this.groupListeners.get(`${group} ${groupPort}`)?.delete(port);
  }
  /** What channel `id`'s group sink sent so far (the first GROUP_RECORD packets). */
  groupSent(id: number): Uint8Array[] {
    return this.ch(id).groupSent;
  }
  addDestination(id: number, address: string, port: number): void {
    this.ch(id).dests.set(`${address} ${port}`, { address, port });
  }
  removeDestination(id: number, address: string, port: number): void {
    this.ch(id).dests.delete(`${address} ${port}`);
  }
  push(id: number, packets: Uint8Array, packetSize: number, count: number): number {
    const c = this.ch(id);
    const n = Math.min(count, c.capacity - c.queue.length);
    for (let i = 0; i < n; i++) c.queue.push(packets.slice(i * packetSize, (i + 1) * packetSize));
    c.armed = true;
    return n;
  }
  sendTo(address: string, port: number, data: Uint8Array): void {
    this.oneOffs++;
    this.socket.send(data, port, address);
  }
  channelStats(id: number): ReplicatorChannelCounters {
    const c = this.ch(id);
    return { queued: c.queue.length, destinations: c.dests.size, streamPackets: c.streamPackets, datagrams: c.datagrams, bytes: c.bytes };
  }
  close(): void {
    clearInterval(this.timer);
    this.socket.close();
  }
  private ch(id: number): FakeChannel {
    const c = this.channels.get(id);
    if (!c) throw new Error('ENOENT');
    return c;
  }
  private pump(): void {
    const low: number[] = [];
    for (const [id, c] of this.channels) {
      if (c.dests.size === 0 && !c.group) continue; // a channel without destinations holds its packets
      for (const p of c.queue.splice(0, this.perTick)) {
        c.streamPackets++;
        for (const d of c.dests.values()) {
          this.socket.send(p, d.port, d.address);
          c.datagrams++;
          c.bytes += p.length;
        }
        if (c.group) {
          c.datagrams++;
          c.bytes += p.length;
          if (c.groupSent.length < GROUP_RECORD) c.groupSent.push(p);
          for (const port of this.groupListeners.get(`${c.group.group} ${c.group.port}`) ?? []) this.socket.send(p, port, '127.0.0.1');
        }
      }
      if (c.armed && c.queue.length <= c.lowWater) {
        c.armed = false;
        low.push(id);
      }
    }
    if (low.length > 0) this.emit('lowWater', low);
  }
}

// ---------------------------------------------------------------- setup --

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let dir: string;
let files: Record<string, Buffer>;
let catalogue: Catalogue;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-srv-'));
  // a.bin: K = 48 source symbols at T = 1280 (an even K matters to the no-code test).
  files = { 'a.bin': randomBytes(48 * 1280), 'b.bin': randomBytes(9_000) };
  for (const [n, d] of Object.entries(files)) writeFileSync(path.join(dir, n), d);
  catalogue = await Catalogue.load([dir]);
});

afterAll(() => {
  catalogue.close();
  rmSync(dir, { recursive: true, force: true });
});

type Rig = ServerRig;

type MakeReplicator = () => ReplicatorContract;

function rig(make: MakeReplicator, options: Partial<RqcastServerOptions> = {}): Promise<Rig> {
  return serverRig(catalogue, make, options);
}

/** Waits until the replicator holds no destination for `tsi`, then until no more of its packets arrive. */
async function drained(r: Rig, tsi: number, c: RawClient): Promise<void> {
  while (r.replicator.channelStats(tsi).destinations > 0) await sleep(5);
  const count = (): number => c.data.filter((p) => p.tsi === tsi).length;
  let last = -1;
  while (count() !== last) {
    last = count();
    await sleep(50);
  }
}

/** The first `n` packets of `packets` whose sequence numbers follow each other (mod 2^32), if there are. */
function consecutiveRun(packets: AlcPacket[], n: number): AlcPacket[] | undefined {
  let from = 0;
  for (let i = 1; i < packets.length && i - from < n; i++) {
    if (((packets[i].sequence! - packets[i - 1].sequence!) >>> 0) !== 1) from = i;
  }
  return packets.length - from >= n ? packets.slice(from, from + n) : undefined;
}

/** Ascending sequence numbers -> canonical half-open ranges (no touching ranges). */
function toRanges(seqs: number[]): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (const q of seqs) {
    const last = out[out.length - 1];
    if (last && last.end === q) last.end = q + 1;
    else out.push({ start: q, end: q + 1 });
  }
  return out;
}

/** Builds `n` stream packets of a channel without a replicator. */
function streamOf(server: RqcastServer, tsi: number, n: number): AlcPacket[] {
  const out: AlcPacket[] = [];
  server.channels[tsi - 1].stream.fill(n, (buf, size, count) => {
    for (let i = 0; i < count; i++) {
      const r = decodeAlc(buf.subarray(i * size, (i + 1) * size));
      if (r.ok) out.push(r.packet);
    }
    return count;
  });
  return out;
}

describe('RqcastServer symbol allocation across channels', () => {
  const twoChannels = [{ name: 'x' }, { name: 'y', objects: ['a.bin'] }];

  test('coded: channels sharing an object draw from one counter per block', async () => {
    const replicator = new FakeReplicator();
    const server = new RqcastServer({ catalogue, channels: twoChannels, replicator });
    try {
      const seen = new Set<string>();
      for (let round = 0; round < 10; round++) {
        for (const tsi of [1, 2]) {
          for (const p of streamOf(server, tsi, 50)) {
            if (p.toi === 0n) continue;
            const key = `${p.toi}/${p.sbn}/${p.esi}`;
            expect(seen.has(key)).toBe(false);
            seen.add(key);
          }
        }
      }
    } finally {
      await server.close();
      replicator.close();
    }
  });

  test('no-code: each channel runs its own carousel, so each one alone carries every source symbol', async () => {
    const replicator = new FakeReplicator();
    const server = new RqcastServer({
      catalogue,
      channels: [{ name: 'x', objects: ['a.bin'] }, { name: 'y', objects: ['a.bin'] }],
      noCode: true,
      replicator,
    });
    try {
      const a = catalogue.get('a.bin')!;
      const K = a.encoder.sourceSymbols(0);
      expect(K % 2).toBe(0);
      const perChannel = new Map<number, Set<number>>([
        [1, new Set()],
        [2, new Set()],
      ]);
      // The channels take one packet each in turn, in step: with one carousel
      // shared by both, x would only ever get even ESIs and y odd ones.
      for (let round = 0; round < 4 * K; round++) {
        for (const tsi of [1, 2]) {
          for (const p of streamOf(server, tsi, 1)) {
            if (p.toi === BigInt(a.toi)) {
              expect(p.esi).toBeLessThan(K);
              perChannel.get(tsi)!.add(p.esi);
            }
          }
        }
      }
      expect(perChannel.get(1)!.size).toBe(K);
      expect(perChannel.get(2)!.size).toBe(K);
    } finally {
      await server.close();
      replicator.close();
    }
  });
});

test('prom-client metrics read the server counters and channel statistics at scrape time', async () => {
  const r = await rig(() => new FakeReplicator());
  try {
    const registry = registerServerMetrics(r.server);
    const c = await r.client();
    await c.cookie(r.port);
    await c.cookie(r.port);
    let text = await registry.metrics();
    expect(text).toMatch(/^rqcast_server_hello_received_total 2$/m);
    expect(text).toMatch(/^rqcast_server_cookies_issued_total 2$/m);
    expect(text).toMatch(/^rqcast_server_sessions 0$/m);
    expect(text).toMatch(/^rqcast_channel_queued\{channel="main",tsi="1"\} 256$/m);
    await c.cookie(r.port);
    text = await registry.metrics();
    expect(text).toMatch(/^rqcast_server_hello_received_total 3$/m);
  } finally {
    await r.close();
  }
});

describe('RqcastServer over IPv6 with the native replicator', () => {
  test.each([
    ['::1', '::1', '::1'],
    // Dual-stack: an IPv4 client of a server bound to :: is seen as ::ffff:127.0.0.1.
    ['::', '127.0.0.1', '127.0.0.1'],
  ])('bound to %s, client on %s', async (bind, clientHost, serverHost) => {
    const replicator = new Replicator();
    const server = new RqcastServer({ catalogue, port: 0, host: bind, replicator, rateMbps: 20, ringCapacity: 256 });
    const c = await RawClient.open(clientHost, serverHost);
    try {
      const { port, family } = await server.listen();
      expect(family).toBe('IPv6');
      const cookie = await c.cookie(port);
      await c.join(port, cookie, ['main']);
      await c.until(() => c.data.length >= 50);
      expect(c.data.every((p) => p.tsi === 1)).toBe(true);
    } finally {
      c.close();
      await server.close();
      replicator.close();
    }
  });
});

const replicators: [string, MakeReplicator][] = [
  ['the native replicator', () => new Replicator()],
  ['a fake replicator', () => new FakeReplicator()],
];

describe.each(replicators)('RqcastServer with %s', (_name, make) => {
  test('HELLO -> COOKIE, JOIN -> JOINED, the stream arrives and decodes (FDT, then every object)', async () => {
    const r = await rig(make);
    try {
      const c = await r.client();
      const cookie = await c.cookie(r.port);
      const joined = await c.join(r.port, cookie, ['main']);
      expect(joined.channels).toEqual([{ name: 'main', tsi: 1 }]);
      // FDT first (from the TOI 0 packets and their EXT_FTI), then the objects it lists.
      const fdtDec = await c.until(() => {
        const first = c.data.find((p) => p.toi === 0n);
        if (!first) return undefined;
        const o = first.oti!;
        const d = new ObjectDecoder({ F: o.transferLength, T: o.symbolSize, Z: o.sourceBlocks, N: o.subBlocks, Al: o.alignment });
        for (const p of c.data) if (p.toi === 0n) d.push(codecPacket(p));
        if (d.complete) return d;
        d.close();
        return undefined;
      });
      const parsed = tryParseFdt(fdtDec.result());
      fdtDec.close();
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) return;
      expect(parsed.fdt.files.map((f) => f.contentLocation).sort()).toEqual(['a.bin', 'b.bin']);
      for (const f of parsed.fdt.files) {
        const o = f.oti!;
        const dec = new ObjectDecoder({ F: o.transferLength, T: o.symbolSize, Z: o.sourceBlocks, N: o.subBlocks, Al: o.alignment });
        let used = 0;
        await c.until(() => {
          for (; used < c.data.length; used++) if (c.data[used].toi === f.toi) dec.push(codecPacket(c.data[used]));
          return dec.complete;
        });
        expect(Buffer.from(dec.result()).equals(files[f.contentLocation])).toBe(true);
        dec.close();
      }
      // Stream packets: TSI 1, EXT_RQSEQ increasing (consecutive unless the test socket's buffer overflowed).
      const seqs = c.data.map((p) => p.sequence!);
      expect(c.data.every((p) => p.tsi === 1)).toBe(true);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
      expect(r.server.counters.cookiesIssued).toBe(1);
      expect(r.server.counters.sessionsStarted).toBe(1);
    } finally {
      await r.close();
    }
  });

  test('a JOIN omitting a channel stops that channel; LEAVE stops everything', async () => {
    const r = await rig(make, { channels: [{ name: 'a', objects: ['a.bin'] }, { name: 'b', objects: ['b.bin'] }] });
    try {
      const c = await r.client();
      const cookie = await c.cookie(r.port);
      const joined = await c.join(r.port, cookie, ['a', 'b']);
      expect(joined.channels).toEqual([
        { name: 'a', tsi: 1 },
        { name: 'b', tsi: 2 },
      ]);
      await c.until(() => c.data.some((p) => p.tsi === 1) && c.data.some((p) => p.tsi === 2));
      await c.join(r.port, cookie, ['a']);
      await drained(r, 2, c);
      const fromB = c.data.filter((p) => p.tsi === 2).length;
      const fromA = c.data.filter((p) => p.tsi === 1).length;
      await c.until(() => c.data.filter((p) => p.tsi === 1).length > fromA + 200);
      expect(c.data.filter((p) => p.tsi === 2).length).toBe(fromB);

      const left = new Promise((resolve) => r.server.once('left', resolve));
      c.send({ type: MessageType.Leave, cookie }, r.port);
      await left;
      await drained(r, 1, c);
      const total = c.data.length;
      await sleep(200);
      expect(c.data.length).toBe(total);
      expect(r.server.counters.sessionsLeft).toBe(1);
      expect(r.server.sessionCount).toBe(0);
    } finally {
      await r.close();
    }
  });

  test('expiry stops the data', async () => {
    const r = await rig(make);
    try {
      const c = await r.client();
      const cookie = await c.cookie(r.port);
      const expired = new Promise((resolve) => r.server.once('expired', resolve));
      await c.join(r.port, cookie, ['main'], 300);
      await c.until(() => c.data.length > 10);
      await expired;
      await drained(r, 1, c);
      const total = c.data.length;
      await sleep(200);
      expect(c.data.length).toBe(total);
      expect(r.server.counters.sessionsExpired).toBe(1);
    } finally {
      await r.close();
    }
  });

  test('forged, expired and other-address cookies are refused and counted; no data flows', async () => {
    let skew = 0;
    const r = await rig(make, { clock: () => Date.now() + skew, cookieRotationMs: 60_000, cookieLifetimeMs: 10_000 });
    try {
      const c = await r.client();
      const other = await r.client();
      const cookie = await c.cookie(r.port);

      const forged = Uint8Array.from(cookie);
      forged[20] ^= 1;
      let from = c.control.length;
      c.send({ type: MessageType.Join, cookie: forged, channels: ['main'], until: { kind: 'duration', ms: 60_000 }, ack: false }, r.port);
      expect((await c.next(MessageType.Error, from)).code).toBe(ErrorCode.BadCookie);
      // The issuer tag still verifies: ours, but bound to another address.
      expect(r.server.counters.cookieWrongAddress).toBe(1);

      from = other.control.length;
      other.send({ type: MessageType.Join, cookie, channels: ['main'], until: { kind: 'duration', ms: 60_000 }, ack: false }, r.port);
      expect((await other.next(MessageType.Error, from)).code).toBe(ErrorCode.BadCookie);
      expect(r.server.counters.cookieWrongAddress).toBe(2);

      const issuer = Uint8Array.from(cookie);
      issuer[10] ^= 0x80; // issuer tag: not ours at all
      from = c.control.length;
      c.send({ type: MessageType.Join, cookie: issuer, channels: ['main'], until: { kind: 'duration', ms: 60_000 }, ack: false }, r.port);
      await c.next(MessageType.Error, from);
      expect(r.server.counters.cookieForged).toBe(1);

      skew = 20_000; // past the cookie's 10 s lifetime, same key period or the next
      from = c.control.length;
      c.send({ type: MessageType.Join, cookie, channels: ['main'], until: { kind: 'duration', ms: 60_000 }, ack: false }, r.port);
      expect((await c.next(MessageType.Error, from)).code).toBe(ErrorCode.CookieExpired);
      expect(r.server.counters.cookieExpired).toBe(1);

      expect(r.server.sessionCount).toBe(0);
      expect(r.replicator.channelStats(1).destinations).toBe(0);
      expect(c.data.length + other.data.length).toBe(0);
    } finally {
      await r.close();
    }
  });

  test('anti-amplification: an address that never verifies never receives more bytes than it sent', async () => {
    const r = await rig(make);
    try {
      const c = await r.client();
      const nonce = randomBytes(8);
      const hello = encodeControl({ type: MessageType.Hello, nonce });
      // Truncated HELLOs (below the padding minimum): refused, no reply.
      for (const len of [8, 16, 64, hello.length - 1]) {
        const short = Uint8Array.from(hello.subarray(0, len));
        short[4] = len >> 8; // total length field follows the magic, version and type
        short[5] = len & 0xff;
        c.sendRaw(short, r.port);
      }
      // Garbage and JOIN/LEAVE/ACK with made-up cookies.
      c.sendRaw(randomBytes(300), r.port);
      const bogus = randomBytes(33);
      const tooShort = randomBytes(16);
      c.send({ type: MessageType.Join, cookie: bogus, channels: ['main'], until: { kind: 'duration', ms: 1000 }, ack: true }, r.port);
      c.send({ type: MessageType.Leave, cookie: bogus }, r.port);
      c.send({ type: MessageType.Ack, cookie: bogus, tsi: 1, windowStart: 0, windowEnd: 100, received: [] }, r.port);
      c.send({ type: MessageType.Join, cookie: tooShort, channels: ['main'], until: { kind: 'duration', ms: 1000 }, ack: false }, r.port);
      // One full HELLO: its COOKIE is no larger. Then make sure everything was processed.
      const from = c.control.length;
      c.sendRaw(hello, r.port);
      await c.next(MessageType.Cookie, from);
      await sleep(100);
      expect(c.bytesReceived).toBeLessThanOrEqual(c.bytesSent);
      expect(c.data).toHaveLength(0);
      const k = r.server.counters;
      expect(k.datagramsReceived).toBe(10);
      expect(k.controlMalformed).toBe(5);
      // JOIN, LEAVE, ACK, JOIN: each cookie refused (which refusal depends on the random bytes).
      expect(k.cookieMalformed + k.cookieForged + k.cookieUnknownKey).toBe(4);
      expect(k.sessionsStarted).toBe(0);
    } finally {
      await r.close();
    }
  });

  test('ACK: each loss is answered by a packet of the same block with a never-sent ESI and no EXT_RQSEQ', async () => {
    const r = await rig(make, { channels: [{ name: 'main' }, { name: 'more' }] });
    try {
      const c = await r.client();
      const cookie = await c.cookie(r.port);
      await c.join(r.port, cookie, ['main', 'more'], 60_000, true);
      // 100 stream packets with consecutive sequence numbers: a window the kernel dropped none of. (The first
      // 100 received, as it was, held every packet the socket dropped while the test process was descheduled:
      // on a loaded machine hundreds, more than the replacement budget grants, and the wait below hung.)
      const stream = await c.until(() => consecutiveRun(c.data.filter((p) => p.tsi === 1 && p.sequence !== undefined), 100));
      const start = stream[0].sequence!;
      const end = stream[99].sequence! + 1;
      // Report four packets we did get as lost.
      const chosen = [stream[10], stream[11], stream[50], stream[97]];
      const got = stream.map((p) => p.sequence!).filter((q) => !chosen.some((p) => p.sequence === q));
      const received = toRanges(got);
      const lostCount = end - start - got.length;
      const before = c.data.length;
      c.send({ type: MessageType.Ack, cookie, tsi: 1, windowStart: start, windowEnd: end, received }, r.port);
      const fresh = await c.until(() => {
        const f = c.data.slice(before).filter((p) => p.sequence === undefined);
        return f.length >= lostCount && f;
      });
      expect(fresh).toHaveLength(lostCount);
      // Each chosen loss is replaced by a packet of its block.
      const freshBlocks = fresh.map((p) => `${p.toi}/${p.sbn}`);
      for (const p of chosen) {
        const i = freshBlocks.indexOf(`${p.toi}/${p.sbn}`);
        expect(i).toBeGreaterThanOrEqual(0);
        freshBlocks.splice(i, 1);
      }
      expect(fresh.every((p) => p.tsi === 1)).toBe(true);
      // Let both streams run on, then check no stream packet of either channel ever carried a fresh ESI.
      const n = c.data.length;
      await c.until(() => c.data.length > n + 300);
      const streamKeys = new Set(c.data.filter((p) => p.sequence !== undefined).map((p) => `${p.toi}/${p.sbn}/${p.esi}`));
      for (const p of fresh) expect(streamKeys.has(`${p.toi}/${p.sbn}/${p.esi}`)).toBe(false);
      // The same ACK again: nothing new (each loss answered once).
      c.send({ type: MessageType.Ack, cookie, tsi: 1, windowStart: start, windowEnd: end, received }, r.port);
      await c.until(() => c.data.length > n + 600);
      expect(c.data.filter((p) => p.sequence === undefined)).toHaveLength(lostCount);
      expect(r.server.counters.freshPackets).toBe(lostCount);
      expect(r.server.counters.freshSymbolsRequested).toBe(lostCount);
    } finally {
      await r.close();
    }
  });
});

// ------------------------------------------------------------- multicast --

describe('RqcastServer with a multicast group (docs/PROTOCOL.md §10.10), over the fake replicator', () => {
  const GROUP = { group: '239.40.40.40', port: 40_000 };
  const GROUP_ID = 0x80000001;

  /** A plain UDP socket standing for a client's receive-only multicast transport. */
  async function groupSocket(): Promise<{ socket: dgram.Socket; port: number; data: AlcPacket[]; close(): void }> {
    const socket = dgram.createSocket('udp4');
    const data: AlcPacket[] = [];
    socket.on('message', (msg) => {
      const r = decodeAlc(new Uint8Array(msg));
      if (r.ok) data.push(r.packet);
    });
    await new Promise<void>((res) => socket.bind(0, '127.0.0.1', res));
    return { socket, port: socket.address().port, data, close: () => socket.close() };
  }

  async function joinWith(c: RawClient, port: number, cookie: Uint8Array, channels: string[], multicast: string[]) {
    const from = c.control.length;
    c.send({ type: MessageType.Join, cookie, channels, until: { kind: 'duration', ms: 60_000 }, ack: true, multicast }, port);
    return c.next(MessageType.Joined, from);
  }

  test('listen: a second replicator channel 0x80000000 | TSI with the same ring and rate, the group as its sink, primed; close removes both', async () => {
    const fake = new FakeReplicator();
    const r = await rig(() => fake, { channels: [{ name: 'main', multicast: GROUP }, { name: 'plain' }] });
    const main = r.server.channels[0];
    expect(main.multicast).toMatchObject({ group: GROUP.group, port: GROUP.port, ttl: 1, loop: true, source: '127.0.0.1', channelId: GROUP_ID });
    expect(r.server.channels[1].multicast).toBeUndefined();
    // The source defaults to the control socket's address (bound to 127.0.0.1 here).
    expect(fake.calls).toEqual([
      'createChannel 1',
      `createChannel ${GROUP_ID}`,
      `addGroup ${GROUP_ID} {"group":"239.40.40.40","port":40000,"ttl":1,"loop":true,"source":"127.0.0.1"}`,
      'createChannel 2',
    ]);
    expect(r.replicator.channelStats(GROUP_ID).queued + r.replicator.channelStats(GROUP_ID).streamPackets).toBeGreaterThan(0);
    expect(r.server.channelStats('main', 'group')).toEqual(r.replicator.channelStats(GROUP_ID));
    expect(r.server.channelStats('plain', 'group')).toBeUndefined();
    expect(r.server.channelStats('main')).toEqual(r.replicator.channelStats(1));
    fake.calls.length = 0;
    await r.server.close();
    expect(fake.calls).toEqual([`removeGroup ${GROUP_ID}`, `removeChannel ${GROUP_ID}`, 'removeChannel 1', 'removeChannel 2']);
    r.replicator.close();
    r.clients.forEach((c) => c.close());
  });

  test('the group gets the channel stream with nobody joined, refilled on low water: TSI 1, its own EXT_RQSEQ from 0, the FDT', async () => {
    const fake = new FakeReplicator();
    const r = await rig(() => fake, { channels: [{ name: 'main', multicast: GROUP }] });
    try {
      // Several ring-fulls (256 slots): the group channel was refilled.
      while (fake.groupSent(GROUP_ID).length < 1000) await sleep(5);
      const sent = fake.groupSent(GROUP_ID).slice(0, 1000).map((b) => {
        const d = decodeAlc(b);
        if (!d.ok) throw new Error(d.reason);
        return d.packet;
      });
      expect(sent.every((p) => p.tsi === 1)).toBe(true);
      expect(sent.map((p) => p.sequence)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      expect(sent.some((p) => p.toi === 0n && p.fdt?.instanceId === 1)).toBe(true);
      expect(r.replicator.channelStats(1).streamPackets).toBe(0);
      expect(r.server.counters.groupStreamPackets).toBeGreaterThanOrEqual(1000);
      expect(r.server.counters.groupFdtPackets).toBeGreaterThan(0);
      expect(r.server.counters.streamPackets).toBe(r.server.channels[0].stream.counters.packets);
    } finally {
      await r.close();
    }
  });

  test('a multicast JOIN adds no unicast destination; its fallback JOIN (bit cleared) does, and the ESIs of both streams never repeat', async () => {
    const fake = new FakeReplicator();
    const r = await rig(() => fake, { channels: [{ name: 'main', multicast: GROUP }] });
    const g = await groupSocket();
    try {
      const c = await r.client();
      const cookie = await c.cookie(r.port);
      const joined = await joinWith(c, r.port, cookie, ['main'], ['main']);
      expect(joined.channels).toEqual([{ name: 'main', tsi: 1, multicast: { group: GROUP.group, port: GROUP.port, source: '127.0.0.1', unicast: false } }]);
      fake.listen(GROUP.group, GROUP.port, g.port);
      await new Promise<void>((res) => {
        const check = (): void => (g.data.length >= 200 ? res() : void setTimeout(check, 5));
        check();
      });
      expect(r.replicator.channelStats(1).destinations).toBe(0);
      expect(c.data).toHaveLength(0);
      expect(r.server.counters.joinMulticastChannels).toBe(1);

      // An ACK of the channel while it comes from the group: ignored.
      c.send({ type: MessageType.Ack, cookie, tsi: 1, windowStart: 0, windowEnd: 10, received: [] }, r.port);
      // Fallback: the same channel, bit cleared.
      const fallback = await joinWith(c, r.port, cookie, ['main'], []);
      expect(fallback.channels[0].multicast).toEqual({ group: GROUP.group, port: GROUP.port, source: '127.0.0.1', unicast: true });
      expect(r.replicator.channelStats(1).destinations).toBe(1);
      await c.until(() => c.data.length >= 200);
      expect(c.data.every((p) => p.tsi === 1)).toBe(true);
      expect(r.server.counters).toMatchObject({ multicastToUnicast: 1, ackGroupChannel: 1, freshSymbolsRequested: 0 });

      // One client, both streams: no (TOI, SBN, ESI) twice.
      fake.unlisten(GROUP.group, GROUP.port, g.port);
      const keys = [...g.data, ...c.data].map((p) => `${p.toi}/${p.sbn}/${p.esi}`);
      expect(new Set(keys).size).toBe(keys.length);
    } finally {
      g.close();
      await r.close();
    }
  });

  test('channels without a group: no group stream, no addGroup, JOINED without group entries even with the bit set', async () => {
    const fake = new FakeReplicator();
    const r = await rig(() => fake);
    try {
      expect(fake.calls).toEqual(['createChannel 1']);
      expect(r.server.channels[0]).not.toHaveProperty('multicast');
      const c = await r.client();
      const joined = await joinWith(c, r.port, await c.cookie(r.port), ['main'], ['main']);
      expect(joined.channels).toEqual([{ name: 'main', tsi: 1 }]);
      await c.until(() => c.data.length > 10);
      expect(r.server.counters).toMatchObject({ joinMulticastNoGroup: 1, groupStreamPackets: 0 });
    } finally {
      await r.close();
    }
  });

  test('metrics: the group stream has its own gauges, labelled with the group', async () => {
    const r = await rig(() => new FakeReplicator(), { channels: [{ name: 'main', multicast: GROUP }] });
    try {
      while (r.replicator.channelStats(GROUP_ID).streamPackets < 10) await sleep(5);
      const text = await registerServerMetrics(r.server).metrics();
      expect(text).toMatch(/^rqcast_group_stream_packets\{channel="main",tsi="1",group="239\.40\.40\.40:40000"\} [1-9]\d*$/m);
      expect(text).toMatch(/^rqcast_group_queued\{channel="main",tsi="1",group="239\.40\.40\.40:40000"\} \d+$/m);
      expect(text).toMatch(/^rqcast_server_group_stream_packets_total [1-9]\d*$/m);
      expect(text).toMatch(/^rqcast_channel_stream_packets\{channel="main",tsi="1"\} 0$/m);
    } finally {
      await r.close();
    }
  });

  test('a group the engine refuses fails listen(), and the server is closed (its channels removed)', async () => {
    class Refusing extends FakeReplicator {
      override addGroup(): void {
        throw new Error('ENETUNREACH');
      }
    }
    const fake = new Refusing();
    const server = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', replicator: fake, ringCapacity: 256, channels: [{ name: 'main', multicast: GROUP }] });
    try {
      await expect(server.listen()).rejects.toThrow('ENETUNREACH');
      expect(server.address()).toBeUndefined();
      expect(fake.calls).toContain('removeChannel 1');
      await expect(server.listen()).rejects.toThrow('server is closed');
    } finally {
      await server.close();
      fake.close();
    }
  });

  test('a bad group is refused at construction with a typed error naming the channel', () => {
    expect(() => new RqcastServer({ catalogue, channels: [{ name: 'main', multicast: { group: '10.0.0.1', port: 5000 } }] })).toThrow(
      expect.objectContaining({ code: 'ERR_MULTICAST_GROUP', message: expect.stringContaining('channel main: multicast group 10.0.0.1') }),
    );
    expect(() => new RqcastServer({ catalogue, channels: [{ name: 'main', multicast: { group: '239.1.1.1', port: 5000, interface: 'rqcast-no-such-if0' } }] })).toThrow(
      expect.objectContaining({ code: 'ERR_MULTICAST_INTERFACE' }),
    );
  });
});
