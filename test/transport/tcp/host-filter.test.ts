/**
 * HostFilter for real, in a network namespace this file creates
 * (test/support/netns.ts: a server namespace holding 10.200.0.1): the table
 * is installed with its drop rule, listed, removed, and a stale table (a
 * server killed with SIGKILL) is replaced at the next install. The nft
 * command runs inside the namespace (`ip netns exec NS nft`), so nothing
 * touches the host's own rule sets. The missing-binary and no-permission
 * errors are checked with a binary that does not exist and with nft in a
 * user namespace (no CAP_NET_ADMIN over any network namespace).
 */
import { spawnSync } from 'child_process';
import {
  HostFilter,
  hostFilterRuleset,
  hostFilterTable,
  NftMissingError,
  NftPermissionError,
} from '../../../lib/transport/tcp/host-filter';
import { probeNetns, Testbed } from '../../support/netns';

const probe = probeNetns();
if (!probe.ok) console.warn(`skipping host filter tests: ${probe.reason}`);
const describeNetns = probe.ok ? describe : describe.skip;

function nftIn(ns: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the rule set replaces a table of the same name in one transaction; 0.0.0.0 matches every address', () => {
  expect(hostFilterTable(4433)).toBe('rqcast_tcp_4433');
  const specific = hostFilterRuleset('10.0.0.1', 4433);
  expect(specific.split('\n').slice(0, 3)).toEqual(['table inet rqcast_tcp_4433', 'delete table inet rqcast_tcp_4433', 'table inet rqcast_tcp_4433 {']);
  expect(specific).toContain('ip daddr 10.0.0.1 tcp dport 4433 counter drop');
  expect(hostFilterRuleset('0.0.0.0', 80)).toContain('    tcp dport 80 counter drop');
  expect(hostFilterRuleset('0.0.0.0', 80)).not.toContain('daddr');
});

test('IPv6 or a bad port is refused before any nft call', () => {
  expect(() => new HostFilter({ address: '::1', port: 4433 })).toThrow(/IPv4 only/);
  expect(() => new HostFilter({ address: '10.0.0.1', port: 0 })).toThrow(/1\.\.65535/);
});

test('no nft binary: NftMissingError', async () => {
  const f = new HostFilter({ address: '10.0.0.1', port: 4433, nft: ['/nonexistent/rqcast-test/nft'] });
  await expect(f.install()).rejects.toBeInstanceOf(NftMissingError);
  await expect(f.install()).rejects.toMatchObject({ code: 'ERR_RQ_TCP_NO_NFT' });
});

const userns = spawnSync('unshare', ['-U', 'true']).status === 0;
(userns ? test : test.skip)('no CAP_NET_ADMIN (nft in a user namespace): NftPermissionError', async () => {
  const f = new HostFilter({ address: '10.0.0.1', port: 4433, nft: ['unshare', '-U', 'nft'] });
  await expect(f.install()).rejects.toBeInstanceOf(NftPermissionError);
  await expect(f.remove()).rejects.toMatchObject({ code: 'ERR_RQ_TCP_FILTER_PERMISSION' });
});

describeNetns('in a namespace', () => {
  let bed: Testbed;
  let ns: string;

  beforeAll(async () => {
    bed = await Testbed.create({ clients: 0 });
    ns = bed.server.ns;
  });

  afterAll(() => bed?.destroy());

  test('install: the table is there with its drop rule; remove: it is gone; remove again: nothing to do', async () => {
    const f = new HostFilter({ address: bed.server.address, port: 4433, nft: Testbed.nsArgv(ns, ['nft']) });
    await f.install();
    const listed = nftIn(ns, ['list', 'table', 'inet', 'rqcast_tcp_4433']);
    expect(listed.status).toBe(0);
    expect(listed.stdout).toMatch(/type filter hook input priority raw; policy accept;|type filter hook input priority -300; policy accept;/);
    expect(listed.stdout).toMatch(new RegExp(`ip daddr ${bed.server.address.replace(/\./g, '\\.')} tcp dport 4433 counter packets \\d+ bytes \\d+ drop`));
    await f.remove();
    expect(nftIn(ns, ['list', 'table', 'inet', 'rqcast_tcp_4433']).status).not.toBe(0);
    expect(nftIn(ns, ['list', 'tables']).stdout).not.toContain('rqcast_tcp_4433');
    await expect(f.remove()).resolves.toBeUndefined();
  });

  test('a stale table of the same name (a killed server) is replaced, not added to', async () => {
    // What a server killed before its close() leaves: the table with other contents.
    const stale = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input: 'table inet rqcast_tcp_5000 {\n chain input {\n type filter hook input priority 0; policy accept;\n tcp dport 5000 counter drop\n }\n chain leftover {\n }\n}\n',
      encoding: 'utf8',
    });
    expect(stale.status).toBe(0);
    const f = new HostFilter({ address: '0.0.0.0', port: 5000, nft: Testbed.nsArgv(ns, ['nft']) });
    await f.install();
    const listed = nftIn(ns, ['list', 'table', 'inet', 'rqcast_tcp_5000']).stdout;
    expect(listed).not.toContain('leftover');
    expect(listed.match(/drop/g)).toHaveLength(1);
    expect(listed).toMatch(/\ttcp dport 5000 counter packets \d+ bytes \d+ drop/);
    // Installing twice in a row is the same as once.
    await f.install();
    expect(nftIn(ns, ['list', 'table', 'inet', 'rqcast_tcp_5000']).stdout.match(/drop/g)).toHaveLength(1);
    await f.remove();
    expect(nftIn(ns, ['list', 'tables']).stdout).not.toContain('rqcast_tcp_5000');
  });

  test('the rule drops what it should: a SYN to the port gets no RST from the host stack', async () => {
    const f = new HostFilter({ address: bed.server.address, port: 4433, nft: Testbed.nsArgv(ns, ['nft']) });
    await f.install();
    try {
      // A connect inside the namespace to its own address: without the rule the stack refuses at once (RST).
      const script = `const s=require('net').connect({host:'${bed.server.address}',port:4433});s.setTimeout(300,()=>{console.log('timeout');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)});`;
      const r = await bed.run(ns, [process.execPath, '-e', script]);
      expect(r.stdout.trim()).toBe('timeout');
    } finally {
      await f.remove();
    }
    const script = `const s=require('net').connect({host:'${bed.server.address}',port:4433});s.setTimeout(2000,()=>{console.log('timeout');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)});`;
    const r = await bed.run(ns, [process.execPath, '-e', script]);
    expect(r.stdout.trim()).toBe('ECONNREFUSED');
  });
});
