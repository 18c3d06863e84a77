/**
 * A URL with one path segment, as people write it
 * (rqcast://HOST:PORT/SEGMENT, docs/PROTOCOL.md §10.8): a channel if the
 * server has one of that name, else an object of the default channel.
 *
 * The channel reading goes first: a server without that channel answers
 * its JOIN at once with ERROR UnknownChannel, and the object reading
 * follows. When neither exists the error says so, with what the server
 * offers (the default channel's FDT: its objects, and every channel its
 * rq:Channel list names).
 */
import { ErrorCode } from '../protocol/messages';
import { JoinRefusedError, NoSuchObjectError, offerText, ServerOffer } from './errors';
import { DEFAULT_CHANNEL, RqcastUrl } from './url';

/** The one segment names neither a channel of the server nor an object of its default channel (exit 6, like a missing object). */
export class NothingNamedError extends NoSuchObjectError {
  constructor(segment: string, offer?: ServerOffer) {
    const what = offer ? `the server offers ${offerText(offer)}` : `the server has no channel "${DEFAULT_CHANNEL}" either`;
    super(
      segment,
      offer,
      `"${segment}" is neither a channel of the server nor an object of channel "${DEFAULT_CHANNEL}" (${what}); ` +
        `write rqcast://HOST:PORT/CHANNEL/ for a channel, rqcast://HOST:PORT//NAME for an object, or run "rqcast ls URL"`,
    );
  }
}

/** How a URL is read, in the order to try: a one-segment URL is a channel, then an object of the default channel. */
export function urlReadings(url: RqcastUrl): RqcastUrl[] {
  if (url.segment === undefined) return [url];
  const { segment, ...rest } = url;
  return [
    { ...rest, channels: [segment] },
    { ...rest, channels: [], name: segment },
  ];
}

/** Whether a reading failed because the server has no such channel, so the next reading may hold. */
export function isUnknownChannel(e: unknown): boolean {
  return e instanceof JoinRefusedError && e.serverCode === ErrorCode.UnknownChannel;
}

/**
 * What a one-segment URL's failed object reading means: the server has
 * neither (NothingNamedError), or whatever else went wrong, unchanged.
 */
export function explainObjectReading(segment: string, e: unknown): unknown {
  if (e instanceof NothingNamedError) return e;
  if (e instanceof NoSuchObjectError) return new NothingNamedError(segment, e.offer);
  // No default channel to look in.
  if (isUnknownChannel(e)) return new NothingNamedError(segment);
  return e;
}

/**
 * Runs `attempt` on each reading of `url` until one does not fail for a
 * missing channel: the one-segment rule in one place, for the CLI and for
 * library users.
 */
export async function withUrlReadings<T>(url: RqcastUrl, attempt: (reading: RqcastUrl) => Promise<T>): Promise<T> {
  const readings = urlReadings(url);
  for (let i = 0; ; i++) {
    try {
      return await attempt(readings[i]);
    } catch (e) {
      const last = i === readings.length - 1;
      if (url.segment === undefined) throw e;
      if (!last && isUnknownChannel(e)) continue;
      throw last ? explainObjectReading(url.segment, e) : e;
    }
  }
}

