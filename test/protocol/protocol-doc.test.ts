/**
 * Keeps docs/PROTOCOL.md true. The doc's machine-readable tables
 * (`<!-- table:NAME -->` and `<!-- layout:NAME -->` followed by a Markdown
 * table) are parsed here and compared with the code: every constant with its
 * exported value, every enum member, every reject reason (both ways), and
 * every byte layout against bytes the encoders actually produce, with the
 * expected field bytes computed here independently of the encoders.
 */
import { constants as bufferConstants } from 'node:buffer';
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as alcModule from '../../lib/protocol/alc';
import * as controlHeaderModule from '../../lib/protocol/control-header';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import * as fdtModule from '../../lib/protocol/fdt';
import * as fdtSchemaModule from '../../lib/protocol/fdt-schema';
import * as framingModule from '../../lib/protocol/framing';
import * as joinModule from '../../lib/protocol/join';
import * as joinedModule from '../../lib/protocol/joined';
import * as lctModule from '../../lib/protocol/lct';
import * as otiModule from '../../lib/protocol/oti';
import type { AlcRejectReason } from '../../lib/protocol/alc';
import type { ControlRejectReason } from '../../lib/protocol/control-header';
import type { FdtRejectReason } from '../../lib/protocol/fdt';
import { ControlMessage, ErrorCode, MessageType } from '../../lib/protocol/messages';
import { AckTracker } from '../../lib/session/ack-tracker';
import { ClientManager } from '../../lib/session/client-manager';
import { staticChannelDirectory } from '../../lib/session/channel-directory';
import { udpPeer } from '../../lib/session/peer';
import * as catalogueModule from '../../lib/content/catalogue';
import * as serverModule from '../../lib/server/server';
import type { MulticastGroupConfig, ReplicatorContract } from '../../lib/transport/replicator-contract';
import * as serverConfigModule from '../../lib/server/config';
import { ChannelStream, type SymbolSource } from '../../lib/stream/channel-stream';
import * as cookieModule from '../../lib/session/cookie';
import { CookieAuthority, type CookieRefusal } from '../../lib/session/cookie';
import { SpentCookies } from '../../lib/session/spent-cookies';
import { ReplacementBudget } from '../../lib/session/replacement-budget';
import { SymbolAllocator } from '../../lib/content/symbol-allocator';
import * as urlModule from '../../lib/client/url';
import * as exitCodesModule from '../../lib/cli/exit-codes';
import * as serveCliModule from '../../lib/cli/serve';
import { takePackets } from '../support/stream-packets';

const DOC = readFileSync(join(__dirname, '..', '..', 'docs', 'PROTOCOL.md'), 'utf8');

// ------------------------------------------------------------ doc parsing --

/** Splits a Markdown table row on unescaped pipes. */
function cells(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  const body = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '\\' && body[i + 1] === '|') {
      cur += '|';
      i++;
    } else if (body[i] === '|') {
      out.push(cur.trim());
      cur = '';
    } else {
      cur += body[i];
    }
  }
  out.push(cur.trim());
  return out;
}

/** Body rows of the table after `<!-- kind:name -->` (header and separator dropped). */
function docTable(kind: 'table' | 'layout', name: string): string[][] {
  const marker = `<!-- ${kind}:${name} -->`;
  const lines = DOC.split('\n');
  const at = lines.findIndex((l) => l.trim() === marker);
  if (at < 0) throw new Error(`docs/PROTOCOL.md has no ${marker}`);
  let i = at + 1;
  while (i < lines.length && lines[i].trim() === '') i++;
  const first = i;
  const rows: string[][] = [];
  for (; i < lines.length && lines[i].trim().startsWith('|'); i++) rows.push(cells(lines[i]));
  if (rows.length < 3 || !/^[-:| ]+$/.test(lines[first + 1])) {
    throw new Error(`${marker} is not followed by a Markdown table with a header, a separator and rows`);
  }
  return rows.slice(2);
}

/** The first `code` span of a cell, or the whole cell. */
function code(cell: string): string {
  const m = /`([^`]*)`/.exec(cell);
  return m ? m[1] : cell;
}

/** Values the doc names by a runtime expression rather than a number. */
const RUNTIME_VALUES: Record<string, number> = {
  'buffer.constants.MAX_LENGTH': bufferConstants.MAX_LENGTH,
};

function docValue(cell: string): number | string {
  const c = cell.trim();
  const str = /^`(".*")`$/.exec(c);
  if (str) return JSON.parse(str[1]) as string;
  const expr = /^`([^`"]+)`$/.exec(c);
  if (expr && expr[1] in RUNTIME_VALUES) return RUNTIME_VALUES[expr[1]];
  if (/^0x[0-9a-f]+$/i.test(c) || /^[0-9]+(\.[0-9]+)?$/.test(c)) return Number(c);
  throw new Error(`cannot read the value "${cell}"`);
}

/** Evaluates an offset/size expression: terms joined by '+', each N, NAME or N*NAME. */
function evalExpr(expr: string, vars: Record<string, number>): number {
  let sum = 0;
  for (const raw of expr.split('+')) {
    const t = raw.trim();
    let m: RegExpExecArray | null;
    if (/^[0-9]+$/.test(t)) sum += Number(t);
    else if ((m = /^([0-9]+)\*([A-Za-z]\w*)$/.exec(t))) sum += Number(m[1]) * variable(m[2], vars, expr);
    else if (/^[A-Za-z]\w*$/.test(t)) sum += variable(t, vars, expr);
    else throw new Error(`cannot evaluate "${expr}"`);
  }
  return sum;
}

function variable(name: string, vars: Record<string, number>, expr: string): number {
  if (!(name in vars)) throw new Error(`"${expr}" uses ${name}, which the test sample does not define`);
  return vars[name];
}

// ---------------------------------------------------------- byte helpers --

const u8 = (...b: number[]): Uint8Array => Uint8Array.from(b);
const u16 = (v: number): Uint8Array => u8(v >>> 8, v & 0xff);
const u32 = (v: number): Uint8Array => u8(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
const u64 = (v: number): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return new Uint8Array(b);
};
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface LayoutSample {
  bytes: Uint8Array;
  vars: Record<string, number>;
  fields: Record<string, Uint8Array>;
}

/** Checks a doc layout against a sample: contiguous fields, exact bytes, same field set. */
function checkLayout(name: string, sample: LayoutSample): void {
  const rows = docTable('layout', name);
  let cursor = 0;
  const seen: string[] = [];
  for (const row of rows) {
    const [offsetCell, sizeCell, fieldCell] = row;
    const field = code(fieldCell);
    const offset = evalExpr(offsetCell, sample.vars);
    const size = sizeCell === 'rest' ? sample.bytes.length - offset : evalExpr(sizeCell, sample.vars);
    expect({ layout: name, field, offset }).toEqual({ layout: name, field, offset: cursor });
    const expected = sample.fields[field];
    if (expected === undefined) throw new Error(`layout ${name}: the doc names a field "${field}" the test does not know`);
    expect({ layout: name, field, bytes: hex(sample.bytes.subarray(offset, offset + size)) }).toEqual({
      layout: name,
      field,
      bytes: hex(expected),
    });
    cursor = offset + size;
    seen.push(field);
  }
  expect({ layout: name, end: cursor }).toEqual({ layout: name, end: sample.bytes.length });
  expect(seen.sort()).toEqual(Object.keys(sample.fields).sort());
}

// -------------------------------------------------------------- constants --

describe('constants table', () => {
  const modules: Record<string, Record<string, unknown>> = {
    'lib/protocol/control-header.ts': controlHeaderModule,
    'lib/protocol/join.ts': joinModule,
    'lib/protocol/joined.ts': joinedModule,
    'lib/protocol/framing.ts': framingModule,
    'lib/protocol/lct.ts': lctModule,
    'lib/protocol/alc.ts': alcModule,
    'lib/protocol/oti.ts': otiModule,
    'lib/protocol/fdt-schema.ts': fdtSchemaModule,
    'lib/session/cookie.ts': cookieModule,
    'lib/content/catalogue.ts': catalogueModule,
    'lib/server/config.ts': serverConfigModule,
    'lib/client/url.ts': urlModule,
    'lib/cli/serve.ts': serveCliModule,
  };
  const rows = docTable('table', 'constants');

  test.each(rows.map((r) => [code(r[0]), r[1], r[2]]))('%s = %s (%s)', (name, valueCell, where) => {
    const mod = modules[where];
    if (mod === undefined) throw new Error(`${name}: the doc says it is in ${where}, which the test does not load`);
    expect(Object.prototype.hasOwnProperty.call(mod, name)).toBe(true);
    const actual = mod[name];
    const documented = docValue(valueCell);
    if (typeof actual === 'bigint') expect(actual).toBe(BigInt(documented));
    else expect(actual).toBe(documented);
  });

  test('every exported constant of those files is in the table, under the right file', () => {
    const documented = new Set(rows.map((r) => `${r[2]} ${code(r[0])}`));
    const missing: string[] = [];
    for (const [where, mod] of Object.entries(modules)) {
      for (const [name, v] of Object.entries(mod)) {
        if (!/^[A-Z][A-Z0-9_]+$/.test(name)) continue;
        if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'bigint') continue;
        if (!documented.has(`${where} ${name}`)) missing.push(`${where} ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('defaults table', () => {
  const now = 1_764_072_000_000;
  const checks: Record<string, () => number> = {
    'CookieAuthority.rotationPeriodMs': () => new CookieAuthority().rotationPeriodMs,
    'CookieAuthority.lifetimeMs': () => new CookieAuthority().lifetimeMs,
    'AckTracker.windowSize': () => new AckTracker().windowSize,
    'AckTracker.maxLossesPerAck': () => new AckTracker().maxLossesPerAck,
    // Observed through behaviour: the manager does not expose its options.
    'ClientManager.maxTtlMs': () => {
      const { manager, cookie } = managerWith(['main']);
      const out = manager.handle(
        { type: MessageType.Join, cookie, channels: ['main'], until: { kind: 'duration', ms: 10 ** 12 }, ack: false },
        { ...CLIENT, bytesReceived: 100 },
        now,
      );
      const reply = out.replies[0].message;
      if (reply.type !== MessageType.Joined) throw new Error('expected JOINED');
      return reply.expiresAtMs - now;
    },
    'ClientManager.maxSessionsPerAddress': () => {
      const { manager, cookies } = managerWith(['main']);
      for (let port = 1; port <= 1000; port++) {
        const peer = udpPeer('192.0.2.8', port);
        const out = manager.handle(
          { type: MessageType.Join, cookie: cookies.issue(peer.address, port, now), channels: ['main'], until: { kind: 'duration', ms: 1000 }, ack: false },
          { ...peer, bytesReceived: 100 },
          now,
        );
        const reply = out.replies[0].message;
        if (reply.type === MessageType.Error && reply.code === ErrorCode.TooManySessions) return port - 1;
      }
      throw new Error('no session limit up to 1000');
    },
    'SpentCookies.capacity': () => new SpentCookies().capacity,
    'ReplacementBudget.clientShare': () => new ReplacementBudget().clientShare,
    'ReplacementBudget.channelShare': () => new ReplacementBudget().channelShare,
    'ReplacementBudget.burstMs': () => new ReplacementBudget().burstMs,
    'ClientManager.maxChannelsPerClient': () => {
      const names = Array.from({ length: 40 }, (_, i) => `c${i}`);
      const { manager, cookie } = managerWith(names);
      for (let n = 1; n <= names.length; n++) {
        const out = manager.handle(
          { type: MessageType.Join, cookie, channels: names.slice(0, n), until: { kind: 'duration', ms: 1000 }, ack: false },
          { ...CLIENT, bytesReceived: 100 },
          now,
        );
        const reply = out.replies[0].message;
        if (reply.type === MessageType.Error && reply.code === ErrorCode.TooManyChannels) return n - 1;
      }
      throw new Error('no channel limit up to 40');
    },
  };
  const CLIENT = udpPeer('192.0.2.7', 5000);
  function managerWith(names: string[]): { manager: ClientManager; cookie: Uint8Array; cookies: CookieAuthority } {
    // Cookies that outlive maxTtlMs, so that the grant shows maxTtlMs and not the cookie's expiry (§6.2).
    const cookies = new CookieAuthority({ masterSecret: new Uint8Array(32).fill(3), rotationPeriodMs: 3_600_000 });
    const manager = new ClientManager({
      cookies,
      channels: staticChannelDirectory(names.map((name, i) => ({ name, tsi: i + 1 }))),
      encodedSize: (m) => encodeControl(m).length,
    });
    return { manager, cookies, cookie: cookies.issue(CLIENT.address, CLIENT.port, now) };
  }

  const rows = docTable('table', 'defaults');
  test('the table lists exactly the checked defaults', () => {
    expect(rows.map((r) => code(r[0])).sort()).toEqual(Object.keys(checks).sort());
  });
  test.each(rows.map((r) => [code(r[0]), r[1]]))('%s = %s', (name, value) => {
    expect(checks[name]()).toBe(docValue(value));
  });
});

// ------------------------------------------------------- enums and reasons --

function enumEntries(e: Record<string, string | number>): Array<[string, number]> {
  return Object.entries(e)
    .filter((kv): kv is [string, number] => typeof kv[1] === 'number')
    .sort((a, b) => a[1] - b[1]);
}

test('message types table = MessageType', () => {
  const rows = docTable('table', 'message-types').map((r) => [code(r[1]), Number(r[0])]);
  expect(rows).toEqual(enumEntries(MessageType));
});

test('error codes table = ErrorCode', () => {
  const rows = docTable('table', 'error-codes').map((r) => [code(r[1]), Number(r[0])]);
  expect(rows).toEqual(enumEntries(ErrorCode));
});

// Typed as complete records, so a reason added to a union without being
// added here is a compile error, and one added here but missing from the
// doc fails below.
const CONTROL_REASONS: Record<ControlRejectReason, true> = {
  'too-short': true,
  'too-large': true,
  'bad-magic': true,
  'unknown-version': true,
  'unknown-type': true,
  'length-mismatch': true,
  truncated: true,
  'trailing-bytes': true,
  'u64-unsafe': true,
  'hello-too-short': true,
  'bad-cookie-length': true,
  'bad-time-kind': true,
  'too-many-channels': true,
  'bad-channel-name': true,
  'bad-utf8': true,
  'duplicate-channel': true,
  'bad-multicast-bitmap': true,
  'bad-group-entry': true,
  'bad-window': true,
  'too-many-ranges': true,
  'bad-range': true,
  'bad-need-count': true,
  'bad-need-entry': true,
  'unknown-error-code': true,
  'bad-reason-text': true,
  'decoder-bug': true,
};
const ALC_REASONS: Record<AlcRejectReason, true> = {
  'lct-truncated': true,
  'lct-bad-version': true,
  'lct-bad-header-length': true,
  'lct-bad-extension': true,
  'decoder-bug': true,
  'unsupported-fec-encoding': true,
  'missing-payload-id': true,
  'empty-payload': true,
  'bad-ext-fti': true,
  'bad-ext-rqseq': true,
  'missing-ext-fdt': true,
  'duplicate-extension': true,
  'bad-payload-length': true,
};
const FDT_REASONS: Record<FdtRejectReason, true> = {
  'too-large': true,
  'bad-utf8': true,
  'bad-char': true,
  'malformed-xml': true,
  'unsupported-encoding': true,
  'doctype-not-allowed': true,
  'unsupported-markup': true,
  'bad-entity': true,
  'too-deep': true,
  'too-many-elements': true,
  'too-many-attributes': true,
  'attribute-too-long': true,
  'duplicate-attribute': true,
  'unbound-prefix': true,
  'not-fdt-instance': true,
  'missing-attribute': true,
  'bad-attribute-value': true,
  'duplicate-toi': true,
  'too-many-files': true,
  'too-many-channels': true,
  'duplicate-channel': true,
  'bad-oti': true,
  'decoder-bug': true,
};

test.each([
  ['control-reject-reasons', CONTROL_REASONS],
  ['alc-reject-reasons', ALC_REASONS],
  ['fdt-reject-reasons', FDT_REASONS],
] as const)('%s table = the reason union', (name, reasons) => {
  expect(docTable('table', name).map((r) => code(r[0])).sort()).toEqual(Object.keys(reasons).sort());
});

test('decoders return the documented reasons (spot checks)', () => {
  const control = (b: Uint8Array): string => {
    const r = decodeControl(b);
    return r.ok ? 'ok' : r.reason;
  };
  const leave = encodeControl({ type: MessageType.Leave, cookie: COOKIE });
  expect(control(leave.subarray(0, 7))).toBe('too-short');
  expect(control(cat(leave, new Uint8Array(1200)))).toBe('too-large');
  const badMagic = leave.slice();
  badMagic[1] = 0x52;
  expect(control(badMagic)).toBe('bad-magic');
  const hello = encodeControl({ type: MessageType.Hello, nonce: NONCE });
  expect(control(hello.subarray(0, 127))).toBe('length-mismatch');
  const shortHello = hello.slice(0, 127);
  shortHello[5] = 127;
  expect(control(shortHello)).toBe('hello-too-short');
});

// ------------------------------------------------------- control layouts --

const COOKIE = Uint8Array.from({ length: 33 }, (_, i) => (i * 7 + 1) & 0xff);
const NONCE = u8(1, 2, 3, 4, 5, 6, 7, 8);
const header = (type: number, length: number): Uint8Array => cat(u8(0x52, 0x51, 1, type), u16(length), u8(0, 0));
const name = (s: string): Uint8Array => cat(u8(utf8(s).length), utf8(s));

describe('control message layouts', () => {
  test('header (checked on every message type)', () => {
    const all: ControlMessage[] = [
      { type: MessageType.Hello, nonce: NONCE },
      { type: MessageType.Cookie, nonce: NONCE, cookie: COOKIE, serverTimeMs: 5 },
      { type: MessageType.Join, cookie: COOKIE, channels: ['a'], until: { kind: 'duration', ms: 1 }, ack: false },
      { type: MessageType.Joined, channels: [], expiresAtMs: 9 },
      { type: MessageType.Leave, cookie: COOKIE },
      { type: MessageType.Ack, cookie: COOKIE, tsi: 1, windowStart: 0, windowEnd: 1, received: [] },
      { type: MessageType.Error, code: ErrorCode.Internal, reason: '' },
      { type: MessageType.Need, cookie: COOKIE, tsi: 1, rqseq: 0, loss: 0, entries: [{ toi: 1, firstSbn: 0, lastSbn: 0, need: 0 }] },
    ];
    for (const m of all) {
      const b = encodeControl(m).subarray(0, 8);
      const len = encodeControl(m).length;
      checkLayout('header', {
        bytes: b,
        vars: {},
        fields: { magic: u8(0x52, 0x51), version: u8(1), type: u8(m.type), totalLength: u16(len), reserved: u8(0, 0) },
      });
    }
  });

  test('HELLO', () => {
    const b = encodeControl({ type: MessageType.Hello, nonce: NONCE });
    expect(b.length).toBe(controlHeaderModule.HELLO_MIN_SIZE);
    checkLayout('HELLO', {
      bytes: b,
      vars: {},
      fields: { header: header(1, b.length), nonce: NONCE, padding: new Uint8Array(b.length - 16) },
    });
  });

  test('COOKIE', () => {
    const serverTimeMs = 1_764_072_000_123;
    const b = encodeControl({ type: MessageType.Cookie, nonce: NONCE, cookie: COOKIE, serverTimeMs });
    checkLayout('COOKIE', {
      bytes: b,
      vars: { cookieLen: 33 },
      fields: { header: header(2, b.length), nonce: NONCE, serverTimeMs: u64(serverTimeMs), cookieLen: u8(33), cookie: COOKIE },
    });
  });

  test('JOIN and JOIN.name', () => {
    const b = encodeControl({
      type: MessageType.Join,
      cookie: COOKIE,
      channels: ['news', 'vidéo'],
      until: { kind: 'absolute', unixMs: 1_764_072_030_000 },
      ack: true,
    });
    const names = cat(name('news'), name('vidéo'));
    checkLayout('JOIN', {
      bytes: b,
      vars: { cookieLen: 33 },
      fields: {
        header: header(3, b.length),
        flags: u8(joinModule.JOIN_FLAG_ACK),
        timeKind: u8(1),
        time: u64(1_764_072_030_000),
        cookieLen: u8(33),
        cookie: COOKIE,
        count: u8(2),
        names,
      },
    });
    const second = b.subarray(b.length - name('vidéo').length);
    checkLayout('JOIN.name', { bytes: second, vars: { nameLen: 6 }, fields: { nameLen: u8(6), name: utf8('vidéo') } });
  });

  test('JOIN.multicast (the bitmap after the names)', () => {
    const b = encodeControl({
      type: MessageType.Join,
      cookie: COOKIE,
      channels: ['a', 'b', 'c'],
      until: { kind: 'duration', ms: 30_000 },
      ack: false,
      multicast: ['a', 'c'],
    });
    expect(b[controlHeaderModule.CONTROL_HEADER_SIZE]).toBe(joinModule.JOIN_FLAG_MULTICAST);
    checkLayout('JOIN.multicast', { bytes: b.subarray(b.length - 2), vars: {}, fields: { multicast: u16(0b101) } });
  });

  test('JOINED.groups and JOINED.group (IPv4 and IPv6)', () => {
    const b = encodeControl({
      type: MessageType.Joined,
      channels: [
        { name: 'plain', tsi: 1 },
        { name: 'v4', tsi: 2, multicast: { group: '239.1.2.3', port: 5000, source: '192.0.2.7', unicast: false } },
        { name: 'v6', tsi: 3, multicast: { group: 'ff3e::8000:1', port: 5001, unicast: true } },
      ],
      expiresAtMs: 1_764_072_300_000,
    });
    const v4 = cat(u8(1, 0, 4), u8(239, 1, 2, 3), u16(5000), u8(192, 0, 2, 7));
    const v6group = u8(0xff, 0x3e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 1);
    const v6 = cat(u8(2, joinedModule.JOINED_GROUP_UNICAST, 6), v6group, u16(5001), new Uint8Array(16));
    const tail = cat(u8(2), v4, v6);
    checkLayout('JOINED.groups', { bytes: b.subarray(b.length - tail.length), vars: {}, fields: { groupCount: u8(2), groups: cat(v4, v6) } });
    checkLayout('JOINED.group', {
      bytes: b.subarray(b.length - v6.length),
      vars: { addrLen: 16 },
      fields: { index: u8(2), flags: u8(joinedModule.JOINED_GROUP_UNICAST), family: u8(6), group: v6group, port: u16(5001), source: new Uint8Array(16) },
    });
    checkLayout('JOINED.group', {
      bytes: b.subarray(b.length - v6.length - v4.length, b.length - v6.length),
      vars: { addrLen: 4 },
      fields: { index: u8(1), flags: u8(0), family: u8(4), group: u8(239, 1, 2, 3), port: u16(5000), source: u8(192, 0, 2, 7) },
    });
  });

  test('JOINED and JOINED.channel', () => {
    const b = encodeControl({
      type: MessageType.Joined,
      channels: [
        { name: '频道', tsi: 0x01020304 },
        { name: 'main', tsi: 0xfffffffe },
      ],
      expiresAtMs: 1_764_072_300_000,
    });
    const first = cat(u32(0x01020304), name('频道'));
    const entries = cat(first, u32(0xfffffffe), name('main'));
    checkLayout('JOINED', {
      bytes: b,
      vars: {},
      fields: { header: header(4, b.length), expiresAtMs: u64(1_764_072_300_000), count: u8(2), channels: entries },
    });
    checkLayout('JOINED.channel', {
      bytes: b.subarray(17, 17 + first.length),
      vars: { nameLen: 6 },
      fields: { tsi: u32(0x01020304), nameLen: u8(6), name: utf8('频道') },
    });
  });

  test('LEAVE', () => {
    const b = encodeControl({ type: MessageType.Leave, cookie: COOKIE });
    checkLayout('LEAVE', { bytes: b, vars: { cookieLen: 33 }, fields: { header: header(5, b.length), cookieLen: u8(33), cookie: COOKIE } });
  });

  test('ACK and ACK.range (wrapping window)', () => {
    const received = [
      { start: 0xfffffff2, end: 0xfffffff5 },
      { start: 3, end: 5 },
    ];
    const b = encodeControl({ type: MessageType.Ack, cookie: COOKIE, tsi: 7, windowStart: 0xfffffff0, windowEnd: 0x10, received });
    const ranges = cat(...received.flatMap((r) => [u32(r.start), u32(r.end)]));
    checkLayout('ACK', {
      bytes: b,
      vars: { cookieLen: 33, count: 2 },
      fields: {
        header: header(6, b.length),
        cookieLen: u8(33),
        cookie: COOKIE,
        tsi: u32(7),
        windowStart: u32(0xfffffff0),
        windowEnd: u32(0x10),
        count: u8(2),
        ranges,
      },
    });
    checkLayout('ACK.range', { bytes: ranges.subarray(0, 8), vars: {}, fields: { start: u32(0xfffffff2), end: u32(0xfffffff5) } });
  });

  test('NEED and NEED.entry', () => {
    const entries = [
      { toi: 2, firstSbn: 0, lastSbn: 3, need: 0 },
      { toi: 2, firstSbn: 4, lastSbn: 4, need: 1234 },
      { toi: 0x01020304, firstSbn: 7, lastSbn: 255, need: 65535 },
    ];
    const b = encodeControl({ type: MessageType.Need, cookie: COOKIE, tsi: 7, rqseq: 0xfffffff0, loss: 3277, entries });
    const bytes = cat(...entries.map((e) => cat(u32(e.toi), u8(e.firstSbn), u8(e.lastSbn), u16(e.need))));
    checkLayout('NEED', {
      bytes: b,
      vars: { cookieLen: 33, count: 3 },
      fields: {
        header: header(8, b.length),
        cookieLen: u8(33),
        cookie: COOKIE,
        tsi: u32(7),
        rqseq: u32(0xfffffff0),
        loss: u16(3277),
        count: u8(3),
        entries: bytes,
      },
    });
    checkLayout('NEED.entry', {
      bytes: bytes.subarray(16, 24),
      vars: {},
      fields: { toi: u32(0x01020304), firstSbn: u8(7), lastSbn: u8(255), need: u16(65535) },
    });
    // The largest NEED the doc promises fits a datagram.
    const most = Array.from({ length: 64 }, (_, i) => ({ toi: i + 1, firstSbn: 0, lastSbn: 0, need: 1 }));
    expect(encodeControl({ type: MessageType.Need, cookie: new Uint8Array(64), tsi: 1, rqseq: 0, loss: 0, entries: most }).length).toBe(596);
  });

  test('ERROR', () => {
    const reason = 'unknown channel x';
    const b = encodeControl({ type: MessageType.Error, code: ErrorCode.UnknownChannel, reason });
    checkLayout('ERROR', {
      bytes: b,
      vars: { reasonLen: reason.length },
      fields: { header: header(7, b.length), code: u16(3), reasonLen: u8(reason.length), reason: utf8(reason) },
    });
  });

  test('TCP frame', () => {
    const packet = encodeControl({ type: MessageType.Leave, cookie: COOKIE });
    const b = framingModule.encodeFrame(packet);
    checkLayout('frame', { bytes: b, vars: { length: packet.length }, fields: { length: u16(packet.length), packet } });
  });
});

// ----------------------------------------------------------- data layouts --

describe('data packet layouts', () => {
  const oti = { transferLength: 1000, symbolSize: 16, sourceBlocks: 1, subBlocks: 1, alignment: 4 };
  // F = 1000 (40 bits), reserved, T = 16, Z = 1, N = 1, Al = 4.
  const otiBytes = u8(0, 0, 0, 0x03, 0xe8, 0, 0, 16, 1, 0, 1, 4);
  const symbols = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
  const packet = alcModule.encodeAlc({
    tsi: 0x0a0b0c0d,
    toi: 0,
    sbn: 2,
    esi: 0x030405,
    symbols,
    oti,
    sequence: 0xdeadbeef,
    fdtInstanceId: 0x12345,
  });
  const extFdt = u8(192, (2 << 4) | 0x1, 0x23, 0x45);
  const extFti = cat(u8(64, 4), otiBytes, u8(0, 0));
  const extRqseq = u8(120, 2, 0, 0, 0xde, 0xad, 0xbe, 0xef);

  test('LCT header as rqcast sends it (stream data packet, 16-bit TSI and TOI)', () => {
    const data = alcModule.encodeAlc({ tsi: 1, toi: 2, sbn: 7, esi: 0x0a0b0c, symbols, sequence: 0x01020304 });
    checkLayout('lct-data-packet', {
      bytes: data,
      vars: {},
      fields: {
        flags0: u8(0x10),
        flags1: u8(0x10),
        HDR_LEN: u8(5),
        CP: u8(6),
        CCI: u8(0, 0, 0, 0),
        TSI: u16(1),
        TOI: u16(2),
        EXT_RQSEQ: u8(120, 2, 0, 0, 1, 2, 3, 4),
        SBN: u8(7),
        ESI: u8(0x0a, 0x0b, 0x0c),
        symbols,
      },
    });
    const decoded = alcModule.decodeAlc(data);
    expect(decoded.ok && [decoded.packet.tsi, decoded.packet.toi, decoded.packet.sequence, decoded.packet.header.tsiLength]).toEqual([1, 2n, 0x01020304, 2]);
  });

  test('LCT header as rqcast sends it (FDT packet, 32-bit TSI)', () => {
    checkLayout('lct-fdt-packet', {
      bytes: packet,
      vars: {},
      fields: {
        flags0: u8(0x10),
        flags1: u8(0xa0),
        HDR_LEN: u8(11),
        CP: u8(6),
        CCI: u8(0, 0, 0, 0),
        TSI: u32(0x0a0b0c0d),
        TOI: u32(0),
        EXT_FDT: extFdt,
        EXT_FTI: extFti,
        EXT_RQSEQ: extRqseq,
        SBN: u8(2),
        ESI: u8(3, 4, 5),
        symbols,
      },
    });
    const decoded = alcModule.decodeAlc(packet);
    expect(decoded.ok && decoded.packet.sequence === 0xdeadbeef && decoded.packet.fdt?.instanceId === 0x12345).toBe(true);
  });

  test('EXT_FDT, EXT_FTI, EXT_RQSEQ', () => {
    checkLayout('EXT_FDT', { bytes: packet.subarray(16, 20), vars: {}, fields: { HET: u8(192), versionAndInstanceId: u8(0x21, 0x23, 0x45) } });
    checkLayout('EXT_FTI', { bytes: packet.subarray(20, 36), vars: {}, fields: { HET: u8(64), HEL: u8(4), OTI: otiBytes, padding: u8(0, 0) } });
    checkLayout('EXT_RQSEQ', {
      bytes: packet.subarray(36, 44),
      vars: {},
      fields: { HET: u8(120), HEL: u8(2), reserved: u8(0, 0), sequence: u32(0xdeadbeef) },
    });
  });

  test('OTI, with Z = 256 written as 0', () => {
    const big = { transferLength: 0x01_0000_0400, symbolSize: 0x4000, sourceBlocks: 256, subBlocks: 2, alignment: 8 };
    expect(otiModule.otiProblem(big)).toBeUndefined();
    const b = otiModule.encodeOti(big);
    checkLayout('OTI', {
      bytes: b,
      vars: {},
      fields: { F: u8(0x01, 0, 0, 0x04, 0), reserved: u8(0), T: u16(0x4000), Z: u8(0), N: u16(2), Al: u8(8) },
    });
    expect(otiModule.decodeOti(b)).toEqual(big);
  });
});

// ------------------------------------------------------------- cookies --

describe('cookie layout and what is MACed', () => {
  const master = new Uint8Array(32).fill(0x11);
  const now = 1_764_072_012_345;
  const period = Math.floor(now / 60_000);
  const key = createHmac('sha256', master)
    .update('rqcast cookie key v1', 'ascii')
    .update(u64(period))
    .digest();
  const mac = (...parts: Uint8Array[]): Buffer => {
    const h = createHmac('sha256', key);
    for (const p of parts) h.update(p);
    return h.digest();
  };

  test.each([
    ['192.0.2.1', cat(new Uint8Array(10), u8(0xff, 0xff, 192, 0, 2, 1)), ''],
    ['fe80::1%eth0', cat(u8(0xfe, 0x80), new Uint8Array(13), u8(1)), 'eth0'],
  ])('%s', (address, addressBytes, zone) => {
    const authority = new CookieAuthority({ masterSecret: master, rotationPeriodMs: 60_000 });
    const cookie = authority.issue(address, 4433, now);
    const expiry = u64(now + 60_000);
    const keyId = u8(period & 0xff);
    checkLayout('cookie', {
      bytes: cookie,
      vars: {},
      fields: {
        expiry,
        keyId,
        issuerTag: mac(u8(0x00), expiry, keyId).subarray(0, 8),
        bindingTag: mac(u8(0x01), expiry, keyId, addressBytes, u8(zone.length), utf8(zone), u16(4433)).subarray(0, 16),
      },
    });
    if (zone === '') expect(authority.verify(cookie, '::ffff:192.0.2.1', 4433, now + 1)).toEqual({ ok: true, expiresAtMs: now + 60_000 });
  });

  test('refusals and the ERROR code each one is answered with', () => {
    const authority = new CookieAuthority({ masterSecret: master });
    const manager = new ClientManager({
      cookies: authority,
      channels: staticChannelDirectory([{ name: 'main', tsi: 1 }]),
      encodedSize: (m) => encodeControl(m).length,
    });
    const client = { address: '198.51.100.4', port: 6000 };
    const good = authority.issue(client.address, client.port, now);
    const forged = good.slice();
    forged[9] ^= 1;
    const cases: Record<CookieRefusal, { cookie: Uint8Array; port: number; at: number }> = {
      malformed: { cookie: good.subarray(0, 32), port: client.port, at: now },
      unknownKey: { cookie: authority.issue(client.address, client.port, now - 10 * 60_000), port: client.port, at: now },
      forged: { cookie: forged, port: client.port, at: now },
      wrongAddress: { cookie: good, port: client.port + 1, at: now },
      expired: { cookie: good, port: client.port, at: now + 60_000 },
    };
    const rows = docTable('table', 'cookie-refusals');
    expect(rows.map((r) => code(r[0])).sort()).toEqual(Object.keys(cases).sort());
    for (const row of rows) {
      const refusal = code(row[0]) as CookieRefusal;
      const c = cases[refusal];
      const verdict = authority.verify(c.cookie, client.address, c.port, c.at);
      expect(verdict).toEqual({ ok: false, reason: refusal });
      const out = manager.handle({ type: MessageType.Leave, cookie: c.cookie }, { ...udpPeer(client.address, c.port), bytesReceived: 100 }, c.at);
      const reply = out.replies[0]?.message;
      expect({ refusal, code: reply?.type === MessageType.Error ? reply.code : undefined }).toEqual({
        refusal,
        code: Number(/^([0-9]+)/.exec(row[1])?.[1]),
      });
    }
  });
});

// ---------------------------------------------------------------- FDT --

test('FDT File attributes table = what buildFdt writes, in order', () => {
  const xml = fdtModule.buildFdt({
    expiresAtMs: 1_764_072_000_000,
    complete: true,
    files: [
      {
        toi: 1n,
        contentLocation: 'a.bin',
        contentLength: 1000,
        contentType: 'application/octet-stream',
        contentEncoding: 'identity',
        contentMd5: Buffer.alloc(16).toString('base64'),
        sha256: new Uint8Array(32),
        oti: { transferLength: 1000, symbolSize: 16, sourceBlocks: 1, subBlocks: 1, alignment: 4 },
      },
    ],
  });
  const fileLine = xml.split('\n').find((l) => l.trim().startsWith('<File'));
  const written = [...(fileLine ?? '').matchAll(/ ([A-Za-z0-9:-]+)="/g)].map((m) => m[1]);
  expect(docTable('table', 'fdt-file-attributes').map((r) => code(r[0]))).toEqual(written);
  expect(xml).toContain(`xmlns="${fdtModule.FDT_NAMESPACE}"`);
  expect(xml).toContain(`xmlns:rq="${fdtModule.RQCAST_FDT_NAMESPACE}"`);
});

// ------------------------------------------------------ stream and client --

test.each([
  ['fetch-exit-codes', exitCodesModule as Record<string, unknown>, /^EXIT_/],
  ['serve-exit-codes', serveCliModule as Record<string, unknown>, /^SERVE_EXIT_/],
] as const)('%s table = the exit code constants', (name, mod, prefix) => {
  const documented = docTable('table', name).map((r) => [code(r[1]), Number(r[0])]);
  const actual = Object.entries(mod)
    .filter((kv): kv is [string, number] => prefix.test(kv[0]) && typeof kv[1] === 'number')
    .sort((a, b) => a[1] - b[1]);
  expect(documented).toEqual(actual);
});

describe('stream schedule (lib/stream/channel-stream.ts)', () => {
  const T = 8;
  /** A stand-in encoder: payload ID + a symbol that names (sbn, esi); no codec needed. */
  function source(blocks: number, K: number): SymbolSource {
    const one = (sbn: number, esi: number): Uint8Array => cat(u8(sbn, esi >> 16, (esi >> 8) & 0xff, esi & 0xff), new Uint8Array(T).fill(esi & 0xff));
    return {
      symbolSize: T,
      sourceBlocks: blocks,
      sourceSymbols: () => K,
      packetsWithHeader(out, offset, header, seqAt, firstSeq, sbn, firstEsi, count) {
        let at = offset;
        for (let i = 0; i < count; i++) {
          out.set(header, at);
          if (seqAt >= 0) new DataView(out.buffer, out.byteOffset).setUint32(at + seqAt, (firstSeq + i) % 2 ** 32);
          out.set(one(sbn, firstEsi + i), at + header.length);
          at += header.length + 4 + T;
        }
        return at - offset;
      },
    };
  }
  function stream(): ChannelStream {
    const objects = [1, 2].map((toi) => {
      const encoder = source(1, 50);
      return { toi, encoder, allocator: SymbolAllocator.forEncoder(encoder) };
    });
    const fdtEncoder = source(1, 3);
    return new ChannelStream({
      tsi: 3,
      objects,
      fdt: {
        instanceId: 1,
        encoder: fdtEncoder,
        allocator: SymbolAllocator.forEncoder(fdtEncoder),
        oti: { transferLength: 3 * T, symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 4 },
      },
    });
  }
  /** A stream of one object (TOI 1), one block at a time. */
  function inOrder(encoder: SymbolSource, more: { fdtInterval?: number; needs?: boolean } = {}): ChannelStream {
    const fdtEncoder = source(1, 3);
    return new ChannelStream({
      tsi: 3,
      objects: [{ toi: 1, encoder, allocator: SymbolAllocator.forEncoder(encoder) }],
      fdt: { instanceId: 1, encoder: fdtEncoder, allocator: SymbolAllocator.forEncoder(fdtEncoder), oti: { transferLength: 3 * T, symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 4 } },
      windowBlocks: 1,
      ...more,
    });
  }
  const checks: Record<string, () => number> = {
    'ChannelStream.fdtInterval': () => {
      const ps = takePackets(stream(), 200);
      const fdt = ps.flatMap((p, i) => (p.toi === 0n ? [i] : []));
      const interval = fdt[1];
      expect(fdt).toEqual(Array.from({ length: fdt.length }, (_, k) => k * interval));
      return interval;
    },
    'ChannelStream.fdtSparseFactor': () => {
      // A stream by need whose one member reported after the first packets: FDT gaps go from fdtInterval to the sparse one.
      const s = inOrder(source(1, 2000), { fdtInterval: 16, needs: true });
      s.expectNeed('m');
      const before = takePackets(s, 64);
      expect(s.reportNeed('m', { rqseq: 63, loss: 0, entries: [{ toi: 1, firstSbn: 0, lastSbn: 0, need: 2000 }] }).applied).toBe(true);
      const ps = [...before, ...takePackets(s, 400)];
      const fdt = ps.flatMap((p, i) => (p.toi === 0n ? [i] : []));
      const gaps = fdt.slice(1).map((p, k) => p - fdt[k]);
      expect(gaps.slice(0, 3)).toEqual([16, 16, 16]);
      const sparse = gaps[gaps.length - 1];
      expect(gaps.slice(3)).toEqual(gaps.slice(3).map(() => sparse));
      return sparse / 16;
    },
    'ChannelStream.passOverhead': () => {
      // One block at a time over a 2-block object: block 0's first run is its quota.
      const K = 100;
      const s = inOrder(source(2, K));
      const data = takePackets(s, 300).filter((p) => p.toi === 1n);
      const run = data.findIndex((p) => p.sbn !== 0);
      // run = ceil(K(1+x)): x to the 2 decimals the doc states.
      return Math.round(((run - K) / K) * 100) / 100;
    },
    'ChannelStream.symbolsPerTurn': () => {
      const ps = takePackets(stream(), 31).slice(1);
      let longest = 0;
      let run = 0;
      ps.forEach((p, i) => {
        run = i > 0 && ps[i - 1].toi === p.toi ? run + 1 : 1;
        longest = Math.max(longest, run);
      });
      return longest;
    },
  };
  const rows = docTable('table', 'stream-defaults');
  test('the table lists exactly the checked defaults', () => {
    expect(rows.map((r) => code(r[0])).sort()).toEqual(Object.keys(checks).sort());
  });
  test.each(rows.map((r) => [code(r[0]), r[1]]))('%s = %s', (name, value) => {
    expect(checks[name]()).toBe(docValue(value));
  });
  test('packet sizes 24 + T and 44 + T; EXT_RQSEQ = position; object packets without EXT_FTI', () => {
    const s = stream();
    expect([s.dataPacketSize, s.fdtPacketSize]).toEqual([24 + T, 44 + T]);
    const ps = takePackets(s, 100);
    ps.forEach((p, i) => {
      expect(p.sequence).toBe(i);
      expect(p.payloadLength).toBe(T);
      if (p.toi === 0n) expect([p.fdt?.instanceId, p.oti?.symbolSize]).toEqual([1, T]);
      else expect([p.fdt, p.oti]).toEqual([undefined, undefined]);
    });
  });
  test('replacements carry no EXT_RQSEQ and a fresh ESI (coded mode)', () => {
    const s = stream();
    const ps = takePackets(s, 40);
    const sent = new Set(ps.map((p) => `${p.toi}/${p.sbn}/${p.esi}`));
    const lost = ps.flatMap((p, i) => (p.toi === 1n ? [i] : [])).slice(0, 3);
    const fresh = s.freshPackets(lost).map((b) => {
      const d = alcModule.decodeAlc(b);
      if (!d.ok) throw new Error(d.reason);
      return d.packet;
    });
    expect(fresh).toHaveLength(3);
    for (const p of fresh) {
      expect(p.sequence).toBeUndefined();
      expect(p.toi).toBe(1n);
      expect(sent.has(`${p.toi}/${p.sbn}/${p.esi}`)).toBe(false);
    }
  });
});

// ----------------------------------------------------------------- server --

describe('server (lib/server/server.ts)', () => {
  /** Records what the server asks of its replicator; sends nothing. */
  class RecordingReplicator extends EventEmitter implements ReplicatorContract {
    readonly configs = new Map<number, { slotSize: number; capacity?: number; lowWater?: number; rateBytesPerSec?: number }>();
    private readonly queued = new Map<number, number>();
    createChannel(id: number, config: { slotSize: number; capacity?: number; lowWater?: number; rateBytesPerSec?: number }): void {
      this.configs.set(id, config);
      this.queued.set(id, 0);
    }
    removeChannel(id: number): void {
      this.queued.delete(id);
    }
    addDestination(): void {}
    removeDestination(): void {}
    readonly groupCalls: unknown[][] = [];
    addGroup(channelId: number, group: MulticastGroupConfig): void {
      this.groupCalls.push(['addGroup', channelId, group]);
    }
    removeGroup(channelId: number): void {
      this.groupCalls.push(['removeGroup', channelId]);
    }
    push(id: number, _packets: Uint8Array, _size: number, count: number): number {
      const q = this.queued.get(id) ?? 0;
      const n = Math.min(count, (this.configs.get(id)?.capacity ?? 4096) - q);
      this.queued.set(id, q + n);
      return n;
    }
    sendTo(): void {}
    channelStats(id: number): { queued: number; destinations: number; streamPackets: number; datagrams: number; bytes: number } {
      return { queued: this.queued.get(id) ?? 0, destinations: 0, streamPackets: 0, datagrams: 0, bytes: 0 };
    }
    close(): void {}
  }

  let dir: string;
  let catalogue: catalogueModule.Catalogue;
  let server: serverModule.RqcastServer;
  const replicator = new RecordingReplicator();
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rqcast-doc-'));
    writeFileSync(join(dir, 'a.bin'), Buffer.alloc(3000, 1));
    writeFileSync(join(dir, 'b.bin'), Buffer.alloc(5000, 2));
    catalogue = await catalogueModule.Catalogue.load([join(dir, 'a.bin'), join(dir, 'b.bin')]);
    server = new serverModule.RqcastServer({
      catalogue,
      channels: [{ name: 'main' }, { name: 'second', objects: ['b.bin'] }, { name: 'third', objects: ['a.bin'] }],
      host: '127.0.0.1',
      port: 0,
      prepare: false,
      replicator,
    });
    await server.listen();
  });
  afterAll(async () => {
    await server?.close();
    catalogue?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('channel i (1-based, in configuration order) has TSI i and FDT instance ID i', () => {
    expect(server.channels.map((c) => [c.name, c.tsi, c.fdt.instanceId])).toEqual([
      ['main', 1, 1],
      ['second', 2, 2],
      ['third', 3, 3],
    ]);
  });

  test('FDT instance: Complete, Expires one year ahead, the File attributes of §10.2', () => {
    const parsed = fdtModule.tryParseFdt(server.channels[1].fdt.bytes);
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(parsed.fdt.complete).toBe(true);
    const ahead = parsed.fdt.expiresAtMs - Date.now();
    expect(ahead).toBeGreaterThan(catalogueModule.DEFAULT_FDT_LIFETIME_MS - 24 * 3600 * 1000);
    expect(ahead).toBeLessThanOrEqual(catalogueModule.DEFAULT_FDT_LIFETIME_MS + 1000);
    const line = server.channels[1].fdt.xml.split('\n').find((l) => l.includes('<File'));
    expect([...(line ?? '').matchAll(/ ([A-Za-z0-9:-]+)="/g)].map((m) => m[1])).toEqual([
      'TOI',
      'Content-Location',
      'Content-Length',
      'Transfer-Length',
      'FEC-OTI-FEC-Encoding-ID',
      'FEC-OTI-Encoding-Symbol-Length',
      'FEC-OTI-Scheme-Specific-Info',
      'rq:Content-SHA-256',
    ]);
    expect(parsed.fdt.files.map((f) => [f.toi, f.contentLocation])).toEqual([[2n, 'b.bin']]);
  });

  const rows = docTable('table', 'server-defaults');
  const observed: Record<string, () => number | undefined> = {
    'Replicator.capacity': () => replicator.configs.get(1)?.capacity,
    'Replicator.lowWater': () => replicator.configs.get(1)?.lowWater,
    'Replicator.rateBytesPerSec': () => replicator.configs.get(1)?.rateBytesPerSec,
  };
  test('the table lists exactly the checked defaults', () => {
    expect(rows.map((r) => code(r[0])).sort()).toEqual(Object.keys(observed).sort());
  });
  test.each(rows.map((r) => [code(r[0]), r[1]]))('%s = %s', (name, value) => {
    expect(observed[name]()).toBe(docValue(value));
  });
});
