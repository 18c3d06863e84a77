/**
 * Stateless address-validation cookies.
 *
 * A server answers HELLO with a cookie bound to the client's address and port
 * and keeps no state about that client: a later JOIN/LEAVE/ACK carrying the
 * cookie proves the client can receive at that address (DESIGN.md, "Wire").
 *
 * Layout (33 bytes, opaque to clients, read only by servers of one deployment):
 *
 *   offset len  field
 *   0      8    expiry, Unix ms, unsigned big-endian
 *   8      1    key id = rotation period index mod 256
 *   9      8    issuer tag  = HMAC-SHA-256(K_p, 0x00 | expiry | key id)[0..8)
 *   17     16   binding tag = HMAC-SHA-256(K_p, 0x01 | expiry | key id |
 *                                          address(16) | zone len | zone | port(2))[0..16)
 *
 * Two tags instead of one so that a refusal can say *why*: an issuer tag that
 * checks out means we did issue this cookie, so a bad binding tag means it was
 * replayed from another address/port (NAT rebinding or spoofing), not forged.
 * The binding tag alone carries the security (128-bit truncated HMAC).
 *
 * Keys rotate every `rotationPeriodMs` of the injected clock. The key of
 * period p is K_p = HMAC-SHA-256(master, "rqcast cookie key v1" | u64be(p)),
 * so every server holding the same master secret and period length (relays)
 * derives the same keys and verifies the others' cookies. A cookie is accepted
 * under the current period's key or the previous one's, never older: since a
 * cookie's lifetime may not exceed one period, key rotation never refuses a
 * cookie that has not expired.
 *
 * Addresses are normalised to 16 bytes, IPv4 as IPv4-mapped IPv6, so
 * "192.0.2.1" and "::ffff:192.0.2.1" (what a dual-stack socket reports) are
 * the same client. An IPv6 zone id ("fe80::1%eth0") is part of the binding.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidPortError, InvalidServerConfigError, InvalidTimeError } from '../errors';
import { normalizeAddress, type NormalizedAddress } from '../support/address';

export const COOKIE_LENGTH = 33;
export const ISSUER_TAG_LENGTH = 8;
export const BINDING_TAG_LENGTH = 16;
const EXPIRY_OFFSET = 0;
const KEY_ID_OFFSET = 8;
const ISSUER_TAG_OFFSET = 9;
const BINDING_TAG_OFFSET = ISSUER_TAG_OFFSET + ISSUER_TAG_LENGTH;
const KEY_LABEL = Buffer.from('rqcast cookie key v1', 'ascii');

export type CookieRefusal =
  /** Not COOKIE_LENGTH bytes, or an expiry that cannot be a time. */
  | 'malformed'
  /** Key id is neither the current nor the previous period's (rotated out, or never ours). */
  | 'unknownKey'
  /** Issuer tag does not verify: not issued by a holder of the secret. */
  | 'forged'
  /** Issued by us, but for another address or port. */
  | 'wrongAddress'
  /** Issued by us for this address, but past its expiry. */
  | 'expired';

export type CookieVerdict = { ok: true; expiresAtMs: number } | { ok: false; reason: CookieRefusal };

export interface CookieAuthorityOptions {
  /** Secret shared by all servers that must accept each other's cookies (>= 16 bytes). Random if omitted. */
  masterSecret?: Uint8Array;
  /** Key rotation period in ms of the injected clock. Default 60 000. */
  rotationPeriodMs?: number;
  /** Cookie lifetime in ms; at most `rotationPeriodMs`. Default `rotationPeriodMs`. */
  lifetimeMs?: number;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new InvalidPortError();
}

function checkTime(what: string, t: number): void {
  if (!Number.isFinite(t)) throw new InvalidTimeError(what, t);
}

/** Issues and verifies cookies. Clock-free: every call takes `now` (Unix ms). */
export class CookieAuthority {
  readonly rotationPeriodMs: number;
  readonly lifetimeMs: number;
  private readonly master: Buffer;
  /** Derived period keys; at most a handful are alive at once. */
  private readonly keys = new Map<number, Buffer>();

  constructor(options: CookieAuthorityOptions = {}) {
    this.rotationPeriodMs = options.rotationPeriodMs ?? 60_000;
    this.lifetimeMs = options.lifetimeMs ?? this.rotationPeriodMs;
    if (!Number.isInteger(this.rotationPeriodMs) || this.rotationPeriodMs <= 0) {
      throw new InvalidServerConfigError('rotationPeriodMs must be a positive integer');
    }
    if (!Number.isInteger(this.lifetimeMs) || this.lifetimeMs <= 0 || this.lifetimeMs > this.rotationPeriodMs) {
      // A longer lifetime would let key rotation refuse cookies that are still valid.
      throw new InvalidServerConfigError('lifetimeMs must be a positive integer no larger than rotationPeriodMs');
    }
    if (options.masterSecret !== undefined && options.masterSecret.length < 16) {
      throw new InvalidServerConfigError('masterSecret must be at least 16 bytes');
    }
    this.master = Buffer.from(options.masterSecret ?? randomBytes(32));
  }

  /** A fresh cookie for (address, port), valid until now + lifetimeMs. */
  issue(address: string, port: number, now: number): Uint8Array {
    checkTime('now', now);
    checkPort(port);
    const addr = normalizeAddress(address);
    const period = this.periodOf(now);
    const key = this.keyFor(period);
    const cookie = Buffer.alloc(COOKIE_LENGTH);
    cookie.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(now)) + this.lifetimeMs), EXPIRY_OFFSET);
    cookie[KEY_ID_OFFSET] = period & 0xff;
    this.issuerTag(key, cookie).copy(cookie, ISSUER_TAG_OFFSET);
    this.bindingTag(key, cookie, addr, port).copy(cookie, BINDING_TAG_OFFSET);
    return new Uint8Array(cookie.buffer, cookie.byteOffset, cookie.length);
  }

  /** Checks a cookie presented from (address, port) at time `now`. Never throws on cookie contents. */
  verify(cookie: Uint8Array, address: string, port: number, now: number): CookieVerdict {
    checkTime('now', now);
    checkPort(port);
    const addr = normalizeAddress(address);
    if (cookie.length !== COOKIE_LENGTH) return { ok: false, reason: 'malformed' };
    const buf = Buffer.from(cookie.buffer, cookie.byteOffset, cookie.length);
    const expiry = buf.readBigUInt64BE(EXPIRY_OFFSET);
    if (expiry > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'malformed' };
    const period = this.keyPeriod(buf[KEY_ID_OFFSET], now);
    if (period === undefined) return { ok: false, reason: 'unknownKey' };
    const key = this.keyFor(period);
    if (!timingSafeEqual(this.issuerTag(key, buf), buf.subarray(ISSUER_TAG_OFFSET, BINDING_TAG_OFFSET))) {
      return { ok: false, reason: 'forged' };
    }
    if (!timingSafeEqual(this.bindingTag(key, buf, addr, port), buf.subarray(BINDING_TAG_OFFSET, COOKIE_LENGTH))) {
      return { ok: false, reason: 'wrongAddress' };
    }
    const expiresAtMs = Number(expiry);
    if (now >= expiresAtMs) return { ok: false, reason: 'expired' };
    return { ok: true, expiresAtMs };
  }

  /**
   * Until when (Unix ms) a cookie that verify() accepted at `now` stays
   * signed with a key verify() accepts: its key's period and the next one.
   * With the cookie's own expiry, what a caller that remembers a verified
   * cookie (ClientManager, per session) needs to accept the same bytes from
   * the same address and port again without computing its tags.
   */
  keyAcceptedUntilMs(cookie: Uint8Array, now: number): number {
    checkTime('now', now);
    const period = this.keyPeriod(cookie[KEY_ID_OFFSET], now);
    // A key verify() does not know: accepted until no later than now.
    return period === undefined ? now : (period + 2) * this.rotationPeriodMs;
  }

  private periodOf(now: number): number {
    return Math.floor(now / this.rotationPeriodMs);
  }

  /** The period of the key a cookie's key id names at `now`: the current one or the one before, else undefined (verify refuses the cookie). */
  private keyPeriod(keyId: number, now: number): number | undefined {
    const current = this.periodOf(now);
    if (keyId === (current & 0xff)) return current;
    if (keyId === ((current - 1) & 0xff)) return current - 1;
    return undefined;
  }

  private keyFor(period: number): Buffer {
    let key = this.keys.get(period);
    if (key === undefined) {
      const idx = Buffer.alloc(8);
      idx.writeBigInt64BE(BigInt(period));
      key = createHmac('sha256', this.master).update(KEY_LABEL).update(idx).digest();
      if (this.keys.size >= 4) {
        // Keep only keys near the newest period; clocks only move forward in practice.
        for (const p of this.keys.keys()) if (p < period - 1) this.keys.delete(p);
      }
      this.keys.set(period, key);
    }
    return key;
  }

  private issuerTag(key: Buffer, cookie: Buffer): Buffer {
    return createHmac('sha256', key)
      .update(Buffer.of(0x00))
      .update(cookie.subarray(EXPIRY_OFFSET, ISSUER_TAG_OFFSET))
      .digest()
      .subarray(0, ISSUER_TAG_LENGTH);
  }

  private bindingTag(key: Buffer, cookie: Buffer, addr: NormalizedAddress, port: number): Buffer {
    const zone = Buffer.from(addr.zone, 'utf8');
    const tail = Buffer.alloc(2);
    tail.writeUInt16BE(port);
    return createHmac('sha256', key)
      .update(Buffer.of(0x01))
      .update(cookie.subarray(EXPIRY_OFFSET, ISSUER_TAG_OFFSET))
      .update(addr.bytes)
      .update(Buffer.of(zone.length))
      .update(zone)
      .update(tail)
      .digest()
      .subarray(0, BINDING_TAG_LENGTH);
  }
}
