/**
 * The FDT instance parser (RFC 6726 §3.4.2): reads exactly the schema of
 * fdt-schema.ts out of the tree the bounded XML reader (xml-reader.ts)
 * builds. Unknown attributes and child elements are ignored, as the
 * schema's extension points require; anything else outside the schema
 * refuses the whole instance with an FdtRejectReason, never a truncated
 * result. `tryParseFdt` is the boundary for network input: it never throws.
 */
import { Reject, catchReject } from './bytes';
import { FEC_ENCODING_ID_RAPTORQ } from './alc';
import { FdtParseError } from './errors';
import {
  BASE64,
  FDT_CHANNEL_TRANSPORTS,
  FDT_MAX_CHANNELS,
  FDT_MAX_CHARS,
  FDT_MAX_FILES,
  FdtChannel,
  FdtChannelTransport,
  isFdtChannelName,
  FDT_NAMESPACE,
  FdtCounters,
  FdtFile,
  FdtInstance,
  FdtParseResult,
  FdtRejectReason,
  NOT_XML_CHAR,
  ntpSecondsToUnixMs,
  RQCAST_FDT_NAMESPACE,
} from './fdt-schema';
import { Oti, otiProblem, readSchemeSpecific, SCHEME_SPECIFIC_OTI_SIZE } from './oti';
import { attr, XmlElement, XmlReader } from './xml-reader';

/** Expires is the 32-bit integer part of an NTP time. */
const MAX_U32 = 0xffff_ffff;

function fail(reason: FdtRejectReason): never {
  throw new Reject(reason);
}

/** xs:unsignedLong-ish: digits (leading zeros allowed), within the safe range. */
function parseUint(v: string | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  if (!/^[0-9]{1,20}$/.test(t)) fail('bad-attribute-value');
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n > max) fail('bad-attribute-value');
  return n;
}

function parseBase64(v: string, bytes: number): Uint8Array {
  const t = v.trim();
  if (!BASE64.test(t)) fail('bad-attribute-value');
  const out = new Uint8Array(Buffer.from(t, 'base64'));
  if (out.length !== bytes) fail('bad-attribute-value');
  return out;
}

interface FecDefaults {
  encodingId?: string;
  symbolLength?: string;
  schemeSpecific?: string;
}

function fecAttributes(el: XmlElement, inherited: FecDefaults): FecDefaults {
  return {
    encodingId: attr(el, 'FEC-OTI-FEC-Encoding-ID') ?? inherited.encodingId,
    symbolLength: attr(el, 'FEC-OTI-Encoding-Symbol-Length') ?? inherited.symbolLength,
    schemeSpecific: attr(el, 'FEC-OTI-Scheme-Specific-Info') ?? inherited.schemeSpecific,
  };
}

function readFile(el: XmlElement, defaults: FecDefaults): FdtFile {
  const toiText = attr(el, 'TOI');
  const contentLocation = attr(el, 'Content-Location');
  if (toiText === undefined || contentLocation === undefined) fail('missing-attribute');
  if (!/^[0-9]{1,40}$/.test(toiText.trim())) fail('bad-attribute-value');
  const toi = BigInt(toiText.trim());
  if (toi === 0n) fail('bad-attribute-value'); // TOI 0 is the FDT itself
  const file: FdtFile = { toi, contentLocation };
  const contentLength = parseUint(attr(el, 'Content-Length'));
  if (contentLength !== undefined) file.contentLength = contentLength;
  const transferLength = parseUint(attr(el, 'Transfer-Length'));
  if (transferLength !== undefined) file.transferLength = transferLength;
  const contentType = attr(el, 'Content-Type');
  if (contentType !== undefined) file.contentType = contentType;
  const contentEncoding = attr(el, 'Content-Encoding');
  if (contentEncoding !== undefined) file.contentEncoding = contentEncoding;
  const md5 = attr(el, 'Content-MD5');
  if (md5 !== undefined) {
    parseBase64(md5, 16);
    file.contentMd5 = md5.trim();
  }
  const sha = attr(el, 'Content-SHA-256', RQCAST_FDT_NAMESPACE);
  if (sha !== undefined) file.sha256 = parseBase64(sha, 32);

  const fec = fecAttributes(el, defaults);
  const fecId = parseUint(fec.encodingId, 255);
  if (fecId !== undefined) file.fecEncodingId = fecId;
  if (fecId === FEC_ENCODING_ID_RAPTORQ) {
    const T = parseUint(fec.symbolLength, 0xffff);
    const ssi = fec.schemeSpecific === undefined ? undefined : parseBase64(fec.schemeSpecific, SCHEME_SPECIFIC_OTI_SIZE);
    // Without a content encoding the transported bytes are the content.
    const F = transferLength ?? (contentEncoding === undefined ? contentLength : undefined);
    if (T !== undefined && ssi !== undefined && F !== undefined) {
      const oti: Oti = { transferLength: F, symbolSize: T, ...readSchemeSpecific(ssi, 0) };
      if (otiProblem(oti) !== undefined) fail('bad-oti');
      file.oti = oti;
    }
  }
  return file;
}

/** An rq:Channel: Name and Rate required; unknown Transports tokens are ignored (later versions may add some). */
function readChannel(el: XmlElement): FdtChannel {
  const name = attr(el, 'Name');
  const rate = parseUint(attr(el, 'Rate'));
  if (name === undefined || rate === undefined) fail('missing-attribute');
  if (!isFdtChannelName(name)) fail('bad-attribute-value');
  const tokens = (attr(el, 'Transports') ?? '').split(/[ \t\r\n]+/);
  const transports = FDT_CHANNEL_TRANSPORTS.filter((t) => tokens.includes(t)) as FdtChannelTransport[];
  return { name, rateBps: rate, transports };
}

function readFdt(input: string | Uint8Array): FdtInstance {
  let text: string;
  if (typeof input === 'string') {
    if (input.length > FDT_MAX_CHARS) fail('too-large');
    text = input;
  } else {
    if (input.length > FDT_MAX_CHARS * 4) fail('too-large');
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch {
      return fail('bad-utf8');
    }
    if (text.length > FDT_MAX_CHARS) fail('too-large');
  }
  if (NOT_XML_CHAR.test(text)) fail('bad-char');
  const root = new XmlReader(text).document();
  if (root.local !== 'FDT-Instance' || (root.ns !== undefined && root.ns !== FDT_NAMESPACE)) fail('not-fdt-instance');
  const expiresText = attr(root, 'Expires');
  if (expiresText === undefined) fail('missing-attribute');
  const expires = parseUint(expiresText, MAX_U32)!;
  const fdt: FdtInstance = { expiresAtMs: ntpSecondsToUnixMs(expires), files: [] };
  const complete = attr(root, 'Complete');
  if (complete !== undefined) {
    const c = complete.trim();
    if (c === 'true' || c === '1') fdt.complete = true;
    else if (c === 'false' || c === '0') fdt.complete = false;
    else fail('bad-attribute-value');
  }
  const defaults = fecAttributes(root, {});
  const tois = new Set<bigint>();
  for (const child of root.children) {
    if (child.local === 'Channel' && child.ns === RQCAST_FDT_NAMESPACE) {
      fdt.channels ??= [];
      if (fdt.channels.length >= FDT_MAX_CHANNELS) fail('too-many-channels');
      const channel = readChannel(child);
      if (fdt.channels.some((c) => c.name === channel.name)) fail('duplicate-channel');
      fdt.channels.push(channel);
      continue;
    }
    if (child.local !== 'File' || child.ns !== root.ns) continue; // extension elements
    if (fdt.files.length >= FDT_MAX_FILES) fail('too-many-files');
    const file = readFile(child, defaults);
    if (tois.has(file.toi)) fail('duplicate-toi');
    tois.add(file.toi);
    fdt.files.push(file);
  }
  return fdt;
}

/** Parses an FDT instance. Throws FdtParseError (with `reason`) on bad input. */
export function parseFdt(input: string | Uint8Array): FdtInstance {
  const res = tryParseFdt(input);
  if (!res.ok) throw new FdtParseError(res.reason, `FDT instance refused: ${res.reason}`);
  return res.fdt;
}

/** Like parseFdt, but never throws: returns a result and counts it. */
export function tryParseFdt(input: string | Uint8Array, counters?: FdtCounters): FdtParseResult {
  const res = catchReject(() => readFdt(input), 'decoder-bug' as FdtRejectReason);
  if (res.ok) {
    counters?.accept();
    return { ok: true, fdt: res.value };
  }
  counters?.reject(res.reason);
  return res;
}
