/**
 * The FLUTE FDT instance (RFC 6726 §3.4.2) in its parts: the writer
 * (lib/protocol/fdt-build.ts), the bounded parser (fdt-parse.ts) over the
 * XML subset reader (xml-reader.ts), the shared schema (fdt-schema.ts), and
 * lib/protocol/fdt.ts as their one public face. docs/PROTOCOL.md §9 is the
 * contract; protocol-doc.test.ts checks its tables, this file the behaviour.
 */
import fc from 'fast-check';
import { RqcastError } from '../../lib/errors';
import * as fdt from '../../lib/protocol/fdt';
import { buildFdt, escapeAttribute } from '../../lib/protocol/fdt-build';
import { parseFdt, tryParseFdt } from '../../lib/protocol/fdt-parse';
import * as schema from '../../lib/protocol/fdt-schema';
import { FdtFile, FdtInstance, FdtRejectReason, isNtpExpiresTime, ntpSecondsToUnixMs, unixMsToNtpSeconds } from '../../lib/protocol/fdt-schema';
import { FdtParseError, ProtocolEncodeError, ProtocolError } from '../../lib/protocol/errors';
import { RejectCounters } from '../../lib/protocol/counters';
import { attr, XmlReader } from '../../lib/protocol/xml-reader';
import { oti } from './arbitraries';

const NS = `xmlns="${schema.FDT_NAMESPACE}" xmlns:rq="${schema.RQCAST_FDT_NAMESPACE}"`;
/** A document around `body` (File elements), with Expires = 3976214400. */
const doc = (body: string, rootAttrs = ''): string => `<?xml version="1.0" encoding="UTF-8"?>\n<FDT-Instance ${NS} Expires="3976214400"${rootAttrs}>\n${body}</FDT-Instance>\n`;
const reason = (input: string | Uint8Array): string => {
  const r = tryParseFdt(input);
  return r.ok ? 'ok' : r.reason;
};

describe('lib/protocol/fdt.ts is the public face of its parts', () => {
  test('re-exports every schema constant with its value, and the writer and parser', () => {
    const names = Object.keys(schema).filter((n) => /^[A-Z][A-Z0-9_]+$/.test(n) && typeof (schema as Record<string, unknown>)[n] !== 'object');
    expect(names.length).toBeGreaterThanOrEqual(9);
    for (const n of names) expect([n, (fdt as Record<string, unknown>)[n]]).toEqual([n, (schema as Record<string, unknown>)[n]]);
    expect(fdt.buildFdt).toBe(buildFdt);
    expect(fdt.escapeAttribute).toBe(escapeAttribute);
    expect(fdt.parseFdt).toBe(parseFdt);
    expect(fdt.tryParseFdt).toBe(tryParseFdt);
  });
});

describe('buildFdt then parseFdt', () => {
  const file = (over: Partial<FdtFile> = {}): FdtFile => ({ toi: 1n, contentLocation: 'a.bin', ...over });

  test('round-trips any instance the writer accepts (Expires rounded up to whole seconds)', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !schema.NOT_XML_CHAR.test(s));
    const fdtFile: fc.Arbitrary<FdtFile> = fc.record(
      {
        toi: fc.bigInt({ min: 1n, max: 2n ** 80n }),
        contentLocation: text,
        contentLength: fc.maxSafeNat(),
        contentType: text,
        contentMd5: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('base64')),
        sha256: fc.uint8Array({ minLength: 32, maxLength: 32 }),
        oti,
      },
      { requiredKeys: ['toi', 'contentLocation'] },
    );
    const instance: fc.Arbitrary<FdtInstance> = fc.record(
      {
        expiresAtMs: fc.integer({ min: 0, max: (2 ** 32 - 1) * 1000 }),
        complete: fc.boolean(),
        files: fc.uniqueArray(fdtFile, { maxLength: 5, selector: (f) => f.toi }),
      },
      { requiredKeys: ['expiresAtMs', 'files'] },
    );
    fc.assert(
      fc.property(instance, (i) => {
        const back = parseFdt(buildFdt(i));
        const want: FdtInstance = {
          ...i,
          expiresAtMs: Math.ceil(i.expiresAtMs / 1000) * 1000,
          files: i.files.map((f) => {
            const out: FdtFile = { ...f };
            if (f.oti) Object.assign(out, { transferLength: f.oti.transferLength, fecEncodingId: 6 });
            return out;
          }),
        };
        expect(back).toEqual(want);
      }),
      { numRuns: 200 },
    );
  });

  test('the writer refuses what the parser would refuse', () => {
    const ok: FdtInstance = { expiresAtMs: 0, files: [file()] };
    expect(() => buildFdt(ok)).not.toThrow();
    for (const bad of [
      { ...ok, expiresAtMs: 2 ** 32 * 1000 },
      { ...ok, expiresAtMs: -1 },
      { ...ok, expiresAtMs: 1.5 },
      { ...ok, files: [file(), file()] },
      { ...ok, files: [file({ toi: 0n })] },
      { ...ok, files: [file({ contentLocation: 'nul\u0000' })] },
      { ...ok, files: [file({ contentLocation: 'x'.repeat(schema.FDT_MAX_ATTRIBUTE_CHARS + 1) })] },
      { ...ok, files: [file({ contentLocation: '&'.repeat(schema.FDT_MAX_ATTRIBUTE_CHARS) })] },
      { ...ok, files: [file({ contentLength: -1 })] },
      { ...ok, files: [file({ contentMd5: 'AAAA' })] },
      { ...ok, files: [file({ sha256: new Uint8Array(31) })] },
      { ...ok, files: [file({ fecEncodingId: 256 })] },
      { ...ok, files: [file({ fecEncodingId: 5, oti: { transferLength: 10, symbolSize: 16, sourceBlocks: 1, subBlocks: 1, alignment: 4 } })] },
      { ...ok, files: [file({ transferLength: 11, oti: { transferLength: 10, symbolSize: 16, sourceBlocks: 1, subBlocks: 1, alignment: 4 } })] },
      { ...ok, files: [file({ oti: { transferLength: 10, symbolSize: 15, sourceBlocks: 1, subBlocks: 1, alignment: 4 } })] },
      { ...ok, files: Array.from({ length: schema.FDT_MAX_FILES + 1 }, (_, i) => file({ toi: BigInt(i + 1) })) },
    ]) {
      expect(() => buildFdt(bad)).toThrow(ProtocolEncodeError);
    }
  });

  test('escapeAttribute keeps tab, LF and CR through attribute-value normalisation (XML 1.0 §3.3.3)', () => {
    const name = 'a\tb\nc\rd <&>"\'';
    expect(escapeAttribute(name)).toBe('a&#x9;b&#xA;c&#xD;d &lt;&amp;&gt;&quot;&apos;');
    expect(parseFdt(buildFdt({ expiresAtMs: 0, files: [file({ contentLocation: name })] })).files[0].contentLocation).toBe(name);
  });
});

describe('parseFdt reads the schema of docs/PROTOCOL.md §9', () => {
  test('Expires: NTP era 0 from 2208988800, era 1 below it (RFC 5905 §6)', () => {
    expect(ntpSecondsToUnixMs(schema.NTP_UNIX_OFFSET_S)).toBe(0);
    expect(ntpSecondsToUnixMs(0)).toBe((2 ** 32 - schema.NTP_UNIX_OFFSET_S) * 1000);
    expect(unixMsToNtpSeconds(1)).toBe(schema.NTP_UNIX_OFFSET_S + 1); // rounded up: never expires early
    expect(unixMsToNtpSeconds((2 ** 32 - schema.NTP_UNIX_OFFSET_S) * 1000)).toBe(0);
    expect([isNtpExpiresTime((2 ** 32 - 1) * 1000), isNtpExpiresTime((2 ** 32 - 1) * 1000 + 1)]).toEqual([true, false]);
    const parsed = parseFdt(doc('').replace('3976214400', '5'));
    expect(parsed.expiresAtMs).toBe((2 ** 32 + 5 - schema.NTP_UNIX_OFFSET_S) * 1000);
  });

  test('FEC-OTI-* on FDT-Instance are defaults for every File; F is Content-Length without a Content-Encoding', () => {
    const parsed = parseFdt(
      doc(
        '<File TOI="1" Content-Location="a" Content-Length="1000"/>\n' +
          '<File TOI="2" Content-Location="b" Content-Length="1000" Content-Encoding="gzip"/>\n' +
          '<File TOI="3" Content-Location="c" Transfer-Length="300" FEC-OTI-Encoding-Symbol-Length="100"/>\n',
        ' FEC-OTI-FEC-Encoding-ID="6" FEC-OTI-Encoding-Symbol-Length="16" FEC-OTI-Scheme-Specific-Info="AQABBA=="',
      ),
    );
    expect(parsed.files.map((f) => f.oti)).toEqual([
      { transferLength: 1000, symbolSize: 16, sourceBlocks: 1, subBlocks: 1, alignment: 4 },
      undefined,
      { transferLength: 300, symbolSize: 100, sourceBlocks: 1, subBlocks: 1, alignment: 4 },
    ]);
  });

  test('unknown attributes and elements are ignored; a prefixed root in the FDT namespace is read', () => {
    const parsed = parseFdt(
      `<f:FDT-Instance xmlns:f="${schema.FDT_NAMESPACE}" xmlns:x="urn:x" Expires="3976214400" x:other="1">` +
        '<f:File TOI="7" Content-Location="a" Unknown="u"><x:Extra/></f:File><x:File TOI="8" Content-Location="b"/><!-- c --><?pi x?>' +
        '</f:FDT-Instance>',
    );
    expect(parsed.files).toEqual([{ toi: 7n, contentLocation: 'a' }]);
  });

  const examples: Array<[FdtRejectReason, string | Uint8Array]> = [
    ['too-large', ' '.repeat(schema.FDT_MAX_CHARS + 1)],
    ['too-large', new Uint8Array(schema.FDT_MAX_CHARS * 4 + 1)],
    ['bad-utf8', Uint8Array.from([0x3c, 0xff, 0x3e])],
    ['bad-char', doc('<File TOI="1" Content-Location="\u0000"/>')],
    ['malformed-xml', doc('<File TOI="1" Content-Location="a">')],
    ['malformed-xml', doc('<File TOI="1"Content-Location="a"/>')],
    ['unsupported-encoding', doc('').replace('UTF-8', 'ISO-8859-1')],
    ['doctype-not-allowed', '<!DOCTYPE x [<!ENTITY a "b">]>' + doc('')],
    ['unsupported-markup', doc('<![CDATA[x]]>')],
    ['bad-entity', doc('<File TOI="1" Content-Location="&ent;"/>')],
    ['bad-entity', doc('<File TOI="1" Content-Location="&#0;"/>')],
    ['too-deep', doc('<a>'.repeat(schema.FDT_MAX_DEPTH) + '</a>'.repeat(schema.FDT_MAX_DEPTH))],
    ['too-many-elements', doc('<x/>'.repeat(schema.FDT_MAX_ELEMENTS))],
    ['too-many-attributes', doc(`<x ${Array.from({ length: schema.FDT_MAX_ATTRIBUTES + 1 }, (_, i) => `a${i}="1"`).join(' ')}/>`)],
    ['attribute-too-long', doc(`<File TOI="1" Content-Location="${'x'.repeat(schema.FDT_MAX_ATTRIBUTE_CHARS + 1)}"/>`)],
    ['duplicate-attribute', doc('<File TOI="1" TOI="2" Content-Location="a"/>')],
    ['duplicate-attribute', doc('<File TOI="1" Content-Location="a" rq:Content-SHA-256="x" q:Content-SHA-256="y" xmlns:q="urn:rqcast:fdt:1"/>')],
    ['unbound-prefix', doc('<File TOI="1" Content-Location="a" z:b="1"/>')],
    ['not-fdt-instance', `<FDT xmlns="${schema.FDT_NAMESPACE}" Expires="1"/>`],
    ['not-fdt-instance', '<FDT-Instance xmlns="urn:other" Expires="1"/>'],
    ['missing-attribute', `<FDT-Instance xmlns="${schema.FDT_NAMESPACE}"/>`],
    ['missing-attribute', doc('<File TOI="1"/>')],
    ['bad-attribute-value', doc('').replace('3976214400', '4294967296')],
    ['bad-attribute-value', doc('<File TOI="0" Content-Location="a"/>')],
    ['bad-attribute-value', doc('<File TOI="1" Content-Location="a" Content-Length="-1"/>')],
    ['bad-attribute-value', doc('<File TOI="1" Content-Location="a" Content-MD5="AAAA"/>')],
    ['bad-attribute-value', doc('', ' Complete="yes"')],
    ['duplicate-toi', doc('<File TOI="1" Content-Location="a"/><File TOI="01" Content-Location="b"/>')],
    ['too-many-files', doc(Array.from({ length: schema.FDT_MAX_FILES + 1 }, (_, i) => `<File TOI="${i + 1}" Content-Location="a"/>`).join(''))],
    ['bad-oti', doc('<File TOI="1" Content-Location="a" Content-Length="10" FEC-OTI-FEC-Encoding-ID="6" FEC-OTI-Encoding-Symbol-Length="15" FEC-OTI-Scheme-Specific-Info="AQABBA=="/>')],
    ['missing-attribute', doc('<rq:Channel Name="hd"/>')],
    ['missing-attribute', doc('<rq:Channel Rate="1"/>')],
    ['bad-attribute-value', doc(`<rq:Channel Name="${'x'.repeat(65)}" Rate="1"/>`)],
    ['bad-attribute-value', doc('<rq:Channel Name="" Rate="1"/>')],
    ['bad-attribute-value', doc('<rq:Channel Name="hd" Rate="fast"/>')],
    ['duplicate-channel', doc('<rq:Channel Name="hd" Rate="1"/><rq:Channel Name="hd" Rate="2"/>')],
    ['too-many-channels', doc(Array.from({ length: schema.FDT_MAX_CHANNELS + 1 }, (_, i) => `<rq:Channel Name="c${i}" Rate="1"/>`).join(''))],
  ];
  test.each(examples.map(([r, input], i) => [i, r, input] as const))('example %d is refused as %s', (_i, want, input) => {
    expect(reason(input)).toBe(want);
  });

  test('every reason but decoder-bug has an example; counters count accepts and each refusal', () => {
    const counters = new RejectCounters<FdtRejectReason>();
    for (const [, input] of examples) tryParseFdt(input, counters);
    tryParseFdt(doc(''), counters);
    expect([counters.accepted, counters.rejected]).toEqual([1, examples.length]);
    const seen = Object.keys(counters.snapshot()).sort();
    expect(seen).toEqual([...new Set(examples.map(([r]) => r))].sort());
    expect(seen).not.toContain('decoder-bug');
  });

  test('parseFdt throws FdtParseError with the reason; it is a ProtocolError and an RqcastError', () => {
    let caught: unknown;
    try {
      parseFdt('<x/>');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FdtParseError);
    expect(caught).toBeInstanceOf(ProtocolError);
    expect(caught).toBeInstanceOf(RqcastError);
    expect(caught).toMatchObject({ name: 'FdtParseError', code: 'ERR_FDT_PARSE', reason: 'not-fdt-instance' });
  });
});

describe('rq:Channel, the server\'s channel list (docs/PROTOCOL.md §9)', () => {
  const channels: schema.FdtChannel[] = [
    { name: 'main', rateBps: 100_000_000, transports: ['udp'] },
    { name: 'hd ü', rateBps: 250_500_000, transports: ['udp', 'tcp', 'multicast'] },
  ];

  test('written after the Files, read back in order', () => {
    const xml = buildFdt({ expiresAtMs: 1_764_072_000_000, files: [{ toi: 1n, contentLocation: 'a' }], channels });
    expect(xml).toContain('<rq:Channel Name="hd ü" Rate="250500000" Transports="udp tcp multicast"/>');
    expect(xml.indexOf('<File')).toBeLessThan(xml.indexOf('<rq:Channel'));
    const back = parseFdt(xml);
    expect(back.channels).toEqual(channels);
    expect(back.files.map((f) => f.contentLocation)).toEqual(['a']);
    expect(parseFdt(buildFdt({ expiresAtMs: 1_764_072_000_000, files: [] })).channels).toBeUndefined();
  });

  test('transports are written in one order; unknown tokens read are ignored; a Channel in another namespace is not ours', () => {
    const xml = buildFdt({ expiresAtMs: 1_764_072_000_000, files: [], channels: [{ name: 'x', rateBps: 1, transports: ['multicast', 'udp'] }] });
    expect(xml).toContain('Transports="udp multicast"');
    expect(parseFdt(doc('<rq:Channel Name="x" Rate="5" Transports=" quic  tcp "/>')).channels).toEqual([{ name: 'x', rateBps: 5, transports: ['tcp'] }]);
    expect(parseFdt(doc('<Channel Name="x" Rate="5"/>')).channels).toBeUndefined();
  });

  test('the writer refuses what the parser would refuse', () => {
    const bad: schema.FdtChannel[][] = [
      [{ name: '', rateBps: 1, transports: [] }],
      [{ name: 'x'.repeat(65), rateBps: 1, transports: [] }],
      [{ name: 'x', rateBps: -1, transports: [] }],
      [{ name: 'x', rateBps: 1, transports: ['quic' as 'udp'] }],
      [{ name: 'x', rateBps: 1, transports: ['udp', 'udp'] }],
      [
        { name: 'x', rateBps: 1, transports: [] },
        { name: 'x', rateBps: 2, transports: [] },
      ],
      Array.from({ length: schema.FDT_MAX_CHANNELS + 1 }, (_, i) => ({ name: `c${i}`, rateBps: 1, transports: [] })),
    ];
    for (const c of bad) expect(() => buildFdt({ expiresAtMs: 1_764_072_000_000, files: [], channels: c })).toThrow(ProtocolEncodeError);
  });
});

describe('XmlReader (xml-reader.ts)', () => {
  test('resolves namespaces per scope; unprefixed attributes are in no namespace', () => {
    const root = new XmlReader('<a xmlns="urn:d" xmlns:p="urn:p" v="1" p:v="2"><p:b xmlns:p="urn:q" p:w="3"/><c/></a>').document();
    expect([root.ns, root.local, attr(root, 'v'), attr(root, 'v', 'urn:p')]).toEqual(['urn:d', 'a', '1', '2']);
    expect(root.children.map((c) => [c.ns, c.local])).toEqual([
      ['urn:q', 'b'],
      ['urn:d', 'c'],
    ]);
    expect(attr(root.children[0], 'w', 'urn:q')).toBe('3');
  });

  test('normalises literal white space in values to spaces, keeps references (XML 1.0 §3.3.3)', () => {
    const root = new XmlReader('<a v="x\ty\r\nz&#x9;&amp;"/>').document();
    expect(attr(root, 'v')).toBe('x y z\t&');
  });
});

describe('errors of the wire-format layer (lib/protocol/errors.ts)', () => {
  test('extend RqcastError, keep their codes and names', () => {
    const enc = new ProtocolEncodeError('x');
    expect(enc).toBeInstanceOf(ProtocolError);
    expect(enc).toBeInstanceOf(RqcastError);
    expect([enc.code, enc.name, enc.message]).toEqual(['ERR_PROTOCOL_ENCODE', 'ProtocolEncodeError', 'x']);
    const parse = new FdtParseError('bad-oti', 'm');
    expect([parse.code, parse.name, parse.reason]).toEqual(['ERR_FDT_PARSE', 'FdtParseError', 'bad-oti']);
  });
});
