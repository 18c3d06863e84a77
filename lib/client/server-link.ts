/**
 * ServerLink: one server reached over one transport. The thin shell around
 * the I/O-free session machine (session.ts): it owns the transport, sends
 * what the session outputs, feeds it the control messages the data path
 * picks out, keeps one timer at the session's next deadline and, in ACK
 * mode, the ACK interval; and it turns the session's events into the
 * fetch's (channels joined into the registry, refusals, warnings).
 *
 * A fetch holds one link per session: the first (UDP unicast to the URL's
 * server, or TCP with --transport tcp), and one more over TCP for each
 * batch of channels the 'auto' chain moves there; several servers next. Each
 * link's channels are its own in the registry (keyed by the link's id and
 * TSI), its objects are everyone's. A channel's multicast group is no
 * session of its own: its membership (group-link.ts) feeds this link's
 * data path, and its fallback to unicast is a JOIN of this session
 * (useUnicast).
 *
 * The link also watches its unicast data (the packets of its channels that
 * its own transport brings), every WATCH_TICK_MS:
 * - Server leaving (ERROR 20, docs/PROTOCOL.md §6.7): an ERROR is not
 *   authenticated, so the notice alone ends nothing. Packets already in
 *   flight may follow it for BYE_SETTLE_MS; if any arrive after that, the
 *   notice was stale or forged and the fetch goes on (a warning); if none
 *   arrive until BYE_CONFIRM_MS, the server is gone: the session ends and
 *   the fetch is told (serverLeft), which fails with ServerLeftError unless
 *   another server still serves it.
 * - Data stopped (stallMs, UDP only): a joined session none of whose
 *   unicast channels delivered a packet for stallMs asks again, HELLO then
 *   JOIN (ClientSession.rejoin), at most once per stallMs: a server that
 *   restarted forgot the session, and would otherwise be asked only at the
 *   next renewal. A session all of whose channels come from groups is not
 *   watched (its unicast socket rightly hears nothing).
 */
import { performance } from 'perf_hooks';
import { encodeControl } from '../protocol/control';
import { ControlMessage, JoinedChannel, MessageType } from '../protocol/messages';
import type { ClientTransport, ClientTransportHandler, Datagrams, ServerEndpoint } from '../transport/client-transport';
import { DataPath, DataPathOptions, DataPathOwner } from './data-path';
import type { PacketInfo } from './events';
import type { ObjectRegistry } from './object-registry';
import { ServerLeftError } from './errors';
import type { SessionMachine, SessionOutput } from './session';

/**
 * How long a joined UDP session's unicast data may stop before it asks
 * again: a sixteenth of its JOIN's time (the renewal comes at half),
 * between 0.5 and 2 s. Not an expiry: one HELLO and JOIN per stall.
 */
export function stallAfter(ttlMs: number): number {
  return Math.min(2000, Math.max(500, Math.floor(ttlMs / 16)));
}

/** How often the link looks at its unicast packet count. */
export const WATCH_TICK_MS = 100;
/** After ERROR ServerLeaving: packets this soon after it may have been in flight already. */
export const BYE_SETTLE_MS = 150;
/** After ERROR ServerLeaving: no packet from BYE_SETTLE_MS to this: the server is gone. */
export const BYE_CONFIRM_MS = 600;

/** What a link needs from the fetch it serves. */
export interface ServerLinkHost {
  /** The fetch is over (done or failed). */
  readonly ended: boolean;
  /** Something that may still help arrived at `now` (the fetch's timeout). */
  activity(now: number): void;
  /** The link's session joined: its channels are in the registry; pre-JOIN data follows. */
  joined(link: ServerLink, info: { channels: JoinedChannel[]; expiresAtMs: number }): void;
  /** The link cannot go on: the fetch fails with `e`. */
  failed(e: Error): void;
  warning(message: string): void;
  /** 'packet' listeners are there (the debug event). */
  watchingPackets(): boolean;
  packet(info: PacketInfo): void;
  /** A delivery of the link's transport was read (the fallback watches its channels' packets). */
  delivered?(link: ServerLink, now: number): void;
  /**
   * The server said it is leaving and its data stopped (§6.7): the link has
   * ended its session. Without this, the fetch fails with `e`.
   */
  serverLeft?(link: ServerLink, e: ServerLeftError): void;
}

export interface ServerLinkOptions {
  /** The session over this link's transport (a ClientSession for UDP unicast). */
  session: SessionMachine;
  dataPath: DataPathOptions;
  /** ACK every this many ms (ACK mode). */
  ackIntervalMs: number;
  /** NEED every this many ms (when dataPath.needEveryPackets is set). Default 10. */
  needIntervalMs?: number;
  /** A joined UDP session whose unicast data stops for this long says HELLO again (undefined: never). */
  stallMs?: number;
}

export class ServerLink implements ClientTransportHandler, DataPathOwner {
  readonly session: SessionMachine;
  readonly dataPath: DataPath;
  private transport?: ClientTransport;
  /** At the session's next deadline. */
  private deadlineTimer?: NodeJS.Timeout;
  private ackTimer?: NodeJS.Timeout;
  private needTimer?: NodeJS.Timeout;
  private watchTimer?: NodeJS.Timeout;
  /** TSIs of the channels this link's transport carries (not received from a group). */
  private readonly unicastTsis = new Set<number>();
  /** The TSI of each joined channel, by name. */
  private readonly channelTsis = new Map<string, number>();
  /** Their packets so far, and when that count last moved. */
  private watchedTotal = 0;
  private movedAt = 0;
  /** ERROR ServerLeaving arrived at `at`; `settled`: the packet count at at + BYE_SETTLE_MS. */
  private bye?: { at: number; settled?: number };
  private _gone = false;
  /** The transport was told the stream has begun (ClientTransport.streaming). */
  private streaming = false;

  constructor(
    /** The session's id in the registry. */
    readonly id: number,
    readonly server: ServerEndpoint,
    registry: ObjectRegistry,
    private readonly host: ServerLinkHost,
    private readonly o: ServerLinkOptions,
  ) {
    this.session = o.session;
    this.dataPath = new DataPath(id, server, registry, this, o.dataPath);
  }

  /** Starts the session (HELLO) over `transport`, which hands its datagrams to this link. */
  start(transport: ClientTransport, now = Date.now()): void {
    this.transport = transport;
    this.apply(this.session.start(now), now);
  }

  /** LEAVE, if the session is joined (every wanted object is decoded). */
  leave(now = Date.now()): void {
    const out = this.session.leave(now);
    if (this.session.left) this.stopAcks();
    this.apply(out, now);
  }

  /** Asks the server for `channel`'s unicast stream: JOIN with its multicast bit cleared (docs/PROTOCOL.md §10.10). */
  useUnicast(channel: string, now = Date.now()): void {
    const tsi = this.channelTsis.get(channel);
    if (tsi !== undefined) this.unicastTsis.add(tsi);
    this.apply(this.session.useUnicast(channel, now), now);
  }

  /** The server said it was leaving and stopped sending (§6.7): this link's session is over. */
  get gone(): boolean {
    return this._gone;
  }

  /** Receive-buffer overflows of the transport so far. */
  socketDrops(): number {
    return this.transport?.stats().socketDrops ?? 0;
  }

  /** Says LEAVE if joined and not left yet, ends the session, closes the transport. */
  async shutdown(): Promise<void> {
    const transport = this.transport;
    this.transport = undefined;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.stopAcks();
    this.stopWatch();
    const bye = this.session.leave(Date.now());
    this.session.close();
    if (!transport) return;
    for (const m of bye.send) transport.sendControl(encodeControl(m));
    await transport.close();
  }

  // ClientTransportHandler

  /** true: nothing of `d` was kept (DataPath.onDatagrams): its transport may reuse the bytes. */
  onDatagrams(d: Datagrams): boolean {
    const released = this.dataPath.onDatagrams(d);
    // The handshake's replies came unbatched; the stream, once it has begun, comes in batches.
    if (!this.streaming && this.unicastTotal() > 0) {
      this.streaming = true;
      this.transport?.streaming?.();
    }
    this.host.delivered?.(this, Date.now());
    return released;
  }

  onError(e: Error): void {
    // After LEAVE nothing more is expected from this server, and a server
    // may end the connection with the session (TCP: LEAVE closes it): not
    // a failure of the fetch.
    if (this.session.left || this._gone) return;
    // A server that said it is leaving and closes the connection: that is the confirmation (§6.7).
    if (this.bye) {
      this.leftByServer();
      return;
    }
    this.host.failed(e);
  }

  // DataPathOwner

  get ended(): boolean {
    return this.host.ended;
  }
  get joined(): boolean {
    return this.session.joined;
  }
  get left(): boolean {
    return this.session.left;
  }
  get cookie(): Uint8Array | undefined {
    return this.session.cookie;
  }

  control(msg: ControlMessage): void {
    const now = Date.now();
    const out = this.session.receive(msg, now);
    const stats = this.o.dataPath.stats;
    if (msg.type === MessageType.Cookie && out.answered && stats.cookieMs === 0) stats.cookieMs = performance.now();
    this.apply(out, now);
  }

  send(msg: ControlMessage): void {
    const transport = this.transport;
    if (!transport || this.host.ended) return;
    // UDP: a send error is a lost datagram; the session's retries cover it.
    transport.sendControl(encodeControl(msg));
  }

  activity(now: number): void {
    this.host.activity(now);
  }

  watchingPackets(): boolean {
    return this.host.watchingPackets();
  }

  packet(info: PacketInfo): void {
    this.host.packet(info);
  }

  // ---------------------------------------------------------------------

  /** Carries out what the session produced, then waits for its next deadline. */
  private apply(out: SessionOutput, now: number): void {
    const stats = this.o.dataPath.stats;
    // The handshake's answers are progress; once joined, a renewal's are
    // not (they come every half --ttl whether or not data does): only data
    // that helps then counts (data-path.ts).
    if (out.answered && (!this.session.joined || out.events.some((e) => e.type === 'joined'))) this.host.activity(now);
    if (out.ignored) stats.ignored++;
    for (const m of out.send) {
      if (m.type === MessageType.Hello && stats.hellosSent++ === 0) stats.helloSentMs = performance.now();
      else if (m.type === MessageType.Join) stats.joinsSent++;
      this.send(m);
    }
    for (const e of out.events) {
      switch (e.type) {
        case 'joined':
          if (stats.joinedMs === 0) stats.joinedMs = performance.now();
          this.dataPath.addChannels(e.channels);
          for (const c of e.channels) {
            this.channelTsis.set(c.name, c.tsi);
            if (!c.multicast || c.multicast.unicast) this.unicastTsis.add(c.tsi);
          }
          this.startWatch(now);
          if (this.o.dataPath.ack) this.ackTimer = setInterval(() => this.dataPath.sendAcks(), this.o.ackIntervalMs);
          if (this.o.dataPath.needEveryPackets !== undefined) this.needTimer = setInterval(() => this.dataPath.sendNeeds(), this.o.needIntervalMs ?? 10);
          this.host.joined(this, { channels: e.channels, expiresAtMs: e.expiresAtMs });
          this.dataPath.replayPreJoin();
          break;
        case 'renewed':
          stats.renewals++;
          break;
        case 'refused':
        case 'expired':
          this.host.failed(e.error);
          break;
        case 'left':
          this.stopAcks();
          this.stopWatch();
          break;
        case 'leaving':
          stats.serverLeaving++;
          if (!this.bye) this.bye = { at: now };
          this.startWatch(now);
          break;
        case 'warning':
          this.host.warning(e.message);
          break;
      }
    }
    this.arm();
  }

  private arm(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    const due = this.session.nextDeadline();
    if (due === undefined || this.host.ended || !this.transport) return;
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      if (this.host.ended) return;
      const now = Date.now();
      this.apply(this.session.tick(now), now);
    }, Math.max(0, due - Date.now()));
  }

  private startWatch(now: number): void {
    if (this.watchTimer) return;
    this.watchedTotal = this.unicastTotal();
    this.movedAt = now;
    this.watchTimer = setInterval(() => this.watch(Date.now()), WATCH_TICK_MS);
  }

  private stopWatch(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
  }

  /** Packets of the link's unicast channels taken so far. */
  private unicastTotal(): number {
    let n = 0;
    for (const tsi of this.unicastTsis) n += this.dataPath.unicastPackets(tsi);
    return n;
  }

  /** The watch (see the file comment): a server that left, or data that stopped. */
  private watch(now: number): void {
    if (this.host.ended || this.session.left || !this.transport) {
      this.stopWatch();
      return;
    }
    const total = this.unicastTotal();
    if (total !== this.watchedTotal) {
      this.watchedTotal = total;
      this.movedAt = now;
    }
    const bye = this.bye;
    if (bye) {
      if (bye.settled === undefined) {
        if (now >= bye.at + BYE_SETTLE_MS) bye.settled = total;
      } else if (total !== bye.settled) {
        this.bye = undefined;
        this.o.dataPath.stats.serverLeavingIgnored++;
        this.host.warning('the server said it is leaving, but its data still arrives: going on');
      } else if (now >= bye.at + BYE_CONFIRM_MS) {
        this.leftByServer();
      }
      return;
    }
    const stall = this.o.stallMs;
    if (stall === undefined || this.transport.kind !== 'udp' || !this.session.joined || this.unicastTsis.size === 0) return;
    if (now - this.movedAt < stall) return;
    this.movedAt = now;
    const out = this.session.rejoin?.(now);
    if (!out) return;
    if (out.send.length > 0) this.o.dataPath.stats.rejoins++;
    this.apply(out, now);
  }

  /** The server left (§6.7): the session ends here; the fetch decides whether it goes on. */
  private leftByServer(): void {
    this._gone = true;
    this.stopWatch();
    this.stopAcks();
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.session.close();
    const a = this.server.address;
    const e = new ServerLeftError(`${a.includes(':') ? `[${a}]` : a}:${this.server.port}`);
    if (this.host.serverLeft) this.host.serverLeft(this, e);
    else this.host.failed(e);
  }

  private stopAcks(): void {
    if (this.ackTimer) clearInterval(this.ackTimer);
    this.ackTimer = undefined;
    if (this.needTimer) clearInterval(this.needTimer);
    this.needTimer = undefined;
  }
}
