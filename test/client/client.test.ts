/**
 * RqcastClient against a scripted server (fake-server.ts): the control flow
 * (retries, refusal, timeout, renewal, cookie refresh, LEAVE), digest
 * checking, ACK replacements and channel combining.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { PassThrough } from 'stream';
import { ProgressInfo, RqcastClient, RqcastClientOptions } from '../../lib/client/client';
import { CLI_START_MARK } from '../../lib/client/events';
import { ProgressDisplay } from '../../lib/client/progress';
import {
  DigestMismatchError,
  FetchTimeoutError,
  JoinRefusedError,
  NoSuchObjectError,
} from '../../lib/client/errors';
import { MessageType } from '../../lib/protocol/messages';
import { scriptedServers } from '../support/scripted-servers';

const scripted = scriptedServers('rqcast-client-');
const serve = scripted.serve;

function client(url: string, o: RqcastClientOptions = {}): RqcastClient {
  return new RqcastClient(url, { outputDir: scripted.dir, timeoutMs: 5000, retryMs: 20, ...o });
}

const A = randomBytes(20_000);
const B = Buffer.from([0x42]);

describe('RqcastClient (scripted server)', () => {
  test('fetches every object of the channel, bit-exact, then LEAVEs', async () => {
    const { server, port } = await serve({ objects: [{ name: 'a.bin', data: A }, { name: 'sub/b.txt', data: B }] });
    const c = client(`rqcast://127.0.0.1:${port}`);
    const events: string[] = [];
    c.on('joined', () => events.push('joined'));
    c.on('object', (o) => events.push(`object:${o.name}`));
    const s = await c.fetch();
    expect((await fs.readFile(path.join(scripted.dir, 'a.bin'))).equals(A)).toBe(true);
    expect((await fs.readFile(path.join(scripted.dir, 'sub', 'b.txt'))).equals(B)).toBe(true);
    expect(events[0]).toBe('joined');
    expect(events.slice(1).sort()).toEqual(['object:a.bin', 'object:sub/b.txt']);
    expect(s.objects).toHaveLength(2);
    expect(s.bytes).toBe(A.length + 1);
    expect(s.neededSymbols).toBe(Math.ceil(A.length / 256) + 1);
    expect(s.overhead).toBeCloseTo(s.symbolsReceived / s.neededSymbols - 1, 10);
    expect(s.replacements).toBe(0);
    // LEAVE goes out before fetch() resolves (the fake server reads it on a later turn; once, 50 ms on).
    await server.until(() => server.leaves > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.leaves).toBe(1);
    const join = server.received.find((m) => m.type === MessageType.Join);
    expect(join).toMatchObject({ channels: ['main'], until: { kind: 'duration', ms: 30_000 }, ack: false });
    expect((await fs.readdir(scripted.dir)).sort()).toEqual(['a.bin', 'sub']);
  });

  test('the node dgram socket (fallback for addons without the batched receiver) fetches the same', async () => {
    const { server, port } = await serve({ objects: [{ name: 'a.bin', data: A }, { name: 'sub/b.txt', data: B }] });
    const s = await client(`rqcast://127.0.0.1:${port}`, { useDgram: true }).fetch();
    expect((await fs.readFile(path.join(scripted.dir, 'a.bin'))).equals(A)).toBe(true);
    expect((await fs.readFile(path.join(scripted.dir, 'sub', 'b.txt'))).equals(B)).toBe(true);
    expect(s.objects).toHaveLength(2);
    await server.until(() => server.leaves > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.leaves).toBe(1);
  });

  test('LEAVE goes out once every object has decoded, before the files are verified', async () => {
    const { server, port } = await serve({ objects: [{ name: 'a.bin', data: A }, { name: 'sub/b.txt', data: B }] });
    const c = client(`rqcast://127.0.0.1:${port}`);
    const leavesAtObject: number[] = [];
    c.on('object', () => leavesAtObject.push(server.leaves));
    await c.fetch();
    await server.until(() => server.leaves > 0);
    await new Promise((r) => setTimeout(r, 50));
    // The last object is verified (file writes, SHA-256, fsync, rename)
    // after the LEAVE reached the server; only one LEAVE in all.
    expect(leavesAtObject[leavesAtObject.length - 1]).toBe(1);
    expect(server.leaves).toBe(1);
  });

  test('a named object only, into an exact file path', async () => {
    const { port } = await serve({ objects: [{ name: 'a.bin', data: A }, { name: 'b.txt', data: B }] });
    const out = path.join(scripted.dir, 'renamed.dat');
    const s = await client(`rqcast://127.0.0.1:${port}//b.txt`, { outputFile: out }).fetch();
    expect(s.objects.map((o) => o.name)).toEqual(['b.txt']);
    expect([...(await fs.readFile(out))]).toEqual([0x42]);
    expect(await fs.readdir(scripted.dir)).toEqual(['renamed.dat']);
  });

  test('HELLOs that go unanswered are retried', async () => {
    const { server, port } = await serve({ objects: [{ name: 'b.txt', data: B }], ignoreHellos: 2 });
    const c = client(`rqcast://127.0.0.1:${port}`);
    await c.fetch();
    expect(server.hellos).toBe(3);
    expect(c.stats.hellosSent).toBe(3);
  });

  test('a refused JOIN (unknown channel) is a JoinRefusedError; nothing is written', async () => {
    const { port } = await serve({ objects: [{ name: 'b.txt', data: B }] });
    const err = await client(`rqcast://127.0.0.1:${port}/nosuch`).fetch().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JoinRefusedError);
    expect((err as JoinRefusedError).message).toMatch(/unknown channel nosuch/);
    expect(await fs.readdir(scripted.dir)).toEqual([]);
  });

  test('no server: FetchTimeoutError after timeoutMs', async () => {
    const { server, port } = await serve({ objects: [], ignoreHellos: 1e9 });
    const c = client(`rqcast://127.0.0.1:${port}`, { timeoutMs: 300 });
    const err = await c.fetch().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchTimeoutError);
    // The timeout as given, not rounded to whole seconds ("for 0 s").
    expect((err as FetchTimeoutError).message).toBe('no answer to HELLO for 300 ms');
    expect(server.hellos).toBeGreaterThan(1);
  });

  test('a digest that does not match: DigestMismatchError, no file under any name', async () => {
    const { port } = await serve({ objects: [{ name: 'a.bin', data: A, sha256: Buffer.alloc(32, 1) }] });
    await expect(client(`rqcast://127.0.0.1:${port}`).fetch()).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await fs.readdir(scripted.dir)).toEqual([]);
  });

  test('an object the FDT does not list: NoSuchObjectError', async () => {
    const { port } = await serve({ objects: [{ name: 'b.txt', data: B }] });
    await expect(client(`rqcast://127.0.0.1:${port}//other`).fetch()).rejects.toBeInstanceOf(NoSuchObjectError);
  });

  test('unsafe names in the FDT are skipped with a warning, the rest is fetched', async () => {
    const { port } = await serve({ objects: [{ name: '../evil', data: B }, { name: 'good', data: B }] });
    const c = client(`rqcast://127.0.0.1:${port}`);
    const warnings: string[] = [];
    c.on('warning', (w) => warnings.push(w));
    const s = await c.fetch();
    expect(s.objects.map((o) => o.name)).toEqual(['good']);
    expect(warnings.join()).toMatch(/"\.\."/);
    expect(await fs.readdir(scripted.dir)).toEqual(['good']);
    await expect(fs.stat(path.join(scripted.dir, '..', 'evil'))).rejects.toThrow();
  });

  test('renews with a new JOIN at half the granted time', async () => {
    const big = randomBytes(120_000);
    const { server, port } = await serve({ objects: [{ name: 'big', data: big }], burst: 1 });
    // A 1 s retry: a JOINED late under load must not make the client send its JOIN twice (the count below).
    const c = client(`rqcast://127.0.0.1:${port}`, { ttlMs: 200, retryMs: 1000 });
    await c.fetch();
    expect(c.stats.renewals).toBeGreaterThan(0);
    // A rejoin (data stopped for a while, ServerLink stallMs) is a JOIN too; under load it happens.
    // One renewal may still be in flight when the object completes (its JOINED never counted).
    const answered = c.stats.renewals + c.stats.rejoins + 1;
    expect([answered, answered + 1]).toContain(server.joins);
    expect((await fs.readFile(path.join(scripted.dir, 'big'))).equals(big)).toBe(true);
  });

  test('a cookie refused as expired on renewal: HELLO again, then JOIN', async () => {
    const big = randomBytes(120_000);
    const { server, port } = await serve({ objects: [{ name: 'big', data: big }], burst: 1, expireCookieOnJoin: 2 });
    const c = client(`rqcast://127.0.0.1:${port}`, { ttlMs: 200 });
    await c.fetch();
    expect(server.hellos).toBeGreaterThanOrEqual(2);
    expect(server.joins).toBeGreaterThanOrEqual(3);
    expect((await fs.readFile(path.join(scripted.dir, 'big'))).equals(big)).toBe(true);
  });

  test('ACK mode: a burst of CookieExpired (one per ACK in flight) is one cookie refresh, not a refusal', async () => {
    const big = randomBytes(120_000);
    const { server, port } = await serve({ objects: [{ name: 'big', data: big }], burst: 1, cookieExpiredOnFirstAck: 6 });
    const c = client(`rqcast://127.0.0.1:${port}`, { ack: true, ackIntervalMs: 10 });
    await c.fetch();
    // Two HELLO exchanges (nonces): the first and one refresh. Not two datagrams: an exchange repeats its
    // HELLO after retryMs (20 ms): under load (10-20 on 2 cores) a third HELLO, a repeat, went out in 3 runs of 7.
    const nonces = new Set(server.received.flatMap((m) => (m.type === MessageType.Hello ? [Buffer.from(m.nonce).toString('hex')] : [])));
    expect(nonces.size).toBe(2);
    expect((await fs.readFile(path.join(scripted.dir, 'big'))).equals(big)).toBe(true);
  });

  test('--until: JOIN carries an absolute time', async () => {
    const { server, port } = await serve({ objects: [{ name: 'b.txt', data: B }] });
    const until = Date.now() + 60_000;
    await client(`rqcast://127.0.0.1:${port}`, { untilMs: until }).fetch();
    const join = server.received.find((m) => m.type === MessageType.Join);
    expect(join).toMatchObject({ until: { kind: 'absolute' } });
    const sent = (join as { until: { unixMs: number } }).until.unixMs;
    expect(Math.abs(sent - until)).toBeLessThan(1000);
  });

  test('--until reached before the transfer completes: FetchTimeoutError, no files', async () => {
    const big = randomBytes(300_000);
    const { port } = await serve({ objects: [{ name: 'big', data: big }], burst: 1 });
    const c = client(`rqcast://127.0.0.1:${port}`, { untilMs: Date.now() + 300 });
    await expect(c.fetch()).rejects.toThrow(/until/);
    expect(await fs.readdir(scripted.dir)).toEqual([]);
  });

  test('ERROR NotJoined (the server forgot the session): JOIN again and finish', async () => {
    const big = randomBytes(60_000);
    const { server, port } = await serve({ objects: [{ name: 'big', data: big }], burst: 2, forgetOnFirstAck: true });
    const c = client(`rqcast://127.0.0.1:${port}`, { ack: true });
    await c.fetch();
    expect(server.joins).toBeGreaterThanOrEqual(2);
    expect((await fs.readFile(path.join(scripted.dir, 'big'))).equals(big)).toBe(true);
  });

  test('ACK mode: losses are reported, replacements carry ESIs never seen before', async () => {
    const big = randomBytes(60_000);
    const { server, port } = await serve({ objects: [{ name: 'big', data: big }], burst: 4 });
    const c = client(`rqcast://127.0.0.1:${port}`, { ack: true, lossRate: 0.2, lossSeed: 1, recordEsis: true });
    const s = await c.fetch();
    expect((await fs.readFile(path.join(scripted.dir, 'big'))).equals(big)).toBe(true);
    expect(server.acks).toBeGreaterThan(0);
    expect(s.acksSent).toBe(c.stats.acksSent);
    expect(s.replacements).toBeGreaterThan(0);
    expect(s.simulatedDrops).toBeGreaterThan(0);
    const seen = new Set<string>();
    for (const e of c.stats.esiLog) {
      const key = `${e.toi}/${e.sbn}/${e.esi}`;
      if (e.replacement) expect(seen.has(key)).toBe(false);
      seen.add(key);
    }
  });

  test('the data path (no debug hooks: packets read in place) under ACK mode and loss: replacements counted, ACKs sent, bit-exact', async () => {
    const big = randomBytes(60_000);
    const { server, port } = await serve({ objects: [{ name: 'big', data: big }], burst: 4 });
    const c = client(`rqcast://127.0.0.1:${port}`, { ack: true, lossRate: 0.2, lossSeed: 1 });
    const s = await c.fetch();
    expect((await fs.readFile(path.join(scripted.dir, 'big'))).equals(big)).toBe(true);
    expect(server.acks).toBeGreaterThan(0);
    expect(s.replacements).toBeGreaterThan(0);
    expect(s.simulatedDrops).toBeGreaterThan(0);
    expect(s.symbolsReceived).toBeGreaterThanOrEqual(s.neededSymbols);
    expect(s.packetsReceived).toBe(c.stats.packetsReceived);
  });

  test('the data path: two channels combine', async () => {
    const big = randomBytes(60_000);
    const { port } = await serve({ objects: [{ name: 'big', data: big }], channels: { a: 1, b: 2 } });
    const s = await client(`rqcast://127.0.0.1:${port}/a,b`).fetch();
    expect((await fs.readFile(path.join(scripted.dir, 'big'))).equals(big)).toBe(true);
    expect(s.objects.map((o) => o.name)).toEqual(['big']);
  });

  test('two channels: symbols of both combine into one object', async () => {
    const big = randomBytes(60_000);
    const { port } = await serve({ objects: [{ name: 'big', data: big }], channels: { a: 1, b: 2 } });
    const c = client(`rqcast://127.0.0.1:${port}/a,b`, { recordEsis: true });
    const joined: number[] = [];
    c.on('joined', (j) => joined.push(...j.channels.map((x) => x.tsi)));
    await c.fetch();
    expect(joined).toEqual([1, 2]);
    expect((await fs.readFile(path.join(scripted.dir, 'big'))).equals(big)).toBe(true);
    const tsis = new Set(c.stats.esiLog.filter((e) => e.toi === 1n).map((e) => e.tsi));
    expect([...tsis].sort()).toEqual([1, 2]);
  });

  test('a channel that streams but never delivers its FDT times out', async () => {
    const { port } = await serve({ objects: [{ name: 'b.txt', data: B }], channels: { a: 1, b: 2 }, withholdFdt: [2] });
    const c = client(`rqcast://127.0.0.1:${port}/a,b`, { timeoutMs: 400 });
    await expect(c.fetch()).rejects.toBeInstanceOf(FetchTimeoutError);
    expect(c.stats.packetsReceived).toBeGreaterThan(0);
    // What channel a delivered was verified: it stays.
    expect(await fs.readdir(scripted.dir)).toEqual(['b.txt']);
  });

  test('progress events, and the JSON display built on them', async () => {
    const big = randomBytes(120_000);
    const { port } = await serve({ objects: [{ name: 'big', data: big }], burst: 2 });
    const c = client(`rqcast://127.0.0.1:${port}`, { progressIntervalMs: 20 });
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const display = new ProgressDisplay(c, 'json', out, out);
    const seen: ProgressInfo[] = [];
    c.on('progress', (p) => seen.push(p));
    // No CLI here: a mark left by a CLI test run earlier in this jest worker (the timeline is the process's) is cleared.
    performance.clearMarks(CLI_START_MARK);
    const before = performance.now();
    const s = await c.fetch();
    const after = performance.now();
    display.succeed(s);
    // Start-up is counted from this process's start to the first data packet taken: within the fetch.
    expect(s.startupMs).toBeGreaterThanOrEqual(Math.floor(before));
    expect(s.startupMs).toBeLessThanOrEqual(Math.ceil(after));
    // The tail (last useful packet to the object published) lies within the fetch too.
    expect(s.tailMs).toBeGreaterThanOrEqual(0);
    expect(s.tailMs).toBeLessThanOrEqual(after - before);
    // Their steps, in order (no CLI here: no `process` step), add up to them.
    const p = s.startupPhasesMs!;
    expect(Object.keys(p)).toEqual(['modules', 'hello', 'cookie', 'joined', 'data']);
    for (const step of ['hello', 'cookie', 'joined'] as const) expect(p[step]).toBeGreaterThanOrEqual(0);
    expect(p.modules + p.hello + p.cookie + p.joined + p.data).toBe(s.startupMs);
    expect(p.modules).toBeGreaterThanOrEqual(Math.floor(before));
    const t = s.tailPhasesMs!;
    for (const step of [t.solve, t.write, t.verify]) expect(step).toBeGreaterThanOrEqual(0);
    expect(t.solve + t.write + t.verify).toBe(s.tailMs);
    expect(seen.length).toBeGreaterThan(1);
    const last = seen[seen.length - 1];
    expect(last.neededSymbols).toBe(Math.ceil(big.length / 256));
    expect(last.blocks).toBe(1);
    for (let i = 1; i < seen.length; i++) expect(seen[i].heldSymbols).toBeGreaterThanOrEqual(seen[i - 1].heldSymbols);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(lines.filter((l) => l.type === 'progress').length).toBe(seen.length);
    expect(lines.filter((l) => l.type === 'object')).toHaveLength(1);
    expect(lines[lines.length - 1]).toMatchObject({ type: 'summary', bytes: big.length, startupMs: s.startupMs, tailMs: s.tailMs, startupPhasesMs: p, tailPhasesMs: t });
  });

  test('close() aborts: FetchAbortedError, temporary files removed', async () => {
    const big = randomBytes(200_000);
    const { port } = await serve({ objects: [{ name: 'big', data: big }], burst: 1 });
    const c = client(`rqcast://127.0.0.1:${port}`);
    const p = c.fetch();
    await new Promise<void>((r) => c.once('joined', () => setTimeout(r, 100)));
    c.close();
    await expect(p).rejects.toThrow(/aborted/);
    expect(await fs.readdir(scripted.dir)).toEqual([]);
  });
});
