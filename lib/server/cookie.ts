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
import { InvalidAddressError, InvalidPortError, InvalidServerConfigError, InvalidTimeError } from './errors';

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

/** Normalised peer address: 16 address bytes plus an optional IPv6 zone. */
export interface NormalizedAddress {
  bytes: Uint8Array;
  zone: string;
  /** Canonical text form, usable as a map key ("192.0.2.1", "2001:db8:0:0:0:0:0:1%eth0"). */
  text: string;
}

function parseIPv4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    out.push(v);
  }
  return out;
}

function parseIPv6(s: string): number[] | undefined {
  // Optional dotted-quad tail (RFC 4291 §2.2 form 3): "::ffff:192.0.2.1".
  let tail: number[] = [];
  if (s.includes('.')) {
    const lastColon = s.lastIndexOf(':');
    if (lastColon < 0) return undefined;
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    const prefix = s.slice(0, lastColon + 1);
    s = prefix.endsWith('::') ? prefix : prefix.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0]);
  if (!head) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const rest = parseGroups(halves[1]);
    if (!rest) return undefined;
    const fill = 8 - head.length - rest.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  } else {
    groups = [...head, ...tail];
  }
  if (groups.length !== 8) return undefined;
  return groups;
}

/** Parses an IPv4/IPv6 literal into its normalised form. Throws InvalidAddressError. */
export function normalizeAddress(address: string): NormalizedAddress {
  const bytes = new Uint8Array(16);
  const v4 = parseIPv4(address);
  if (v4) {
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    bytes.set(v4, 12);
    return { bytes, zone: '', text: v4.join('.') };
  }
  const pct = address.indexOf('%');
  const zone = pct >= 0 ? address.slice(pct + 1) : '';
  const body = pct >= 0 ? address.slice(0, pct) : address;
  if (pct >= 0 && (zone.length === 0 || Buffer.byteLength(zone, 'utf8') > 255)) throw new InvalidAddressError();
  const groups = parseIPv6(body);
  if (!groups) throw new InvalidAddressError();
  for (let i = 0; i < 8; i++) {
    bytes[2 * i] = groups[i] >> 8;
    bytes[2 * i + 1] = groups[i] & 0xff;
  }
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  const text = mapped && zone === ''
    ? `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
    : groups.map((g) => g.toString(16)).join(':') + (zone ? `%${zone}` : '');
  return { bytes, zone, text };
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
    const current = this.periodOf(now);
    const keyId = buf[KEY_ID_OFFSET];
    let period: number;
    if (keyId === (current & 0xff)) period = current;
    else if (keyId === ((current - 1) & 0xff)) period = current - 1;
    else return { ok: false, reason: 'unknownKey' };
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

  private periodOf(now: number): number {
    return Math.floor(now / this.rotationPeriodMs);
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
