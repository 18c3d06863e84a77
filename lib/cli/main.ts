#!/usr/bin/env node
/**
 * The `rqcast` command (the program is ./program; bin/rqcast, which npm
 * links, runs this file). Before anything else it
 * marks its start (a fetch's start-up tells Node's own start from its
 * modules: fetch --json startupPhasesMs) and, run as a command, installs
 * the code cache (./compile-cache), so that the program, commander and the
 * command's modules are compiled and resolved from it. The program comes
 * from ./bundle.js when `npm run build:ts` or `prepare` wrote one
 * (tools/bundle-cli.js: a fetch's modules in one file) and it is fresh,
 * else from its own files.
 */
import { CLI_START_MARK } from '../client/events';
performance.mark(CLI_START_MARK);
import * as fs from 'fs';
import * as path from 'path';
import { startCompileCache } from './compile-cache';
/** Run as the command: by node with this file, or by bin/rqcast (what npm links as `rqcast`). */
const asCommand = require.main !== undefined && (require.main === module || require.main.filename === path.join(__dirname, '..', '..', 'bin', 'rqcast'));
if (asCommand) startCompileCache(process.argv[2] ?? '');

/** What tools/bundle-cli.js writes (dist/cli/bundle.js). */
interface Bundle {
  fresh(): boolean;
  load(file: string): unknown;
}

function loadProgram(): typeof import('./program') {
  const file = path.join(__dirname, 'bundle.js');
  if (fs.existsSync(file)) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const bundle = require(file) as Bundle;
    if (bundle.fresh()) return bundle.load('program.js') as typeof import('./program');
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require('./program') as typeof import('./program');
}

export const { buildProgram, main } = loadProgram();

if (asCommand) void main(process.argv, { command: true });
