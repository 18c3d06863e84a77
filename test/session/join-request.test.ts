import fc from 'fast-check';
import { ErrorCode, MessageType, type TimeValue } from '../../lib/protocol/messages';
import { staticChannelDirectory } from '../../lib/session/channel-directory';
import { asciiSafe, checkJoin, expiryOf, isJoinRefusal } from '../../lib/session/join-request';

const NOW = 1_764_072_000_000;

describe('expiryOf (docs/PROTOCOL.md §6.2)', () => {
  test('property: in the future, never past now + maxTtlMs, the asked time when it fits', () => {
    const until = fc.oneof(
      fc.integer({ min: -10_000, max: 10_000 }).map((ms): TimeValue => ({ kind: 'duration', ms })),
      fc.integer({ min: -10_000, max: 10_000 }).map((d): TimeValue => ({ kind: 'absolute', unixMs: NOW + d })),
    );
    fc.assert(
      fc.property(until, fc.integer({ min: 1, max: 5_000 }), (u, maxTtl) => {
        const asked = u.kind === 'duration' ? NOW + u.ms : u.unixMs;
        const got = expiryOf(u, NOW, maxTtl);
        if (asked <= NOW) expect(got).toBeUndefined();
        else expect(got).toBe(Math.min(asked, NOW + maxTtl));
      }),
    );
  });

  test.each([Number.NaN, Number.POSITIVE_INFINITY])('a duration of %p is not a time', (ms) => {
    expect(expiryOf({ kind: 'duration', ms }, NOW, 1000)).toBeUndefined();
    expect(expiryOf({ kind: 'absolute', unixMs: ms }, NOW, 1000)).toBeUndefined();
  });
});

test('checkJoin resolves names to TSIs in JOIN order', () => {
  const grant = checkJoin(
    { type: MessageType.Join, cookie: new Uint8Array(33), channels: ['y', 'x'], until: { kind: 'duration', ms: 5 }, ack: false },
    NOW,
    { channels: staticChannelDirectory([{ name: 'x', tsi: 1 }, { name: 'y', tsi: 9 }]), maxTtlMs: 1000, maxChannels: 2 },
  );
  if (isJoinRefusal(grant)) throw new Error(grant.reason);
  expect(Array.from(grant.wanted)).toEqual([['y', 9], ['x', 1]]);
  expect(grant.expiresAtMs).toBe(NOW + 5);
});

test('checkJoin: the first unknown name in JOIN order is the one named', () => {
  const r = checkJoin(
    { type: MessageType.Join, cookie: new Uint8Array(33), channels: ['x', 'q', 'r'], until: { kind: 'duration', ms: 5 }, ack: false },
    NOW,
    { channels: staticChannelDirectory([{ name: 'x', tsi: 1 }]), maxTtlMs: 1000, maxChannels: 3 },
  );
  expect(r).toEqual({ code: ErrorCode.UnknownChannel, reason: 'unknown channel q', counter: 'joinUnknownChannel' });
});

test('asciiSafe: printable ASCII, at most 64 characters', () => {
  expect(asciiSafe('caf\u00e9\u0000\x7f!')).toBe('caf???!');
  expect(asciiSafe('x'.repeat(100))).toHaveLength(64);
});

describe('checkJoin and the multicast bitmap (§6.2)', () => {
  const directory = staticChannelDirectory([
    { name: 'g', tsi: 1, multicast: { group: '239.0.0.1', port: 9000 } },
    { name: 'u', tsi: 2 },
  ]);
  const limits = { channels: directory, maxTtlMs: 1000, maxChannels: 4 };
  const msg = (channels: string[], multicast?: string[]) =>
    ({ type: MessageType.Join, cookie: new Uint8Array(33), channels, until: { kind: 'duration', ms: 5 }, ack: false, multicast }) as const;

  test('a bit on a channel with a group: received from the group; every group is listed for JOINED', () => {
    const grant = checkJoin(msg(['u', 'g'], ['g']), NOW, limits);
    if (isJoinRefusal(grant)) throw new Error(grant.reason);
    expect(Array.from(grant.viaGroup)).toEqual(['g']);
    expect(Array.from(grant.groups)).toEqual([['g', { group: '239.0.0.1', port: 9000 }]]);
    expect(grant.bitsWithoutGroup).toBe(0);
  });

  test('a bit on a channel without a group is counted and ignored, never refused', () => {
    const grant = checkJoin(msg(['u', 'g'], ['u']), NOW, limits);
    if (isJoinRefusal(grant)) throw new Error(grant.reason);
    expect(grant.viaGroup.size).toBe(0);
    expect(grant.bitsWithoutGroup).toBe(1);
  });

  test('no bitmap, or names the JOIN does not list: nothing from the group', () => {
    for (const m of [msg(['g']), msg(['u'], ['g']), msg(['g'], ['nope'])]) {
      const grant = checkJoin(m, NOW, limits);
      if (isJoinRefusal(grant)) throw new Error(grant.reason);
      expect(grant.viaGroup.size).toBe(0);
      expect(grant.bitsWithoutGroup).toBe(0);
    }
  });

  test('the bitmap does not change which JOINs are refused, nor why', () => {
    expect(checkJoin(msg(['g', 'x'], ['g']), NOW, limits)).toEqual({ code: ErrorCode.UnknownChannel, reason: 'unknown channel x', counter: 'joinUnknownChannel' });
  });
});
