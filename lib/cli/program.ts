/**
 * The `rqcast` program (main.ts runs it): `rqcast serve ...` (./serve),
 * `rqcast fetch ...` (./fetch), `rqcast ls ...` (./ls) and `rqcast relay
 * ...` (./relay). Exit codes come from the one table in ./exit-codes
 * (docs/PROTOCOL.md §10.9): usage errors exit with 2.
 */
import { Command, CommanderError } from 'commander';
import { exitCodeFor } from './exit-codes';
import type { ProgramOptions } from './prompt-exit';

/*
 * Each command's module is loaded only when it is registered, and `main`
 * registers only the command it runs (all of them for `rqcast --help` and
 * anything else): `rqcast fetch` does not load the server, the relay or
 * the metrics code. A fetch's start-up (fetch --json `startupMs`) is
 * mostly module loading.
 */
/* eslint-disable @typescript-eslint/no-var-requires */
const COMMANDS: Record<string, (o: ProgramOptions) => (program: Command) => unknown> = {
  serve: () => (require('./serve') as typeof import('./serve')).registerServeCommand,
  fetch: (o) => (program) => (require('./fetch') as typeof import('./fetch')).registerFetchCommand(program, o),
  ls: () => (require('./ls') as typeof import('./ls')).registerLsCommand,
  relay: () => (require('./relay') as typeof import('./relay')).registerRelayCommand,
};
/* eslint-enable @typescript-eslint/no-var-requires */

// Read at run time: the same relative path works from lib/cli and dist/cli.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const pkg = require('../../package.json') as { version: string };

/** The program with every command, or with `only` (a command's name) alone. */
export function buildProgram(only?: string, o: ProgramOptions = {}): Command {
  const program = new Command();
  program
    .name('rqcast')
    .description('RaptorQ (RFC 6330) content distribution: one stream of fountain-coded symbols, any number of clients')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    // Inherited by the subcommands registered below: usage errors come back
    // here as CommanderError instead of exiting with commander's code 1.
    .exitOverride()
    .addHelpText(
      'after',
      `
Quick start:
  rqcast serve ./files --rate 100              serve a directory on UDP port 4433
  rqcast fetch rqcast://HOST:4433 -o out/      fetch every object into out/
  rqcast ls rqcast://HOST:4433                 list its channels and objects
  rqcast fetch rqcast://HOST:4433/name.bin     fetch one object into ./name.bin

Run "rqcast serve --help", "rqcast fetch --help" or "rqcast ls --help" for every option.`,
    );
  for (const [name, register] of Object.entries(COMMANDS)) if (only === undefined || only === name) register(o)(program);
  return program;
}

export async function main(argv: string[] = process.argv, o: ProgramOptions = {}): Promise<void> {
  const command = argv[2];
  const program = buildProgram(command !== undefined && Object.prototype.hasOwnProperty.call(COMMANDS, command) ? command : undefined, o);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.exitCode = exitCodeFor(e);
    // commander has already printed its own error (or the help).
    if (!(e instanceof CommanderError)) process.stderr.write(`rqcast: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}

