/**
 * What the parts of RqcastClient that open sessions (several-servers.ts,
 * transport-chain.ts) share of it: whether the fetch has ended, its run,
 * its links, and how a link is made and given its transport.
 */
import type { ClientTransport, ServerEndpoint } from '../transport/client-transport';
import type { FetchRun } from './fetch-run';
import type { ServerLink, ServerLinkHost } from './server-link';

export interface FetchLinks {
  readonly ended: boolean;
  /** The fetch's run now (stream() makes a new one before the fetch starts). */
  readonly run: FetchRun;
  /** Every link of the fetch, in the order made. */
  readonly links: ServerLink[];
  /** Links whose transport is TCP. */
  readonly tcpLinks: ReadonlySet<ServerLink>;
  /** A link (one session) to `server` for `channels`; over TCP, a session that sends no ACKs. */
  newLink(server: ServerEndpoint, channels: string[], multicast: string[], host: ServerLinkHost, tcp: boolean): ServerLink;
  /** The transport a link's session runs over: TCP for a TCP link, else UDP unicast. */
  openTransport(server: ServerEndpoint, link: ServerLink): Promise<ClientTransport>;
}
