/**
 * The channels a client may join, as the session layer sees them: a name
 * (what JOIN carries) and the TSI of the channel's stream (what JOINED
 * answers, what ACKs name and what the data path is keyed by). The server
 * builds one from its configured channels; a catalogue whose channels
 * change over time (live ingest, relays) can implement it directly.
 */

export interface ChannelInfo {
  name: string;
  /** LCT Transport Session Identifier of the channel's stream (RFC 5651 §5.1). */
  tsi: number;
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
