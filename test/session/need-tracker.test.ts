/**
 * NEED at the client manager (docs/PROTOCOL.md §4.11, §7a) and the stream
 * behind it: who may report, how often, and what a report may claim. Every
 * hostile variant dropped or clamped, and counted.
 */
import { encodeControl } from '../../lib/protocol/control';
import { ErrorCode, type JoinMessage, MessageType, type NeedEntry, type NeedMessage } from '../../lib/protocol/messages';
import { ClientManager, type Source } from '../../lib/session/client-manager';
import { staticChannelDirectory } from '../../lib/session/channel-directory';
import { CookieAuthority } from '../../lib/session/cookie';
import { NeedTracker } from '../../lib/session/need-tracker';
import { type Peer, peerKey, udpPeer } from '../../lib/session/peer';
import { ChannelStream } from '../../lib/stream/channel-stream';
import { SymbolAllocator } from '../../lib/content/symbol-allocator';
import { ObjectEncoder } from '../../lib/fec/encoder';

const NOW = 1_764_072_000_000;
const alice = udpPeer('192.0.2.1', 5000);
const mallory = udpPeer('192.0.2.66', 5000);
const from = (p: Peer): Source => ({ ...p, bytesReceived: 300 });

function rig(): { manager: ClientManager; cookies: CookieAuthority } {
  const cookies = new CookieAuthority({ masterSecret: new Uint8Array(32).fill(9), rotationPeriodMs: 60_000 });
  const manager = new ClientManager({
    cookies,
    channels: staticChannelDirectory([
      { name: 'a', tsi: 1 },
      { name: 'g', tsi: 2, multicast: { group: '239.1.1.1', port: 5000 } },
    ]),
    encodedSize: (m) => encodeControl(m).length,
    need: { perSecond: 100, burst: 5 },
  });
  return { manager, cookies };
}

const join = (cookie: Uint8Array, channels: string[], multicast?: string[]): JoinMessage => ({
  type: MessageType.Join,
  cookie,
  channels,
  until: { kind: 'duration', ms: 10_000 },
  ack: false,
  ...(multicast ? { multicast } : {}),
});
const need = (cookie: Uint8Array, tsi = 1, entries: NeedEntry[] = [{ toi: 1, firstSbn: 0, lastSbn: 0, need: 5 }]): NeedMessage => ({
  type: MessageType.Need,
  cookie,
  tsi,
  rqseq: 10,
  loss: 0,
  entries,
});

describe('NEED at the client manager', () => {
  test('a member\'s NEED on its unicast channel goes to the stream (a need command)', () => {
    const { manager, cookies } = rig();
    const cookie = cookies.issue(alice.address, alice.port, NOW);
    manager.handle(join(cookie, ['a']), from(alice), NOW);
    const out = manager.handle(need(cookie), from(alice), NOW);
    expect(out.commands).toEqual([{ kind: 'need', channel: 'a', tsi: 1, member: alice, report: need(cookie) }]);
    expect(manager.counters.needReceived).toBe(1);
  });

  test('a NEED with another member\'s cookie (from another address) is refused as a bad cookie; nothing reaches the stream', () => {
    const { manager, cookies } = rig();
    const cookie = cookies.issue(alice.address, alice.port, NOW);
    manager.handle(join(cookie, ['a']), from(alice), NOW);
    const out = manager.handle(need(cookie), from(mallory), NOW);
    expect(out.commands).toEqual([]);
    expect(out.replies.map((r) => r.message)).toEqual([{ type: MessageType.Error, code: ErrorCode.BadCookie, reason: 'bad cookie' }]);
    expect(manager.counters.cookieWrongAddress).toBe(1);
  });

  test('no session → NotJoined; a channel not its own, or one it receives from its group → ignored; each counted', () => {
    const { manager, cookies } = rig();
    const cookie = cookies.issue(alice.address, alice.port, NOW);
    let out = manager.handle(need(cookie), from(alice), NOW);
    expect(out.replies[0].message).toMatchObject({ type: MessageType.Error, code: ErrorCode.NotJoined });
    manager.handle(join(cookie, ['a', 'g'], ['g']), from(alice), NOW);
    out = manager.handle(need(cookie, 7), from(alice), NOW);
    expect(out.commands).toEqual([]);
    out = manager.handle(need(cookie, 2), from(alice), NOW);
    expect(out.commands).toEqual([]);
    expect(manager.counters).toMatchObject({ needNotJoined: 1, needUnknownChannel: 1, needGroupChannel: 1 });
  });

  test('a flood: beyond the burst, reports go through at the rate only; the rest dropped and counted', () => {
    const { manager, cookies } = rig();
    const cookie = cookies.issue(alice.address, alice.port, NOW);
    manager.handle(join(cookie, ['a']), from(alice), NOW);
    let through = 0;
    for (let i = 0; i < 1000; i++) through += manager.handle(need(cookie), from(alice), NOW).commands.length;
    expect(through).toBe(5);
    // 40 ms later at 100 per second: 4 more.
    for (let i = 0; i < 1000; i++) through += manager.handle(need(cookie), from(alice), NOW + 40).commands.length;
    expect(through).toBe(9);
    // However long the pause, no more than the burst at once.
    for (let i = 0; i < 1000; i++) through += manager.handle(need(cookie), from(alice), NOW + 5_000).commands.length;
    expect(through).toBe(14);
    expect(manager.counters.needTooFrequent).toBe(3000 - 14);
  });

  test('the tracker\'s state goes with the channel and the client', () => {
    const t = new NeedTracker<string>({ perSecond: 1, burst: 1 });
    expect(t.admit('x', 1, 0)).toBe(true);
    expect(t.admit('x', 1, 0)).toBe(false);
    t.admit('x', 2, 0);
    t.admit('y', 1, 0);
    expect(t.size).toBe(3);
    t.dropChannel('x', 1);
    expect(t.size).toBe(2);
    expect(t.admit('x', 1, 0)).toBe(true); // a fresh bucket after a JOIN that dropped the channel
    t.dropClient('x');
    t.dropClient('y');
    expect(t.size).toBe(0);
  });
});

describe('the cookie of a session\'s reports, remembered (ClientManager, per session)', () => {
  test('a session\'s NEEDs with one cookie verify it once; each still reaches the stream', () => {
    const { manager, cookies } = rig();
    const verify = jest.spyOn(cookies, 'verify');
    const cookie = cookies.issue(alice.address, alice.port, NOW);
    manager.handle(join(cookie, ['a']), from(alice), NOW);
    let commands = 0;
    // 5 a second in the long run (rig's bucket: burst 5, 100 per second): one every 20 ms passes.
    for (let i = 1; i <= 20; i++) commands += manager.handle(need(cookie), from(alice), NOW + 20 * i).commands.length;
    expect(commands).toBe(20);
    expect(verify).toHaveBeenCalledTimes(2); // the JOIN's, and the first NEED's
  });

  test('a remembered cookie stops passing at its expiry: refused as expired, nothing reaches the stream', () => {
    const { manager, cookies } = rig();
    const cookie = cookies.issue(alice.address, alice.port, NOW); // lifetime 60 s
    manager.handle(join(cookie, ['a']), from(alice), NOW);
    expect(manager.handle(need(cookie), from(alice), NOW + 1_000).commands).toHaveLength(1);
    const out = manager.handle(need(cookie), from(alice), NOW + 60_000);
    expect(out.commands).toEqual([]);
    expect(out.replies.map((r) => r.message)).toEqual([{ type: MessageType.Error, code: ErrorCode.CookieExpired, reason: 'cookie expired' }]);
    expect(manager.counters.cookieExpired).toBe(1);
  });

  test('other bytes from the session\'s own address are verified: a forged cookie is refused though one was remembered', () => {
    const { manager, cookies } = rig();
    const cookie = cookies.issue(alice.address, alice.port, NOW);
    manager.handle(join(cookie, ['a']), from(alice), NOW);
    expect(manager.handle(need(cookie), from(alice), NOW + 10).commands).toHaveLength(1);
    const forged = Uint8Array.from(cookie);
    forged[forged.length - 1] ^= 0x01;
    const out = manager.handle(need(forged), from(alice), NOW + 20);
    expect(out.commands).toEqual([]);
    expect(out.replies.map((r) => r.message)).toEqual([{ type: MessageType.Error, code: ErrorCode.BadCookie, reason: 'bad cookie' }]);
    // And the remembered one still passes after it.
    expect(manager.handle(need(cookie), from(alice), NOW + 40).commands).toHaveLength(1);
  });

  test('another peer with the session\'s cookie is not the session: verified, and refused (wrong address)', () => {
    const { manager, cookies } = rig();
    const cookie = cookies.issue(alice.address, alice.port, NOW);
    manager.handle(join(cookie, ['a']), from(alice), NOW);
    manager.handle(need(cookie), from(alice), NOW + 10);
    const out = manager.handle(need(cookie), from(udpPeer(alice.address, alice.port + 1)), NOW + 20);
    expect(out.commands).toEqual([]);
    expect(manager.counters.cookieWrongAddress).toBe(1);
  });

  test('after a LEAVE the cookie is spent: a report with it is refused, though it was remembered', () => {
    const { manager, cookies } = rig();
    const cookie = cookies.issue(alice.address, alice.port, NOW);
    manager.handle(join(cookie, ['a']), from(alice), NOW);
    manager.handle(need(cookie), from(alice), NOW + 10);
    manager.handle({ type: MessageType.Leave, cookie }, from(alice), NOW + 20);
    const out = manager.handle(need(cookie), from(alice), NOW + 40);
    expect(out.commands).toEqual([]);
    expect(manager.counters.cookieSpent).toBe(1);
  });
});

describe('NEED at the stream (ChannelStream.reportNeed)', () => {
  // Two objects: TOI 1 of 3 blocks, TOI 2 of 1 block; T = 16.
  let blocksOfToi1 = 0;
  function stream(): ChannelStream {
    const objects = [
      { toi: 1, bytes: 3 * 16 * 40 },
      { toi: 2, bytes: 16 * 10 },
    ].map(({ toi, bytes }) => {
      const encoder = new ObjectEncoder(new Uint8Array(bytes).fill(toi), { symbolSize: 16, maxSubBlockSize: 16 * 40 });
      if (toi === 1) blocksOfToi1 = encoder.sourceBlocks;
      return { toi, encoder, allocator: SymbolAllocator.forEncoder(encoder, 'coded') };
    });
    const fdtEncoder = new ObjectEncoder(new Uint8Array(100), { symbolSize: 16 });
    return new ChannelStream({
      tsi: 1,
      objects,
      fdt: { instanceId: 1, encoder: fdtEncoder, allocator: SymbolAllocator.forEncoder(fdtEncoder, 'coded'), oti: { transferLength: 100, symbolSize: 16, sourceBlocks: 1, subBlocks: 1, alignment: 4 } },
      windowBlocks: 1,
      needs: true,
    });
  }

  test('unknown TOIs and SBNs are ignored, needs above K taken as K; both counted; a non-member\'s report is not applied', () => {
    const s = stream();
    const report = {
      rqseq: 0,
      loss: 0,
      entries: [
        { toi: 1, firstSbn: 0, lastSbn: 1, need: 60000 },
        { toi: 1, firstSbn: 2, lastSbn: 9, need: 3 },
        { toi: 2, firstSbn: 0, lastSbn: 0, need: 0 },
        { toi: 77, firstSbn: 0, lastSbn: 4, need: 1 },
      ],
    };
    expect(s.reportNeed(peerKey(alice), report).applied).toBe(false);
    s.expectNeed(peerKey(alice));
    const v = s.reportNeed(peerKey(alice), report);
    expect(blocksOfToi1).toBeGreaterThanOrEqual(3);
    // SBNs 2..9 of TOI 1 past its last block, and all 5 of TOI 77.
    const unknown = 10 - blocksOfToi1 + 5;
    expect(v).toEqual({ applied: true, unknownBlocks: unknown, clamped: 2 });
    expect(s.counters).toMatchObject({ needReports: 1, needUnknownBlocks: 2 * unknown, needClamped: 4 }); // the non-member's report counted too
    s.forgetNeed(peerKey(alice));
    expect(s.reportNeed(peerKey(alice), report).applied).toBe(false);
    s.close();
  });
});
