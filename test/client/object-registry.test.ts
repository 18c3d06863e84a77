/**
 * ObjectRegistry: channels keyed by (source, TSI), objects by name, digest
 * and OTI with their symbols combined from every source, the FDT, and the
 * buffer of packets whose TOI no FDT has listed yet.
 */
import { randomBytes } from 'crypto';
import { PartialBlockBudget } from '../../lib/client/block-budget';
import { NoSuchObjectError, ObjectWithdrawnError, UnfetchableObjectError } from '../../lib/client/errors';
import { newerInstance, ObjectRegistry } from '../../lib/client/object-registry';
import type { AlcPacket } from '../../lib/protocol/alc';
import { alcPacket, fdtFile, fdtPackets, MemorySinkFactory, RegistryLog, testObject, TestObject } from './support';

const NOW = 1_700_000_000_000;

function registry(o: { name?: string; maxUnknownPackets?: number } = {}) {
  const log = new RegistryLog();
  const sinks = new MemorySinkFactory();
  const stats = { unknownDropped: 0 };
  const r = new ObjectRegistry({
    name: o.name,
    maxUnknownPackets: o.maxUnknownPackets ?? 4096,
    budget: new PartialBlockBudget(Infinity),
    sinks,
    stats,
    events: log,
  });
  return { r, log, sinks, stats };
}

/** Source symbols `from`..`to`-1 of every block of `obj`, as TOI `toi` of channel `tsi`. */
function symbols(obj: TestObject, toi: number, tsi: number, from: number, to: number): AlcPacket[] {
  const out: AlcPacket[] = [];
  for (let sbn = 0; sbn < obj.enc.sourceBlocks; sbn++) {
    for (let esi = from; esi < Math.min(to, obj.enc.sourceSymbols(sbn) + 8); esi++) out.push(alcPacket(obj.enc, sbn, esi, { tsi, toi }));
  }
  return out;
}

const objects: TestObject[] = [];
function object(name: string, bytes: number): TestObject {
  const o = testObject(name, randomBytes(bytes));
  objects.push(o);
  return o;
}
afterEach(() => {
  for (const o of objects.splice(0)) o.enc.close();
});

describe('ObjectRegistry: channels', () => {
  test('the same TSI from two sources is two channels, each waiting for its own FDT', () => {
    const { r } = registry();
    const a = r.addChannel(0, { name: 'main', tsi: 1 });
    const b = r.addChannel(1, { name: 'main', tsi: 1 });
    expect(a).not.toBe(b);
    expect(r.channel(0, 1)).toBe(a);
    expect(r.channel(1, 1)).toBe(b);
    expect(r.channel(2, 1)).toBeUndefined();
    // Adding a channel again gives the same entry.
    expect(r.addChannel(0, { name: 'main', tsi: 1 })).toBe(a);
    const obj = object('x', 1000);
    expect(r.fdtsComplete()).toBe(false);
    for (const p of fdtPackets([fdtFile(1, obj)], { tsi: 1 })) r.route(a, p, NOW);
    expect(a.fdtSeen).toBe(true);
    expect(b.fdtSeen).toBe(false);
    expect(r.fdtsComplete()).toBe(false);
    for (const p of fdtPackets([fdtFile(1, obj)], { tsi: 1 })) r.route(b, p, NOW);
    expect(r.fdtsComplete()).toBe(true);
  });

  test('a channel superseded by another session (the fallback to TCP) needs no FDT of its own', () => {
    const { r } = registry();
    r.addChannel(0, { name: 'main', tsi: 1 });
    const tcp = r.addChannel(1, { name: 'main', tsi: 1 });
    const obj = object('x', 1000);
    r.supersede(0, 1);
    r.supersede(5, 1); // no such channel: nothing
    expect(r.fdtsComplete()).toBe(false);
    for (const p of fdtPackets([fdtFile(1, obj)], { tsi: 1 })) r.route(tcp, p, NOW);
    expect(r.fdtsComplete()).toBe(true);
  });

  test('no channel: the FDTs are not complete', () => {
    expect(registry().r.fdtsComplete()).toBe(false);
  });

  test('an FDT packet is activity until its channel has an FDT', () => {
    const { r, log } = registry();
    const ch = r.addChannel(0, { name: 'main', tsi: 1 });
    const packets = fdtPackets([fdtFile(1, object('x', 1000))]);
    expect(r.route(ch, packets[0], NOW)).toBe(true);
    for (const p of packets.slice(1)) r.route(ch, p, NOW);
    expect(log.fdts).toBe(1);
    expect(r.route(ch, packets[0], NOW)).toBe(false);
  });
});

describe('ObjectRegistry: objects', () => {
  test('one object listed by two sources (same name, digest, OTI): one receiver, one sink; half the symbols from each decode it', async () => {
    const { r, log, sinks } = registry();
    const obj = object('big', 40_000);
    // Different TOIs and TSIs on each server: the object is the same.
    const a = r.addChannel(0, { name: 'main', tsi: 1 });
    const b = r.addChannel(1, { name: 'main', tsi: 7 });
    for (const p of fdtPackets([fdtFile(1, obj)], { tsi: 1 })) r.route(a, p, NOW);
    for (const p of fdtPackets([fdtFile(3, obj)], { tsi: 7 })) r.route(b, p, NOW);
    expect(r.size).toBe(1);
    expect(a.tois.get(1n)).toBe(b.tois.get(3n));
    expect(sinks.opened).toHaveLength(1);
    const K = obj.enc.sourceSymbols(0);
    const half = Math.floor(K / 2);
    for (const p of symbols(obj, 1, 1, 0, half)) r.route(a, p, NOW);
    for (const p of symbols(obj, 3, 7, half, K + 4)) r.route(b, p, NOW);
    await log.verifiedCount(1);
    expect(log.failures).toEqual([]);
    expect(log.verified).toEqual(['big']);
    expect(log.decoded).toEqual(['big']);
    expect(Buffer.from(sinks.opened[0].bytes).equals(obj.data)).toBe(true);
    expect(r.allDecoded()).toBe(true);
    expect(r.allVerified()).toBe(true);
    const registered = [...r.objects][0];
    expect(registered.done).toBe(true);
    expect(registered.receiver.stats.symbolsReceived).toBeGreaterThanOrEqual(obj.enc.sourceSymbols(0));
  });

  test('the same name with another digest or OTI: refused with a warning, the first kept', () => {
    const { r, log, sinks } = registry();
    const obj = object('x', 5000);
    const a = r.addChannel(0, { name: 'main', tsi: 1 });
    const b = r.addChannel(1, { name: 'main', tsi: 1 });
    const c = r.addChannel(2, { name: 'main', tsi: 1 });
    for (const p of fdtPackets([fdtFile(1, obj)])) r.route(a, p, NOW);
    for (const p of fdtPackets([fdtFile(1, obj, { sha256: Buffer.alloc(32, 9) })])) r.route(b, p, NOW);
    for (const p of fdtPackets([fdtFile(1, obj, { oti: { ...obj.oti, symbolSize: 128 } })])) r.route(c, p, NOW);
    expect(log.warnings).toEqual([
      'channels disagree about "x" (digest or OTI); using the first',
      'channels disagree about "x" (digest or OTI); using the first',
    ]);
    expect(sinks.opened).toHaveLength(1);
    expect(b.tois.size).toBe(0);
    expect(b.ignoredTois.has(1n)).toBe(true);
    expect(b.ignoredToiNumbers.has(1)).toBe(true);
    // b's packets of that TOI go nowhere now.
    expect(r.route(b, alcPacket(obj.enc, 0, 0, { toi: 1 }), NOW)).toBe(false);
    expect(b.unknown).toEqual([]);
  });

  test('a named fetch registers only the named object', () => {
    const { r, sinks } = registry({ name: 'b' });
    const ch = r.addChannel(0, { name: 'main', tsi: 1 });
    expect(r.missingNamed()).toBe(true);
    for (const p of fdtPackets([fdtFile(1, object('a', 100)), fdtFile(2, object('b', 100))])) r.route(ch, p, NOW);
    expect([...r.objects].map((o) => o.name)).toEqual(['b']);
    expect(sinks.opened.map((s) => s.object.name)).toEqual(['b']);
    expect(ch.ignoredTois.has(1n)).toBe(true);
    expect(r.missingNamed()).toBe(false);
  });

  test('a named fetch whose object the FDT cannot deliver (no digest) fails; an unnamed one warns and goes on', () => {
    const bad = object('nodigest', 100);
    const good = object('good', 100);
    const files = [{ toi: 1n, contentLocation: 'nodigest', oti: bad.oti }, fdtFile(2, good)];
    const named = registry({ name: 'nodigest' });
    const ch = named.r.addChannel(0, { name: 'main', tsi: 1 });
    for (const p of fdtPackets(files)) named.r.route(ch, p, NOW);
    expect(named.log.failures).toHaveLength(1);
    expect(named.log.failures[0]).toBeInstanceOf(UnfetchableObjectError);
    // The failure ends the FDT's handling there.
    expect(named.log.fdts).toBe(0);

    const all = registry();
    const ch2 = all.r.addChannel(0, { name: 'main', tsi: 1 });
    for (const p of fdtPackets(files)) all.r.route(ch2, p, NOW);
    expect(all.log.failures).toEqual([]);
    expect(all.log.warnings).toEqual(['object "nodigest" cannot be fetched: the FDT gives no rq:Content-SHA-256 to verify it']);
    expect([...all.r.objects].map((o) => o.name)).toEqual(['good']);
    expect(all.log.fdts).toBe(1);
  });

  test('a name the sink refuses is a warning in an unnamed fetch', () => {
    const { r, log } = registry();
    const ch = r.addChannel(0, { name: 'main', tsi: 1 });
    for (const p of fdtPackets([fdtFile(1, object('../evil', 100)), fdtFile(2, object('ok', 100))])) r.route(ch, p, NOW);
    expect(log.warnings.join()).toMatch(/"\.\."/);
    expect([...r.objects].map((o) => o.name)).toEqual(['ok']);
  });

  test('abort: every receiver closed, the sinks of unverified objects aborted', async () => {
    const { r, sinks } = registry();
    const ch = r.addChannel(0, { name: 'main', tsi: 1 });
    for (const p of fdtPackets([fdtFile(1, object('a', 30_000))])) r.route(ch, p, NOW);
    const obj = [...r.objects][0];
    await r.abort(new Error('stop'));
    await expect(obj.receiver.done).rejects.toThrow('stop');
    expect(sinks.opened[0].aborted).toBe(true);
  });
});

describe('ObjectRegistry: TOIs not in an FDT yet', () => {
  test('wait, at most maxUnknownPackets per channel (the rest counted), and go to their object once the FDT lists it', () => {
    const { r, stats } = registry({ maxUnknownPackets: 4 });
    const obj = object('x', 20_000);
    const ch = r.addChannel(0, { name: 'main', tsi: 1 });
    for (let esi = 0; esi < 6; esi++) expect(r.route(ch, alcPacket(obj.enc, 0, esi, { toi: 1 }), NOW)).toBe(false);
    expect(ch.unknown).toHaveLength(4);
    expect(stats.unknownDropped).toBe(2);
    for (const p of fdtPackets([fdtFile(1, obj)])) r.route(ch, p, NOW + 5);
    expect(ch.unknown).toEqual([]);
    const registered = ch.tois.get(1n);
    expect(registered?.receiver.stats.symbolsReceived).toBe(4);
    expect(registered?.lastUsefulAt).toBe(NOW + 5);
  });

  test('after the first FDT, TOIs it did not list are dropped', () => {
    const { r, stats } = registry();
    const obj = object('x', 1000);
    const ch = r.addChannel(0, { name: 'main', tsi: 1 });
    for (const p of fdtPackets([fdtFile(1, obj)])) r.route(ch, p, NOW);
    expect(r.route(ch, alcPacket(obj.enc, 0, 0, { toi: 9 }), NOW)).toBe(false);
    expect(ch.unknown).toEqual([]);
    expect(stats.unknownDropped).toBe(0);
  });

  test('an object packet is activity until the object has decoded', async () => {
    const { r, log } = registry();
    const obj = object('x', 1000);
    const ch = r.addChannel(0, { name: 'main', tsi: 1 });
    for (const p of fdtPackets([fdtFile(1, obj)])) r.route(ch, p, NOW);
    const packets = symbols(obj, 1, 1, 0, 20);
    expect(r.route(ch, packets[0], NOW + 1)).toBe(true);
    expect(ch.tois.get(1n)?.lastUsefulAt).toBe(NOW + 1);
    for (const p of packets.slice(1)) r.route(ch, p, NOW + 2);
    await log.verifiedCount(1);
    expect(r.route(ch, alcPacket(obj.enc, 0, 100, { toi: 1 }), NOW + 3)).toBe(false);
  });
});

describe('ObjectRegistry: the fetch as a whole', () => {
  test('a named object that no FDT lists: missingNamed once every channel has its FDT', () => {
    const { r } = registry({ name: 'other' });
    const ch = r.addChannel(0, { name: 'main', tsi: 1 });
    for (const p of fdtPackets([fdtFile(1, object('x', 100))])) r.route(ch, p, NOW);
    expect(r.fdtsComplete()).toBe(true);
    expect(r.missingNamed()).toBe(true);
    // What RqcastClient then reports.
    expect(new NoSuchObjectError('other').code).toBe('ERR_RQ_CLIENT_NO_SUCH_OBJECT');
  });
});

describe('ObjectRegistry: a newer FDT instance that no longer lists an object (withdrawn, docs/PROTOCOL.md §10.2)', () => {
  test('the object leaves the channel, its packets are ignored, and the fetch fails with ObjectWithdrawnError; an older instance changes nothing', () => {
    const { r, log } = registry();
    const x = object('x', 5000);
    const y = object('y', 5000);
    const ch = r.addChannel(0, { name: 'main', tsi: 1 });
    for (const p of fdtPackets([fdtFile(1, x), fdtFile(2, y)], { instanceId: 1 })) r.route(ch, p, NOW);
    expect([...ch.tois.keys()]).toEqual([1n, 2n]);
    expect(r.route(ch, alcPacket(x.enc, 0, 0, { toi: 1 }), NOW)).toBe(true);
    // Instance 7 lists y only: x is withdrawn.
    for (const p of fdtPackets([fdtFile(2, y)], { instanceId: 7 })) r.route(ch, p, NOW + 1);
    expect([...ch.tois.keys()]).toEqual([2n]);
    expect(log.failures).toHaveLength(1);
    expect(log.failures[0]).toBeInstanceOf(ObjectWithdrawnError);
    expect((log.failures[0] as Error).message).toContain('"x"');
    expect(r.route(ch, alcPacket(x.enc, 0, 1, { toi: 1 }), NOW + 2)).toBe(false);
    // An instance older than 7 (late packets, here instance 3) brings nothing back.
    const again = fdtPackets([fdtFile(1, x), fdtFile(2, y)], { instanceId: 3 });
    for (const p of again) r.route(ch, p, NOW + 3);
    expect([...ch.tois.keys()]).toEqual([2n]);
    expect(log.failures).toHaveLength(1);
  });

  test('an object another channel still lists is not lost; one not wanted (another name) fails nothing', () => {
    const { r, log } = registry();
    const x = object('x', 5000);
    const a = r.addChannel(0, { name: 'a', tsi: 1 });
    const b = r.addChannel(0, { name: 'b', tsi: 2 });
    for (const p of fdtPackets([fdtFile(1, x)], { tsi: 1, instanceId: 1 })) r.route(a, p, NOW);
    for (const p of fdtPackets([fdtFile(1, x)], { tsi: 2, instanceId: 2 })) r.route(b, p, NOW);
    for (const p of fdtPackets([], { tsi: 1, instanceId: 3 })) r.route(a, p, NOW);
    expect(a.tois.size).toBe(0);
    expect(b.tois.size).toBe(1);
    expect(log.failures).toEqual([]);
    const named = registry({ name: 'y' });
    const c = named.r.addChannel(0, { name: 'main', tsi: 1 });
    for (const p of fdtPackets([fdtFile(1, x)], { instanceId: 1 })) named.r.route(c, p, NOW);
    for (const p of fdtPackets([], { instanceId: 2 })) named.r.route(c, p, NOW);
    expect(named.log.failures).toEqual([]);
  });

  test('newerInstance: 20-bit serial numbers (RFC 6726 §3.4.1)', () => {
    expect(newerInstance(2, 1)).toBe(true);
    expect(newerInstance(1, 2)).toBe(false);
    expect(newerInstance(1, 1)).toBe(false);
    expect(newerInstance(0, 2 ** 20 - 1)).toBe(true);
    expect(newerInstance(2 ** 20 - 1, 0)).toBe(false);
  });
});
