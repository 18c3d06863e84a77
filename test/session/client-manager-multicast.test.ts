/**
 * ClientManager with channels that have multicast groups (docs/PROTOCOL.md
 * §6.2, §10.10): the JOIN bitmap decides, per channel, whether the client is
 * a unicast destination; the session, its expiry and JOINED cover every
 * channel either way. Driven by messages and an injected `now`, like
 * client-manager.test.ts; every data-path command is checked against a model
 * of the replicator's destination sets.
 */
import fc from 'fast-check';
import { encodeControl } from '../../lib/protocol/control';
import { type AckMessage, type ControlMessage, ErrorCode, type JoinMessage, type JoinedMessage, MessageType, type TimeValue } from '../../lib/protocol/messages';
import { ClientManager, type Source } from '../../lib/session/client-manager';
import { type ChannelInfo, staticChannelDirectory } from '../../lib/session/channel-directory';
import { CookieAuthority } from '../../lib/session/cookie';
import type { ManagerOutput, ReplicationCommand } from '../../lib/session/manager-output';
import { type Peer, peerKey, udpPeer } from '../../lib/session/peer';

const NOW = 1_764_072_000_000;
const SECRET = new Uint8Array(32).fill(9);
/** a and b have groups (IPv4 with an announced source, IPv6 without); c has none. */
const CHANNELS: ChannelInfo[] = [
  { name: 'a', tsi: 1, multicast: { group: '239.1.2.3', port: 5000, source: '192.0.2.100' } },
  { name: 'b', tsi: 2, multicast: { group: 'ff3e::8000:1', port: 5001 } },
  { name: 'c', tsi: 3 },
];
const alice = udpPeer('192.0.2.1', 5000);
const bob = udpPeer('2001:db8::2', 6000);

function rig(): ClientManager {
  return new ClientManager({
    cookies: new CookieAuthority({ masterSecret: SECRET, rotationPeriodMs: 600_000, lifetimeMs: 600_000 }),
    channels: staticChannelDirectory(CHANNELS),
    encodedSize: (m) => encodeControl(m).length,
    maxTtlMs: 60_000,
  });
}

function from(peer: Peer): Source {
  return { ...peer, bytesReceived: 200 };
}

function cookieOf(manager: ClientManager, peer: Peer, now = NOW): Uint8Array {
  const m = manager.handle({ type: MessageType.Hello, nonce: new Uint8Array(8) }, { ...peer, bytesReceived: 128 }, now).replies[0].message;
  if (m.type !== MessageType.Cookie) throw new Error('expected COOKIE');
  return m.cookie;
}

function join(cookie: Uint8Array, channels: string[], multicast?: string[], until: TimeValue = { kind: 'duration', ms: 10_000 }, ack = false): JoinMessage {
  const m: JoinMessage = { type: MessageType.Join, cookie, channels, until, ack };
  if (multicast !== undefined) m.multicast = multicast;
  return m;
}

function joined(out: ManagerOutput): JoinedMessage {
  expect(out.replies).toHaveLength(1);
  const m = out.replies[0].message;
  if (m.type !== MessageType.Joined) throw new Error(`expected JOINED, got ${JSON.stringify(m)}`);
  return m;
}

function summary(commands: ReplicationCommand[]): string[] {
  return commands.map((c) =>
    c.kind === 'sendFresh'
      ? `${c.kind} ${c.channel}/${c.tsi} ${c.destination.address}:${c.destination.port} [${c.lost.join(',')}]`
      : c.kind === 'need'
      ? `${c.kind} ${c.channel}/${c.tsi} ${c.member.address}:${c.member.port}`
      : `${c.kind} ${c.channel}/${c.tsi} ${c.destinations.map((d) => `${d.address}:${d.port}`).join(' ')}`,
  );
}

/** The replicator's destination sets, as the commands build them; adding a present or removing an absent one fails the test. */
class DestinationModel {
  readonly byTsi = new Map<number, Set<string>>();
  apply(commands: ReplicationCommand[]): void {
    for (const c of commands) {
      if (c.kind === 'sendFresh' || c.kind === 'need') continue;
      let set = this.byTsi.get(c.tsi);
      if (!set) this.byTsi.set(c.tsi, (set = new Set()));
      for (const d of c.destinations) {
        const k = peerKey(d);
        if (c.kind === 'addDestinations') {
          expect(set.has(k)).toBe(false);
          set.add(k);
        } else {
          expect(set.has(k)).toBe(true);
          set.delete(k);
        }
      }
    }
  }
  of(tsi: number): string[] {
    return Array.from(this.byTsi.get(tsi) ?? []).sort();
  }
}

describe('JOIN with the multicast bitmap (§6.2)', () => {
  test('a flagged channel with a group: on the session and announced, but no unicast destination', () => {
    const manager = rig();
    const cookie = cookieOf(manager, alice);
    const out = manager.handle(join(cookie, ['a', 'b', 'c'], ['a']), from(alice), NOW);
    expect(joined(out)).toEqual({
      type: MessageType.Joined,
      channels: [
        { name: 'a', tsi: 1, multicast: { group: '239.1.2.3', port: 5000, source: '192.0.2.100', unicast: false } },
        { name: 'b', tsi: 2, multicast: { group: 'ff3e::8000:1', port: 5001, unicast: true } },
        { name: 'c', tsi: 3 },
      ],
      expiresAtMs: NOW + 10_000,
    });
    expect(summary(out.commands)).toEqual(['addDestinations b/2 192.0.2.1:5000', 'addDestinations c/3 192.0.2.1:5000']);
    expect(out.events).toEqual([{ kind: 'joined', client: alice, channels: ['a', 'b', 'c'], expiresAtMs: NOW + 10_000, ack: false, multicast: ['a'] }]);
    expect(manager.session(alice)).toEqual({
      client: alice,
      channels: [
        { name: 'a', tsi: 1 },
        { name: 'b', tsi: 2 },
        { name: 'c', tsi: 3 },
      ],
      expiresAtMs: NOW + 10_000,
      ack: false,
      multicast: ['a'],
    });
    expect(manager.members('a')).toEqual([]);
    expect(manager.members('b')).toEqual([alice]);
    expect(manager.counters).toMatchObject({ joinMulticastChannels: 1, joinMulticastNoGroup: 0, sessionsStarted: 1 });
  });

  test('without a bitmap, a channel with a group is a unicast channel whose group JOINED still announces (UNICAST set)', () => {
    const manager = rig();
    const out = manager.handle(join(cookieOf(manager, alice), ['a']), from(alice), NOW);
    expect(joined(out).channels).toEqual([{ name: 'a', tsi: 1, multicast: { group: '239.1.2.3', port: 5000, source: '192.0.2.100', unicast: true } }]);
    expect(summary(out.commands)).toEqual(['addDestinations a/1 192.0.2.1:5000']);
    expect(out.events[0]).not.toHaveProperty('multicast');
    expect(manager.session(alice)).not.toHaveProperty('multicast');
  });

  test('JOINED without any channel that has a group carries no group entry (the first version, byte for byte)', () => {
    const manager = rig();
    const withBits = joined(manager.handle(join(cookieOf(manager, alice), ['c'], ['c']), from(alice), NOW));
    expect(withBits.channels).toEqual([{ name: 'c', tsi: 3 }]);
    expect(encodeControl(withBits)).toEqual(encodeControl({ type: MessageType.Joined, channels: [{ name: 'c', tsi: 3 }], expiresAtMs: NOW + 10_000 }));
  });

  test('hostile: bits for channels without a group are accepted and change nothing but a counter', () => {
    const plain = rig();
    const flagged = rig();
    const p = plain.handle(join(cookieOf(plain, alice), ['c', 'a']), from(alice), NOW);
    const f = flagged.handle(join(cookieOf(flagged, alice), ['c', 'a'], ['c']), from(alice), NOW);
    expect(f).toEqual(p);
    expect(flagged.session(alice)).toEqual(plain.session(alice));
    expect(flagged.counters).toEqual({ ...plain.counters, joinMulticastNoGroup: 1 });
  });

  test('an empty bitmap (flag set, no bit) is no bitmap', () => {
    const plain = rig();
    const empty = rig();
    const p = plain.handle(join(cookieOf(plain, alice), ['a', 'c']), from(alice), NOW);
    const e = empty.handle(join(cookieOf(empty, alice), ['a', 'c'], []), from(alice), NOW);
    expect(e).toEqual(p);
    expect(empty.counters).toEqual(plain.counters);
  });

  test('in-process callers: names in the bitmap that the JOIN does not list ask for nothing', () => {
    const manager = rig();
    const out = manager.handle(join(cookieOf(manager, alice), ['c'], ['a', 'nope']), from(alice), NOW);
    expect(joined(out).channels).toEqual([{ name: 'c', tsi: 3 }]);
    expect(summary(out.commands)).toEqual(['addDestinations c/3 192.0.2.1:5000']);
    expect(manager.counters).toMatchObject({ joinMulticastChannels: 0, joinMulticastNoGroup: 0 });
  });

  test('a refused JOIN with a bitmap changes nothing: the client stays a unicast destination', () => {
    const manager = rig();
    const cookie = cookieOf(manager, alice);
    manager.handle(join(cookie, ['a']), from(alice), NOW);
    const out = manager.handle(join(cookie, ['a'], ['a'], { kind: 'duration', ms: 0 }), from(alice), NOW + 1);
    expect(out.replies[0].message).toMatchObject({ type: MessageType.Error, code: ErrorCode.BadTime });
    expect(out.commands).toEqual([]);
    expect(manager.members('a')).toEqual([alice]);
    expect(manager.session(alice)).not.toHaveProperty('multicast');
    expect(manager.counters.joinMulticastChannels).toBe(0);
  });

  test('two clients on one channel: the one on the group is no destination, the other is', () => {
    const manager = rig();
    manager.handle(join(cookieOf(manager, alice), ['a'], ['a']), from(alice), NOW);
    const out = manager.handle(join(cookieOf(manager, bob), ['a']), from(bob), NOW);
    expect(summary(out.commands)).toEqual(['addDestinations a/1 2001:db8::2:6000']);
    expect(manager.members('a')).toEqual([bob]);
    expect(manager.sessionCount).toBe(2);
  });
});

describe('renewals that flip a bit (the client fallback of §10.10)', () => {
  test('clearing the bit adds the unicast destination of that channel only; setting it again removes it', () => {
    const manager = rig();
    const cookie = cookieOf(manager, alice);
    manager.handle(join(cookie, ['a', 'b', 'c'], ['a', 'b']), from(alice), NOW);
    expect(manager.members('a')).toEqual([]);
    expect(manager.members('b')).toEqual([]);

    const fallback = manager.handle(join(cookie, ['a', 'b', 'c'], ['b']), from(alice), NOW + 1_000);
    expect(summary(fallback.commands)).toEqual(['addDestinations a/1 192.0.2.1:5000']);
    expect(joined(fallback).channels.map((c) => [c.name, c.multicast?.unicast])).toEqual([
      ['a', true],
      ['b', false],
      ['c', undefined],
    ]);
    expect(fallback.events).toEqual([
      { kind: 'renewed', client: alice, channels: ['a', 'b', 'c'], expiresAtMs: NOW + 11_000, ack: false, multicast: ['b'] },
    ]);
    expect(manager.counters).toMatchObject({ multicastToUnicast: 1, unicastToMulticast: 0, sessionsRenewed: 1 });

    const back = manager.handle(join(cookie, ['a', 'b', 'c'], ['a', 'b']), from(alice), NOW + 2_000);
    expect(summary(back.commands)).toEqual(['removeDestinations a/1 192.0.2.1:5000']);
    expect(manager.counters).toMatchObject({ multicastToUnicast: 1, unicastToMulticast: 1 });
  });

  test('a renewal with the same bits sends no command', () => {
    const manager = rig();
    const cookie = cookieOf(manager, alice);
    manager.handle(join(cookie, ['a', 'c'], ['a']), from(alice), NOW);
    const out = manager.handle(join(cookie, ['a', 'c'], ['a']), from(alice), NOW + 1);
    expect(out.commands).toEqual([]);
    expect(manager.counters).toMatchObject({ multicastToUnicast: 0, unicastToMulticast: 0, joinMulticastChannels: 2 });
  });

  test('flipping the bit 20 times alternates one add and one remove, and ends where it started', () => {
    const manager = rig();
    const cookie = cookieOf(manager, alice);
    const model = new DestinationModel();
    model.apply(manager.handle(join(cookie, ['a', 'c'], ['a']), from(alice), NOW).commands);
    for (let i = 1; i <= 20; i++) {
      const out = manager.handle(join(cookie, ['a', 'c'], i % 2 === 1 ? [] : ['a']), from(alice), NOW + i);
      expect(summary(out.commands)).toEqual([`${i % 2 === 1 ? 'add' : 'remove'}Destinations a/1 192.0.2.1:5000`]);
      model.apply(out.commands);
    }
    expect(model.of(1)).toEqual([]);
    expect(model.of(3)).toEqual([peerKey(alice)]);
    expect(manager.counters).toMatchObject({ multicastToUnicast: 10, unicastToMulticast: 10 });
  });

  test('dropping or adding a channel received from its group sends no command for it', () => {
    const manager = rig();
    const cookie = cookieOf(manager, alice);
    manager.handle(join(cookie, ['a', 'c'], ['a']), from(alice), NOW);
    expect(manager.handle(join(cookie, ['c']), from(alice), NOW + 1).commands).toEqual([]);
    expect(manager.handle(join(cookie, ['c', 'b'], ['b']), from(alice), NOW + 2).commands).toEqual([]);
    // Not a flip: the channel was not on the session before.
    expect(manager.counters).toMatchObject({ multicastToUnicast: 0, unicastToMulticast: 0 });
  });
});

describe('the end of a session removes only the unicast destinations that exist', () => {
  function onAllThree(manager: ClientManager): Uint8Array {
    const cookie = cookieOf(manager, alice);
    manager.handle(join(cookie, ['a', 'b', 'c'], ['a'], { kind: 'duration', ms: 1_500 }), from(alice), NOW);
    return cookie;
  }

  test('expiry', () => {
    const manager = rig();
    onAllThree(manager);
    const out = manager.tick(NOW + 1_500);
    expect(summary(out.commands)).toEqual(['removeDestinations b/2 192.0.2.1:5000', 'removeDestinations c/3 192.0.2.1:5000']);
    expect(out.events).toEqual([{ kind: 'expired', client: alice, channels: ['a', 'b', 'c'] }]);
    expect(manager.sessionCount).toBe(0);
  });

  test('LEAVE', () => {
    const manager = rig();
    const cookie = onAllThree(manager);
    const out = manager.handle({ type: MessageType.Leave, cookie }, from(alice), NOW + 1);
    expect(summary(out.commands)).toEqual(['removeDestinations b/2 192.0.2.1:5000', 'removeDestinations c/3 192.0.2.1:5000']);
  });

  test('a JOIN with no channels', () => {
    const manager = rig();
    const cookie = onAllThree(manager);
    const out = manager.handle(join(cookie, [], []), from(alice), NOW + 1);
    expect(summary(out.commands)).toEqual(['removeDestinations b/2 192.0.2.1:5000', 'removeDestinations c/3 192.0.2.1:5000']);
  });

  test('a session on groups only ends without any command', () => {
    const manager = rig();
    manager.handle(join(cookieOf(manager, alice), ['a', 'b'], ['a', 'b'], { kind: 'duration', ms: 100 }), from(alice), NOW);
    const out = manager.tick(NOW + 100);
    expect(out.commands).toEqual([]);
    expect(out.events).toEqual([{ kind: 'expired', client: alice, channels: ['a', 'b'] }]);
  });
});

describe('ACKs are for unicast streams only', () => {
  const ack = (cookie: Uint8Array, tsi: number): AckMessage => ({ type: MessageType.Ack, cookie, tsi, windowStart: 100, windowEnd: 103, received: [] });

  test('an ACK for a channel received from its group is ignored and counted; after the fallback it is answered', () => {
    const manager = new ClientManager({
      cookies: new CookieAuthority({ masterSecret: SECRET }),
      channels: staticChannelDirectory(CHANNELS),
      encodedSize: (m: ControlMessage) => encodeControl(m).length,
      sentEnd: () => 1_000,
    });
    const cookie = cookieOf(manager, alice);
    manager.handle(join(cookie, ['a', 'c'], ['a'], undefined, true), from(alice), NOW);
    expect(manager.handle(ack(cookie, 1), from(alice), NOW + 1)).toEqual({ replies: [], commands: [], events: [] });
    expect(manager.counters).toMatchObject({ ackGroupChannel: 1, freshSymbolsRequested: 0 });
    expect(summary(manager.handle(ack(cookie, 3), from(alice), NOW + 2).commands)).toEqual(['sendFresh c/3 192.0.2.1:5000 [100,101,102]']);
    manager.handle(join(cookie, ['a', 'c'], [], undefined, true), from(alice), NOW + 3);
    expect(summary(manager.handle(ack(cookie, 1), from(alice), NOW + 4).commands)).toEqual(['sendFresh a/1 192.0.2.1:5000 [100,101,102]']);
  });

  test('going to the group forgets what was answered on the unicast stream', () => {
    const manager = new ClientManager({
      cookies: new CookieAuthority({ masterSecret: SECRET }),
      channels: staticChannelDirectory(CHANNELS),
      encodedSize: (m: ControlMessage) => encodeControl(m).length,
    });
    const cookie = cookieOf(manager, alice);
    manager.handle(join(cookie, ['a'], [], undefined, true), from(alice), NOW);
    expect(summary(manager.handle(ack(cookie, 1), from(alice), NOW + 1).commands)).toEqual(['sendFresh a/1 192.0.2.1:5000 [100,101,102]']);
    manager.handle(join(cookie, ['a'], ['a'], undefined, true), from(alice), NOW + 2);
    manager.handle(join(cookie, ['a'], [], undefined, true), from(alice), NOW + 3);
    // The same losses again: a new unicast stream membership, answered afresh.
    expect(summary(manager.handle(ack(cookie, 1), from(alice), NOW + 4).commands)).toEqual(['sendFresh a/1 192.0.2.1:5000 [100,101,102]']);
  });
});

test('property: after any sequence of JOINs, LEAVEs and ticks, the destinations are exactly the unicast members', () => {
  const peers = [alice, bob, udpPeer('192.0.2.3', 7000)];
  const names = CHANNELS.map((c) => c.name);
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('join' as const),
      peer: fc.integer({ min: 0, max: peers.length - 1 }),
      channels: fc.subarray(names),
      bits: fc.subarray(names),
      ms: fc.integer({ min: 1, max: 3_000 }),
    }),
    fc.record({ kind: fc.constant('leave' as const), peer: fc.integer({ min: 0, max: peers.length - 1 }) }),
    fc.record({ kind: fc.constant('tick' as const), after: fc.integer({ min: 0, max: 2_000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const manager = rig();
      const model = new DestinationModel();
      let now = NOW;
      for (const o of ops) {
        if (o.kind === 'tick') {
          now += o.after;
          model.apply(manager.tick(now).commands);
          continue;
        }
        const peer = peers[o.peer];
        const cookie = cookieOf(manager, peer, now);
        if (o.kind === 'leave') {
          model.apply(manager.handle({ type: MessageType.Leave, cookie }, from(peer), now).commands);
          // A LEAVE spends its cookie, and a cookie issued in the same ms would be the same bytes.
          now += 1;
          continue;
        }
        const bits = o.bits.filter((n) => o.channels.includes(n));
        const out = manager.handle(join(cookie, o.channels, bits, { kind: 'duration', ms: o.ms }), from(peer), now);
        model.apply(out.commands);
        if (o.channels.length === 0) now += 1; // an empty JOIN spends its cookie, as LEAVE does
        const m = joined(out);
        for (const c of m.channels) {
          const info = CHANNELS.find((x) => x.name === c.name) as ChannelInfo;
          if (info.multicast) expect(c.multicast).toEqual({ ...info.multicast, unicast: !bits.includes(c.name) });
          else expect(c.multicast).toBeUndefined();
        }
      }
      for (const c of CHANNELS) {
        const expected = peers
          .filter((p) => {
            const s = manager.session(p);
            return s !== undefined && s.channels.some((x) => x.name === c.name) && !(s.multicast ?? []).includes(c.name);
          })
          .map(peerKey)
          .sort();
        expect(model.of(c.tsi)).toEqual(expected);
        expect(manager.members(c.name).map(peerKey).sort()).toEqual(expected);
      }
    }),
  );
});
