/**
 * The server a URL's HOST names, as a numeric address a transport can be
 * opened toward (docs/PROTOCOL.md §10.8).
 */
import { isIP } from 'net';
import { unmapIPv4 } from '../support/address';
import type { ServerEndpoint } from '../transport/client-transport';
import { UnresolvedHostError } from './errors';

/** A literal as is (an IPv4-mapped IPv6 address as IPv4); a name through the system resolver, IPv4 first. */
export async function resolveServer(host: string, port: number): Promise<ServerEndpoint> {
  const literal = unmapIPv4(host);
  const kind = isIP(literal);
  if (kind !== 0) return { address: literal, port, family: kind as 4 | 6 };
  let all: { address: string; family: number }[];
  try {
    // Loaded for a name only: a literal needs no resolver (a fetch's start-up, fetch --json startupMs).
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    all = await (require('dns') as typeof import('dns')).promises.lookup(host, { all: true });
  } catch {
    throw new UnresolvedHostError(host);
  }
  // IPv4 first: a server bound to 0.0.0.0 (the default) does not hear ::1.
  const pick = all.find((a) => a.family === 4) ?? all[0];
  if (!pick) throw new UnresolvedHostError(host);
  return { address: pick.address, port, family: pick.family === 6 ? 6 : 4 };
}
