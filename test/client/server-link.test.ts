/**
 * ServerLink: the shell around the session machine, over a fake transport
 * and jest's fake clock: what goes out, when, and what the fetch is told.
 */
import { PartialBlockBudget } from '../../lib/client/block-budget';
import { FetchTimeoutError, JoinRefusedError, ServerLeftError } from '../../lib/client/errors';
import { ClientStats, newClientStats, PacketInfo } from '../../lib/client/events';
import { ObjectRegistry } from '../../lib/client/object-registry';
import { encodeAlc } from '../../lib/protocol/alc';
import { BYE_CONFIRM_MS, BYE_SETTLE_MS, ServerLink, ServerLinkHost, WATCH_TICK_MS } from '../../lib/client/server-link';
import { ClientSession, SessionMachine, SessionOutput } from '../../lib/client/session';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { ControlMessage, ErrorCode, JoinedChannel, MessageType } from '../../lib/protocol/messages';
import type { ClientTransport, ClientTransportStats, ServerEndpoint } from '../../lib/transport/client-transport';
import { datagrams, MemorySinkFactory, RegistryLog } from './support';

const T0 = 1_700_000_000_000;
const SERVER: ServerEndpoint = { address: '10.0.0.1', port: 4433, family: 4 };
const COOKIE = new Uint8Array(16).fill(5);

class FakeTransport implements ClientTransport {
  readonly kind = 'udp';
  readonly carriesControl = true;
  readonly server = SERVER;
  /** Each control message sent, with the fake clock's time. */
  readonly sent: { at: number; msg: ControlMessage }[] = [];
  closed = false;
  drops = 0;
  /** How many control messages had been sent at each streaming() call. */
  readonly streamingCalls: number[] = [];
  localPort(): number {
    return 40_000;
  }
  streaming(): void {
    this.streamingCalls.push(this.sent.length);
  }
  sendControl(bytes: Uint8Array): void {
    const d = decodeControl(bytes);
    if (!d.ok) throw new Error('sent an undecodable control message');
    this.sent.push({ at: Date.now(), msg: d.msg });
  }
  stats(): ClientTransportStats {
    return { socketDrops: this.drops };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  types(): MessageType[] {
    return this.sent.map((s) => s.msg.type);
  }
}

class Host implements ServerLinkHost {
  ended = false;
  readonly activities: number[] = [];
  readonly joinedInfo: { channels: JoinedChannel[]; expiresAtMs: number }[] = [];
  readonly failures: Error[] = [];
  readonly warnings: string[] = [];
  activity(now: number): void {
    this.activities.push(now);
  }
  joined(_link: ServerLink, info: { channels: JoinedChannel[]; expiresAtMs: number }): void {
    this.joinedInfo.push(info);
  }
  failed(e: Error): void {
    this.failures.push(e);
    this.ended = true;
  }
  warning(message: string): void {
    this.warnings.push(message);
  }
  watchingPackets(): boolean {
    return false;
  }
  packet(_info: PacketInfo): void {}
}

function newStats(): ClientStats {
  return newClientStats();
}

function setup(o: { ack?: boolean; untilMs?: number; stallMs?: number } = {}) {
  const stats = newStats();
  const registry = new ObjectRegistry({
    maxUnknownPackets: 16,
    budget: new PartialBlockBudget(Infinity),
    sinks: new MemorySinkFactory(),
    stats,
    events: new RegistryLog(),
  });
  const host = new Host();
  const link = new ServerLink(0, SERVER, registry, host, {
    session: new ClientSession({ channels: ['main'], ttlMs: 30_000, untilMs: o.untilMs, ack: o.ack ?? false, retryMs: 250, nonce: () => new Uint8Array(8).fill(1) }),
    dataPath: { lossRate: 0, random: Math.random, ack: o.ack ?? false, ackEveryPackets: 256, recordEsis: false, stats },
    ackIntervalMs: 50,
    ...(o.stallMs !== undefined ? { stallMs: o.stallMs } : {}),
  });
  const transport = new FakeTransport();
  return { link, transport, host, stats, registry };
}

/** A control message from the server's control port. */
function deliver(link: ServerLink, msg: ControlMessage): void {
  link.onDatagrams(datagrams([{ bytes: encodeControl(msg), address: SERVER.address, port: SERVER.port }]));
}

/** Joins at T0 + 10: COOKIE at once, JOINED 10 ms later, granted `grantMs`. */
function joinNow(s: ReturnType<typeof setup>, grantMs = 30_000): void {
  s.link.start(s.transport);
  deliver(s.link, { type: MessageType.Cookie, nonce: new Uint8Array(8).fill(1), cookie: COOKIE, serverTimeMs: Date.now() });
  jest.advanceTimersByTime(10);
  deliver(s.link, { type: MessageType.Joined, channels: [{ name: 'main', tsi: 3 }], expiresAtMs: Date.now() + grantMs });
}

beforeEach(() => {
  jest.useFakeTimers({ now: T0 });
});
afterEach(() => {
  jest.useRealTimers();
});

describe('ServerLink', () => {
  test('HELLO at start, retried on the timer at 250, 750, 1750 ms; counted', () => {
    const s = setup();
    s.link.start(s.transport);
    jest.advanceTimersByTime(2000);
    expect(s.transport.sent.map((x) => x.at - T0)).toEqual([0, 250, 750, 1750]);
    expect(s.transport.types()).toEqual([MessageType.Hello, MessageType.Hello, MessageType.Hello, MessageType.Hello]);
    expect(s.stats.hellosSent).toBe(4);
  });

  test('COOKIE, JOIN, JOINED: channels in the registry, the fetch told, the renewal at half the grant; answers are activity', () => {
    const s = setup();
    joinNow(s, 20_000);
    expect(s.transport.types()).toEqual([MessageType.Hello, MessageType.Join]);
    expect(s.stats.joinsSent).toBe(1);
    expect(s.host.joinedInfo).toEqual([{ channels: [{ name: 'main', tsi: 3 }], expiresAtMs: T0 + 10 + 20_000 }]);
    expect(s.registry.channel(0, 3)).toBeDefined();
    expect(s.link.joined).toBe(true);
    expect(s.host.activities).toEqual([T0, T0 + 10]);
    // No JOIN retry after JOINED; the renewal 10 s later.
    jest.advanceTimersByTime(9_999);
    expect(s.transport.sent).toHaveLength(2);
    jest.advanceTimersByTime(1);
    // The renewal: a fresh cookie first (§10.7 step 4), then the JOIN.
    expect(s.transport.sent[2]).toMatchObject({ at: T0 + 10 + 10_000, msg: { type: MessageType.Hello } });
    const hello = s.transport.sent[2].msg;
    if (hello.type !== MessageType.Hello) throw new Error('expected HELLO');
    deliver(s.link, { type: MessageType.Cookie, nonce: hello.nonce, cookie: COOKIE, serverTimeMs: Date.now() });
    expect(s.transport.sent[3]).toMatchObject({ at: T0 + 10 + 10_000, msg: { type: MessageType.Join } });
    deliver(s.link, { type: MessageType.Joined, channels: [{ name: 'main', tsi: 3 }], expiresAtMs: Date.now() + 20_000 });
    expect(s.stats.renewals).toBe(1);
    expect(s.host.joinedInfo).toHaveLength(1);
    // A renewal's answer is no progress (the fetch's timeout counts data once joined).
    expect(s.host.activities).toEqual([T0, T0 + 10]);
  });

  test('ACK mode: an ACK every ackIntervalMs from JOINED on, none after LEAVE', () => {
    const s = setup({ ack: true });
    joinNow(s);
    // Sequence numbers 0..4 of channel 3 (the ACK reporter only needs EXT_RQSEQ; no FDT has listed TOI 1).
    const data = [0, 1, 2, 3, 4].map((seq) => ({ bytes: encodeAlc({ tsi: 3, toi: 1, sbn: 0, esi: seq, symbols: new Uint8Array(8), sequence: seq }), address: SERVER.address, port: 50_000 }));
    s.link.onDatagrams(datagrams(data));
    jest.advanceTimersByTime(50);
    const acks = s.transport.sent.filter((x) => x.msg.type === MessageType.Ack);
    expect(acks).toHaveLength(1);
    expect(acks[0]).toMatchObject({ at: T0 + 10 + 50, msg: { tsi: 3, windowStart: 0, windowEnd: 5, cookie: COOKIE } });
    s.link.leave();
    expect(s.transport.types().slice(-1)).toEqual([MessageType.Leave]);
    const before = s.transport.sent.length;
    jest.advanceTimersByTime(60_000);
    expect(s.transport.sent).toHaveLength(before);
  });

  test('a refusal ends the fetch with JoinRefusedError; nothing more is sent', () => {
    const s = setup();
    s.link.start(s.transport);
    deliver(s.link, { type: MessageType.Cookie, nonce: new Uint8Array(8).fill(1), cookie: COOKIE, serverTimeMs: Date.now() });
    deliver(s.link, { type: MessageType.Error, code: ErrorCode.UnknownChannel, reason: 'unknown channel main' });
    expect(s.host.failures).toHaveLength(1);
    expect(s.host.failures[0]).toBeInstanceOf(JoinRefusedError);
    const before = s.transport.sent.length;
    jest.advanceTimersByTime(10_000);
    expect(s.transport.sent).toHaveLength(before);
  });

  test('--until: the fetch fails with FetchTimeoutError at exactly that time', () => {
    const s = setup({ untilMs: T0 + 5_000 });
    joinNow(s, 5_000 - 10);
    jest.advanceTimersByTime(5_000 - 10 - 1);
    expect(s.host.failures).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(s.host.failures).toHaveLength(1);
    expect(s.host.failures[0]).toBeInstanceOf(FetchTimeoutError);
  });

  test('a warning for an ERROR that answers nothing; messages a server never sends are ignored and counted', () => {
    const s = setup();
    joinNow(s);
    deliver(s.link, { type: MessageType.Error, code: ErrorCode.TooManyChannels, reason: 'x' });
    deliver(s.link, { type: MessageType.Hello, nonce: new Uint8Array(8) });
    expect(s.host.warnings).toEqual(['server error 4: x']);
    expect(s.stats.ignored).toBe(1);
  });

  test('shutdown: LEAVE if joined and not left, then the transport closes; the drops are read first', async () => {
    const s = setup();
    joinNow(s);
    s.transport.drops = 7;
    expect(s.link.socketDrops()).toBe(7);
    await s.link.shutdown();
    expect(s.transport.types()).toEqual([MessageType.Hello, MessageType.Join, MessageType.Leave]);
    expect(s.transport.closed).toBe(true);
    expect(s.link.socketDrops()).toBe(0);
    // Even after the fetch ended (a failure), a joined session says LEAVE.
    const f = setup();
    joinNow(f);
    f.host.ended = true;
    await f.link.shutdown();
    expect(f.transport.types().slice(-1)).toEqual([MessageType.Leave]);
  });

  test('shutdown after LEAVE or before JOINED says nothing more', async () => {
    const s = setup();
    joinNow(s);
    s.link.leave();
    await s.link.shutdown();
    expect(s.transport.types().filter((t) => t === MessageType.Leave)).toHaveLength(1);
    const n = setup();
    n.link.start(n.transport);
    await n.link.shutdown();
    expect(n.transport.types()).toEqual([MessageType.Hello]);
    jest.advanceTimersByTime(10_000);
    expect(n.transport.types()).toEqual([MessageType.Hello]);
  });

  test('a receive-only session (the shape of a multicast membership): joined from the start, its data counted, nothing ever sent', async () => {
    const empty = (): SessionOutput => ({ send: [], events: [], answered: false, ignored: false });
    const membership: SessionMachine = {
      phase: 'joined',
      joined: true,
      left: false,
      cookie: undefined,
      nextDeadline: () => undefined,
      start: () => ({ ...empty(), events: [{ type: 'joined', channels: [{ name: 'main', tsi: 3 }], expiresAtMs: Number.MAX_SAFE_INTEGER }] }),
      receive: () => ({ ...empty(), ignored: true }),
      tick: empty,
      leave: empty,
      useUnicast: empty,
      close: () => undefined,
    };
    const s = setup();
    const stats = newStats();
    const host = new Host();
    const link = new ServerLink(1, SERVER, s.registry, host, {
      session: membership,
      dataPath: { lossRate: 0, random: Math.random, ack: false, ackEveryPackets: 256, recordEsis: false, stats },
      ackIntervalMs: 50,
    });
    const transport = Object.assign(new FakeTransport(), { carriesControl: false });
    link.start(transport);
    expect(host.joinedInfo).toHaveLength(1);
    expect(s.registry.channel(1, 3)).toBeDefined();
    const bytes = encodeAlc({ tsi: 3, toi: 1, sbn: 0, esi: 0, symbols: new Uint8Array(8) });
    link.onDatagrams(datagrams([{ bytes, address: SERVER.address, port: 50_000 }]));
    expect(stats.packetsReceived).toBe(1);
    await link.shutdown();
    expect(transport.sent).toEqual([]);
    expect(transport.closed).toBe(true);
  });
});

/** `n` data packets of channel 3 (TOI 1, in no FDT: they only count as the channel's unicast packets), from the server's data port. */
function data(link: ServerLink, n = 1, from = 0): void {
  const items = Array.from({ length: n }, (_, i) => ({
    bytes: encodeAlc({ tsi: 3, toi: 1, sbn: 0, esi: from + i, symbols: new Uint8Array(8), sequence: from + i }),
    address: SERVER.address,
    port: 50_000,
  }));
  link.onDatagrams(datagrams(items));
}

describe('start-up: the handshake unbatched, the stream batched (ClientTransport.streaming)', () => {
  test('the transport is told once, by the first data packet after JOINED, not by COOKIE or JOINED', () => {
    const s = setup();
    s.link.start(s.transport);
    deliver(s.link, { type: MessageType.Cookie, nonce: new Uint8Array(8).fill(1), cookie: COOKIE, serverTimeMs: Date.now() });
    expect(s.transport.types()).toEqual([MessageType.Hello, MessageType.Join]);
    expect(s.transport.streamingCalls).toEqual([]);
    deliver(s.link, { type: MessageType.Joined, channels: [{ name: 'main', tsi: 3 }], expiresAtMs: Date.now() + 30_000 });
    expect(s.transport.streamingCalls).toEqual([]);
    data(s.link, 1);
    expect(s.transport.streamingCalls).toEqual([2]);
    data(s.link, 5, 1);
    deliver(s.link, { type: MessageType.Joined, channels: [{ name: 'main', tsi: 3 }], expiresAtMs: Date.now() + 30_000 });
    data(s.link, 5, 6);
    expect(s.transport.streamingCalls).toEqual([2]);
  });

  test('data before JOINED (kept until JOINED, data-path.ts) tells the transport only once the session joined', () => {
    const s = setup();
    s.link.start(s.transport);
    deliver(s.link, { type: MessageType.Cookie, nonce: new Uint8Array(8).fill(1), cookie: COOKIE, serverTimeMs: Date.now() });
    data(s.link, 3);
    expect(s.transport.streamingCalls).toEqual([]);
    deliver(s.link, { type: MessageType.Joined, channels: [{ name: 'main', tsi: 3 }], expiresAtMs: Date.now() + 30_000 });
    // The kept packets were replayed into the channel with JOINED: the stream has begun.
    expect(s.transport.streamingCalls).toEqual([2]);
  });
});

describe('the server leaving (ERROR 20, docs/PROTOCOL.md §6.7)', () => {
  const LEAVING: ControlMessage = { type: MessageType.Error, code: ErrorCode.ServerLeaving, reason: 'server leaving' };

  test('ERROR 20 and no data after it: the session ends and the fetch is told ServerLeftError, once', () => {
    const s = setup();
    joinNow(s);
    data(s.link, 4);
    deliver(s.link, LEAVING);
    // Packets that were in flight with the notice do not count against it.
    data(s.link, 2, 4);
    jest.advanceTimersByTime(BYE_CONFIRM_MS + WATCH_TICK_MS);
    expect(s.host.failures).toHaveLength(1);
    expect(s.host.failures[0]).toBeInstanceOf(ServerLeftError);
    expect(s.host.failures[0].message).toContain('10.0.0.1:4433');
    expect(s.link.gone).toBe(true);
    expect(s.stats.serverLeaving).toBe(1);
    // The session is over: no renewal, no HELLO, whatever the time.
    const before = s.transport.sent.length;
    jest.advanceTimersByTime(60_000);
    expect(s.transport.sent).toHaveLength(before);
    expect(s.host.failures).toHaveLength(1);
  });

  test('a forged or stale ERROR 20 while the data goes on ends nothing: a warning, counted', () => {
    const s = setup();
    joinNow(s);
    deliver(s.link, LEAVING);
    jest.advanceTimersByTime(BYE_SETTLE_MS + WATCH_TICK_MS);
    data(s.link, 1);
    jest.advanceTimersByTime(BYE_CONFIRM_MS * 4);
    expect(s.host.failures).toEqual([]);
    expect(s.link.gone).toBe(false);
    expect(s.stats.serverLeavingIgnored).toBe(1);
    expect(s.host.warnings).toEqual(['the server said it is leaving, but its data still arrives: going on']);
    // The session goes on: its renewal is sent (a fresh cookie first, §10.7 step 4: a HELLO after the first).
    jest.advanceTimersByTime(30_000);
    expect(s.transport.sent.filter((x) => x.msg.type === MessageType.Hello).length).toBeGreaterThan(1);
  });

  test('ERROR 20 in answer to HELLO (a server shutting down): ServerLeftError, not a refusal', () => {
    const s = setup();
    s.link.start(s.transport);
    deliver(s.link, LEAVING);
    jest.advanceTimersByTime(BYE_CONFIRM_MS + WATCH_TICK_MS);
    expect(s.host.failures.map((e) => e.constructor)).toEqual([ServerLeftError]);
  });
});

describe('data that stops: a prompt rejoin (a restarted server)', () => {
  test('a joined UDP session whose data stops for stallMs says HELLO (new exchange), then JOIN; once per stall; never while data flows', () => {
    const s = setup({ stallMs: 500 });
    joinNow(s, 30_000);
    // Data every 100 ms for 3 s: no HELLO.
    for (let i = 0; i < 30; i++) {
      data(s.link, 1, i);
      jest.advanceTimersByTime(100);
    }
    expect(s.transport.types()).toEqual([MessageType.Hello, MessageType.Join]);
    // Silence: one HELLO after about stallMs (the watch looks every WATCH_TICK_MS).
    jest.advanceTimersByTime(500 + WATCH_TICK_MS);
    expect(s.transport.types()).toEqual([MessageType.Hello, MessageType.Join, MessageType.Hello]);
    expect(s.stats.rejoins).toBe(1);
    deliver(s.link, { type: MessageType.Cookie, nonce: new Uint8Array(8).fill(1), cookie: COOKIE, serverTimeMs: Date.now() });
    expect(s.transport.types().slice(-1)).toEqual([MessageType.Join]);
    deliver(s.link, { type: MessageType.Joined, channels: [{ name: 'main', tsi: 3 }], expiresAtMs: Date.now() + 30_000 });
    expect(s.stats.renewals).toBe(1);
    // The new server's data: the watch is quiet again.
    data(s.link, 1, 100);
    jest.advanceTimersByTime(300);
    expect(s.stats.rejoins).toBe(1);
  });

  test('no rejoin after LEAVE, nor without stallMs (the TCP links)', () => {
    const s = setup({ stallMs: 500 });
    joinNow(s);
    s.link.leave();
    jest.advanceTimersByTime(5_000);
    expect(s.stats.rejoins).toBe(0);
    const t = setup();
    joinNow(t);
    jest.advanceTimersByTime(5_000);
    expect(t.stats.rejoins).toBe(0);
    expect(t.transport.types()).toEqual([MessageType.Hello, MessageType.Join]);
  });
});
