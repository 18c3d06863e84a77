/**
 * FluteReceiver over a scripted socket (no namespace needed; the real
 * group sockets are in multicast.test.ts): decoding from what the group
 * hands over, the URL's TSI and source, leaving and joining, the timeout
 * (fake clock) and how it ends.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FetchAbortedError, FetchTimeoutError, InvalidClientOptionError, InvalidUrlError } from '../../lib/client/errors';
import { FluteReceiver, FluteReceiverOptions } from '../../lib/client/flute-receiver';
import { Rng } from '../../lib/support/rng';
import { MembershipSocketError } from '../../lib/transport/multicast/membership-errors';
import type { MembershipSocket, MembershipSocketHandler, MembershipSocketOptions, MembershipTarget } from '../../lib/transport/multicast/membership-socket';
import { GroupSender } from './group-sender';
import { datagrams } from './support';

const SOURCE = '192.0.2.1';

function bytes(n: number, seed: number): Buffer {
  const rng = new Rng(seed);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(rng.unit() * 256)));
}
const A = bytes(20_000, 1);
const B = bytes(3_000, 2);

class Socket implements MembershipSocket {
  readonly port = 5000;
  handler!: MembershipSocketHandler;
  options!: MembershipSocketOptions;
  readonly calls: string[] = [];
  addMembership(group: string, t: MembershipTarget): void {
    this.calls.push(`add ${group} ${t.source ?? '*'}`);
  }
  dropMembership(group: string, t: MembershipTarget): void {
    this.calls.push(`drop ${group} ${t.source ?? '*'}`);
  }
  async close(): Promise<void> {
    this.calls.push('close');
  }
  /** Hands `packets` over as one delivery from `from`. */
  deliver(packets: Uint8Array[], from = SOURCE): void {
    this.handler.onDatagrams(datagrams(packets.map((b) => ({ bytes: b, address: from, port: 40_000 }))));
  }
}

let dir: string;
const senders: GroupSender[] = [];
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-flute-rx-'));
});
afterEach(async () => {
  jest.useRealTimers();
  for (const s of senders.splice(0)) s.close();
  await fs.rm(dir, { recursive: true, force: true });
});

function receiver(url: string, o: FluteReceiverOptions = {}): { rx: FluteReceiver; sock: Socket } {
  const sock = new Socket();
  const rx = new FluteReceiver(url, {
    outputDir: dir,
    openSocket: async (opts, h) => {
      sock.options = opts;
      sock.handler = h;
      return sock;
    },
    ...o,
  });
  return { rx, sock };
}

function sender(tsi: number, garbage = false): GroupSender {
  const s = new GroupSender({ objects: [{ name: 'a.bin', data: A }, { name: 'b/b.bin', data: B }], tsi, garbage });
  senders.push(s);
  return s;
}

const take = (s: GroupSender, n: number): Uint8Array[] => Array.from({ length: n }, () => s.next());

/** Delivers the session's packets, 32 at a time, until the receiver settles. */
async function stream(rx: FluteReceiver, sock: Socket, s: GroupSender, from = SOURCE) {
  let settled = false;
  const out = rx.done.then(
    (summary) => ({ summary }),
    (error: Error) => ({ error }),
  );
  void out.then(() => (settled = true));
  while (!settled) {
    sock.deliver(take(s, 32), from);
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

test('joins the group source-specifically on the group port, decodes every object of the FDT bit-exact, leaves and closes', async () => {
  const { rx, sock } = receiver(`flute://232.1.1.1:5000?tsi=7&source=${SOURCE}`);
  const joined: unknown[] = [];
  rx.on('joined', (j) => joined.push(j));
  await rx.start();
  expect(sock.options).toEqual({ family: 4, address: '232.1.1.1', port: 5000, receiveBufferBytes: 32 << 20 });
  expect(joined).toEqual([{ group: '232.1.1.1', port: 5000, tsi: 7, source: SOURCE }]);
  const r = await stream(rx, sock, sender(7));
  expect('error' in r ? r.error : undefined).toBeUndefined();
  expect((await fs.readFile(path.join(dir, 'a.bin'))).equals(A)).toBe(true);
  expect((await fs.readFile(path.join(dir, 'b', 'b.bin'))).equals(B)).toBe(true);
  const s = (r as { summary: import('../../lib/client/events').FetchSummary }).summary;
  expect(s.objects.map((o) => o.name).sort()).toEqual(['a.bin', 'b/b.bin']);
  expect(s.channels).toEqual([{ name: 'flute', tsi: 7, transport: 'multicast', group: '232.1.1.1:5000' }]);
  expect(s.multicastPackets).toBe(s.packetsReceived);
  // Joined once; left once everything decoded; closed at the end.
  expect(sock.calls).toEqual([`add 232.1.1.1 ${SOURCE}`, `drop 232.1.1.1 ${SOURCE}`, 'close']);
});

test('another source and another TSI never reach the decoders: counted as foreign', async () => {
  const { rx, sock } = receiver(`flute://[ff3e::1]:5000/a.bin?tsi=7&source=2001:db8::1`);
  await rx.start();
  sock.deliver(take(sender(7, true), 200), '2001:db8::2');
  sock.deliver(take(sender(8, true), 100), '2001:db8::1');
  expect(rx.stats.multicastForeign).toBe(300);
  expect(rx.stats.packetsReceived).toBe(0);
  const r = await stream(rx, sock, sender(7), '2001:db8::1');
  expect('summary' in r).toBe(true);
  expect((await fs.readFile(path.join(dir, 'a.bin'))).equals(A)).toBe(true);
  // Only the named object is written.
  await expect(fs.stat(path.join(dir, 'b'))).rejects.toThrow();
});

test('leaveGroup and joinGroup any number of times; what was held is kept', async () => {
  const { rx, sock } = receiver('flute://239.1.1.1:5000/a.bin?tsi=7');
  await rx.start();
  const s = sender(7);
  const held: number[] = [];
  for (let i = 0; i < 3; i++) {
    sock.deliver(take(s, 24));
    await new Promise((r) => setImmediate(r));
    held.push(rx.progress().heldSymbols);
    rx.leaveGroup();
    rx.leaveGroup();
    expect(rx.groupJoined).toBe(false);
    rx.joinGroup();
    rx.joinGroup();
    expect(rx.progress().heldSymbols).toBe(held[i]);
  }
  expect(held[0]).toBeGreaterThan(0);
  expect(held[1]).toBeGreaterThan(held[0]);
  expect(held[2]).toBeGreaterThan(held[1]);
  expect(rx.memberships).toBe(4);
  expect(sock.calls.slice(0, 7)).toEqual(['add 239.1.1.1 *', ...Array(3).fill(['drop 239.1.1.1 *', 'add 239.1.1.1 *']).flat()]);
  await stream(rx, sock, s);
  expect((await fs.readFile(path.join(dir, 'a.bin'))).equals(A)).toBe(true);
});

test('times out after timeoutMs joined without data, and never while left (fake clock)', async () => {
  jest.useFakeTimers({ now: 1_700_000_000_000 });
  const { rx } = receiver('flute://239.1.1.1:5000?tsi=7', { timeoutMs: 1000 });
  await rx.start();
  let error: unknown;
  rx.done.catch((e: unknown) => (error = e));
  rx.leaveGroup();
  await jest.advanceTimersByTimeAsync(10_000);
  expect(error).toBeUndefined();
  rx.joinGroup();
  await jest.advanceTimersByTimeAsync(1000);
  expect(error).toBeUndefined();
  // The check runs every 250 ms: the first one past 1000 ms ends it.
  await jest.advanceTimersByTimeAsync(250);
  expect(error).toBeInstanceOf(FetchTimeoutError);
});

test('close() aborts with FetchAbortedError and closes the socket', async () => {
  const { rx, sock } = receiver('flute://239.1.1.1:5000?tsi=7');
  await rx.start();
  rx.close();
  await expect(rx.done).rejects.toBeInstanceOf(FetchAbortedError);
  expect(sock.calls).toEqual(['add 239.1.1.1 *', 'close']);
  await expect(rx.fetch()).rejects.toBeInstanceOf(FetchAbortedError);
});

test('a membership that cannot open fails start() and done alike', async () => {
  const rx = new FluteReceiver('flute://239.1.1.1:5000?tsi=7', {
    outputDir: dir,
    openSocket: async () => {
      throw new MembershipSocketError('cannot bind port 5000 for the group: EADDRINUSE', { errno: 'EADDRINUSE' });
    },
  });
  await expect(rx.start()).rejects.toBeInstanceOf(MembershipSocketError);
  await expect(rx.done).rejects.toBeInstanceOf(MembershipSocketError);
});

test.each([
  ['a bad URL', 'flute://10.0.0.1:5000?tsi=1', {}, InvalidUrlError],
  ['an output file without a NAME', 'flute://239.1.1.1:5000?tsi=1', { outputFile: 'x' }, InvalidClientOptionError],
  ['a loss rate of 1', 'flute://239.1.1.1:5000?tsi=1', { lossRate: 1 }, InvalidClientOptionError],
  ['a timeout of 0', 'flute://239.1.1.1:5000?tsi=1', { timeoutMs: 0 }, InvalidClientOptionError],
  ['an interface this host lacks', 'flute://239.1.1.1:5000?tsi=1&if=no-such-if0', {}, InvalidClientOptionError],
])('refuses %s at construction', (_what, url, o, cls) => {
  expect(() => new FluteReceiver(url, o as FluteReceiverOptions)).toThrow(cls);
});
