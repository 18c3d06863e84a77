/**
 * Bounds-checked big-endian reading and writing for the wire codecs.
 *
 * A decoder reads through a `ByteReader`; every read checks the bounds and,
 * when the input is short or a value is out of range, throws a `Reject`
 * carrying a typed reason. Each public decoder catches `Reject` at its
 * boundary and returns `{ ok: false, reason }`, so parsing code stays linear
 * and no exception ever leaves a decoder on hostile input.
 */

const TWO_POW_32 = 0x1_0000_0000;
/** Largest high word of a u64 whose value is still a safe integer (2^53 - 1). */
const MAX_SAFE_HIGH_WORD = 0x1f_ffff;

/** Internal: thrown inside a decoder, caught at its public boundary. */
export class Reject<R extends string> {
  constructor(readonly reason: R) {}
}

export interface ReaderReasons<R extends string> {
  /** The input ends before the field being read. */
  truncated: R;
  /** A u64 field exceeds Number.MAX_SAFE_INTEGER. */
  unsafeInteger: R;
}

export class ByteReader<R extends string> {
  private readonly view: DataView;
  offset: number;

  constructor(
    readonly bytes: Uint8Array,
    private readonly reasons: ReaderReasons<R>,
    offset = 0,
    readonly end = bytes.length,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  fail(reason: R): never {
    throw new Reject(reason);
  }

  need(n: number): void {
    if (n > this.end - this.offset) this.fail(this.reasons.truncated);
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset);
    this.offset += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }

  /** Unsigned 64-bit, as a Number; values above 2^53 - 1 are rejected. */
  u64(): number {
    this.need(8);
    const hi = this.view.getUint32(this.offset);
    const lo = this.view.getUint32(this.offset + 4);
    if (hi > MAX_SAFE_HIGH_WORD) this.fail(this.reasons.unsafeInteger);
    this.offset += 8;
    return hi * TWO_POW_32 + lo;
  }

  /** A view (no copy) of the next n bytes. */
  take(n: number): Uint8Array {
    this.need(n);
    const v = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }
}

/** Runs `body` and turns a `Reject` into a result; any other exception is a
 * decoder bug and is reported as `bugReason` so that it, too, never escapes. */
export function catchReject<T, R extends string>(
  body: () => T,
  bugReason: R,
): { ok: true; value: T } | { ok: false; reason: R } {
  try {
    return { ok: true, value: body() };
  } catch (e) {
    if (e instanceof Reject) return { ok: false, reason: e.reason as R };
    return { ok: false, reason: bugReason };
  }
}

/** Fixed-capacity big-endian writer; `finish()` returns the written bytes. */
export class ByteWriter {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  offset = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  u8(v: number): void {
    this.view.setUint8(this.offset, v);
    this.offset += 1;
  }

  u16(v: number): void {
    this.view.setUint16(this.offset, v);
    this.offset += 2;
  }

  u32(v: number): void {
    this.view.setUint32(this.offset, v);
    this.offset += 4;
  }

  /** v must be a safe non-negative integer (checked by the caller). */
  u64(v: number): void {
    this.view.setUint32(this.offset, Math.floor(v / TWO_POW_32));
    this.view.setUint32(this.offset + 4, v % TWO_POW_32);
    this.offset += 8;
  }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.offset);
    this.offset += b.length;
  }

  zeros(n: number): void {
    this.buf.fill(0, this.offset, this.offset + n);
    this.offset += n;
  }

  /** Overwrites a u16 at an absolute position (e.g. a length known at the end). */
  patchU16(at: number, v: number): void {
    this.view.setUint16(at, v);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.offset);
  }
}

export function isU8(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xff;
}
export function isU16(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff;
}
export function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}
export function isU64Safe(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}
