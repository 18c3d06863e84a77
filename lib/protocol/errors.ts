/**
 * Typed errors of the wire-format layer.
 *
 * `lib/errors.ts` (the project-wide `RqcastError`) did not exist when this
 * file was written, so `ProtocolError` is a local base with the same shape
 * (`code`). When `RqcastError` lands, `ProtocolError` should extend it.
 *
 * Decoders of network input never throw these: they return a
 * `{ ok: false, reason }` result (see decode-result.ts). These errors are
 * thrown by encoders given values that cannot be put on the wire (a
 * programming error of the caller), and by `parseFdt`, whose safe wrapper
 * `tryParseFdt` turns them into results.
 */

export class ProtocolError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A value handed to an encoder cannot be represented on the wire. */
export class ProtocolEncodeError extends ProtocolError {
  constructor(message: string) {
    super('ERR_PROTOCOL_ENCODE', message);
  }
}

/** An FDT instance document is malformed or outside the accepted schema. */
export class FdtParseError extends ProtocolError {
  /** Machine-readable reason, one of `FdtRejectReason`. */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('ERR_FDT_PARSE', message);
    this.reason = reason;
  }
}
