/**
 * Typed errors of the server control plane.
 *
 * `lib/errors.ts` (the project-wide `RqcastError`) did not exist when this
 * file was written, so `ServerError` is a local base with the same shape
 * (`code`). When `RqcastError` lands, `ServerError` should extend it; nothing
 * else here needs to change.
 *
 * None of these is thrown for bad network input: the control plane answers
 * malformed or hostile datagrams with counted refusals, never exceptions.
 * They are thrown for programming/configuration errors at the API boundary.
 */

export class ServerError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration value is out of range (e.g. cookie lifetime > rotation period). */
export class InvalidServerConfigError extends ServerError {
  constructor(message: string) {
    super('ERR_SERVER_CONFIG', message);
  }
}

/** A peer address string is not an IPv4 or IPv6 literal. */
export class InvalidAddressError extends ServerError {
  constructor(address: string) {
    super('ERR_INVALID_ADDRESS', `not an IP address literal: ${JSON.stringify(address)}`);
  }
}

/** A port is not an integer in 0..65535. */
export class InvalidPortError extends ServerError {
  constructor(port: number) {
    super('ERR_INVALID_PORT', `not a port number: ${port}`);
  }
}

/** A time passed to a clock-free component is not a finite number. */
export class InvalidTimeError extends ServerError {
  constructor(what: string, value: number) {
    super('ERR_INVALID_TIME', `${what} must be a finite number of milliseconds, got ${value}`);
  }
}
