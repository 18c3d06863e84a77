/** fast-check generators of valid wire values, shared by the protocol tests. */
import fc from 'fast-check';
import {
  ACK_MAX_RANGES,
  ACK_MAX_WINDOW,
  CHANNEL_NAME_MAX_BYTES,
  COOKIE_MAX_BYTES,
  COOKIE_MIN_BYTES,
  ERROR_REASON_MAX_BYTES,
  MAX_CHANNELS,
  NONCE_SIZE,
} from '../../lib/protocol/control-header';
import {
  AckMessage,
  ControlMessage,
  ErrorCode,
  JoinedGroup,
  MessageType,
  SeqRange,
  TimeValue,
} from '../../lib/protocol/messages';
import { MAX_K_PRIME, MAX_TRANSFER_LENGTH, Oti } from '../../lib/protocol/oti';
import { formatAddress } from '../../lib/support/address';

const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');

export const nonce = fc.uint8Array({ minLength: NONCE_SIZE, maxLength: NONCE_SIZE });
export const cookie = fc.uint8Array({ minLength: COOKIE_MIN_BYTES, maxLength: COOKIE_MAX_BYTES });
export const channelName = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 24 })
  .filter((s) => utf8Length(s) >= 1 && utf8Length(s) <= CHANNEL_NAME_MAX_BYTES);
export const channelNames = fc.uniqueArray(channelName, { maxLength: MAX_CHANNELS });
export const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
export const safeU64 = fc.maxSafeNat();

export const timeValue: fc.Arbitrary<TimeValue> = fc.oneof(
  safeU64.map((ms): TimeValue => ({ kind: 'duration', ms })),
  safeU64.map((unixMs): TimeValue => ({ kind: 'absolute', unixMs })),
);

const byte = fc.integer({ min: 0, max: 255 });
/** Canonical text of a group: IPv4 224.0.0.0/4 or IPv6 ff00::/8, as the decoder prints it. */
const groupAddress = fc.oneof(
  fc.tuple(fc.integer({ min: 224, max: 239 }), byte, byte, byte).map((b) => b.join('.')),
  fc.uint8Array({ minLength: 15, maxLength: 15 }).map((rest) => formatAddress(Uint8Array.of(0xff, ...rest))),
);
const unicastSource = (v6: boolean) =>
  v6
    ? fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((b) => b[0] !== 0xff && b.some((x) => x !== 0)).map((b) => formatAddress(b))
    : fc.tuple(fc.integer({ min: 1, max: 223 }), byte, byte, byte).map((b) => b.join('.'));
export const joinedGroup: fc.Arbitrary<JoinedGroup> = groupAddress.chain((group) =>
  fc
    .record({ port: fc.integer({ min: 1, max: 0xffff }), source: fc.option(unicastSource(group.includes(':')), { nil: undefined }), unicast: fc.boolean() })
    .map(({ source, ...g }): JoinedGroup => ({ group, ...g, ...(source !== undefined ? { source } : {}) })),
);

/** A canonical ACK: ranges from sorted distinct offsets, so they never touch. */
export const ackMessage: fc.Arbitrary<AckMessage> = fc
  .record({
    cookie,
    tsi: u32,
    windowStart: u32,
    windowLen: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: ACK_MAX_WINDOW })),
  })
  .chain(({ cookie, tsi, windowStart, windowLen }) =>
    fc
      .uniqueArray(fc.integer({ min: 0, max: windowLen }), { maxLength: 2 * ACK_MAX_RANGES })
      .map((offsets) => {
        const sorted = [...offsets].sort((a, b) => a - b);
        const received: SeqRange[] = [];
        for (let i = 0; i + 1 < sorted.length; i += 2) {
          received.push({ start: (windowStart + sorted[i]) >>> 0, end: (windowStart + sorted[i + 1]) >>> 0 });
        }
        return {
          type: MessageType.Ack as const,
          cookie,
          tsi,
          windowStart,
          windowEnd: (windowStart + windowLen) >>> 0,
          received,
        };
      }),
  );

const errorCodes = Object.values(ErrorCode).filter((v): v is ErrorCode => typeof v === 'number');

export const controlMessage: fc.Arbitrary<ControlMessage> = fc.oneof(
  nonce.map((n): ControlMessage => ({ type: MessageType.Hello, nonce: n })),
  fc
    .record({ nonce, cookie, serverTimeMs: safeU64 })
    .map((m): ControlMessage => ({ type: MessageType.Cookie, ...m })),
  fc
    .record({ cookie, channels: channelNames, until: timeValue, ack: fc.boolean() })
    .chain((m) =>
      // The encoder sends a bitmap only for a non-empty subset: absent and empty both mean none.
      fc.subarray(m.channels).map((multicast): ControlMessage => ({ type: MessageType.Join, ...m, ...(multicast.length > 0 ? { multicast } : {}) })),
    ),
  fc
    .record({
      channels: fc.uniqueArray(fc.record({ name: channelName, tsi: u32, multicast: fc.option(joinedGroup, { nil: undefined }) }), {
        maxLength: MAX_CHANNELS,
        selector: (c) => c.name,
      }),
      expiresAtMs: safeU64,
    })
    .map((m): ControlMessage => ({
      type: MessageType.Joined,
      expiresAtMs: m.expiresAtMs,
      channels: m.channels.map(({ multicast, ...c }) => (multicast ? { ...c, multicast } : c)),
    })),
  cookie.map((c): ControlMessage => ({ type: MessageType.Leave, cookie: c })),
  ackMessage,
  fc
    .record({
      code: fc.constantFrom(...errorCodes),
      reason: fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${ERROR_REASON_MAX_BYTES}}$`)),
    })
    .map((m): ControlMessage => ({ type: MessageType.Error, ...m })),
);

/** A valid RaptorQ OTI, built from (T, Al, N, Z) so that every bound holds. */
export const oti: fc.Arbitrary<Oti> = fc
  .record({
    alignment: fc.constantFrom(1, 2, 4, 8),
    symbolUnits: fc.integer({ min: 1, max: 8191 }),
    kPerBlock: fc.integer({ min: 1, max: MAX_K_PRIME }),
    sourceBlocks: fc.integer({ min: 1, max: 256 }),
    subBlocksRaw: fc.integer({ min: 1, max: 0xffff }),
    tail: fc.integer({ min: 0, max: 0xffff }),
  })
  .map(({ alignment, symbolUnits, kPerBlock, sourceBlocks, subBlocksRaw, tail }) => {
    const symbolSize = alignment * symbolUnits;
    const subBlocks = 1 + (subBlocksRaw % Math.min(0xffff, symbolSize / alignment));
    // Kt between sourceBlocks and sourceBlocks * kPerBlock symbols.
    const Kt = Math.max(sourceBlocks, Math.min(kPerBlock * sourceBlocks, Math.floor(MAX_TRANSFER_LENGTH / symbolSize)));
    const transferLength = (Kt - 1) * symbolSize + 1 + (tail % symbolSize);
    return { transferLength, symbolSize, sourceBlocks, subBlocks, alignment };
  });

/** Every prefix of `bytes` shorter than itself. */
export function truncations(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let n = 0; n < bytes.length; n++) out.push(bytes.subarray(0, n));
  return out;
}
