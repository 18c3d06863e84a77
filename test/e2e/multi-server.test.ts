// A client combining the servers of one group (issue 11, docs/PROTOCOL.md
// §10.12), with the real CLI between network namespaces
// (test/support/netns.ts): member 0 in the server namespace, member 1 in
// another, each capped at RATE Mbit/s by its own pacing, one client
// fetching from both with `rqcast fetch URL_A URL_B`.
//   (a) both members to the end: the file is bit-exact, no symbol arrived
//       twice, and each member gave a share of the symbols (counted by the
//       client, per server);
//   (c) the control: two servers NOT in a group (both alone, so both
//       send ESI 0, 1, 2, ...): the same count finds duplicates, so (a)'s
//       zero is a measurement, not a constant;
//   (d) the same over TCP (--transport tcp: one connection per member);
//   (b) member 1 killed (SIGKILL) once the client holds a third of the
//       symbols: the client drops it and finishes from member 0 alone,
//       without starting the object again: member 0 sent fewer symbols than
//       the object needs, so member 1's symbols from before its death were
//       used.
import * as fs from 'fs';
import * as path from 'path';
import { probeNetns, Testbed } from '../support/netns';
import { cliOptions, describeRun, lastJson, rqcastArgv, sha256, sleep, startServer, stopProcess, tempDir, writeContent } from './helpers';

const probe = probeNetns();
if (!probe.ok) console.warn(`skipping e2e multi-server tests: ${probe.reason}`);
const describeNetns = probe.ok ? describe : describe.skip;

const PORT = 4433;
const RATE_MBPS = 8;
const BYTES = 3_000_000;

interface ServerShare {
  url: string;
  joined: boolean;
  dropped?: string;
  packets: number;
  symbols: number;
  duplicates: number;
}

describeNetns('e2e: one client combining the servers of a group', () => {
  let bed: Testbed;
  let dir: string;
  let digest: string;
  let file: string;

  beforeAll(async () => {
    dir = tempDir('multi');
    file = path.join(dir, 'F.bin');
    digest = writeContent(file, BYTES, 11);
    bed = await Testbed.create({ clients: 2 });
  });

  afterAll(() => {
    bed?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Member `index` of 2, in the server namespace (0) or in client namespace 1 (1); `grouped` false: a server alone; `tcp`: also over TCP. */
  function member(index: number, grouped = true, tcp = false) {
    const node = index === 0 ? bed.server : bed.clients[1];
    const group = grouped ? ['--server-index', String(index), '--servers', '2'] : [];
    const args = [file, '--bind', node.address, '--port', String(PORT), '--rate', String(RATE_MBPS), ...group, '--quiet', ...(tcp ? ['--tcp'] : [])];
    return { node, start: () => startServer(bed, node.ns, args) };
  }

  function urls(): string[] {
    return [`rqcast://${bed.server.address}:${PORT}//F.bin`, `rqcast://${bed.clients[1].address}:${PORT}//F.bin`];
  }

  function fetchBoth(out: string, extra: string[] = []) {
    const argv = rqcastArgv('fetch', ...urls(), '-o', out, '--json', '--timeout', '30s', '--fallback-after', '500ms', ...extra);
    return bed.spawn(bed.clients[0].ns, argv, cliOptions({ timeoutMs: 120_000 }));
  }

  it('(a) both members: bit-exact, 0 duplicates, each member sent a share of the symbols', async () => {
    const a = await member(0).start();
    const b = await member(1).start();
    try {
      const out = path.join(dir, 'a.bin');
      const res = await fetchBoth(out).wait();
      if (res.code !== 0) throw new Error(describeRun('fetch from both', res));
      expect(sha256(out)).toBe(digest);
      const s = lastJson(res.stdout)!;
      const servers = s.servers as ServerShare[];
      expect(servers.map((v) => v.url)).toEqual(urls());
      expect(s.duplicates).toBe(0);
      for (const v of servers) expect(v.duplicates).toBe(0);
      const total = servers[0].symbols + servers[1].symbols;
      const shares = servers.map((v) => v.symbols / total);
      console.log(`[e2e multi a] symbols per server ${servers.map((v) => v.symbols).join(' + ')} (needed ${String(s.neededSymbols)}), overhead ${String(s.overhead)}`);
      // Same rate, same start (give or take the second JOIN): about half each.
      for (const share of shares) {
        expect(share).toBeGreaterThan(0.3);
        expect(share).toBeLessThan(0.7);
      }
    } finally {
      await stopProcess(a);
      await stopProcess(b);
    }
  }, 150_000);

  it('(c) control: two servers not in a group send the same symbols, and the client counts the duplicates', async () => {
    const a = await member(0, false).start();
    const b = await member(1, false).start();
    try {
      const out = path.join(dir, 'c.bin');
      const res = await fetchBoth(out).wait();
      if (res.code !== 0) throw new Error(describeRun('fetch from two lone servers', res));
      expect(sha256(out)).toBe(digest);
      const s = lastJson(res.stdout)!;
      const servers = s.servers as ServerShare[];
      console.log(`[e2e multi c] symbols per server ${servers.map((v) => v.symbols).join(' + ')}, duplicates ${String(s.duplicates)}`);
      expect(Number(s.duplicates)).toBeGreaterThan(0);
      expect(Number(s.duplicates)).toBe(servers[0].duplicates + servers[1].duplicates);
    } finally {
      await stopProcess(a);
      await stopProcess(b);
    }
  }, 150_000);

  it('(d) over TCP: one connection per member, bit-exact, 0 duplicates, both contributed', async () => {
    const a = await member(0, true, true).start();
    const b = await member(1, true, true).start();
    try {
      const out = path.join(dir, 'd.bin');
      const res = await fetchBoth(out, ['--transport', 'tcp']).wait();
      if (res.code !== 0) throw new Error(describeRun('fetch from both over TCP', res));
      expect(sha256(out)).toBe(digest);
      const s = lastJson(res.stdout)!;
      const servers = s.servers as (ServerShare & { transport: string })[];
      console.log(`[e2e multi d] TCP: symbols per server ${servers.map((v) => v.symbols).join(' + ')}, duplicates ${String(s.duplicates)}`);
      expect(servers.map((v) => v.transport)).toEqual(['tcp', 'tcp']);
      expect(s.duplicates).toBe(0);
      for (const v of servers) expect(v.symbols).toBeGreaterThan(0);
    } finally {
      await stopProcess(a);
      await stopProcess(b);
    }
  }, 150_000);

  it('(b) member 1 killed mid-transfer: the client drops it and finishes from member 0, keeping what member 1 sent', async () => {
    const a = await member(0).start();
    const b = await member(1).start();
    try {
      const out = path.join(dir, 'b.bin');
      const fetch = fetchBoth(out);
      // Kill member 1 once the client holds a third of what it needs (read from its progress lines).
      for (;;) {
        const held = [...fetch.stdout.matchAll(/"type":"progress".*?"heldSymbols":(\d+),"neededSymbols":(\d+)/g)].pop();
        if (held && Number(held[2]) > 0 && Number(held[1]) * 3 >= Number(held[2])) break;
        if (!fetch.running) throw new Error(describeRun('fetch ended before member 1 was killed', await fetch.wait()));
        await sleep(20);
      }
      b.kill('SIGKILL');
      const res = await fetch.wait();
      if (res.code !== 0) throw new Error(describeRun('fetch after member 1 died', res));
      expect(sha256(out)).toBe(digest);
      const s = lastJson(res.stdout)!;
      const servers = s.servers as ServerShare[];
      console.log(`[e2e multi b] symbols per server ${servers.map((v) => `${v.symbols}${v.dropped ? ` (${v.dropped})` : ''}`).join(' + ')} (needed ${String(s.neededSymbols)})`);
      expect(servers[1].joined).toBe(true);
      expect(servers[1].dropped).toMatch(/^(silent|failed)$/);
      expect(servers[0].dropped).toBeUndefined();
      expect(servers[1].symbols).toBeGreaterThan(0);
      // No restart: member 0 alone sent less than the object needs; the rest came from member 1 before it died.
      expect(servers[0].symbols).toBeLessThan(Number(s.neededSymbols));
      expect(s.duplicates).toBe(0);
      expect(res.stdout).toMatch(/"type":"warning","message":"[^"]*carrying on with the other servers/);
    } finally {
      await stopProcess(a);
      await stopProcess(b);
    }
  }, 150_000);
});
