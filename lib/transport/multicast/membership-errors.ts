/**
 * Typed errors of the client side of IP multicast: a group membership that
 * cannot be opened or used. Client-side messages stay on this host (they
 * may name the interface or the group the user gave), and never reach the
 * network.
 */
import { RqcastError } from '../../errors';

export class MembershipError extends RqcastError {}

/** Not a multicast group (IPv4 224.0.0.0/4, IPv6 ff00::/8), port 0, or a source that cannot send to it. */
export class MembershipGroupError extends MembershipError {
  static readonly code = 'ERR_RQ_MULTICAST_GROUP';
  constructor(message: string) {
    super(MembershipGroupError.code, message);
  }
}

/** The interface named for a membership does not exist, has multicast off, or cannot serve the group's family. */
export class MembershipInterfaceError extends MembershipError {
  static readonly code = 'ERR_RQ_MULTICAST_INTERFACE';
  constructor(message: string) {
    super(MembershipInterfaceError.code, message);
  }
}

/** The kernel refused to bind the group's port or to join or leave the group (`errno` says why, e.g. ENODEV). */
export class MembershipSocketError extends MembershipError {
  static readonly code = 'ERR_RQ_MULTICAST_SOCKET';
  /** The system error code ('EADDRINUSE', 'ENODEV', ...), when there is one. */
  readonly errno?: string;
  constructor(message: string, options?: { cause?: unknown; errno?: string }) {
    super(MembershipSocketError.code, message, options);
    this.errno = options?.errno;
  }
}

/** A call on a membership after close(). */
export class MembershipClosedError extends MembershipError {
  static readonly code = 'ERR_RQ_MULTICAST_CLOSED';
  constructor() {
    super(MembershipClosedError.code, 'the multicast membership is closed');
  }
}

/** sendControl on a transport that only receives (a multicast membership carries no control messages, docs/PROTOCOL.md §10.10). */
export class ReceiveOnlyTransportError extends MembershipError {
  static readonly code = 'ERR_RQ_RECEIVE_ONLY';
  constructor() {
    super(ReceiveOnlyTransportError.code, 'a multicast membership only receives: control messages go over the session\'s unicast transport');
  }
}
