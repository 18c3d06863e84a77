/**
 * ClientSession, the I/O-free session machine (docs/PROTOCOL.md §10.7),
 * driven by a fake clock: every transition, and the time it happens at.
 */
import { FetchTimeoutError, JoinRefusedError } from '../../lib/client/errors';
import { ClientSession, ClientSessionConfig, MAX_COOKIE_REFRESHES, SessionOutput } from '../../lib/client/session';
import { ControlMessage, ErrorCode, JoinMessage, MessageType } from '../../lib/protocol/messages';

const T0 = 1_700_000_000_000;
const COOKIE = new Uint8Array(16).fill(7);
const COOKIE2 = new Uint8Array(16).fill(8);

function session(o: Partial<ClientSessionConfig> = {}): ClientSession {
  let n = 0;
  return new ClientSession({
    channels: ['main'],
    ttlMs: 30_000,
    ack: false,
    retryMs: 250,
    // Distinct, predictable nonces: 1, 2, 3, ...
    nonce: () => new Uint8Array(8).fill(++n),
    ...o,
  });
}

function only(out: SessionOutput): ControlMessage {
  expect(out.send).toHaveLength(1);
  return out.send[0];
}

function nonceOf(out: SessionOutput): Uint8Array {
  const m = only(out);
  if (m.type !== MessageType.Hello) throw new Error(`expected HELLO, got ${m.type}`);
  return m.nonce;
}

function cookie(nonce: Uint8Array, serverTimeMs: number, c = COOKIE): ControlMessage {
  return { type: MessageType.Cookie, nonce, cookie: c, serverTimeMs };
}

function joined(expiresAtMs: number, channels = [{ name: 'main', tsi: 1 }]): ControlMessage {
  return { type: MessageType.Joined, channels, expiresAtMs };
}

function error(code: ErrorCode, reason = 'r'): ControlMessage {
  return { type: MessageType.Error, code, reason };
}

/** A session joined at T0 + 10, the server's clock `offset` ahead, granted `grantMs`. */
function joinedSession(o: Partial<ClientSessionConfig> = {}, offset = 0, grantMs = 30_000): ClientSession {
  const s = session(o);
  const nonce = nonceOf(s.start(T0));
  s.receive(cookie(nonce, T0 + 5 + offset), T0 + 5);
  const out = s.receive(joined(T0 + 10 + offset + grantMs), T0 + 10);
  expect(out.events[0]).toMatchObject({ type: 'joined' });
  return s;
}

/** The renewal due at `at`: a HELLO for a fresh cookie, answered with `c`; returns the JOIN that follows. */
function renew(s: ClientSession, at: number, c = COOKIE2, serverTimeMs = at): ControlMessage {
  const nonce = nonceOf(s.tick(at));
  return only(s.receive(cookie(nonce, serverTimeMs, c), at + 1));
}

describe('ClientSession: HELLO', () => {
  test('start sends HELLO at once, in phase hello', () => {
    const s = session();
    const out = s.start(T0);
    expect(only(out)).toEqual({ type: MessageType.Hello, nonce: new Uint8Array(8).fill(1) });
    expect(s.phase).toBe('hello');
    expect(s.joined).toBe(false);
  });

  test('unanswered HELLO is retried after 250, 500, 1000, 2000, 2000 ms, with the same nonce', () => {
    const s = session();
    const first = nonceOf(s.start(T0));
    const times: number[] = [];
    let now = T0;
    for (let i = 0; i < 6; i++) {
      const due = s.nextDeadline() as number;
      // Nothing is sent a millisecond early.
      expect(s.tick(due - 1).send).toEqual([]);
      now = due;
      expect(nonceOf(s.tick(now))).toEqual(first);
      times.push(now - T0);
    }
    expect(times).toEqual([250, 750, 1750, 3750, 5750, 7750]);
  });

  test('the first retry is retryMs, the doubling stops at 2 s', () => {
    const s = session({ retryMs: 600 });
    s.start(T0);
    const gaps: number[] = [];
    let last = T0;
    for (let i = 0; i < 4; i++) {
      const due = s.nextDeadline() as number;
      s.tick(due);
      gaps.push(due - last);
      last = due;
    }
    expect(gaps).toEqual([600, 1200, 2000, 2000]);
  });

  test('a late tick sends one retry, and the next one counts from the tick', () => {
    const s = session();
    s.start(T0);
    expect(s.tick(T0 + 400).send).toHaveLength(1);
    expect(s.nextDeadline()).toBe(T0 + 400 + 500);
  });

  test('a COOKIE with another nonce is not an answer', () => {
    const s = session();
    s.start(T0);
    const out = s.receive(cookie(new Uint8Array(8).fill(9), T0), T0 + 1);
    expect(out).toEqual({ send: [], events: [], answered: false, ignored: false });
    expect(s.phase).toBe('hello');
    expect(s.cookie).toBeUndefined();
  });

  test('a COOKIE answering a retried HELLO is taken', () => {
    const s = session();
    const nonce = nonceOf(s.start(T0));
    s.tick(T0 + 250);
    const out = s.receive(cookie(nonce, T0 + 300), T0 + 300);
    expect(out.answered).toBe(true);
    expect(only(out).type).toBe(MessageType.Join);
  });

  test('messages a server never sends a client are flagged ignored', () => {
    const s = session();
    s.start(T0);
    for (const m of [
      { type: MessageType.Hello, nonce: new Uint8Array(8) },
      { type: MessageType.Leave, cookie: COOKIE },
    ] as ControlMessage[]) {
      expect(s.receive(m, T0 + 1)).toEqual({ send: [], events: [], answered: false, ignored: true });
    }
  });
});

describe('ClientSession: JOIN', () => {
  test('COOKIE: JOIN at once with the cookie, the channels, the ttl and the ACK flag; the clock offset is kept', () => {
    const s = session({ channels: ['a', 'b'], ttlMs: 12_000, ack: true });
    const nonce = nonceOf(s.start(T0));
    const out = s.receive(cookie(nonce, T0 + 100 + 5_000), T0 + 100);
    expect(out.answered).toBe(true);
    expect(only(out)).toEqual({
      type: MessageType.Join,
      cookie: COOKIE,
      channels: ['a', 'b'],
      until: { kind: 'duration', ms: 12_000 },
      ack: true,
    });
    expect(s.phase).toBe('join');
    expect(s.cookie).toEqual(COOKIE);
    expect(s.clockOffsetMs).toBe(5_000);
  });

  test('unanswered JOIN is retried after 250, 500, 1000, 2000, 2000 ms (the backoff restarts for JOIN)', () => {
    const s = session();
    const nonce = nonceOf(s.start(T0));
    s.tick(T0 + 250);
    s.tick(T0 + 750);
    s.receive(cookie(nonce, T0 + 800), T0 + 800);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const due = s.nextDeadline() as number;
      expect(only(s.tick(due)).type).toBe(MessageType.Join);
      times.push(due - (T0 + 800));
    }
    expect(times).toEqual([250, 750, 1750, 3750, 5750]);
  });

  test('a second COOKIE while JOIN is out is not an answer', () => {
    const s = session();
    const nonce = nonceOf(s.start(T0));
    s.receive(cookie(nonce, T0), T0 + 1);
    expect(s.receive(cookie(nonce, T0, COOKIE2), T0 + 2)).toMatchObject({ send: [], answered: false });
    expect(s.cookie).toEqual(COOKIE);
  });

  test('JOINED: the joined event with channels and expiry; no retry is left', () => {
    const s = session();
    const nonce = nonceOf(s.start(T0));
    s.receive(cookie(nonce, T0 + 5), T0 + 5);
    const channels = [
      { name: 'main', tsi: 7 },
      { name: 'hd', tsi: 9 },
    ];
    const out = s.receive(joined(T0 + 30_010, channels), T0 + 10);
    expect(out.answered).toBe(true);
    expect(out.send).toEqual([]);
    expect(out.events).toEqual([{ type: 'joined', channels, expiresAtMs: T0 + 30_010 }]);
    expect(s.phase).toBe('joined');
    expect(s.joined).toBe(true);
    // The renewal is the only deadline.
    expect(s.nextDeadline()).toBe(T0 + 10 + 15_000);
  });

  test('a JOINED not awaited is not an answer', () => {
    const s = session();
    s.start(T0);
    expect(s.receive(joined(T0 + 30_000), T0 + 1)).toEqual({ send: [], events: [], answered: false, ignored: false });
    expect(s.joined).toBe(false);
  });

  test('a JOINED with no channel is a refusal', () => {
    const s = session();
    const nonce = nonceOf(s.start(T0));
    s.receive(cookie(nonce, T0), T0 + 1);
    const out = s.receive(joined(T0 + 30_000, []), T0 + 2);
    expect(out.events).toHaveLength(1);
    const e = out.events[0];
    expect(e.type).toBe('refused');
    if (e.type === 'refused') {
      expect(e.error).toBeInstanceOf(JoinRefusedError);
      expect(e.error.serverCode).toBe(ErrorCode.Internal);
    }
    expect(s.nextDeadline()).toBeUndefined();
  });

  test.each([ErrorCode.UnknownChannel, ErrorCode.TooManyChannels, ErrorCode.BadTime, ErrorCode.Internal])(
    'ERROR %i in answer to JOIN is a refusal with the server code and reason; the session ends',
    (code) => {
      const s = session();
      const nonce = nonceOf(s.start(T0));
      s.receive(cookie(nonce, T0), T0 + 1);
      const out = s.receive(error(code, 'unknown channel nosuch'), T0 + 2);
      expect(out.answered).toBe(true);
      const e = out.events[0];
      expect(e.type).toBe('refused');
      if (e.type === 'refused') {
        expect(e.error.serverCode).toBe(code);
        expect(e.error.serverReason).toBe('unknown channel nosuch');
      }
      expect(s.nextDeadline()).toBeUndefined();
      expect(s.tick(T0 + 60_000).send).toEqual([]);
      expect(s.receive(joined(T0 + 30_000), T0 + 3).events).toEqual([]);
    },
  );

  test('an ERROR that answers no JOIN is a warning', () => {
    const s = joinedSession();
    const out = s.receive(error(ErrorCode.UnknownChannel, 'x'), T0 + 100);
    expect(out).toEqual({ send: [], events: [{ type: 'warning', message: 'server error 3: x' }], answered: true, ignored: false });
    expect(s.joined).toBe(true);
  });
});

describe('ClientSession: renewal', () => {
  test('renews at exactly half the granted time after JOINED, on the server clock', () => {
    // The server's clock runs 5 s ahead; it grants 30 s from its now.
    const s = session();
    const nonce = nonceOf(s.start(T0));
    s.receive(cookie(nonce, T0 + 5_000 + 5), T0 + 5);
    s.receive(joined(T0 + 5_000 + 10 + 30_000), T0 + 10);
    expect(s.nextDeadline()).toBe(T0 + 10 + 15_000);
    expect(s.tick(T0 + 10 + 14_999).send).toEqual([]);
    // A fresh cookie first (the server keeps no session past its JOIN's cookie), then the JOIN.
    const join = renew(s, T0 + 10 + 15_000, COOKIE2, T0 + 5_000 + 10 + 15_000);
    expect(join).toMatchObject({ type: MessageType.Join, cookie: COOKIE2, until: { kind: 'duration', ms: 30_000 } });
  });

  test('while the renewal fetches a fresh cookie, ACK and LEAVE keep the old one', () => {
    const s = joinedSession();
    nonceOf(s.tick(T0 + 10 + 15_000));
    expect(s.cookie).toEqual(COOKIE);
    expect(s.joined).toBe(true);
    expect(s.leave(T0 + 10 + 15_001).send).toEqual([{ type: MessageType.Leave, cookie: COOKIE }]);
  });

  test('the granted time is what the server says, not the ttl asked for', () => {
    // Asked 30 s, granted 10 s (the server's maximum).
    const s = joinedSession({}, 0, 10_000);
    expect(s.nextDeadline()).toBe(T0 + 10 + 5_000);
  });

  test('a renewal goes out no earlier than 100 ms after JOINED', () => {
    const s = joinedSession({ ttlMs: 150 }, 0, 150);
    expect(s.nextDeadline()).toBe(T0 + 10 + 100);
  });

  test('the JOINED of a renewal: renewed event, the next renewal at half the new grant; renewal retries like any JOIN', () => {
    const s = joinedSession();
    const at = T0 + 10 + 15_000;
    expect(renew(s, at).type).toBe(MessageType.Join);
    // Unanswered: retried after 250 ms.
    expect(s.nextDeadline()).toBe(at + 1 + 250);
    expect(only(s.tick(at + 1 + 250)).type).toBe(MessageType.Join);
    const out = s.receive(joined(at + 300 + 30_000), at + 300);
    expect(out.events).toEqual([{ type: 'renewed', expiresAtMs: at + 300 + 30_000 }]);
    expect(s.nextDeadline()).toBe(at + 300 + 15_000);
    expect(s.phase).toBe('joined');
  });
});

describe('ClientSession: cookie refresh', () => {
  test.each([ErrorCode.BadCookie, ErrorCode.CookieExpired])('ERROR %i on a renewal: HELLO with a new nonce, then JOIN with the new cookie', (code) => {
    const s = joinedSession();
    const at = T0 + 10 + 15_000;
    renew(s, at, COOKIE);
    const hello = s.receive(error(code), at + 20);
    const nonce = nonceOf(hello);
    expect(nonce).toEqual(new Uint8Array(8).fill(3));
    expect(s.cookie).toBeUndefined();
    // Still joined: the data keeps flowing meanwhile.
    expect(s.joined).toBe(true);
    expect(s.nextDeadline()).toBe(at + 20 + 250);
    const join = only(s.receive(cookie(nonce, at + 40, COOKIE2), at + 40));
    expect(join).toMatchObject({ type: MessageType.Join, cookie: COOKIE2 });
    expect(s.receive(joined(at + 50 + 30_000), at + 50).events).toEqual([{ type: 'renewed', expiresAtMs: at + 50 + 30_000 }]);
  });

  test('a HELLO retried during a refresh keeps its nonce', () => {
    const s = joinedSession();
    const nonce = nonceOf(s.receive(error(ErrorCode.BadCookie), T0 + 100));
    expect(nonceOf(s.tick(T0 + 100 + 250))).toEqual(nonce);
    expect(only(s.receive(cookie(nonce, T0 + 400), T0 + 400)).type).toBe(MessageType.Join);
  });

  test('a burst of CookieExpired (one per ACK in flight) is one refresh', () => {
    const s = joinedSession();
    expect(s.receive(error(ErrorCode.CookieExpired), T0 + 100).send).toHaveLength(1);
    for (let i = 0; i < 6; i++) {
      const out = s.receive(error(ErrorCode.CookieExpired), T0 + 101 + i);
      expect(out.send).toEqual([]);
      expect(out.events).toEqual([]);
      expect(out.answered).toBe(true);
    }
  });

  test(`more than ${MAX_COOKIE_REFRESHES} refreshes in a row is a refusal; a JOINED resets the count`, () => {
    const s = session();
    let nonce = nonceOf(s.start(T0));
    let now = T0;
    const refreshOnce = (): SessionOutput => {
      s.receive(cookie(nonce, now), ++now);
      return s.receive(error(ErrorCode.BadCookie, 'bad'), ++now);
    };
    for (let i = 0; i < MAX_COOKIE_REFRESHES; i++) nonce = nonceOf(refreshOnce());
    // A JOINED in between starts the count again.
    s.receive(cookie(nonce, now), ++now);
    s.receive(joined(now + 30_000), ++now);
    now = s.nextDeadline() as number;
    renew(s, now);
    now += 2;
    nonce = nonceOf(s.receive(error(ErrorCode.BadCookie), now));
    for (let i = 1; i < MAX_COOKIE_REFRESHES; i++) nonce = nonceOf(refreshOnce());
    const out = refreshOnce();
    expect(out.send).toEqual([]);
    const e = out.events[0];
    expect(e.type).toBe('refused');
    if (e.type === 'refused') expect(e.error.serverCode).toBe(ErrorCode.BadCookie);
  });

  test('a renewal due while no cookie is held asks for one (HELLO)', () => {
    const s = joinedSession();
    // Cookie refused: HELLO out; it goes unanswered until the renewal is due.
    const nonce = nonceOf(s.receive(error(ErrorCode.BadCookie), T0 + 20));
    let hello = 0;
    for (let t = s.nextDeadline() as number; t <= T0 + 10 + 15_000; t = s.nextDeadline() as number) {
      const out = s.tick(t);
      for (const m of out.send) if (m.type === MessageType.Hello) hello++;
      if (t === T0 + 10 + 15_000) expect(nonceOf(out)).not.toEqual(nonce);
    }
    expect(hello).toBeGreaterThan(1);
  });
});

describe('ClientSession: not joined', () => {
  test('ERROR NotJoined while joined: JOIN again at once', () => {
    const s = joinedSession();
    const out = s.receive(error(ErrorCode.NotJoined), T0 + 500);
    expect(only(out)).toMatchObject({ type: MessageType.Join, cookie: COOKIE });
    expect(s.nextDeadline()).toBe(T0 + 500 + 250);
    // Its JOINED is a renewal: the channels stay those of the first.
    expect(s.receive(joined(T0 + 600 + 30_000), T0 + 600).events).toEqual([{ type: 'renewed', expiresAtMs: T0 + 600 + 30_000 }]);
  });

  test('ERROR NotJoined while a JOIN is out changes nothing (the JOIN is its answer)', () => {
    const s = session();
    const nonce = nonceOf(s.start(T0));
    s.receive(cookie(nonce, T0), T0 + 1);
    const out = s.receive(error(ErrorCode.NotJoined), T0 + 2);
    expect(out.send).toEqual([]);
    expect(out.events).toEqual([]);
    expect(s.nextDeadline()).toBe(T0 + 1 + 250);
  });
});

describe('ClientSession: --until', () => {
  test('JOIN carries the absolute time in server-clock terms', () => {
    const until = T0 + 60_000;
    const s = session({ untilMs: until });
    const nonce = nonceOf(s.start(T0));
    const join = only(s.receive(cookie(nonce, T0 + 5 - 3_000), T0 + 5)) as JoinMessage;
    expect(join.until).toEqual({ kind: 'absolute', unixMs: until - 3_000 });
  });

  test('granted whole: no renewal; the session expires at exactly the --until time', () => {
    const until = T0 + 60_000;
    const s = session({ untilMs: until });
    const nonce = nonceOf(s.start(T0));
    s.receive(cookie(nonce, T0 + 5 + 2_000), T0 + 5);
    s.receive(joined(until + 2_000), T0 + 10);
    expect(s.nextDeadline()).toBe(until);
    expect(s.tick(until - 1).events).toEqual([]);
    const out = s.tick(until);
    expect(out.send).toEqual([]);
    expect(out.events).toHaveLength(1);
    const e = out.events[0];
    expect(e.type).toBe('expired');
    if (e.type === 'expired') {
      expect(e.error).toBeInstanceOf(FetchTimeoutError);
      expect(e.error.message).toMatch(/until/);
    }
    expect(s.nextDeadline()).toBeUndefined();
  });

  test('granted less (the server caps it): renewal at half the grant, with the same absolute time', () => {
    const until = T0 + 600_000;
    const s = session({ untilMs: until });
    const nonce = nonceOf(s.start(T0));
    s.receive(cookie(nonce, T0 + 5), T0 + 5);
    s.receive(joined(T0 + 10 + 60_000), T0 + 10);
    expect(s.nextDeadline()).toBe(T0 + 10 + 30_000);
    expect(renew(s, T0 + 10 + 30_000, COOKIE2, T0 + 10 + 30_000 + 1)).toMatchObject({ until: { kind: 'absolute', unixMs: until } });
  });

  test('the --until time ends the session even while HELLO goes unanswered', () => {
    const s = session({ untilMs: T0 + 1_000 });
    s.start(T0);
    const seen: string[] = [];
    for (let t = s.nextDeadline(); t !== undefined; t = s.nextDeadline()) {
      const out = s.tick(t);
      seen.push(`${t - T0}:${out.send.length ? 'HELLO' : out.events.map((e) => e.type).join()}`);
    }
    expect(seen).toEqual(['250:HELLO', '750:HELLO', '1000:expired']);
  });

  test('the --until time still ends a session that has left (the files are not verified yet)', () => {
    const until = T0 + 60_000;
    const s = session({ untilMs: until });
    const nonce = nonceOf(s.start(T0));
    s.receive(cookie(nonce, T0), T0 + 5);
    s.receive(joined(until), T0 + 10);
    s.leave(T0 + 20);
    expect(s.nextDeadline()).toBe(until);
    expect(s.tick(until).events.map((e) => e.type)).toEqual(['expired']);
  });
});

describe('ClientSession: LEAVE', () => {
  test('LEAVE with the cookie, once; no retries or renewals after it; what arrives is ignored', () => {
    const s = joinedSession();
    const out = s.leave(T0 + 100);
    expect(out.send).toEqual([{ type: MessageType.Leave, cookie: COOKIE }]);
    expect(out.events).toEqual([{ type: 'left' }]);
    expect(s.left).toBe(true);
    expect(s.nextDeadline()).toBeUndefined();
    expect(s.leave(T0 + 101).send).toEqual([]);
    expect(s.receive(error(ErrorCode.NotJoined), T0 + 102)).toEqual({ send: [], events: [], answered: false, ignored: false });
  });

  test('nothing to leave before JOINED, or without a cookie', () => {
    const s = session();
    const nonce = nonceOf(s.start(T0));
    expect(s.leave(T0 + 1).send).toEqual([]);
    s.receive(cookie(nonce, T0), T0 + 2);
    expect(s.leave(T0 + 3).send).toEqual([]);
    s.receive(joined(T0 + 30_000), T0 + 4);
    s.receive(error(ErrorCode.BadCookie), T0 + 5);
    expect(s.leave(T0 + 6).send).toEqual([]);
    expect(s.left).toBe(false);
  });

  test('a refused session still says LEAVE if it was joined (the refusal of a renewal)', () => {
    const s = joinedSession();
    renew(s, T0 + 10 + 15_000);
    expect(s.receive(error(ErrorCode.UnknownChannel), T0 + 15_020).events[0].type).toBe('refused');
    expect(s.leave(T0 + 15_030).send).toEqual([{ type: MessageType.Leave, cookie: COOKIE2 }]);
  });

  test('close(): no deadline, no output, no start', () => {
    const s = joinedSession({ untilMs: T0 + 90_000 });
    s.close();
    expect(s.nextDeadline()).toBeUndefined();
    expect(s.tick(T0 + 100_000)).toEqual({ send: [], events: [], answered: false, ignored: false });
    expect(s.receive(joined(T0 + 30_000), T0 + 20).events).toEqual([]);
    const fresh = session();
    fresh.close();
    expect(fresh.start(T0).send).toEqual([]);
  });
});
