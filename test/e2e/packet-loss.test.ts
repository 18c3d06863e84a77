// The testbed's two loss models on GSO traffic (a sender's datagrams of 40
// packets, as rqcast's replicator sends them): the nftables rule on the
// input hook (Testbed.addLoss) sees each GSO datagram whole and drops whole
// runs; the XDP program of test/support/packet-loss.ts drops single
// packets, each independently, and GRO still hands the receiver merged
// runs. bench:e2e's and bench:tcp's `--loss-at` choose between them.
import { probeNetns, Testbed } from '../support/netns';
import { addPacketLoss, hasXdpProgram, packetLossCounters, probePacketLoss, removePacketLoss } from '../support/packet-loss';

const netns = probeNetns();
const xdp = netns.ok ? probePacketLoss() : { ok: false, reason: 'no network namespaces' };
if (!netns.ok) console.warn(`skipping packet-loss tests: ${netns.reason}`);
else if (!xdp.ok) console.warn(`skipping packet-loss tests: ${xdp.reason}`);
const describeXdp = netns.ok && xdp.ok ? describe : describe.skip;

const SEGMENT = 1304;
const PER_TRAIN = 40;
const TRAINS = 1000;
const SMALL = 300;
const PORT = 7010;

// Sends TRAINS GSO datagrams of PER_TRAIN packets of SEGMENT bytes
// (UDP_SEGMENT), each packet starting with its number (u32, big-endian),
// then SMALL datagrams of 100 bytes, pausing so that no queue overflows;
// prints what it sent.
const SENDER = `
import json, socket, struct, sys, time
host, port, trains, per, seg, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_UDP, 103, seg)  # UDP_SEGMENT
for i in range(trains):
    train = bytearray(seg * per)
    for j in range(per): struct.pack_into(">I", train, j * seg, i * per + j)
    s.sendto(train, (host, port))
    if i % 5 == 4: time.sleep(0.002)
s.setsockopt(socket.SOL_UDP, 103, 0)
for i in range(small):
    s.sendto(bytes(100), (host, port))
    if i % 50 == 49: time.sleep(0.002)
print(json.dumps({"segments": trains * per, "small": small}))
`;

// Receives with UDP_GRO until nothing came for 1.5 s; prints the packets
// of each size it got, how many reads carried more than one, the runs of
// numbered packets that did not come (how many, the longest), and the
// datagrams the socket itself dropped for a full buffer (SO_RXQ_OVFL: a
// receiver starved of CPU under a loaded test run).
const RECEIVER = `
import json, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.setsockopt(socket.SOL_UDP, 104, 1)  # UDP_GRO
s.setsockopt(socket.SOL_SOCKET, 40, 1)  # SO_RXQ_OVFL
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
s.settimeout(1.5)
big = small = reads = merged = overflow = 0
got = bytearray(int(sys.argv[2]))
try:
    while True:
        data, anc, _, _ = s.recvmsg(65536, 64)
        reads += 1
        seg = len(data)
        for level, kind, d in anc:
            if level == socket.SOL_UDP and kind == 104:
                seg = struct.unpack("H" if len(d) == 2 else "i", d[:len(d) if len(d) == 2 else 4])[0]
            if level == socket.SOL_SOCKET and kind == 40:
                overflow = struct.unpack("I", d[:4])[0]
        n = (len(data) + seg - 1) // seg
        if n > 1: merged += 1
        if seg > 512:
            big += n
            for k in range(n): got[struct.unpack_from(">I", data, k * seg)[0]] = 1
        else: small += n
except socket.timeout:
    pass
gaps = longest = run = 0
for flag in got:
    if flag: run = 0
    else:
        if run == 0: gaps += 1
        run += 1
        longest = max(longest, run)
print(json.dumps({"big": big, "small": small, "reads": reads, "merged": merged, "gaps": gaps, "longest": longest, "overflow": overflow}))
`;

// Serves argv[2] bytes to the first TCP connection on argv[1], then exits.
const TCP_SERVER = `
const net = require('net');
const n = Number(process.argv[2]);
const srv = net.createServer((c) => { c.end(Buffer.alloc(n, 7)); srv.close(); });
srv.listen(Number(process.argv[1]), () => console.log('ready'));
`;

// Reads everything from HOST:PORT; prints the byte count.
const TCP_CLIENT = `
const net = require('net');
let n = 0;
const c = net.connect(Number(process.argv[2]), process.argv[1]);
c.on('data', (d) => { n += d.length; });
c.on('end', () => console.log(JSON.stringify({ bytes: n })));
`;

interface Received {
  big: number;
  small: number;
  reads: number;
  merged: number;
  /** Runs of missing packet numbers, and the longest run. */
  gaps: number;
  longest: number;
  /** Datagrams the socket dropped for a full receive buffer (GRO-merged runs count once). */
  overflow: number;
}

describeXdp('testbed loss models on GSO datagrams', () => {
  let bed: Testbed;

  beforeAll(async () => {
    bed = await Testbed.create({ clients: 1 });
  });

  afterAll(() => {
    bed?.destroy();
  });

  async function send(): Promise<Received> {
    const client = bed.clients[0];
    const rx = bed.spawn(client.ns, ['python3', '-c', RECEIVER, String(PORT), String(TRAINS * PER_TRAIN)], { timeoutMs: 120_000 });
    await rx.waitForStdout(/ready/);
    const tx = await bed.runOk(bed.server.ns, ['python3', '-c', SENDER, client.address, String(PORT), String(TRAINS), String(PER_TRAIN), String(SEGMENT), String(SMALL)], { timeoutMs: 120_000 });
    expect(JSON.parse(tx.stdout)).toEqual({ segments: TRAINS * PER_TRAIN, small: SMALL });
    const r = await rx.wait();
    return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Received;
  }

  it('input-hook rule: a dropped GSO datagram takes all its packets with it', async () => {
    const client = bed.clients[0];
    await bed.addLoss(client.ns, 20, { minUdpLength: 512 });
    const got = await send();
    const { seen, dropped } = await bed.lossCounters(client.ns);
    await bed.removeLoss(client.ns);
    // The rule saw datagrams, not packets, and what came through is whole
    // runs (a run the socket dropped for a full buffer goes whole too).
    expect(seen).toBe(TRAINS);
    expect(dropped).toBeGreaterThan(0);
    expect(got.big % PER_TRAIN).toBe(0);
    expect(got.gaps).toBeGreaterThan(0);
    expect(got.longest).toBeGreaterThanOrEqual(PER_TRAIN);
    expect(got.big).toBeLessThanOrEqual((TRAINS - dropped) * PER_TRAIN);
    if (got.overflow === 0) expect(got.small).toBe(SMALL);
  });

  it('XDP program: drops single packets, about the share asked, before GRO merges the rest', async () => {
    const client = bed.clients[0];
    const before = await packetLossCounters(bed, client);
    await addPacketLoss(bed, client, 20, { minUdpLength: 512 });
    expect(hasXdpProgram(client)).toBe(true);
    const got = await send();
    const after = await packetLossCounters(bed, client);
    await removePacketLoss(bed, client);
    expect(hasXdpProgram(client)).toBe(false);
    const seen = after.seen - before.seen;
    const dropped = after.dropped - before.dropped;
    // The program ran on every packet (and on the small datagrams, which it passes).
    expect(seen).toBeGreaterThanOrEqual(TRAINS * PER_TRAIN + SMALL);
    // binomial(40 000, 0.2): sigma 0.2 %; 17..23 % is > 10 sigma either side.
    expect(dropped / (TRAINS * PER_TRAIN)).toBeGreaterThan(0.17);
    expect(dropped / (TRAINS * PER_TRAIN)).toBeLessThan(0.23);
    // Most of what passed came in reads GRO merged.
    expect(got.merged).toBeGreaterThan(0);
    expect(got.reads).toBeLessThan(got.big / 4);
    expect(got.big).toBeLessThanOrEqual(TRAINS * PER_TRAIN - dropped);
    // What the receiver saw, unless its socket overflowed (a starved
    // receiver: a GRO run it drops is a gap of its own): every packet not
    // dropped arrived, and the losses are single packets or short runs. At
    // 20 % independent loss a run of missing packets is 1.25 long on
    // average, and 20 in a row has a chance of about 40 000 x 0.2^20 (4e-10)
    // in the whole run. The counters above show the same without the socket.
    if (got.overflow > 0) {
      console.warn(`packet-loss test: the receiver's socket dropped ${got.overflow} datagrams (a loaded machine); gaps not checked`);
      return;
    }
    expect(got.big).toBe(TRAINS * PER_TRAIN - dropped);
    expect(got.gaps).toBeGreaterThan(dropped / 2);
    expect(got.longest).toBeLessThan(PER_TRAIN / 2);
    expect(got.small).toBe(SMALL);
  });

  it('XDP program for TCP: drops segments from one source port only; TCP recovers them, UDP passes whole', async () => {
    const client = bed.clients[0];
    const tcpPort = 7011;
    const bytes = 8 << 20;
    const before = await packetLossCounters(bed, client);
    await addPacketLoss(bed, client, 5, { tcpSourcePort: tcpPort });
    const srv = bed.spawn(bed.server.ns, [process.execPath, '-e', TCP_SERVER, String(tcpPort), String(bytes)], { timeoutMs: 120_000 });
    await srv.waitForStdout(/ready/);
    const r = await bed.runOk(client.ns, [process.execPath, '-e', TCP_CLIENT, bed.server.address, String(tcpPort)], { timeoutMs: 120_000 });
    await srv.wait();
    const afterTcp = await packetLossCounters(bed, client);
    // The stream came whole: what was dropped, TCP sent again.
    expect(JSON.parse(r.stdout)).toEqual({ bytes });
    const seen = afterTcp.seen - before.seen;
    const dropped = afterTcp.dropped - before.dropped;
    // 8 MiB is ~6 000 segments of ~1 448 bytes, each seen alone (not ~200 TSO packets).
    expect(seen).toBeGreaterThan(bytes / 1500);
    // binomial(>= 5 600, 0.05): sigma < 0.3 %; 2.5..10 % is > 8 sigma either side.
    expect(dropped / seen).toBeGreaterThan(0.025);
    expect(dropped / seen).toBeLessThan(0.1);
    // UDP is not a candidate with a TCP port set: every packet of the GSO runs arrives.
    const got = await send();
    const afterUdp = await packetLossCounters(bed, client);
    await removePacketLoss(bed, client);
    expect(afterUdp.dropped).toBe(afterTcp.dropped);
    if (got.overflow === 0) {
      expect(got.big).toBe(TRAINS * PER_TRAIN);
      expect(got.small).toBe(SMALL);
    }
  });
});
