/**
 * RqcastClient's options: what the caller (the CLI, a library user) may
 * give, and resolveClientOptions, which checks them and fills in the
 * defaults (InvalidClientOptionError for anything out of range).
 */
import type { PacketTap } from './packet-tap';
import { MembershipError } from '../transport/multicast/membership-errors';
import { resolveMembershipInterface } from '../transport/multicast/membership-interface';
import { InvalidClientOptionError } from './errors';
import { TRANSPORT_MODES, TransportMode } from './fallback';
import type { ResumeMode } from './sinks/resumable-sink';
import type { RqcastUrl } from './url';

export interface RqcastClientOptions {
  /** Directory the objects are written to (under their sanitised names). Default the current directory. */
  outputDir?: string;
  /** Exact file path for the one object the URL names (requires NAME in the URL). */
  outputFile?: string;
  /**
   * Progressive playout: the one object the URL names is written to this
   * stream in order, each source block as soon as it and every block
   * before it have decoded (sinks/playout-sink.ts), instead of to a file.
   * Its SHA-256 is checked at the end (DigestMismatchError), when the bytes
   * are already out. Requires NAME in the URL; excludes outputFile.
   */
  playout?: NodeJS.WritableStream;
  /** Live playout (NAME a live stream): start at the oldest kept segment instead of the newest. */
  fromStart?: boolean;
  /** Live playout: give up on a segment (a reported gap) once a later one has waited this long, ms. Default: only when it leaves the server's window. */
  latencyMs?: number;
  /**
   * Keep a fetch that stops short resumable (sinks/resumable-sink.ts): each
   * object is written to `.NAME.rqcast-part` with a journal of its verified
   * blocks, `.NAME.rqcast-state`, both kept when the fetch fails (the
   * 'partial' event lists them) and removed once the object is published.
   * 'continue' starts from the blocks an earlier fetch of the same object
   * (same OTI and SHA-256) kept; 'restart' discards them first. Default:
   * off (a temporary file, removed on failure). Files only: excludes
   * playout (what a stream was given cannot be taken back or resumed).
   */
  resume?: ResumeMode;
  /** JOIN with a relative time: the server drops the client unless renewed within it. Default 30 000 ms. */
  ttlMs?: number;
  /** JOIN with an absolute time (Unix ms, this host's clock); the session ends then. Excludes ttlMs. */
  untilMs?: number;
  /** ACK mode: report losses, receive fresh-symbol replacements. */
  ack?: boolean;
  /** Give up after this long without anything useful from the server. Default 60 000 ms. */
  timeoutMs?: number;
  /** Test hook: drop this fraction (0..1) of received data packets before processing. */
  lossRate?: number;
  /** Seed of the loss hook's PRNG. Default random. */
  lossSeed?: number;
  /** ACK every this many ms (ACK mode). Default 50. */
  ackIntervalMs?: number;
  /** ... or as soon as this many packets of a channel are unreported. Default 256. */
  ackEveryPackets?: number;
  /**
   * NEED reports (docs/PROTOCOL.md §7a): tell the server how many symbols
   * each block still needs, so that it ends a block's pass once every member
   * has enough. Default true; false: none (the server sends its fixed passes).
   */
  need?: boolean;
  /** A NEED every this many ms while packets arrive. Default 10. */
  needIntervalMs?: number;
  /** ... or as soon as this many packets of a channel are unreported. Default 256. */
  needEveryPackets?: number;
  /** 'progress' events every this many ms. Default 250. */
  progressIntervalMs?: number;
  /**
   * Receive buffer request. Default 32 MiB: about a second of a 200 Mbit/s
   * stream, so that the stream is not lost while JS is busy. As root the
   * native socket gets it whole (SO_RCVBUFFORCE); otherwise
   * net.core.rmem_max caps it.
   */
  recvBufferBytes?: number;
  /** Most datagrams handed over per native receive batch. Default 256. */
  recvBatch?: number;
  /** Use node's dgram socket (one event per datagram) instead of the native batched receiver. */
  useDgram?: boolean;
  /** Packets of TOIs not yet in an FDT kept per channel. Default 4096. */
  maxUnknownPackets?: number;
  /** First HELLO/JOIN retry after this many ms, doubling up to 2 s. Default 250. */
  retryMs?: number;
  /** Keep a log of every (tsi, toi, sbn, esi) received in stats.esiLog. */
  recordEsis?: boolean;
  /**
   * Most bytes held by source blocks not decoded yet, over every object
   * (what the native decoders allocate for them, solves included; see
   * block-budget.ts). Symbols of blocks that do not fit are dropped, and
   * the stream makes up for them. At least two of an object's largest
   * blocks: raised to that, with a warning. Early decoded blocks kept for
   * the running digest are bounded by the same amount. Default 1 GiB.
   */
  memoryBytes?: number;
  /**
   * How the channels are received (docs/PROTOCOL.md §10.10). 'auto' (the
   * default): JOIN asks for every channel's group; each announced group is
   * joined, and a channel whose group delivers nothing for
   * fallbackAfterMs is asked for by unicast. 'multicast': the same, never
   * falling back. 'udp': unicast only, no group joined. 'tcp': one TCP
   * connection carries the session and every channel (no ACKs: TCP
   * recovers losses itself). In 'auto', a channel whose UDP stream
   * delivers nothing for fallbackAfterMs (or a session that gets no JOINED
   * over UDP within it) moves on to TCP, keeping every symbol it has.
   */
  transport?: TransportMode;
  /** 'auto': move on to the next transport after this long without a packet from a channel by the current one. Default 2000. */
  fallbackAfterMs?: number;
  /** Where the server's TCP transport is (transport 'tcp' and the 'auto' chain's last step). Default the URL's host and port. */
  tcp?: { host: string; port: number };
  /**
   * The interface groups are joined on: an IPv4 address or a name (IPv4
   * groups), a name or an index (IPv6 groups). Default the kernel's choice
   * by route.
   */
  multicastInterface?: string;
  /** Decode nothing: FDT instances and object packets go to the tap (a forward relay; packet-tap.ts). */
  tap?: PacketTap;
}

/** The options in force: every default filled in, every value checked. */
export type ResolvedClientOptions = Required<
  Omit<RqcastClientOptions, 'outputFile' | 'playout' | 'fromStart' | 'latencyMs' | 'untilMs' | 'lossSeed' | 'useDgram' | 'multicastInterface' | 'tcp' | 'resume' | 'tap'>
> & {
  tap?: PacketTap;
  resume?: ResumeMode;
  useDgram: boolean;
  tcp?: { host: string; port: number };
  outputFile?: string;
  playout?: NodeJS.WritableStream;
  fromStart?: boolean;
  latencyMs?: number;
  untilMs?: number;
  lossSeed?: number;
  multicastInterface?: string;
};

/** The transport mode, checked (InvalidClientOptionError). */
export function checkTransportMode(mode: unknown): TransportMode {
  if (mode === undefined) return 'auto';
  if (typeof mode !== 'string' || !(TRANSPORT_MODES as readonly string[]).includes(mode)) {
    throw new InvalidClientOptionError(`transport is one of ${TRANSPORT_MODES.join(', ')}`);
  }
  return mode as TransportMode;
}

/**
 * A multicast interface, checked against this host's interfaces: it exists
 * and has multicast on (InvalidClientOptionError otherwise). Whether it
 * suits a group's family is known once the group is.
 */
export function checkMulticastInterface(spec: string | undefined): string | undefined {
  if (spec === undefined) return undefined;
  try {
    resolveMembershipInterface(spec);
  } catch (e) {
    if (e instanceof MembershipError) throw new InvalidClientOptionError(e.message);
    throw e;
  }
  return spec;
}

/** The resume mode, checked (InvalidClientOptionError). */
export function checkResumeMode(mode: unknown): ResumeMode {
  if (mode !== 'continue' && mode !== 'restart') throw new InvalidClientOptionError("resume is 'continue' or 'restart'");
  return mode;
}

/** The TCP endpoint option, checked (a host and a port 1..65535). */
export function checkTcpEndpoint(tcp: { host: string; port: number }): { host: string; port: number } {
  if (typeof tcp.host !== 'string' || tcp.host === '') throw new InvalidClientOptionError('tcp.host must be a host name or address');
  if (!Number.isInteger(tcp.port) || tcp.port < 1 || tcp.port > 65535) throw new InvalidClientOptionError('tcp.port must be 1..65535');
  return { host: tcp.host, port: tcp.port };
}

/** Checks `o` against `url` and fills in the defaults. */
export function resolveClientOptions(url: RqcastUrl, o: RqcastClientOptions, cwd: string): ResolvedClientOptions {
  if (o.ttlMs !== undefined && o.untilMs !== undefined) throw new InvalidClientOptionError('give either ttlMs or untilMs, not both');
  const positive = (v: number | undefined, name: string, def: number): number => {
    if (v === undefined) return def;
    if (!Number.isFinite(v) || v <= 0) throw new InvalidClientOptionError(`${name} must be a positive number`);
    return v;
  };
  const lossRate = o.lossRate ?? 0;
  if (!(lossRate >= 0 && lossRate < 1)) throw new InvalidClientOptionError('lossRate must be in [0, 1)');
  if (o.untilMs !== undefined && !Number.isSafeInteger(o.untilMs)) throw new InvalidClientOptionError('untilMs must be an integer Unix time in ms');
  if (o.outputFile !== undefined && url.name === undefined) {
    throw new InvalidClientOptionError('an output file needs a URL that names one object; give a directory otherwise');
  }
  if (o.playout !== undefined) {
    if (url.name === undefined) throw new InvalidClientOptionError('playout to a stream needs a URL that names one object');
    if (o.outputFile !== undefined) throw new InvalidClientOptionError('give either an output file or a playout stream, not both');
    if (o.resume !== undefined) throw new InvalidClientOptionError('resume is for files: a playout stream cannot be resumed');
  } else if (o.fromStart !== undefined || o.latencyMs !== undefined) {
    throw new InvalidClientOptionError('fromStart and latencyMs are for live playout: give a playout stream (-o -)');
  }
  return {
    outputDir: o.outputDir ?? cwd,
    outputFile: o.outputFile,
    ...(o.playout !== undefined ? { playout: o.playout } : {}),
    ...(o.fromStart !== undefined ? { fromStart: o.fromStart } : {}),
    ...(o.latencyMs !== undefined ? { latencyMs: positive(o.latencyMs, 'latencyMs', 1) } : {}),
    ttlMs: Math.round(positive(o.ttlMs, 'ttlMs', 30_000)),
    untilMs: o.untilMs,
    ack: o.ack ?? false,
    timeoutMs: positive(o.timeoutMs, 'timeoutMs', 60_000),
    lossRate,
    lossSeed: o.lossSeed,
    ackIntervalMs: positive(o.ackIntervalMs, 'ackIntervalMs', 50),
    ackEveryPackets: Math.round(positive(o.ackEveryPackets, 'ackEveryPackets', 256)),
    need: o.need ?? true,
    needIntervalMs: positive(o.needIntervalMs, 'needIntervalMs', 10),
    needEveryPackets: Math.round(positive(o.needEveryPackets, 'needEveryPackets', 256)),
    progressIntervalMs: positive(o.progressIntervalMs, 'progressIntervalMs', 250),
    recvBufferBytes: Math.min(1 << 30, Math.round(positive(o.recvBufferBytes, 'recvBufferBytes', 32 << 20))),
    recvBatch: Math.min(1024, Math.round(positive(o.recvBatch, 'recvBatch', 256))),
    useDgram: o.useDgram ?? false,
    maxUnknownPackets: Math.round(positive(o.maxUnknownPackets, 'maxUnknownPackets', 4096)),
    retryMs: positive(o.retryMs, 'retryMs', 250),
    recordEsis: o.recordEsis ?? false,
    memoryBytes: Math.round(positive(o.memoryBytes, 'memoryBytes', 1 << 30)),
    transport: checkTransportMode(o.transport),
    fallbackAfterMs: positive(o.fallbackAfterMs, 'fallbackAfterMs', 2000),
    multicastInterface: checkMulticastInterface(o.multicastInterface),
    ...(o.tcp !== undefined ? { tcp: checkTcpEndpoint(o.tcp) } : {}),
    ...(o.resume !== undefined ? { resume: checkResumeMode(o.resume) } : {}),
    ...(o.tap !== undefined ? { tap: o.tap } : {}),
  };
}
