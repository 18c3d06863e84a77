/**
 * Object names as FLUTE carries them: Content-Location is a URI (RFC 6726
 * §3.4.2, RFC 3986), so a name with a space, a '%' or a non-ASCII
 * character is sent percent-encoded (UTF-8, RFC 3986 §2.5) and decoded by
 * the receiver. '/' separates path segments and stays as it is; a '/'
 * inside a segment cannot occur (a file name holds none). A name of
 * unreserved characters only ([A-Za-z0-9._~-], RFC 3986 §2.3) is its own
 * encoding, so FDTs of earlier servers read the same.
 *
 * Decoding is not a licence to write anywhere: what a receiver does with a
 * decoded name (.., absolute paths, NUL) is its sink's to check
 * (lib/client/sinks/file-writer.ts safeObjectPath).
 */

/** The Content-Location of object `name` (segments joined by '/'): each segment percent-encoded. */
export function encodeContentLocation(name: string): string {
  return name
    .split('/')
    .map((segment) =>
      // encodeURIComponent leaves the sub-delims !'()* as they are; RFC 3986 allows them in a path, but some
      // receivers do not, and encoding them costs nothing.
      encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');
}

/**
 * The object name a Content-Location means: percent-decoded as UTF-8. A
 * Content-Location that is not a valid encoding (a lone '%', bytes that
 * are not UTF-8) is taken as written: other senders put plain names there.
 */
export function decodeContentLocation(location: string): string {
  if (!location.includes('%')) return location;
  try {
    return decodeURIComponent(location);
  } catch {
    return location;
  }
}
