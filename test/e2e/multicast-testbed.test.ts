// What the multicast end-to-end tests (multicast.test.ts) and
// bench/multicast.ts add to the namespace testbed (test/support/netns.ts),
// proved on plain UDP: drop rules take everything they match on the hook
// they name and count it, and go away; enableIPv6 gives addresses usable at
// once; a socket-less static membership makes a namespace take a group in
// (IPv4 and IPv6) where it did not before; the interface counters move by
// what was sent.
import { probeNetns, SERVER_ADDRESS6, clientAddress6, Testbed } from '../support/netns';

const probe = probeNetns();
if (!probe.ok) console.warn(`skipping multicast testbed tests: ${probe.reason}`);
const describeNetns = probe.ok ? describe : describe.skip;

const NODE = process.execPath;

// Counts datagrams on a port until none came for 1 s (or 3 s if none at
// all); prints the count and the sources. argv: family port.
const SINK = `
const [family, port] = [process.argv[1], Number(process.argv[2])];
const s = require('dgram').createSocket(family === '6' ? 'udp6' : 'udp4');
let n = 0, idle = setTimeout(done, 3000);
const sources = new Set();
function done() { console.log(JSON.stringify({ received: n, sources: [...sources] })); process.exit(0); }
s.on('message', (m, r) => { n++; sources.add(r.address); clearTimeout(idle); idle = setTimeout(done, 1000); });
s.bind(port, () => console.log('ready'));
`;

// Sends argv count datagrams of argv size bytes to host:port, 1 ms apart;
// prints how many the kernel refused (EPERM: an output drop rule). argv:
// family host port count size.
const SENDER = `
const [family, host, port, count, size] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const s = require('dgram').createSocket(family === '6' ? 'udp6' : 'udp4');
let tried = 0, refused = 0;
const b = Buffer.alloc(size);
const next = () => {
  if (tried === count) { s.close(); console.log(JSON.stringify({ refused })); return; }
  tried++;
  s.send(b, port, host, (e) => { if (e && e.code !== 'EPERM') { console.error(String(e)); process.exit(1); } if (e) refused++; setTimeout(next, 1); });
};
next();
`;

describeNetns('the namespace testbed for multicast', () => {
  let bed: Testbed;

  beforeAll(async () => {
    bed = await Testbed.create({ clients: 2 });
  });

  afterAll(() => bed?.destroy());

  /** Sends `count` datagrams from `ns`; resolves with how many the kernel refused. */
  async function send(ns: string, family: '4' | '6', host: string, port: number, count: number, size = 200): Promise<number> {
    const r = await bed.runOk(ns, [NODE, '-e', SENDER, family, host, String(port), String(count), String(size)]);
    return (JSON.parse(r.stdout.trim()) as { refused: number }).refused;
  }

  /** Runs a sink in `ns` on `port`, then `during`; resolves with what the sink got. */
  async function sink(ns: string, family: '4' | '6', port: number, during: () => Promise<unknown>): Promise<{ received: number; sources: string[] }> {
    const p = bed.spawn(ns, [NODE, '-e', SINK, family, String(port)], { timeoutMs: 30_000 });
    await p.waitForStdout(/ready/);
    await during();
    const r = await p.wait();
    return JSON.parse(r.stdout.trim().split('\n').pop() as string) as { received: number; sources: string[] };
  }

  test('addDrop takes every matching packet on its hook and counts it; removeDrops lifts every rule', async () => {
    const [c0] = bed.clients;
    await bed.addDrop(c0.ns, 'port9001', 'input', 'udp dport 9001');
    await bed.addDrop(bed.server.ns, 'to9002', 'output', `ip daddr ${c0.address} udp dport 9002`);
    const dropped = await sink(c0.ns, '4', 9001, () => send(bed.server.ns, '4', c0.address, 9001, 20));
    expect(dropped.received).toBe(0);
    const other = await sink(c0.ns, '4', 9003, () => send(bed.server.ns, '4', c0.address, 9003, 20));
    expect(other.received).toBe(20);
    // A packet dropped on the output hook fails the send (EPERM): no route out, as far as the sender can tell.
    let refused = 0;
    const outDropped = await sink(c0.ns, '4', 9002, async () => (refused = await send(bed.server.ns, '4', c0.address, 9002, 15)));
    expect(outDropped.received).toBe(0);
    expect(refused).toBe(15);
    expect((await bed.readDrops(c0.ns)).port9001.packets).toBe(20);
    expect(await bed.readDrops(bed.server.ns)).toEqual({ to9002: { packets: 15, bytes: 15 * (20 + 8 + 200) } });

    await bed.removeDrops(c0.ns);
    await bed.removeDrops(bed.server.ns);
    const again = await sink(c0.ns, '4', 9001, () => send(bed.server.ns, '4', c0.address, 9001, 20));
    expect(again.received).toBe(20);
    await expect(bed.readDrops(c0.ns)).rejects.toThrow(/exited/);
  });

  test('addDrop refuses a name that is not one nftables word', async () => {
    await expect(bed.addDrop(bed.server.ns, 'a b"', 'input', 'udp dport 1')).rejects.toThrow(/bad drop rule name/);
  });

  test('enableIPv6: every node has its address at once (no DAD wait), and datagrams carry it', async () => {
    await bed.enableIPv6();
    expect(bed.server.address6).toBe(SERVER_ADDRESS6);
    expect(bed.clients.map((c) => c.address6)).toEqual([clientAddress6(0), clientAddress6(1)]);
    const got = await sink(bed.clients[1].ns, '6', 9010, () => send(bed.server.ns, '6', clientAddress6(1), 9010, 10));
    expect(got).toEqual({ received: 10, sources: [SERVER_ADDRESS6] });
    // Idempotent.
    await bed.enableIPv6();
  });

  test.each([
    ['IPv4', '4', '239.9.9.9', 'ip'],
    ['IPv6', '6', 'ff15::99', 'ip6'],
  ] as const)(
    'joinGroupStatically (%s): the namespace takes the group in with no socket; the interface counters move by what was sent',
    async (_name, family, group, nftFamily) => {
      await bed.enableIPv6();
      const [, c1] = bed.clients;
      const counter = `g${family}`;
      await bed.addCounter(c1.ns, counter, 'input', `${nftFamily} daddr ${group}`);
      // Not a member: the bridge floods the group to the veth, the kernel drops it before the input hook.
      await send(bed.server.ns, family, group, 9020, 10);
      expect((await bed.readCounters(c1.ns))[counter].packets).toBe(0);

      await bed.joinGroupStatically(c1, group);
      const tx0 = await bed.interfaceCounters(bed.server);
      const rx0 = await bed.interfaceCounters(c1);
      await send(bed.server.ns, family, group, 9020, 10, 1000);
      const tx1 = await bed.interfaceCounters(bed.server);
      const rx1 = await bed.interfaceCounters(c1);
      const c = (await bed.readCounters(c1.ns))[counter];
      expect(c.packets).toBe(10);
      const ip = family === '4' ? 20 : 40;
      expect(c.bytes).toBe(10 * (ip + 8 + 1000));
      // Ethernet frames of at least the IP packets (plus MLD/ARP/neighbour discovery, if any).
      expect(tx1.txPackets - tx0.txPackets).toBeGreaterThanOrEqual(10);
      expect(tx1.txBytes - tx0.txBytes).toBeGreaterThanOrEqual(10 * (14 + ip + 8 + 1000));
      expect(rx1.rxBytes - rx0.rxBytes).toBeGreaterThanOrEqual(10 * (14 + ip + 8 + 1000));
      await bed.removeCounters(c1.ns);
    },
  );
});
