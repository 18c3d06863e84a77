/**
 * The channels a client may join, as the session layer sees them: a name
 * (what JOIN carries), the TSI of the channel's stream (what JOINED
 * answers, what ACKs name and what the data path is keyed by) and, for a
 * channel the server also sends to an IP multicast group, that group as
 * JOINED announces it (docs/PROTOCOL.md §4.6, §10.10). The server builds
 * one from its configured channels; a catalogue whose channels change over
 * time (live ingest, relays) can implement it directly.
 */

/** A channel's multicast group, as clients are told it (JOINED's group entry). */
export interface ChannelGroup {
  /** Numeric IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) group address. */
  group: string;
  /** UDP port, 1..65535. */
  port: number;
  /** The address the group's packets come from, when announced (source-specific join, RFC 4607 §1). */
  source?: string;
}

export interface ChannelInfo {
  name: string;
  /** LCT Transport Session Identifier of the channel's stream (RFC 5651 §5.1). */
  tsi: number;
  /** The group the channel's group stream goes to, if it has one. */
  multicast?: ChannelGroup;
}

/** The catalogue's view of channels, as the client manager needs it. */
export interface ChannelDirectory {
  lookup(name: string): ChannelInfo | undefined;
}

/** A directory over a fixed list of channels. */
export function staticChannelDirectory(channels: Iterable<ChannelInfo>): ChannelDirectory {
  const byName = new Map<string, ChannelInfo>();
  for (const c of channels) byName.set(c.name, c);
  return { lookup: (name) => byName.get(name) };
}
