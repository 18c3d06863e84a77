/**
 * Typed errors. Every error rqcast throws on purpose is an RqcastError with
 * a stable `code`; messages never carry user data (they may reach logs, and
 * never the network). Other modules add their own subclasses next to their
 * code, extending RqcastError.
 *
 * This file holds the base class and the configuration and argument errors
 * shared by the server-side layers (content, stream, session, transport,
 * server). Each module's own errors sit next to it: the codec's in
 * lib/fec/errors.ts, the wire formats' in lib/protocol/errors.ts, the
 * replicator's in lib/transport/errors.ts, the client's in
 * lib/client/errors.ts. None of these is thrown for bad network input: the
 * control plane answers malformed or hostile datagrams with counted
 * refusals, never exceptions.
 */

export class RqcastError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Base of the server-side errors (configuration, addresses, times). */
export class ServerError extends RqcastError {}

/** A configuration value is out of range (e.g. cookie lifetime > rotation period). */
export class InvalidServerConfigError extends ServerError {
  constructor(message: string) {
    super('ERR_SERVER_CONFIG', message);
  }
}

/** A peer address string is not an IPv4 or IPv6 literal. */
export class InvalidAddressError extends ServerError {
  // The address itself stays out of the message: messages never carry peer data.
  constructor() {
    super('ERR_INVALID_ADDRESS', 'not an IPv4 or IPv6 address literal');
  }
}

/** A port is not an integer in 0..65535. */
export class InvalidPortError extends ServerError {
  constructor() {
    super('ERR_INVALID_PORT', 'port must be an integer in 0..65535');
  }
}

/** A time passed to a clock-free component is not a finite number. */
export class InvalidTimeError extends ServerError {
  constructor(what: string, value: number) {
    super('ERR_INVALID_TIME', `${what} must be a finite number of milliseconds, got ${value}`);
  }
}
