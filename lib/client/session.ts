/**
 * ClientSession: the client's side of one session with one server over one
 * transport (docs/PROTOCOL.md §4, §6, §10.7), as a state machine that does
 * no I/O and reads no clock. The caller passes in the decoded control
 * messages and the current time (Unix ms, this host's clock) and takes out
 * the control messages to send, the events, and the next time it must be
 * called again (nextDeadline). So every transition, and the time it
 * happens at, is a plain unit test.
 *
 *   start ──► HELLO(nonce) ── retried after retryMs, doubling up to 2 s ──┐
 *   COOKIE(nonce) ──► JOIN(cookie, channels, ttl | until, ack) ── retried ─┤
 *   JOINED ──► 'joined' (first) | 'renewed'; at half the granted time
 *              (server clock) HELLO for a fresh cookie, then JOIN again,
 *              unless --until was granted whole
 *   ERROR 1, 2 (bad/expired cookie) ──► HELLO again (at most 3 in a row)
 *   ERROR 6 (not joined) while joined ──► JOIN again
 *   useUnicast(channel) ──► JOIN again with the channel's multicast bit
 *              cleared (the fallback, §10.10); a JOINED that still shows
 *              no unicast stream for it answered an earlier JOIN: retried
 *   ERROR 20 (server leaving), at any time ──► 'leaving' (the link decides:
 *              server-link.ts; the session itself goes on)
 *   rejoin (the link saw no data for a while) ──► HELLO again, then JOIN
 *   ERROR other in answer to JOIN, JOINED with no channel ──► 'refused'
 *   the --until time ──► 'expired'
 *   leave ──► LEAVE, 'left'
 */
import { NONCE_SIZE } from '../protocol/control-header';
import { ControlMessage, ErrorCode, JoinedChannel, MessageType, TimeValue } from '../protocol/messages';
import { kernelRandomBytes } from '../support/kernel-random';
import { FetchTimeoutError, JoinRefusedError } from './errors';

/** Cookie refreshes in a row (BadCookie, CookieExpired) before the session gives up (§10.7 step 5). */
export const MAX_COOKIE_REFRESHES = 3;
/** The retry backoff doubles up to this (§10.7 steps 1-2). */
export const MAX_RETRY_MS = 2000;
/** The earliest a renewal goes out after JOINED, whatever the granted time (§10.7 step 4). */
export const MIN_RENEWAL_MS = 100;
/**
 * JOINEDs in a row that answer an earlier JOIN (a channel whose multicast
 * bit was cleared still without the UNICAST flag) before the session takes
 * one anyway, with a warning: a server that keeps saying so is not going
 * to send the stream, and the JOIN must not be retried for ever.
 */
export const MAX_STALE_JOINED = 3;

export interface ClientSessionConfig {
  /** Channel names JOIN asks for. */
  channels: string[];
  /**
   * Channels (of `channels`) whose multicast bit JOIN sets: the client
   * listens to their group, so the server sends it no unicast stream of
   * those that have one (§4.5, §6.2). Default none.
   */
  multicast?: string[];
  /** JOIN's relative time, when untilMs is not given. */
  ttlMs: number;
  /** JOIN's absolute time (Unix ms, this host's clock): sent in server-clock terms, and the session ends then. */
  untilMs?: number;
  /** JOIN asks for ACK mode. */
  ack: boolean;
  /** First HELLO/JOIN retry after this many ms, doubling up to MAX_RETRY_MS. */
  retryMs: number;
  /** Nonce source (tests); default the kernel's generator (support/kernel-random.ts). */
  nonce?: () => Uint8Array;
}

/**
 * Where the handshake is. 'joined' from the first JOINED on, through
 * renewals and cookie refreshes: the channels of the first JOINED are the
 * ones received (§10.7 step 3).
 */
export type SessionPhase = 'idle' | 'hello' | 'join' | 'joined';

export type SessionEvent =
  /** The first JOINED: the channels (with their TSIs) to receive, and the server's expiry time. */
  | { type: 'joined'; channels: JoinedChannel[]; expiresAtMs: number }
  /** A later JOINED: the expiry moved. */
  | { type: 'renewed'; expiresAtMs: number }
  /** The server refused in a way another attempt cannot fix; the session has ended. */
  | { type: 'refused'; error: JoinRefusedError }
  /** The --until time came; the session has ended. */
  | { type: 'expired'; error: FetchTimeoutError }
  /** LEAVE sent. */
  | { type: 'left' }
  /** An ERROR that was not an answer to JOIN. */
  | { type: 'warning'; message: string }
  /**
   * ERROR ServerLeaving (§6.7): the server says it is shutting down. An
   * ERROR is not authenticated, so the session goes on: the link ends it
   * once the data has stopped too (server-link.ts).
   */
  | { type: 'leaving'; reason: string };

/** What one input produced. */
export interface SessionOutput {
  /** Control messages to send to the server, in order. */
  send: ControlMessage[];
  events: SessionEvent[];
  /** The input was an answer from the server (a COOKIE for this nonce, an awaited JOINED, any ERROR): activity, for the fetch's timeout. */
  answered: boolean;
  /** A message no server sends a client (HELLO, JOIN, ...): to be counted as ignored. */
  ignored: boolean;
}

/**
 * What a ServerLink drives: ClientSession (HELLO, COOKIE, JOIN over a
 * transport that carries control: UDP unicast, TCP), or, next, a
 * receive-only multicast membership that is joined from the start and has
 * nothing to send.
 */
export interface SessionMachine {
  readonly phase: SessionPhase;
  /** The channels are known: data goes to the registry. */
  readonly joined: boolean;
  readonly left: boolean;
  /** What ACKs carry, if this session sends any. */
  readonly cookie: Uint8Array | undefined;
  nextDeadline(): number | undefined;
  start(now: number): SessionOutput;
  receive(msg: ControlMessage, now: number): SessionOutput;
  tick(now: number): SessionOutput;
  leave(now: number): SessionOutput;
  /** Clears `channel`'s multicast bit: the server is asked for its unicast stream (§10.10). Nothing for a session with nothing to ask. */
  useUnicast(channel: string, now: number): SessionOutput;
  /** The data stopped while joined: a new HELLO and JOIN (a restarted server knows nothing of this session). Nothing for a session with nothing to ask. */
  rejoin?(now: number): SessionOutput;
  close(): void;
}

type Awaiting = 'cookie' | 'joined' | 'none';

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

export class ClientSession implements SessionMachine {
  private _phase: SessionPhase = 'idle';
  /** What the last request waits for; 'none' while simply joined. */
  private awaiting: Awaiting = 'none';
  private nonce: Uint8Array = new Uint8Array(NONCE_SIZE);
  private _cookie?: Uint8Array;
  private _clockOffsetMs = 0;
  private cookieRefreshes = 0;
  private _left = false;
  /** Refused, expired or closed: no more requests (leave() still says goodbye). */
  private ended = false;
  private retryAt?: number;
  private retryAction: 'hello' | 'join' = 'hello';
  private retryDelay = 0;
  private renewAt?: number;
  private untilAt?: number;
  private out: SessionOutput = newOutput();
  private readonly newNonce: () => Uint8Array;
  /** Channels whose multicast bit JOIN sets, in the order of config.channels. */
  private multicastChannels: string[];
  /** JOINEDs in a row that answered a JOIN sent before a bit was cleared. */
  private staleJoined = 0;

  constructor(private readonly config: ClientSessionConfig) {
    this.newNonce = config.nonce ?? (() => kernelRandomBytes(NONCE_SIZE));
    const wanted = new Set(config.multicast ?? []);
    this.multicastChannels = config.channels.filter((c) => wanted.has(c));
  }

  /** The channels JOIN flags as listened to on their group (§4.5). */
  get multicast(): readonly string[] {
    return this.multicastChannels;
  }

  get phase(): SessionPhase {
    return this._phase;
  }

  /** JOINED has arrived once: the data of the joined channels is the fetch's. */
  get joined(): boolean {
    return this._phase === 'joined';
  }

  /** The cookie in force (ACK and LEAVE carry it); undefined while a new one is asked for. */
  get cookie(): Uint8Array | undefined {
    return this._cookie;
  }

  /** Server clock minus this host's, from the last COOKIE. */
  get clockOffsetMs(): number {
    return this._clockOffsetMs;
  }

  get left(): boolean {
    return this._left;
  }

  /** The earliest time tick() has something to do, if any. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const t of [this.retryAt, this.renewAt, this.untilAt]) if (t !== undefined && (d === undefined || t < d)) d = t;
    return d;
  }

  /** Sends the first HELLO. */
  start(now: number): SessionOutput {
    this.out = newOutput();
    if (this._phase !== 'idle' || this.ended) return this.out;
    if (this.config.untilMs !== undefined) this.untilAt = this.config.untilMs;
    this.sendHello(true, now);
    return this.out;
  }

  /** A control message from the server. */
  receive(msg: ControlMessage, now: number): SessionOutput {
    this.out = newOutput();
    if (this.ended || this._left) return this.out;
    switch (msg.type) {
      case MessageType.Cookie:
        if (this.awaiting !== 'cookie' || !sameBytes(msg.nonce, this.nonce)) break;
        this.out.answered = true;
        this._cookie = msg.cookie;
        this._clockOffsetMs = msg.serverTimeMs - now;
        this.sendJoin(true, now);
        break;
      case MessageType.Joined:
        if (this.awaiting !== 'joined') break;
        this.out.answered = true;
        if (this.answersEarlierJoin(msg.channels)) break;
        this.awaiting = 'none';
        this.retryAt = undefined;
        this.cookieRefreshes = 0;
        this.onJoined(msg.channels, msg.expiresAtMs, now);
        break;
      case MessageType.Error:
        this.out.answered = true;
        this.onServerError(msg.code, msg.reason, now);
        break;
      default:
        this.out.ignored = true;
    }
    return this.out;
  }

  /** Whatever is due at `now`: retries, the renewal, the --until time. */
  tick(now: number): SessionOutput {
    this.out = newOutput();
    for (;;) {
      const due = this.nextDeadline();
      if (due === undefined || due > now) break;
      if (due === this.untilAt) {
        this.expire();
        break;
      }
      if (due === this.retryAt) {
        this.retryAt = undefined;
        if (this.retryAction === 'hello') this.sendHello(false, now);
        else this.sendJoin(false, now);
      } else {
        // A renewal starts with a fresh cookie: the server never keeps a
        // session past the expiry of the cookie its JOIN carried (§6.2).
        // The old cookie stays in force for ACK and LEAVE meanwhile.
        this.renewAt = undefined;
        this.sendHello(true, now);
      }
    }
    return this.out;
  }

  /**
   * LEAVE (§4.7): once, if the session was joined and holds a cookie. No
   * more retries or renewals; what arrives afterwards is ignored. The
   * --until time still ends the session if the fetch outlasts it.
   */
  leave(_now: number): SessionOutput {
    this.out = newOutput();
    if (this._left || !this.joined || !this._cookie) return this.out;
    this._left = true;
    this.retryAt = this.renewAt = undefined;
    this.out.send.push({ type: MessageType.Leave, cookie: this._cookie });
    this.out.events.push({ type: 'left' });
    return this.out;
  }

  /**
   * Clears `channel`'s multicast bit (the fallback to unicast, §10.10): a
   * JOIN with the new bitmap goes out at once if the session is joined or
   * joining, so that the server makes the client a unicast destination of
   * the channel; while a new cookie is being fetched, the JOIN that follows
   * it carries the bitmap. Renewals keep it. Nothing for a channel whose
   * bit is clear, nor once the session has left or ended.
   */
  useUnicast(channel: string, now: number): SessionOutput {
    this.out = newOutput();
    if (!this.multicastChannels.includes(channel)) return this.out;
    this.multicastChannels = this.multicastChannels.filter((c) => c !== channel);
    if (this.ended || this._left || this.awaiting === 'cookie' || !this._cookie) return this.out;
    if (this._phase === 'joined' || this._phase === 'join') this.sendJoin(true, now);
    return this.out;
  }

  /**
   * The data stopped while joined (the link watches it, server-link.ts):
   * the server may have restarted and forgotten the session, and a cookie
   * under its old key would only draw an ERROR, so a new HELLO at once, then
   * JOIN; JOINED counts as a renewal. Nothing unless joined and not waiting
   * for an answer already (nor after LEAVE or the end).
   */
  rejoin(now: number): SessionOutput {
    this.out = newOutput();
    if (this.ended || this._left || this._phase !== 'joined' || this.awaiting !== 'none') return this.out;
    this.renewAt = undefined;
    this.sendHello(true, now);
    return this.out;
  }

  /** Ends the session without a word (the fetch is over): no deadlines, no output. */
  close(): void {
    this.ended = true;
    this.retryAt = this.renewAt = this.untilAt = undefined;
  }

  // ---------------------------------------------------------------------

  private sendHello(reset: boolean, now: number): void {
    if (this.ended) return;
    // A new exchange gets a new nonce; retries repeat it, so that a COOKIE
    // answering an earlier copy is still taken (§10.7 step 1).
    if (reset) this.nonce = this.newNonce();
    if (this._phase !== 'joined') this._phase = 'hello';
    this.awaiting = 'cookie';
    this.out.send.push({ type: MessageType.Hello, nonce: this.nonce });
    this.armRetry('hello', reset, now);
  }

  private sendJoin(reset: boolean, now: number): void {
    if (this.ended || !this._cookie) return;
    if (this._phase !== 'joined') this._phase = 'join';
    this.awaiting = 'joined';
    this.out.send.push({
      type: MessageType.Join,
      cookie: this._cookie,
      channels: this.config.channels,
      until: this.timeValue(),
      ack: this.config.ack,
      // The flag only with a bit set (§4.5): without one the JOIN is the first version's.
      ...(this.multicastChannels.length > 0 ? { multicast: [...this.multicastChannels] } : {}),
    });
    this.armRetry('join', reset, now);
  }

  private armRetry(action: 'hello' | 'join', reset: boolean, now: number): void {
    this.retryDelay = reset ? this.config.retryMs : Math.min(this.retryDelay * 2, MAX_RETRY_MS);
    this.retryAction = action;
    this.retryAt = now + this.retryDelay;
  }

  /** JOIN's time value (§4.5): --until converted to the server's clock, or the duration. */
  private timeValue(): TimeValue {
    const until = this.config.untilMs;
    if (until !== undefined) return { kind: 'absolute', unixMs: Math.max(0, Math.round(until + this._clockOffsetMs)) };
    return { kind: 'duration', ms: this.config.ttlMs };
  }

  private onServerError(code: ErrorCode, reason: string, now: number): void {
    if (code === ErrorCode.ServerLeaving) {
      // Whatever was asked, the answer is the same; the link decides (§6.7).
      this.out.events.push({ type: 'leaving', reason });
      return;
    }
    if (code === ErrorCode.BadCookie || code === ErrorCode.CookieExpired) {
      // The cookie outlived its lifetime, or the server changed keys: a new one (§6.2).
      // Every ACK in flight under the old cookie draws its own ERROR: while a
      // HELLO for the new cookie is out, those say nothing new.
      if (this.awaiting === 'cookie') return;
      if (++this.cookieRefreshes > MAX_COOKIE_REFRESHES) {
        this.refuse(new JoinRefusedError(code, reason));
        return;
      }
      this._cookie = undefined;
      this.sendHello(true, now);
      return;
    }
    if (code === ErrorCode.NotJoined) {
      // The session expired under us (an ACK arrived after it): join again.
      if (this.awaiting === 'none' && !this._left) this.sendJoin(true, now);
      return;
    }
    if (this.awaiting === 'joined') {
      this.refuse(new JoinRefusedError(code, reason));
      return;
    }
    this.out.events.push({ type: 'warning', message: `server error ${code}: ${reason}` });
  }

  /**
   * Whether a JOINED answers a JOIN sent before a multicast bit was cleared
   * (useUnicast): a channel with a group whose bit is clear must come with
   * the UNICAST flag (§6.2). Such a JOINED is not the answer awaited; the
   * JOIN's retry goes on, up to MAX_STALE_JOINED times in a row.
   */
  private answersEarlierJoin(channels: JoinedChannel[]): boolean {
    const listening = new Set(this.multicastChannels);
    const stale = channels.some((c) => c.multicast !== undefined && !c.multicast.unicast && !listening.has(c.name));
    if (!stale) {
      this.staleJoined = 0;
      return false;
    }
    if (++this.staleJoined <= MAX_STALE_JOINED) return true;
    this.staleJoined = 0;
    this.out.events.push({ type: 'warning', message: 'the server sends no unicast stream of a channel asked for by unicast' });
    return false;
  }

  private onJoined(channels: JoinedChannel[], expiresAtMs: number, now: number): void {
    if (channels.length === 0) {
      this.refuse(new JoinRefusedError(ErrorCode.Internal, 'joined no channel'));
      return;
    }
    if (this._phase !== 'joined') {
      this._phase = 'joined';
      this.out.events.push({ type: 'joined', channels, expiresAtMs });
    } else {
      this.out.events.push({ type: 'renewed', expiresAtMs });
    }
    this.scheduleRenewal(expiresAtMs, now);
  }

  /** A JOIN again at half the time the server granted, measured on its clock (§10.7 step 4). */
  private scheduleRenewal(expiresAtMs: number, now: number): void {
    this.renewAt = undefined;
    const granted = expiresAtMs - (now + this._clockOffsetMs);
    // Nothing to renew if the server granted the whole --until time.
    if (this.config.untilMs !== undefined && expiresAtMs >= this.config.untilMs + this._clockOffsetMs) return;
    this.renewAt = now + Math.max(MIN_RENEWAL_MS, Math.floor(granted / 2));
  }

  private refuse(error: JoinRefusedError): void {
    this.close();
    this.out.events.push({ type: 'refused', error });
  }

  private expire(): void {
    this.close();
    this.out.events.push({ type: 'expired', error: new FetchTimeoutError('the session reached its --until time before the transfer completed') });
  }
}

function newOutput(): SessionOutput {
  return { send: [], events: [], answered: false, ignored: false };
}
