/**
 * DataPath: datagrams of one session in, in the order they arrived: the
 * source check, the pre-JOIN buffer, the loss hook, ACK recording, and the
 * in-place fast path agreeing with the general one (docs/PROTOCOL.md §10.1,
 * §10.7).
 */
import { randomBytes } from 'crypto';
import { PartialBlockBudget } from '../../lib/client/block-budget';
import { DataPath, PRE_JOIN_PACKETS } from '../../lib/client/data-path';
import { ClientStats, newClientStats } from '../../lib/client/events';
import { ObjectRegistry } from '../../lib/client/object-registry';
import { encodeAlc } from '../../lib/protocol/alc';
import { encodeControl } from '../../lib/protocol/control';
import { AckMessage, ControlMessage, ErrorCode, MessageType } from '../../lib/protocol/messages';
import type { ServerEndpoint } from '../../lib/transport/client-transport';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { createHash } from 'crypto';
import { datagrams, fdtBytes, MemorySinkFactory, RecordingDataPathOwner, RegistryLog, testObject, TestObject, wireOti } from './support';

const SERVER: ServerEndpoint = { address: '10.0.0.1', port: 4433, family: 4 };
/** Data comes from another port of the server's address. */
const DATA_PORT = 50_000;
const COOKIE = new Uint8Array(16).fill(3);

interface Setup {
  path: DataPath;
  owner: RecordingDataPathOwner;
  stats: ClientStats;
  registry: ObjectRegistry;
  log: RegistryLog;
  sinks: MemorySinkFactory;
}

function setup(o: { lossRate?: number; random?: () => number; ack?: boolean; ackEveryPackets?: number; recordEsis?: boolean; source?: number; server?: ServerEndpoint; registry?: ObjectRegistry; log?: RegistryLog; sinks?: MemorySinkFactory } = {}): Setup {
  const stats = newClientStats();
  const log = o.log ?? new RegistryLog();
  const sinks = o.sinks ?? new MemorySinkFactory();
  const registry =
    o.registry ?? new ObjectRegistry({ maxUnknownPackets: 4096, budget: new PartialBlockBudget(Infinity), sinks, stats, events: log });
  const owner = new RecordingDataPathOwner(COOKIE);
  const path = new DataPath(o.source ?? 0, o.server ?? SERVER, registry, owner, {
    lossRate: o.lossRate ?? 0,
    random: o.random ?? Math.random,
    ack: o.ack ?? false,
    ackEveryPackets: o.ackEveryPackets ?? 256,
    recordEsis: o.recordEsis ?? false,
    stats,
  });
  return { path, owner, stats, registry, log, sinks };
}

function join(s: Setup, tsi = 1): void {
  s.owner.joined = true;
  s.path.addChannels([{ name: 'main', tsi }]);
  s.path.replayPreJoin();
}

const from = (bytes: Uint8Array, address = SERVER.address, port = DATA_PORT) => ({ bytes, address, port });

/** Object packets of `obj` (TOI 1), source symbols 0.., with sequence numbers from `seq`. */
function objectBytes(obj: TestObject, count: number, o: { tsi?: number; seq?: number; firstEsi?: number } = {}): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const esi = (o.firstEsi ?? 0) + i;
    const pkt = obj.enc.packet(0, esi);
    out.push(encodeAlc({ tsi: o.tsi ?? 1, toi: 1, sbn: 0, esi, symbols: pkt.subarray(4), sequence: o.seq === undefined ? undefined : o.seq + i }));
  }
  return out;
}

const objects: TestObject[] = [];
function object(bytes = 20_000): TestObject {
  const o = testObject('obj', randomBytes(bytes));
  objects.push(o);
  return o;
}
afterEach(() => {
  for (const o of objects.splice(0)) o.enc.close();
});

describe('DataPath: source check', () => {
  test('datagrams from another address are ignored and counted; an IPv4-mapped source is the server', () => {
    const s = setup();
    const hello: ControlMessage = { type: MessageType.Error, code: ErrorCode.NotJoined, reason: 'x' };
    const bytes = encodeControl(hello);
    s.path.onDatagrams(datagrams([from(bytes, '10.0.0.2', SERVER.port), from(bytes, '::ffff:10.0.0.1', SERVER.port), from(bytes, SERVER.address, SERVER.port)]));
    expect(s.stats.ignored).toBe(1);
    expect(s.owner.controls).toEqual([hello, hello]);
  });

  test('a control message counts only from the control port; ALC from any port', () => {
    const s = setup();
    const obj = object();
    join(s);
    const ctl = encodeControl({ type: MessageType.Joined, channels: [{ name: 'main', tsi: 1 }], expiresAtMs: 1 });
    s.path.onDatagrams(datagrams([from(ctl, SERVER.address, DATA_PORT), from(ctl, SERVER.address, SERVER.port), ...objectBytes(obj, 2).map((b) => from(b, SERVER.address, 1234))]));
    expect(s.owner.controls).toHaveLength(1);
    expect(s.stats.ignored).toBe(1);
    expect(s.stats.packetsReceived).toBe(2);
  });

  test('empty, truncated, undecodable datagrams and TSIs not joined are ignored and counted', () => {
    const s = setup();
    const obj = object();
    join(s);
    const badControl = Uint8Array.from([0x52, 0x51, 99, 0]);
    const notAlc = Uint8Array.from([0x00, 1, 2, 3, 4]);
    s.path.onDatagrams(
      datagrams([from(new Uint8Array(0)), from(badControl, SERVER.address, SERVER.port), from(notAlc), ...objectBytes(obj, 3, { tsi: 9 }).map((b) => from(b))], 5),
    );
    expect(s.stats.ignored).toBe(5 + 1 + 1 + 1 + 3);
    expect(s.stats.packetsReceived).toBe(0);
    // None was a data packet taken: no start-up stamp.
    expect(s.stats.firstPacketMs).toBe(0);
  });

  test('nothing is read once the session has left or the fetch has ended', () => {
    const s = setup();
    const obj = object();
    join(s);
    s.owner.left = true;
    s.path.onDatagrams(datagrams(objectBytes(obj, 3).map((b) => from(b)), 2));
    s.owner.left = false;
    s.owner.ended = true;
    s.path.onDatagrams(datagrams(objectBytes(obj, 3).map((b) => from(b))));
    expect(s.stats).toEqual(newClientStats());
  });
});

describe('DataPath: before JOINED', () => {
  test(`data that overtakes JOINED waits (at most ${PRE_JOIN_PACKETS} packets) and is processed once the channels are known`, async () => {
    const s = setup();
    const obj = object();
    const early = [...fdtBytes(obj), ...objectBytes(obj, obj.enc.sourceSymbols(0) + 2)];
    s.path.onDatagrams(datagrams(early.map((b) => from(b))));
    expect(s.path.preJoinCount).toBe(early.length);
    expect(s.stats.packetsReceived).toBe(0);
    expect(s.stats.firstPacketMs).toBe(0);
    join(s);
    expect(s.path.preJoinCount).toBe(0);
    expect(s.stats.packetsReceived).toBe(early.length);
    // Taken when JOINED let them in.
    expect(s.stats.firstPacketMs).toBeGreaterThan(0);
    await s.log.verifiedCount(1);
    expect(Buffer.from(s.sinks.opened[0].bytes).equals(obj.data)).toBe(true);
  });

  test('the buffer is bounded; what does not fit is ignored and counted', () => {
    const s = setup();
    const obj = object(400_000);
    s.path.onDatagrams(datagrams(objectBytes(obj, PRE_JOIN_PACKETS + 10).map((b) => from(b))));
    expect(s.path.preJoinCount).toBe(PRE_JOIN_PACKETS);
    expect(s.stats.ignored).toBe(10);
  });
});

describe('DataPath: the loss hook', () => {
  test('drops the packets its random draw says, before they are counted or recorded', () => {
    const draws = [0.05, 0.5, 0.09, 0.95, 0.01];
    let i = 0;
    const s = setup({ lossRate: 0.1, random: () => draws[i++ % draws.length], ack: true });
    const obj = object();
    join(s);
    for (const b of fdtBytes(obj)) s.path.onDatagrams(datagrams([from(b)]));
    const fdtTaken = s.stats.packetsReceived;
    const fdtDropped = s.stats.simulatedDrops;
    expect(fdtTaken + fdtDropped).toBe(fdtBytes(obj).length);
    s.stats.packetsReceived = s.stats.simulatedDrops = 0;
    i = 0;
    s.path.onDatagrams(datagrams(objectBytes(obj, 5, { seq: 0 }).map((b) => from(b))));
    expect(s.stats.simulatedDrops).toBe(3);
    expect(s.stats.packetsReceived).toBe(2);
  });
});

describe('DataPath: ACK mode', () => {
  test('sequence numbers are recorded; an ACK goes out once ackEveryPackets are unreported; replacements are counted, not recorded', () => {
    const s = setup({ ack: true, ackEveryPackets: 10 });
    const obj = object();
    join(s);
    s.path.onDatagrams(datagrams(objectBytes(obj, 9, { seq: 100 }).map((b) => from(b))));
    expect(s.owner.sent).toEqual([]);
    // Two replacements (no EXT_RQSEQ), then the 10th sequence number.
    s.path.onDatagrams(datagrams([...objectBytes(obj, 2, { firstEsi: 50 }), ...objectBytes(obj, 1, { seq: 109, firstEsi: 9 })].map((b) => from(b))));
    expect(s.stats.replacements).toBe(2);
    expect(s.owner.sent).toHaveLength(1);
    const ack = s.owner.sent[0] as AckMessage;
    expect(ack).toMatchObject({ type: MessageType.Ack, cookie: COOKIE, tsi: 1, windowStart: 100, windowEnd: 110, received: [{ start: 100, end: 110 }] });
    expect(s.stats.acksSent).toBe(1);
  });

  test('sendAcks: one ACK per channel with something to report, none without a cookie (the window waits for the next)', () => {
    const s = setup({ ack: true });
    const obj = object();
    s.owner.joined = true;
    s.path.addChannels([
      { name: 'a', tsi: 1 },
      { name: 'b', tsi: 2 },
    ]);
    s.path.onDatagrams(datagrams([...objectBytes(obj, 3, { seq: 0, tsi: 1 }), ...objectBytes(obj, 2, { seq: 5, tsi: 2 })].map((b) => from(b))));
    s.owner.cookie = undefined;
    s.path.sendAcks();
    expect(s.owner.sent).toEqual([]);
    s.owner.cookie = COOKIE;
    s.path.sendAcks();
    expect(s.owner.sent.map((m) => (m as AckMessage).tsi)).toEqual([1, 2]);
    expect(s.owner.sent[0]).toMatchObject({ windowStart: 0, windowEnd: 3 });
    expect(s.owner.sent[1]).toMatchObject({ windowStart: 5, windowEnd: 7 });
  });

  test('no ACK mode: nothing recorded, nothing sent', () => {
    const s = setup({ ack: false, ackEveryPackets: 1 });
    const obj = object();
    join(s);
    s.path.onDatagrams(datagrams(objectBytes(obj, 5, { seq: 0 }).map((b) => from(b))));
    s.path.sendAcks();
    expect(s.owner.sent).toEqual([]);
  });
});

describe('DataPath: what counts as progress (the fetch --timeout, issue 13 finding 1)', () => {
  /** A two-block object (the second block is the one a server cannot send: a file truncated while served). */
  function twoBlocks(): TestObject {
    const data = randomBytes(16 * 256);
    const enc = new ObjectEncoder(data, { symbolSize: 256, sourceBlocks: 2 });
    const o = { name: 'obj', data, enc, oti: wireOti(enc), sha256: createHash('sha256').update(data).digest() };
    objects.push(o);
    return o;
  }
  function blockBytes(obj: TestObject, sbn: number, firstEsi: number, count: number): Uint8Array[] {
    return Array.from({ length: count }, (_, i) => {
      const pkt = obj.enc.packet(sbn, firstEsi + i);
      return encodeAlc({ tsi: 1, toi: 1, sbn, esi: firstEsi + i, symbols: pkt.subarray(4) });
    });
  }

  test.each([false, true])('packets of a block already decoded are no activity while another block of the object is missing (debug hooks %p)', async (watching) => {
    const s = setup();
    s.owner.watching = watching;
    const obj = twoBlocks();
    join(s);
    for (const b of fdtBytes(obj)) s.path.onDatagrams(datagrams([from(b)]));
    const K0 = obj.enc.sourceSymbols(0);
    s.path.onDatagrams(datagrams(blockBytes(obj, 0, 0, K0).map((b) => from(b))));
    // Block 0 decodes (on a worker thread); wait until its symbols are late.
    const rx = s.registry.channel(0, 1)?.tois.get(1n)?.receiver;
    if (!rx) throw new Error('object not registered');
    while (rx.stats.blocksDone < 1) await new Promise((r) => setTimeout(r, 5));
    const before = s.owner.activities.length;
    expect(before).toBeGreaterThan(0);
    // The server keeps streaming block 0 (fresh ESIs), never block 1.
    for (let i = 0; i < 10; i++) s.path.onDatagrams(datagrams(blockBytes(obj, 0, 100 + 8 * i, 8).map((b) => from(b))));
    expect(rx.stats.symbolsLate).toBe(80);
    expect(rx.complete).toBe(false);
    expect(s.owner.activities).toHaveLength(before);
    // One symbol of block 1 is progress again.
    s.path.onDatagrams(datagrams(blockBytes(obj, 1, 0, 1).map((b) => from(b))));
    expect(s.owner.activities).toHaveLength(before + 1);
  });
});

describe('DataPath: fast and general paths', () => {
  test('the in-place fast path and the general path (debug hooks on) count and decode the same', async () => {
    const results: { stats: ClientStats; activity: boolean; packets: number }[] = [];
    const obj = object(60_000);
    for (const watching of [false, true]) {
      const s = setup({ ack: true, ackEveryPackets: 1_000_000 });
      s.owner.watching = watching;
      join(s);
      // Start-up (fetch --json startupMs): stamped by the first data packet taken, then kept.
      expect(s.stats.firstPacketMs).toBe(0);
      const before = performance.now();
      for (const b of fdtBytes(obj)) s.path.onDatagrams(datagrams([from(b)]));
      const first = s.stats.firstPacketMs;
      expect(first).toBeGreaterThanOrEqual(before);
      expect(first).toBeLessThanOrEqual(performance.now());
      const K = obj.enc.sourceSymbols(0);
      const data = objectBytes(obj, K + 4, { seq: 0 });
      for (let i = 0; i < data.length; i += 16) s.path.onDatagrams(datagrams(data.slice(i, i + 16).map((b) => from(b))));
      await s.log.verifiedCount(1);
      expect(Buffer.from(s.sinks.opened[0].bytes).equals(obj.data)).toBe(true);
      expect(s.stats.firstPacketMs).toBe(first);
      // The two runs' stamps differ by when they ran, not by the path.
      results.push({ stats: { ...s.stats, esiLog: [], firstPacketMs: 0 }, activity: s.owner.activities.length > 0, packets: s.owner.packets.length });
      if (watching) {
        expect(s.owner.packets[s.owner.packets.length - 1]).toMatchObject({ tsi: 1, toi: 1n, sbn: 0, symbols: 1, replacement: false });
      }
    }
    expect(results[0].stats).toEqual(results[1].stats);
    expect(results[0].activity && results[1].activity).toBe(true);
    expect(results[0].packets).toBe(0);
    expect(results[1].packets).toBe(results[1].stats.packetsReceived);
  });

  test('recordEsis logs every data packet (the general path)', () => {
    const s = setup({ recordEsis: true });
    const obj = object();
    join(s);
    s.path.onDatagrams(datagrams([...objectBytes(obj, 2, { seq: 0 }), ...objectBytes(obj, 1, { firstEsi: 40 })].map((b) => from(b))));
    expect(s.stats.esiLog).toEqual([
      { tsi: 1, toi: 1n, sbn: 0, esi: 0, replacement: false },
      { tsi: 1, toi: 1n, sbn: 0, esi: 1, replacement: false },
      { tsi: 1, toi: 1n, sbn: 0, esi: 40, replacement: true },
    ]);
  });

  test('fast path: an object packet of a TOI no FDT has listed yet waits in the registry', () => {
    const s = setup();
    const obj = object();
    join(s);
    s.path.onDatagrams(datagrams(objectBytes(obj, 3).map((b) => from(b))));
    expect(s.registry.channel(0, 1)?.unknown).toHaveLength(3);
    expect(s.owner.activities).toEqual([]);
  });
});

describe('DataPath: two servers', () => {
  test('the same TSI from two servers: two channels, one object, symbols of both combined', async () => {
    const stats = newClientStats();
    const log = new RegistryLog();
    const sinks = new MemorySinkFactory();
    const registry = new ObjectRegistry({ maxUnknownPackets: 4096, budget: new PartialBlockBudget(Infinity), sinks, stats, events: log });
    const other: ServerEndpoint = { address: '10.0.0.2', port: 4433, family: 4 };
    const a = setup({ source: 0, registry, log, sinks });
    const b = setup({ source: 1, server: other, registry, log, sinks });
    join(a);
    join(b);
    const obj = object(60_000);
    const K = obj.enc.sourceSymbols(0);
    const half = Math.floor(K / 2);
    a.path.onDatagrams(datagrams(fdtBytes(obj).map((x) => from(x))));
    b.path.onDatagrams(datagrams(fdtBytes(obj).map((x) => from(x, other.address))));
    // Each server's packets reach only its own data path; the other ignores them.
    a.path.onDatagrams(datagrams(objectBytes(obj, half).map((x) => from(x, other.address))));
    expect(a.stats.ignored).toBe(half);
    a.path.onDatagrams(datagrams(objectBytes(obj, half).map((x) => from(x))));
    b.path.onDatagrams(datagrams(objectBytes(obj, K + 4 - half, { firstEsi: half }).map((x) => from(x, other.address))));
    await log.verifiedCount(1);
    expect(registry.channel(0, 1)).not.toBe(registry.channel(1, 1));
    expect(registry.size).toBe(1);
    expect(sinks.opened).toHaveLength(1);
    expect(Buffer.from(sinks.opened[0].bytes).equals(obj.data)).toBe(true);
    expect(a.stats.packetsReceived).toBeGreaterThan(0);
    expect(b.stats.packetsReceived).toBeGreaterThan(0);
  });
});

describe('DataPath: whether a delivery is kept (what the TCP transport may read into again)', () => {
  test('kept: data before JOINED, an FDT, packets of a TOI not in an FDT yet, packets read with hooks; not kept: object packets on the fast path, and a session that left', () => {
    const s = setup();
    const obj = object();
    // Before JOINED: buffered as views.
    expect(s.path.onDatagrams(datagrams(objectBytes(obj, 2).map((b) => from(b))))).toBe(false);
    join(s);
    // A TOI no FDT has named yet: the registry keeps its packets.
    expect(s.path.onDatagrams(datagrams(objectBytes(obj, 2, { firstEsi: 2 }).map((b) => from(b))))).toBe(false);
    // The FDT: the general path.
    expect(s.path.onDatagrams(datagrams(fdtBytes(obj).map((b) => from(b))))).toBe(false);
    // The object's packets now: staged and handed to the decoder within the delivery, written through by copy.
    expect(s.path.onDatagrams(datagrams(objectBytes(obj, 3, { firstEsi: 4 }).map((b) => from(b))))).toBe(true);
    // A control message among them: the general path.
    const ctl = encodeControl({ type: MessageType.Joined, channels: [{ name: 'main', tsi: 1 }], expiresAtMs: 1 });
    expect(s.path.onDatagrams(datagrams([from(ctl, SERVER.address, SERVER.port), ...objectBytes(obj, 1, { firstEsi: 7 }).map((b) => from(b))]))).toBe(false);
    expect(s.path.onDatagrams(datagrams(objectBytes(obj, 1, { firstEsi: 8 }).map((b) => from(b))))).toBe(true);
    s.owner.left = true;
    expect(s.path.onDatagrams(datagrams(objectBytes(obj, 1, { firstEsi: 9 }).map((b) => from(b))))).toBe(true);
  });

  test('a reusable delivery (TCP): what goes the general path is copied, so nothing is kept; its bytes overwritten after each delivery, the object still arrives whole', async () => {
    const s = setup();
    const obj = object();
    /** A delivery whose bytes are overwritten once it returns, as TCP's storage is when it returns true. */
    const deliver = (bytes: Uint8Array[]): boolean => {
      const d = { ...datagrams(bytes.map((b) => from(b))), reusable: true };
      const released = s.path.onDatagrams(d) === true;
      if (released) d.data.fill(0xee);
      return released;
    };
    // Before JOINED, and the FDT after it: copied.
    expect(deliver([...fdtBytes(obj), ...objectBytes(obj, 3)])).toBe(true);
    join(s);
    expect(deliver(fdtBytes(obj))).toBe(true);
    expect(deliver(objectBytes(obj, obj.enc.sourceSymbols(0) + 2, { firstEsi: 3 }))).toBe(true);
    await s.log.verifiedCount(1);
    expect(Buffer.from(s.sinks.opened[0].bytes).equals(obj.data)).toBe(true);
  });

  test('packets read with hooks (ESIs recorded) go the general path: kept', () => {
    const s = setup({ recordEsis: true });
    const obj = object();
    join(s);
    s.path.onDatagrams(datagrams(fdtBytes(obj).map((b) => from(b))));
    expect(s.path.onDatagrams(datagrams(objectBytes(obj, 2).map((b) => from(b))))).toBe(false);
  });
});
