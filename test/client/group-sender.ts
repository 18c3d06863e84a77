/**
 * A plain FLUTE sender for tests: the ALC packets of some objects and their
 * FDT instance (RFC 6726), as a FLUTE session on a multicast group carries
 * them, with no rqcast server behind it. It hands out the packets of a
 * SenderCarousel (support.ts, as FakeServer does): round-robin over the
 * objects (the FDT every `fdtEvery`-th packet), each with a fresh ESI, and
 * sends them from a socket bound to one address (the source), to a group.
 * `garbage` senders put wrong bytes in every symbol: were a receiver to
 * take one, its object would fail its SHA-256.
 */
import * as dgram from 'dgram';
import { SenderCarousel } from './support';

export interface GroupSenderOptions {
  objects: { name: string; data: Uint8Array }[];
  tsi: number;
  symbolSize?: number;
  /** The FDT every this many packets. Default 8. */
  fdtEvery?: number;
  /** Symbols filled with 0xee instead of the object's. */
  garbage?: boolean;
}

export class GroupSender {
  private readonly carousel: SenderCarousel;
  private turn = 0;
  private sequence = 0;
  /** Packets handed out. */
  sent = 0;
  private socket?: dgram.Socket;

  constructor(private readonly o: GroupSenderOptions) {
    this.carousel = new SenderCarousel(o.objects, o.symbolSize ?? 256);
  }

  /** The next packet of the session. */
  next(): Uint8Array {
    this.turn++;
    const s = this.carousel.pick(this.turn, this.o.fdtEvery ?? 8);
    this.sent++;
    return this.carousel.packet(s, this.o.tsi, this.sequence++ >>> 0, this.o.garbage);
  }

  /** Binds the sending socket to `source`, out of interface `ifname` (looped back to this host's members). */
  async bind(source: string, ifname: string): Promise<void> {
    const v6 = source.includes(':');
    const s = dgram.createSocket(v6 ? 'udp6' : 'udp4');
    await new Promise<void>((r) => s.bind(0, source, r));
    s.setMulticastInterface(v6 ? `::%${ifname}` : source);
    s.setMulticastLoopback(true);
    this.socket = s;
  }

  /** Sends `count` packets to group:port, 32 per event-loop turn; resolves once the kernel has every one. */
  async send(group: string, port: number, count: number): Promise<void> {
    const s = this.socket as dgram.Socket;
    for (let i = 0; i < count; i += 32) {
      const burst: Promise<void>[] = [];
      for (let j = i; j < Math.min(count, i + 32); j++) {
        const p = this.next();
        burst.push(new Promise<void>((r) => s.send(p, port, group, () => r())));
      }
      await Promise.all(burst);
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  close(): void {
    this.socket?.close();
    this.carousel.close();
  }
}
