/**
 * Errors of the client. Each carries a stable `code`; the CLI maps them to
 * its exit codes (lib/cli/exit-codes.ts): usage 2, refused 3, timeout 4, digest
 * mismatch 5, anything else 1.
 */
import { RqcastError } from '../errors';

export class ClientError extends RqcastError {}

/** An rqcast:// URL that does not follow `rqcast://HOST:PORT[/CHANNELS][/NAME]`. */
export class InvalidUrlError extends ClientError {
  static readonly code = 'ERR_RQ_CLIENT_BAD_URL';
  constructor(message: string) {
    super(InvalidUrlError.code, message);
  }
}

/** A client option out of range (ttl, timeout, lossRate, ...). */
export class InvalidClientOptionError extends ClientError {
  static readonly code = 'ERR_RQ_CLIENT_BAD_OPTION';
  constructor(message: string) {
    super(InvalidClientOptionError.code, message);
  }
}

/** The URL's HOST is a name the system resolver does not know. */
export class UnresolvedHostError extends ClientError {
  static readonly code = 'ERR_RQ_CLIENT_RESOLVE';
  constructor(host: string) {
    super(UnresolvedHostError.code, `cannot resolve host "${host}"`);
  }
}

/** The server answered JOIN with an ERROR that another attempt cannot fix. */
export class JoinRefusedError extends ClientError {
  static readonly code = 'ERR_RQ_CLIENT_REFUSED';
  /** The ErrorCode of the server's ERROR message. */
  readonly serverCode: number;
  readonly serverReason: string;
  constructor(serverCode: number, serverReason: string) {
    super(JoinRefusedError.code, `server refused the join: ${serverReason || `error ${serverCode}`}`);
    this.serverCode = serverCode;
    this.serverReason = serverReason;
  }
}

/** Nothing useful arrived for the configured timeout, or the session ended first. */
export class FetchTimeoutError extends ClientError {
  static readonly code = 'ERR_RQ_CLIENT_TIMEOUT';
  constructor(message: string) {
    super(FetchTimeoutError.code, message);
  }
}

/** A decoded object's SHA-256 differs from the FDT's rq:Content-SHA-256. */
export class DigestMismatchError extends ClientError {
  static readonly code = 'ERR_RQ_CLIENT_DIGEST_MISMATCH';
  readonly objectName: string;
  constructor(objectName: string) {
    super(DigestMismatchError.code, `SHA-256 of the decoded object ${quotedName(objectName)} does not match the FDT`);
    this.objectName = objectName;
  }
}

/** What the server's FDTs offered, for an error that says what exists instead. */
export interface ServerOffer {
  /** Names of the objects the joined channels' FDTs list. */
  objects: string[];
  /** Every channel of the server (the FDTs' rq:Channel list); empty when they list none. */
  channels: string[];
}

/**
 * A name from the network, made safe for a terminal: control characters
 * (C0, DEL and C1, where CSI starts escape sequences) written as \uXXXX, so
 * a hostile FDT cannot move the cursor or recolour what the user reads.
 */
export function printableName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** printableName in double quotes, with '"' and '\\' escaped: one name in a message. */
export function quotedName(name: string): string {
  return `"${printableName(name.replace(/[\\"]/g, (c) => `\\${c}`))}"`;
}

/** The names in `offer`, for an error message: at most `max` of each kind. */
export function offerText(offer: ServerOffer, max = 10): string {
  const list = (names: string[]): string => {
    const shown = names.slice(0, max).map(quotedName);
    return shown.join(', ') + (names.length > max ? `, … (${names.length - max} more)` : '');
  };
  const parts: string[] = [];
  if (offer.channels.length > 0) parts.push(`channels ${list(offer.channels)}`);
  parts.push(offer.objects.length > 0 ? `objects ${list(offer.objects)}` : 'no objects');
  return parts.join('; ');
}

/** The FDTs of every joined channel arrived and none lists the object asked for (exit 6). */
export class NoSuchObjectError extends ClientError {
  static readonly code = 'ERR_RQ_CLIENT_NO_SUCH_OBJECT';
  readonly objectName: string;
  /** What the joined channels offered instead, when known. */
  readonly offer?: ServerOffer;
  constructor(objectName: string, offer?: ServerOffer, message?: string) {
    super(
      NoSuchObjectError.code,
      message ?? `no joined channel carries an object named "${objectName}"${offer ? ` (the server offers ${offerText(offer)}; run "rqcast ls URL" to list them)` : ''}`,
    );
    this.objectName = objectName;
    if (offer) this.offer = offer;
  }
}

/** An FDT entry the client cannot fetch safely (no RaptorQ OTI or no digest). */
export class UnfetchableObjectError extends ClientError {
  static readonly code = 'ERR_RQ_CLIENT_UNFETCHABLE';
  constructor(objectName: string, why: string) {
    super(UnfetchableObjectError.code, `object ${quotedName(objectName)} cannot be fetched: ${why}`);
  }
}

/** The fetch was aborted (close() or an AbortSignal) before it completed. */
export class FetchAbortedError extends ClientError {
  static readonly code = 'ERR_RQ_CLIENT_ABORTED';
  constructor() {
    super(FetchAbortedError.code, 'fetch aborted');
  }
}
