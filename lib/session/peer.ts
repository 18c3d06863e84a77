/**
 * Peer: who sent a control message, and over what.
 *
 * A session belongs to one peer. Over UDP a peer is a socket: its address
 * and port (docs/PROTOCOL.md §6, "one client = one UDP socket"). Other
 * transports name their peers the same way plus what sets them apart: over
 * TCP a connection id, since one address and port can connect, close and
 * connect again as a different client. The transport is part of the
 * identity, so a UDP client and a TCP client that happen to share an
 * address and port are two sessions.
 *
 * `address` stays as the transport reported it (numeric, e.g.
 * "::ffff:192.0.2.1" from a dual-stack socket): replies go back to exactly
 * that, on that socket's own address family. Identity uses its normalised
 * form (lib/support/address.ts), so "::ffff:192.0.2.1" and "192.0.2.1" are
 * one peer — the same rule the cookie binding follows (session/cookie.ts).
 */
import { InvalidPortError } from '../errors';
import { normalizeAddress } from '../support/address';

/** How a peer reaches the server. Multicast has no peers of its own: its receivers are anonymous. */
export type PeerTransport = 'udp' | 'tcp';

export interface Peer {
  readonly transport: PeerTransport;
  /** Numeric IPv4/IPv6 address as the transport reported it. */
  readonly address: string;
  readonly port: number;
  /** Connection id of a connection-oriented transport (TCP); absent for UDP. Opaque to the session layer. */
  readonly connection?: number;
}

/** The peer of a UDP socket at (address, port). */
export function udpPeer(address: string, port: number): Peer {
  return { transport: 'udp', address, port };
}

/** The peer at the other end of TCP connection `connection` from (address, port). */
export function tcpPeer(address: string, port: number, connection: number): Peer {
  return { transport: 'tcp', address, port, connection };
}

/**
 * The one identity of a peer, usable as a map key: transport, port,
 * connection id ("-" for none) and normalised address. Throws
 * InvalidAddressError for an address that is not an IPv4/IPv6 literal and
 * InvalidPortError for a port outside 0..65535 (a transport never reports
 * either).
 *
 * The address goes last because its zone may hold any character; the three
 * fields before it never hold a space, so the key reads back unambiguously.
 */
export function peerKey(peer: Peer): string {
  if (!Number.isInteger(peer.port) || peer.port < 0 || peer.port > 0xffff) throw new InvalidPortError();
  return `${peer.transport} ${peer.port} ${peer.connection ?? '-'} ${normalizeAddress(peer.address).text}`;
}

/** A copy holding only the identity fields (a Source's byte count stays behind). */
export function peerOf(peer: Peer): Peer {
  const out: { transport: PeerTransport; address: string; port: number; connection?: number } = {
    transport: peer.transport,
    address: peer.address,
    port: peer.port,
  };
  if (peer.connection !== undefined) out.connection = peer.connection;
  return out;
}

/** Whether two peers are the same identity. */
export function samePeer(a: Peer, b: Peer): boolean {
  return peerKey(a) === peerKey(b);
}
