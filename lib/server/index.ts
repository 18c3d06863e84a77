/**
 * The rqcast server: catalogue, channel streams, ESI allocation, the control
 * plane (cookies, join timers, membership, ACKs) and RqcastServer wiring them
 * to a server transport and the native Replicator. docs/PROTOCOL.md §§6, 10
 * describe the behaviour.
 */
export {
  RqcastServer,
  RqcastServerOptions,
  ChannelConfig,
  ServerChannel,
  ServerChannelGroup,
  ChannelStreamKind,
  GroupStreamCounters,
  ServerCounters,
  TcpServerCounters,
  TcpServerConfig,
  ServerAddress,
  ServerLogger,
  ReplicatorLike,
  DEFAULT_PORT,
  DEFAULT_RATE_MBPS,
  DEFAULT_CHANNEL,
} from './server';
export {
  Catalogue,
  CatalogueObject,
  CatalogueOptions,
  FdtObject,
  SkippedFile,
  CatalogueError,
  ObjectNotFoundError,
  EmptyObjectError,
  BadObjectNameError,
  DuplicateObjectNameError,
  DEFAULT_SYMBOL_SIZE,
  DEFAULT_FDT_LIFETIME_MS,
  isSafeObjectName,
  objectNameProblem,
} from '../content/catalogue';
export { ChannelStream, ChannelStreamOptions, StreamObject, StreamFdt, SymbolSource, SymbolSlot, StreamCounters } from '../stream/channel-stream';
export { SymbolAllocator, AllocationMode, EsiRange, EsiLayout, EsiSpan, EsiLayoutError } from '../content/symbol-allocator';
export { MAX_GROUP_SERVERS, ServerGroup, checkServerGroup, serverGroupLayout } from '../content/server-group';
export { BlockSource, BlockSymbols, BlockPreparation, BlockSealing } from '../content/block-source';
export { registerServerMetrics } from './metrics';
export { GROUP_STREAM_CHANNEL_FLAG, groupChannelId } from './group-streams';
export {
  CheckedGroup,
  HostInterfaces,
  MulticastConfigError,
  NotMulticastGroupError,
  MulticastPortError,
  MulticastTtlError,
  UnknownInterfaceError,
  MulticastSourceError,
  DEFAULT_MULTICAST_TTL,
  checkMulticastGroup,
} from '../transport/multicast/group-config';
export { MulticastGroupConfig } from '../transport/replicator-contract';
export { ClientManager, ClientManagerOptions, ClientManagerCounters, ClientEvent, ReplicationCommand, Source } from '../session/client-manager';
export { Peer, PeerTransport, peerKey, udpPeer, tcpPeer } from '../session/peer';
export { CookieAuthority, CookieAuthorityOptions, CookieVerdict, CookieRefusal } from '../session/cookie';
