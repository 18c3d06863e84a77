#!/usr/bin/env node
/**
 * The `rqcast` command (the program is ./program). Before anything else it
 * marks its start (a fetch's start-up tells Node's own start from its
 * modules: fetch --json startupPhasesMs) and, run as a command, installs
 * the code cache (./compile-cache), so that the program, commander and the
 * command's modules are compiled and resolved from it.
 */
import { CLI_START_MARK } from '../client/events';
performance.mark(CLI_START_MARK);
import { startCompileCache } from './compile-cache';
if (require.main === module) startCompileCache(process.argv[2] ?? '');
import { main } from './program';
export { buildProgram, main } from './program';

if (require.main === module) void main();
