// Per-packet loss on a testbed client (test/support/netns.ts): an XDP
// program (xdp-loss.c) on the client's veth drops a share of its UDP
// packets before GRO, each independently, so a sender's GSO datagram loses
// single packets as on a lossy link, not whole runs as with the input-hook
// rule (Testbed.addLoss), and GRO (turned on here) still merges the rest for
// a socket that asks for it. What bench:e2e's `--loss-at packets` uses;
// test/e2e/packet-loss.test.ts checks both claims.
//
// The program is compiled with clang (`-target bpf`) for each attachment,
// into a directory of its own (mkdtemp, mode 0700, removed once the program
// is loaded: a file another user could plant in the shared temporary
// directory would be loaded into the kernel as root), and attached with
// iproute2's loader (`ip link set dev IF xdp obj FILE sec xdp`).
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { LossCounters, NsNode, Testbed } from './netns';

const SOURCE = path.join(__dirname, 'xdp-loss.c');

export interface PacketLossProbe {
  ok: boolean;
  reason?: string;
}

/** Whether clang can build the program (tests and benches say why not before they skip or fail). */
export function probePacketLoss(): PacketLossProbe {
  try {
    withProgram(1, {}, () => undefined);
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** Which packets the program may drop: UDP datagrams longer than `minUdpLength` bytes (UDP header included; default 0), or, with `tcpSourcePort`, TCP segments from that port (and no UDP). */
export interface PacketLossMatch {
  minUdpLength?: number;
  tcpSourcePort?: number;
}

/** Runs `use` with the object file dropping `pct` % of the packets `match` says, built for it and removed after. */
function withProgram<T>(pct: number, match: PacketLossMatch, use: (object: string) => T): T {
  if (!Number.isInteger(pct) || pct < 0 || pct > 100) throw new RangeError(`packet loss ${pct}% is not an integer in 0..100`);
  if (match.tcpSourcePort !== undefined && !(Number.isInteger(match.tcpSourcePort) && match.tcpSourcePort > 0 && match.tcpSourcePort < 65536)) throw new RangeError(`TCP source port ${match.tcpSourcePort}`);
  if (match.minUdpLength !== undefined && !(Number.isInteger(match.minUdpLength) && match.minUdpLength >= 0)) throw new RangeError(`UDP length ${match.minUdpLength}`);
  const defines = match.tcpSourcePort !== undefined ? [`-DTCP_SPORT=${match.tcpSourcePort}`] : [`-DMIN_UDP=${match.minUdpLength ?? 0}`];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-xdp-loss-'));
  try {
    const out = path.join(dir, 'loss.o');
    const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout?.trim();
    const include = multiarch ? ['-I', `/usr/include/${multiarch}`] : [];
    const r = spawnSync('clang', ['-O2', '-g0', '-target', 'bpf', ...include, `-DLOSS_PCT=${pct}`, ...defines, '-c', SOURCE, '-o', out], { encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      throw new Error(`per-packet loss needs clang with the BPF target (apt-get install clang): ${r.error ? String(r.error) : r.stderr.trim()}`);
    }
    return use(out);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Drops `pct` % (an integer, 0..100) of the packets `match` says that reach
 * `node`'s interface, each one independently, before GRO; replaces an
 * earlier program there. GRO is turned on for the interface.
 */
export async function addPacketLoss(bed: Testbed, node: NsNode, pct: number, match: PacketLossMatch = {}): Promise<void> {
  // Built (and the arguments checked) before the interface is touched; loaded while the object file exists (withProgram removes it after).
  withProgram(pct, match, (object) => {
    const link = ['-n', node.ns, 'link', 'set', 'dev', node.ifname, 'xdp'];
    execFileSync('ip', [...link, 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
    execFileSync('ip', [...link, 'obj', object, 'sec', 'xdp'], { stdio: ['ignore', 'pipe', 'pipe'] });
  });
  await bed.runOk(node.ns, ['ethtool', '-K', node.ifname, 'gro', 'on']);
}

/** Takes the program off `node`'s interface (GRO off again, as a veth starts). */
export async function removePacketLoss(bed: Testbed, node: NsNode): Promise<void> {
  await bed.runOk(node.ns, ['ip', 'link', 'set', 'dev', node.ifname, 'xdp', 'off']);
  await bed.runOk(node.ns, ['ethtool', '-K', node.ifname, 'gro', 'off']);
}

/**
 * What XDP programs did on `node`'s interface, from the veth's XDP counters
 * (`ethtool -S`): `seen` counts every frame a program ran on (small and
 * non-UDP ones, which this one passes, included), `dropped` the ones it
 * dropped. The counters run from the interface's creation (detaching a
 * program keeps them): take differences for one run.
 */
export async function packetLossCounters(bed: Testbed, node: NsNode): Promise<LossCounters> {
  const r = await bed.runOk(node.ns, ['ethtool', '-S', node.ifname]);
  const sum = (name: string): number => {
    let n = 0;
    let found = false;
    for (const m of r.stdout.matchAll(new RegExp(`rx_queue_\\d+_${name}: (\\d+)`, 'g'))) {
      n += Number(m[1]);
      found = true;
    }
    if (!found) throw new Error(`no ${name} counter for ${node.ifname} in ${node.ns}: ${r.stdout.slice(0, 500)}`);
    return n;
  };
  return { seen: sum('xdp_packets'), dropped: sum('xdp_drops') };
}

/** Whether `node`'s interface has an XDP program attached (`ip link`). */
export function hasXdpProgram(node: NsNode): boolean {
  const out = execFileSync('ip', ['-n', node.ns, 'link', 'show', 'dev', node.ifname], { encoding: 'utf8' });
  return /\bprog\/xdp\b/.test(out);
}
