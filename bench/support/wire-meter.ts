// What a benchmark actually puts on the wire: the kernel counters of the
// bridge ports of a Testbed (test/support/netns.ts), sampled while a
// transfer runs. Port p0 is the server's, p(i+1) receiver i's; a port's
// tx is what the bridge delivered to that node, before its nftables loss.
//
// A veth counts each frame's bytes from its Ethernet header (14 bytes) on,
// so for IPv4 UDP without options: IP bytes = bytes - 14 * packets, UDP
// payload bytes = bytes - 42 * packets. The steady state of a port is the
// span in which its delivered bytes went from 10 % to 90 % of the run's
// total: start-up and tail fall outside.
import { Testbed } from '../../test/support/netns';

const ETHERNET = 14;
const ETHERNET_IP_UDP = 14 + 20 + 8;

interface Sample {
  t: number;
  /** Per receiver port: bytes and packets the bridge sent to it. */
  bytes: number[];
  packets: number[];
}

export interface WireRate {
  /** Mbit/s (10^6 bit/s) in the port's steady state, counted three ways. */
  ethernet_mbit: number;
  ip_mbit: number;
  udp_payload_mbit: number;
  packets_per_s: number;
  /** Mean UDP payload of a packet in that span. */
  mean_udp_payload: number;
  /** Whole run, all packets: what reached the receiver's veth. */
  total_packets: number;
  total_udp_payload_bytes: number;
}

/** Samples the receivers' bridge ports every `intervalMs` until stopped. */
export class WireMeter {
  private readonly samples: Sample[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly bed: Testbed,
    private readonly receivers: number,
    private readonly intervalMs = 250,
  ) {
    this.loop = this.run();
  }

  private async sample(): Promise<Sample> {
    const files: string[] = [];
    for (let i = 1; i <= this.receivers; i++) files.push(`/sys/class/net/p${i}/statistics/tx_bytes`, `/sys/class/net/p${i}/statistics/tx_packets`);
    const r = await this.bed.runOk(this.bed.bridgeNs, ['cat', ...files]);
    const t = performance.now() / 1000;
    const v = r.stdout.trim().split(/\s+/).map(Number);
    return { t, bytes: v.filter((_, k) => k % 2 === 0), packets: v.filter((_, k) => k % 2 === 1) };
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.samples.push(await this.sample());
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
    this.samples.push(await this.sample());
  }

  /** Stops sampling; each receiver's steady-state rate. */
  async stop(): Promise<WireRate[]> {
    this.stopped = true;
    await this.loop;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const out: WireRate[] = [];
    for (let i = 0; i < this.receivers; i++) {
      const total = last.bytes[i] - first.bytes[i];
      const at = (share: number): Sample => this.samples.find((s) => s.bytes[i] - first.bytes[i] >= share * total) ?? last;
      const a = at(0.1);
      const b = at(0.9);
      const dt = b.t - a.t;
      const bytes = b.bytes[i] - a.bytes[i];
      const packets = b.packets[i] - a.packets[i];
      const mbit = (x: number): number => (dt > 0 ? Math.round((x * 8) / dt / 1e4) / 100 : 0);
      const totalPackets = last.packets[i] - first.packets[i];
      out.push({
        ethernet_mbit: mbit(bytes),
        ip_mbit: mbit(bytes - ETHERNET * packets),
        udp_payload_mbit: mbit(bytes - ETHERNET_IP_UDP * packets),
        packets_per_s: dt > 0 ? Math.round(packets / dt) : 0,
        mean_udp_payload: packets > 0 ? Math.round(((bytes - ETHERNET_IP_UDP * packets) / packets) * 10) / 10 : 0,
        total_packets: totalPackets,
        total_udp_payload_bytes: total - ETHERNET_IP_UDP * totalPackets,
      });
    }
    return out;
  }
}
