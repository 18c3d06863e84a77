/**
 * Server groups (issue 11; docs/PROTOCOL.md "Server groups"): N servers
 * that serve the same objects, each knowing only its own index I (0..N-1)
 * and N, hand out disjoint symbols of every block, so that a client
 * combining them never receives the same symbol twice. No coordination at
 * run time: the partition follows from (I, N) alone.
 *
 * Coded mode: server I's repair ESIs of a block with K source symbols are
 * the ESIs >= K with ESI mod N = I (an interleaved EsiLayout: base I,
 * stride N); only server 0 sends the source symbols (ESI 0..K-1) first.
 * Every server's stream alone decodes (repair symbols suffice, RFC 6330
 * §5.3.2), and the union of several is duplicate-free. A server whose
 * class runs out (about (2^24 - K) / N repair ESIs of one block) starts its
 * own class again: a client may then get a repeat from that server, never
 * a symbol another server sent (symbol-allocator.ts).
 *
 * No-code mode: only source symbols exist, and a client of one server must
 * be able to finish from it alone, so every server of the group sends all
 * of them (a plain carousel each): a client combining no-code servers gets
 * duplicates, and the group's index changes nothing.
 */
import { InvalidServerConfigError } from '../errors';
import type { EsiLayout } from './symbol-allocator';

/**
 * The most servers in one group: each still has at least
 * (2^24 - 56403) / 1024, about 16 300, repair ESIs of the largest block
 * RFC 6330 allows (K' = 56403, §5.6), about 20 MB of one block at T = 1280.
 */
export const MAX_GROUP_SERVERS = 1024;

/** Server `index` of `servers` (0 <= index < servers). */
export interface ServerGroup {
  index: number;
  servers: number;
}

/** `g` checked (InvalidServerConfigError names what is wrong). */
export function checkServerGroup(g: ServerGroup): ServerGroup {
  const { index, servers } = g;
  if (!Number.isInteger(servers) || servers < 1 || servers > MAX_GROUP_SERVERS) {
    throw new InvalidServerConfigError(`a server group has 1..${MAX_GROUP_SERVERS} servers`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= servers) {
    throw new InvalidServerConfigError(`the server index is 0..${servers - 1} in a group of ${servers}`);
  }
  return { index, servers };
}

/**
 * The ESI layout of server `g` (see the file comment): undefined for the
 * default layout (no group, a group of one, or no-code mode).
 */
export function serverGroupLayout(g: ServerGroup | undefined, noCode: boolean): EsiLayout | undefined {
  if (g === undefined || noCode) return undefined;
  const { index, servers } = checkServerGroup(g);
  if (servers === 1) return undefined;
  return { sendsSourceSymbols: index === 0, base: index, stride: servers };
}
