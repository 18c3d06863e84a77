/**
 * `rqcast fetch` and TCP (issue 9): the parsers of --tcp and of
 * `serve --tcp`, and what --help says. (Fetches over TCP are in
 * test/client/tcp.test.ts; serve --tcp in test/server/tcp.test.ts.)
 */
import { UsageError } from '../../lib/cli/errors';
import { buildProgram } from '../../lib/cli/main';
import { parseTcpEndpoint, parseTcpListen } from '../../lib/cli/options';

describe('parseTcpListen (serve --tcp [ADDR:]PORT)', () => {
  test.each([
    ['443', { port: 443 }],
    [' 8443 ', { port: 8443 }],
    ['0.0.0.0:4433', { address: '0.0.0.0', port: 4433 }],
    ['192.0.2.10:65535', { address: '192.0.2.10', port: 65535 }],
  ])('%p', (text, spec) => {
    expect(parseTcpListen(text)).toEqual(spec);
  });
  test.each(['', '0', '65536', '[::1]:443', '::1:443', 'host:443', '1.2.3:80', '1.2.3.4:', '1.2.3.4:-1'])('refuses %p', (text) => {
    expect(() => parseTcpListen(text)).toThrow(UsageError);
    expect(() => parseTcpListen(text)).toThrow(/\[ADDR:\]PORT .*IPv4/);
  });
});

describe('parseTcpEndpoint (fetch --tcp HOST:PORT)', () => {
  test.each([
    ['server.example:443', { host: 'server.example', port: 443 }],
    ['10.0.0.1:4433', { host: '10.0.0.1', port: 4433 }],
  ])('%p', (text, hp) => {
    expect(parseTcpEndpoint(text)).toEqual(hp);
  });
  test.each(['10.0.0.1', '10.0.0.1:0', ':443', 'a b:1'])('refuses %p', (text) => {
    expect(() => parseTcpEndpoint(text)).toThrow(UsageError);
  });
});

test('--help: fetch names tcp among the transports, and --tcp; serve has --tcp', () => {
  const program = buildProgram();
  const fetch = program.commands.find((c) => c.name() === 'fetch')?.helpInformation().replace(/\s+/g, ' ') ?? '';
  expect(fetch).toMatch(/--transport <mode> .*then TCP.*tcp: one TCP connection/);
  expect(fetch).toMatch(/--tcp <host:port> where the server's TCP transport is/);
  const serve = program.commands.find((c) => c.name() === 'serve')?.helpInformation().replace(/\s+/g, ' ') ?? '';
  expect(serve).toMatch(/--tcp \[addr:port\] also serve over TCP/);
});
