/**
 * The client side of a transport: how a client reaches one server and
 * receives its packets.
 *
 * A client-side transport is opened toward one server (ServerEndpoint),
 * sends that server control messages (HELLO, JOIN, ACK, LEAVE, docs/PROTOCOL.md
 * §4) and hands its owner what arrives in batches (Datagrams), each
 * datagram with its source so that the owner can check it. The same
 * ALC/LCT packet bytes (RFC 5775) travel over every transport; only the
 * carriage differs:
 *
 * - UDP unicast (lib/transport/udp/client-socket.ts, today): one socket
 *   carries control and data; data comes from another port of the server's
 *   address (§10.1).
 * - IP multicast (lib/transport/multicast/client-membership.ts): a group
 *   membership that only receives (`carriesControl` false); its session
 *   lives on a unicast transport, and its `server` is the group and port.
 * - TCP (lib/transport/tcp/client-stream.ts): one kernel TCP connection
 *   carrying framed control and data; every frame's source is the server's
 *   TCP endpoint.
 *
 * One call per delivery, never one callback per packet: at a few hundred
 * Mbit/s a callback per packet is what the receiving side cannot afford.
 */

export type ClientTransportKind = 'udp' | 'multicast' | 'tcp';

/** The server end a transport is opened toward: a numeric address (no zone) and its control port. */
export interface ServerEndpoint {
  address: string;
  port: number;
  family: 4 | 6;
}

/** The datagrams (or frames) of one delivery: views that share storage (copy what you keep past the call). */
export interface Datagrams {
  readonly count: number;
  /** The storage the datagrams sit in (the client reads them in place). */
  readonly data: Uint8Array;
  /** Where datagram i starts in `data`, and its length. */
  offset(i: number): number;
  length(i: number): number;
  datagram(i: number): Buffer;
  /** Numeric source address (IPv6 without zone). */
  address(i: number): string;
  port(i: number): number;
  /** Datagrams dropped as too long for the receive slots. */
  readonly truncated: number;
  /**
   * The transport reads into `data` again once its handler says it kept
   * nothing of it (TCP's frame storage): a handler copies the few
   * datagrams it keeps rather than pin the storage.
   */
  readonly reusable?: boolean;
}

/** What a transport hands its owner. */
export interface ClientTransportHandler {
  /**
   * One delivery: control messages and ALC packets as they arrived. true:
   * nothing of `d` is held past this call, and its bytes may be reused
   * (the TCP transport reads into them again); anything else: views of it
   * may be kept.
   */
  onDatagrams(d: Datagrams): boolean | void;
  /** The transport failed; nothing more arrives over it. */
  onError(e: Error): void;
}

export interface ClientTransportStats {
  /** Datagrams the kernel dropped because the receive buffer was full (0 where it does not say). */
  socketDrops: number;
}

export interface ClientTransport {
  readonly kind: ClientTransportKind;
  /** The server this transport reaches (for a multicast membership: the group and its port). */
  readonly server: ServerEndpoint;
  /** Whether control messages go over it (false for a receive-only multicast membership). */
  readonly carriesControl: boolean;
  /** Local port, for the kernel's per-socket counters. */
  localPort(): number;
  /** One control message to the server. Fire and forget: the session's retries cover a lost one. */
  sendControl(bytes: Uint8Array): void;
  /** Counters, read before close(). */
  stats(): ClientTransportStats;
  /**
   * The session's stream has begun (its first data arrived): from now on the
   * transport may hold deliveries back to batch them. Until then each
   * control reply of the handshake is handed over as soon as it arrives.
   */
  streaming?(): void;
  /** Idempotent; lets a control message just sent go out first; no delivery after it resolves. */
  close(): Promise<void>;
}
