/**
 * DataPath.onGroupDatagrams and GroupLink: what a channel's multicast group
 * may bring into the fetch (docs/PROTOCOL.md §10.10): ALC packets of the
 * channel's TSI, from the announced source when there is one; foreign
 * sources, foreign TSIs and control messages are counted and dropped;
 * nothing from a group is ever ACKed; its symbols and FDT join the
 * unicast stream's.
 */
import { PartialBlockBudget } from '../../lib/client/block-budget';
import { DataPath, GroupFeed } from '../../lib/client/data-path';
import { ClientStats, newClientStats } from '../../lib/client/events';
import { GroupLink, GroupLinkHost } from '../../lib/client/group-link';
import { ObjectRegistry } from '../../lib/client/object-registry';
import { encodeAlc } from '../../lib/protocol/alc';
import { encodeControl } from '../../lib/protocol/control';
import { AckMessage, MessageType } from '../../lib/protocol/messages';
import type { ServerEndpoint } from '../../lib/transport/client-transport';
import type { MembershipSocket, MembershipSocketHandler } from '../../lib/transport/multicast/membership-socket';
import { datagrams, fdtBytes as fdtBytesOf, MemorySinkFactory, RecordingDataPathOwner, RegistryLog, testObject, TestObject } from './support';

const SERVER: ServerEndpoint = { address: '10.0.0.1', port: 4433, family: 4 };
const SOURCE = '10.0.0.1';
const GROUP_PORT = 5000;
const FEED: GroupFeed = { tsi: 1, source: SOURCE };

function setup(o: { ack?: boolean; lossRate?: number; random?: () => number; recordEsis?: boolean } = {}) {
  const stats: ClientStats = newClientStats();
  const log = new RegistryLog();
  const sinks = new MemorySinkFactory();
  const registry = new ObjectRegistry({ maxUnknownPackets: 4096, budget: new PartialBlockBudget(Infinity), sinks, stats, events: log });
  const owner = new RecordingDataPathOwner(new Uint8Array(16).fill(3));
  owner.joined = true;
  const path = new DataPath(0, SERVER, registry, owner, {
    lossRate: o.lossRate ?? 0,
    random: o.random ?? Math.random,
    ack: o.ack ?? false,
    ackEveryPackets: 4,
    recordEsis: o.recordEsis ?? false,
    stats,
  });
  path.addChannels([{ name: 'main', tsi: 1, multicast: { group: '232.1.1.1', port: GROUP_PORT, source: SOURCE, unicast: false } }]);
  return { path, owner, stats, log, sinks, registry };
}

const from = (bytes: Uint8Array, address = SOURCE, port = 40_000) => ({ bytes, address, port });

let objects: TestObject[] = [];
afterEach(() => {
  for (const o of objects) o.enc.close();
  objects = [];
});
function object(bytes = 20_000): TestObject {
  const o = testObject('a.bin', Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 31 + 7) & 0xff)));
  objects.push(o);
  return o;
}

/** Object packets (TOI 1) of block 0, ESIs first.., each with a sequence number (as every stream packet has), optionally garbage payloads. */
function objectBytes(obj: TestObject, count: number, o: { tsi?: number; firstEsi?: number; garbage?: boolean } = {}): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const esi = (o.firstEsi ?? 0) + i;
    const symbols = o.garbage ? new Uint8Array(obj.enc.symbolSize).fill(0xee) : obj.enc.packet(0, esi).subarray(4);
    out.push(encodeAlc({ tsi: o.tsi ?? 1, toi: 1, sbn: 0, esi, symbols, sequence: 1000 + i }));
  }
  return out;
}

/** The FDT packets, with a sequence number as every stream packet has. */
const fdtBytes = (obj: TestObject): Uint8Array[] => fdtBytesOf(obj, { sequence: 7 });

describe.each([
  ['fast path', false],
  ['general path (debug hooks on)', true],
])('DataPath.onGroupDatagrams, %s', (_name, hooks) => {
  test('takes the channel\'s packets from the announced source and counts them as multicast; returns how many', async () => {
    const s = setup({ recordEsis: hooks });
    const obj = object();
    const K = obj.enc.sourceSymbols(0);
    const n = s.path.onGroupDatagrams(datagrams([...fdtBytes(obj), ...objectBytes(obj, K + 2)].map((b) => from(b))), FEED);
    expect(n).toBe(fdtBytes(obj).length + K + 2);
    expect(s.stats.multicastPackets).toBe(n);
    expect(s.stats.packetsReceived).toBe(n);
    expect(s.stats.multicastForeign).toBe(0);
    expect(s.stats.replacements).toBe(0);
    await s.log.verifiedCount(1);
    expect(Buffer.from(s.sinks.opened[0].bytes).equals(obj.data)).toBe(true);
    expect(s.owner.activities.length).toBeGreaterThan(0);
  });

  test('another source, another TSI, a control message, an empty datagram: counted as foreign and dropped before the decoder', async () => {
    const s = setup({ recordEsis: hooks });
    const obj = object();
    const K = obj.enc.sourceSymbols(0);
    const ctl = encodeControl({ type: MessageType.Joined, channels: [{ name: 'main', tsi: 1 }], expiresAtMs: 1 });
    const foreign = [
      // Same TSI, TOI and ESIs from another host: were any taken, the object would not verify.
      ...objectBytes(obj, K, { garbage: true }).map((b) => from(b, '10.0.0.99')),
      // The right source, another session.
      ...objectBytes(obj, 5, { tsi: 2, garbage: true }).map((b) => from(b)),
      from(ctl),
      from(new Uint8Array(0)),
    ];
    expect(s.path.onGroupDatagrams(datagrams(foreign), FEED)).toBe(0);
    expect(s.stats.multicastForeign).toBe(K + 5 + 2);
    expect(s.stats.packetsReceived).toBe(0);
    expect(s.owner.controls).toEqual([]);
    // The real stream afterwards decodes bit-exact.
    s.path.onGroupDatagrams(datagrams([...fdtBytes(obj), ...objectBytes(obj, K + 2)].map((b) => from(b))), FEED);
    await s.log.verifiedCount(1);
    expect(s.log.failures).toEqual([]);
    expect(Buffer.from(s.sinks.opened[0].bytes).equals(obj.data)).toBe(true);
  });

  test('an undecodable datagram from the source is ignored (counted as any undecodable datagram)', () => {
    const s = setup({ recordEsis: hooks });
    expect(s.path.onGroupDatagrams(datagrams([from(Uint8Array.from([0x10, 1, 2, 3]))]), FEED)).toBe(0);
    expect(s.stats.ignored).toBe(1);
    expect(s.stats.multicastForeign).toBe(0);
  });
});

describe('DataPath.onGroupDatagrams', () => {
  test('the source matches however the socket spells it (IPv4-mapped, RFC 5952 or not)', () => {
    const s = setup();
    const obj = object();
    expect(s.path.onGroupDatagrams(datagrams(objectBytes(obj, 2).map((b) => from(b, `::ffff:${SOURCE}`))), FEED)).toBe(2);
    const v6: GroupFeed = { tsi: 1, source: '2001:db8::1' };
    expect(s.path.onGroupDatagrams(datagrams(objectBytes(obj, 2, { firstEsi: 2 }).map((b) => from(b, '2001:DB8:0:0:0:0:0:1'))), v6)).toBe(2);
    expect(s.path.onGroupDatagrams(datagrams(objectBytes(obj, 2, { firstEsi: 4 }).map((b) => from(b, '2001:db8::2'))), v6)).toBe(0);
    expect(s.stats.multicastForeign).toBe(2);
  });

  test('no source announced (any-source): every source is taken, the TSI still checked', () => {
    const s = setup();
    const obj = object();
    const asm: GroupFeed = { tsi: 1 };
    const n = s.path.onGroupDatagrams(
      datagrams([...objectBytes(obj, 2).map((b) => from(b, '10.1.1.1')), ...objectBytes(obj, 2, { firstEsi: 2 }).map((b) => from(b, '10.2.2.2')), ...objectBytes(obj, 3, { tsi: 5 }).map((b) => from(b))]),
      asm,
    );
    expect(n).toBe(4);
    expect(s.stats.multicastForeign).toBe(3);
  });

  test('never ACKed: in ACK mode the group\'s sequence numbers are not recorded, the unicast stream\'s are', () => {
    const s = setup({ ack: true });
    const obj = object(200_000);
    s.path.onGroupDatagrams(datagrams(objectBytes(obj, 40).map((b) => from(b))), FEED);
    s.path.sendAcks();
    expect(s.owner.sent).toEqual([]);
    expect(s.stats.acksSent).toBe(0);
    // The same channel by unicast: recorded and ACKed every 4 packets.
    s.path.onDatagrams(datagrams(objectBytes(obj, 8, { firstEsi: 100 }).map((b) => from(b, SERVER.address))));
    expect(s.owner.sent.map((m) => (m as AckMessage).type)).toEqual([MessageType.Ack, MessageType.Ack]);
    expect((s.owner.sent[0] as AckMessage).windowStart).toBe(1000);
  });

  test('the loss hook drops group packets too; the count returned is of those taken', () => {
    const draws = [0.05, 0.5, 0.09, 0.95];
    let i = 0;
    const s = setup({ lossRate: 0.1, random: () => draws[i++ % draws.length] });
    const obj = object();
    expect(s.path.onGroupDatagrams(datagrams(objectBytes(obj, 4).map((b) => from(b))), FEED)).toBe(2);
    expect(s.stats.simulatedDrops).toBe(2);
    expect(s.stats.multicastPackets).toBe(2);
  });

  test('nothing before the session is joined, after it has left, once the fetch has ended, or for a TSI not joined', () => {
    const s = setup();
    const obj = object();
    const d = () => datagrams(objectBytes(obj, 3).map((b) => from(b)));
    for (const state of ['joined', 'left', 'ended'] as const) {
      const o = s.owner;
      o.joined = state !== 'joined';
      o.left = state === 'left';
      o.ended = state === 'ended';
      expect(s.path.onGroupDatagrams(d(), FEED)).toBe(0);
    }
    s.owner.joined = true;
    s.owner.left = s.owner.ended = false;
    expect(s.path.onGroupDatagrams(d(), { tsi: 9, source: SOURCE })).toBe(0);
    expect(s.stats).toEqual(newClientStats());
  });

  test('group and unicast feed the same object: symbols from both count toward one decode', async () => {
    const s = setup();
    const obj = object();
    const K = obj.enc.sourceSymbols(0);
    const half = Math.floor(K / 2);
    s.path.onGroupDatagrams(datagrams([...fdtBytes(obj), ...objectBytes(obj, half)].map((b) => from(b))), FEED);
    s.path.onDatagrams(datagrams(objectBytes(obj, K - half + 2, { firstEsi: half }).map((b) => from(b, SERVER.address))));
    await s.log.verifiedCount(1);
    expect(Buffer.from(s.sinks.opened[0].bytes).equals(obj.data)).toBe(true);
    const r = s.registry.channel(0, 1)?.tois.get(1n)?.receiver;
    expect(r?.stats.symbolsReceived).toBeLessThanOrEqual(K + 2);
    expect(s.stats.multicastPackets).toBe(fdtBytes(obj).length + half);
  });
});

describe('GroupLink', () => {
  class Socket implements MembershipSocket {
    readonly port = GROUP_PORT;
    handler!: MembershipSocketHandler;
    readonly calls: string[] = [];
    addMembership(group: string): void {
      this.calls.push(`add ${group}`);
    }
    dropMembership(group: string): void {
      this.calls.push(`drop ${group}`);
    }
    async close(): Promise<void> {
      this.calls.push('close');
    }
  }

  function link(s: ReturnType<typeof setup>) {
    const sock = new Socket();
    const reports: { count: number }[] = [];
    const failures: Error[] = [];
    const host: GroupLinkHost = {
      groupPackets: (_l, count) => reports.push({ count }),
      groupFailed: (_l, e) => failures.push(e),
    };
    const g = new GroupLink('main', { group: '232.1.1.1', port: GROUP_PORT, source: SOURCE }, FEED, s.path, host, {
      openSocket: async (_o, h) => {
        sock.handler = h;
        return sock;
      },
    });
    return { g, sock, reports, failures };
  }

  test('feeds the data path and reports the packets taken (none for a delivery of foreign ones); leave and join pass through', async () => {
    const s = setup();
    const obj = object();
    const { g, sock, reports, failures } = link(s);
    await g.open();
    expect(g.joined).toBe(true);
    sock.handler.onDatagrams(datagrams(objectBytes(obj, 3).map((b) => from(b))));
    sock.handler.onDatagrams(datagrams(objectBytes(obj, 3).map((b) => from(b, '10.9.9.9'))));
    expect(reports).toEqual([{ count: 3 }]);
    expect(g.packets).toBe(3);
    g.leave();
    expect(g.joined).toBe(false);
    g.join();
    expect(g.joins).toBe(2);
    sock.handler.onError(new Error('socket gone'));
    expect(failures.map((e) => e.message)).toEqual(['socket gone']);
    await g.close();
    sock.handler.onDatagrams(datagrams(objectBytes(obj, 3, { firstEsi: 3 }).map((b) => from(b))));
    expect(g.packets).toBe(3);
    expect(sock.calls).toEqual(['add 232.1.1.1', 'drop 232.1.1.1', 'add 232.1.1.1', 'close']);
  });

  test('closed before its open completes: the membership is closed as soon as it opens', async () => {
    const s = setup();
    const { g, sock } = link(s);
    const opening = g.open();
    await g.close();
    await opening;
    expect(g.joined).toBe(false);
    expect(sock.calls).toEqual(['add 232.1.1.1', 'close']);
  });
});
