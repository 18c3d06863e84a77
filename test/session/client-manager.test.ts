/**
 * ClientManager as the state machine it is: every transition driven by
 * messages and an injected `now` (docs/PROTOCOL.md §6), no sockets, no
 * sleeps. Times are asserted exactly: a session announced to end at T ends
 * at the first tick(now >= T), and nextDeadline() says T.
 */
import fc from 'fast-check';
import { encodeControl } from '../../lib/protocol/control';
import {
  type AckMessage,
  type ControlMessage,
  ErrorCode,
  type JoinMessage,
  MessageType,
  type TimeValue,
} from '../../lib/protocol/messages';
import { ClientManager, type ClientManagerOptions, type Source } from '../../lib/session/client-manager';
import { staticChannelDirectory } from '../../lib/session/channel-directory';
import { CookieAuthority } from '../../lib/session/cookie';
import type { ManagerOutput, ReplicationCommand } from '../../lib/session/manager-output';
import { type Peer, tcpPeer, udpPeer } from '../../lib/session/peer';
import { InvalidServerConfigError } from '../../lib/errors';

const NOW = 1_764_072_000_000;
const SECRET = new Uint8Array(32).fill(7);
const MAX_TTL = 60_000;
const CHANNELS = [
  { name: 'a', tsi: 1 },
  { name: 'b', tsi: 2 },
  { name: 'c', tsi: 3 },
];

const alice = udpPeer('192.0.2.1', 5000);
const bob = udpPeer('2001:db8::2', 6000);

function rig(options: Partial<ClientManagerOptions> = {}): { manager: ClientManager; cookies: CookieAuthority } {
  const cookies = new CookieAuthority({ masterSecret: SECRET, rotationPeriodMs: 60_000 });
  const manager = new ClientManager({
    cookies,
    channels: staticChannelDirectory(CHANNELS),
    encodedSize: (m) => encodeControl(m).length,
    maxTtlMs: MAX_TTL,
    ...options,
  });
  return { manager, cookies };
}

/** `peer` sending a message of `bytes` bytes. */
function from(peer: Peer, bytes = 200): Source {
  return { ...peer, bytesReceived: bytes };
}

function duration(ms: number): TimeValue {
  return { kind: 'duration', ms };
}

function joinMsg(cookie: Uint8Array, channels: string[], until: TimeValue = duration(10_000), ack = false): JoinMessage {
  return { type: MessageType.Join, cookie, channels, until, ack };
}

/** HELLO -> the cookie the manager issues to `peer` at `now`. */
function helloCookie(manager: ClientManager, peer: Peer, now = NOW): Uint8Array {
  const out = manager.handle({ type: MessageType.Hello, nonce: new Uint8Array(8).fill(1) }, from(peer, 128), now);
  const m = out.replies[0].message;
  if (m.type !== MessageType.Cookie) throw new Error('expected COOKIE');
  return m.cookie;
}

function onlyReply(out: ManagerOutput): ControlMessage {
  expect(out.replies).toHaveLength(1);
  return out.replies[0].message;
}

function errorCode(out: ManagerOutput): ErrorCode | undefined {
  const m = out.replies[0]?.message;
  return m?.type === MessageType.Error ? m.code : undefined;
}

/** Everything the manager exposes about its sessions, for "nothing changed" checks. */
function snapshot(manager: ClientManager, peers: Peer[]): unknown {
  return {
    count: manager.sessionCount,
    next: manager.nextDeadline(),
    sessions: peers.map((p) => manager.session(p)),
    members: CHANNELS.map((c) => manager.members(c.name)),
  };
}

function commandSummary(commands: ReplicationCommand[]): string[] {
  return commands.map((c) =>
    c.kind === 'sendFresh'
      ? `${c.kind} ${c.channel}/${c.tsi} ${c.destination.transport}:${c.destination.address}:${c.destination.port} [${c.lost.join(',')}]`
      : c.kind === 'need'
      ? `${c.kind} ${c.channel}/${c.tsi} ${c.member.transport}:${c.member.address}:${c.member.port}`
      : `${c.kind} ${c.channel}/${c.tsi} ${c.destinations.map((d) => `${d.transport}:${d.address}:${d.port}`).join(' ')}`,
  );
}

describe('construction', () => {
  test.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])('maxTtlMs %p is refused', (maxTtlMs) => {
    expect(() => rig({ maxTtlMs })).toThrow(InvalidServerConfigError);
  });
  test.each([0, -1, 1.5])('maxChannelsPerClient %p is refused', (maxChannelsPerClient) => {
    expect(() => rig({ maxChannelsPerClient })).toThrow(InvalidServerConfigError);
  });
});

describe('HELLO (§6.1)', () => {
  test('answers a COOKIE bound to the sender, within the bytes received, and keeps no state', () => {
    const { manager, cookies } = rig();
    const out = manager.handle({ type: MessageType.Hello, nonce: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) }, from(alice, 128), NOW);
    const m = onlyReply(out);
    if (m.type !== MessageType.Cookie) throw new Error('expected COOKIE');
    expect(m.nonce).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    expect(m.serverTimeMs).toBe(NOW);
    expect(cookies.verify(m.cookie, alice.address, alice.port, NOW)).toEqual({ ok: true, expiresAtMs: NOW + 60_000 });
    expect(out.replies[0].to).toEqual(alice);
    expect(out.replies[0].maxBytes).toBe(128);
    expect(encodeControl(m).length).toBeLessThanOrEqual(128);
    expect(out.commands).toEqual([]);
    expect(out.events).toEqual([]);
    expect(manager.sessionCount).toBe(0);
    expect(manager.nextDeadline()).toBeUndefined();
    expect(manager.counters).toMatchObject({ helloReceived: 1, cookiesIssued: 1, amplificationSuppressed: 0 });
  });

  test('any datagram size: a COOKIE goes out iff it is no larger than the datagram, with that as its budget', () => {
    const { manager } = rig();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), (bytes, nonce) => {
        const before = { ...manager.counters };
        const out = manager.handle({ type: MessageType.Hello, nonce }, from(alice, bytes), NOW);
        const cookieSize = 8 + 8 + 8 + 1 + 33; // header, nonce, serverTimeMs, cookie length, cookie
        if (bytes >= cookieSize) {
          expect(out.replies).toHaveLength(1);
          expect(out.replies[0].maxBytes).toBe(bytes);
          expect(encodeControl(out.replies[0].message).length).toBeLessThanOrEqual(bytes);
          expect(manager.counters.cookiesIssued).toBe(before.cookiesIssued + 1);
        } else {
          expect(out.replies).toEqual([]);
          expect(manager.counters.amplificationSuppressed).toBe(before.amplificationSuppressed + 1);
        }
        expect(manager.sessionCount).toBe(0);
      }),
    );
  });
});

describe('JOIN (§6.2)', () => {
  test('creates a session: JOINED in JOIN order, one addDestinations per channel, a deadline at the expiry', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    const out = manager.handle(joinMsg(cookie, ['b', 'a'], duration(10_000)), from(alice), NOW + 5);
    const m = onlyReply(out);
    expect(m).toEqual({ type: MessageType.Joined, channels: [{ name: 'b', tsi: 2 }, { name: 'a', tsi: 1 }], expiresAtMs: NOW + 10_005 });
    // The cookie verified: the address is proven, no amplification bound.
    expect(out.replies[0].maxBytes).toBeUndefined();
    expect(out.replies[0].to).toEqual(alice);
    expect(commandSummary(out.commands)).toEqual(['addDestinations b/2 udp:192.0.2.1:5000', 'addDestinations a/1 udp:192.0.2.1:5000']);
    expect(out.events).toEqual([{ kind: 'joined', client: alice, channels: ['b', 'a'], expiresAtMs: NOW + 10_005, ack: false }]);
    expect(manager.session(alice)).toEqual({ client: alice, channels: [{ name: 'b', tsi: 2 }, { name: 'a', tsi: 1 }], expiresAtMs: NOW + 10_005, ack: false });
    expect(manager.members('a')).toEqual([alice]);
    expect(manager.nextDeadline()).toBe(NOW + 10_005);
    expect(manager.counters).toMatchObject({ joinReceived: 1, sessionsStarted: 1, sessionsRenewed: 0 });
  });

  test('renews: same channels, no commands; the expiry moves, earlier as well as later', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    manager.handle(joinMsg(cookie, ['a'], duration(10_000)), from(alice), NOW);
    const later = manager.handle(joinMsg(cookie, ['a'], duration(30_000)), from(alice), NOW + 1_000);
    expect(later.commands).toEqual([]);
    expect(later.events).toEqual([{ kind: 'renewed', client: alice, channels: ['a'], expiresAtMs: NOW + 31_000, ack: false }]);
    expect(manager.nextDeadline()).toBe(NOW + 31_000);
    const earlier = manager.handle(joinMsg(cookie, ['a'], duration(2_000)), from(alice), NOW + 2_000);
    expect((onlyReply(earlier) as { expiresAtMs: number }).expiresAtMs).toBe(NOW + 4_000);
    expect(manager.nextDeadline()).toBe(NOW + 4_000);
    expect(manager.counters).toMatchObject({ sessionsStarted: 1, sessionsRenewed: 2 });
  });

  test('replaces the channel set: an omitted channel gets removeDestinations, and only that one', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    manager.handle(joinMsg(cookie, ['a', 'b']), from(alice), NOW);
    const out = manager.handle(joinMsg(cookie, ['b', 'c']), from(alice), NOW + 1);
    expect(commandSummary(out.commands)).toEqual(['removeDestinations a/1 udp:192.0.2.1:5000', 'addDestinations c/3 udp:192.0.2.1:5000']);
    expect(manager.members('a')).toEqual([]);
    expect(manager.members('b')).toEqual([alice]);
    expect(manager.members('c')).toEqual([alice]);
  });

  test.each([
    ['a duration', duration(10 ** 12)],
    ['an absolute time', { kind: 'absolute', unixMs: NOW + 10 ** 12 } as TimeValue],
  ])('%s beyond maxTtlMs is clamped to now + maxTtlMs', (_name, until) => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    const out = manager.handle(joinMsg(cookie, ['a'], until), from(alice), NOW);
    expect((onlyReply(out) as { expiresAtMs: number }).expiresAtMs).toBe(NOW + MAX_TTL);
    expect(manager.nextDeadline()).toBe(NOW + MAX_TTL);
  });

  test('an absolute time is the expiry itself; a duration counts from now', () => {
    const { manager } = rig();
    const ca = helloCookie(manager, alice);
    const cb = helloCookie(manager, bob);
    manager.handle(joinMsg(ca, ['a'], { kind: 'absolute', unixMs: NOW + 1234 }), from(alice), NOW + 100);
    manager.handle(joinMsg(cb, ['a'], duration(1234)), from(bob), NOW + 100);
    expect(manager.session(alice)?.expiresAtMs).toBe(NOW + 1234);
    expect(manager.session(bob)?.expiresAtMs).toBe(NOW + 1334);
  });

  test('a JOIN with no channels ends the session like LEAVE and answers JOINED [] at now', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    manager.handle(joinMsg(cookie, ['a', 'b']), from(alice), NOW);
    const out = manager.handle(joinMsg(cookie, [], duration(0)), from(alice), NOW + 7);
    expect(onlyReply(out)).toEqual({ type: MessageType.Joined, channels: [], expiresAtMs: NOW + 7 });
    expect(commandSummary(out.commands)).toEqual(['removeDestinations a/1 udp:192.0.2.1:5000', 'removeDestinations b/2 udp:192.0.2.1:5000']);
    expect(out.events).toEqual([{ kind: 'left', client: alice, channels: ['a', 'b'] }]);
    expect(manager.sessionCount).toBe(0);
    expect(manager.nextDeadline()).toBeUndefined();
    expect(manager.counters.sessionsLeft).toBe(1);
    // The cookie is spent now, as by LEAVE (a replay of it is refused).
    const replay = manager.handle(joinMsg(cookie, ['a']), from(alice), NOW + 8);
    expect(onlyReply(replay)).toMatchObject({ type: MessageType.Error, code: ErrorCode.BadCookie });
    expect(manager.counters.cookieSpent).toBe(1);
    // Without a session, with a fresh cookie: the same answer, nothing else.
    const again = manager.handle(joinMsg(helloCookie(manager, alice, NOW + 8), []), from(alice), NOW + 8);
    expect(onlyReply(again)).toEqual({ type: MessageType.Joined, channels: [], expiresAtMs: NOW + 8 });
    expect(again.commands).toEqual([]);
    expect(again.events).toEqual([]);
  });

  describe('refusals change nothing', () => {
    const refusals: [string, (cookie: Uint8Array, cookies: CookieAuthority) => { msg: JoinMessage; source?: Source; now?: number }, ErrorCode][] = [
      ['unknown channel', (c) => ({ msg: joinMsg(c, ['a', 'nope']) }), ErrorCode.UnknownChannel],
      ['too many channels', (c) => ({ msg: joinMsg(c, ['a', 'b', 'c']) }), ErrorCode.TooManyChannels],
      ['a zero duration', (c) => ({ msg: joinMsg(c, ['a'], duration(0)) }), ErrorCode.BadTime],
      ['an absolute time at now', (c) => ({ msg: joinMsg(c, ['a'], { kind: 'absolute', unixMs: NOW + 10 }), now: NOW + 10 }), ErrorCode.BadTime],
      ['an expired cookie', (c) => ({ msg: joinMsg(c, ['b']), now: NOW + 60_000 }), ErrorCode.CookieExpired],
      ['a forged cookie', (c) => ({ msg: joinMsg(Uint8Array.from(c, (x, i) => (i === 9 ? x ^ 1 : x)), ['b']) }), ErrorCode.BadCookie],
      ['a cookie of another port', (c) => ({ msg: joinMsg(c, ['b']), source: from(udpPeer(alice.address, alice.port + 1)) }), ErrorCode.BadCookie],
      ['a cookie of another address', (c) => ({ msg: joinMsg(c, ['b']), source: from(udpPeer('192.0.2.99', alice.port)) }), ErrorCode.BadCookie],
      ['a cookie of an old key', (_c, k) => ({ msg: joinMsg(k.issue(alice.address, alice.port, NOW - 10 * 60_000), ['b']) }), ErrorCode.BadCookie],
      ['a truncated cookie', (c) => ({ msg: joinMsg(c.subarray(0, 20), ['b']) }), ErrorCode.BadCookie],
    ];
    test.each(refusals)('%s', (_name, make, code) => {
      const { manager, cookies } = rig({ maxChannelsPerClient: 2 });
      const cookie = helloCookie(manager, alice);
      manager.handle(joinMsg(cookie, ['a'], duration(30_000)), from(alice), NOW);
      const before = snapshot(manager, [alice]);
      const { msg, source, now } = make(cookie, cookies);
      const out = manager.handle(msg, source ?? from(alice), now ?? NOW + 1);
      expect(errorCode(out)).toBe(code);
      expect(out.commands).toEqual([]);
      expect(out.events).toEqual([]);
      expect(snapshot(manager, [alice])).toEqual(before);
    });

    test('reasons: the checks run in §6.2 order and the channel name is made printable', () => {
      const { manager } = rig({ maxChannelsPerClient: 2 });
      const cookie = helloCookie(manager, alice);
      const reason = (msg: JoinMessage): string => {
        const m = onlyReply(manager.handle(msg, from(alice), NOW));
        return m.type === MessageType.Error ? `${m.code} ${m.reason}` : 'accepted';
      };
      expect(reason(joinMsg(cookie, ['x', 'y', 'z'], duration(0)))).toBe(`${ErrorCode.TooManyChannels} at most 2 channels`);
      expect(reason(joinMsg(cookie, ['a', 'b\u00e9\n'], duration(0)))).toBe(`${ErrorCode.UnknownChannel} unknown channel b??`);
      expect(reason(joinMsg(cookie, ['a'], duration(0)))).toBe(`${ErrorCode.BadTime} time value not in the future`);
      expect(manager.counters).toMatchObject({ joinTooManyChannels: 1, joinUnknownChannel: 1, joinBadTime: 1, sessionsStarted: 0 });
    });

    test('a cookie refusal is answered within the bytes received, or not at all', () => {
      const { manager } = rig();
      const bogus = new Uint8Array(33);
      const big = manager.handle(joinMsg(bogus, ['a']), from(alice, 100), NOW);
      expect(big.replies).toHaveLength(1);
      expect(big.replies[0].maxBytes).toBe(100);
      expect(encodeControl(big.replies[0].message).length).toBeLessThanOrEqual(100);
      const small = manager.handle(joinMsg(bogus, ['a']), from(alice, 20), NOW);
      expect(small.replies).toEqual([]);
      expect(manager.counters.amplificationSuppressed).toBe(1);
    });

    test('property: any JOIN refused for its channels or time leaves every session as it was', () => {
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom('a', 'b', 'c', 'x', 'y'), { minLength: 1, maxLength: 4 }),
          fc.oneof(
            fc.integer({ min: -5_000, max: 5_000 }).map(duration),
            fc.integer({ min: -5_000, max: 5_000 }).map((d): TimeValue => ({ kind: 'absolute', unixMs: NOW + 1 + d })),
          ),
          (channels, until) => {
            const { manager } = rig({ maxChannelsPerClient: 3 });
            const cookie = helloCookie(manager, alice);
            manager.handle(joinMsg(cookie, ['a', 'b'], duration(20_000)), from(alice), NOW);
            const before = snapshot(manager, [alice]);
            const out = manager.handle(joinMsg(cookie, channels, until), from(alice), NOW + 1);
            const m = onlyReply(out);
            if (m.type === MessageType.Error) {
              expect(out.commands).toEqual([]);
              expect(snapshot(manager, [alice])).toEqual(before);
            } else {
              expect(m.type).toBe(MessageType.Joined);
              expect(new Set(manager.session(alice)?.channels.map((c) => c.name))).toEqual(new Set(channels));
            }
          },
        ),
      );
    });
  });
});

describe('the server leaving (§6.7)', () => {
  test('leaveAll: every session ends (left events, removeDestinations), each client gets ERROR ServerLeaving, counted', () => {
    const { manager } = rig();
    const ca = helloCookie(manager, alice);
    const cb = helloCookie(manager, bob);
    manager.handle(joinMsg(ca, ['a', 'c']), from(alice), NOW);
    manager.handle(joinMsg(cb, ['b']), from(bob), NOW);
    const out = manager.leaveAll();
    expect(out.replies.map((r) => [r.to, r.message])).toEqual([
      [alice, { type: MessageType.Error, code: ErrorCode.ServerLeaving, reason: 'server leaving' }],
      [bob, { type: MessageType.Error, code: ErrorCode.ServerLeaving, reason: 'server leaving' }],
    ]);
    expect(commandSummary(out.commands).sort()).toEqual([
      'removeDestinations a/1 udp:192.0.2.1:5000',
      'removeDestinations b/2 udp:2001:db8::2:6000',
      'removeDestinations c/3 udp:192.0.2.1:5000',
    ]);
    expect(out.events.map((e) => [e.kind, e.client])).toEqual([
      ['left', alice],
      ['left', bob],
    ]);
    expect(manager.sessionCount).toBe(0);
    expect(manager.nextDeadline()).toBeUndefined();
    expect(manager.leaving).toBe(true);
    expect(manager.counters).toMatchObject({ sessionsServerLeft: 2, sessionsLeft: 0 });
  });

  test('after leaveAll a HELLO or JOIN starts nothing and is answered ERROR ServerLeaving, within the amplification budget', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    manager.leaveAll();
    const hello = manager.handle({ type: MessageType.Hello, nonce: new Uint8Array(8) }, from(alice, 128), NOW);
    expect(errorCode(hello)).toBe(ErrorCode.ServerLeaving);
    expect(hello.replies[0].maxBytes).toBe(128);
    const join = manager.handle(joinMsg(cookie, ['a']), from(alice), NOW);
    expect(errorCode(join)).toBe(ErrorCode.ServerLeaving);
    expect(join.commands).toEqual([]);
    expect(manager.sessionCount).toBe(0);
    // A datagram smaller than the ERROR gets nothing (§6.1).
    const tiny = manager.handle(joinMsg(cookie, ['a']), from(alice, 20), NOW);
    expect(tiny.replies).toEqual([]);
    expect(manager.counters).toMatchObject({ refusedLeaving: 3, amplificationSuppressed: 1, cookiesIssued: 1, sessionsStarted: 0 });
  });
});

describe('LEAVE (§6.3)', () => {
  test('ends the session at once: removeDestinations on every channel, no reply, no deadline', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    manager.handle(joinMsg(cookie, ['a', 'c'], duration(10_000), true), from(alice), NOW);
    const out = manager.handle({ type: MessageType.Leave, cookie }, from(alice), NOW + 1);
    expect(out.replies).toEqual([]);
    expect(commandSummary(out.commands)).toEqual(['removeDestinations a/1 udp:192.0.2.1:5000', 'removeDestinations c/3 udp:192.0.2.1:5000']);
    expect(out.events).toEqual([{ kind: 'left', client: alice, channels: ['a', 'c'] }]);
    expect(manager.session(alice)).toBeUndefined();
    expect(manager.nextDeadline()).toBeUndefined();
    expect(manager.tick(NOW + 10_000).events).toEqual([]);
    expect(manager.counters).toMatchObject({ leaveReceived: 1, sessionsLeft: 1 });
  });

  test('without a session: counted, no reply', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    const out = manager.handle({ type: MessageType.Leave, cookie }, from(alice), NOW);
    expect(out).toEqual({ replies: [], commands: [], events: [] });
    expect(manager.counters.leaveNotJoined).toBe(1);
  });

  test('with a cookie that does not verify: the ERROR of §6.1, the session stays', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    manager.handle(joinMsg(cookie, ['a']), from(alice), NOW);
    const out = manager.handle({ type: MessageType.Leave, cookie }, from(alice), NOW + 60_000);
    expect(errorCode(out)).toBe(ErrorCode.CookieExpired);
    expect(out.replies[0].maxBytes).toBe(200);
    expect(manager.sessionCount).toBe(1);
  });
});

describe('expiry (§6.4)', () => {
  test('a session ends exactly at its announced expiresAtMs, and nextDeadline says when', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    const joined = onlyReply(manager.handle(joinMsg(cookie, ['a', 'b'], duration(1_500)), from(alice), NOW));
    if (joined.type !== MessageType.Joined) throw new Error('expected JOINED');
    const at = joined.expiresAtMs;
    expect(at).toBe(NOW + 1_500);
    expect(manager.nextDeadline()).toBe(at);
    expect(manager.tick(at - 1)).toEqual({ replies: [], commands: [], events: [] });
    expect(manager.sessionCount).toBe(1);
    const out = manager.tick(at);
    expect(out.replies).toEqual([]);
    expect(commandSummary(out.commands)).toEqual(['removeDestinations a/1 udp:192.0.2.1:5000', 'removeDestinations b/2 udp:192.0.2.1:5000']);
    expect(out.events).toEqual([{ kind: 'expired', client: alice, channels: ['a', 'b'] }]);
    expect(manager.sessionCount).toBe(0);
    expect(manager.nextDeadline()).toBeUndefined();
    expect(manager.counters.sessionsExpired).toBe(1);
  });

  test('a renewal moves the deadline: the old one passes without effect', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    manager.handle(joinMsg(cookie, ['a'], duration(1_000)), from(alice), NOW);
    manager.handle(joinMsg(cookie, ['a'], duration(1_000)), from(alice), NOW + 600);
    expect(manager.nextDeadline()).toBe(NOW + 1_600);
    expect(manager.tick(NOW + 1_000).events).toEqual([]);
    expect(manager.tick(NOW + 1_600).events.map((e) => e.kind)).toEqual(['expired']);
  });

  test('one tick expires every session due, earliest first, in one removeDestinations per channel', () => {
    const { manager } = rig();
    const carol = udpPeer('192.0.2.3', 7000);
    for (const [peer, ms] of [
      [alice, 3_000],
      [bob, 1_000],
      [carol, 9_000],
    ] as const) {
      manager.handle(joinMsg(helloCookie(manager, peer), ['a'], duration(ms)), from(peer), NOW);
    }
    expect(manager.nextDeadline()).toBe(NOW + 1_000);
    const out = manager.tick(NOW + 5_000);
    expect(out.events.map((e) => e.client)).toEqual([bob, alice]);
    expect(commandSummary(out.commands)).toEqual(['removeDestinations a/1 udp:2001:db8::2:6000 udp:192.0.2.1:5000']);
    expect(manager.members('a')).toEqual([carol]);
    expect(manager.nextDeadline()).toBe(NOW + 9_000);
  });

  test('property: ticking only at nextDeadline() ends every session at the last expiresAtMs it was told', () => {
    const peers = [alice, bob, udpPeer('192.0.2.3', 7000), tcpPeer(alice.address, alice.port, 1)];
    const op = fc.record({
      peer: fc.integer({ min: 0, max: peers.length - 1 }),
      after: fc.integer({ min: 0, max: 3_000 }),
      leave: fc.boolean(),
      ms: fc.integer({ min: 1, max: 4_000 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const { manager } = rig();
        /** Peer index -> the expiresAtMs of its last JOINED. */
        const announced = new Map<number, number>();
        const runTimers = (until: number): void => {
          for (let next = manager.nextDeadline(); next !== undefined && next <= until; next = manager.nextDeadline()) {
            const out = manager.tick(next);
            expect(out.events.length).toBeGreaterThan(0);
            for (const e of out.events) {
              const i = peers.findIndex((p) => p.transport === e.client.transport && p.address === e.client.address && p.port === e.client.port);
              expect([e.kind, announced.get(i)]).toEqual(['expired', next]);
              announced.delete(i);
            }
          }
        };
        let now = NOW;
        for (const o of ops) {
          now += o.after;
          runTimers(now);
          const peer = peers[o.peer];
          const cookie = helloCookie(manager, peer, now);
          if (o.leave) {
            manager.handle({ type: MessageType.Leave, cookie }, from(peer), now);
            announced.delete(o.peer);
            // The LEAVE spent its cookie, and one issued to the same address and port in the same ms is the same bytes.
            now += 1;
          } else {
            const m = onlyReply(manager.handle(joinMsg(cookie, ['a'], duration(o.ms)), from(peer), now));
            if (m.type !== MessageType.Joined) throw new Error('expected JOINED');
            expect(m.expiresAtMs).toBe(now + o.ms);
            announced.set(o.peer, m.expiresAtMs);
          }
          expect(manager.nextDeadline()).toBe(announced.size === 0 ? undefined : Math.min(...announced.values()));
        }
        runTimers(Number.MAX_SAFE_INTEGER);
        expect(announced.size).toBe(0);
        expect(manager.sessionCount).toBe(0);
        expect(manager.members('a')).toEqual([]);
      }),
    );
  });
});

describe('ACK (§6.5)', () => {
  function joinedWithAck(ack = true, sentEnd = 1_000): { manager: ClientManager; cookie: Uint8Array } {
    const { manager } = rig({ sentEnd: () => sentEnd });
    const cookie = helloCookie(manager, alice);
    manager.handle(joinMsg(cookie, ['a', 'b'], duration(10_000), ack), from(alice), NOW);
    return { manager, cookie };
  }
  const ackMsg = (cookie: Uint8Array, tsi: number, windowStart: number, windowEnd: number, received: { start: number; end: number }[]): AckMessage => ({
    type: MessageType.Ack,
    cookie,
    tsi,
    windowStart,
    windowEnd,
    received,
  });

  test('each newly reported loss becomes one sendFresh for the peer, each answered once', () => {
    const { manager, cookie } = joinedWithAck();
    const out = manager.handle(ackMsg(cookie, 2, 100, 110, [{ start: 100, end: 103 }, { start: 105, end: 109 }]), from(alice), NOW + 1);
    expect(out.replies).toEqual([]);
    expect(commandSummary(out.commands)).toEqual(['sendFresh b/2 udp:192.0.2.1:5000 [103,104,109]']);
    const again = manager.handle(ackMsg(cookie, 2, 100, 112, [{ start: 100, end: 103 }, { start: 105, end: 109 }]), from(alice), NOW + 2);
    expect(commandSummary(again.commands)).toEqual(['sendFresh b/2 udp:192.0.2.1:5000 [110,111]']);
    expect(manager.counters).toMatchObject({ ackReceived: 2, freshSymbolsRequested: 5 });
  });

  test('losses beyond what was sent are not chased (sentEnd)', () => {
    const { manager, cookie } = joinedWithAck(true, 105);
    const out = manager.handle(ackMsg(cookie, 1, 100, 200, []), from(alice), NOW + 1);
    expect(commandSummary(out.commands)).toEqual(['sendFresh a/1 udp:192.0.2.1:5000 [100,101,102,103,104]']);
  });

  test('not joined: ERROR NotJoined, unbounded (the cookie verified)', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    const out = manager.handle(ackMsg(cookie, 1, 0, 10, []), from(alice), NOW);
    expect(onlyReply(out)).toEqual({ type: MessageType.Error, code: ErrorCode.NotJoined, reason: 'not joined' });
    expect(out.replies[0].maxBytes).toBeUndefined();
    expect(manager.counters.ackNotJoined).toBe(1);
  });

  test('ignored and counted: session not in ACK mode, a TSI the session is not on, a malformed window', () => {
    const off = joinedWithAck(false);
    expect(off.manager.handle(ackMsg(off.cookie, 1, 0, 10, []), from(alice), NOW)).toEqual({ replies: [], commands: [], events: [] });
    expect(off.manager.counters.ackNotAckMode).toBe(1);
    const on = joinedWithAck(true);
    expect(on.manager.handle(ackMsg(on.cookie, 3, 0, 10, []), from(alice), NOW).commands).toEqual([]);
    expect(on.manager.counters.ackUnknownChannel).toBe(1);
    expect(on.manager.handle(ackMsg(on.cookie, 1, 10, 20, [{ start: 15, end: 12 }]), from(alice), NOW).commands).toEqual([]);
    expect(on.manager.counters.ackMalformed).toBe(1);
  });

  test('a JOIN that leaves a channel, or turns ACK mode off, forgets what was answered there', () => {
    const { manager, cookie } = joinedWithAck();
    const ack = ackMsg(cookie, 2, 100, 102, []);
    expect(commandSummary(manager.handle(ack, from(alice), NOW).commands)).toEqual(['sendFresh b/2 udp:192.0.2.1:5000 [100,101]']);
    manager.handle(joinMsg(cookie, ['a'], duration(10_000), true), from(alice), NOW + 1);
    manager.handle(joinMsg(cookie, ['a', 'b'], duration(10_000), true), from(alice), NOW + 2);
    expect(commandSummary(manager.handle(ack, from(alice), NOW + 3).commands)).toEqual(['sendFresh b/2 udp:192.0.2.1:5000 [100,101]']);
    manager.handle(joinMsg(cookie, ['a', 'b'], duration(10_000), false), from(alice), NOW + 4);
    manager.handle(joinMsg(cookie, ['a', 'b'], duration(10_000), true), from(alice), NOW + 5);
    expect(commandSummary(manager.handle(ack, from(alice), NOW + 6).commands)).toEqual(['sendFresh b/2 udp:192.0.2.1:5000 [100,101]']);
  });
});

describe('peers', () => {
  test('same address and port over UDP and TCP: two sessions, each with its own commands and expiry', () => {
    const { manager } = rig();
    const overTcp = tcpPeer(alice.address, alice.port, 42);
    // One cookie: it binds address and port (§5), not the transport.
    const cookie = helloCookie(manager, alice);
    const u = manager.handle(joinMsg(cookie, ['a'], duration(1_000)), from(alice), NOW);
    const t = manager.handle(joinMsg(cookie, ['a', 'b'], duration(2_000)), from(overTcp), NOW);
    expect(u.events[0].kind).toBe('joined');
    expect(t.events[0].kind).toBe('joined');
    expect(commandSummary(t.commands)).toEqual(['addDestinations a/1 tcp:192.0.2.1:5000', 'addDestinations b/2 tcp:192.0.2.1:5000']);
    expect(t.replies[0].to).toEqual(overTcp);
    expect(manager.sessionCount).toBe(2);
    expect(manager.members('a')).toEqual([alice, overTcp]);
    const left = manager.handle({ type: MessageType.Leave, cookie }, from(overTcp), NOW + 1);
    expect(commandSummary(left.commands)).toEqual(['removeDestinations a/1 tcp:192.0.2.1:5000', 'removeDestinations b/2 tcp:192.0.2.1:5000']);
    expect(manager.session(alice)?.expiresAtMs).toBe(NOW + 1_000);
    expect(manager.session(overTcp)).toBeUndefined();
  });

  test('two TCP connections from one address and port are two sessions', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    manager.handle(joinMsg(cookie, ['a']), from(tcpPeer(alice.address, alice.port, 1)), NOW);
    manager.handle(joinMsg(cookie, ['a']), from(tcpPeer(alice.address, alice.port, 2)), NOW);
    expect(manager.sessionCount).toBe(2);
  });

  test('an IPv4 client seen as ::ffff:a.b.c.d is the same session as a.b.c.d', () => {
    const { manager } = rig();
    const mapped = udpPeer(`::ffff:${alice.address}`, alice.port);
    const cookie = helloCookie(manager, mapped);
    manager.handle(joinMsg(cookie, ['a']), from(mapped), NOW);
    const out = manager.handle(joinMsg(cookie, ['a']), from(alice), NOW + 1);
    expect(out.events[0].kind).toBe('renewed');
    expect(manager.sessionCount).toBe(1);
    // Replies go back to the address as the transport reported it.
    expect(out.replies[0].to.address).toBe(alice.address);
    expect(manager.session(alice)?.client.address).toBe(mapped.address);
  });

  test('the byte count stays behind: replies, commands and events name the bare peer', () => {
    const { manager } = rig();
    const cookie = helloCookie(manager, alice);
    const out = manager.handle(joinMsg(cookie, ['a']), from(alice, 999), NOW);
    expect(out.replies[0].to).toStrictEqual({ transport: 'udp', address: alice.address, port: alice.port });
    const c = out.commands[0];
    if (c.kind !== 'addDestinations') throw new Error('expected addDestinations');
    expect(c.destinations[0]).toStrictEqual({ transport: 'udp', address: alice.address, port: alice.port });
    expect(out.events[0].client).toStrictEqual({ transport: 'udp', address: alice.address, port: alice.port });
  });
});

test('messages a server does not expect are counted and ignored (§6.6)', () => {
  const { manager } = rig();
  const cookie = helloCookie(manager, alice);
  for (const m of [
    { type: MessageType.Cookie, nonce: new Uint8Array(8), cookie, serverTimeMs: NOW },
    { type: MessageType.Joined, channels: [], expiresAtMs: NOW },
    { type: MessageType.Error, code: ErrorCode.Internal, reason: 'x' },
  ] as ControlMessage[]) {
    expect(manager.handle(m, from(alice), NOW)).toEqual({ replies: [], commands: [], events: [] });
  }
  expect(manager.counters.unexpectedMessage).toBe(3);
});
