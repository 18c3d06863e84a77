/**
 * One table of exit codes and one mapping from an error to its code
 * (lib/cli/exit-codes.ts), used by serve, fetch and main.ts alike:
 * 0 ok, 2 usage, 3 refused, 4 timeout, 5 digest mismatch, 6 no such
 * object, 130 interrupted,
 * 1 other (README, docs/PROTOCOL.md §10.9).
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { UsageError } from '../../lib/cli/errors';
import {
  EXIT_DIGEST,
  EXIT_INTERRUPTED,
  EXIT_NO_OBJECT,
  EXIT_OK,
  EXIT_OTHER,
  EXIT_REFUSED,
  EXIT_TIMEOUT,
  EXIT_USAGE,
  exitCodeFor,
} from '../../lib/cli/exit-codes';
import { registerServeCommand, SERVE_EXIT_OK, SERVE_EXIT_OTHER, SERVE_EXIT_USAGE, ServeIo } from '../../lib/cli/serve';
import {
  DigestMismatchError,
  FetchAbortedError,
  FetchTimeoutError,
  InvalidClientOptionError,
  InvalidUrlError,
  JoinRefusedError,
  NoSuchObjectError,
  UnfetchableObjectError,
} from '../../lib/client/errors';
import { NothingNamedError } from '../../lib/client/one-segment';
import { EmptyObjectError, ObjectNotFoundError } from '../../lib/content/catalogue';
import { InvalidServerConfigError, RqcastError } from '../../lib/errors';
import { TooManySourceSymbolsError } from '../../lib/fec/errors';

test('the codes README and docs/PROTOCOL.md state', () => {
  expect([EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_REFUSED, EXIT_TIMEOUT, EXIT_DIGEST, EXIT_NO_OBJECT, EXIT_INTERRUPTED]).toEqual([0, 1, 2, 3, 4, 5, 6, 130]);
  expect([SERVE_EXIT_OK, SERVE_EXIT_OTHER, SERVE_EXIT_USAGE]).toEqual([EXIT_OK, EXIT_OTHER, EXIT_USAGE]);
});

describe('exitCodeFor', () => {
  test.each([
    ['UsageError', new UsageError('nothing to serve'), EXIT_USAGE],
    ['InvalidUrlError', new InvalidUrlError('bad'), EXIT_USAGE],
    ['InvalidClientOptionError', new InvalidClientOptionError('bad'), EXIT_USAGE],
    ['a catalogue error (missing FILE)', new ObjectNotFoundError('/nonexistent'), EXIT_USAGE],
    ['a catalogue error (empty FILE)', new EmptyObjectError('empty.bin'), EXIT_USAGE],
    ['InvalidServerConfigError', new InvalidServerConfigError('at least one channel'), EXIT_USAGE],
    ["commander's parse error", new InvalidArgumentError('x'), EXIT_USAGE],
    ["commander's unknown option", new CommanderError(1, 'commander.unknownOption', 'x'), EXIT_USAGE],
    ['--help / --version', new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), EXIT_OK],
    ['JoinRefusedError', new JoinRefusedError(1, 'unknown channel'), EXIT_REFUSED],
    ['FetchTimeoutError', new FetchTimeoutError('no answer to HELLO'), EXIT_TIMEOUT],
    ['DigestMismatchError', new DigestMismatchError('a.bin'), EXIT_DIGEST],
    ['FetchAbortedError', new FetchAbortedError(), EXIT_INTERRUPTED],
    ['NoSuchObjectError', new NoSuchObjectError('a.bin'), EXIT_NO_OBJECT],
    ['NothingNamedError (a one-segment URL)', new NothingNamedError('a.bin'), EXIT_NO_OBJECT],
    ['another client error', new UnfetchableObjectError('a.bin', 'no OTI'), EXIT_OTHER],
    // Only serve makes a codec refusal a usage error (it converts it to a UsageError): a client meeting one is not at fault.
    ['a codec refusal, unconverted', new TooManySourceSymbolsError(), EXIT_OTHER],
    ['any other RqcastError', new RqcastError('ERR_X', 'x'), EXIT_OTHER],
    ['a system error', Object.assign(new Error('bind EADDRINUSE'), { code: 'EADDRINUSE' }), EXIT_OTHER],
    ['a non-error', 'string', EXIT_OTHER],
    ['undefined', undefined, EXIT_OTHER],
  ])('%s', (_what, e, code) => expect(exitCodeFor(e)).toBe(code));
});

test('UsageError is an RqcastError with a code', () => {
  const e = new UsageError('m', { cause: 1 });
  expect(e).toBeInstanceOf(RqcastError);
  expect([e.code, e.name, e.message, e.cause]).toEqual(['ERR_USAGE', 'UsageError', 'm', 1]);
});

describe('rqcast serve: a FILE the codec refuses at this --symbol-size is a usage error', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rqcast-exit-'));
    // Sparse: 240 MiB at T = 16 needs more than 256 blocks of 56403 symbols (RFC 6330 §4.4.1.2).
    const fd = openSync(path.join(dir, 'big.bin'), 'w');
    ftruncateSync(fd, 240 * 2 ** 20);
    closeSync(fd);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => {
    process.exitCode = undefined;
  });

  test('exit 2, one line on stderr, nothing on stdout', async () => {
    let errors = '';
    const lines: string[] = [];
    const io: ServeIo = {
      stdout: (line) => lines.push(line),
      stderr: { write: (s: string) => ((errors += s), true) } as unknown as NodeJS.WritableStream,
      stopSignal: () => new Promise(() => undefined),
    };
    const program = new Command().exitOverride();
    registerServeCommand(program, io);
    await program.parseAsync(['node', 'rqcast', 'serve', path.join(dir, 'big.bin'), '--symbol-size', '16', '--port', '0', '--bind', '127.0.0.1', '--quiet']);
    expect(process.exitCode).toBe(EXIT_USAGE);
    expect(errors).toBe(`rqcast serve: ${new TooManySourceSymbolsError().message}\n`);
    expect(lines).toEqual([]);
  });
});
