/**
 * A scripted rqcast server over TCP for client tests: a plain net.Server
 * that speaks the control protocol framed (docs/PROTOCOL.md §3) and, once
 * a connection has JOINed, streams real RaptorQ packets framed on it —
 * what the native TCP server does, without its retransmission (the
 * loopback loses nothing). One client connection at a time.
 */
import { randomBytes } from 'crypto';
import * as net from 'net';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { encodeFrame, FrameDecoder } from '../../lib/protocol/framing';
import { ControlMessage, MessageType } from '../../lib/protocol/messages';
import { CarouselObject, SenderCarousel, SenderObject } from './support';

export interface FakeTcpServerOptions {
  objects: SenderObject[];
  /** Channel names -> TSI. Default { main: 1 }. */
  channels?: Record<string, number>;
  /** Packets per 2 ms tick. Default 16. */
  burst?: number;
  symbolSize?: number;
  /** Send at most this many data packets in all. */
  maxPackets?: number;
  /** First ESI of every block (so that another server's symbols are not these). Default 0. */
  firstEsi?: number;
}

export class FakeTcpServer {
  readonly received: ControlMessage[] = [];
  connections = 0;
  sent = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly carousel: SenderCarousel;
  private readonly channels: Record<string, number>;
  private readonly cookie = randomBytes(24);
  private readonly turns = new Map<number, number>();
  private readonly seq = new Map<number, number>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: FakeTcpServerOptions) {
    this.channels = o.channels ?? { main: 1 };
    this.carousel = new SenderCarousel(o.objects, o.symbolSize ?? 256);
    if (o.firstEsi) for (const s of [...this.carousel.objects, this.carousel.fdt]) s.nextEsi.fill(o.firstEsi);
    this.server = net.createServer((s) => this.onConnection(s));
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.sockets) s.destroy();
    this.carousel.close();
    return new Promise((r) => this.server.close(() => r()));
  }

  private onConnection(s: net.Socket): void {
    this.connections++;
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    const frames = new FrameDecoder();
    s.on('data', (chunk) => {
      for (const f of frames.push(chunk)) this.onMessage(f, s);
    });
  }

  private reply(s: net.Socket, msg: ControlMessage): void {
    s.write(encodeFrame(encodeControl(msg)));
  }

  private onMessage(bytes: Uint8Array, s: net.Socket): void {
    const d = decodeControl(bytes);
    if (!d.ok) return;
    const msg = d.msg;
    this.received.push(msg);
    switch (msg.type) {
      case MessageType.Hello:
        this.reply(s, { type: MessageType.Cookie, nonce: msg.nonce, cookie: this.cookie, serverTimeMs: Date.now() });
        return;
      case MessageType.Join: {
        const ttl = msg.until.kind === 'duration' ? msg.until.ms : msg.until.unixMs - Date.now();
        const tsis = msg.channels.map((c) => this.channels[c]);
        this.reply(s, { type: MessageType.Joined, channels: msg.channels.map((name) => ({ name, tsi: this.channels[name] })), expiresAtMs: Date.now() + ttl });
        if (!this.timer) this.timer = setInterval(() => this.pump(s, tsis), 2);
        return;
      }
      case MessageType.Leave:
        if (this.timer) clearInterval(this.timer);
        this.timer = undefined;
        // As rqcast's server does: the session is over, so is its connection.
        s.end();
        return;
      default:
    }
  }

  private next(tsi: number): CarouselObject {
    const turn = (this.turns.get(tsi) ?? 0) + 1;
    this.turns.set(tsi, turn);
    return this.carousel.pick(turn, 8);
  }

  private pump(s: net.Socket, tsis: number[]): void {
    if (s.destroyed) return;
    for (let i = 0; i < (this.o.burst ?? 16); i++) {
      for (const tsi of tsis) {
        if (this.sent >= (this.o.maxPackets ?? Infinity)) return;
        const sequence = this.seq.get(tsi) ?? 0;
        this.seq.set(tsi, (sequence + 1) >>> 0);
        s.write(encodeFrame(this.carousel.packet(this.next(tsi), tsi, sequence)));
        this.sent++;
      }
    }
  }
}
