/**
 * The option parsers every command shares (lib/cli/options.ts): each rule
 * on its own, then through commander and `rqcast` itself, where a bad value
 * exits 2 with one clear message naming the option.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../../lib/cli/errors';
import { buildProgram } from '../../lib/cli/main';
import {
  hexSecret,
  integerIn,
  localUnicastAddress,
  MAX_MEBIBYTES,
  MAX_RATE_MBPS,
  networkInterface,
  optionParser,
  parseAbsoluteTime,
  parseDuration,
  parseHostPort,
  parseMebibytes,
  parseMulticastGroup,
  parseMulticastTtl,
  Parser,
  parsePort,
  parsePositiveInteger,
  parseRateMbps,
  UNCAPPED_RATE_REFUSED,
  percentage,
  positiveNumberUpTo,
  repeatableOptionParser,
} from '../../lib/cli/options';
import { runHere } from './support';

/** Checks `parse` on each accepted text and that each refused one throws a UsageError. */
function rule<T>(parse: Parser<T>, accepted: Array<[string, T]>, refused: string[]): void {
  test.each(accepted)('accepts %j', (text, want) => expect(parse(text)).toEqual(want));
  test.each(refused)('refuses %j with a UsageError', (text) => expect(() => parse(text)).toThrow(UsageError));
}

describe('parsePort: 0..65535, decimal digits', () => {
  rule(parsePort, [['0', 0], ['4433', 4433], [' 65535 ', 65535]], ['65536', '-1', '1.5', '0x10', '', ' ', 'port', '1e3']);
});

describe('integerIn (e.g. --symbol-size 16..65456 bytes)', () => {
  const parse = integerIn(16, 65_456, 'symbol size', 'bytes');
  rule(parse, [['16', 16], ['1280', 1280], ['65456', 65_456]], ['15', '65457', '1280.0', '12e2', '']);
  test('the message names the value, its range and unit', () => {
    expect(() => parse('8')).toThrow('symbol size is an integer 16..65456 (bytes)');
  });
});

describe('parsePositiveInteger', () => {
  rule(parsePositiveInteger, [['1', 1], ['9007199254740991', Number.MAX_SAFE_INTEGER]], ['0', '-3', '2.5', '9007199254740992', 'many']);
});

describe('parseRateMbps: 0 (uncapped) is refused with the reason and the fix', () => {
  test.each(['0', '-0', ' 0.0 ', '0e3'])('%j', (text) => {
    expect(() => parseRateMbps(text)).toThrow(UNCAPPED_RATE_REFUSED);
  });
});

describe('parseRateMbps: > 0, fractions allowed, at most MAX_RATE_MBPS', () => {
  rule(parseRateMbps, [['100', 100], ['2.5', 2.5], ['0.001', 0.001], [String(MAX_RATE_MBPS), MAX_RATE_MBPS]], ['0', '-1', '', 'fast', 'Infinity', String(MAX_RATE_MBPS + 1)]);
  test('positiveNumberUpTo carries its own message', () => {
    expect(() => positiveNumberUpTo(10, 'a weight is in (0, 10]')('11')).toThrow('a weight is in (0, 10]');
  });
});

describe('parseMebibytes: the one --memory rule of serve and fetch, whole MiB 1..2^30', () => {
  rule(parseMebibytes, [['1', 1], ['512', 512], [' 1024 ', 1024], [String(MAX_MEBIBYTES), MAX_MEBIBYTES]], ['0', '1.5', '0.5', '1e3', '-1', 'lots', '', String(MAX_MEBIBYTES + 1)]);
  test('MiB * 2^20 is an exact number of bytes for every accepted value', () => {
    expect(Number.isSafeInteger(MAX_MEBIBYTES * 2 ** 20)).toBe(true);
  });
});

describe('percentage', () => {
  describe('[0, 1000] (serve --pass-overhead, % of K)', () => {
    rule(percentage(1000, { of: 'K' }), [['0', 0], ['15', 15], ['12.5', 12.5], ['1000', 1000]], ['-5', '1000.1', '', 'some']);
  });
  describe('[0, 100) (fetch --loss)', () => {
    rule(percentage(100, { maxExcluded: true }), [['0', 0], ['10', 10], ['99.9', 99.9]], ['100', '150', '-1', '']);
  });
  test('messages say the range and whether its end is included', () => {
    expect(() => percentage(100, { maxExcluded: true })('100')).toThrow('a percentage in [0, 100)');
    expect(() => percentage(1000, { of: 'K' })('-1')).toThrow('a percentage of K in [0, 1000]');
  });
});

describe('parseDuration: 500ms, 30s, 2m, 1h, 1.5s or bare seconds -> ms', () => {
  rule(
    parseDuration,
    [['500ms', 500], ['30s', 30_000], ['2m', 120_000], ['1h', 3_600_000], ['1.5s', 1500], ['45', 45_000], [' 5 s ', 5000]],
    ['soon', '', '0', '0s', '0.0001ms', '-5s', '5d', '1e3'],
  );
});

describe('parseAbsoluteTime: ISO 8601 date-time -> Unix ms', () => {
  rule(parseAbsoluteTime, [['2030-01-01T00:00:00Z', Date.UTC(2030, 0, 1)], ['2030-01-01T01:00:00+01:00', Date.UTC(2030, 0, 1)]], ['2030-01-01', 'tomorrow', '2030-13-01T00:00:00Z', '']);
});

describe('parseHostPort: HOST:PORT, IPv6 in brackets (e.g. a multicast GROUP:PORT)', () => {
  rule(
    parseHostPort,
    [
      ['239.1.2.3:5000', { host: '239.1.2.3', port: 5000 }],
      ['[ff02::1]:4433', { host: 'ff02::1', port: 4433 }],
      ['relay.example:1', { host: 'relay.example', port: 1 }],
    ],
    ['239.1.2.3', ':5000', '239.1.2.3:0', '239.1.2.3:65536', 'ff02::1:5000', '[ff02::1]', '[nothex]:5000', 'a b:1', 'h:1:2', ''],
  );
});

describe('parseMulticastGroup: GROUP:PORT, a multicast address (IPv6 in brackets), port 1..65535', () => {
  rule(
    parseMulticastGroup,
    [
      ['239.1.2.3:5000', { group: '239.1.2.3', port: 5000 }],
      ['224.0.0.0:1', { group: '224.0.0.0', port: 1 }],
      ['[ff3e::8000:1]:65535', { group: 'ff3e::8000:1', port: 65535 }],
      ['[FF15:0::1]:4000', { group: 'ff15::1', port: 4000 }],
      [' 239.001.2.3:5000 ', { group: '239.1.2.3', port: 5000 }],
    ],
    [
      '10.0.0.1:5000',
      '240.0.0.1:5000',
      '[2001:db8::1]:5000',
      '[::ffff:239.1.1.1]:5000',
      'group.example:5000',
      '239.1.2.3:0',
      '239.1.2.3:65536',
      '239.1.2.3',
      'ff3e::1:5000',
      '[ff3e::1]',
      '[ff02::1%eth0]:5000',
      ':5000',
      '',
    ],
  );
  test('messages say what a group is', () => {
    expect(() => parseMulticastGroup('10.0.0.1:5000')).toThrow('10.0.0.1 is not a multicast group (224.0.0.0/4 or ff00::/8)');
    expect(() => parseMulticastGroup('239.1.2.3:0')).toThrow('"239.1.2.3:0" is not GROUP:PORT (a multicast address, 224.0.0.0/4 or ff00::/8, IPv6 in brackets, and a port 1..65535)');
  });
});

describe('parseMulticastTtl: 0..255 hops', () => {
  rule(parseMulticastTtl, [['0', 0], ['1', 1], ['255', 255]], ['256', '-1', '1.5', '', 'one']);
  test('the message', () => expect(() => parseMulticastTtl('256')).toThrow('a multicast TTL is an integer 0..255 (hops)'));
});

describe('networkInterface and localUnicastAddress: checked against the host', () => {
  const HOST = () => ({
    eth0: [
      { address: '192.0.2.10', netmask: '255.255.255.0', family: 'IPv4' as const, mac: '02:00:00:00:00:01', internal: false, cidr: null },
      { address: '2001:db8::10', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6' as const, mac: '02:00:00:00:00:01', internal: false, cidr: null, scopeid: 0 },
    ],
  });
  describe('networkInterface', () => {
    rule(networkInterface(HOST), [['eth0', 'eth0'], ['192.0.2.10', '192.0.2.10'], [' 2001:db8::10 ', '2001:db8::10']], ['eth1', '192.0.2.11', '', 'lo']);
    test('the message', () => expect(() => networkInterface(HOST)('eth1')).toThrow('"eth1" is neither a network interface nor an address of this host'));
  });
  describe('localUnicastAddress', () => {
    rule(localUnicastAddress(HOST), [['192.0.2.10', '192.0.2.10'], ['2001:DB8:0::10', '2001:db8::10']], ['192.0.2.11', 'eth0', '239.1.1.1', '0.0.0.0', '::ffff:192.0.2.10', '']);
    test('the message', () => expect(() => localUnicastAddress(HOST)('192.0.2.11')).toThrow('"192.0.2.11" is not a unicast address of this host'));
  });
  test('the default host: loopback by name and address', () => {
    expect(networkInterface()('lo')).toBe('lo');
    expect(localUnicastAddress()('127.0.0.1')).toBe('127.0.0.1');
  });
});

describe('hexSecret(16): at least 16 bytes of hex', () => {
  const parse = hexSecret(16);
  rule(parse, [['00'.repeat(16), new Uint8Array(16)], ['AbCd'.repeat(8), new Uint8Array(Buffer.from('abcd'.repeat(8), 'hex'))]], ['abcd', '0'.repeat(31), 'zz'.repeat(16), '0'.repeat(33)]);
  test('the message says how long', () => {
    expect(() => parse('abcd')).toThrow('the secret is at least 16 bytes in hex (32+ hex digits)');
  });
});

describe('adapting to commander', () => {
  test('optionParser turns a UsageError into commander usage error with the same message, and passes values through', () => {
    const p = optionParser(parseMebibytes);
    expect(p('64')).toBe(64);
    let caught: unknown;
    try {
      p('1.5');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError);
    expect((caught as Error).message).toBe('a memory size is a whole number of MiB, 1..1073741824');
  });

  test('optionParser lets other errors through unchanged (a bug is not a usage error)', () => {
    const bug = new TypeError('bug');
    expect(() =>
      optionParser(() => {
        throw bug;
      })('x'),
    ).toThrow(bug);
  });

  test('repeatableOptionParser collects in order and never mutates the default', () => {
    const empty: number[] = [];
    const cmd = new Command()
      .exitOverride()
      .addOption(new Option('--n <n>').default(empty).argParser(repeatableOptionParser(parsePositiveInteger)))
      .action(() => undefined);
    cmd.parse(['--n', '3', '--n', '1'], { from: 'user' });
    expect(cmd.opts().n).toEqual([3, 1]);
    expect(empty).toEqual([]);
  });
});

describe('both commands read --memory by the same rule', () => {
  const memoryOption = (command: string): Option => {
    const cmd = buildProgram().commands.find((c) => c.name() === command);
    const opt = cmd?.options.find((o) => o.long === '--memory');
    if (!opt?.parseArg) throw new Error(`${command} has no --memory parser`);
    return opt;
  };
  test.each(['serve', 'fetch'])('%s --memory: whole MiB, fractions refused', (command) => {
    const parse = memoryOption(command).parseArg as (v: string, prev: unknown) => number;
    expect(parse('64', undefined)).toBe(64);
    for (const bad of ['1.5', '0.5', '0', 'lots']) expect(() => parse(bad, undefined)).toThrow(InvalidArgumentError);
  });
  test('defaults and help are what they were: serve 512, fetch 1024', () => {
    expect([memoryOption('serve').defaultValue, memoryOption('fetch').defaultValue]).toEqual([512, 1024]);
  });
});

describe('rqcast: a bad option value exits 2 with one clear message naming the option', () => {
  test.each([
    [['serve', 'x.bin', '--memory', '1.5'], /option '--memory <mib>' argument '1\.5' is invalid\. a memory size is a whole number of MiB/],
    [['fetch', 'rqcast://h:1', '--memory', '1.5'], /option '--memory <MiB>' argument '1\.5' is invalid\. a memory size is a whole number of MiB/],
    [['serve', 'x.bin', '--memory', '0'], /a memory size is a whole number of MiB, 1\.\.1073741824/],
    [['serve', 'x.bin', '--rate', 'fast'], /'--rate <mbps>' argument 'fast' is invalid\. a rate is a positive number of Mbit\/s/],
    [['serve', 'x.bin', '--rate', '0'], /'--rate <mbps>' argument '0' is invalid\. a rate is a positive number of Mbit\/s: 0 \(no cap\) is not offered, because .*README "Choosing a rate".*e\.g\. 100/],
    [['serve', 'x.bin', '--channel', 'x:a.bin:0.0'], /0 \(no cap\) is not offered/],
    [['relay', 'rqcast://h:1', '--rate', '0'], /'--rate <mbps>' argument '0' is invalid\. .*0 \(no cap\) is not offered/],
    [['serve', 'x.bin', '--port', '70000'], /'--port <port>'.*a port is an integer 0\.\.65535/],
    [['serve', 'x.bin', '--symbol-size', '8'], /symbol size is an integer 16\.\.65456 \(bytes\)/],
    [['serve', 'x.bin', '--pass-overhead', '-5'], /a percentage of K in \[0, 1000\]/],
    [['serve', 'x.bin', '--secret', 'abcd'], /the secret is at least 16 bytes in hex/],
    [['serve', 'x.bin', '--channel', 'nocolon'], /--channel nocolon: expected NAME:FILE/],
    [['serve', 'x.bin', '--channel', 'x:a.bin:0'], /a rate is a positive number of Mbit\/s/],
    [['serve', 'x.bin', '--multicast', '10.0.0.1:5000'], /'--multicast <group:port>' argument '10\.0\.0\.1:5000' is invalid\. 10\.0\.0\.1 is not a multicast group/],
    [['serve', 'x.bin', '--multicast', '239.1.1.1:0'], /'--multicast <group:port>'.*is not GROUP:PORT/],
    [['serve', 'x.bin', '--multicast-ttl', '256'], /'--multicast-ttl <hops>'.*a multicast TTL is an integer 0\.\.255/],
    [['serve', 'x.bin', '--multicast-if', 'rqcast-no-such-if0'], /'--multicast-if <addr\|name>'.*is neither a network interface nor an address of this host/],
    [['serve', 'x.bin', '--multicast-source', '239.1.1.1'], /'--multicast-source <addr>'.*is not a unicast address of this host/],
    [['serve', 'x.bin', '--channel', 'x:a.bin@239.1.1.1'], /--channel x:a\.bin@239\.1\.1\.1: "239\.1\.1\.1" is not GROUP:PORT/],
    [['fetch', 'rqcast://h:1', '--ttl', 'soon'], /"soon" is not a duration/],
    [['fetch', 'rqcast://h:1', '--timeout', '0s'], /"0s" must be a positive duration/],
    [['fetch', 'rqcast://h:1', '--until', 'tomorrow'], /is not an ISO 8601 date-time/],
    [['fetch', 'rqcast://h:1', '--loss', '100'], /a percentage in \[0, 100\)/],
  ])('%j', async (args, message) => {
    const r = await runHere(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    // The error line, then commander's pointer to --help.
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^error: /), '(run with --help for usage)']);
  });
});
