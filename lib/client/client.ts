/**
 * RqcastClient: fetches objects from an rqcast server (docs/PROTOCOL.md).
 *
 * One UDP socket does everything:
 *
 *   HELLO (padded, §4.3) ──► COOKIE          retried with backoff until answered
 *   JOIN(cookie, channels, ttl|until, ack) ──► JOINED(TSIs) | ERROR
 *   ◄── ALC packets of the joined TSIs, from any port of the server's address
 *   ACK (ACK mode, per channel, every ackIntervalMs or ackEveryPackets)
 *   JOIN again at half the granted time (renewal; a new cookie if refused as expired)
 *   LEAVE once every wanted object is decoded (the stream is of no more use
 *     while the last blocks are written and verified)
 *
 * Data path per channel: TOI 0 -> FdtReceiver -> the objects wanted (the
 * URL's NAME, or every object of the FDTs); TOI n -> the object's
 * ObjectReceiver (one per object, shared by every channel whose FDT lists
 * the same name, digest and OTI, so symbols of all channels combine) ->
 * ObjectFileWriter (temp file, SHA-256, atomic rename). Packets of TOIs not
 * yet in an FDT wait in a bounded buffer.
 *
 * Errors end the fetch: JoinRefusedError (the CLI's exit 3),
 * FetchTimeoutError (4), DigestMismatchError (5). Temp files are removed
 * on every failure.
 */
import { randomBytes } from 'crypto';
import { readFileSync } from 'fs';
import { promises as dns } from 'dns';
import { EventEmitter } from 'events';
import { isIP } from 'net';
import * as path from 'path';
import { AlcPacket, decodeAlc, FDT_TOI, newAlcScan, scanAlcData } from '../protocol/alc';
import { decodeControl, encodeControl } from '../protocol/control';
import { CONTROL_MAGIC_0, NONCE_SIZE } from '../protocol/control-header';
import type { FdtFile, FdtInstance } from '../protocol/fdt';
import { ControlMessage, ErrorCode, JoinedChannel, MessageType, TimeValue } from '../protocol/messages';
import { sameOti } from '../protocol/oti';
import type { Oti as WireOti } from '../protocol/oti';
import { unmapIPv4 } from '../support/address';
import { Rng } from '../support/rng';
import { AckReporter } from './ack-reporter';
import { PartialBlockBudget } from './block-budget';
import {
  ClientError,
  FetchAbortedError,
  FetchTimeoutError,
  InvalidClientOptionError,
  JoinRefusedError,
  NoSuchObjectError,
  UnfetchableObjectError,
} from './errors';
import { FdtReceiver } from './fdt-receiver';
import { ObjectFileWriter, safeObjectPath } from './sinks/file-writer';
import { ObjectReceiver } from './object-receiver';
import { ClientSocket, Datagrams, openClientSocket } from '../transport/udp/client-socket';
import { joinChannels, parseRqcastUrl, RqcastUrl } from './url';

export interface RqcastClientOptions {
  /** Directory the objects are written to (under their sanitised names). Default the current directory. */
  outputDir?: string;
  /** Exact file path for the one object the URL names (requires NAME in the URL). */
  outputFile?: string;
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
}

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
  neededSymbols: number;
}

export interface FetchSummary {
  objects: ObjectResult[];
  /** Object bytes written. */
  bytes: number;
  seconds: number;
  packetsReceived: number;
  bytesReceived: number;
  symbolsReceived: number;
  symbolsUsed: number;
  neededSymbols: number;
  /** symbolsReceived / neededSymbols - 1 (reception overhead). */
  overhead: number;
  replacements: number;
  acksSent: number;
  simulatedDrops: number;
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
}

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
  /** Packets of TOIs not yet in an FDT dropped because the buffer was full. */
  unknownDropped: number;
  /** Datagrams the kernel dropped because the socket's receive buffer was full (Linux; read at the end). */
  socketDrops: number;
  acksSent: number;
  hellosSent: number;
  joinsSent: number;
  renewals: number;
  /** Every (tsi, toi, sbn, esi) received, if recordEsis. */
  esiLog: { tsi: number; toi: bigint; sbn: number; esi: number; replacement: boolean }[];
}

export declare interface RqcastClient {
  on(event: 'joined', listener: (info: { channels: JoinedChannel[]; expiresAtMs: number }) => void): this;
  on(event: 'progress', listener: (p: ProgressInfo) => void): this;
  on(event: 'object', listener: (o: ObjectResult) => void): this;
  on(event: 'done', listener: (s: FetchSummary) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'warning', listener: (message: string) => void): this;
  on(event: 'packet', listener: (p: PacketInfo) => void): this;
}

interface ChannelState {
  name: string;
  tsi: number;
  fdt: FdtReceiver;
  fdtSeen: boolean;
  /** TOI -> object of this channel. */
  tois: Map<bigint, ObjectState>;
  /** The same for the TOIs that are safe Numbers (every one rqcast sends): the data path's lookup. */
  toiNumbers: Map<number, ObjectState>;
  /** TOIs this channel's FDTs list that are not wanted. */
  ignoredTois: Set<bigint>;
  ignoredToiNumbers: Set<number>;
  unknown: AlcPacket[];
  ack?: AckReporter;
}

interface ObjectState {
  name: string;
  file: FdtFile;
  oti: WireOti;
  sha256: Uint8Array;
  path: string;
  receiver: ObjectReceiver;
  /** When the receiver last took a symbol (Date.now()). */
  lastUsefulAt: number;
  /** symbolsReceived when the current receive batch first gave it symbols; -1 when it has not. */
  batchMark: number;
  /** The temporary file, created with the first decoded block (so that an FDT of many objects does not open as many files at once). */
  writer?: Promise<ObjectFileWriter>;
  done: boolean;
}

type Phase = 'idle' | 'hello' | 'join' | 'joined' | 'finished';


function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}


const MAX_COOKIE_REFRESHES = 3;
/** Data packets kept while JOINED is on its way. */
const PRE_JOIN_PACKETS = 1024;
const MAX_RETRY_MS = 2000;
/**
 * The native socket hands over what arrived in up to 8 ms: at 200 Mbit/s
 * about 150 packets per wake-up instead of one (each a context switch of
 * the receiving thread and of the event loop). Measured on a 256 MiB
 * fetch at 200 Mbit/s: client CPU 11.8 s with no window, 6.0 s at 1 ms,
 * 4.6 s at 3 ms; with the in-place data path, 3.9-4.4 s at 3 ms, 3.2-3.6 s
 * at 8 ms, 3.1-3.4 s at 15 ms. A control reply waits at most 8 ms more;
 * the socket buffer holds far more than 8 ms of stream.
 */
const RECV_GATHER_MICROS = 8000;

export class RqcastClient extends EventEmitter {
  readonly url: RqcastUrl;
  readonly stats: ClientStats = {
    packetsReceived: 0,
    bytesReceived: 0,
    replacements: 0,
    simulatedDrops: 0,
    ignored: 0,
    unknownDropped: 0,
    socketDrops: 0,
    acksSent: 0,
    hellosSent: 0,
    joinsSent: 0,
    renewals: 0,
    esiLog: [],
  };
  /** Partial blocks of every object, within memoryBytes. */
  readonly budget: PartialBlockBudget;
  private readonly opts: Required<Omit<RqcastClientOptions, 'outputFile' | 'untilMs' | 'lossSeed' | 'useDgram'>> & {
    useDgram: boolean;
    outputFile?: string;
    untilMs?: number;
  };
  private readonly random: () => number;
  private readonly wanted: string[];
  private socket?: ClientSocket;
  /** The last source address seen and whether it is the server's (most datagrams come from one or two). */
  private lastSource = '';
  private lastSourceIsServer = false;
  private server?: { address: string; port: number; family: 4 | 6 };
  private phase: Phase = 'idle';
  private nonce = new Uint8Array(NONCE_SIZE);
  private cookie?: Uint8Array;
  /** server clock - local clock, from COOKIE. */
  private clockOffsetMs = 0;
  private cookieRefreshes = 0;
  /** LEAVE sent: every wanted object decoded; what still arrives is ignored. */
  private left = false;
  private retryTimer?: NodeJS.Timeout;
  private retryDelay = 0;
  private renewTimer?: NodeJS.Timeout;
  private ackTimer?: NodeJS.Timeout;
  private tickTimer?: NodeJS.Timeout;
  private lastActivity = 0;
  private startedAt = 0;
  private joinedAt?: number;
  private untilTimer?: NodeJS.Timeout;
  private readonly channels = new Map<number, ChannelState>();
  private readonly objects = new Map<string, ObjectState>();
  private readonly results: ObjectResult[] = [];
  /** The data path's scan of the current packet (reused). */
  private readonly scan = newAlcScan();
  /** Objects given symbols in the current receive batch. */
  private readonly touched: ObjectState[] = [];
  /** Data that arrived before JOINED. */
  private preJoin: { p: AlcPacket; length: number }[] = [];
  private lastProgress = { at: 0, bytes: 0 };
  private settle?: { resolve: (s: FetchSummary) => void; reject: (e: Error) => void };
  private running?: Promise<FetchSummary>;

  constructor(url: string | RqcastUrl, options: RqcastClientOptions = {}) {
    super();
    this.url = typeof url === 'string' ? parseRqcastUrl(url) : url;
    this.wanted = joinChannels(this.url);
    const o = options;
    if (o.ttlMs !== undefined && o.untilMs !== undefined) throw new InvalidClientOptionError('give either ttlMs or untilMs, not both');
    const positive = (v: number | undefined, name: string, def: number): number => {
      if (v === undefined) return def;
      if (!Number.isFinite(v) || v <= 0) throw new InvalidClientOptionError(`${name} must be a positive number`);
      return v;
    };
    const lossRate = o.lossRate ?? 0;
    if (!(lossRate >= 0 && lossRate < 1)) throw new InvalidClientOptionError('lossRate must be in [0, 1)');
    if (o.untilMs !== undefined && !Number.isSafeInteger(o.untilMs)) throw new InvalidClientOptionError('untilMs must be an integer Unix time in ms');
    if (o.outputFile !== undefined && this.url.name === undefined) {
      throw new InvalidClientOptionError('an output file needs a URL that names one object; give a directory otherwise');
    }
    this.opts = {
      outputDir: o.outputDir ?? process.cwd(),
      outputFile: o.outputFile,
      ttlMs: Math.round(positive(o.ttlMs, 'ttlMs', 30_000)),
      untilMs: o.untilMs,
      ack: o.ack ?? false,
      timeoutMs: positive(o.timeoutMs, 'timeoutMs', 60_000),
      lossRate,
      ackIntervalMs: positive(o.ackIntervalMs, 'ackIntervalMs', 50),
      ackEveryPackets: Math.round(positive(o.ackEveryPackets, 'ackEveryPackets', 256)),
      progressIntervalMs: positive(o.progressIntervalMs, 'progressIntervalMs', 250),
      recvBufferBytes: Math.min(1 << 30, Math.round(positive(o.recvBufferBytes, 'recvBufferBytes', 32 << 20))),
      recvBatch: Math.min(1024, Math.round(positive(o.recvBatch, 'recvBatch', 256))),
      useDgram: o.useDgram ?? false,
      maxUnknownPackets: Math.round(positive(o.maxUnknownPackets, 'maxUnknownPackets', 4096)),
      retryMs: positive(o.retryMs, 'retryMs', 250),
      recordEsis: o.recordEsis ?? false,
      memoryBytes: Math.round(positive(o.memoryBytes, 'memoryBytes', 1 << 30)),
    };
    this.budget = new PartialBlockBudget(this.opts.memoryBytes);
    const rng = new Rng(o.lossSeed ?? randomBytes(4).readUInt32BE(0));
    this.random = () => rng.unit();
  }

  /** Runs the fetch once; later calls return the same promise. */
  fetch(): Promise<FetchSummary> {
    if (!this.running) {
      this.running = new Promise<FetchSummary>((resolve, reject) => {
        this.settle = { resolve, reject };
        this.start().catch((e: unknown) => this.fail(e));
      });
    }
    return this.running;
  }

  /** Aborts a running fetch (FetchAbortedError); temp files are removed. */
  close(): void {
    this.fail(new FetchAbortedError());
  }

  /** The fetch has finished or failed (a method, so that TypeScript does not narrow across awaits). */
  private get ended(): boolean {
    return this.phase === 'finished';
  }

  // ------------------------------------------------------------ set-up --

  private async start(): Promise<void> {
    this.startedAt = Date.now();
    this.lastActivity = this.startedAt;
    if (this.opts.untilMs !== undefined && this.opts.untilMs <= Date.now()) {
      throw new InvalidClientOptionError('the --until time has already passed');
    }
    this.server = await this.resolve(this.url.host, this.url.port);
    if (this.ended) return;
    const socket = await openClientSocket({
      family: this.server.family,
      receiveBufferBytes: this.opts.recvBufferBytes,
      batch: this.opts.recvBatch,
      gatherMicros: RECV_GATHER_MICROS,
      useDgram: this.opts.useDgram,
      onDatagrams: (d) => this.onDatagrams(d),
      onError: (err) => this.fail(err),
    });
    if (this.ended) {
      await socket.close();
      return;
    }
    this.socket = socket;
    this.tickTimer = setInterval(() => this.tick(), Math.min(250, this.opts.progressIntervalMs));
    if (this.opts.untilMs !== undefined) {
      this.untilTimer = setTimeout(
        () => this.fail(new FetchTimeoutError('the session reached its --until time before the transfer completed')),
        this.opts.untilMs - Date.now(),
      );
    }
    this.sendHello(true);
  }

  private async resolve(host: string, port: number): Promise<{ address: string; port: number; family: 4 | 6 }> {
    const literal = unmapIPv4(host);
    const kind = isIP(literal);
    if (kind !== 0) return { address: literal, port, family: kind as 4 | 6 };
    let all: { address: string; family: number }[];
    try {
      all = await dns.lookup(host, { all: true });
    } catch {
      throw new ClientError('ERR_RQ_CLIENT_RESOLVE', `cannot resolve host "${host}"`);
    }
    // IPv4 first: a server bound to 0.0.0.0 (the default) does not hear ::1.
    const pick = all.find((a) => a.family === 4) ?? all[0];
    if (!pick) throw new ClientError('ERR_RQ_CLIENT_RESOLVE', `cannot resolve host "${host}"`);
    return { address: pick.address, port, family: pick.family === 6 ? 6 : 4 };
  }

  // ------------------------------------------------------ control plane --

  private send(msg: ControlMessage): void {
    const socket = this.socket;
    const server = this.server;
    if (!socket || !server || this.phase === 'finished') return;
    // UDP: a send error is a lost datagram; the retry timers cover it.
    socket.send(encodeControl(msg), server.address, server.port);
  }

  private armRetry(action: () => void, reset: boolean): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryDelay = reset ? this.opts.retryMs : Math.min(this.retryDelay * 2, MAX_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      action();
    }, this.retryDelay);
  }

  private sendHello(reset: boolean): void {
    if (this.phase === 'finished') return;
    if (this.phase !== 'hello' || reset) {
      this.nonce = randomBytes(NONCE_SIZE);
    }
    this.phase = this.phase === 'joined' ? 'joined' : 'hello';
    this.awaiting = 'cookie';
    this.stats.hellosSent++;
    this.send({ type: MessageType.Hello, nonce: this.nonce });
    this.armRetry(() => this.sendHello(false), reset);
  }

  /** What the last request waits for; 'none' while simply joined. */
  private awaiting: 'cookie' | 'joined' | 'none' = 'none';

  private timeValue(): TimeValue {
    if (this.opts.untilMs !== undefined) return { kind: 'absolute', unixMs: Math.max(0, Math.round(this.opts.untilMs + this.clockOffsetMs)) };
    return { kind: 'duration', ms: this.opts.ttlMs };
  }

  private sendJoin(reset: boolean): void {
    if (this.phase === 'finished' || !this.cookie) return;
    if (this.phase !== 'joined') this.phase = 'join';
    this.awaiting = 'joined';
    this.stats.joinsSent++;
    this.send({ type: MessageType.Join, cookie: this.cookie, channels: this.wanted, until: this.timeValue(), ack: this.opts.ack });
    this.armRetry(() => this.sendJoin(false), reset);
  }

  private onControl(msg: ControlMessage): void {
    switch (msg.type) {
      case MessageType.Cookie: {
        if (this.awaiting !== 'cookie' || !sameBytes(msg.nonce, this.nonce)) return;
        this.lastActivity = Date.now();
        this.cookie = msg.cookie;
        this.clockOffsetMs = msg.serverTimeMs - Date.now();
        this.sendJoin(true);
        return;
      }
      case MessageType.Joined: {
        if (this.awaiting !== 'joined') return;
        this.lastActivity = Date.now();
        this.awaiting = 'none';
        if (this.retryTimer) clearTimeout(this.retryTimer);
        this.cookieRefreshes = 0;
        this.onJoined(msg.channels, msg.expiresAtMs);
        return;
      }
      case MessageType.Error:
        this.onServerError(msg.code, msg.reason);
        return;
      default:
        this.stats.ignored++;
    }
  }

  private onServerError(code: ErrorCode, reason: string): void {
    this.lastActivity = Date.now();
    if (code === ErrorCode.BadCookie || code === ErrorCode.CookieExpired) {
      // The cookie outlived its lifetime, or the server changed keys: a new one (PROTOCOL.md §6.2).
      // Every ACK in flight under the old cookie draws its own ERROR: while a
      // HELLO for the new cookie is out, those say nothing new.
      if (this.awaiting === 'cookie') return;
      if (++this.cookieRefreshes > MAX_COOKIE_REFRESHES) {
        this.fail(new JoinRefusedError(code, reason));
        return;
      }
      this.cookie = undefined;
      this.sendHello(true);
      return;
    }
    if (code === ErrorCode.NotJoined) {
      // The session expired under us (an ACK arrived after it): join again.
      if (this.awaiting === 'none' && !this.left) this.sendJoin(true);
      return;
    }
    if (this.awaiting === 'joined') {
      this.fail(new JoinRefusedError(code, reason));
      return;
    }
    this.emitWarning(`server error ${code}: ${reason}`);
  }

  private onJoined(joined: JoinedChannel[], expiresAtMs: number): void {
    if (joined.length === 0) {
      this.fail(new JoinRefusedError(ErrorCode.Internal, 'joined no channel'));
      return;
    }
    const first = this.phase !== 'joined';
    this.phase = 'joined';
    if (first) {
      this.joinedAt = Date.now();
      for (const c of joined) {
        this.channels.set(c.tsi, {
          name: c.name,
          tsi: c.tsi,
          fdt: new FdtReceiver(),
          fdtSeen: false,
          tois: new Map(),
          toiNumbers: new Map(),
          ignoredTois: new Set(),
          ignoredToiNumbers: new Set(),
          unknown: [],
          ack: this.opts.ack ? new AckReporter() : undefined,
        });
      }
      if (this.opts.ack) this.ackTimer = setInterval(() => this.sendAcks(), this.opts.ackIntervalMs);
      this.emit('joined', { channels: joined, expiresAtMs });
      const early = this.preJoin;
      this.preJoin = [];
      for (const e of early) this.onAlc(e.p, e.length);
    } else {
      this.stats.renewals++;
    }
    this.scheduleRenewal(expiresAtMs);
  }

  private scheduleRenewal(expiresAtMs: number): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    const serverNow = Date.now() + this.clockOffsetMs;
    const granted = expiresAtMs - serverNow;
    if (this.opts.untilMs !== undefined) {
      // Nothing to renew if the server granted the whole --until time.
      if (expiresAtMs >= this.opts.untilMs + this.clockOffsetMs) return;
    }
    this.renewTimer = setTimeout(() => {
      this.renewTimer = undefined;
      if (this.cookie) this.sendJoin(true);
      else this.sendHello(true);
    }, Math.max(100, Math.floor(granted / 2)));
  }

  // --------------------------------------------------------- data plane --

  /**
   * One delivery of datagrams (a native batch, or one dgram message), in one
   * pass. Object packets of joined channels take the data path: read in
   * place (scanAlcData), no object or BigInt per packet, their symbols
   * handed to the receivers as offsets into the delivery's buffer and added
   * to the decoders once per delivery. Everything else (control messages,
   * the FDT, packets before JOINED, packets the scan leaves to decodeAlc,
   * the debug hooks) goes through onDatagram.
   */
  private onDatagrams(d: Datagrams): void {
    if (!this.server || this.phase === 'finished' || this.left) return;
    this.stats.ignored += d.truncated;
    const data = d.data;
    const scan = this.scan;
    const hooks = this.opts.recordEsis || this.listenerCount('packet') > 0;
    let useful = false;
    for (let i = 0; i < d.count && !this.ended; i++) {
      if (!this.fromServer(d.address(i))) {
        this.stats.ignored++;
        continue;
      }
      const at = d.offset(i);
      const length = d.length(i);
      if (
        !hooks &&
        this.phase === 'joined' &&
        length > 0 &&
        data[at] !== CONTROL_MAGIC_0 &&
        scanAlcData(data, at, length, scan)
      ) {
        if (this.onObjectPacket(data, at, length)) useful = true;
        continue;
      }
      this.onDatagram(d.datagram(i), d.port(i));
    }
    if (this.touched.length > 0) {
      const now = Date.now();
      for (const obj of this.touched) {
        obj.receiver.commitAll();
        if (obj.receiver.stats.symbolsReceived !== obj.batchMark) obj.lastUsefulAt = now;
        obj.batchMark = -1;
      }
      this.touched.length = 0;
    }
    if (useful) this.lastActivity = Date.now();
  }

  /**
   * The data path: the object packet scanAlcData just read (this.scan) at
   * data[at, at + length). What onAlc and route do for a decoded packet,
   * without the packet object. True if it may still help (the timeout's
   * activity).
   */
  private onObjectPacket(data: Uint8Array, at: number, length: number): boolean {
    const s = this.scan;
    const ch = this.channels.get(s.tsi);
    if (!ch) {
      this.stats.ignored++;
      return false;
    }
    if (this.opts.lossRate > 0 && this.random() < this.opts.lossRate) {
      this.stats.simulatedDrops++;
      return false;
    }
    this.stats.packetsReceived++;
    this.stats.bytesReceived += length;
    if (s.sequence < 0) this.stats.replacements++;
    else if (ch.ack) {
      ch.ack.record(s.sequence);
      if (ch.ack.unreported >= this.opts.ackEveryPackets) this.sendAck(ch);
    }
    const obj = ch.toiNumbers.get(s.toi);
    if (obj) {
      const r = obj.receiver;
      if (obj.batchMark < 0) {
        obj.batchMark = r.stats.symbolsReceived;
        this.touched.push(obj);
      }
      r.addSymbols(data, s.payloadIdOffset, s.sbn, s.esi, s.payloadLength);
      return !r.complete;
    }
    if (ch.fdtSeen || ch.ignoredToiNumbers.has(s.toi)) return false;
    // Not in an FDT yet: the general path keeps it (a view of this delivery's buffer, which is ours).
    const d = decodeAlc(data.subarray(at, at + length));
    if (d.ok) this.route(ch, d.packet);
    return false;
  }

  private fromServer(address: string): boolean {
    if (address !== this.lastSource) {
      this.lastSource = address;
      this.lastSourceIsServer = this.server !== undefined && unmapIPv4(address) === unmapIPv4(this.server.address);
    }
    return this.lastSourceIsServer;
  }

  /** A datagram from the server's address: control (0x52 0x51) or ALC. */
  private onDatagram(msg: Buffer, port: number): void {
    const server = this.server;
    if (!server || msg.length === 0) {
      this.stats.ignored++;
      return;
    }
    if (msg[0] === CONTROL_MAGIC_0) {
      if (port !== server.port) {
        this.stats.ignored++;
        return;
      }
      const d = decodeControl(msg);
      if (d.ok) this.onControl(d.msg);
      else this.stats.ignored++;
      return;
    }
    const d = decodeAlc(msg);
    if (!d.ok) {
      this.stats.ignored++;
      return;
    }
    const p = d.packet;
    if (this.phase !== 'joined') {
      // The server adds the client to its channels before JOINED reaches
      // it: the first data may overtake the reply. Keep a few.
      if (this.preJoin.length < PRE_JOIN_PACKETS) this.preJoin.push({ p, length: msg.length });
      else this.stats.ignored++;
      return;
    }
    this.onAlc(p, msg.length);
  }

  private onAlc(p: AlcPacket, length: number): void {
    if (this.phase === 'finished') return;
    const ch = this.channels.get(p.tsi);
    if (!ch) {
      this.stats.ignored++;
      return;
    }
    if (this.opts.lossRate > 0 && this.random() < this.opts.lossRate) {
      this.stats.simulatedDrops++;
      return;
    }
    this.stats.packetsReceived++;
    this.stats.bytesReceived += length;
    const replacement = p.sequence === undefined;
    if (replacement) this.stats.replacements++;
    else if (ch.ack) {
      ch.ack.record(p.sequence as number);
      if (ch.ack.unreported >= this.opts.ackEveryPackets) this.sendAck(ch);
    }
    if (this.opts.recordEsis) this.stats.esiLog.push({ tsi: p.tsi, toi: p.toi, sbn: p.sbn, esi: p.esi, replacement });
    if (this.listenerCount('packet') > 0) {
      const T = p.oti?.symbolSize ?? ch.tois.get(p.toi)?.oti.symbolSize;
      this.emit('packet', {
        tsi: p.tsi,
        toi: p.toi,
        sbn: p.sbn,
        esi: p.esi,
        symbols: T ? Math.floor(p.payloadLength / T) : 1,
        sequence: p.sequence,
        replacement,
      } satisfies PacketInfo);
    }
    this.route(ch, p);
  }

  /**
   * Hands a packet to its receiver. Only packets that can still help count
   * as activity for the timeout: an FDT not yet seen, an object not yet
   * decoded. A channel that streams but never delivers its FDT times out.
   */
  private route(ch: ChannelState, p: AlcPacket): void {
    if (p.toi === FDT_TOI) {
      if (!ch.fdtSeen) this.lastActivity = Date.now();
      const r = ch.fdt.add(p);
      if (r) this.onFdt(ch, r.fdt);
      return;
    }
    const obj = ch.tois.get(p.toi);
    if (obj) {
      if (!obj.receiver.complete) this.lastActivity = Date.now();
      const before = obj.receiver.stats.symbolsReceived;
      obj.receiver.add(p);
      if (obj.receiver.stats.symbolsReceived !== before) obj.lastUsefulAt = Date.now();
      return;
    }
    if (ch.fdtSeen || ch.ignoredTois.has(p.toi)) return;
    // Not in an FDT yet: keep a bounded number for when it arrives.
    if (ch.unknown.length >= this.opts.maxUnknownPackets) {
      this.stats.unknownDropped++;
      return;
    }
    ch.unknown.push(p);
  }

  private onFdt(ch: ChannelState, fdt: FdtInstance): void {
    ch.fdtSeen = true;
    for (const file of fdt.files) {
      if (ch.tois.has(file.toi)) continue;
      if (this.url.name !== undefined && file.contentLocation !== this.url.name) {
        this.ignoreToi(ch, file.toi);
        continue;
      }
      let obj: ObjectState | undefined;
      try {
        obj = this.objectFor(file);
      } catch (e) {
        if (this.url.name !== undefined) {
          this.fail(e);
          return;
        }
        this.emitWarning(e instanceof Error ? e.message : String(e));
      }
      if (obj) {
        ch.tois.set(file.toi, obj);
        if (file.toi <= BigInt(Number.MAX_SAFE_INTEGER)) ch.toiNumbers.set(Number(file.toi), obj);
      } else {
        this.ignoreToi(ch, file.toi);
      }
    }
    const buffered = ch.unknown;
    ch.unknown = [];
    for (const p of buffered) {
      const obj = ch.tois.get(p.toi);
      if (obj) {
        obj.receiver.add(p);
        obj.lastUsefulAt = Date.now();
      }
    }
    this.checkFinished();
    this.leaveIfAllDecoded();
  }

  private ignoreToi(ch: ChannelState, toi: bigint): void {
    ch.ignoredTois.add(toi);
    if (toi <= BigInt(Number.MAX_SAFE_INTEGER)) ch.ignoredToiNumbers.add(Number(toi));
  }

  /** The object for an FDT entry: an existing one (same name, digest, OTI) or a new one. */
  private objectFor(file: FdtFile): ObjectState | undefined {
    const name = file.contentLocation;
    if (file.oti === undefined) throw new UnfetchableObjectError(name, 'the FDT gives no RaptorQ OTI');
    if (file.sha256 === undefined) throw new UnfetchableObjectError(name, 'the FDT gives no rq:Content-SHA-256 to verify it');
    const existing = this.objects.get(name);
    if (existing) {
      if (sameOti(existing.oti, file.oti) && sameBytes(existing.sha256, file.sha256)) return existing;
      this.emitWarning(`channels disagree about "${name}" (digest or OTI); using the first`);
      return undefined;
    }
    const target = this.opts.outputFile !== undefined ? path.resolve(this.opts.outputFile) : path.resolve(this.opts.outputDir, safeObjectPath(name));
    for (const o of this.objects.values()) {
      if (o.path === target) throw new UnfetchableObjectError(name, `its output path is already used by "${o.name}"`);
    }
    const length = file.oti.transferLength;
    const writer = (): Promise<ObjectFileWriter> => {
      if (obj.writer === undefined) {
        obj.writer = ObjectFileWriter.create(target, length).then((w) => {
          // Early blocks kept for the running digest: within the same budget.
          w.holdBytes = Math.min(w.holdBytes, this.budget.limitBytes);
          return w;
        });
        // Failures surface through the receiver's sink; keep the promise handled meanwhile.
        obj.writer.catch(() => undefined);
      }
      return obj.writer;
    };
    const receiver = new ObjectReceiver(
      file.oti,
      {
        writeBlock: async (_sbn, offset, data) => (await writer()).writeAt(offset, data),
        prewrite: (offset, data) => {
          writer().then(
            (w) => w.prewrite(offset, data),
            () => undefined,
          );
        },
      },
      { budget: this.budget },
    );
    if (receiver.budgetRaised) {
      this.emitWarning(
        `memory budget raised to ${Math.ceil(this.budget.limitBytes / 2 ** 20)} MiB: two source blocks of "${name}" must fit`,
      );
    }
    const obj: ObjectState = { name, file, oti: file.oti, sha256: file.sha256, path: target, receiver, lastUsefulAt: Date.now(), batchMark: -1, done: false };
    this.objects.set(name, obj);
    receiver.done.then(
      () => this.onObjectDecoded(obj),
      (e: unknown) => this.fail(e),
    );
    void receiver.decoded.then(() => this.leaveIfAllDecoded());
    return obj;
  }

  private async onObjectDecoded(obj: ObjectState): Promise<void> {
    try {
      const w = await (obj.writer as Promise<ObjectFileWriter>);
      await w.commit(obj.sha256, obj.name);
    } catch (e) {
      this.fail(e);
      return;
    }
    obj.done = true;
    const r = obj.receiver;
    const result: ObjectResult = {
      name: obj.name,
      path: obj.path,
      bytes: obj.oti.transferLength,
      sha256: Buffer.from(obj.sha256).toString('hex'),
      seconds: (Date.now() - (this.joinedAt ?? this.startedAt)) / 1000,
      tailSeconds: (Date.now() - obj.lastUsefulAt) / 1000,
      symbolsReceived: r.stats.symbolsReceived,
      symbolsUsed: r.stats.symbolsUsed,
      neededSymbols: r.neededSymbols,
    };
    this.results.push(result);
    if (this.phase !== 'finished') this.emit('object', result);
    this.checkFinished();
  }

  /**
   * LEAVE as soon as every wanted object has decoded, before the last
   * blocks are written and verified: the server stops sending at once, and
   * this process stops spending CPU on packets it no longer needs.
   */
  private leaveIfAllDecoded(): void {
    if (this.ended || this.left || !this.cookie || !this.server || !this.socket) return;
    if (this.channels.size === 0 || ![...this.channels.values()].every((c) => c.fdtSeen)) return;
    if (this.url.name !== undefined && !this.objects.has(this.url.name)) return;
    for (const o of this.objects.values()) if (!o.receiver.complete) return;
    this.left = true;
    for (const t of [this.retryTimer, this.renewTimer]) if (t) clearTimeout(t);
    if (this.ackTimer) clearInterval(this.ackTimer);
    this.retryTimer = this.renewTimer = this.ackTimer = undefined;
    this.socket.send(encodeControl({ type: MessageType.Leave, cookie: this.cookie }), this.server.address, this.server.port);
  }

  private checkFinished(): void {
    if (this.phase === 'finished') return;
    const allFdts = [...this.channels.values()].every((c) => c.fdtSeen);
    if (!allFdts || this.channels.size === 0) return;
    if (this.url.name !== undefined && !this.objects.has(this.url.name)) {
      this.fail(new NoSuchObjectError(this.url.name));
      return;
    }
    for (const o of this.objects.values()) if (!o.done) return;
    this.finish();
  }

  // ---------------------------------------------------------------- ACK --

  private sendAck(ch: ChannelState): void {
    // Without a cookie nothing can be sent: leave the window unreported (report()
    // consumes it) so its losses go out with the next ACK.
    if (!ch.ack || !this.cookie) return;
    const r = ch.ack.report();
    if (!r) return;
    this.stats.acksSent++;
    this.send({ type: MessageType.Ack, cookie: this.cookie, tsi: ch.tsi, windowStart: r.windowStart, windowEnd: r.windowEnd, received: r.received });
  }

  private sendAcks(): void {
    for (const ch of this.channels.values()) this.sendAck(ch);
  }

  // ------------------------------------------------------------ periodic --

  private tick(): void {
    const now = Date.now();
    if (now - this.lastActivity > this.opts.timeoutMs) {
      const what =
        this.phase === 'hello' ? 'no answer to HELLO' : this.phase === 'join' ? 'no answer to JOIN' : 'no data';
      this.fail(new FetchTimeoutError(`${what} for ${Math.round(this.opts.timeoutMs / 1000)} s`));
      return;
    }
    if (this.phase === 'joined' && now - this.lastProgress.at >= this.opts.progressIntervalMs) this.emitProgress(now);
  }

  /** Progress now (also what 'progress' events carry). */
  progress(now = Date.now()): ProgressInfo {
    const objects: ObjectProgress[] = [];
    let held = 0;
    let needed = 0;
    let blocksDecoded = 0;
    let blocks = 0;
    for (const o of this.objects.values()) {
      const h = o.done ? o.receiver.neededSymbols : o.receiver.heldSymbols;
      objects.push({
        name: o.name,
        bytes: o.oti.transferLength,
        heldSymbols: h,
        neededSymbols: o.receiver.neededSymbols,
        blocksDecoded: o.receiver.stats.blocksDone,
        blocks: o.receiver.blocks,
        done: o.done,
      });
      held += h;
      needed += o.receiver.neededSymbols;
      blocksDecoded += o.receiver.stats.blocksDone;
      blocks += o.receiver.blocks;
    }
    const dt = (now - this.lastProgress.at) / 1000;
    const rate = this.lastProgress.at > 0 && dt > 0 ? (this.stats.bytesReceived - this.lastProgress.bytes) / dt : 0;
    const info: ProgressInfo = {
      elapsedMs: now - (this.joinedAt ?? this.startedAt),
      objects,
      heldSymbols: held,
      neededSymbols: needed,
      blocksDecoded,
      blocks,
      packetsReceived: this.stats.packetsReceived,
      bytesReceived: this.stats.bytesReceived,
      rateBytesPerSec: rate,
    };
    if (rate > 0 && needed > 0 && this.stats.packetsReceived > 0) {
      const perPacket = this.stats.bytesReceived / this.stats.packetsReceived;
      info.etaSeconds = ((needed - held) * perPacket) / rate;
    }
    return info;
  }

  private emitProgress(now: number): void {
    const p = this.progress(now);
    this.lastProgress = { at: now, bytes: this.stats.bytesReceived };
    this.emit('progress', p);
  }

  private emitWarning(message: string): void {
    this.emit('warning', message);
  }

  // ------------------------------------------------------------- ending --

  private summary(): FetchSummary {
    let symbolsReceived = 0;
    let symbolsUsed = 0;
    let needed = 0;
    for (const o of this.objects.values()) {
      symbolsReceived += o.receiver.stats.symbolsReceived;
      symbolsUsed += o.receiver.stats.symbolsUsed;
      needed += o.receiver.neededSymbols;
    }
    return {
      objects: [...this.results],
      bytes: this.results.reduce((a, r) => a + r.bytes, 0),
      seconds: (Date.now() - (this.joinedAt ?? this.startedAt)) / 1000,
      packetsReceived: this.stats.packetsReceived,
      bytesReceived: this.stats.bytesReceived,
      symbolsReceived,
      symbolsUsed,
      neededSymbols: needed,
      overhead: needed > 0 ? symbolsReceived / needed - 1 : 0,
      replacements: this.stats.replacements,
      acksSent: this.stats.acksSent,
      simulatedDrops: this.stats.simulatedDrops,
      socketDrops: this.stats.socketDrops,
      budgetDrops: this.budget.stats.symbolsDropped,
      blocksEvicted: this.budget.stats.blocksEvicted,
      peakPartialBlockBytes: this.budget.stats.peakBytes,
      memoryBytes: this.budget.limitBytes,
    };
  }

  /**
   * The kernel's count of datagrams dropped on this socket because its
   * receive buffer was full (the "drops" column of /proc/net/udp, Linux).
   * Losses the stream makes up for, but a sign the sender outruns the client.
   */
  private readSocketDrops(): void {
    const socket = this.socket;
    if (!socket || process.platform !== 'linux') return;
    try {
      const port = socket.localPort().toString(16).toUpperCase().padStart(4, '0');
      const file = this.server?.family === 6 ? '/proc/net/udp6' : '/proc/net/udp';
      for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length > 12 && cols[1].endsWith(`:${port}`)) {
          this.stats.socketDrops = Number(cols[cols.length - 1]) || 0;
          return;
        }
      }
    } catch {
      /* not available */
    }
  }

  private stopTimers(): void {
    for (const t of [this.retryTimer, this.renewTimer, this.untilTimer]) if (t) clearTimeout(t);
    for (const t of [this.ackTimer, this.tickTimer]) if (t) clearInterval(t);
    this.retryTimer = this.renewTimer = this.untilTimer = this.ackTimer = this.tickTimer = undefined;
  }

  /** Sends LEAVE (if joined) and closes the socket; resolves once closed. */
  private async shutdown(): Promise<void> {
    const wasJoined = this.cookie !== undefined && this.channels.size > 0 && !this.left;
    const socket = this.socket;
    const server = this.server;
    this.socket = undefined;
    this.stopTimers();
    for (const c of this.channels.values()) c.fdt.close();
    if (!socket) return;
    if (wasJoined && server && this.cookie) {
      socket.send(encodeControl({ type: MessageType.Leave, cookie: this.cookie }), server.address, server.port);
    }
    await socket.close();
  }

  private finish(): void {
    if (this.phase === 'finished') return;
    this.readSocketDrops();
    const summary = this.summary();
    this.phase = 'finished';
    void this.shutdown().then(() => {
      this.emit('done', summary);
      this.settle?.resolve(summary);
    });
  }

  private fail(e: unknown): void {
    if (this.phase === 'finished') return;
    this.phase = 'finished';
    const err = e instanceof Error ? e : new Error(String(e));
    const cleanup = async (): Promise<void> => {
      for (const o of this.objects.values()) {
        o.receiver.close(err);
        if (!o.done && o.writer) await o.writer.then((w) => w.abort(), () => undefined);
      }
      await this.shutdown();
    };
    void cleanup().then(() => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.settle?.reject(err);
    });
  }
}

/** Fetches `url` with `options`; resolves with the summary. */
export function fetchRqcast(url: string | RqcastUrl, options: RqcastClientOptions = {}): Promise<FetchSummary> {
  return new RqcastClient(url, options).fetch();
}
