/**
 * Group streams (docs/PROTOCOL.md §10.10): a channel with a multicast group
 * is sent twice, its unicast stream to its unicast members and a second
 * ChannelStream, the group stream, to the group, one packet per packet
 * whatever the number of listeners.
 *
 * The group stream has the channel's TSI, objects, FDT instance and rate,
 * and takes its ESIs from the same per-block counters (coded mode: the
 * objects' shared SymbolAllocators and the FDT's allocator), so a receiver
 * on both never gets an ESI twice and gains from both (RFC 6330 §5.3.2:
 * any K of a block's symbols, plus a few, decode it). It has its own
 * EXT_RQSEQ sequence, which nobody acknowledges. In no-code mode each
 * stream runs its own carousels, FDT included, for the reason
 * config.ts's symbolAllocators gives: sharing one would split the source
 * symbols between the streams, and a listener of the group alone could miss
 * some forever.
 *
 * In the replication engine the group stream is a channel of its own,
 * `GROUP_STREAM_CHANNEL_FLAG | TSI` (TSIs stay below 2^31), with one
 * multicast sink: that keeps its ring, pacing and counters apart from the
 * unicast stream's, and the server refills it on 'lowWater' like any
 * channel.
 */
import type { CatalogueObject } from '../content/catalogue';
import { SymbolAllocator } from '../content/symbol-allocator';
import type { ChannelStream, ChannelStreamOptions } from '../stream/channel-stream';
import type { CheckedGroup } from '../transport/multicast/group-config';

/** Bit 31 of a replicator channel id: the group stream of the channel whose TSI is the low 31 bits. */
export const GROUP_STREAM_CHANNEL_FLAG = 0x80000000;

/** The replicator channel of the group stream of channel `tsi` (< 2^31). */
export function groupChannelId(tsi: number): number {
  return (GROUP_STREAM_CHANNEL_FLAG | tsi) >>> 0;
}

/** A channel's group and its group stream, as RqcastServer exposes them (`server.channels[i].multicast`). */
export interface ServerChannelGroup extends CheckedGroup {
  /** The replicator channel the group stream is sent on: groupChannelId(tsi). */
  channelId: number;
  stream: ChannelStream;
}

/**
 * The group stream's options, from the unicast stream's: the same TSI,
 * objects, FDT instance, cadence, window and pins; the same allocators in
 * coded mode, new carousels in no-code mode (`allocatorOf` makes one per
 * call there). No NEED table: no one reports on a group stream
 * (docs/PROTOCOL.md §10.10), so its passes stay fixed.
 */
export function groupStreamOptions(
  unicast: ChannelStreamOptions,
  objects: readonly CatalogueObject[],
  noCode: boolean,
  allocatorOf: (o: CatalogueObject) => SymbolAllocator,
): ChannelStreamOptions {
  const group: ChannelStreamOptions = { ...unicast, needs: false, restartOnFirstMember: false };
  if (!noCode) return group;
  return {
    ...group,
    objects: objects.map((o) => ({ toi: o.toi, encoder: o.encoder, allocator: allocatorOf(o) })),
    fdt: { ...unicast.fdt, allocator: SymbolAllocator.forEncoder(unicast.fdt.encoder, 'carousel') },
  };
}
