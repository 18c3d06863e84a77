/**
 * The exit codes of every rqcast command, and the one mapping from an error
 * to its code (docs/PROTOCOL.md §10.9; README): 0 ok, 2 usage, 3 refused,
 * 4 timeout, 5 digest mismatch, 6 no such object, 7 server left, 130
 * interrupted, 1 anything else. Commands
 * and main.ts call `exitCodeFor`; none keeps its own list.
 */
import { CommanderError } from 'commander';
import {
  DigestMismatchError,
  FetchAbortedError,
  FetchTimeoutError,
  InvalidClientOptionError,
  InvalidUrlError,
  JoinRefusedError,
  NoSuchObjectError,
  ServerLeftError,
} from '../client/errors';
import { CatalogueError } from '../content/catalogue-error';
import { InvalidServerConfigError } from '../errors';
import { UsageError } from './errors';

export const EXIT_OK = 0;
export const EXIT_OTHER = 1;
export const EXIT_USAGE = 2;
export const EXIT_REFUSED = 3;
export const EXIT_TIMEOUT = 4;
export const EXIT_DIGEST = 5;
/** The URL names an object (or one segment) the server's FDTs do not list. */
export const EXIT_NO_OBJECT = 6;
/** The server shut down (it said so, docs/PROTOCOL.md §6.7) and no other server was left. */
export const EXIT_SERVER_LEFT = 7;
/** 128 + SIGINT, as a shell reports a command ended by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

type ErrorClass = abstract new (...args: never[]) => Error;

/** Which error means which code; the first matching row wins, anything else is EXIT_OTHER. */
const EXIT_CODES: ReadonlyArray<readonly [ErrorClass, number]> = [
  // The command line asks for the impossible.
  [UsageError, EXIT_USAGE],
  [InvalidUrlError, EXIT_USAGE],
  [InvalidClientOptionError, EXIT_USAGE],
  // A missing, empty or unservable FILE/DIR named on the command line.
  [CatalogueError, EXIT_USAGE],
  // Server options out of range (e.g. a channel with no objects).
  [InvalidServerConfigError, EXIT_USAGE],
  [JoinRefusedError, EXIT_REFUSED],
  [FetchTimeoutError, EXIT_TIMEOUT],
  [DigestMismatchError, EXIT_DIGEST],
  [NoSuchObjectError, EXIT_NO_OBJECT],
  [ServerLeftError, EXIT_SERVER_LEFT],
  [FetchAbortedError, EXIT_INTERRUPTED],
];

export function exitCodeFor(e: unknown): number {
  // commander's own: --help and --version end with 0, a parse error is usage.
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  for (const [cls, code] of EXIT_CODES) if (e instanceof cls) return code;
  return EXIT_OTHER;
}
