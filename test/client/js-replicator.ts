/**
 * A plain-JavaScript stand-in for the native Replicator (lib/replicate),
 * with the server's ReplicatorLike shape: a ring per channel, paced by a
 * token bucket on a 2 ms timer, sent with dgram to every destination. For
 * client tests that must not depend on the native sender; the end-to-end
 * tests use the real one.
 */
import * as dgram from 'dgram';
import { EventEmitter } from 'events';

interface Channel {
  capacity: number;
  lowWater: number;
  rate: number;
  queue: Buffer[];
  dests: Map<string, { address: string; port: number }>;
  tokens: number;
  streamPackets: number;
  datagrams: number;
  bytes: number;
}

export class JsReplicator extends EventEmitter {
  private readonly channels = new Map<number, Channel>();
  private readonly socket4 = dgram.createSocket('udp4');
  private readonly socket6 = dgram.createSocket('udp6');
  private readonly timer: NodeJS.Timeout;
  private last = Date.now();

  constructor() {
    super();
    this.socket4.bind(0);
    this.socket6.bind(0);
    this.timer = setInterval(() => this.pump(), 2);
  }

  createChannel(id: number, config: { slotSize: number; capacity?: number; lowWater?: number; rateBytesPerSec?: number }): void {
    const capacity = config.capacity ?? 4096;
    this.channels.set(id, {
      capacity,
      lowWater: config.lowWater ?? capacity / 4,
      rate: config.rateBytesPerSec ?? 0,
      queue: [],
      dests: new Map(),
      tokens: 0,
      streamPackets: 0,
      datagrams: 0,
      bytes: 0,
    });
  }
  removeChannel(id: number): void {
    this.channels.delete(id);
  }
  addDestination(id: number, address: string, port: number): void {
    this.channels.get(id)?.dests.set(`${address}|${port}`, { address, port });
  }
  removeDestination(id: number, address: string, port: number): void {
    this.channels.get(id)?.dests.delete(`${address}|${port}`);
  }
  push(id: number, packets: Uint8Array, packetSize: number, count: number): number {
    const ch = this.channels.get(id);
    if (!ch) return 0;
    const n = Math.min(count, ch.capacity - ch.queue.length);
    for (let i = 0; i < n; i++) ch.queue.push(Buffer.from(packets.subarray(i * packetSize, (i + 1) * packetSize)));
    return n;
  }
  sendTo(address: string, port: number, data: Uint8Array, id?: number): void {
    const ch = id === undefined ? undefined : this.channels.get(id);
    if (ch) ch.datagrams++;
    this.socketFor(address).send(Buffer.from(data), port, address);
  }
  channelStats(id: number): { queued: number; destinations: number; streamPackets: number; datagrams: number; bytes: number } {
    const ch = this.channels.get(id);
    return {
      queued: ch?.queue.length ?? 0,
      destinations: ch?.dests.size ?? 0,
      streamPackets: ch?.streamPackets ?? 0,
      datagrams: ch?.datagrams ?? 0,
      bytes: ch?.bytes ?? 0,
    };
  }
  close(): void {
    clearInterval(this.timer);
    this.socket4.close();
    this.socket6.close();
  }

  private socketFor(address: string): dgram.Socket {
    return address.includes(':') ? this.socket6 : this.socket4;
  }

  private pump(): void {
    const now = Date.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    const low: number[] = [];
    for (const [id, ch] of this.channels) {
      ch.tokens = Math.min(ch.tokens + ch.rate * dt, ch.rate * 0.02 + 2048);
      while (ch.queue.length > 0 && (ch.rate === 0 || ch.tokens >= ch.queue[0].length)) {
        const p = ch.queue.shift() as Buffer;
        ch.tokens -= p.length;
        ch.streamPackets++;
        for (const d of ch.dests.values()) {
          this.socketFor(d.address).send(p, d.port, d.address);
          ch.datagrams++;
          ch.bytes += p.length;
        }
        if (ch.rate === 0 && ch.streamPackets % 256 === 0) break;
      }
      if (ch.queue.length <= ch.lowWater) low.push(id);
    }
    if (low.length > 0) this.emit('lowWater', low);
  }
}
