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
 */
import { encodeControl } from '../protocol/control';
import { ControlMessage, JoinedChannel, MessageType } from '../protocol/messages';
import type { ClientTransport, ClientTransportHandler, Datagrams, ServerEndpoint } from '../transport/client-transport';
import { DataPath, DataPathOptions, DataPathOwner } from './data-path';
import type { PacketInfo } from './events';
import type { ObjectRegistry } from './object-registry';
import type { SessionMachine, SessionOutput } from './session';

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
}

export interface ServerLinkOptions {
  /** The session over this link's transport (a ClientSession for UDP unicast). */
  session: SessionMachine;
  dataPath: DataPathOptions;
  /** ACK every this many ms (ACK mode). */
  ackIntervalMs: number;
}

export class ServerLink implements ClientTransportHandler, DataPathOwner {
  readonly session: SessionMachine;
  readonly dataPath: DataPath;
  private transport?: ClientTransport;
  /** At the session's next deadline. */
  private deadlineTimer?: NodeJS.Timeout;
  private ackTimer?: NodeJS.Timeout;

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
    this.apply(this.session.useUnicast(channel, now), now);
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
    const bye = this.session.leave(Date.now());
    this.session.close();
    if (!transport) return;
    for (const m of bye.send) transport.sendControl(encodeControl(m));
    await transport.close();
  }

  // ClientTransportHandler

  onDatagrams(d: Datagrams): void {
    this.dataPath.onDatagrams(d);
    this.host.delivered?.(this, Date.now());
  }

  onError(e: Error): void {
    // After LEAVE nothing more is expected from this server, and a server
    // may end the connection with the session (TCP: LEAVE closes it): not
    // a failure of the fetch.
    if (this.session.left) return;
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
    this.apply(this.session.receive(msg, now), now);
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
    if (out.answered) this.host.activity(now);
    if (out.ignored) stats.ignored++;
    for (const m of out.send) {
      if (m.type === MessageType.Hello) stats.hellosSent++;
      else if (m.type === MessageType.Join) stats.joinsSent++;
      this.send(m);
    }
    for (const e of out.events) {
      switch (e.type) {
        case 'joined':
          this.dataPath.addChannels(e.channels);
          if (this.o.dataPath.ack) this.ackTimer = setInterval(() => this.dataPath.sendAcks(), this.o.ackIntervalMs);
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

  private stopAcks(): void {
    if (this.ackTimer) clearInterval(this.ackTimer);
    this.ackTimer = undefined;
  }
}
