import fc from 'fast-check';
import {
  ACK_MAX_WINDOW,
  COOKIE_MAX_SIZE,
  CONTROL_HEADER_SIZE,
  CONTROL_MAX_SIZE,
  ControlRejectReason,
  ERROR_MAX_SIZE,
  HELLO_MIN_SIZE,
} from '../../lib/protocol/control-header';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { lostRanges } from '../../lib/protocol/ack';
import { RejectCounters } from '../../lib/protocol/counters';
import { ProtocolEncodeError } from '../../lib/protocol/errors';
import { AckMessage, ControlMessage, ErrorCode, MessageType } from '../../lib/protocol/messages';
import { ackMessage, controlMessage, truncations } from './arbitraries';

const cookie = Uint8Array.from({ length: 33 }, (_, i) => i * 7);
const nonce = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);

function reasonOf(bytes: Uint8Array): ControlRejectReason | 'accepted' {
  const r = decodeControl(bytes);
  return r.ok ? 'accepted' : r.reason;
}

/** Re-encodes `bytes` after `edit`, fixing the header's total length. */
function edited(bytes: Uint8Array, edit: (b: number[]) => void): Uint8Array {
  const b = [...bytes];
  edit(b);
  b[4] = b.length >> 8;
  b[5] = b.length & 0xff;
  return Uint8Array.from(b);
}

describe('control messages: examples', () => {
  const examples: ControlMessage[] = [
    { type: MessageType.Hello, nonce },
    { type: MessageType.Cookie, nonce, cookie, serverTimeMs: 1_764_072_000_123 },
    {
      type: MessageType.Join,
      cookie,
      channels: ['news', 'vidéo/1080p', '频道'],
      until: { kind: 'duration', ms: 30_000 },
      ack: true,
    },
    { type: MessageType.Join, cookie, channels: [], until: { kind: 'absolute', unixMs: 2 ** 53 - 1 }, ack: false },
    {
      type: MessageType.Joined,
      channels: [
        { name: 'news', tsi: 1 },
        { name: 'sport', tsi: 0xffff_ffff },
      ],
      expiresAtMs: 1_764_072_030_000,
    },
    { type: MessageType.Leave, cookie },
    {
      type: MessageType.Ack,
      cookie,
      tsi: 7,
      windowStart: 100,
      windowEnd: 200,
      received: [
        { start: 100, end: 150 },
        { start: 160, end: 200 },
      ],
    },
    { type: MessageType.Error, code: ErrorCode.CookieExpired, reason: 'cookie expired' },
  ];

  it.each(examples.map((m) => [MessageType[m.type], m] as const))('%s round-trips', (_name, msg) => {
    const bytes = encodeControl(msg);
    expect(bytes.length).toBeLessThanOrEqual(CONTROL_MAX_SIZE);
    expect(bytes[4] * 256 + bytes[5]).toBe(bytes.length);
    expect(decodeControl(bytes)).toEqual({ ok: true, msg });
  });

  it('lays out the header and a COOKIE field by field', () => {
    const bytes = encodeControl({ type: MessageType.Cookie, nonce, cookie, serverTimeMs: 0x0102_0304_0506 });
    expect([...bytes.subarray(0, 8)]).toEqual([0x52, 0x51, 1, 2, 0, 58, 0, 0]);
    expect([...bytes.subarray(8, 16)]).toEqual([...nonce]);
    expect([...bytes.subarray(16, 24)]).toEqual([0, 0, 1, 2, 3, 4, 5, 6]);
    expect(bytes[24]).toBe(33);
    expect([...bytes.subarray(25)]).toEqual([...cookie]);
  });

  it('lays out a JOIN field by field', () => {
    const bytes = encodeControl({
      type: MessageType.Join,
      cookie: cookie.subarray(0, 16),
      channels: ['a', 'bc'],
      until: { kind: 'absolute', unixMs: 258 },
      ack: true,
    });
    expect([...bytes.subarray(8, 18)]).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 1, 2]);
    expect(bytes[18]).toBe(16);
    expect([...bytes.subarray(35)]).toEqual([2, 1, 0x61, 2, 0x62, 0x63]);
  });
});

describe('anti-amplification sizes', () => {
  it('pads every HELLO to HELLO_MIN_SIZE, which no COOKIE or ERROR exceeds', () => {
    const hello = encodeControl({ type: MessageType.Hello, nonce });
    expect(hello.length).toBe(HELLO_MIN_SIZE);
    expect(COOKIE_MAX_SIZE).toBeLessThanOrEqual(HELLO_MIN_SIZE);
    expect(ERROR_MAX_SIZE).toBeLessThanOrEqual(HELLO_MIN_SIZE);
  });

  it('the largest encodable COOKIE and ERROR fit in one HELLO', () => {
    const bigCookie = encodeControl({
      type: MessageType.Cookie,
      nonce,
      cookie: new Uint8Array(64).fill(0xff),
      serverTimeMs: 2 ** 53 - 1,
    });
    const bigError = encodeControl({ type: MessageType.Error, code: ErrorCode.Internal, reason: 'x'.repeat(96) });
    expect(bigCookie.length).toBe(COOKIE_MAX_SIZE);
    expect(bigError.length).toBe(ERROR_MAX_SIZE);
    expect(Math.max(bigCookie.length, bigError.length)).toBeLessThanOrEqual(HELLO_MIN_SIZE);
    expect(() =>
      encodeControl({ type: MessageType.Cookie, nonce, cookie: new Uint8Array(65), serverTimeMs: 0 }),
    ).toThrow(ProtocolEncodeError);
    expect(() => encodeControl({ type: MessageType.Error, code: ErrorCode.Internal, reason: 'x'.repeat(97) })).toThrow(
      ProtocolEncodeError,
    );
  });

  it('rejects a HELLO shorter than the minimum, and accepts a longer one', () => {
    const hello = encodeControl({ type: MessageType.Hello, nonce });
    expect(reasonOf(edited(hello, (b) => b.pop()))).toBe('hello-too-short');
    expect(reasonOf(edited(hello, (b) => b.push(0, 0, 0)))).toBe('accepted');
  });
});

describe('control messages: properties', () => {
  it('decode(encode(m)) equals m', () => {
    fc.assert(
      fc.property(controlMessage, (m) => {
        const bytes = encodeControl(m);
        expect(bytes.length).toBeLessThanOrEqual(CONTROL_MAX_SIZE);
        expect(decodeControl(bytes)).toEqual({ ok: true, msg: m });
      }),
      { numRuns: 500 },
    );
  });

  it('every truncation of a valid message is rejected and counted, never thrown', () => {
    fc.assert(
      fc.property(controlMessage, (m) => {
        const counters = new RejectCounters<ControlRejectReason>();
        const cuts = truncations(encodeControl(m));
        for (const cut of cuts) {
          const r = decodeControl(cut, counters);
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.reason).not.toBe('decoder-bug');
        }
        expect(counters.rejected).toBe(cuts.length);
        expect(counters.accepted).toBe(0);
      }),
      { numRuns: 150 },
    );
  });

  it('random bytes never throw and are counted; no decoder bug', () => {
    const counters = new RejectCounters<ControlRejectReason>();
    let decoded = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1300 }), (bytes) => {
        decodeControl(bytes, counters);
        decoded++;
      }),
      { numRuns: 2000 },
    );
    expect(decoded).toBeGreaterThanOrEqual(2000);
    expect(counters.accepted + counters.rejected).toBe(decoded);
    expect(counters.get('decoder-bug')).toBe(0);
  });

  it('random bytes behind a valid header never throw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 }), fc.uint8Array({ maxLength: 300 }), (type, body) => {
        const bytes = Uint8Array.from([0x52, 0x51, 1, type, 0, 0, 0, 0, ...body]);
        bytes[4] = bytes.length >> 8;
        bytes[5] = bytes.length & 0xff;
        const r = decodeControl(bytes);
        if (!r.ok) expect(r.reason).not.toBe('decoder-bug');
        else expect(encodeControl(r.msg).length).toBeGreaterThan(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('single-byte corruptions of valid messages never throw', () => {
    fc.assert(
      fc.property(controlMessage, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, pos, xor) => {
        const bytes = encodeControl(m);
        bytes[pos % bytes.length] ^= xor;
        const r = decodeControl(bytes);
        if (!r.ok) expect(r.reason).not.toBe('decoder-bug');
      }),
      { numRuns: 1000 },
    );
  });
});

describe('control header rejections', () => {
  const leave = encodeControl({ type: MessageType.Leave, cookie });

  it.each<[string, (b: number[]) => void, ControlRejectReason]>([
    ['bad first magic byte', (b) => (b[0] = 0x10), 'bad-magic'],
    ['bad second magic byte', (b) => (b[1] = 0x00), 'bad-magic'],
    ['version 2', (b) => (b[2] = 2), 'unknown-version'],
    ['version 0', (b) => (b[2] = 0), 'unknown-version'],
    ['type 0', (b) => (b[3] = 0), 'unknown-type'],
    ['type 9', (b) => (b[3] = 9), 'unknown-type'],
    ['a trailing byte', (b) => b.push(0), 'trailing-bytes'],
  ])('%s', (_name, edit, reason) => {
    expect(reasonOf(edited(leave, edit))).toBe(reason);
  });

  it('total length that disagrees with the datagram', () => {
    const b = Uint8Array.from(leave);
    b[5] += 1;
    expect(reasonOf(b)).toBe('length-mismatch');
    expect(reasonOf(Uint8Array.from([...leave, 0]))).toBe('length-mismatch');
  });

  it('too short and too large', () => {
    expect(reasonOf(new Uint8Array(0))).toBe('too-short');
    expect(reasonOf(leave.subarray(0, CONTROL_HEADER_SIZE - 1))).toBe('too-short');
    const big = new Uint8Array(CONTROL_MAX_SIZE + 1);
    big.set(leave.subarray(0, 8));
    expect(reasonOf(big)).toBe('too-large');
  });

  it('reserved header bytes are ignored', () => {
    expect(reasonOf(edited(leave, (b) => ((b[6] = 0xff), (b[7] = 0xee))))).toBe('accepted');
  });
});

describe('control body rejections', () => {
  const join = encodeControl({
    type: MessageType.Join,
    cookie: new Uint8Array(16),
    channels: ['ab'],
    until: { kind: 'duration', ms: 1 },
    ack: false,
  });
  // JOIN: flags@8 kind@9 time@10..18 cookieLen@18 cookie@19..35 count@35 len@36 name@37..39

  it.each<[string, (b: number[]) => void, ControlRejectReason]>([
    ['time kind 2', (b) => (b[9] = 2), 'bad-time-kind'],
    ['time above 2^53 - 1', (b) => (b[10] = 0x00, b[11] = 0x20), 'u64-unsafe'],
    ['cookie of 15 bytes', (b) => (b[18] = 15), 'bad-cookie-length'],
    ['cookie of 65 bytes', (b) => (b[18] = 65), 'bad-cookie-length'],
    ['17 channels', (b) => (b[35] = 17), 'too-many-channels'],
    ['empty channel name', (b) => b.splice(36, 3, 0), 'bad-channel-name'],
    ['65-byte channel name', (b) => b.splice(36, 3, 65, ...new Array(65).fill(0x61)), 'bad-channel-name'],
    ['invalid UTF-8 name', (b) => (b[37] = 0xc3, b[38] = 0x28), 'bad-utf8'],
    ['UTF-8 overlong encoding', (b) => (b[37] = 0xc0, b[38] = 0xaf), 'bad-utf8'],
    ['the same channel twice', (b) => ((b[35] = 2), b.push(2, 0x61, 0x62)), 'duplicate-channel'],
    ['a count larger than the names', (b) => (b[35] = 2), 'truncated'],
  ])('JOIN with %s', (_name, edit, reason) => {
    expect(reasonOf(edited(join, edit))).toBe(reason);
  });

  it('JOIN reserved flag bits (0x04..0x80) are ignored', () => {
    const r = decodeControl(edited(join, (b) => (b[8] = 0xfc)));
    expect(r.ok).toBe(true);
    if (!r.ok || r.msg.type !== MessageType.Join) throw new Error('expected a JOIN');
    expect(r.msg.ack).toBe(false);
    expect(r.msg.multicast).toBeUndefined();
  });

  it.each<[string, (b: number[]) => void, ControlRejectReason | 'accepted']>([
    ['the multicast flag and no bitmap', (b) => (b[8] |= 0x02), 'truncated'],
    ['a bitmap bit beyond the names', (b) => ((b[8] |= 0x02), b.push(0x00, 0x02)), 'bad-multicast-bitmap'],
    ['the top bitmap bit', (b) => ((b[8] |= 0x02), b.push(0x80, 0x00)), 'bad-multicast-bitmap'],
    ['a bitmap on the one name', (b) => ((b[8] |= 0x02), b.push(0x00, 0x01)), 'accepted'],
    ['a zero bitmap', (b) => ((b[8] |= 0x02), b.push(0x00, 0x00)), 'accepted'],
  ])('JOIN with %s', (_name, edit, reason) => {
    expect(reasonOf(edited(join, edit))).toBe(reason);
  });

  it('a JOIN bitmap names the flagged channels; a zero bitmap names none', () => {
    const one = decodeControl(edited(join, (b) => ((b[8] |= 0x02), b.push(0x00, 0x01))));
    expect(one.ok && one.msg.type === MessageType.Join && one.msg.multicast).toEqual(['ab']);
    const none = decodeControl(edited(join, (b) => ((b[8] |= 0x02), b.push(0x00, 0x00))));
    expect(none.ok && none.msg.type === MessageType.Join && none.msg.multicast).toEqual([]);
  });

  const joined = encodeControl({
    type: MessageType.Joined,
    channels: [
      { name: 'a', tsi: 1 },
      { name: 'b', tsi: 2, multicast: { group: '239.0.0.1', port: 4000, source: '10.0.0.1', unicast: false } },
    ],
    expiresAtMs: 1,
  });
  // JOINED: expires@8 count@16 a: tsi@17 len@21 'a'@22; b: tsi@23 len@27 'b'@28;
  // groupCount@29 index@30 flags@31 family@32 group@33..37 port@37..39 source@39..43
  it.each<[string, (b: number[]) => void, ControlRejectReason | 'accepted']>([
    ['no group section', (b) => b.splice(29), 'accepted'],
    ['a group count of 0', (b) => b.splice(29, 14, 0), 'bad-group-entry'],
    ['more groups than channels', (b) => (b[29] = 3), 'bad-group-entry'],
    ['a group entry cut short', (b) => b.pop(), 'truncated'],
    ['an index beyond the channels', (b) => (b[30] = 2), 'bad-group-entry'],
    ['the same index twice', (b) => ((b[29] = 2), b.push(...b.slice(30, 43))), 'bad-group-entry'],
    ['family 5', (b) => (b[32] = 5), 'bad-group-entry'],
    ['family 6 with IPv4-sized addresses', (b) => (b[32] = 6), 'truncated'],
    ['a unicast group address', (b) => (b[33] = 10), 'bad-group-entry'],
    ['port 0', (b) => ((b[37] = 0), (b[38] = 0)), 'bad-group-entry'],
    ['a multicast source', (b) => (b[39] = 224), 'bad-group-entry'],
    ['an all-zero source (not announced)', (b) => b.splice(39, 4, 0, 0, 0, 0), 'accepted'],
    ['unknown entry flag bits', (b) => (b[31] = 0xfe), 'accepted'],
    ['a byte after the groups', (b) => b.push(0), 'trailing-bytes'],
  ])('JOINED with %s', (_name, edit, reason) => {
    expect(reasonOf(edited(joined, edit))).toBe(reason);
  });

  it('JOINED group fields decode as announced; no source means any-source', () => {
    const r = decodeControl(edited(joined, (b) => b.splice(39, 4, 0, 0, 0, 0)));
    if (!r.ok || r.msg.type !== MessageType.Joined) throw new Error('expected JOINED');
    expect(r.msg.channels[0].multicast).toBeUndefined();
    expect(r.msg.channels[1].multicast).toEqual({ group: '239.0.0.1', port: 4000, unicast: false });
  });

  it('encoders refuse groups and bitmaps that cannot be put on the wire', () => {
    const base = { type: MessageType.Joined as const, expiresAtMs: 1 };
    const bad = (multicast: object) => () => encodeControl({ ...base, channels: [{ name: 'a', tsi: 1, multicast } as never] });
    expect(bad({ group: '10.0.0.1', port: 1, unicast: false })).toThrow(/multicast address/);
    expect(bad({ group: 'ff02::1%eth0', port: 1, unicast: false })).toThrow(/multicast address/);
    expect(bad({ group: '239.0.0.1', port: 0, unicast: false })).toThrow(/port/);
    expect(bad({ group: '239.0.0.1', port: 1, source: 'fe80::1', unicast: false })).toThrow(/source/);
    expect(bad({ group: '239.0.0.1', port: 1, source: '239.0.0.2', unicast: false })).toThrow(/source/);
    expect(() =>
      encodeControl({ type: MessageType.Join, cookie: new Uint8Array(16), channels: ['a'], until: { kind: 'duration', ms: 1 }, ack: false, multicast: ['b'] }),
    ).toThrow(/one of the channels/);
  });

  const ack = encodeControl({
    type: MessageType.Ack,
    cookie: new Uint8Array(16),
    tsi: 1,
    windowStart: 10,
    windowEnd: 20,
    received: [{ start: 12, end: 14 }],
  });
  // ACK: cookie@8..25 tsi@25 ws@29 we@33 count@37 ranges@38
  const setU32 = (b: number[], at: number, v: number) => {
    b[at] = v >>> 24;
    b[at + 1] = (v >>> 16) & 0xff;
    b[at + 2] = (v >>> 8) & 0xff;
    b[at + 3] = v & 0xff;
  };

  it.each<[string, (b: number[]) => void, ControlRejectReason]>([
    ['an empty window', (b) => setU32(b, 33, 10), 'bad-window'],
    ['a window one packet too large', (b) => setU32(b, 33, 10 + ACK_MAX_WINDOW + 1), 'bad-window'],
    ['an empty range', (b) => setU32(b, 42, 12), 'bad-range'],
    ['a range past the window', (b) => setU32(b, 42, 21), 'bad-range'],
    ['a range before the window', (b) => setU32(b, 38, 9), 'bad-range'],
    ['65 ranges', (b) => (b[37] = 65), 'too-many-ranges'],
    ['touching ranges', (b) => ((b[37] = 2), b.push(0, 0, 0, 14, 0, 0, 0, 16)), 'bad-range'],
    ['overlapping ranges', (b) => ((b[37] = 2), b.push(0, 0, 0, 13, 0, 0, 0, 16)), 'bad-range'],
    ['unsorted ranges', (b) => ((b[37] = 2), b.push(0, 0, 0, 10, 0, 0, 0, 11)), 'bad-range'],
  ])('ACK with %s', (_name, edit, reason) => {
    expect(reasonOf(edited(ack, edit))).toBe(reason);
  });

  it('ERROR with an unknown code or non-ASCII text', () => {
    const err = encodeControl({ type: MessageType.Error, code: ErrorCode.BadCookie, reason: 'no' });
    expect(reasonOf(edited(err, (b) => (b[9] = 99)))).toBe('unknown-error-code');
    expect(reasonOf(edited(err, (b) => (b[11] = 0x0a)))).toBe('bad-reason-text');
    expect(reasonOf(edited(err, (b) => (b[11] = 0xc3)))).toBe('bad-reason-text');
  });

  it('counters record each reason', () => {
    const counters = new RejectCounters<ControlRejectReason>();
    decodeControl(join, counters);
    decodeControl(edited(join, (b) => (b[9] = 2)), counters);
    decodeControl(edited(join, (b) => (b[9] = 2)), counters);
    decodeControl(new Uint8Array(3), counters);
    expect(counters.accepted).toBe(1);
    expect(counters.rejected).toBe(3);
    expect(counters.snapshot()).toEqual({ 'bad-time-kind': 2, 'too-short': 1 });
  });
});

describe('encoder refusals', () => {
  it.each<[string, ControlMessage]>([
    ['a 7-byte nonce', { type: MessageType.Hello, nonce: new Uint8Array(7) }],
    ['a 15-byte cookie', { type: MessageType.Leave, cookie: new Uint8Array(15) }],
    [
      'a negative duration',
      { type: MessageType.Join, cookie, channels: [], until: { kind: 'duration', ms: -1 }, ack: false },
    ],
    [
      'a time beyond 2^53',
      { type: MessageType.Join, cookie, channels: [], until: { kind: 'absolute', unixMs: 2 ** 53 }, ack: false },
    ],
    [
      'a duplicate channel',
      { type: MessageType.Join, cookie, channels: ['a', 'a'], until: { kind: 'duration', ms: 1 }, ack: false },
    ],
    [
      'a lone surrogate in a name',
      { type: MessageType.Join, cookie, channels: ['\uD800'], until: { kind: 'duration', ms: 1 }, ack: false },
    ],
    [
      '17 channels',
      {
        type: MessageType.Join,
        cookie,
        channels: Array.from({ length: 17 }, (_, i) => `c${i}`),
        until: { kind: 'duration', ms: 1 },
        ack: false,
      },
    ],
    ['a TSI above 32 bits', { type: MessageType.Joined, channels: [{ name: 'a', tsi: 2 ** 32 }], expiresAtMs: 0 }],
    [
      'overlapping ACK ranges',
      {
        type: MessageType.Ack,
        cookie,
        tsi: 0,
        windowStart: 0,
        windowEnd: 10,
        received: [
          { start: 0, end: 5 },
          { start: 4, end: 6 },
        ],
      },
    ],
    ['a non-ASCII error reason', { type: MessageType.Error, code: ErrorCode.Internal, reason: 'Ł' }],
    ['an unknown error code', { type: MessageType.Error, code: 42 as ErrorCode, reason: '' }],
  ])('%s', (_name, msg) => {
    expect(() => encodeControl(msg)).toThrow(ProtocolEncodeError);
  });
});

describe('ACK semantics', () => {
  it('a window that wraps past 2^32 round-trips', () => {
    const msg: AckMessage = {
      type: MessageType.Ack,
      cookie,
      tsi: 3,
      windowStart: 0xffff_fff0,
      windowEnd: 0x10,
      received: [
        { start: 0xffff_fff0, end: 0xffff_fffe },
        { start: 0xffff_ffff, end: 0x2 },
        { start: 0x8, end: 0x10 },
      ],
    };
    expect(decodeControl(encodeControl(msg))).toEqual({ ok: true, msg });
    expect(lostRanges(msg)).toEqual([
      { start: 0xffff_fffe, end: 0xffff_ffff },
      { start: 0x2, end: 0x8 },
    ]);
  });

  it('lost and received ranges partition the window', () => {
    fc.assert(
      fc.property(ackMessage, (m) => {
        const windowLen = (m.windowEnd - m.windowStart) >>> 0;
        const covered = new Array<number>(Math.min(windowLen, 4096)).fill(0);
        if (windowLen > 4096) return; // exhaustive check on small windows only
        for (const r of [...m.received, ...lostRanges(m)]) {
          for (let s = r.start; s !== r.end; s = (s + 1) >>> 0) covered[(s - m.windowStart) >>> 0]++;
        }
        expect(covered.every((c) => c === 1)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
