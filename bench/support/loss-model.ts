// The loss a bench applies to its receivers (bench:e2e `--loss-at`), on the
// namespace testbed (test/support/netns.ts):
//
// - `packets`: the XDP program of test/support/packet-loss.ts on each
//   receiver's veth drops each UDP packet independently before GRO, as a
//   lossy link drops frames: a GSO datagram of ~31 packets loses single
//   packets, the same loss uftp's single packets see.
// - `datagrams`: the nftables rule on each receiver's input hook
//   (Testbed.addLoss) sees a GSO datagram whole and drops the whole run:
//   the same share of packets, in bursts of ~31 for rqcast and single
//   packets for uftp.
//
// Either model drops only the packets its match says: by default UDP
// datagrams longer than 512 bytes (data packets of either tool in
// bench:e2e; control exchanges pass), or the TCP segments from one source
// port (bench:tcp: the server's side).
import type { LossCounters, NsNode, Testbed } from '../../test/support/netns';
import { addPacketLoss, packetLossCounters, PacketLossMatch, probePacketLoss, removePacketLoss } from '../../test/support/packet-loss';

export type LossAt = 'packets' | 'datagrams';

/** UDP length (header included) above which a datagram is a candidate. */
const MIN_UDP_LENGTH = 512;

export class LossModel {
  /** Each node's XDP counters when its program was attached (packets: the counters run from the veth's creation). */
  private readonly base = new Map<string, LossCounters>();

  constructor(
    readonly at: LossAt,
    private readonly bed: Testbed,
    private readonly nodes: NsNode[],
  ) {
    if (at === 'packets') {
      const probe = probePacketLoss();
      if (!probe.ok) throw new Error(`--loss-at packets: ${probe.reason}; or run with --loss-at datagrams`);
    }
  }

  /** What the log and the table call it. */
  describe(): string {
    return this.at === 'packets' ? 'per-packet loss before GRO (XDP on each receiver veth)' : 'nftables input-hook loss (a GSO datagram or TSO segment drops whole)';
  }

  /** Drops `pct` % of the packets `match` says on every receiver from now on (0: none). */
  async set(pct: number, match: PacketLossMatch = { minUdpLength: MIN_UDP_LENGTH }): Promise<void> {
    for (const n of this.nodes) {
      if (this.at === 'datagrams') {
        const rule = match.tcpSourcePort !== undefined ? { tcpOnly: true, tcpSourcePort: match.tcpSourcePort } : { minUdpLength: match.minUdpLength ?? 0 };
        if (pct > 0) await this.bed.addLoss(n.ns, pct, rule);
        else await this.bed.removeLoss(n.ns);
      } else if (pct > 0) {
        this.base.set(n.ns, await packetLossCounters(this.bed, n));
        await addPacketLoss(this.bed, n, pct, match);
      } else if (this.base.delete(n.ns)) {
        await removePacketLoss(this.bed, n);
      }
    }
  }

  /** What the loss of `node` saw and dropped since set() last turned it on (the datagrams model's `seen` counts a GSO datagram once; the packets model's counts every frame). */
  async counters(node: NsNode): Promise<LossCounters> {
    if (this.at === 'datagrams') return this.bed.lossCounters(node.ns);
    const now = await packetLossCounters(this.bed, node);
    const base = this.base.get(node.ns) ?? { seen: 0, dropped: 0 };
    return { seen: now.seen - base.seen, dropped: now.dropped - base.dropped };
  }

  /** The share dropped over every node, in % (0 when no loss is set), and the packets the loss saw (undefined without loss). */
  async realised(pct: number): Promise<{ pct: number | undefined; seen?: number }> {
    if (pct === 0) return { pct: 0 };
    let seen = 0;
    let dropped = 0;
    for (const n of this.nodes) {
      const k = await this.counters(n);
      seen += k.seen;
      dropped += k.dropped;
    }
    return { pct: seen > 0 ? (dropped / seen) * 100 : undefined, seen };
  }
}

export function parseLossAt(value: string | undefined, fallback: LossAt = 'packets'): LossAt {
  const v = value ?? fallback;
  if (v !== 'packets' && v !== 'datagrams') throw new Error(`--loss-at must be packets or datagrams, not ${JSON.stringify(v)}`);
  return v;
}
