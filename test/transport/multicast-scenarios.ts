/**
 * The bodies of test/transport/multicast.test.ts, run in a child process
 * inside the network namespace the test made (a jest worker cannot change
 * its own namespace): `node -r ts-node/register/transpile-only
 * multicast-scenarios.ts <scenario>`. Each scenario drives a Replicator with
 * multicast groups and UdpReceivers with memberships, waits for datagrams
 * (events, never a sleep), and prints what every receiver got as one JSON
 * line; the test asserts on it.
 *
 * The namespace: `lo` up with MULTICAST on and 10.9.0.1, 10.9.0.2 (IPv4
 * groups leave and arrive by lo), and a veth pair va/vb with fd00::1 and
 * fd00::2 on va (IPv6 groups leave by va and are joined on vb: the kernel
 * does not loop IPv6 multicast through lo).
 */
import { readFileSync } from 'fs';
import { Replicator, UdpReceiver, type UdpReceiverOptions } from '../../lib/transport';

const SIZE = 1000;
const PORT = 5100;

/** Packet `seq` of a stream: seq and salt (big-endian), then bytes that depend on both. */
function packets(first: number, count: number, salt: number): Buffer {
  const b = Buffer.alloc(count * SIZE);
  for (let i = 0; i < count; i++) {
    const p = b.subarray(i * SIZE, (i + 1) * SIZE);
    for (let j = 8; j < SIZE; j++) p[j] = ((first + i) * 31 + j * 7 + salt) & 0xff;
    p.writeUInt32BE(first + i, 0);
    p.writeUInt32BE(salt, 4);
  }
  return b;
}

function intact(d: Buffer): boolean {
  if (d.length !== SIZE) return false;
  const seq = d.readUInt32BE(0);
  const salt = d.readUInt32BE(4);
  for (let j = 8; j < SIZE; j++) if (d[j] !== ((seq * 31 + j * 7 + salt) & 0xff)) return false;
  return true;
}

interface Got {
  seq: number;
  salt: number;
  source: string;
}

/** A receiver and everything it got, in order. */
class Listener {
  readonly got: Got[] = [];
  corrupt = 0;
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  readonly rx: UdpReceiver;

  constructor(options: UdpReceiverOptions) {
    this.rx = new UdpReceiver({ port: PORT, reuseAddress: true, ...options });
    this.rx.on('batch', (b) => {
      for (let i = 0; i < b.count; i++) {
        const d = b.datagram(i);
        if (!intact(d)) this.corrupt++;
        this.got.push({ seq: d.readUInt32BE(0), salt: d.readUInt32BE(4), source: `${b.address(i)} ${b.port(i)}` });
      }
      this.waiters = this.waiters.filter((w) => {
        if (this.got.length >= w.n) w.resolve();
        return this.got.length < w.n;
      });
    });
  }

  /** Resolves once `n` datagrams in all have arrived. */
  waitFor(n: number): Promise<void> {
    if (this.got.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  report(): { seqs: number[]; salts: number[]; sources: string[]; corrupt: number } {
    return {
      seqs: this.got.map((g) => g.seq),
      salts: [...new Set(this.got.map((g) => g.salt))],
      sources: [...new Set(this.got.map((g) => g.source))],
      corrupt: this.corrupt,
    };
  }
}

/** Packets pushed so far, by channel. */
const pushed = new Map<number, number>();

/** Pushes packets [first, first + count) with `salt` on channel `id`. */
function push(r: Replicator, id: number, first: number, count: number, salt: number): void {
  const n = r.push(id, packets(first, count, salt), SIZE, count);
  if (n !== count) throw new Error(`ring took ${n} of ${count}`);
  pushed.set(id, (pushed.get(id) ?? 0) + count);
}

/**
 * Channel `id`'s counters once the sender thread has counted every packet
 * pushed: a receiver can hold the last datagram before the sendmmsg that
 * sent it has returned and been counted. Waits at most ~5 s, then returns
 * the counters as they are (the test's expectations decide).
 */
async function countedStats(r: Replicator, id: number): Promise<ReturnType<Replicator['channelStats']>> {
  let s = r.channelStats(id);
  for (let i = 0; i < 500; i++) {
    const settled = s.datagrams + s.errors + s.dropsEagain + s.dropsEnobufs;
    if (s.streamPackets >= (pushed.get(id) ?? 0) && settled >= s.streamPackets) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
    s = r.channelStats(id);
  }
  return s;
}

function ifindex(name: string): string {
  return readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim();
}

// Group channel ids as the server numbers them (0x80000000 | TSI).
const CH1 = 0x80000001;
const CH2 = 0x80000002;
const CH3 = 0x80000003;

const scenarios: Record<string, () => Promise<unknown>> = {
  /**
   * IPv4 any-source: a channel's group reaches two receivers on one port;
   * one drops its membership and gets nothing of the next round, then joins
   * again; a third that joined nothing gets nothing until it joins.
   */
  async 'asm-v4'() {
    const r = new Replicator();
    r.createChannel(CH1, { slotSize: SIZE, capacity: 1024 });
    const a = new Listener({ address: '0.0.0.0' });
    const b = new Listener({ address: '0.0.0.0' });
    const late = new Listener({ address: '0.0.0.0' });
    a.rx.addMembership('239.1.2.3', { interface: 'lo' });
    b.rx.addMembership('239.1.2.3', { interface: 'lo' });
    b.rx.addMembership('239.1.2.3', { interface: 'lo' }); // again: a no-op
    r.addGroup(CH1, { group: '239.1.2.3', port: PORT, interface: 'lo', source: '10.9.0.1' });
    push(r, CH1, 0, 100, 1);
    await Promise.all([a.waitFor(100), b.waitFor(100)]);
    b.rx.dropMembership('239.1.2.3', { interface: 'lo' });
    b.rx.dropMembership('239.1.2.3', { interface: 'lo' }); // again: a no-op
    push(r, CH1, 100, 50, 1);
    await a.waitFor(150);
    // Back in: what b gets next comes after anything of the round it
    // missed (one socket queue, in order), so its list is final.
    b.rx.addMembership('239.1.2.3', { interface: 'lo' });
    push(r, CH1, 150, 5, 1);
    await Promise.all([a.waitFor(155), b.waitFor(105)]);
    late.rx.addMembership('239.1.2.3', { interface: '10.9.0.1' });
    push(r, CH1, 155, 3, 1);
    await Promise.all([a.waitFor(158), b.waitFor(108), late.waitFor(3)]);
    const stats = await countedStats(r, CH1);
    r.removeGroup(CH1);
    r.removeGroup(CH1); // no group: a no-op
    const after = r.channelStats(CH1);
    r.close();
    for (const l of [a, b, late]) l.rx.close();
    return { a: a.report(), b: b.report(), late: late.report(), stats, groupsAfterRemove: after.groups };
  },

  /**
   * IPv4 source-specific (RFC 4607): two channels send to one group from
   * two sources; a member of (10.9.0.1, G) gets the first only, a member
   * of (10.9.0.2, G) on the same port the second only. The second source
   * goes first and its member gets all of it before the first source
   * sends: anything of it meant for the wrong member would be ahead of
   * the first source's packets in that member's queue.
   */
  async 'ssm-v4'() {
    const r = new Replicator();
    r.createChannel(CH1, { slotSize: SIZE, capacity: 1024 });
    r.createChannel(CH2, { slotSize: SIZE, capacity: 1024 });
    const one = new Listener({ address: '0.0.0.0' });
    const two = new Listener({ address: '0.0.0.0' });
    one.rx.addMembership('232.1.1.1', { interface: 'lo', source: '10.9.0.1' });
    two.rx.addMembership('232.1.1.1', { interface: 'lo', source: '10.9.0.2' });
    r.addGroup(CH1, { group: '232.1.1.1', port: PORT, interface: 'lo', source: '10.9.0.1' });
    r.addGroup(CH2, { group: '232.1.1.1', port: PORT, interface: 'lo', source: '10.9.0.2' });
    push(r, CH2, 0, 30, 2);
    await two.waitFor(30);
    push(r, CH1, 0, 20, 1);
    await one.waitFor(20);
    // And one more of the second source after the first's: still not one's.
    push(r, CH2, 30, 5, 2);
    await two.waitFor(35);
    push(r, CH1, 20, 1, 1);
    await one.waitFor(21);
    const stats = [await countedStats(r, CH1), await countedStats(r, CH2)];
    r.close();
    one.rx.close();
    two.rx.close();
    return { one: one.report(), two: two.report(), stats };
  },

  /**
   * IPv6: any-source to ff15::7 (site-local scope) and source-specific to
   * ff3e::8000:7 (RFC 4607 §1's SSM range), leaving by va, joined on vb.
   * The any-source members share the port with the source-specific ones and
   * get none of their group.
   */
  async ipv6() {
    const r = new Replicator();
    for (const id of [CH1, CH2, CH3]) r.createChannel(id, { slotSize: SIZE, capacity: 1024 });
    const x = new Listener({ address: '::' });
    const y = new Listener({ address: '::' });
    const from1 = new Listener({ address: '::' });
    const from2 = new Listener({ address: '::' });
    x.rx.addMembership('ff15::7', { interface: 'vb' });
    y.rx.addMembership('ff15::7', { interface: ifindex('vb') });
    from1.rx.addMembership('ff3e::8000:7', { interface: 'vb', source: 'fd00::1' });
    from2.rx.addMembership('ff3e::8000:7', { interface: 'vb', source: 'fd00::2' });
    r.addGroup(CH1, { group: 'ff15::7', port: PORT, interface: 'va', ttl: 1 });
    r.addGroup(CH2, { group: 'ff3e::8000:7', port: PORT, interface: ifindex('va'), source: 'fd00::1' });
    r.addGroup(CH3, { group: 'ff3e::8000:7', port: PORT, interface: 'va', source: 'fd00::2' });
    push(r, CH1, 0, 100, 1);
    await Promise.all([x.waitFor(100), y.waitFor(100)]);
    push(r, CH3, 0, 30, 3);
    await from2.waitFor(30);
    push(r, CH2, 0, 20, 2);
    await from1.waitFor(20);
    // After both source-specific rounds: the any-source members' next
    // datagrams are their own group's.
    push(r, CH1, 100, 5, 1);
    await Promise.all([x.waitFor(105), y.waitFor(105)]);
    const stats = [await countedStats(r, CH1), await countedStats(r, CH2), await countedStats(r, CH3)];
    r.close();
    for (const l of [x, y, from1, from2]) l.rx.close();
    return { x: x.report(), y: y.report(), from1: from1.report(), from2: from2.report(), stats };
  },
};

async function main(): Promise<void> {
  const name = process.argv[2];
  const run = scenarios[name];
  if (!run) throw new Error(`no scenario ${name}`);
  const result = await run();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  const e = err as { name?: string; code?: string; message?: string; stack?: string };
  process.stderr.write(`${e.stack ?? String(err)}\n`);
  process.stdout.write(`${JSON.stringify({ error: { name: e.name, code: e.code, message: e.message } })}\n`);
  process.exitCode = 1;
});
