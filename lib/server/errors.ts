/**
 * Typed errors of the server control plane, under the project-wide
 * RqcastError (lib/errors.ts).
 *
 * None of these is thrown for bad network input: the control plane answers
 * malformed or hostile datagrams with counted refusals, never exceptions.
 * They are thrown for programming/configuration errors at the API boundary.
 */

import { RqcastError } from '../errors';

/** Base of the server control plane's errors. */
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
