// The namespace testbed itself: addresses reach across the bridge, UDP flows
// both ways, the nftables loss rule drops the requested share of datagrams
// (measured with its own counters over many packets, broad binomial bound),
// and teardown leaves no namespace behind.
import * as path from 'path';
import { listOurNamespaces, probeNetns, Testbed } from '../support/netns';

const probe = probeNetns();
if (!probe.ok) console.warn(`skipping netns tests: ${probe.reason}`);
const describeNetns = probe.ok ? describe : describe.skip;

const NODE = process.execPath;

// Echoes every datagram back to its sender; prints "ready" once bound.
const ECHO = `
const s = require('dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(Number(process.argv[1]), () => console.log('ready'));
`;

// Sends argv[3] datagrams one at a time, each after the previous echo
// (retrying after 200 ms), and prints how many round trips completed.
const PINGER = `
const s = require('dgram').createSocket('udp4');
const [host, port, count] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let n = 0, timer;
const next = () => { clearTimeout(timer); const b = Buffer.alloc(64); b.writeUInt32BE(n); s.send(b, port, host); timer = setTimeout(next, 200); };
s.on('message', (m) => { if (m.readUInt32BE(0) === n) { n++; if (n === count) { console.log(JSON.stringify({ roundTrips: n })); process.exit(0); } next(); } });
next();
`;

// Counts datagrams on a port until none came for 1.5 s; prints the count.
const SINK = `
const s = require('dgram').createSocket('udp4');
let n = 0, idle;
s.on('message', () => { n++; clearTimeout(idle); idle = setTimeout(() => { console.log(JSON.stringify({ received: n })); process.exit(0); }, 1500); });
s.bind(Number(process.argv[1]), () => { s.setRecvBufferSize(4 << 20); console.log('ready'); });
`;

// Sends argv[3] datagrams of 200 bytes in bursts of 50, yielding between
// bursts so the veth backlog never overflows.
const BLASTER = `
const s = require('dgram').createSocket('udp4');
const [host, port, count] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const b = Buffer.alloc(200);
let sent = 0;
const burst = () => {
  for (let i = 0; i < 50 && sent < count; i++, sent++) s.send(b, port, host);
  if (sent < count) setTimeout(burst, 1); else setTimeout(() => { console.log(JSON.stringify({ sent })); process.exit(0); }, 200);
};
burst();
`;

describeNetns('netns testbed', () => {
  let bed: Testbed;

  beforeAll(async () => {
    bed = await Testbed.create({ clients: 3 });
  });

  afterAll(() => {
    bed?.destroy();
  });

  it('gives every namespace its address and carries UDP both ways over the bridge', async () => {
    const echo = bed.spawn(bed.server.ns, [NODE, '-e', ECHO, '7001'], { timeoutMs: 60_000 });
    await echo.waitForStdout(/ready/);
    for (const c of bed.clients) {
      const addr = await bed.runOk(c.ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', c.ifname]);
      expect(addr.stdout).toContain(`inet ${c.address}/16`);
      await bed.addCounter(c.ns, 'out', 'output', `ip daddr ${bed.server.address} udp dport 7001`);
      await bed.addCounter(bed.server.ns, `in-${c.ns.replace(/.*-/, '')}`, 'input', `ip saddr ${c.address} udp dport 7001`);
      const r = await bed.runOk(c.ns, [NODE, '-e', PINGER, bed.server.address, '7001', '100']);
      expect(JSON.parse(r.stdout)).toEqual({ roundTrips: 100 });
    }
    // Both ends count the same datagrams (IP length): what the harness's
    // counters say is what crossed.
    const serverSide = await bed.readCounters(bed.server.ns);
    for (const c of bed.clients) {
      const clientSide = (await bed.readCounters(c.ns)).out;
      expect(clientSide.packets).toBeGreaterThanOrEqual(100);
      expect(clientSide.bytes).toBe(clientSide.packets * (20 + 8 + 64));
      expect(serverSide[`in-${c.ns.replace(/.*-/, '')}`]).toEqual(clientSide);
      await bed.removeCounters(c.ns);
    }
    await bed.removeCounters(bed.server.ns);
    echo.kill();
    await echo.wait();
    // Clients reach each other too (one L2 segment).
    const peer = bed.spawn(bed.clients[2].ns, [NODE, '-e', ECHO, '7001'], { timeoutMs: 60_000 });
    await peer.waitForStdout(/ready/);
    const r = await bed.runOk(bed.clients[0].ns, [NODE, '-e', PINGER, bed.clients[2].address, '7001', '10']);
    expect(JSON.parse(r.stdout)).toEqual({ roundTrips: 10 });
    peer.kill();
    await peer.wait();
  });

  it('drops about the requested share of datagrams at the input hook, only where the rule matches', async () => {
    const client = bed.clients[0];
    await bed.addLoss(client.ns, 10, { destinationPort: 7002 });
    const sink = bed.spawn(client.ns, [NODE, '-e', SINK, '7002'], { timeoutMs: 120_000 });
    await sink.waitForStdout(/ready/);
    const count = 20_000;
    await bed.runOk(bed.server.ns, [NODE, '-e', BLASTER, client.address, '7002', String(count)], { timeoutMs: 120_000 });
    const received = JSON.parse((await sink.wait()).stdout.split('\n')[1]).received as number;
    const { seen, dropped } = await bed.lossCounters(client.ns);
    // The candidate counter saw (nearly) every datagram; the drop share is
    // binomial(seen, 0.1): sigma ~ 0.2 % at 20k, so 7..13 % is > 10 sigma.
    expect(seen).toBeGreaterThan(count * 0.9);
    expect(seen).toBeLessThanOrEqual(count);
    expect(dropped / seen).toBeGreaterThan(0.07);
    expect(dropped / seen).toBeLessThan(0.13);
    // Nothing dropped got through; the socket may lose a few more under load.
    expect(received).toBeLessThanOrEqual(seen - dropped);
    expect(received).toBeGreaterThan(0);

    // Another port in the same namespace is untouched by the rule (echoes all).
    const echo = bed.spawn(client.ns, [NODE, '-e', ECHO, '7003'], { timeoutMs: 60_000 });
    await echo.waitForStdout(/ready/);
    const r = await bed.runOk(bed.server.ns, [NODE, '-e', PINGER, client.address, '7003', '50']);
    expect(JSON.parse(r.stdout)).toEqual({ roundTrips: 50 });
    echo.kill();
    await echo.wait();
    const after = await bed.lossCounters(client.ns);
    expect(after).toEqual({ seen, dropped });

    await bed.removeLoss(client.ns);
    await expect(bed.lossCounters(client.ns)).rejects.toThrow();
  });

  it('forges source addresses (spoof.py), and victim-side counters see what a reflector sends', async () => {
    // Reflector that answers every datagram with three copies: the victim's
    // input counter must see about 3x what the attacker sent, which is what
    // the anti-amplification test relies on to catch a server that amplifies.
    const AMPLIFIER = `
const s = require('dgram').createSocket('udp4');
s.on('message', (m, r) => { for (let i = 0; i < 3; i++) s.send(m, r.port, r.address); });
s.bind(7004, () => console.log('ready'));
`;
    const [attacker, victim] = bed.clients;
    const amp = bed.spawn(bed.server.ns, [NODE, '-e', AMPLIFIER], { timeoutMs: 60_000 });
    await amp.waitForStdout(/ready/);
    await bed.addCounter(victim.ns, 'reflected', 'input', `ip saddr ${bed.server.address} udp sport 7004`);
    await bed.addCounter(attacker.ns, 'forged', 'output', `ip saddr ${victim.address} ip daddr ${bed.server.address}`);
    const spec = {
      dst: bed.server.address,
      dport: 7004,
      gap_us: 200,
      packets: [{ src: victim.address, sport: 40000, data: Buffer.alloc(100, 7).toString('base64'), repeat: 200 }],
    };
    const r = await bed.runOk(attacker.ns, ['python3', path.join(__dirname, 'spoof.py')], { input: JSON.stringify(spec) });
    const sent = JSON.parse(r.stdout) as { packets: number; ip_bytes: number };
    expect(sent).toEqual({ packets: 200, ip_bytes: 200 * 128 });
    await new Promise((res) => setTimeout(res, 500));
    const forged = (await bed.readCounters(attacker.ns)).forged;
    const reflected = (await bed.readCounters(victim.ns)).reflected;
    expect(forged).toEqual({ packets: 200, bytes: 200 * 128 });
    // Echoes that the victim's kernel answers with ICMP still count at input.
    expect(reflected.bytes).toBeGreaterThan(2 * forged.bytes);
    expect(reflected.bytes).toBeLessThanOrEqual(3 * forged.bytes);
    amp.kill();
    await amp.wait();
    await bed.removeCounters(attacker.ns);
    await bed.removeCounters(victim.ns);
  });

  it('removes every namespace on destroy', async () => {
    const extra = await Testbed.create({ clients: 2 });
    const names = [extra.bridgeNs, extra.server.ns, ...extra.clients.map((c) => c.ns)];
    for (const n of names) expect(listOurNamespaces()).toContain(n);
    const p = extra.spawn(extra.clients[0].ns, ['sleep', '60']);
    extra.destroy();
    const r = await p.wait();
    expect(r.signal).toBe('SIGKILL');
    for (const n of names) expect(listOurNamespaces()).not.toContain(n);
  });
});
