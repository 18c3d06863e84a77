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
