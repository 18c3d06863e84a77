// rqcast over its user-space TCP (issue 9), with the real CLI between
// network namespaces (test/support/netns.ts): the server in one namespace,
// `rqcast serve --tcp`; kernel TCP clients (`rqcast fetch --transport tcp`,
// an ordinary net.Socket) in others, with nftables dropping a share of the
// server's segments on their input hook.
//   (a) bit-exact at 0 %, 2 % and 10 % loss, three clients at once;
//   (b) the wire: a capture on the server's side shows every retransmitted
//       segment under its original sequence number with the same length
//       and frame boundaries and (>= 99 % of them) other symbols, and the
//       client never received a symbol twice; the server sent GSO packets
//       (its metrics), and with the link's offloads off the kernel cut
//       them, before the capture, into exactly those segments, each with
//       its checksum right;
//   (b2) a TCP client's NEED reports end the server's passes early;
//   (c) the fallback chain's last step: a client whose namespace drops all
//       UDP from the server ends on TCP with `--transport auto`;
//   (d) the host filter: nothing left after the server exits, and a table
//       left by a SIGKILLed server is replaced at the next start.
import * as fs from 'fs';
import * as path from 'path';
import { probeNetns, Testbed } from '../support/netns';
import { readTcpSegments } from '../support/pcap';
import { cliOptions, describeRun, lastJson, rqcastArgv, sha256, startServer, stopProcess, tempDir, transpiledRoot, writeContent } from './helpers';
import { analyzeRetransmissions } from './tcp-capture';

const probe = probeNetns();
const tcpdump = fs.existsSync('/usr/bin/tcpdump') || fs.existsSync('/usr/sbin/tcpdump');
if (!probe.ok) console.warn(`skipping e2e TCP tests: ${probe.reason}`);
const describeNetns = probe.ok ? describe : describe.skip;

const PORT = 4433;
const PROBE = path.join(__dirname, 'tcp-esi-probe.js');

describeNetns('rqcast over TCP between network namespaces', () => {
  let bed: Testbed;
  let dir: string;
  let source: string;
  let digest: string;

  beforeAll(async () => {
    dir = tempDir('tcp');
    source = path.join(dir, 'A.bin');
    digest = writeContent(source, 2_000_003, 7);
    bed = await Testbed.create({ clients: 5 });
  });

  afterAll(() => {
    bed?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const url = (): string => `rqcast://${bed.server.address}:${PORT}`;
  const serve = (extra: string[] = []) => startServer(bed, bed.server.ns, [source, '--bind', bed.server.address, '--port', String(PORT), '--tcp', '--rate', '400', ...extra]);
  const lossOn = (i: number, pct: number) => bed.addLoss(bed.clients[i].ns, pct, { tcpOnly: true, tcpSourcePort: PORT });

  async function tables(): Promise<string> {
    return (await bed.runOk(bed.server.ns, ['nft', 'list', 'tables'])).stdout;
  }

  it('delivers bit-exact at 0 %, 2 % and 10 % loss of the server\'s segments', async () => {
    const server = await serve();
    try {
      const losses = [0, 2, 10];
      for (const [i, pct] of losses.entries()) if (pct > 0) await lossOn(i, pct);
      const runs = await Promise.all(
        losses.map((_, i) => {
          const out = path.join(dir, `a-${i}`);
          fs.mkdirSync(out, { recursive: true });
          return bed.run(bed.clients[i].ns, rqcastArgv('fetch', url(), '--transport', 'tcp', '-o', out, '--json', '--quiet', '--timeout', '60s'), cliOptions({ timeoutMs: 120_000 }));
        }),
      );
      for (const [i, r] of runs.entries()) {
        expect({ client: i, code: r.code, run: r.code === 0 ? '' : describeRun(`fetch at ${losses[i]}%`, r) }).toEqual({ client: i, code: 0, run: '' });
        expect(sha256(path.join(dir, `a-${i}`, 'A.bin'))).toBe(digest);
        const summary = lastJson(r.stdout) as { channels: { transport: string }[] };
        expect(summary.channels.map((c) => c.transport)).toEqual(['tcp']);
      }
      for (const [i, pct] of losses.entries()) {
        if (pct === 0) continue;
        const k = await bed.lossCounters(bed.clients[i].ns);
        // The rule was on, and took about its share: the rule sees GSO
        // packets (a few hundred here), so a count this low must have a
        // binomial chance above 1e-6 (the rule itself is measured over
        // 20 000 datagrams in netns.test.ts).
        expect(k.seen).toBeGreaterThan(0);
        expect(binomialAtMost(k.dropped, k.seen, pct / 100)).toBeGreaterThan(1e-6);
        await bed.removeLoss(bed.clients[i].ns);
      }
    } finally {
      await stopProcess(server);
    }
  }, 240_000);

  (tcpdump ? it : it.skip)('retransmits lost segments under their sequence numbers with fresh symbols, never a duplicate at the client', async () => {
    // Offloads off on the server's link (tx checksumming, and TSO with it):
    // the kernel cuts each GSO packet and fills in each checksum before
    // tcpdump sees it, so the capture holds the segments as the client gets
    // them, cut where the server's GSO header said and summed from where it
    // said the TCP header starts.
    const ifname = bed.server.ifname;
    await bed.runOk(bed.server.ns, ['ethtool', '-K', ifname, 'tx', 'off']);
    const metricsAt = `${bed.server.address}:9464`;
    const server = await serve(['--metrics', metricsAt]);
    const capture = path.join(dir, 'server.pcap');
    const dump = bed.spawn(bed.server.ns, ['sh', '-c', `exec tcpdump -i ${ifname} -s 0 -U -w ${capture} tcp src port ${PORT} 2>&1`], { timeoutMs: 180_000 });
    let metrics = '';
    try {
      await dump.waitForStdout(/listening on/, 30_000);
      await lossOn(3, 10);
      const out = path.join(dir, 'probe');
      fs.mkdirSync(out, { recursive: true });
      const r = await bed.run(bed.clients[3].ns, [process.execPath, PROBE, transpiledRoot(), url(), out], { timeoutMs: 150_000 });
      expect({ code: r.code, run: r.code === 0 ? '' : describeRun('probe', r) }).toEqual({ code: 0, run: '' });
      const got = lastJson(r.stdout) as { symbols: number; duplicates: number; objects: { name: string; sha256: string }[] };
      expect(got.objects).toEqual([{ name: 'A.bin', sha256: digest }]);
      expect(got.symbols).toBeGreaterThan(0);
      expect(got.duplicates).toBe(0);
      await bed.removeLoss(bed.clients[3].ns);
      const scrape = `fetch('http://${metricsAt}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
      metrics = (await bed.runOk(bed.server.ns, [process.execPath, '-e', scrape])).stdout;
    } finally {
      dump.kill('SIGINT');
      await dump.wait();
      await stopProcess(server);
      await bed.runOk(bed.server.ns, ['ethtool', '-K', ifname, 'tx', 'on', 'tso', 'on']);
    }
    const metric = (name: string): number => metricValue(metrics, name);
    const gso = {
      packets: metric('rqcast_server_tcp_gso_packets_total'),
      segments: metric('rqcast_server_tcp_gso_segments_total'),
      allPackets: metric('rqcast_server_tcp_packets_out_total'),
      allSegments: metric('rqcast_server_tcp_segments_out_total'),
    };
    const report = analyzeRetransmissions(readTcpSegments(capture), PORT);
    console.log(`TCP capture at 10 % loss: ${JSON.stringify(report)}; GSO ${JSON.stringify(gso)}`);
    // The GSO path ran: packets of several segments each.
    expect(gso.packets).toBeGreaterThan(0);
    expect(gso.segments).toBeGreaterThan(2 * gso.packets);
    expect(gso.allPackets).toBeLessThan(gso.allSegments);
    expect(report.connections).toBe(1);
    // Cut back into segments of at most one MSS (1460 less 12 bytes of
    // timestamps), every checksum right.
    expect(report.largestPayload).toBeLessThanOrEqual(1448);
    expect(report.badChecksums).toBe(0);
    // 10 % of some 1 500 data segments: a few dozen retransmissions at least.
    expect(report.dataRetransmissions).toBeGreaterThanOrEqual(20);
    expect(report.boundaryMismatches).toBe(0);
    expect(report.resegmented).toBe(0);
    expect(report.freshRetransmissions / report.dataRetransmissions).toBeGreaterThanOrEqual(0.99);
  }, 240_000);

  it('reports its needs over TCP (NEED, docs/PROTOCOL.md §7a): the server ends its passes early', async () => {
    // Two blocks of ~9 800 symbols (pass quota ~11 300 packets each at the
    // default 15 % overhead), more than the replicator's ring holds ahead:
    // a report that a block is done reaches the server before its pass is
    // all built. Without NEED a TCP client got every block's fixed quota.
    const big = path.join(dir, 'B.bin');
    const bigDigest = writeContent(big, 24 * 1024 * 1024 + 5, 9);
    const metricsAt = `${bed.server.address}:9465`;
    const server = await startServer(bed, bed.server.ns, [big, '--bind', bed.server.address, '--port', String(PORT), '--tcp', '--rate', '400', '--metrics', metricsAt]);
    let metrics = '';
    try {
      const out = path.join(dir, 'need');
      fs.mkdirSync(out, { recursive: true });
      const r = await bed.run(bed.clients[4].ns, rqcastArgv('fetch', url(), '--transport', 'tcp', '-o', out, '--json', '--quiet', '--timeout', '60s'), cliOptions({ timeoutMs: 120_000 }));
      expect({ code: r.code, run: r.code === 0 ? '' : describeRun('fetch over TCP', r) }).toEqual({ code: 0, run: '' });
      expect(sha256(path.join(out, 'B.bin'))).toBe(bigDigest);
      const scrape = `fetch('http://${metricsAt}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
      metrics = (await bed.runOk(bed.server.ns, [process.execPath, '-e', scrape])).stdout;
    } finally {
      await stopProcess(server);
      fs.rmSync(big, { force: true });
    }
    const metric = (name: string): number => metricValue(metrics, name);
    expect(metric('rqcast_server_need_reports_total')).toBeGreaterThan(0);
    expect(metric('rqcast_server_passes_ended_early_total')).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('falls back to TCP when the namespace drops every UDP datagram from the server', async () => {
    const server = await serve();
    const c = bed.clients[4];
    await bed.addDrop(c.ns, 'no_udp', 'input', `ip saddr ${bed.server.address} meta l4proto udp`);
    try {
      const out = path.join(dir, 'fallback');
      fs.mkdirSync(out, { recursive: true });
      const r = await bed.run(c.ns, rqcastArgv('fetch', url(), '--transport', 'auto', '--fallback-after', '1s', '-o', out, '--json', '--quiet', '--timeout', '60s'), cliOptions({ timeoutMs: 120_000 }));
      expect({ code: r.code, run: r.code === 0 ? '' : describeRun('fetch --transport auto', r) }).toEqual({ code: 0, run: '' });
      expect(sha256(path.join(out, 'A.bin'))).toBe(digest);
      const summary = lastJson(r.stdout) as { channels: { transport: string }[] };
      expect(summary.channels.map((ch) => ch.transport)).toEqual(['tcp']);
      const drops = await bed.readDrops(c.ns);
      expect(drops.no_udp.packets).toBeGreaterThan(0);
    } finally {
      await bed.removeDrops(c.ns);
      await stopProcess(server);
    }
  }, 180_000);

  it('leaves no nftables table behind, and replaces the one a killed server left', async () => {
    expect(await tables()).not.toMatch(/rqcast_tcp/);
    const killed = await serve();
    expect(await tables()).toMatch(new RegExp(`rqcast_tcp_${PORT}`));
    killed.kill('SIGKILL');
    await killed.wait();
    expect(await tables()).toMatch(new RegExp(`rqcast_tcp_${PORT}`));
    const next = await serve();
    // One table, the new server's, and it works: a fetch over TCP succeeds.
    expect((await tables()).match(/rqcast_tcp/g)).toHaveLength(1);
    const out = path.join(dir, 'after-kill');
    fs.mkdirSync(out, { recursive: true });
    const r = await bed.run(bed.clients[0].ns, rqcastArgv('fetch', url(), '--transport', 'tcp', '-o', out, '--quiet', '--timeout', '60s'), cliOptions({ timeoutMs: 120_000 }));
    expect({ code: r.code, run: r.code === 0 ? '' : describeRun('fetch after a kill', r) }).toEqual({ code: 0, run: '' });
    expect(sha256(path.join(out, 'A.bin'))).toBe(digest);
    await stopProcess(next);
    expect(await tables()).not.toMatch(/rqcast_tcp/);
  }, 180_000);
});

/** A metric's value in a Prometheus text scrape (NaN if absent). */
function metricValue(scrape: string, name: string): number {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(scrape)?.[1]);
}

/** P(X <= k) for X ~ Binomial(n, p), summed in logarithms (no underflow for large n). */
function binomialAtMost(k: number, n: number, p: number): number {
  let logTerm = n * Math.log1p(-p); // log P(X = 0)
  let sum = Math.exp(logTerm);
  for (let i = 1; i <= k; i++) {
    logTerm += Math.log((n - i + 1) / i) + Math.log(p / (1 - p));
    sum += Math.exp(logTerm);
  }
  return sum;
}
