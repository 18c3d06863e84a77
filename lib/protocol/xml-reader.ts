/**
 * The bounded XML reader under the FDT parser (fdt-parse.ts): exactly the
 * XML 1.0 subset an FDT instance (RFC 6726 §3.4.2) needs, and nothing that
 * lets a hostile document cost more than its size. UTF-8 text only (the
 * caller decodes), no DOCTYPE (so no entity expansion), no CDATA, the five
 * predefined entities and character references, namespaces resolved (XML
 * Namespaces 1.0), every size bounded by the FDT_MAX_* limits. A document
 * that breaks a rule throws a `Reject` with its FdtRejectReason, which the
 * parser's public boundary turns into a result.
 */
import { Reject } from './bytes';
import { FDT_MAX_ATTRIBUTE_CHARS, FDT_MAX_ATTRIBUTES, FDT_MAX_DEPTH, FDT_MAX_ELEMENTS, FdtRejectReason } from './fdt-schema';

const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';

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

export interface XmlAttribute {
  ns: string | undefined;
  local: string;
  value: string;
}

export interface XmlElement {
  ns: string | undefined;
  local: string;
  attrs: XmlAttribute[];
  children: XmlElement[];
}

const NAME = /[A-Za-z_:\u00C0-\uFFFD][-A-Za-z0-9._:\u00B7\u00C0-\uFFFD]*/y;
const WS = /[ \t\r\n]*/y;
const XML_DECL =
  /<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]+\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*\?>/y;

export class XmlReader {
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

/** The value of an element's attribute `local` in namespace `ns` (none when omitted). */
export function attr(el: XmlElement, local: string, ns?: string): string | undefined {
  return el.attrs.find((a) => a.local === local && a.ns === ns)?.value;
}
