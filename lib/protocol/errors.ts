/**
 * Typed errors of the wire-format layer. `ProtocolError` extends the
 * project-wide `RqcastError` (lib/errors.ts), so every error rqcast throws on
 * purpose shares one base and carries a stable `code`.
 *
 * Decoders of network input never throw these: they return a
 * `{ ok: false, reason }` result (a `Reject` caught at the decoder's
 * boundary, see bytes.ts). These errors are thrown by encoders given values
 * that cannot be put on the wire (a programming error of the caller), and by
 * `parseFdt`, whose safe wrapper `tryParseFdt` returns results instead.
 */
import { RqcastError } from '../errors';

/** Base of the wire-format errors. */
export class ProtocolError extends RqcastError {}

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
