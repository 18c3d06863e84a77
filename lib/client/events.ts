/**
 * What RqcastClient (and FluteReceiver) report: the payloads of their
 * 'packet', 'progress', 'object', 'transport' and 'done' events, and their
 * counters (client.stats). The CLI's progress display and JSON lines
 * (progress.ts) are built on these.
 */
import type { ClientTransportKind } from '../transport/client-transport';

export type { TransportEvent, TransportReason } from './fallback';

/** One data packet, as the 'packet' debug event reports it (after the loss hook). */
export interface PacketInfo {
  tsi: number;
  toi: bigint;
  sbn: number;
  esi: number;
  /** Symbols in the packet (G). */
  symbols: number;
  /** EXT_RQSEQ, absent on ACK replacements. */
  sequence?: number;
  replacement: boolean;
}

export interface ObjectProgress {
  name: string;
  bytes: number;
  heldSymbols: number;
  neededSymbols: number;
  /** Source blocks decoded, of `blocks` (Z). */
  blocksDecoded: number;
  blocks: number;
  done: boolean;
}

export interface ProgressInfo {
  elapsedMs: number;
  objects: ObjectProgress[];
  heldSymbols: number;
  neededSymbols: number;
  blocksDecoded: number;
  blocks: number;
  packetsReceived: number;
  bytesReceived: number;
  /** Data bytes per second received over the last interval. */
  rateBytesPerSec: number;
  /** Seconds to completion at the current rate, if known. */
  etaSeconds?: number;
}

export interface ObjectResult {
  name: string;
  path: string;
  bytes: number;
  sha256: string;
  /** From JOINED to the object verified and renamed. */
  seconds: number;
  /**
   * From the last symbol the decoders took (the last useful packet) to the
   * object verified and renamed: the solving, writing and hashing that the
   * stream could not overlap.
   */
  tailSeconds: number;
  symbolsReceived: number;
  symbolsUsed: number;
  /** Source symbols that arrived again before the object decoded (a carousel's later passes), not taken. */
  symbolsDuplicate: number;
  neededSymbols: number;
  /** Blocks an interrupted fetch had kept, verified and not fetched again (resume). */
  blocksResumed: number;
  /** Their source symbols: of neededSymbols, those this fetch did not need. */
  symbolsResumed: number;
  /** Source symbols of the other blocks that the interrupted fetch had received, read back and used (not in symbolsReceived). */
  symbolsReplayed: number;
}

/** A joined channel at the end of a fetch: the transport it ended on (docs/PROTOCOL.md §10.10). */
export interface ChannelSummary {
  name: string;
  tsi: number;
  transport: ClientTransportKind;
  /** The channel's group as GROUP:PORT (IPv6 in brackets), if JOINED announced one. */
  group?: string;
  /** The server's URL, in a fetch from several servers (TSIs are each server's own). */
  server?: string;
}

/** One server of a fetch from several (docs/PROTOCOL.md §10.12). */
export interface ServerSummary {
  /** Its URL, as given. */
  url: string;
  transport: ClientTransportKind;
  /** Its session got a JOINED. */
  joined: boolean;
  /** Why the fetch stopped using it before the end: it went silent, its session failed, or it said it was shutting down (§6.7). */
  dropped?: 'silent' | 'failed' | 'left';
  /** Data packets taken from it. */
  packets: number;
  /** Symbols of wanted objects received from it. */
  symbols: number;
  /** Of those, symbols whose (object, SBN, ESI) had already arrived from any server. */
  duplicates: number;
}

export interface FetchSummary {
  objects: ObjectResult[];
  /** Every joined channel and the transport it ended on. */
  channels: ChannelSummary[];
  /** Object bytes written. */
  bytes: number;
  seconds: number;
  packetsReceived: number;
  bytesReceived: number;
  symbolsReceived: number;
  symbolsUsed: number;
  /** Source symbols that arrived again for blocks that held them (a carousel's later passes), not taken. */
  symbolsDuplicate: number;
  /** Symbols that arrived for blocks already decoded (a pass kept going for another member, or the decode was under way), not taken. */
  symbolsLate: number;
  /** Symbols beyond K + margin for a block not decoded yet (most arrive while its solve runs), not taken. */
  symbolsSurplus: number;
  /** Symbols dropped because the decoders' backlog was full. */
  symbolsDropped: number;
  /** Of packetsReceived, the packets of the FDT (TOI 0, RFC 6726 §3.3). */
  fdtPackets: number;
  neededSymbols: number;
  /** Of neededSymbols, the source symbols of blocks kept by an interrupted fetch (resume): not received again. */
  symbolsResumed: number;
  blocksResumed: number;
  /** Source symbols of blocks not kept whole that an interrupted fetch had received: read back, not received again. */
  symbolsReplayed: number;
  /** symbolsReceived / (neededSymbols - symbolsResumed - symbolsReplayed) - 1 (reception overhead). */
  overhead: number;
  replacements: number;
  acksSent: number;
  simulatedDrops: number;
  /** Of packetsReceived, those that came by a multicast group. */
  multicastPackets: number;
  /** Datagrams on a group from another source, of another TSI, or not ALC: dropped. */
  multicastForeign: number;
  /** Receive-buffer overflows of the client's socket (Linux /proc/net/udp drops; 0 elsewhere). */
  socketDrops: number;
  /** Symbols dropped because their block did not fit the memory budget (memoryBytes). */
  budgetDrops: number;
  /** Partial blocks evicted to admit another (memoryBytes). */
  blocksEvicted: number;
  /** Most bytes reserved by partial blocks at once (at most memoryBytes). */
  peakPartialBlockBytes: number;
  /** The memory budget in force (memoryBytes, or raised to two blocks). */
  memoryBytes: number;
  /** A fetch from several servers: each server's share (absent for one server). */
  servers?: ServerSummary[];
  /** A fetch from several servers: symbols that arrived twice, summed over the servers (0 for servers of one group). */
  duplicates?: number;
  /**
   * Start-up: milliseconds from the start of this process (performance.timeOrigin)
   * to the first data packet accepted (ClientStats.firstPacketMs); absent if none came.
   */
  startupMs?: number;
  /**
   * Tail: milliseconds from the last useful packet (a symbol for a block
   * still needed, of any object) to the last object verified and published;
   * absent if no object was verified.
   */
  tailMs?: number;
  /** startupMs step by step (StartupPhases); absent with startupMs. */
  startupPhasesMs?: StartupPhases;
  /** tailMs step by step, for the object verified last (TailPhases); absent with tailMs. */
  tailPhasesMs?: TailPhases;
  /**
   * When the last object was published under its name, as performance.now()
   * (milliseconds since this process started); absent with tailMs.
   */
  publishedAtMs?: number;
  /**
   * Milliseconds from the last object published to every transport closed
   * (LEAVE sent where joined, sockets closed, their receive threads joined);
   * absent with publishedAtMs.
   */
  closeMs?: number;
}

/**
 * Where a fetch's start-up went, in whole milliseconds, in order; they add
 * up to startupMs (each is rounded on its own). A step that did not happen
 * in this fetch is absent: `process` and `modules` split what came before
 * the fetch only when the CLI marked its start (CLI_START_MARK).
 */
export interface StartupPhases {
  /** Node's own start, to the first line of the `rqcast` command. */
  process?: number;
  /** Loading the command's modules and parsing its options, to the fetch's start (from process start without the CLI's mark). */
  modules: number;
  /** The fetch's start to its first HELLO: resolving the host, opening the socket (the addon's load). */
  hello: number;
  /** HELLO to COOKIE (a round trip, and the server's answer). */
  cookie: number;
  /** COOKIE to JOINED (JOIN's round trip). */
  joined: number;
  /** JOINED to the first data packet accepted (negative if data overtook JOINED and waited for it). */
  data: number;
}

/**
 * Where the tail of the object verified last went, in whole milliseconds:
 * `solve` + `write` + `verify` is its share of tailMs.
 */
export interface TailPhases {
  /** The tail's start (the last useful packet of any object verified) to its last block decoded (that block's solve); 0 if it was decoded before. */
  solve: number;
  /** Decoded to every block written (the last block's write and running digest). */
  write: number;
  /** Written to verified and published: the rest of the digest, fsync, rename, the directory's fsync. */
  verify: number;
}

/**
 * The performance mark the `rqcast` command sets on its first line
 * (cli/main.ts), so that a fetch's start-up tells Node's start from its
 * own modules.
 */
export const CLI_START_MARK = 'rqcast:cli-start';

export interface ClientStats {
  /** Datagrams from the server's address that were ALC packets of a joined channel (after the loss hook). */
  packetsReceived: number;
  bytesReceived: number;
  /** Packets carrying no EXT_RQSEQ: replacements sent in answer to an ACK. */
  replacements: number;
  /** Packets dropped by the lossRate test hook. */
  simulatedDrops: number;
  /** Datagrams ignored: unknown source, TSI not joined, undecodable. */
  ignored: number;
  /** Of packetsReceived, those that came by a multicast group (docs/PROTOCOL.md §10.10). */
  multicastPackets: number;
  /** Datagrams on a group from another source than the announced one, of another TSI, or not ALC: dropped. */
  multicastForeign: number;
  /** Of packetsReceived, the packets of the FDT (TOI 0). */
  fdtPackets: number;
  /** Packets of TOIs not yet in an FDT dropped because the buffer was full. */
  unknownDropped: number;
  /** Datagrams the kernel dropped because the socket's receive buffer was full (Linux; read at the end). */
  socketDrops: number;
  acksSent: number;
  /** NEED reports sent (need-reporter.ts). */
  needsSent: number;
  hellosSent: number;
  joinsSent: number;
  renewals: number;
  /** New HELLOs because a joined session's unicast data stopped (a server restarted, server-link.ts). */
  rejoins: number;
  /** ERROR ServerLeaving notices received (docs/PROTOCOL.md §6.7), and those that data still arriving proved stale or forged. */
  serverLeaving: number;
  serverLeavingIgnored: number;
  /**
   * When the first data packet was accepted (counted in packetsReceived), as
   * performance.now(): milliseconds since this process started; 0 until then.
   */
  firstPacketMs: number;
  /** Start-up steps, as performance.now() like firstPacketMs, 0 until they happen: the fetch started, the first HELLO sent, the first COOKIE and JOINED taken. */
  fetchStartMs: number;
  helloSentMs: number;
  cookieMs: number;
  joinedMs: number;
  /** Every (tsi, toi, sbn, esi) received, if recordEsis. */
  esiLog: { tsi: number; toi: bigint; sbn: number; esi: number; replacement: boolean }[];
}

/** Counters at zero. */
export function newClientStats(): ClientStats {
  return {
    packetsReceived: 0,
    bytesReceived: 0,
    replacements: 0,
    simulatedDrops: 0,
    ignored: 0,
    multicastPackets: 0,
    multicastForeign: 0,
    fdtPackets: 0,
    unknownDropped: 0,
    socketDrops: 0,
    acksSent: 0,
    needsSent: 0,
    hellosSent: 0,
    joinsSent: 0,
    renewals: 0,
    rejoins: 0,
    serverLeaving: 0,
    serverLeavingIgnored: 0,
    firstPacketMs: 0,
    fetchStartMs: 0,
    helloSentMs: 0,
    cookieMs: 0,
    joinedMs: 0,
    esiLog: [],
  };
}
