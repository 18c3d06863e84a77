/**
 * A plain FLUTE sender for tests: the ALC packets of some objects and their
 * FDT instance (RFC 6726), as a FLUTE session on a multicast group carries
 * them, with no rqcast server behind it. It encodes with the project's
 * RaptorQ encoder and encodeAlc, hands out packets round-robin over the
 * objects (the FDT every `fdtEvery`-th packet), each with a fresh ESI, and
 * sends them from a socket bound to one address (the source), to a group.
 * `garbage` senders put wrong bytes in every symbol: were a receiver to
 * take one, its object would fail its SHA-256.
 */
import { createHash } from 'crypto';
import * as dgram from 'dgram';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { encodeAlc } from '../../lib/protocol/alc';
import { buildFdt } from '../../lib/protocol/fdt';
import { wireOti } from './support';

export interface GroupSenderOptions {
  objects: { name: string; data: Uint8Array }[];
  tsi: number;
  symbolSize?: number;
  /** The FDT every this many packets. Default 8. */
  fdtEvery?: number;
  /** Symbols filled with 0xee instead of the object's. */
  garbage?: boolean;
}

interface Stream {
  toi: number;
  enc: ObjectEncoder;
  nextEsi: number[];
  sbn: number;
}

export class GroupSender {
  private readonly streams: Stream[];
  private readonly fdt: Stream;
  private readonly fdtOti: ReturnType<typeof wireOti>;
  private turn = 0;
  private sequence = 0;
  /** Packets handed out, and of those the FDT's. */
  sent = 0;
  fdtSent = 0;
  private socket?: dgram.Socket;

  constructor(private readonly o: GroupSenderOptions) {
    const T = o.symbolSize ?? 256;
    this.streams = o.objects.map((obj, i) => {
      const enc = new ObjectEncoder(obj.data, { symbolSize: T });
      return { toi: i + 1, enc, nextEsi: new Array(enc.sourceBlocks).fill(0), sbn: 0 };
    });
    const xml = buildFdt({
      expiresAtMs: 4_000_000_000_000,
      files: o.objects.map((obj, i) => ({
        toi: BigInt(i + 1),
        contentLocation: obj.name,
        oti: wireOti(this.streams[i].enc),
        sha256: createHash('sha256').update(obj.data).digest(),
      })),
    });
    const fenc = new ObjectEncoder(Buffer.from(xml), { symbolSize: T });
    this.fdt = { toi: 0, enc: fenc, nextEsi: [0], sbn: 0 };
    this.fdtOti = wireOti(fenc);
  }

  /** Source symbols needed by every object (the sum of K). */
  get neededSymbols(): number {
    let n = 0;
    for (const s of this.streams) for (let b = 0; b < s.enc.sourceBlocks; b++) n += s.enc.sourceSymbols(b);
    return n;
  }

  /** The next packet of the session. */
  next(): Uint8Array {
    this.turn++;
    const fdtTurn = this.turn % (this.o.fdtEvery ?? 8) === 0 || this.streams.length === 0;
    const s = fdtTurn ? this.fdt : this.streams[this.turn % this.streams.length];
    const sbn = s.sbn;
    s.sbn = (s.sbn + 1) % s.enc.sourceBlocks;
    const esi = s.nextEsi[sbn]++;
    let symbols = s.enc.packet(sbn, esi).subarray(4);
    if (this.o.garbage) symbols = new Uint8Array(symbols.length).fill(0xee);
    this.sent++;
    if (s.toi === 0) this.fdtSent++;
    return encodeAlc({
      tsi: this.o.tsi,
      toi: s.toi,
      sbn,
      esi,
      symbols,
      oti: s.toi === 0 ? this.fdtOti : undefined,
      fdtInstanceId: s.toi === 0 ? 1 : undefined,
      sequence: this.sequence++ >>> 0,
    });
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
    for (const s of [...this.streams, this.fdt]) s.enc.close();
  }
}
