import { randomBytes } from 'node:crypto';
import {
  BINDING_TAG_LENGTH,
  COOKIE_LENGTH,
  CookieAuthority,
  ISSUER_TAG_LENGTH,
} from '../../lib/session/cookie';
import { InvalidServerConfigError } from '../../lib/errors';

const SECRET = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
const PERIOD = 60_000;
// A time well inside a period, far from 0 so that period - 1 exists.
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % PERIOD) + 1_000;

function authority(overrides: Partial<ConstructorParameters<typeof CookieAuthority>[0]> = {}): CookieAuthority {
  return new CookieAuthority({ masterSecret: SECRET, rotationPeriodMs: PERIOD, lifetimeMs: 30_000, ...overrides });
}

describe('CookieAuthority', () => {
  test('layout is COOKIE_LENGTH bytes: expiry, key id, issuer tag, binding tag', () => {
    const c = authority().issue('192.0.2.1', 4000, T0);
    expect(c.length).toBe(COOKIE_LENGTH);
    expect(COOKIE_LENGTH).toBe(8 + 1 + ISSUER_TAG_LENGTH + BINDING_TAG_LENGTH);
    expect(Number(Buffer.from(c).readBigUInt64BE(0))).toBe(T0 + 30_000);
    expect(c[8]).toBe(Math.floor(T0 / PERIOD) & 0xff);
  });

  test('a fresh cookie verifies from the same address and port', () => {
    const a = authority();
    const c = a.issue('192.0.2.1', 4000, T0);
    expect(a.verify(c, '192.0.2.1', 4000, T0 + 29_999)).toEqual({ ok: true, expiresAtMs: T0 + 30_000 });
  });

  test('IPv4 and its IPv4-mapped IPv6 form are the same client', () => {
    const a = authority();
    const c = a.issue('192.0.2.1', 4000, T0);
    expect(a.verify(c, '::ffff:192.0.2.1', 4000, T0).ok).toBe(true);
  });

  test('keyAcceptedUntilMs: the end of the period after its key\'s, which is when verify stops knowing the key', () => {
    const a = authority({ lifetimeMs: PERIOD });
    const p = Math.floor(T0 / PERIOD);
    const c = a.issue('192.0.2.1', 4000, T0);
    expect(a.keyAcceptedUntilMs(c, T0)).toBe((p + 2) * PERIOD);
    // Asked in the next period, the key is the previous one: the same answer.
    expect(a.keyAcceptedUntilMs(c, (p + 1) * PERIOD + 5)).toBe((p + 2) * PERIOD);
    // verify agrees on both sides of it (expiry aside: a cookie lives at most one period).
    const late = a.issue('192.0.2.1', 4000, (p + 1) * PERIOD - 1);
    expect(a.verify(late, '192.0.2.1', 4000, (p + 2) * PERIOD - 2).ok).toBe(true);
    expect(a.keyAcceptedUntilMs(late, (p + 2) * PERIOD - 2)).toBe((p + 2) * PERIOD);
  });

  test('expired at and after its expiry', () => {
    const a = authority();
    const c = a.issue('192.0.2.1', 4000, T0);
    expect(a.verify(c, '192.0.2.1', 4000, T0 + 30_000)).toEqual({ ok: false, reason: 'expired' });
    expect(a.verify(c, '192.0.2.1', 4000, T0 + 45_000)).toEqual({ ok: false, reason: 'expired' });
  });

  test('wrong address or port', () => {
    const a = authority();
    const c = a.issue('192.0.2.1', 4000, T0);
    expect(a.verify(c, '192.0.2.2', 4000, T0)).toEqual({ ok: false, reason: 'wrongAddress' });
    expect(a.verify(c, '192.0.2.1', 4001, T0)).toEqual({ ok: false, reason: 'wrongAddress' });
    expect(a.verify(c, '::1', 4000, T0)).toEqual({ ok: false, reason: 'wrongAddress' });
    const v6 = a.issue('fe80::1%eth0', 5, T0);
    expect(a.verify(v6, 'fe80::1%eth0', 5, T0).ok).toBe(true);
    expect(a.verify(v6, 'fe80::1%eth1', 5, T0)).toEqual({ ok: false, reason: 'wrongAddress' });
    expect(a.verify(v6, 'fe80::1', 5, T0)).toEqual({ ok: false, reason: 'wrongAddress' });
  });

  test('every single bit flip is refused', () => {
    const a = authority();
    const c = a.issue('198.51.100.7', 65535, T0);
    const reasons = new Set<string>();
    for (let bit = 0; bit < COOKIE_LENGTH * 8; bit++) {
      const forged = Uint8Array.from(c);
      forged[bit >> 3] ^= 1 << (bit & 7);
      const v = a.verify(forged, '198.51.100.7', 65535, T0);
      expect(v.ok).toBe(false);
      if (!v.ok) {
        reasons.add(v.reason);
        const byte = bit >> 3;
        // Flips in the expiry, the key id's tag or the issuer tag are forgeries (or an
        // unknown key / impossible expiry); flips in the binding tag look like another address.
        if (byte >= 17) expect(v.reason).toBe('wrongAddress');
        else if (byte >= 9) expect(v.reason).toBe('forged');
        else if (byte === 8) expect(['unknownKey', 'forged']).toContain(v.reason);
        else expect(['forged', 'malformed']).toContain(v.reason);
      }
    }
    expect(reasons).toEqual(new Set(['forged', 'wrongAddress', 'unknownKey', 'malformed']));
  });

  test('an expiry pushed into the future is a forgery, not a longer cookie', () => {
    const a = authority();
    const c = Buffer.from(a.issue('192.0.2.1', 4000, T0));
    c.writeBigUInt64BE(BigInt(T0 + 10 * PERIOD), 0);
    expect(a.verify(c, '192.0.2.1', 4000, T0 + 40_000)).toEqual({ ok: false, reason: 'forged' });
  });

  test('wrong length is malformed', () => {
    const a = authority();
    const c = a.issue('192.0.2.1', 4000, T0);
    expect(a.verify(c.subarray(0, COOKIE_LENGTH - 1), '192.0.2.1', 4000, T0)).toEqual({ ok: false, reason: 'malformed' });
    expect(a.verify(new Uint8Array(0), '192.0.2.1', 4000, T0)).toEqual({ ok: false, reason: 'malformed' });
    const longer = new Uint8Array(COOKIE_LENGTH + 1);
    longer.set(c);
    expect(a.verify(longer, '192.0.2.1', 4000, T0)).toEqual({ ok: false, reason: 'malformed' });
  });

  test('random bytes of the right length are refused', () => {
    const a = authority();
    for (let i = 0; i < 200; i++) {
      const junk = Uint8Array.from(randomBytes(COOKIE_LENGTH));
      expect(a.verify(junk, '192.0.2.1', 4000, T0).ok).toBe(false);
    }
  });

  test('a key is accepted for one more period after it rotates out, then refused', () => {
    // Lifetime = period: a cookie issued in the last millisecond of period p is
    // still valid well into period p+1, under the previous key.
    const a = authority({ lifetimeMs: PERIOD });
    const periodStart = T0 - 1_000;
    const issuedAt = periodStart + PERIOD - 1;
    const c = a.issue('192.0.2.1', 4000, issuedAt);
    expect(a.verify(c, '192.0.2.1', 4000, periodStart + PERIOD + 10).ok).toBe(true);
    expect(a.verify(c, '192.0.2.1', 4000, issuedAt + PERIOD - 1).ok).toBe(true);
    // From period p+2 on, key p is gone; the key id is checked before anything else.
    expect(a.verify(c, '192.0.2.1', 4000, periodStart + 2 * PERIOD)).toEqual({ ok: false, reason: 'unknownKey' });
  });

  test('the key check refuses a key id two periods old even when the expiry has not passed', () => {
    // Build a cookie whose expiry is far ahead but whose key id is two periods old:
    // it is refused by key id before any tag is computed.
    const a = authority();
    const c = Buffer.from(a.issue('192.0.2.1', 4000, T0));
    const now = T0 + 2 * PERIOD;
    expect(a.verify(c, '192.0.2.1', 4000, now)).toEqual({ ok: false, reason: 'unknownKey' });
    c[8] = (Math.floor(now / PERIOD) - 1) & 0xff;
    // Claimed key id is acceptable now, but the tags were made under another key.
    expect(a.verify(c, '192.0.2.1', 4000, now)).toEqual({ ok: false, reason: 'forged' });
  });

  test('two servers sharing a master secret verify each other; a different secret does not', () => {
    const origin = authority();
    const relay = authority();
    const stranger = authority({ masterSecret: Uint8Array.from(SECRET, (b) => b ^ 0xff) });
    const c = origin.issue('203.0.113.9', 1234, T0);
    expect(relay.verify(c, '203.0.113.9', 1234, T0 + 5).ok).toBe(true);
    expect(stranger.verify(c, '203.0.113.9', 1234, T0 + 5)).toEqual({ ok: false, reason: 'forged' });
    // Relay verifies across a rotation boundary too.
    const late = origin.issue('203.0.113.9', 1234, T0 - 1_000 + PERIOD - 5);
    expect(relay.verify(late, '203.0.113.9', 1234, T0 - 1_000 + PERIOD + 5).ok).toBe(true);
  });

  test('random master secrets differ between instances', () => {
    const a = new CookieAuthority();
    const b = new CookieAuthority();
    expect(b.verify(a.issue('192.0.2.1', 1, T0), '192.0.2.1', 1, T0)).toEqual({ ok: false, reason: 'forged' });
  });

  test('configuration is checked', () => {
    expect(() => new CookieAuthority({ rotationPeriodMs: 1000, lifetimeMs: 1001 })).toThrow(InvalidServerConfigError);
    expect(() => new CookieAuthority({ rotationPeriodMs: 0 })).toThrow(InvalidServerConfigError);
    expect(() => new CookieAuthority({ masterSecret: new Uint8Array(15) })).toThrow(InvalidServerConfigError);
    expect(() => new CookieAuthority({ rotationPeriodMs: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_SERVER_CONFIG' }),
    );
  });
});
