/**
 * What RqcastClient.stream() accepts (object-stream.ts): one object or
 * live stream by name, streamed instead of written, before the fetch
 * starts. Each refusal says what to do instead.
 */
import { InvalidClientOptionError } from './errors';
import type { ResolvedClientOptions } from './options';
import type { RqcastUrl } from './url';

/** Throws InvalidClientOptionError unless a client of `url` with `opts` may stream `name` (`running`: its fetch has started). */
export function checkStreamRequest(name: string, url: RqcastUrl, opts: ResolvedClientOptions, running: boolean): void {
  if (running) throw new InvalidClientOptionError('stream() starts the fetch: call it before fetch(), once');
  if (url.name !== undefined && url.name !== name) {
    throw new InvalidClientOptionError(`the URL names "${url.name}", not "${name}": stream the object the URL names, or give a URL without one`);
  }
  if (name === '') throw new InvalidClientOptionError('stream() needs the name of an object or live stream');
  if (opts.playout !== undefined || opts.outputFile !== undefined) {
    throw new InvalidClientOptionError('a client that streams has no output file or playout stream: leave them out of its options');
  }
  if (opts.resume !== undefined) throw new InvalidClientOptionError('resume is for files: a stream cannot be resumed (what it handed out is gone); leave resume out');
}
