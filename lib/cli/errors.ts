/**
 * The command line's own error: the user asked for something impossible (a
 * bad option value, nothing to serve, a symbol size the codec refuses). One
 * typed class for every command; exit-codes.ts maps it to exit 2. Errors of
 * the layers below (a bad URL, an unservable file) keep their own classes
 * and are mapped there too.
 */
import { RqcastError } from '../errors';

export class UsageError extends RqcastError {
  static readonly code = 'ERR_USAGE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(UsageError.code, message, options);
  }
}
