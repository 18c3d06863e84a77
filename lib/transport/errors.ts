/**
 * Typed errors of the replicator (native/replicate through
 * native/napi/replicator.cc). The binding throws plain errors with a stable
 * `code` (and `errno` for socket failures); fromReplicatorNative turns them
 * into these classes. Messages never carry an address.
 */
import { RqcastError } from '../errors';
import { fromNative } from '../fec/errors';

export class ReplicatorError extends RqcastError {}

/** A call after close(). */
export class ReplicatorClosedError extends ReplicatorError {
  static readonly code = 'ERR_RQ_REPLICATOR_CLOSED';
  constructor(message = 'replicator is closed', options?: { cause?: unknown }) {
    super(ReplicatorClosedError.code, message, options);
  }
}
export class UnknownChannelError extends ReplicatorError {
  static readonly code = 'ERR_RQ_UNKNOWN_CHANNEL';
  constructor(message = 'unknown channel', options?: { cause?: unknown }) {
    super(UnknownChannelError.code, message, options);
  }
}
export class ChannelExistsError extends ReplicatorError {
  static readonly code = 'ERR_RQ_CHANNEL_EXISTS';
  constructor(message = 'channel already exists', options?: { cause?: unknown }) {
    super(ChannelExistsError.code, message, options);
  }
}
/**
 * Not a numeric IPv4/IPv6 address (no name resolution on the data plane), or
 * a bad port; for multicast, a group that is not a multicast address
 * (224.0.0.0/4, ff00::/8), or a source that is not a unicast address of the
 * group's family on this host.
 */
export class BadAddressError extends ReplicatorError {
  static readonly code = 'ERR_RQ_BAD_ADDRESS';
  constructor(message = 'address must be a numeric IPv4 or IPv6 address', options?: { cause?: unknown }) {
    super(BadAddressError.code, message, options);
  }
}
/** The channel already has a multicast group (one per channel: remove it first). */
export class GroupExistsError extends ReplicatorError {
  static readonly code = 'ERR_RQ_GROUP_EXISTS';
  constructor(message = 'channel already has a group', options?: { cause?: unknown }) {
    super(GroupExistsError.code, message, options);
  }
}
/**
 * A multicast interface this host does not have: no interface of that name
 * or index, none holding that IPv4 address, or one that cannot carry the
 * group (an IPv6 group's interface is a name or an index).
 */
export class NoSuchInterfaceError extends ReplicatorError {
  static readonly code = 'ERR_RQ_NO_SUCH_INTERFACE';
  errno?: number;
  constructor(message = 'no such interface', options?: { cause?: unknown }) {
    super(NoSuchInterfaceError.code, message, options);
  }
}
/** An IPv6 destination on a host where the replicator could not open an IPv6 socket. */
export class AddressFamilyError extends ReplicatorError {
  static readonly code = 'ERR_RQ_ADDRESS_FAMILY';
  constructor(message = 'address family not available', options?: { cause?: unknown }) {
    super(AddressFamilyError.code, message, options);
  }
}
/** A packet larger than the channel's slotSize, or a datagram larger than 65507 bytes. */
export class PacketTooLargeError extends ReplicatorError {
  static readonly code = 'ERR_RQ_PACKET_TOO_LARGE';
  constructor(message = 'packet too large', options?: { cause?: unknown }) {
    super(PacketTooLargeError.code, message, options);
  }
}
/** A call on a closed UdpReceiver. */
export class ReceiverClosedError extends ReplicatorError {
  static readonly code = 'ERR_RQ_RECEIVER_CLOSED';
  constructor(message = 'receiver is closed', options?: { cause?: unknown }) {
    super(ReceiverClosedError.code, message, options);
  }
}
/** A socket call failed (opening or binding a socket, sending). */
export class ReplicatorSocketError extends ReplicatorError {
  static readonly code = 'ERR_RQ_SOCKET';
  errno?: number;
  constructor(message = 'socket error', options?: { cause?: unknown }) {
    super(ReplicatorSocketError.code, message, options);
  }
}

type ReplicatorErrorClass = (new (message?: string, options?: { cause?: unknown }) => ReplicatorError) & {
  readonly code: string;
};

const byCode = new Map<string, ReplicatorErrorClass>(
  [
    ReplicatorClosedError,
    ReceiverClosedError,
    UnknownChannelError,
    ChannelExistsError,
    GroupExistsError,
    NoSuchInterfaceError,
    BadAddressError,
    AddressFamilyError,
    PacketTooLargeError,
    ReplicatorSocketError,
  ].map((c) => [c.code, c]),
);

/**
 * The typed form of an error thrown by the replicator binding; argument
 * errors (ERR_RQ_INVALID_ARGUMENT) become the shared InvalidArgumentError.
 */
export function fromReplicatorNative(err: unknown): unknown {
  if (err instanceof RqcastError || typeof err !== 'object' || err === null) return err;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || typeof message !== 'string') return err;
  const Cls = byCode.get(code);
  if (Cls === undefined) return fromNative(err);
  const typed = new Cls(message, { cause: err });
  const errno = (err as { errno?: unknown }).errno;
  if ((typed instanceof ReplicatorSocketError || typed instanceof NoSuchInterfaceError) && typeof errno === 'number') {
    typed.errno = errno;
  }
  return typed;
}
