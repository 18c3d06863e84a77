/**
 * The first SIGINT or SIGTERM, for the long-running commands (serve,
 * relay): resolves with its name and stops listening, so that the command
 * can listen for a second one while it shuts down.
 */
export function firstSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(sig);
    };
    const onInt = (): void => on('SIGINT');
    const onTerm = (): void => on('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}
