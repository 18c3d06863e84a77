/** The rqcast client library: fetch objects with RaptorQ, over UDP unicast or a multicast group. */
export {
  RqcastClient,
  fetchRqcast,
  RqcastClientOptions,
  FetchSummary,
  ObjectResult,
  ObjectProgress,
  ProgressInfo,
  PacketInfo,
  ClientStats,
  ChannelSummary,
  TransportEvent,
  TransportReason,
} from './client';
export { FluteReceiver, FluteReceiverOptions } from './flute-receiver';
export { withUrlReadings, urlReadings, NothingNamedError } from './one-segment';
export { readCatalogue, CatalogueListing, ListedChannel, ListedObject, CatalogueReaderOptions } from './catalogue-reader';
export { TransportMode, TransportFallback, TransportFallbackOptions, FallbackDecision, fallbackChain } from './fallback';
export {
  parseRqcastUrl,
  formatRqcastUrl,
  joinChannels,
  RqcastUrl,
  parseFluteUrl,
  formatFluteUrl,
  FluteUrl,
  parseFetchUrl,
  FetchUrl,
} from './url';
export {
  ClientError,
  InvalidUrlError,
  InvalidClientOptionError,
  JoinRefusedError,
  FetchTimeoutError,
  DigestMismatchError,
  NoSuchObjectError,
  ServerOffer,
  UnfetchableObjectError,
  ServerLeftError,
  ObjectWithdrawnError,
  FetchAbortedError,
  UnresolvedHostError,
} from './errors';
export { ObjectFileWriter, safeObjectPath } from './sinks/file-writer';
export { FileSink, FileSinkFactory, FileSinkOptions } from './sinks/file-sink';
export { ObjectSink, SinkFactory, SinkObject, KeptPartial } from './sinks/sink';
export { ResumableFileSink, ResumableSinkOptions, ResumeMode } from './sinks/resumable-sink';
export { ClientSession, ClientSessionConfig, SessionEvent, SessionMachine, SessionOutput, SessionPhase } from './session';
export { ObjectReceiver, BlockSink, ObjectReceiverOptions, ObjectReceiverStats } from './object-receiver';
export { FdtReceiver, FdtReceiverOptions, FdtReceiverStats } from './fdt-receiver';
export { AckReporter, AckReporterOptions, AckReport } from './ack-reporter';
export { ObjectStream, ObjectStreamOptions, ObjectStreamStats, StreamGap } from './object-stream';
