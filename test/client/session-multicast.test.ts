/**
 * ClientSession and multicast (docs/PROTOCOL.md §4.5, §6.2, §10.10), on a
 * fake clock: the JOIN's multicast bits, the fallback's JOIN with a bit
 * cleared, and JOINEDs that answer an earlier JOIN.
 */
import { ClientSession, ClientSessionConfig, MAX_STALE_JOINED, SessionOutput } from '../../lib/client/session';
import { ControlMessage, JoinedChannel, JoinMessage, MessageType } from '../../lib/protocol/messages';
import { decodeControl, encodeControl } from '../../lib/protocol/control';

const T0 = 1_700_000_000_000;
const COOKIE = new Uint8Array(16).fill(7);
const GROUP = { group: '232.1.1.1', port: 5000, source: '192.0.2.1' };

function session(o: Partial<ClientSessionConfig> = {}): ClientSession {
  return new ClientSession({ channels: ['main', 'hd'], ttlMs: 30_000, ack: false, retryMs: 250, nonce: () => new Uint8Array(8).fill(1), ...o });
}

function joins(out: SessionOutput): JoinMessage[] {
  return out.send.filter((m): m is JoinMessage => m.type === MessageType.Join);
}

function joined(channels: JoinedChannel[], expiresAtMs = T0 + 30_000): ControlMessage {
  return { type: MessageType.Joined, channels, expiresAtMs };
}

/** main and hd, each with a group; `unicast` names those the server now also sends by unicast. */
function withGroups(unicast: string[] = []): JoinedChannel[] {
  return ['main', 'hd'].map((name, i) => ({ name, tsi: i + 1, multicast: { ...GROUP, port: 5000 + i, unicast: unicast.includes(name) } }));
}

/** Runs HELLO/COOKIE; returns the first JOIN. */
function firstJoin(s: ClientSession): JoinMessage {
  s.start(T0);
  const out = s.receive({ type: MessageType.Cookie, nonce: new Uint8Array(8).fill(1), cookie: COOKIE, serverTimeMs: T0 }, T0 + 5);
  const j = joins(out);
  expect(j).toHaveLength(1);
  return j[0];
}

function joinedSession(o: Partial<ClientSessionConfig> = {}): ClientSession {
  const s = session(o);
  firstJoin(s);
  // §6.2: the channels the JOIN did not flag come with the UNICAST flag.
  const flagged = o.multicast ?? [];
  expect(s.receive(joined(withGroups(['main', 'hd'].filter((c) => !flagged.includes(c)))), T0 + 10).events[0]).toMatchObject({ type: 'joined' });
  return s;
}

describe('ClientSession: the JOIN multicast bits', () => {
  test('every channel flagged (transport auto or multicast): the bitmap in channel order, on the wire too', () => {
    const j = firstJoin(session({ multicast: ['hd', 'main'] }));
    expect(j.multicast).toEqual(['main', 'hd']);
    const d = decodeControl(encodeControl(j));
    expect(d.ok && d.msg).toMatchObject({ type: MessageType.Join, channels: ['main', 'hd'], multicast: ['main', 'hd'] });
  });

  test('none flagged (transport udp): no bitmap at all, the first version of JOIN byte for byte', () => {
    for (const multicast of [undefined, []]) {
      const j = firstJoin(session({ multicast }));
      expect(j.multicast).toBeUndefined();
      const plain = firstJoin(session());
      expect(Buffer.from(encodeControl(j)).equals(Buffer.from(encodeControl(plain)))).toBe(true);
    }
  });

  test('a name that is not joined is not flagged', () => {
    expect(firstJoin(session({ multicast: ['main', 'nope'] })).multicast).toEqual(['main']);
  });
});

describe('ClientSession.useUnicast (the fallback)', () => {
  test('while joined: a JOIN at once with that bit cleared, retried on the usual backoff until JOINED', () => {
    const s = joinedSession({ multicast: ['main', 'hd'] });
    const out = s.useUnicast('hd', T0 + 1000);
    expect(joins(out)).toEqual([expect.objectContaining({ channels: ['main', 'hd'], multicast: ['main'], cookie: COOKIE })]);
    expect(s.multicast).toEqual(['main']);
    expect(s.nextDeadline()).toBe(T0 + 1000 + 250);
    expect(joins(s.tick(T0 + 1250))[0].multicast).toEqual(['main']);
    expect(s.nextDeadline()).toBe(T0 + 1250 + 500);
    const taken = s.receive(joined(withGroups(['hd'])), T0 + 1300);
    expect(taken.events).toEqual([{ type: 'renewed', expiresAtMs: T0 + 30_000 }]);
    // The retry is over; the renewal is at half the grant, on the server's clock (5 ms behind: COOKIE said T0 at T0 + 5).
    expect(s.nextDeadline()).toBe(T0 + 1300 + Math.floor((30_000 - (1300 - 5)) / 2));
  });

  test('the last bit cleared: a JOIN with no bitmap; renewals keep it so', () => {
    const s = joinedSession({ multicast: ['main'] });
    expect(joins(s.useUnicast('main', T0 + 100))[0].multicast).toBeUndefined();
    s.receive(joined(withGroups(['main', 'hd'])), T0 + 110);
    // The renewal: a fresh cookie first, then the JOIN.
    const at = s.nextDeadline() as number;
    const hello = s.tick(at).send[0];
    if (hello.type !== MessageType.Hello) throw new Error('expected HELLO');
    const renewal = joins(s.receive({ type: MessageType.Cookie, nonce: hello.nonce, cookie: new Uint8Array(16).fill(9), serverTimeMs: at }, at + 1));
    expect(renewal).toHaveLength(1);
    expect(renewal[0].multicast).toBeUndefined();
  });

  test('a channel whose bit is clear, or after LEAVE, or after close: nothing', () => {
    const s = joinedSession({ multicast: ['main'] });
    expect(s.useUnicast('hd', T0 + 100).send).toEqual([]);
    s.leave(T0 + 200);
    expect(s.useUnicast('main', T0 + 300).send).toEqual([]);
    const c = joinedSession({ multicast: ['main'] });
    c.close();
    expect(c.useUnicast('main', T0 + 300).send).toEqual([]);
  });

  test('while a new cookie is fetched: nothing now, the JOIN after COOKIE carries the cleared bit', () => {
    const s = session({ multicast: ['main', 'hd'] });
    s.start(T0);
    expect(s.useUnicast('main', T0 + 1).send).toEqual([]);
    const out = s.receive({ type: MessageType.Cookie, nonce: new Uint8Array(8).fill(1), cookie: COOKIE, serverTimeMs: T0 }, T0 + 5);
    expect(joins(out)[0].multicast).toEqual(['hd']);
  });

  test('a JOINED still without the UNICAST flag answers an earlier JOIN: not taken, the retry goes on', () => {
    const s = joinedSession({ multicast: ['main', 'hd'] });
    s.useUnicast('main', T0 + 1000);
    const stale = s.receive(joined(withGroups([])), T0 + 1010);
    expect(stale.events).toEqual([]);
    expect(stale.answered).toBe(true);
    expect(s.nextDeadline()).toBe(T0 + 1250);
    expect(joins(s.tick(T0 + 1250))[0].multicast).toEqual(['hd']);
    // Channels without a group in JOINED never make it stale.
    const noGroups = s.receive(joined([{ name: 'main', tsi: 1 }, { name: 'hd', tsi: 2 }]), T0 + 1260);
    expect(noGroups.events).toEqual([{ type: 'renewed', expiresAtMs: T0 + 30_000 }]);
  });

  test(`after ${MAX_STALE_JOINED} such JOINEDs in a row the next is taken, with a warning (a server that will not send unicast)`, () => {
    const s = joinedSession({ multicast: ['main', 'hd'] });
    s.useUnicast('main', T0 + 1000);
    for (let i = 0; i < MAX_STALE_JOINED; i++) expect(s.receive(joined(withGroups([])), T0 + 1001 + i).events).toEqual([]);
    const out = s.receive(joined(withGroups([])), T0 + 1100);
    expect(out.events).toEqual([
      { type: 'warning', message: expect.stringMatching(/no unicast stream/) },
      { type: 'renewed', expiresAtMs: T0 + 30_000 },
    ]);
  });
});
