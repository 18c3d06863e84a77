/**
 * The client manager against hostile input (issue 13, findings 2, 3, 4):
 * a client that reports every packet lost, one address opening session
 * after session, and an on-path attacker replaying a cookie it saw. All
 * with the clock passed in: every bound is a count.
 */
import { encodeControl } from '../../lib/protocol/control';
import { type AckMessage, ErrorCode, type JoinMessage, MessageType, type TimeValue } from '../../lib/protocol/messages';
import { addressGroup, AddressQuota } from '../../lib/session/address-quota';
import { AckTracker } from '../../lib/session/ack-tracker';
import { ClientManager, type ClientManagerOptions, DEFAULT_MAX_SESSIONS_PER_ADDRESS, type Source } from '../../lib/session/client-manager';
import { staticChannelDirectory } from '../../lib/session/channel-directory';
import { CookieAuthority } from '../../lib/session/cookie';
import type { ManagerOutput } from '../../lib/session/manager-output';
import { type Peer, udpPeer } from '../../lib/session/peer';
import { DEFAULT_BURST_MS, DEFAULT_CHANNEL_SHARE, DEFAULT_CLIENT_SHARE, ReplacementBudget } from '../../lib/session/replacement-budget';
import { DEFAULT_SPENT_COOKIES, SpentCookies } from '../../lib/session/spent-cookies';
import { InvalidServerConfigError } from '../../lib/errors';

const NOW = 1_764_072_000_000;
const SECRET = new Uint8Array(32).fill(9);
const LIFETIME = 20_000;

function rig(options: Partial<ClientManagerOptions> = {}): { manager: ClientManager; cookies: CookieAuthority } {
  const cookies = new CookieAuthority({ masterSecret: SECRET, rotationPeriodMs: 60_000, lifetimeMs: LIFETIME });
  const manager = new ClientManager({
    cookies,
    channels: staticChannelDirectory([
      { name: 'a', tsi: 1 },
      { name: 'b', tsi: 2 },
    ]),
    encodedSize: (m) => encodeControl(m).length,
    ...options,
  });
  return { manager, cookies };
}

function from(peer: Peer, bytes = 200): Source {
  return { ...peer, bytesReceived: bytes };
}

function join(cookie: Uint8Array, channels: string[], until: TimeValue = { kind: 'duration', ms: 10_000 }, ack = false): JoinMessage {
  return { type: MessageType.Join, cookie, channels, until, ack };
}

function cookieFor(manager: ClientManager, peer: Peer, now = NOW): Uint8Array {
  const out = manager.handle({ type: MessageType.Hello, nonce: new Uint8Array(8).fill(1) }, from(peer, 128), now);
  const m = out.replies[0].message;
  if (m.type !== MessageType.Cookie) throw new Error('expected COOKIE');
  return m.cookie;
}

function reply(out: ManagerOutput) {
  expect(out.replies).toHaveLength(1);
  return out.replies[0].message;
}

/** The expiry a cookie carries (docs/PROTOCOL.md §5: bytes 0..8, Unix ms). */
function cookieExpiry(cookie: Uint8Array): number {
  return Number(Buffer.from(cookie).readBigUInt64BE(0));
}

function fresh(out: ManagerOutput): number[] {
  return out.commands.flatMap((c) => (c.kind === 'sendFresh' ? c.lost : []));
}

// ------------------------------------------------------------ finding 3 --

describe('sessions per address (finding 3)', () => {
  test('address groups: an IPv4 address (mapped or not) alone; IPv6 by /64, zone included', () => {
    expect(addressGroup('192.0.2.1')).toEqual({ key: '192.0.2.1', ipv6: false });
    expect(addressGroup('::ffff:192.0.2.1')).toEqual({ key: '192.0.2.1', ipv6: false });
    expect(addressGroup('192.0.2.2').key).not.toBe(addressGroup('192.0.2.1').key);
    const a = addressGroup('2001:db8:1:2::5');
    expect(a).toEqual({ key: '2001:db8:1:2::/64', ipv6: true });
    expect(addressGroup('2001:db8:1:2:ffff:ffff:ffff:ffff').key).toBe(a.key);
    expect(addressGroup('2001:db8:1:3::5').key).not.toBe(a.key);
    expect(addressGroup('fe80::1%eth0').key).not.toBe(addressGroup('fe80::1%eth1').key);
  });

  test('IPv4: the limit counts sessions of one address, any port; the next is refused with ERROR TooManySessions and changes nothing', () => {
    const { manager } = rig({ maxSessionsPerAddress: 3 });
    for (let port = 5000; port < 5003; port++) {
      const p = udpPeer('192.0.2.1', port);
      expect(reply(manager.handle(join(cookieFor(manager, p), ['a']), from(p), NOW)).type).toBe(MessageType.Joined);
    }
    const fourth = udpPeer('192.0.2.1', 5003);
    const out = manager.handle(join(cookieFor(manager, fourth), ['a']), from(fourth), NOW);
    const m = reply(out);
    expect(m).toMatchObject({ type: MessageType.Error, code: ErrorCode.TooManySessions });
    if (m.type === MessageType.Error) expect(m.reason).toBe('too many sessions from this address (at most 3); leave unused ones first');
    expect(out.commands).toEqual([]);
    expect(manager.sessionCount).toBe(3);
    expect(manager.counters.joinTooManySessions).toBe(1);
    // The same dual-stack address is the same group; another address is not.
    const mapped = udpPeer('::ffff:192.0.2.1', 6000);
    expect(reply(manager.handle(join(cookieFor(manager, mapped), ['a']), from(mapped), NOW))).toMatchObject({ code: ErrorCode.TooManySessions });
    const other = udpPeer('192.0.2.2', 5000);
    expect(reply(manager.handle(join(cookieFor(manager, other), ['a']), from(other), NOW)).type).toBe(MessageType.Joined);
    // A renewal of a session the address holds is no new session.
    const first = udpPeer('192.0.2.1', 5000);
    expect(reply(manager.handle(join(cookieFor(manager, first, NOW + 1), ['a', 'b']), from(first), NOW + 1)).type).toBe(MessageType.Joined);
    expect(manager.counters.joinTooManySessions).toBe(2);
  });

  test('a session that ends by LEAVE, empty JOIN or expiry frees its place', () => {
    const { manager } = rig({ maxSessionsPerAddress: 2 });
    const p = (port: number): Peer => udpPeer('192.0.2.1', port);
    const c1 = cookieFor(manager, p(1));
    manager.handle(join(c1, ['a'], { kind: 'duration', ms: 1_000 }), from(p(1)), NOW);
    manager.handle(join(cookieFor(manager, p(2)), ['a']), from(p(2)), NOW);
    expect(manager.sessionsOfAddress('192.0.2.1')).toBe(2);
    expect(reply(manager.handle(join(cookieFor(manager, p(3)), ['a']), from(p(3)), NOW)).type).toBe(MessageType.Error);
    manager.tick(NOW + 1_000); // p(1) expires
    expect(manager.sessionsOfAddress('192.0.2.1')).toBe(1);
    const c3 = cookieFor(manager, p(3), NOW + 1_000);
    expect(reply(manager.handle(join(c3, ['a']), from(p(3)), NOW + 1_000)).type).toBe(MessageType.Joined);
    manager.handle({ type: MessageType.Leave, cookie: c3 }, from(p(3)), NOW + 1_001);
    expect(manager.sessionsOfAddress('192.0.2.1')).toBe(1);
    const c4 = cookieFor(manager, p(4), NOW + 1_002);
    expect(reply(manager.handle(join(c4, ['a']), from(p(4)), NOW + 1_002)).type).toBe(MessageType.Joined);
    manager.handle(join(c4, []), from(p(4)), NOW + 1_003);
    expect(manager.sessionsOfAddress('192.0.2.1')).toBe(1);
    expect(manager.dropPeer(p(2)).events).toHaveLength(1);
    expect(manager.sessionsOfAddress('192.0.2.1')).toBe(0);
  });

  test('IPv6: one /64 shares the limit whatever the interface identifier; the next /64 has its own', () => {
    const { manager } = rig({ maxSessionsPerAddress: 2 });
    const inPrefix = ['2001:db8:1:2::1', '2001:db8:1:2:aaaa::7'].map((a) => udpPeer(a, 4000));
    for (const p of inPrefix) expect(reply(manager.handle(join(cookieFor(manager, p), ['a']), from(p), NOW)).type).toBe(MessageType.Joined);
    const third = udpPeer('2001:db8:1:2:ffff:ffff:ffff:fffe', 4000);
    const m = reply(manager.handle(join(cookieFor(manager, third), ['a']), from(third), NOW));
    expect(m).toMatchObject({ type: MessageType.Error, code: ErrorCode.TooManySessions });
    if (m.type === MessageType.Error) expect(m.reason).toMatch(/from this \/64 \(at most 2\)/);
    const nextPrefix = udpPeer('2001:db8:1:3::1', 4000);
    expect(reply(manager.handle(join(cookieFor(manager, nextPrefix), ['a']), from(nextPrefix), NOW)).type).toBe(MessageType.Joined);
    expect(manager.sessionsOfAddress('2001:db8:1:2::99')).toBe(2);
  });

  test(`the default is ${DEFAULT_MAX_SESSIONS_PER_ADDRESS}: 3000 sessions from one address hold only that many`, () => {
    const { manager } = rig();
    let refused = 0;
    for (let port = 1; port <= 3000; port++) {
      const p = udpPeer('198.51.100.7', port);
      const m = reply(manager.handle(join(cookieFor(manager, p), ['a']), from(p), NOW));
      if (m.type === MessageType.Error && m.code === ErrorCode.TooManySessions) refused++;
    }
    expect(manager.sessionCount).toBe(DEFAULT_MAX_SESSIONS_PER_ADDRESS);
    expect(refused).toBe(3000 - DEFAULT_MAX_SESSIONS_PER_ADDRESS);
    expect(() => new AddressQuota(0)).toThrow(InvalidServerConfigError);
  });
});

// ------------------------------------------------------------ finding 4 --

describe('cookie replay (finding 4)', () => {
  const victim = udpPeer('192.0.2.10', 7000);

  test('a cookie spent by LEAVE is refused for JOIN, LEAVE and ACK until it expires; the refusal is no larger than the replay', () => {
    const { manager } = rig();
    const cookie = cookieFor(manager, victim);
    manager.handle(join(cookie, ['a'], undefined, true), from(victim), NOW);
    manager.handle({ type: MessageType.Leave, cookie }, from(victim), NOW + 100);
    expect(manager.sessionCount).toBe(0);
    // The attacker replays the JOIN from the victim's address, asking for 300 s.
    const replayed = join(cookie, ['a'], { kind: 'duration', ms: 300_000 });
    const bytes = encodeControl(replayed).length;
    const out = manager.handle(replayed, from(victim, bytes), NOW + 200);
    expect(reply(out)).toMatchObject({ type: MessageType.Error, code: ErrorCode.BadCookie });
    expect(encodeControl(reply(out)).length).toBeLessThanOrEqual(bytes);
    expect(out.replies[0].maxBytes).toBe(bytes);
    expect(out.commands).toEqual([]);
    expect(manager.sessionCount).toBe(0);
    const ack: AckMessage = { type: MessageType.Ack, cookie, tsi: 1, windowStart: 0, windowEnd: 10, received: [] };
    expect(reply(manager.handle(ack, from(victim), NOW + 300))).toMatchObject({ code: ErrorCode.BadCookie });
    expect(manager.handle({ type: MessageType.Leave, cookie }, from(victim, 16), NOW + 400).replies).toEqual([]);
    expect(manager.counters.cookieSpent).toBe(3);
    expect(manager.counters.amplificationSuppressed).toBe(1);
    // Past its expiry the cookie is refused as expired, and forgotten.
    const exp = cookieExpiry(cookie);
    expect(reply(manager.handle(replayed, from(victim), exp))).toMatchObject({ code: ErrorCode.CookieExpired });
    manager.handle({ type: MessageType.Leave, cookie: cookieFor(manager, victim, exp) }, from(victim), exp);
    expect(manager.spentCookieCount).toBe(1);
    // The victim itself gets a new cookie and joins as always.
    const again = cookieFor(manager, victim, NOW + 500);
    expect(reply(manager.handle(join(again, ['a']), from(victim), NOW + 500)).type).toBe(MessageType.Joined);
  });

  test('a JOIN never keeps a session past its cookie expiry, whatever time it asks for', () => {
    const { manager } = rig({ maxTtlMs: 300_000 });
    const cookie = cookieFor(manager, victim, NOW);
    const exp = cookieExpiry(cookie);
    expect(exp).toBe(NOW + LIFETIME);
    // Asked 300 s (duration) 5 s into the cookie's life: granted until the cookie expires.
    const m = reply(manager.handle(join(cookie, ['a'], { kind: 'duration', ms: 300_000 }), from(victim), NOW + 5_000));
    expect(m).toMatchObject({ type: MessageType.Joined, expiresAtMs: exp });
    expect(manager.session(victim)?.expiresAtMs).toBe(exp);
    // An absolute time beyond it: the same.
    const abs = reply(manager.handle(join(cookie, ['a'], { kind: 'absolute', unixMs: NOW + 250_000 }), from(victim), NOW + 6_000));
    expect(abs).toMatchObject({ expiresAtMs: exp });
    // Shorter than the cookie: as asked.
    const short = reply(manager.handle(join(cookie, ['a'], { kind: 'duration', ms: 1_000 }), from(victim), NOW + 7_000));
    expect(short).toMatchObject({ expiresAtMs: NOW + 8_000 });
    expect(manager.counters.joinTtlCutToCookie).toBe(2);
    // The session ends with the cookie unless renewed with a fresh one.
    manager.handle(join(cookie, ['a'], { kind: 'duration', ms: 300_000 }), from(victim), NOW + 8_000);
    expect(manager.tick(exp - 1).events).toEqual([]);
    expect(manager.tick(exp).events).toEqual([{ kind: 'expired', client: victim, channels: ['a'] }]);
  });

  test('a renewal with a fresh cookie carries the session on past the first cookie', () => {
    const { manager } = rig({ maxTtlMs: 300_000 });
    const first = cookieFor(manager, victim, NOW);
    manager.handle(join(first, ['a'], { kind: 'duration', ms: 30_000 }), from(victim), NOW);
    const second = cookieFor(manager, victim, NOW + 10_000);
    const m = reply(manager.handle(join(second, ['a'], { kind: 'duration', ms: 30_000 }), from(victim), NOW + 10_000));
    expect(m).toMatchObject({ type: MessageType.Joined, expiresAtMs: NOW + 10_000 + LIFETIME });
    expect(manager.tick(NOW + LIFETIME).events).toEqual([]);
    expect(manager.counters.sessionsRenewed).toBe(1);
  });

  test('the spent set is bounded: when full, the entry that expires first makes room (counted)', () => {
    const spent = new SpentCookies(4);
    const c = (i: number): Uint8Array => new Uint8Array(33).fill(i);
    for (let i = 0; i < 4; i++) spent.spend(c(i), NOW + 1_000 + i, NOW);
    expect(spent.size).toBe(4);
    spent.spend(c(9), NOW + 5_000, NOW);
    expect(spent.size).toBe(4);
    expect(spent.evicted).toBe(1);
    expect(spent.isSpent(c(0), NOW)).toBe(false);
    for (const i of [1, 2, 3, 9]) expect(spent.isSpent(c(i), NOW)).toBe(true);
    // Expired entries go before anything is evicted.
    spent.spend(c(10), NOW + 6_000, NOW + 1_002);
    expect(spent.size).toBe(3);
    expect(spent.evicted).toBe(1);
    expect(spent.isSpent(c(3), NOW + 1_002)).toBe(true);
    expect(spent.isSpent(c(3), NOW + 1_003)).toBe(false);
    // A cookie already expired is not kept.
    spent.spend(c(11), NOW, NOW);
    expect(spent.isSpent(c(11), NOW - 1)).toBe(false);
    expect(new SpentCookies().capacity).toBe(DEFAULT_SPENT_COOKIES);
    expect(() => new SpentCookies(0)).toThrow(InvalidServerConfigError);
  });

  test('the manager holds at most `spentCookies` of them, however many LEAVEs arrive', () => {
    const { manager } = rig({ spentCookies: 50, maxSessionsPerAddress: 1000 });
    for (let port = 1; port <= 400; port++) {
      const p = udpPeer('192.0.2.20', port);
      const cookie = cookieFor(manager, p, NOW + port);
      manager.handle(join(cookie, ['a']), from(p), NOW + port);
      manager.handle({ type: MessageType.Leave, cookie }, from(p), NOW + port);
      expect(manager.spentCookieCount).toBeLessThanOrEqual(50);
    }
    expect(manager.spentCookieCount).toBe(50);
    expect(manager.counters.spentCookiesEvicted).toBe(350);
    expect(manager.counters.sessionsLeft).toBe(400);
  });
});

// ------------------------------------------------------------ finding 2 --

describe('ACK replacements within a budget (finding 2)', () => {
  /** Packets per second of the channel in these tests. */
  const PPS = 10_000;
  const hostile = udpPeer('203.0.113.66', 6666);
  const honest = udpPeer('192.0.2.30', 3030);

  /** A manager whose channel `a` (TSI 1) has sent `sent.end` packets so far. */
  function ackRig(options: Partial<ClientManagerOptions> = {}) {
    const sent = { end: 0 };
    const r = rig({
      maxTtlMs: 300_000,
      sentEnd: () => sent.end,
      firstSequence: () => sent.end,
      packetRate: () => PPS,
      ...options,
    });
    return { ...r, sent };
  }

  function ack(cookie: Uint8Array, windowStart: number, windowEnd: number, received: { start: number; end: number }[] = []): AckMessage {
    return { type: MessageType.Ack, cookie, tsi: 1, windowStart, windowEnd, received };
  }

  test('a client reporting every packet lost gets at most clientShare of the channel rate, plus one burst; the rest is refused and counted', () => {
    const { manager, sent } = ackRig();
    const cookie = cookieFor(manager, hostile);
    manager.handle(join(cookie, ['a'], { kind: 'duration', ms: 300_000 }, true), from(hostile), NOW);
    // 10 s of stream at PPS, an ACK every 10 ms claiming the whole 10 ms (100 packets) lost.
    let granted = 0;
    let claimed = 0;
    for (let ms = 10; ms <= 10_000; ms += 10) {
      const start = sent.end;
      sent.end += PPS / 100;
      claimed += sent.end - start;
      granted += fresh(manager.handle(ack(cookie, start, sent.end), from(hostile), NOW + ms)).length;
    }
    const burst = (DEFAULT_CLIENT_SHARE * PPS * DEFAULT_BURST_MS) / 1000;
    expect(claimed).toBe(100_000);
    expect(granted).toBeLessThanOrEqual(DEFAULT_CLIENT_SHARE * PPS * 10 + burst);
    // And not much less: the budget is a share, not a ban.
    expect(granted).toBeGreaterThanOrEqual(DEFAULT_CLIENT_SHARE * PPS * 10);
    expect(manager.counters.freshSymbolsRequested).toBe(granted);
    expect(manager.counters.replacementsOverClientShare).toBe(claimed - granted);
    expect(manager.counters.replacementsOverChannelShare).toBe(0);
  });

  test('no loss is claimed before the client became a destination, nor beyond what was sent', () => {
    const { manager, sent } = ackRig();
    sent.end = 50_000;
    const cookie = cookieFor(manager, hostile);
    manager.handle(join(cookie, ['a'], undefined, true), from(hostile), NOW);
    sent.end = 50_020;
    // Claims 10 000 packets before its join and 1 000 not yet sent: only the 20 sent to it count.
    const out = manager.handle(ack(cookie, 40_000, 51_000), from(hostile), NOW + 10);
    expect(fresh(out)).toEqual(Array.from({ length: 20 }, (_, i) => 50_000 + i));
  });

  test.each([
    [5, false],
    [2, true],
  ])('%i hostile clients together get at most channelShare; an honest client beside them with 2%% loss gets every replacement it asks for: %s', (n, honestServed) => {
    const { manager, sent } = ackRig();
    const attackers = Array.from({ length: n }, (_, i) => udpPeer(`203.0.113.${i + 1}`, 6000 + i));
    const cookies = attackers.map((p) => cookieFor(manager, p));
    attackers.forEach((p, i) => manager.handle(join(cookies[i], ['a'], { kind: 'duration', ms: 300_000 }, true), from(p), NOW));
    const hc = cookieFor(manager, honest);
    manager.handle(join(hc, ['a'], { kind: 'duration', ms: 300_000 }, true), from(honest), NOW);
    let hostileGranted = 0;
    let honestAsked = 0;
    let honestGranted = 0;
    for (let ms = 10; ms <= 5_000; ms += 10) {
      const start = sent.end;
      sent.end += PPS / 100;
      attackers.forEach((p, i) => {
        hostileGranted += fresh(manager.handle(ack(cookies[i], start, sent.end), from(p), NOW + ms)).length;
      });
      // The honest client lost 2 of every 100.
      honestAsked += 2;
      const received = [{ start, end: start + 49 }, { start: start + 50, end: start + 99 }];
      honestGranted += fresh(manager.handle(ack(hc, start, sent.end, received), from(honest), NOW + ms)).length;
    }
    const share = (s: number): number => s * PPS * 5 + (s * PPS * DEFAULT_BURST_MS) / 1000;
    // Each attacker is held to its share, and all together to the channel's: the stream keeps the rest.
    expect(hostileGranted + honestGranted).toBeLessThanOrEqual(share(DEFAULT_CHANNEL_SHARE));
    expect(hostileGranted).toBeLessThanOrEqual(n * share(DEFAULT_CLIENT_SHARE));
    // While the attackers' shares leave room in the channel's (2 × 0.1 < 0.25), the honest client loses nothing.
    if (honestServed) expect(honestGranted).toBe(honestAsked);
    else expect(honestGranted).toBeLessThan(honestAsked);
  });

  test('the budget: both buckets start full, refill at their share, and a client that leaves the channel forgets its bucket', () => {
    const b = new ReplacementBudget<string>({ clientShare: 0.1, channelShare: 0.2, burstMs: 1_000 });
    expect(b.take('x', 1, 5_000, 10_000, 0)).toEqual({ granted: 1_000, overClientShare: 4_000, overChannelShare: 0 });
    expect(b.take('x', 1, 5_000, 10_000, 100)).toEqual({ granted: 100, overClientShare: 4_900, overChannelShare: 0 });
    // The channel's bucket (2 000 deep, 2 000/s): 2 000 - 1 000 + 200 - 100 = 1 100 left; y takes its own 1 000.
    expect(b.take('y', 1, 5_000, 10_000, 100)).toEqual({ granted: 1_000, overClientShare: 4_000, overChannelShare: 0 });
    // z's own bucket is full, but the channel has 100 left.
    expect(b.take('z', 1, 5_000, 10_000, 100)).toEqual({ granted: 100, overClientShare: 0, overChannelShare: 4_900 });
    expect(b.bucketCount).toBe(3);
    b.dropChannel('x', 1);
    b.dropClient('y');
    b.dropClient('z');
    expect(b.bucketCount).toBe(0);
    expect(new ReplacementBudget({ clientShare: 0 }).take('z', 1, 10, 10_000, 0).granted).toBe(0);
    expect(new ReplacementBudget().clientShare).toBe(DEFAULT_CLIENT_SHARE);
    expect(new ReplacementBudget().channelShare).toBe(DEFAULT_CHANNEL_SHARE);
    expect(() => new ReplacementBudget({ clientShare: 1.5 })).toThrow(InvalidServerConfigError);
    expect(() => new ReplacementBudget({ burstMs: 0 })).toThrow(InvalidServerConfigError);
  });

  test('AckTracker.startAt: the floor starts at the first packet sent to the client; a renewal does not move it', () => {
    const t = new AckTracker<string>();
    t.startAt('c', 1, 1_000);
    expect(t.onAck('c', 1, { windowStart: 990, windowEnd: 1_005, received: [] })).toEqual({ ok: true, lost: [1000, 1001, 1002, 1003, 1004] });
    t.startAt('c', 1, 5_000);
    expect(t.onAck('c', 1, { windowStart: 1_005, windowEnd: 1_007, received: [] })).toEqual({ ok: true, lost: [1005, 1006] });
    // Across the 32-bit wrap.
    t.startAt('w', 1, 2 ** 32 - 2);
    expect(t.onAck('w', 1, { windowStart: 2 ** 32 - 4, windowEnd: 2, received: [] })).toEqual({ ok: true, lost: [2 ** 32 - 2, 2 ** 32 - 1, 0, 1] });
  });
});
