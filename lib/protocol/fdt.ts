/**
 * FLUTE File Delivery Table instances (RFC 6726 §3.4.2), the XML object that
 * rqcast sends as TOI 0 of every channel.
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
 * - The SHA-256 digest of the content is rq:Content-SHA-256 in the
 *   namespace urn:rqcast:fdt:1, base64 like Content-MD5 (RFC 1864). The
 *   schema's anyAttribute lets other receivers ignore it.
 *
 * The parser reads exactly this schema with a small hand-written XML reader:
 * UTF-8 only, no DOCTYPE (so no entity expansion), no CDATA, the five
 * predefined entities and character references, namespaces resolved, every
 * size bounded. Unknown attributes and child elements are ignored, as the
 * schema's extension points require.
 */
import { Reject, catchReject } from './bytes';
import { RejectCounters } from './counters';
import { FdtParseError, ProtocolEncodeError } from './errors';
import { Oti, encodeSchemeSpecificOti, otiProblem, readSchemeSpecific, SCHEME_SPECIFIC_OTI_SIZE } from './oti';

export const FDT_NAMESPACE = 'urn:ietf:params:xml:ns:fdt';
export const RQCAST_FDT_NAMESPACE = 'urn:rqcast:fdt:1';
const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NAMESPACE = 'http://www.w3.org/2000/xmlns/';

/** Limits of the parser. An FDT beyond them is refused, not truncated. */
export const FDT_MAX_CHARS = 1 << 20;
export const FDT_MAX_FILES = 10_000;
export const FDT_MAX_ELEMENTS = 20_000;
export const FDT_MAX_DEPTH = 16;
export const FDT_MAX_ATTRIBUTES = 64;
export const FDT_MAX_ATTRIBUTE_CHARS = 8192;

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
export const NTP_UNIX_OFFSET_S = 2_208_988_800;
const TWO_POW_32 = 0x1_0000_0000;
const FEC_ENCODING_ID_RAPTORQ = 6;

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

export interface FdtInstance {
  /** Expires as Unix ms (whole seconds; buildFdt rounds up). */
  expiresAtMs: number;
  complete?: boolean;
  files: FdtFile[];
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
  /** RaptorQ OTI attributes present but out of the RFC 6330 bounds. */
  | 'bad-oti'
  | 'decoder-bug';

export type FdtCounters = RejectCounters<FdtRejectReason>;
export type FdtParseResult = { ok: true; fdt: FdtInstance } | { ok: false; reason: FdtRejectReason };

// ------------------------------------------------------------- escaping --

/** XML 1.0 Char production; anything else cannot appear in a document. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

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

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function isXmlCharCode(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Resolves entity and character references; rejects anything else after '&'. */
function unescapeText(raw: string): string {
  if (!raw.includes('&')) return raw;
  let out = '';
  let i = 0;
  for (;;) {
    const amp = raw.indexOf('&', i);
    if (amp < 0) return out + raw.slice(i);
    out += raw.slice(i, amp);
    const semi = raw.indexOf(';', amp);
    if (semi < 0 || semi - amp > 12) throw new Reject<FdtRejectReason>('bad-entity');
    const ref = raw.slice(amp + 1, semi);
    if (ref in PREDEFINED) {
      out += PREDEFINED[ref];
    } else {
      let cp: number;
      if (/^#[0-9]{1,7}$/.test(ref)) cp = parseInt(ref.slice(1), 10);
      else if (/^#x[0-9a-fA-F]{1,6}$/.test(ref)) cp = parseInt(ref.slice(2), 16);
      else throw new Reject<FdtRejectReason>('bad-entity');
      if (!isXmlCharCode(cp)) throw new Reject<FdtRejectReason>('bad-entity');
      out += String.fromCodePoint(cp);
    }
    i = semi + 1;
  }
}

// ---------------------------------------------------------- XML reading --

interface XmlAttribute {
  ns: string | undefined;
  local: string;
  value: string;
}

interface XmlElement {
  ns: string | undefined;
  local: string;
  attrs: XmlAttribute[];
  children: XmlElement[];
}

const NAME = /[A-Za-z_:\u00C0-\uFFFD][-A-Za-z0-9._:\u00B7\u00C0-\uFFFD]*/y;
const WS = /[ \t\r\n]*/y;
const XML_DECL =
  /<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]+\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*\?>/y;

class XmlReader {
  private i = 0;
  private elements = 0;

  constructor(private readonly s: string) {}

  fail(reason: FdtRejectReason): never {
    throw new Reject(reason);
  }

  document(): XmlElement {
    if (this.s.startsWith('\uFEFF')) this.i = 1;
    if (this.s.startsWith('<?xml', this.i)) {
      XML_DECL.lastIndex = this.i;
      const m = XML_DECL.exec(this.s);
      if (!m) this.fail('malformed-xml');
      if (m[3] !== undefined && m[3].toLowerCase() !== 'utf-8') this.fail('unsupported-encoding');
      this.i = XML_DECL.lastIndex;
    }
    this.misc();
    if (this.i >= this.s.length || this.s[this.i] !== '<') this.fail('malformed-xml');
    const root = this.element(0, new Map([['xml', XML_NAMESPACE]]));
    this.misc();
    if (this.i !== this.s.length) this.fail('malformed-xml');
    return root;
  }

  /** Whitespace, comments and processing instructions between top-level items. */
  private misc(): void {
    for (;;) {
      this.ws();
      if (this.s.startsWith('<!--', this.i)) this.comment();
      else if (this.s.startsWith('<!DOCTYPE', this.i)) this.fail('doctype-not-allowed');
      else if (this.s.startsWith('<?', this.i)) this.pi();
      else return;
    }
  }

  private ws(): void {
    WS.lastIndex = this.i;
    WS.exec(this.s);
    this.i = WS.lastIndex;
  }

  private comment(): void {
    const end = this.s.indexOf('-->', this.i + 4);
    if (end < 0) this.fail('malformed-xml');
    this.i = end + 3;
  }

  private pi(): void {
    if (/^<\?xml[ \t\r\n?]/i.test(this.s.slice(this.i, this.i + 6))) this.fail('malformed-xml');
    const end = this.s.indexOf('?>', this.i + 2);
    if (end < 0) this.fail('malformed-xml');
    this.i = end + 2;
  }

  private name(): string {
    NAME.lastIndex = this.i;
    const m = NAME.exec(this.s);
    if (!m) this.fail('malformed-xml');
    this.i = NAME.lastIndex;
    return m[0];
  }

  private expect(str: string): void {
    if (!this.s.startsWith(str, this.i)) this.fail('malformed-xml');
    this.i += str.length;
  }

  private element(depth: number, parentScope: Map<string, string>): XmlElement {
    if (depth >= FDT_MAX_DEPTH) this.fail('too-deep');
    if (++this.elements > FDT_MAX_ELEMENTS) this.fail('too-many-elements');
    this.expect('<');
    const qname = this.name();
    const raw: Array<{ qname: string; value: string }> = [];
    for (;;) {
      const before = this.i;
      this.ws();
      const c = this.s[this.i];
      if (c === '>' || c === '/') break;
      if (this.i === before) this.fail('malformed-xml'); // attributes need separating space
      const an = this.name();
      this.ws();
      this.expect('=');
      this.ws();
      const quote = this.s[this.i];
      if (quote !== '"' && quote !== "'") this.fail('malformed-xml');
      const end = this.s.indexOf(quote, this.i + 1);
      if (end < 0) this.fail('malformed-xml');
      if (end - this.i - 1 > FDT_MAX_ATTRIBUTE_CHARS) this.fail('attribute-too-long');
      const rawValue = this.s.slice(this.i + 1, end);
      if (rawValue.includes('<')) this.fail('malformed-xml');
      this.i = end + 1;
      if (raw.some((a) => a.qname === an)) this.fail('duplicate-attribute');
      if (raw.length >= FDT_MAX_ATTRIBUTES) this.fail('too-many-attributes');
      // XML 1.0 §3.3.3: literal white space in a value reads as a space.
      raw.push({ qname: an, value: unescapeText(rawValue.replace(/\r\n|[\t\n\r]/g, ' ')) });
    }
    // Namespace declarations first, then resolve names in the new scope.
    let scope = parentScope;
    for (const a of raw) {
      if (a.qname === 'xmlns' || a.qname.startsWith('xmlns:')) {
        if (scope === parentScope) scope = new Map(parentScope);
        const prefix = a.qname === 'xmlns' ? '' : a.qname.slice(6);
        if (prefix === 'xml' || prefix === 'xmlns' || (prefix !== '' && a.value === '')) this.fail('malformed-xml');
        scope.set(prefix, a.value);
      }
    }
    const el: XmlElement = { ...this.resolve(qname, scope, true), attrs: [], children: [] };
    const seen = new Set<string>();
    for (const a of raw) {
      if (a.qname === 'xmlns' || a.qname.startsWith('xmlns:')) continue;
      const { ns, local } = this.resolve(a.qname, scope, false);
      const key = `${ns ?? ''} ${local}`;
      if (seen.has(key)) this.fail('duplicate-attribute');
      seen.add(key);
      el.attrs.push({ ns, local, value: a.value });
    }
    if (this.s.startsWith('/>', this.i)) {
      this.i += 2;
      return el;
    }
    this.expect('>');
    for (;;) {
      const lt = this.s.indexOf('<', this.i);
      if (lt < 0) this.fail('malformed-xml');
      const text = this.s.slice(this.i, lt);
      if (text.includes(']]>')) this.fail('malformed-xml');
      unescapeText(text); // checked, then ignored: this schema has no text content
      this.i = lt;
      if (this.s.startsWith('</', this.i)) {
        this.i += 2;
        if (this.name() !== qname) this.fail('malformed-xml');
        this.ws();
        this.expect('>');
        return el;
      }
      if (this.s.startsWith('<!--', this.i)) this.comment();
      else if (this.s.startsWith('<![CDATA[', this.i)) this.fail('unsupported-markup');
      else if (this.s.startsWith('<!', this.i)) this.fail('unsupported-markup');
      else if (this.s.startsWith('<?', this.i)) this.pi();
      else el.children.push(this.element(depth + 1, scope));
    }
  }

  private resolve(qname: string, scope: Map<string, string>, isElement: boolean): { ns: string | undefined; local: string } {
    const colon = qname.indexOf(':');
    if (colon < 0) {
      // Unprefixed attributes are in no namespace; elements take the default.
      const def = isElement ? scope.get('') : undefined;
      return { ns: def === '' ? undefined : def, local: qname };
    }
    const prefix = qname.slice(0, colon);
    const local = qname.slice(colon + 1);
    if (local === '' || local.includes(':')) this.fail('malformed-xml');
    const ns = scope.get(prefix);
    if (ns === undefined) this.fail('unbound-prefix');
    return { ns, local };
  }
}

// ------------------------------------------------------- interpretation --

function attr(el: XmlElement, local: string, ns?: string): string | undefined {
  return el.attrs.find((a) => a.local === local && a.ns === ns)?.value;
}

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

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function parseBase64(v: string, bytes: number): Uint8Array {
  const t = v.trim();
  if (!BASE64.test(t)) fail('bad-attribute-value');
  const out = new Uint8Array(Buffer.from(t, 'base64'));
  if (out.length !== bytes) fail('bad-attribute-value');
  return out;
}

function ntpSecondsToUnixMs(ntp: number): number {
  // Era 0 ends in 2036; smaller values are read as era 1 (RFC 5905 §6).
  const unix = ntp >= NTP_UNIX_OFFSET_S ? ntp - NTP_UNIX_OFFSET_S : ntp + TWO_POW_32 - NTP_UNIX_OFFSET_S;
  return unix * 1000;
}

function unixMsToNtpSeconds(ms: number): number {
  return (Math.ceil(ms / 1000) + NTP_UNIX_OFFSET_S) % TWO_POW_32;
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
  const expires = parseUint(expiresText, TWO_POW_32 - 1)!;
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

// --------------------------------------------------------------- build --

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

/** Serialises an FDT instance. Throws ProtocolEncodeError for values it cannot carry. */
export function buildFdt(fdt: FdtInstance): string {
  // Expires is 32 bits of NTP seconds: representable up to Unix second 2^32 - 1.
  if (!Number.isSafeInteger(fdt.expiresAtMs) || fdt.expiresAtMs < 0 || Math.ceil(fdt.expiresAtMs / 1000) >= TWO_POW_32) {
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
  s += '</FDT-Instance>\n';
  if (s.length > FDT_MAX_CHARS) throw new ProtocolEncodeError('FDT instance larger than the parser limit');
  return s;
}
