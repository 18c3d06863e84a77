/**
 * The FDT instance writer (RFC 6726 §3.4.2): what rqcast sends as TOI 0 of
 * every channel, in the schema of fdt-schema.ts (docs/PROTOCOL.md §9). It
 * refuses, with a ProtocolEncodeError, any instance its own parser
 * (fdt-parse.ts) would refuse: the two stay each other's inverse.
 */
import { FEC_ENCODING_ID_RAPTORQ } from './alc';
import { ProtocolEncodeError } from './errors';
import {
  BASE64,
  FDT_MAX_ATTRIBUTE_CHARS,
  FDT_MAX_CHARS,
  FDT_MAX_FILES,
  FDT_NAMESPACE,
  FDT_CHANNEL_TRANSPORTS,
  FDT_MAX_CHANNELS,
  FdtChannel,
  FdtFile,
  FdtInstance,
  isFdtChannelName,
  isNtpExpiresTime,
  NOT_XML_CHAR,
  RQCAST_FDT_NAMESPACE,
  unixMsToNtpSeconds,
} from './fdt-schema';
import { encodeSchemeSpecificOti, otiProblem } from './oti';

/** Escapes a string for a double-quoted attribute value. Tab, LF and CR
 * become character references so attribute-value normalisation keeps them. */
export function escapeAttribute(value: string): string {
  if (NOT_XML_CHAR.test(value)) throw new ProtocolEncodeError('value holds a character XML cannot carry');
  return value.replace(/[&<>"'\t\n\r]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      default:
        return `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`;
    }
  });
}

function uintAttr(name: string, v: number | undefined): string {
  if (v === undefined) return '';
  if (!Number.isSafeInteger(v) || v < 0) throw new ProtocolEncodeError(`${name} must be a non-negative integer`);
  return ` ${name}="${v}"`;
}

function stringAttr(name: string, v: string | undefined): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new ProtocolEncodeError(`${name} must be a string`);
  if (v.length > FDT_MAX_ATTRIBUTE_CHARS) throw new ProtocolEncodeError(`${name} too long`);
  const escaped = escapeAttribute(v);
  if (escaped.length > FDT_MAX_ATTRIBUTE_CHARS) throw new ProtocolEncodeError(`${name} too long once escaped`);
  return ` ${name}="${escaped}"`;
}

function buildFile(f: FdtFile): string {
  if (typeof f.toi !== 'bigint' || f.toi < 1n) throw new ProtocolEncodeError('file TOI must be a bigint >= 1');
  if (typeof f.contentLocation !== 'string') throw new ProtocolEncodeError('contentLocation is required');
  let transferLength = f.transferLength;
  let fecId = f.fecEncodingId;
  if (f.oti !== undefined) {
    const problem = otiProblem(f.oti);
    if (problem !== undefined) throw new ProtocolEncodeError(`OTI: ${problem}`);
    if (transferLength !== undefined && transferLength !== f.oti.transferLength) {
      throw new ProtocolEncodeError('transferLength differs from the OTI transfer length');
    }
    if (fecId !== undefined && fecId !== FEC_ENCODING_ID_RAPTORQ) throw new ProtocolEncodeError('an OTI implies FEC Encoding ID 6');
    transferLength = f.oti.transferLength;
    fecId = FEC_ENCODING_ID_RAPTORQ;
  }
  if (fecId !== undefined && !(Number.isInteger(fecId) && fecId >= 0 && fecId <= 255)) {
    throw new ProtocolEncodeError('fecEncodingId must be 0..255');
  }
  let s = `  <File TOI="${f.toi}"`;
  s += stringAttr('Content-Location', f.contentLocation);
  s += uintAttr('Content-Length', f.contentLength);
  s += uintAttr('Transfer-Length', transferLength);
  s += stringAttr('Content-Type', f.contentType);
  s += stringAttr('Content-Encoding', f.contentEncoding);
  if (f.contentMd5 !== undefined) {
    if (!BASE64.test(f.contentMd5) || Buffer.from(f.contentMd5, 'base64').length !== 16) {
      throw new ProtocolEncodeError('contentMd5 must be base64 of 16 bytes');
    }
    s += ` Content-MD5="${f.contentMd5}"`;
  }
  s += uintAttr('FEC-OTI-FEC-Encoding-ID', fecId);
  if (f.oti !== undefined) {
    s += uintAttr('FEC-OTI-Encoding-Symbol-Length', f.oti.symbolSize);
    s += ` FEC-OTI-Scheme-Specific-Info="${Buffer.from(encodeSchemeSpecificOti(f.oti)).toString('base64')}"`;
  }
  if (f.sha256 !== undefined) {
    if (!(f.sha256 instanceof Uint8Array) || f.sha256.length !== 32) throw new ProtocolEncodeError('sha256 must be 32 bytes');
    s += ` rq:Content-SHA-256="${Buffer.from(f.sha256).toString('base64')}"`;
  }
  return s + '/>\n';
}

function buildChannel(c: FdtChannel): string {
  if (typeof c.name !== 'string' || !isFdtChannelName(c.name)) throw new ProtocolEncodeError('a channel name is 1..64 bytes of UTF-8');
  if (!Array.isArray(c.transports) || c.transports.some((t) => !FDT_CHANNEL_TRANSPORTS.includes(t))) {
    throw new ProtocolEncodeError(`channel transports are ${FDT_CHANNEL_TRANSPORTS.join(', ')}`);
  }
  if (new Set(c.transports).size !== c.transports.length) throw new ProtocolEncodeError('a channel transport is listed twice');
  const transports = FDT_CHANNEL_TRANSPORTS.filter((t) => c.transports.includes(t)).join(' ');
  return `  <rq:Channel${stringAttr('Name', c.name)}${uintAttr('Rate', c.rateBps)} Transports="${transports}"/>\n`;
}

/** Serialises an FDT instance. Throws ProtocolEncodeError for values it cannot carry. */
export function buildFdt(fdt: FdtInstance): string {
  if (!isNtpExpiresTime(fdt.expiresAtMs)) {
    throw new ProtocolEncodeError('expiresAtMs must be a non-negative integer before 2106');
  }
  if (fdt.files.length > FDT_MAX_FILES) throw new ProtocolEncodeError(`at most ${FDT_MAX_FILES} files`);
  if (new Set(fdt.files.map((f) => f.toi)).size !== fdt.files.length) throw new ProtocolEncodeError('duplicate TOI');
  let s = '<?xml version="1.0" encoding="UTF-8"?>\n';
  s += `<FDT-Instance xmlns="${FDT_NAMESPACE}" xmlns:rq="${RQCAST_FDT_NAMESPACE}"`;
  s += ` Expires="${unixMsToNtpSeconds(fdt.expiresAtMs)}"`;
  if (fdt.complete !== undefined) s += ` Complete="${fdt.complete ? 'true' : 'false'}"`;
  s += '>\n';
  for (const f of fdt.files) s += buildFile(f);
  if (fdt.channels !== undefined) {
    if (fdt.channels.length > FDT_MAX_CHANNELS) throw new ProtocolEncodeError(`at most ${FDT_MAX_CHANNELS} channels`);
    if (new Set(fdt.channels.map((c) => c.name)).size !== fdt.channels.length) throw new ProtocolEncodeError('duplicate channel name');
    for (const c of fdt.channels) s += buildChannel(c);
  }
  s += '</FDT-Instance>\n';
  if (s.length > FDT_MAX_CHARS) throw new ProtocolEncodeError('FDT instance larger than the parser limit');
  return s;
}
