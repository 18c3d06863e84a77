/**
 * Typed errors of the RaptorQ codec (native/fec through native/napi). The
 * classes mirror the codec core's Status (native/fec/codec.h); their codes
 * are the core's status_code() strings, and a test checks that both agree.
 * fromNative / callNative / awaitNative turn what the binding throws into
 * these classes.
 */
import { RqcastError } from '../errors';

/** Base of the errors of the RaptorQ codec (native/fec). */
export class CodecError extends RqcastError {
  /** For a batch: the position of the packet that failed. */
  index?: number;
}

// --- one class per codec Status (codec.h), in Status order --------------

/** Status::kNeedMoreSymbols: a block or the object is not decoded yet. */
export class NeedMoreSymbolsError extends CodecError {
  static readonly code = 'ERR_RQ_NEED_MORE_SYMBOLS';
  constructor(message = 'more symbols are needed to decode', options?: { cause?: unknown }) {
    super(NeedMoreSymbolsError.code, message, options);
  }
}
export class InvalidArgumentError extends CodecError {
  static readonly code = 'ERR_RQ_INVALID_ARGUMENT';
  constructor(message = 'invalid argument', options?: { cause?: unknown }) {
    super(InvalidArgumentError.code, message, options);
  }
}
/** A packet that is not exactly 4 + T bytes (or a batch not cut in such). */
export class BadPacketLengthError extends CodecError {
  static readonly code = 'ERR_RQ_BAD_PACKET_LENGTH';
  constructor(message = 'packet length is not 4 + T bytes', options?: { cause?: unknown }) {
    super(BadPacketLengthError.code, message, options);
  }
}
export class SbnOutOfRangeError extends CodecError {
  static readonly code = 'ERR_RQ_SBN_OUT_OF_RANGE';
  constructor(message = 'source block number out of range', options?: { cause?: unknown }) {
    super(SbnOutOfRangeError.code, message, options);
  }
}
export class EsiOutOfRangeError extends CodecError {
  static readonly code = 'ERR_RQ_ESI_OUT_OF_RANGE';
  constructor(message = 'encoding symbol id out of range', options?: { cause?: unknown }) {
    super(EsiOutOfRangeError.code, message, options);
  }
}
export class OtiOutOfBoundsError extends CodecError {
  static readonly code = 'ERR_RQ_OTI_OUT_OF_BOUNDS';
  constructor(message = 'object transmission information out of bounds', options?: { cause?: unknown }) {
    super(OtiOutOfBoundsError.code, message, options);
  }
}
export class TransferTooLongError extends CodecError {
  static readonly code = 'ERR_RQ_TRANSFER_TOO_LONG';
  constructor(message = 'transfer length exceeds 946270874880 bytes', options?: { cause?: unknown }) {
    super(TransferTooLongError.code, message, options);
  }
}
export class SymbolSizeNotAlignedError extends CodecError {
  static readonly code = 'ERR_RQ_SYMBOL_SIZE_NOT_ALIGNED';
  constructor(message = 'symbol size is not a multiple of the alignment', options?: { cause?: unknown }) {
    super(SymbolSizeNotAlignedError.code, message, options);
  }
}
export class TooManySourceSymbolsError extends CodecError {
  static readonly code = 'ERR_RQ_TOO_MANY_SOURCE_SYMBOLS';
  constructor(message = 'source block has more than 56403 symbols', options?: { cause?: unknown }) {
    super(TooManySourceSymbolsError.code, message, options);
  }
}
export class SubSymbolTooSmallError extends CodecError {
  static readonly code = 'ERR_RQ_SUB_SYMBOL_TOO_SMALL';
  constructor(message = 'sub-symbol smaller than the alignment', options?: { cause?: unknown }) {
    super(SubSymbolTooSmallError.code, message, options);
  }
}
export class OutOfMemoryError extends CodecError {
  static readonly code = 'ERR_RQ_OUT_OF_MEMORY';
  constructor(message = 'out of memory', options?: { cause?: unknown }) {
    super(OutOfMemoryError.code, message, options);
  }
}

/** Reading a file-backed encoder's file failed; `errno` says why. */
export class IoError extends CodecError {
  static readonly code = 'ERR_RQ_IO';
  /** The system error number, when the failure came from a system call. */
  errno?: number;
  constructor(message = "reading the object's file failed", options?: { cause?: unknown }) {
    super(IoError.code, message, options);
  }
}
/** A file-backed encoder's file became shorter than the object's F bytes. */
export class SourceTruncatedError extends CodecError {
  static readonly code = 'ERR_RQ_SOURCE_TRUNCATED';
  constructor(message = "the object's file is shorter than its transfer length", options?: { cause?: unknown }) {
    super(SourceTruncatedError.code, message, options);
  }
}

// --- states of the binding's objects -------------------------------------

/** An operation that conflicts with one in progress on the same object. */
export class CodecBusyError extends CodecError {
  static readonly code = 'ERR_RQ_BUSY';
  constructor(message = 'another operation is in progress', options?: { cause?: unknown }) {
    super(CodecBusyError.code, message, options);
  }
}
export class CodecClosedError extends CodecError {
  static readonly code = 'ERR_RQ_CLOSED';
  constructor(message = 'codec object is closed', options?: { cause?: unknown }) {
    super(CodecClosedError.code, message, options);
  }
}
/** The decoded block was handed out by takeBlock()/releaseBlock(). */
export class BlockReleasedError extends CodecError {
  static readonly code = 'ERR_RQ_BLOCK_RELEASED';
  constructor(message = 'block was already taken', options?: { cause?: unknown }) {
    super(BlockReleasedError.code, message, options);
  }
}
/** A result larger than one buffer can hold (use takeBlock per block). */
export class ObjectTooLargeError extends CodecError {
  static readonly code = 'ERR_RQ_OBJECT_TOO_LARGE';
  constructor(message = 'result exceeds the largest buffer', options?: { cause?: unknown }) {
    super(ObjectTooLargeError.code, message, options);
  }
}
/** The encoder's input ArrayBuffer was transferred or resized. */
export class InputDetachedError extends CodecError {
  static readonly code = 'ERR_RQ_INPUT_DETACHED';
  constructor(message = "the encoder's input buffer was detached or resized", options?: { cause?: unknown }) {
    super(InputDetachedError.code, message, options);
  }
}
export class UnknownKernelError extends CodecError {
  static readonly code = 'ERR_RQ_UNKNOWN_KERNEL';
  constructor(message = 'GF(256) kernel not available', options?: { cause?: unknown }) {
    super(UnknownKernelError.code, message, options);
  }
}

type CodecErrorClass = (new (message?: string, options?: { cause?: unknown }) => CodecError) & {
  readonly code: string;
};

/** Codec Status classes in numeric Status order, starting at kNeedMoreSymbols (1). */
export const statusErrorClasses: readonly CodecErrorClass[] = [
  NeedMoreSymbolsError,
  InvalidArgumentError,
  BadPacketLengthError,
  SbnOutOfRangeError,
  EsiOutOfRangeError,
  OtiOutOfBoundsError,
  TransferTooLongError,
  SymbolSizeNotAlignedError,
  TooManySourceSymbolsError,
  SubSymbolTooSmallError,
  OutOfMemoryError,
  IoError,
  SourceTruncatedError,
];

const byCode = new Map<string, CodecErrorClass>(
  [
    ...statusErrorClasses,
    CodecBusyError,
    CodecClosedError,
    BlockReleasedError,
    ObjectTooLargeError,
    InputDetachedError,
    UnknownKernelError,
  ].map((c) => [c.code, c]),
);

/**
 * Turns an error thrown by the native binding into its typed class (the
 * original is kept as `cause`, and its extra fields such as a batch
 * `index` are copied). Anything else is returned unchanged.
 */
export function fromNative(err: unknown): unknown {
  // Duck-typed, not `instanceof Error`: the addon creates its errors in the
  // realm it was loaded in, which need not be the caller's (jest, vm).
  if (err instanceof RqcastError || typeof err !== 'object' || err === null) return err;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || typeof message !== 'string') return err;
  const Cls = byCode.get(code);
  if (Cls === undefined) return err;
  const typed = new Cls(message, { cause: err });
  const index = (err as { index?: unknown }).index;
  if (typeof index === 'number') typed.index = index;
  const errno = (err as { errno?: unknown }).errno;
  if (typed instanceof IoError && typeof errno === 'number') typed.errno = errno;
  return typed;
}

/** Runs a native call and rethrows its error typed. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Awaits a native promise and rethrows its rejection typed. */
export async function awaitNative<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (e) {
    throw fromNative(e);
  }
}
