/**
 * Ending the `rqcast fetch` process once the fetch is over (issue 12, the
 * e2e time toward the fountain floor). When runFetch returns, the objects
 * are published (renamed, the directory fsynced) or kept for a resume, the
 * LEAVE is sent and every socket is closed: what the process still has to
 * do is write its last lines. Left to drain its event loop, Node would
 * then tear its environment down before exiting (the heap, the isolate, the
 * platform's threads), 15-30 ms for a fetch's ~200 MB (docs/BENCHMARKS.md,
 * 2026-12-05), and anything that still held the loop (a timer, a handle)
 * would keep the process there. So the command flushes stdout and stderr
 * and calls process.exit with the fetch's code: 'exit' handlers still run
 * (the compile cache is saved, pino's asynchronous destination is flushed).
 *
 * Only the command does this (main.ts, run as the process's main module):
 * main() called as a function (tests, a program embedding the CLI) returns
 * and leaves process.exitCode set, as before.
 */

/** How the program runs (program.ts's main and buildProgram take it). */
export interface ProgramOptions {
  /**
   * Run as the `rqcast` command (main.ts): a fetch ends the process once it
   * is over and its lines are out (exitWhenFlushed). Otherwise its action
   * returns with process.exitCode set.
   */
  command?: boolean;
}

/** Resolves once everything written to `stream` so far has been handed to the system. */
function flushed(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    // A write's callback runs after the writes queued before it (an empty write queues nothing of its own).
    if (!stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

/** Flushes `streams` (stdout and stderr), then ends the process with `code`. */
export async function exitWhenFlushed(code: number, streams: NodeJS.WritableStream[] = [process.stdout, process.stderr]): Promise<never> {
  await Promise.all(streams.map(flushed));
  return process.exit(code);
}
