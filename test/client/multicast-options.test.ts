/**
 * The client's multicast options (resolveClientOptions: transport,
 * fallbackAfterMs, multicastInterface) and what the display makes of
 * 'transport' events and the summary's channels (progress.ts).
 */
import { PassThrough } from 'stream';
import { EventEmitter } from 'events';
import { InvalidClientOptionError } from '../../lib/client/errors';
import type { FetchSummary } from '../../lib/client/events';
import { resolveClientOptions } from '../../lib/client/options';
import { ProgressDisplay, summaryJson, summaryLine } from '../../lib/client/progress';
import { parseRqcastUrl } from '../../lib/client/url';
import { LocalInterface, systemInterfaces } from '../../lib/transport/multicast/membership-interface';

const url = parseRqcastUrl('rqcast://127.0.0.1:4433');

describe('resolveClientOptions: multicast', () => {
  test('transport auto by default; each mode taken as given', () => {
    expect(resolveClientOptions(url, {}, '/').transport).toBe('auto');
    for (const t of ['auto', 'multicast', 'udp'] as const) expect(resolveClientOptions(url, { transport: t }, '/').transport).toBe(t);
  });

  test('fallbackAfterMs 2000 by default, any positive time', () => {
    expect(resolveClientOptions(url, {}, '/').fallbackAfterMs).toBe(2000);
    expect(resolveClientOptions(url, { fallbackAfterMs: 150 }, '/').fallbackAfterMs).toBe(150);
  });

  test('the loopback is refused: it has multicast off', () => {
    expect(() => resolveClientOptions(url, { multicastInterface: 'lo' }, '/')).toThrow(/interface "lo" has multicast off/);
  });

  const multicastIf = systemInterfaces().find((i) => i.multicast === true);
  (multicastIf ? test : test.skip)(`an interface of this host with multicast on is taken (${multicastIf?.name ?? 'none here'})`, () => {
    const name = (multicastIf as LocalInterface).name;
    expect(resolveClientOptions(url, { multicastInterface: name }, '/').multicastInterface).toBe(name);
  });

  test.each([
    [{ transport: 'quic' }, /transport is one of auto, multicast, udp, tcp/],
    [{ tcp: { host: '', port: 443 } }, /tcp.host must be/],
    [{ tcp: { host: '10.0.0.1', port: 0 } }, /tcp.port must be 1..65535/],
    [{ transport: '' }, /transport is one of/],
    [{ transport: 1 }, /transport is one of/],
    [{ fallbackAfterMs: 0 }, /fallbackAfterMs must be a positive number/],
    [{ fallbackAfterMs: -5 }, /fallbackAfterMs must be a positive number/],
    [{ fallbackAfterMs: Number.NaN }, /fallbackAfterMs must be a positive number/],
    [{ multicastInterface: 'no-such-if0' }, /no interface named "no-such-if0"/],
    [{ multicastInterface: '198.51.100.77' }, /no interface of this host has the address/],
    [{ multicastInterface: 'a/b' }, /not an interface name, index, or address/],
    [{ multicastInterface: '' }, /not an interface name, index, or address/],
  ])('refuses %p', (o, message) => {
    expect(() => resolveClientOptions(url, o as never, '/')).toThrow(InvalidClientOptionError);
    expect(() => resolveClientOptions(url, o as never, '/')).toThrow(message);
  });
});

function summary(channels: FetchSummary['channels'], more: Partial<FetchSummary> = {}): FetchSummary {
  return {
    objects: [],
    channels,
    bytes: 0,
    seconds: 1,
    packetsReceived: 10,
    bytesReceived: 100,
    symbolsReceived: 0,
    symbolsUsed: 0,
    symbolsDuplicate: 0,
    symbolsLate: 0,
    symbolsSurplus: 0,
    symbolsDropped: 0,
    fdtPackets: 0,
    neededSymbols: 0,
    symbolsResumed: 0,
    blocksResumed: 0,
    symbolsReplayed: 0,
    overhead: 0,
    replacements: 0,
    acksSent: 0,
    simulatedDrops: 0,
    multicastPackets: 7,
    multicastForeign: 3,
    socketDrops: 0,
    budgetDrops: 0,
    blocksEvicted: 0,
    peakPartialBlockBytes: 0,
    memoryBytes: 1,
    ...more,
  };
}

describe('the display', () => {
  test('--json: a line per transport event; the summary names each channel\'s transport and the multicast counters', () => {
    const client = new EventEmitter();
    const out = new PassThrough();
    const display = new ProgressDisplay(client, 'json', out, out);
    client.emit('transport', { channel: 'main', transport: 'multicast', reason: 'group-announced' });
    client.emit('transport', { channel: 'main', transport: 'udp', reason: 'no-data' });
    display.succeed(summary([{ name: 'main', tsi: 1, transport: 'udp', group: '[ff3e::1]:5000' }]));
    const lines = (out.read() as Buffer).toString().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toEqual({ type: 'transport', channel: 'main', transport: 'multicast', reason: 'group-announced' });
    expect(lines[1]).toEqual({ type: 'transport', channel: 'main', transport: 'udp', reason: 'no-data' });
    expect(lines[2]).toMatchObject({
      type: 'summary',
      channels: [{ name: 'main', tsi: 1, transport: 'udp', group: '[ff3e::1]:5000' }],
      multicastPackets: 7,
      multicastForeign: 3,
    });
  });

  test('on a terminal, a fallback is a line on stderr; the channel set at JOINED is not', () => {
    const client = new EventEmitter();
    const out = new PassThrough();
    const err = new PassThrough();
    new ProgressDisplay(client, 'bar', out, err);
    client.emit('transport', { channel: 'main', transport: 'multicast', reason: 'group-announced' });
    client.emit('transport', { channel: 'main', transport: 'udp', reason: 'silent' });
    expect((err.read() as Buffer).toString()).toBe('channel "main" now by udp: its group went silent\n');
  });

  test('on a terminal, the TCP step says why: UDP gave nothing, or TCP could not connect', () => {
    const client = new EventEmitter();
    const err = new PassThrough();
    new ProgressDisplay(client, 'bar', new PassThrough(), err);
    client.emit('transport', { channel: 'main', transport: 'udp', reason: 'no-group' });
    client.emit('transport', { channel: 'main', transport: 'tcp', reason: 'no-data' });
    client.emit('transport', { channel: 'main', transport: 'udp', reason: 'tcp-failed' });
    client.emit('transport', { channel: 'main', transport: 'tcp', reason: 'transport-tcp' });
    expect((err.read() as Buffer).toString()).toBe('channel "main" now by tcp: nothing arrived by UDP\nchannel "main" now by udp: no TCP connection could be made\n');
  });

  test('the summary line says which transport each channel ended on once a group is in play, and nothing otherwise', () => {
    expect(summaryLine(summary([{ name: 'main', tsi: 1, transport: 'multicast', group: '232.1.1.1:5000' }, { name: 'hd', tsi: 2, transport: 'udp' }]))).toMatch(
      /, main by multicast, hd by udp$/,
    );
    expect(summaryLine(summary([{ name: 'main', tsi: 1, transport: 'udp' }]))).not.toMatch(/by udp/);
    expect(summaryLine(summary([{ name: 'main', tsi: 1, transport: 'tcp' }]))).toMatch(/, main by tcp$/);
    expect(summaryJson(summary([{ name: 'main', tsi: 1, transport: 'udp' }])).channels).toEqual([{ name: 'main', tsi: 1, transport: 'udp' }]);
  });
});
