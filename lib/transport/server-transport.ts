/**
 * The server side of a transport: how control messages reach the client
 * manager and its replies reach the client, and how a session's channel
 * membership reaches the data path. The server (lib/server/server.ts) is
 * wiring between this, the client manager (lib/session) and the replicator;
 * it routes every reply and command to the transport its Peer came over
 * (`Peer.transport` = `ServerTransport.kind`).
 *
 * Implementations:
 * - UDP unicast (udp/server-transport.ts): one dgram control socket; a
 *   member is a replicator destination (address, port) of the channel.
 * - TCP (tcp/server-transport.ts): `open` starts the native TCP server;
 *   each connection is a Peer with a connection id; control messages and
 *   data share that connection, framed (docs/PROTOCOL.md §3); a member is
 *   that connection added as a sink of the channel in the replication
 *   engine. A lost segment's retransmission gets fresh symbols natively, so
 *   `sendFresh` has nothing to do there. Its handshake proves the address,
 *   so `maxBytes` never binds in practice, but it is still honoured; a
 *   closed connection ends its session at once (`peerGone`).
 * - IP multicast is *not* one of these: it has no control messages and no
 *   per-peer membership (receivers join the group themselves and the server
 *   never learns who they are). It is a sink bound to a channel's group
 *   stream when the channel is created (Replicator.addGroup, server/
 *   group-streams.ts), beside this interface, not an implementation of it.
 *
 * Transports never decode control messages (lib/protocol does, in the
 * server), and never decide anything: they count and carry.
 */
import type { Peer, PeerTransport } from '../session/peer';

/** One control message as it arrived. */
export interface ControlReceived {
  /** The message bytes (one UDP datagram; over TCP, one frame's payload). */
  bytes: Uint8Array;
  from: Peer;
  /**
   * Bytes the message cost the peer on the wire, the anti-amplification
   * budget for the replies it causes (docs/PROTOCOL.md §6.1).
   */
  bytesReceived: number;
}

export interface ServerTransportHandlers {
  control(message: ControlReceived): void;
  /** A failure of the transport itself after it opened (e.g. the control socket errored). */
  error(err: Error): void;
  /**
   * A connection-oriented transport's peer is gone (TCP: the connection
   * closed, was reset or timed out): its session ends now rather than at
   * its expiry, since nothing more can reach it. UDP never calls it.
   */
  peerGone?(peer: Peer): void;
}

/** Where a transport listens for control messages. */
export interface ListenAddress {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** Counters every server transport keeps, summed by the server into its own. */
export interface ServerTransportCounters {
  /** Control messages received (UDP: datagrams), before decoding. */
  controlReceived: number;
  controlBytesReceived: number;
  repliesSent: number;
  replyBytesSent: number;
  /** Replies the OS refused to send (counted when it says so, asynchronously). */
  replySendErrors: number;
  /** Replies not sent because they were larger than their `maxBytes`. */
  repliesOverBudget: number;
  /** Data-path calls (membership, fresh packets) the engine refused. */
  dataPathErrors: number;
  /** Control datagrams the kernel dropped because the socket's receive buffer was full (UDP, Linux). */
  controlReceiveDrops: number;
}

export function zeroServerTransportCounters(): ServerTransportCounters {
  return {
    controlReceived: 0,
    controlBytesReceived: 0,
    repliesSent: 0,
    replyBytesSent: 0,
    replySendErrors: 0,
    repliesOverBudget: 0,
    dataPathErrors: 0,
    controlReceiveDrops: 0,
  };
}

/** pino-compatible subset a transport logs through (the server passes its own logger). */
export interface TransportLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface ServerTransport {
  /** The transport its peers name (`Peer.transport`). */
  readonly kind: PeerTransport;
  readonly counters: Readonly<ServerTransportCounters>;

  /** Starts receiving control messages; resolves once it does. On failure it is closed again and rejects. */
  open(handlers: ServerTransportHandlers): Promise<ListenAddress>;

  /**
   * Sends one encoded control reply to `to`. Returns false, and sends
   * nothing, if `maxBytes` is given and the reply is larger (counted
   * `repliesOverBudget`). A send the OS refuses later is counted, not thrown.
   */
  sendControl(to: Peer, bytes: Uint8Array, maxBytes?: number): boolean;

  /** Starts sending channel `tsi`'s stream to `peer`. Refusals are counted and logged, not thrown. */
  addMember(tsi: number, peer: Peer): void;
  /** Stops sending channel `tsi`'s stream to `peer`. */
  removeMember(tsi: number, peer: Peer): void;
  /**
   * Sends `peer` packets outside the stream (each a fresh symbol replacing a
   * reported loss, DESIGN.md "Transports"), charged to channel `tsi`.
   */
  sendFresh(tsi: number, peer: Peer, packets: readonly Uint8Array[]): void;

  /**
   * `peer`'s session ended (LEAVE, expiry, or its connection went away): a
   * connection-oriented transport closes the connection, gracefully, after
   * the replies already queued. Optional: a UDP peer has nothing to close.
   */
  endPeer?(peer: Peer): void;

  /** Stops receiving and sending control messages; idempotent. The data engine is the server's to close. */
  close(): Promise<void>;
}
