/**
 * The FLUTE File Delivery Table instance (RFC 6726 §3.4.2) as rqcast reads
 * and writes it: the schema's namespaces, the parser's limits, the shapes of
 * an instance and of its File entries, the reasons an instance is refused,
 * and the NTP time of `Expires`. Shared by fdt-build.ts (the writer) and
 * fdt-parse.ts (the bounded reader); fdt.ts re-exports all three.
 *
 *   <?xml version="1.0" encoding="UTF-8"?>
 *   <FDT-Instance xmlns="urn:ietf:params:xml:ns:fdt"
 *                 xmlns:rq="urn:rqcast:fdt:1" Expires="3976214400">
 *     <File TOI="1" Content-Location="movie.mp4"
 *           Content-Length="1048576" Transfer-Length="1048576"
 *           FEC-OTI-FEC-Encoding-ID="6"
 *           FEC-OTI-Encoding-Symbol-Length="1280"
 *           FEC-OTI-Scheme-Specific-Info="AQABBA=="
 *           rq:Content-SHA-256="...base64 of 32 bytes..."/>
 *   </FDT-Instance>
 *
 * - Expires: the 32-bit integer part of an NTP time (seconds since 1900).
 * - RaptorQ OTI (RFC 6330 §3.3): F is Transfer-Length, T is
 *   FEC-OTI-Encoding-Symbol-Length, and FEC-OTI-Scheme-Specific-Info is the
 *   base64 of the 4 scheme-specific bytes (Z, N u16, Al). FEC-OTI-* on the
 *   FDT-Instance element are defaults for every File (RFC 6726 §3.4.2).
 * - rq:Channel children of FDT-Instance (namespace urn:rqcast:fdt:1) list
 *   every channel of the server with its Rate (bit/s) and Transports
 *   ("udp tcp multicast"), so a client on one channel learns the others.
 * - The SHA-256 digest of the content is rq:Content-SHA-256 in the
 *   namespace urn:rqcast:fdt:1, base64 like Content-MD5 (RFC 1864). The
 *   schema's anyAttribute lets other receivers ignore it.
 */
import { RejectCounters } from './counters';
import { Oti } from './oti';

export const FDT_NAMESPACE = 'urn:ietf:params:xml:ns:fdt';
export const RQCAST_FDT_NAMESPACE = 'urn:rqcast:fdt:1';

/** Limits of the parser. An FDT beyond them is refused, not truncated. */
export const FDT_MAX_CHARS = 1 << 20;
export const FDT_MAX_FILES = 10_000;
export const FDT_MAX_ELEMENTS = 20_000;
export const FDT_MAX_DEPTH = 16;
export const FDT_MAX_ATTRIBUTES = 64;
export const FDT_MAX_ATTRIBUTE_CHARS = 8192;
/** rq:Channel elements read from one instance; more refuse it. */
export const FDT_MAX_CHANNELS = 256;
/** A channel name is 1..64 UTF-8 bytes (docs/PROTOCOL.md §4.2). */
const FDT_CHANNEL_NAME_MAX_BYTES = 64;
/** The transports an rq:Channel may list (its Transports attribute, space-separated). */
export const FDT_CHANNEL_TRANSPORTS = ['udp', 'tcp', 'multicast'] as const;
export type FdtChannelTransport = (typeof FDT_CHANNEL_TRANSPORTS)[number];

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
export const NTP_UNIX_OFFSET_S = 2_208_988_800;
const TWO_POW_32 = 0x1_0000_0000;

export interface FdtFile {
  /** Transport Object Identifier, >= 1 (0 is the FDT itself). */
  toi: bigint;
  contentLocation: string;
  contentLength?: number;
  /** Bytes as transported (after Content-Encoding); F of the OTI. */
  transferLength?: number;
  contentType?: string;
  contentEncoding?: string;
  /** Content-MD5 as sent (base64), kept for other senders' FDTs. */
  contentMd5?: string;
  /** rq:Content-SHA-256, 32 bytes. */
  sha256?: Uint8Array;
  fecEncodingId?: number;
  /** Present when the file is RaptorQ (ID 6) and F, T, Z, N, Al are all given. */
  oti?: Oti;
}

/**
 * One channel of the server that sent the instance (rq:Channel, rqcast's
 * extension element): what `rqcast ls` and a one-segment URL need to know
 * of the channels a client has not joined.
 */
export interface FdtChannel {
  /** 1..64 UTF-8 bytes, as a JOIN names it. */
  name: string;
  /** Pacing rate, bit/s of packet bytes. */
  rateBps: number;
  /** How the channel can be received, in this order: udp, tcp, multicast. */
  transports: FdtChannelTransport[];
}

export interface FdtInstance {
  /** Expires as Unix ms (whole seconds; buildFdt rounds up). */
  expiresAtMs: number;
  complete?: boolean;
  files: FdtFile[];
  /** Every channel of the sending server (rq:Channel); absent when the instance lists none. */
  channels?: FdtChannel[];
}

/** Whether `name` is a channel name a JOIN can carry: 1..64 bytes of valid UTF-8. */
export function isFdtChannelName(name: string): boolean {
  const bytes = Buffer.byteLength(name, 'utf8');
  return bytes >= 1 && bytes <= FDT_CHANNEL_NAME_MAX_BYTES && Buffer.from(name, 'utf8').toString('utf8') === name;
}

export type FdtRejectReason =
  | 'too-large'
  | 'bad-utf8'
  /** A character XML 1.0 does not allow (e.g. NUL). */
  | 'bad-char'
  | 'malformed-xml'
  | 'unsupported-encoding'
  | 'doctype-not-allowed'
  /** CDATA sections or other markup this schema never needs. */
  | 'unsupported-markup'
  | 'bad-entity'
  | 'too-deep'
  | 'too-many-elements'
  | 'too-many-attributes'
  | 'attribute-too-long'
  | 'duplicate-attribute'
  | 'unbound-prefix'
  /** The root is not an FDT-Instance. */
  | 'not-fdt-instance'
  | 'missing-attribute'
  | 'bad-attribute-value'
  | 'duplicate-toi'
  | 'too-many-files'
  /** More than FDT_MAX_CHANNELS rq:Channel elements. */
  | 'too-many-channels'
  /** Two rq:Channel elements with one Name. */
  | 'duplicate-channel'
  /** RaptorQ OTI attributes present but out of the RFC 6330 bounds. */
  | 'bad-oti'
  | 'decoder-bug';

export type FdtCounters = RejectCounters<FdtRejectReason>;
export type FdtParseResult = { ok: true; fdt: FdtInstance } | { ok: false; reason: FdtRejectReason };

// ----------------------------------------------------------- characters --

/** XML 1.0 Char production; anything else cannot appear in a document. */
export const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** Canonical base64 (RFC 4648 §4), as Content-MD5 and rq:Content-SHA-256 are written. */
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// ------------------------------------------------------------ NTP time --

/** Expires read as Unix ms. */
export function ntpSecondsToUnixMs(ntp: number): number {
  // Era 0 ends in 2036; smaller values are read as era 1 (RFC 5905 §6).
  const unix = ntp >= NTP_UNIX_OFFSET_S ? ntp - NTP_UNIX_OFFSET_S : ntp + TWO_POW_32 - NTP_UNIX_OFFSET_S;
  return unix * 1000;
}

/** Expires as written: whole seconds, rounded up so the instance never expires early. */
export function unixMsToNtpSeconds(ms: number): number {
  return (Math.ceil(ms / 1000) + NTP_UNIX_OFFSET_S) % TWO_POW_32;
}

/** Whether Expires can carry this time: 32 bits of NTP seconds reach Unix second 2^32 - 1 (in 2106). */
export function isNtpExpiresTime(ms: number): boolean {
  return Number.isSafeInteger(ms) && ms >= 0 && Math.ceil(ms / 1000) < TWO_POW_32;
}
