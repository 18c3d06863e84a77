/**
 * `rqcast fetch` and multicast (docs/PROTOCOL.md §10.9, §10.10): the
 * parsers of --transport and --multicast-if, and every bad value or
 * combination exiting 2 before anything is sent. (The options at work, and
 * flute:// fetches, are in test/client/multicast.test.ts, in a network
 * namespace.)
 */
import { UsageError } from '../../lib/cli/errors';
import { buildProgram } from '../../lib/cli/main';
import { parseJoinInterface, parseTransportMode } from '../../lib/cli/options';
import { runHere } from './support';

describe('parseTransportMode', () => {
  test.each(['auto', 'multicast', 'udp', 'tcp', ' udp '])('%p', (t) => {
    expect(parseTransportMode(t)).toBe(t.trim());
  });
  test.each(['', 'TCP', 'UDP', 'multi', 'auto,udp', 'quic'])('refuses %p', (t) => {
    expect(() => parseTransportMode(t)).toThrow(UsageError);
    expect(() => parseTransportMode(t)).toThrow(/a transport is one of auto, multicast, udp, tcp/);
  });
});

describe('parseJoinInterface', () => {
  test.each([
    ['an unknown name', 'no-such-if0', /no interface named "no-such-if0"/],
    ['an address of no interface', '198.51.100.7', /no interface of this host has the address/],
    ['an unknown index', '4000000000', /no interface of this host has index/],
    ['the loopback (multicast off)', 'lo', /has multicast off/],
    ['not an interface at all', 'eth0:1', /not an interface name, index, or address/],
    ['empty', '', /not an interface name, index, or address/],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseJoinInterface(text)).toThrow(UsageError);
    expect(() => parseJoinInterface(text)).toThrow(message);
  });
});

describe('rqcast fetch: bad multicast values and combinations exit 2', () => {
  // Nothing listens there: a usage error is the only way these return at once.
  const server = 'rqcast://127.0.0.1:9';
  const group = 'flute://232.1.1.1:5000?tsi=1';
  test.each([
    [[server, '--transport', 'quic'], /a transport is one of/],
    [[server, '--tcp', '[::1'], /is not HOST:PORT/],
    [[server, '--tcp', '10.0.0.1:0'], /is not HOST:PORT/],
    [[group, '--transport', 'tcp'], /--transport tcp needs a server/],
    [[group, '--tcp', '10.0.0.1:443'], /--tcp needs a server/],
    [[server, '--transport'], /argument missing/],
    [[server, '--fallback-after', '0'], /must be a positive duration/],
    [[server, '--fallback-after', 'soon'], /is not a duration/],
    [[server, '--multicast-if', 'no-such-if0'], /no interface named/],
    [[server, '--multicast-if', 'lo'], /multicast off/],
    [['flute://232.1.1.1:5000'], /missing \?tsi=N/],
    [['flute://10.0.0.1:5000?tsi=1'], /not a multicast address/],
    [['flute://232.1.1.1:5000?tsi=1&if=no-such-if0'], /no interface named "no-such-if0"/],
    [['flute://232.1.1.1:5000?tsi=1&source=232.1.1.2'], /not a unicast address/],
    [[group, '--ttl', '5s'], /--ttl needs a server/],
    [[group, '--until', '2099-01-01T00:00:00Z'], /--until needs a server/],
    [[group, '--ack'], /--ack needs a server/],
    [[group, '--transport', 'udp'], /--transport udp needs a server/],
    [[group, '--fallback-after', '1s'], /--fallback-after needs a server/],
  ])('%p', async (args, message) => {
    const r = await runHere(['fetch', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});

test('--help lists the multicast options and a flute:// example', () => {
  const fetch = buildProgram().commands.find((c) => c.name() === 'fetch');
  const text = fetch?.helpInformation() ?? '';
  for (const opt of ['--transport', '--fallback-after', '--multicast-if', 'flute://GROUP:PORT']) expect(text).toContain(opt);
});
