/**
 * A scripted rqcast server for client tests: speaks the control protocol
 * with the codecs of lib/protocol and streams real RaptorQ packets, with
 * knobs a real server has no reason to offer (ignore HELLOs, refuse, expire
 * cookies, lie about a digest). Control flow only; the end-to-end tests use
 * RqcastServer.
 *
 * Multicast (docs/PROTOCOL.md §10.10): a channel may be given a group,
 * which JOINED announces; a JOIN with the channel's multicast bit makes the
 * client no unicast destination of it, a JOIN without makes it one again.
 * The group stream (unless `groupSilent`) goes out from `groupSource` once
 * the first JOIN arrives, drawing ESIs from the same counters as the
 * unicast stream, as the real server's does.
 */
import { randomBytes } from 'crypto';
import * as dgram from 'dgram';
import * as os from 'os';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { ControlMessage, ErrorCode, MessageType } from '../../lib/protocol/messages';
import type { FdtChannel } from '../../lib/protocol/fdt';
import { CarouselObject, SenderCarousel, SenderObject } from './support';
import { Waiters } from '../support/waiters';

export interface FakeServerOptions {
  objects: SenderObject[];
  /** Channel names -> TSI. Default { main: 1 }. */
  channels?: Record<string, number>;
  /** The rq:Channel list every FDT carries (docs/PROTOCOL.md §9); none by default. */
  fdtChannels?: FdtChannel[];
  /** Ignore this many HELLOs first. */
  ignoreHellos?: number;
  /** Answer the n-th JOIN (1-based) with ERROR CookieExpired. */
  expireCookieOnJoin?: number;
  /** Packets per 2 ms tick. Default 16. */
  burst?: number;
  symbolSize?: number;
  /** Z, the source blocks of every object (default: derived, RFC 6330 §4.3). */
  sourceBlocks?: number;
  /** Answer the first ACK with ERROR NotJoined (as after an expiry) and stop streaming until the next JOIN. */
  forgetOnFirstAck?: boolean;
  /** Answer the first ACK with this many ERROR CookieExpired at once, as a
   * server does for every ACK in flight when the cookie's time runs out. */
  cookieExpiredOnFirstAck?: number;
  /** Channels (TSIs) whose stream never carries the FDT. */
  withholdFdt?: number[];
  /** Control socket address. Default 127.0.0.1. */
  bindAddress?: string;
  /** Channel name -> its group, announced in JOINED. */
  groups?: Record<string, { group: string; port: number; source?: string }>;
  /** Address the group stream is sent from (the announced source, or another to test filtering); also its outgoing interface. */
  groupSource?: string;
  /** Announce the groups but send nothing to them. */
  groupSilent?: boolean;
  /** Stop each group stream after this many packets (multicast that stops mid-transfer). */
  groupPackets?: number;
  /** Send at most this many unicast packets in all (what a client that starts over could not decode from). */
  unicastPackets?: number;
  /** The group streams wait for startGroups() (once the test knows the client has joined the group). */
  groupsOnCue?: boolean;
}

export class FakeServer {
  readonly socket = dgram.createSocket('udp4');
  readonly received: ControlMessage[] = [];
  hellos = 0;
  joins = 0;
  leaves = 0;
  acks = 0;
  replacementsSent = 0;
  private readonly cookie = randomBytes(24);
  private readonly carousel: SenderCarousel;
  private readonly channels: Record<string, number>;
  private client?: { address: string; port: number; tsis: number[]; ack: boolean };
  private timer?: NodeJS.Timeout;
  private seq = new Map<number, number>();
  private turns = new Map<number, number>();
  /** Packets sent by unicast, and to each group (by TSI). */
  unicastSent = 0;
  readonly groupSent = new Map<number, number>();
  /** TSIs of channels with a group (their group stream runs from the first JOIN on). */
  private readonly groupTsis: { tsi: number; group: string; port: number }[] = [];
  private groupSocket?: dgram.Socket;
  private readonly groupSeq = new Map<number, number>();
  private groupsStarted: boolean;
  private readonly waiters = new Waiters();

  constructor(private readonly o: FakeServerOptions) {
    this.groupsStarted = !o.groupsOnCue;
    this.channels = o.channels ?? { main: 1 };
    this.carousel = new SenderCarousel(o.objects, o.symbolSize ?? 256, o.fdtChannels, o.sourceBlocks);
    this.socket.on('message', (m, r) => {
      this.onMessage(m, r);
      this.waiters.wake();
    });
  }

  /** Resolves once `pred` holds, checked on every datagram received. */
  until(pred: () => boolean): Promise<true> {
    return this.waiters.until(() => pred());
  }

  /** Starts the group streams (groupsOnCue). */
  startGroups(): void {
    this.groupsStarted = true;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.socket.bind(0, this.o.bindAddress ?? '127.0.0.1', resolve));
    for (const [name, g] of Object.entries(this.o.groups ?? {})) {
      if (this.channels[name] !== undefined) this.groupTsis.push({ tsi: this.channels[name], group: g.group, port: g.port });
    }
    if (this.groupTsis.length > 0 && !this.o.groupSilent) {
      const v6 = this.groupTsis[0].group.includes(':');
      const gs = dgram.createSocket(v6 ? 'udp6' : 'udp4');
      await new Promise<void>((resolve) => gs.bind(0, this.o.groupSource ?? (v6 ? '::' : '0.0.0.0'), resolve));
      // Out of the source's interface, looped back to this host's members.
      if (this.o.groupSource !== undefined) gs.setMulticastInterface(v6 ? `::%${multicastIfName(this.o.groupSource)}` : this.o.groupSource);
      gs.setMulticastLoopback(true);
      this.groupSocket = gs;
    }
    return this.socket.address().port;
  }

  close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.carousel.close();
    this.groupSocket?.close();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private reply(msg: ControlMessage, r: dgram.RemoteInfo): void {
    this.socket.send(encodeControl(msg), r.port, r.address);
  }

  private onMessage(m: Buffer, r: dgram.RemoteInfo): void {
    const d = decodeControl(m);
    if (!d.ok) return;
    const msg = d.msg;
    this.received.push(msg);
    switch (msg.type) {
      case MessageType.Hello:
        if (++this.hellos <= (this.o.ignoreHellos ?? 0)) return;
        this.reply({ type: MessageType.Cookie, nonce: msg.nonce, cookie: this.cookie, serverTimeMs: Date.now() }, r);
        return;
      case MessageType.Join: {
        this.joins++;
        if (this.joins === this.o.expireCookieOnJoin) {
          this.reply({ type: MessageType.Error, code: ErrorCode.CookieExpired, reason: 'cookie expired' }, r);
          return;
        }
        const unknown = msg.channels.find((c) => this.channels[c] === undefined);
        if (unknown !== undefined) {
          this.reply({ type: MessageType.Error, code: ErrorCode.UnknownChannel, reason: `unknown channel ${unknown}` }, r);
          return;
        }
        const ttl = msg.until.kind === 'duration' ? msg.until.ms : msg.until.unixMs - Date.now();
        const groups = this.o.groups ?? {};
        const listening = new Set(msg.multicast ?? []);
        // §6.2: a channel with a group whose bit is set is not sent by unicast.
        const unicast = (c: string): boolean => groups[c] === undefined || !listening.has(c);
        const tsis = msg.channels.filter(unicast).map((c) => this.channels[c]);
        this.client = { address: r.address, port: r.port, tsis, ack: msg.ack };
        this.reply(
          {
            type: MessageType.Joined,
            channels: msg.channels.map((name) => ({
              name,
              tsi: this.channels[name],
              ...(groups[name] ? { multicast: { ...groups[name], unicast: unicast(name) } } : {}),
            })),
            expiresAtMs: Date.now() + ttl,
          },
          r,
        );
        if (!this.timer) this.timer = setInterval(() => this.pump(), 2);
        return;
      }
      case MessageType.Leave:
        this.leaves++;
        if (this.timer) clearInterval(this.timer);
        this.timer = undefined;
        this.client = undefined;
        return;
      case MessageType.Ack: {
        this.acks++;
        if (this.o.forgetOnFirstAck && this.acks === 1) {
          this.client = undefined;
          this.reply({ type: MessageType.Error, code: ErrorCode.NotJoined, reason: 'not joined' }, r);
          return;
        }
        if (this.o.cookieExpiredOnFirstAck && this.acks === 1) {
          for (let i = 0; i < this.o.cookieExpiredOnFirstAck; i++) {
            this.reply({ type: MessageType.Error, code: ErrorCode.CookieExpired, reason: 'cookie expired' }, r);
          }
          return;
        }
        const c = this.client;
        if (!c) return;
        let cursor = msg.windowStart;
        const lost: number[] = [];
        for (const g of [...msg.received, { start: msg.windowEnd, end: msg.windowEnd }]) {
          for (let s = cursor; s !== g.start; s = (s + 1) >>> 0) lost.push(s);
          cursor = g.end;
        }
        for (let i = 0; i < lost.length; i++) {
          this.send(msg.tsi, this.next(msg.tsi), false);
          this.replacementsSent++;
        }
        return;
      }
      default:
    }
  }

  /** The next object of channel `tsi`: the FDT every 8th packet, else objects round-robin. */
  private next(tsi: number): CarouselObject {
    const turn = (this.turns.get(tsi) ?? 0) + 1;
    this.turns.set(tsi, turn);
    return this.carousel.pick(turn, 8, (this.o.withholdFdt ?? []).includes(tsi));
  }

  private send(tsi: number, s: CarouselObject, withSeq: boolean, to?: { group: string; port: number }): void {
    const c = this.client;
    if (!c && !to) return;
    let sequence: number | undefined;
    if (withSeq) {
      // The group stream has its own sequence (§10.10).
      const seqs = to ? this.groupSeq : this.seq;
      sequence = seqs.get(tsi) ?? 0;
      seqs.set(tsi, (sequence + 1) >>> 0);
    }
    const bytes = this.carousel.packet(s, tsi, sequence);
    if (to) {
      this.groupSocket?.send(bytes, to.port, to.group);
      this.groupSent.set(tsi, (this.groupSent.get(tsi) ?? 0) + 1);
      return;
    }
    this.unicastSent++;
    this.socket.send(bytes, (c as { port: number }).port, (c as { address: string }).address);
  }

  private pump(): void {
    for (let i = 0; i < (this.o.burst ?? 16); i++) {
      for (const g of this.groupTsis) {
        if (!this.groupSocket || !this.groupsStarted || (this.groupSent.get(g.tsi) ?? 0) >= (this.o.groupPackets ?? Infinity)) continue;
        this.send(g.tsi, this.next(g.tsi), true, g);
      }
      const c = this.client;
      if (c && this.unicastSent < (this.o.unicastPackets ?? Infinity)) for (const tsi of c.tsis) this.send(tsi, this.next(tsi), true);
    }
  }
}

/** The name of the interface that has `address` (an IPv6 group's outgoing interface is named, not addressed). */
function multicastIfName(address: string): string {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if ((addrs ?? []).some((a) => a.address === address)) return name;
  }
  throw new Error(`no interface has ${address}`);
}
