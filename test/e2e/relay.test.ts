// Relays (issue 11, docs/PROTOCOL.md §10.13), regenerate mode (and forward, d), with the
// real CLI between network namespaces (test/support/netns.ts). The origin
// is member 0 of a group of 3 in the server namespace; relay A (member 1,
// fed by the origin) in client namespace 0; relay B (member 2, fed by
// relay A) in client namespace 1; clients in the others.
//   (a) origin → relay A → relay B → 5 clients: every file bit-exact; and a
//       client combining origin, relay A and relay B gets 0 duplicates;
//   (b) a client combining the origin and relay A, relay A killed once the
//       client holds a third of the object: the client finishes from the
//       origin, keeping relay A's symbols (the origin alone sent fewer than
//       needed);
//   (c) the origin killed while relay A holds a third of the object, and
//       started again: relay A's one upstream fetch finishes (no second
//       attempt), it serves, and with the origin gone again a client still
//       gets the file bit-exact from relay A;
//   (d) forward mode: origin → forward relay A → forward relay B → 5
//       clients, bit-exact (the relays decode nothing; test/relay/
//       forward.test.ts pins down what they send).
import * as fs from 'fs';
import * as path from 'path';
import { NsProcess, probeNetns, Testbed } from '../support/netns';
import { cliOptions, describeRun, lastJson, rqcastArgv, sha256, sleep, startServer, stopProcess, tempDir, writeContent } from './helpers';

const probe = probeNetns();
if (!probe.ok) console.warn(`skipping e2e relay tests: ${probe.reason}`);
const describeNetns = probe.ok ? describe : describe.skip;

const PORT = 4433;
const RATE_MBPS = 8;
const BYTES = 3_000_000;
const CLIENTS = 5;

interface ServerShare {
  url: string;
  dropped?: string;
  symbols: number;
  duplicates: number;
}

/** The last "heldSymbols"/"neededSymbols" pair of a progress stream (fetch --json lines, or the relay's log). */
function heldFraction(text: string): number {
  const m = [...text.matchAll(/"heldSymbols":(\d+),"neededSymbols":(\d+)/g)].pop();
  return m && Number(m[2]) > 0 ? Number(m[1]) / Number(m[2]) : 0;
}

async function until(p: NsProcess, read: () => string, pred: (text: string) => boolean, what: string): Promise<void> {
  while (!pred(read())) {
    if (!p.running) throw new Error(describeRun(`${what}: the process ended first`, await p.wait()));
    await sleep(20);
  }
}

describeNetns('e2e: relays', () => {
  let bed: Testbed;
  let dir: string;
  let digest: string;
  let file: string;

  beforeAll(async () => {
    dir = tempDir('relay');
    file = path.join(dir, 'F.bin');
    digest = writeContent(file, BYTES, 21);
    bed = await Testbed.create({ clients: 2 + CLIENTS });
  });

  afterAll(() => {
    bed?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const origin = () => startServer(bed, bed.server.ns, [file, '--bind', bed.server.address, '--port', String(PORT), '--rate', String(RATE_MBPS), '--server-index', '0', '--servers', '3', '--quiet']);
  const url = (address: string) => `rqcast://${address}:${PORT}//F.bin`;

  /** Relay `index` (1: A in client ns 0, fed by the origin; 2: B in client ns 1, fed by A). Not awaited: it listens once it has every object. */
  function relay(index: 1 | 2, extra: string[] = [], forward = false): NsProcess {
    const node = bed.clients[index - 1];
    const upstream = index === 1 ? bed.server.address : bed.clients[0].address;
    // A forward relay's rate is a ceiling over what arrives: above its upstream's (docs/PROTOCOL.md §10.13).
    const place = forward ? ['--mode', 'forward', '--rate', String(2 * RATE_MBPS)] : ['--rate', String(RATE_MBPS), '--server-index', String(index), '--servers', '3'];
    const argv = rqcastArgv('relay', `rqcast://${upstream}:${PORT}`, '--bind', node.address, '--port', String(PORT), ...place, ...extra);
    return bed.spawn(node.ns, argv, cliOptions({ timeoutMs: 150_000 }));
  }

  function fetch(clientIndex: number, out: string, urls: string[]): NsProcess {
    const argv = rqcastArgv('fetch', ...urls, '-o', out, '--json', '--timeout', '30s', '--fallback-after', '500ms');
    return bed.spawn(bed.clients[clientIndex].ns, argv, cliOptions({ timeoutMs: 120_000 }));
  }

  it(`(a) origin → relay → relay → ${CLIENTS} clients, bit-exact; a client of all three gets 0 duplicates`, async () => {
    const o = await origin();
    const a = relay(1);
    const b = relay(2);
    try {
      await a.waitForStdout(/listening/, 60_000);
      await b.waitForStdout(/listening/, 60_000);
      const runs = Array.from({ length: CLIENTS }, (_, i) => {
        const out = path.join(dir, `a-${i}.bin`);
        return { out, p: fetch(2 + i, out, [url(bed.clients[1].address)]) };
      });
      for (const r of runs) {
        const res = await r.p.wait();
        if (res.code !== 0) throw new Error(describeRun('client of relay B', res));
        expect(sha256(r.out)).toBe(digest);
      }
      const out = path.join(dir, 'a-all.bin');
      const res = await fetch(2, out, [url(bed.server.address), url(bed.clients[0].address), url(bed.clients[1].address)]).wait();
      if (res.code !== 0) throw new Error(describeRun('client of all three', res));
      expect(sha256(out)).toBe(digest);
      const s = lastJson(res.stdout)!;
      const servers = s.servers as ServerShare[];
      console.log(`[e2e relay a] origin + relay A + relay B: symbols ${servers.map((v) => v.symbols).join(' + ')}, duplicates ${String(s.duplicates)}`);
      expect(s.duplicates).toBe(0);
      for (const v of servers) expect(v.symbols).toBeGreaterThan(0);
    } finally {
      for (const p of [a, b, o]) await stopProcess(p);
    }
  }, 170_000);

  it('(b) a client of the origin and a relay, the relay killed mid-transfer: finishes from the origin without starting again', async () => {
    const o = await origin();
    const a = relay(1);
    try {
      await a.waitForStdout(/listening/, 60_000);
      const out = path.join(dir, 'b.bin');
      const f = fetch(2, out, [url(bed.server.address), url(bed.clients[0].address)]);
      await until(f, () => f.stdout, (t) => heldFraction(t) >= 1 / 3, 'client of origin + relay A');
      a.kill('SIGKILL');
      const res = await f.wait();
      if (res.code !== 0) throw new Error(describeRun('client after relay A died', res));
      expect(sha256(out)).toBe(digest);
      const s = lastJson(res.stdout)!;
      const servers = s.servers as ServerShare[];
      console.log(`[e2e relay b] origin ${servers[0].symbols} + relay A ${servers[1].symbols} (${servers[1].dropped ?? 'kept'}), needed ${String(s.neededSymbols)}`);
      expect(servers[1].dropped).toMatch(/^(silent|failed)$/);
      expect(servers[1].symbols).toBeGreaterThan(0);
      expect(servers[0].symbols).toBeLessThan(Number(s.neededSymbols));
      expect(s.duplicates).toBe(0);
    } finally {
      for (const p of [a, o]) await stopProcess(p);
    }
  }, 170_000);

  it('(c) the origin stops mid-relay and comes back: the relay finishes on its first attempt, then serves with the origin gone', async () => {
    let o: NsProcess | undefined = await origin();
    // A short upstream session time: the relay's renewal reaches the restarted origin soon.
    const a = relay(1, ['--upstream-ttl', '2s']);
    try {
      await until(a, () => a.stderr, (t) => heldFraction(t) >= 1 / 3, 'relay A');
      expect(a.stdout).not.toMatch(/listening/);
      o.kill('SIGKILL');
      await o.wait();
      o = await origin();
      await a.waitForStdout(/listening/, 90_000);
      expect(a.stderr).not.toMatch(/trying again/);
      expect(a.stderr).toMatch(/"attempts":1,"msg":"upstream complete"/);
      await stopProcess(o);
      o = undefined;
      const out = path.join(dir, 'c.bin');
      const res = await fetch(2, out, [url(bed.clients[0].address)]).wait();
      if (res.code !== 0) throw new Error(describeRun('client of relay A with the origin gone', res));
      expect(sha256(out)).toBe(digest);
    } finally {
      await stopProcess(a);
      await stopProcess(o);
    }
  }, 170_000);

  it(`(d) forward mode: origin → relay → relay → ${CLIENTS} clients, bit-exact`, async () => {
    const o = await origin();
    const a = relay(1, [], true);
    const b = relay(2, [], true);
    try {
      await a.waitForStdout(/listening/, 60_000);
      await b.waitForStdout(/listening/, 60_000);
      const runs = Array.from({ length: CLIENTS }, (_, i) => {
        const out = path.join(dir, `d-${i}.bin`);
        return { out, p: fetch(2 + i, out, [url(bed.clients[1].address)]) };
      });
      for (const r of runs) {
        const res = await r.p.wait();
        if (res.code !== 0) throw new Error(describeRun('client of forward relay B', res));
        expect(sha256(r.out)).toBe(digest);
      }
    } finally {
      for (const p of [a, b, o]) await stopProcess(p);
    }
  }, 120_000);
});
