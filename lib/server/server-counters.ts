/**
 * RqcastServer's counters (`server.counters`, mirrored by metrics.ts): the
 * client manager's, the transports' (UDP control, TCP and its native
 * server), the streams' summed over the channels, the block cache's and
 * the server's own, under one flat set of names.
 */
import type { BlockCache } from '../content/block-cache';
import type { StreamCounters } from '../stream/channel-stream';
import type { ClientManagerCounters } from '../session/client-manager';
import type { PeerTransport } from '../session/peer';
import { type ServerTransport, type ServerTransportCounters, zeroServerTransportCounters } from '../transport/server-transport';
import { TcpServerTransport, type TcpTransportCounters, zeroTcpTransportCounters } from '../transport/tcp/server-transport';
import type { NativeTcpServerStats } from '../transport/tcp/native-tcp-server';
import type { ChannelContentCounters, ServerChannel } from './channel-content';

/** The group streams' StreamCounters that can be other than 0 (they answer no ACK), summed. */
export interface GroupStreamCounters {
  groupStreamPackets: number;
  groupFdtPackets: number;
  groupWindowAdvances: number;
  groupWindowStalls: number;
}

/** The TCP transport's counters and its native server's (0 without TCP), under `tcp`-prefixed names. */
export type TcpServerCounters = { [K in keyof TcpTransportCounters as `tcp${Capitalize<K>}`]: number } & {
  [K in 'freshFrames' | 'staleFrames' | 'retransmittedSegments' | 'poolEvicted' | 'resetsSent' | 'badSegments' | 'refused' | 'segmentsOut' | 'sendErrors' | 'packetsOut' | 'gsoPackets' | 'gsoSegments' as `tcp${Capitalize<K>}`]: number;
};

/** The other StreamCounters are summed over the channels under their own names. */
export interface ServerCounters extends ClientManagerCounters, Required<Omit<StreamCounters, 'packets'>>, GroupStreamCounters, TcpServerCounters, ChannelContentCounters {
  /** Control messages received (UDP datagrams), before decoding. */
  datagramsReceived: number;
  bytesReceived: number;
  /** Datagrams decodeControl refused. */
  controlMalformed: number;
  repliesSent: number;
  replyBytesSent: number;
  replySendErrors: number;
  /** StreamCounters.packets, summed over the channels' unicast streams (group streams: groupStreamPackets). */
  streamPackets: number;
  /** Prepared blocks now, their bytes, and the most those bytes have been (BlockCache). */
  preparedBlocks: number;
  preparedBytes: number;
  preparedBytesPeak: number;
  blockPrepares: number;
  blockPrepareErrors: number;
  /** Replicator calls that threw (e.g. an address family the host cannot send to). */
  replicatorErrors: number;
  /** Control datagrams the kernel dropped at the UDP control socket (receive buffer full; Linux). */
  controlReceiveDrops: number;
}

/** What the server counts itself. */
export interface ServerOwnCounters {
  controlMalformed: number;
  replicatorErrors: number;
}

/** Every counter of the server, the client manager, the transports and the streams. */
export function serverCounters(parts: {
  channels: readonly ServerChannel[];
  transports: ReadonlyMap<PeerTransport, ServerTransport>;
  cache: BlockCache;
  manager: ClientManagerCounters;
  own: ServerOwnCounters;
  content: ChannelContentCounters;
}): ServerCounters {
  // Passes by need (passesEndedEarly, blocksSkipped, repairPackets) are counted by streams that keep them: 0 for the others.
  const sum: Required<StreamCounters> = {
    passesEndedEarly: 0,
    blocksSkipped: 0,
    repairPackets: 0,
    needReports: 0,
    needStale: 0,
    needAhead: 0,
    needBeyondLedger: 0,
    needUnknownBlocks: 0,
    needClamped: 0,
    ...parts.channels[0].stream.counters,
  };
  for (const ch of parts.channels.slice(1)) {
    for (const k of Object.keys(sum) as (keyof StreamCounters)[]) sum[k] += ch.stream.counters[k] ?? 0;
  }
  const { packets: streamPackets, ...streams } = sum;
  const group: GroupStreamCounters = { groupStreamPackets: 0, groupFdtPackets: 0, groupWindowAdvances: 0, groupWindowStalls: 0 };
  for (const ch of parts.channels) {
    const g = ch.multicast?.stream.counters;
    if (!g) continue;
    group.groupStreamPackets += g.packets;
    group.groupFdtPackets += g.fdtPackets;
    group.groupWindowAdvances += g.windowAdvances;
    group.groupWindowStalls += g.windowStalls;
  }
  const t = zeroServerTransportCounters();
  for (const transport of parts.transports.values()) {
    for (const k of Object.keys(t) as (keyof ServerTransportCounters)[]) t[k] += transport.counters[k];
  }
  const b = parts.cache.stats;
  const manager = parts.manager;
  const tcpTransport = parts.transports.get('tcp');
  return {
    ...tcpCounters(tcpTransport instanceof TcpServerTransport ? tcpTransport : undefined),
    ...manager,
    // Suppressed by the manager on the predicted size, or by a transport on the encoded bytes.
    amplificationSuppressed: manager.amplificationSuppressed + t.repliesOverBudget,
    datagramsReceived: t.controlReceived,
    bytesReceived: t.controlBytesReceived,
    controlMalformed: parts.own.controlMalformed,
    repliesSent: t.repliesSent,
    replyBytesSent: t.replyBytesSent,
    replySendErrors: t.replySendErrors,
    replicatorErrors: parts.own.replicatorErrors + t.dataPathErrors,
    controlReceiveDrops: t.controlReceiveDrops,
    ...streams,
    streamPackets,
    ...group,
    preparedBlocks: b.preparedBlocks,
    preparedBytes: b.preparedBytes,
    preparedBytesPeak: b.preparedBytesPeak,
    blockPrepares: b.prepares,
    blockPrepareErrors: b.prepareErrors,
    objectsWithdrawn: parts.content.objectsWithdrawn,
    objectsAdded: parts.content.objectsAdded,
    objectsRemoved: parts.content.objectsRemoved,
    objectsReplaced: parts.content.objectsReplaced,
  };
}

/** The TCP counters of `t` (all 0 without it). */
function tcpCounters(t: TcpServerTransport | undefined): TcpServerCounters {
  const c: TcpTransportCounters = t?.tcp ?? zeroTcpTransportCounters();
  let n: Partial<NativeTcpServerStats> = {};
  try {
    n = t?.nativeStats() ?? {};
  } catch {
    // A native server that cannot say: its counters read 0.
  }
  return {
    tcpConnectionsOpened: c.connectionsOpened,
    tcpConnectionsClosed: c.connectionsClosed,
    tcpClosedNormal: c.closedNormal,
    tcpClosedReset: c.closedReset,
    tcpClosedTimeout: c.closedTimeout,
    tcpClosedAborted: c.closedAborted,
    tcpClosedProtocol: c.closedProtocol,
    tcpFramingErrors: c.framingErrors,
    tcpFreshNotNeeded: c.freshNotNeeded,
    tcpUnknownConnection: c.unknownConnection,
    tcpFreshFrames: n.freshFrames ?? 0,
    tcpStaleFrames: n.staleFrames ?? 0,
    tcpRetransmittedSegments: n.retransmittedSegments ?? 0,
    tcpPoolEvicted: n.poolEvicted ?? 0,
    tcpResetsSent: n.resetsSent ?? 0,
    tcpBadSegments: n.badSegments ?? 0,
    tcpRefused: n.refused ?? 0,
    tcpSegmentsOut: n.segmentsOut ?? 0,
    tcpSendErrors: n.sendErrors ?? 0,
    // Packets handed to the kernel; GSO packets (several segments each) and
    // the segments the GSO path carried (docs/ARCHITECTURE.md, TCP).
    tcpPacketsOut: n.packetsOut ?? 0,
    tcpGsoPackets: n.gsoPackets ?? 0,
    tcpGsoSegments: n.gsoSegments ?? 0,
  };
}
