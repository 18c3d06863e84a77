/**
 * End to end over loopback, in one process: RqcastServer (with the native
 * Replicator) serves real files, RqcastClient fetches them bit-exact —
 * several sizes including 1 byte and a multi-block object, under simulated
 * loss, in ACK mode, and combining two channels.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { RqcastClient, RqcastClientOptions } from '../../lib/client/client';
import { JoinRefusedError } from '../../lib/client/errors';
import { Catalogue } from '../../lib/content/catalogue';
import { ChannelConfig, RqcastServer } from '../../lib/server/server';
import { loadNative } from '../../lib/native';
import { RandomFiles } from '../support/random-files';

let src: RandomFiles;

// 17 MiB at T = 1280 is Kt = 13927 source symbols, more than one block
// holds under the default 16 MiB sub-block bound (RFC 6330 §4.3): Z = 2.
const SIZES: Record<string, number> = { 'one.byte': 1, 'small.bin': 10_000, 'mid.bin': 300_001, 'big.bin': 17 << 20 };

beforeAll(async () => {
  src = await RandomFiles.create('rqcast-e2e-', SIZES);
});

afterAll(async () => {
  await src?.close();
});

const servers: RqcastServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(channels?: ChannelConfig[], rateMbps = 400, host = '127.0.0.1'): Promise<number> {
  const server = new RqcastServer({ catalogue: src.catalogue, port: 0, host, rateMbps, channels });
  servers.push(server);
  return (await server.listen()).port;
}

async function outDir(): Promise<string> {
  return src.outDir();
}

async function expectSame(dir: string, names: string[]): Promise<void> {
  for (const n of names) {
    const got = await fs.readFile(path.join(dir, n));
    expect(got.length).toBe(src.files[n].length);
    expect(got.equals(src.files[n])).toBe(true);
  }
  expect((await fs.readdir(dir)).sort()).toEqual([...names].sort());
}

function client(url: string, dir: string, o: RqcastClientOptions = {}): RqcastClient {
  return new RqcastClient(url, { outputDir: dir, timeoutMs: 20_000, ...o });
}

describe('RqcastServer -> RqcastClient over loopback', () => {
  test('the big object really has several source blocks', () => {
    expect(src.catalogue.get('big.bin')?.oti.Z).toBeGreaterThan(1);
  });

  test('every object, bit-exact (1 byte .. multi-block)', async () => {
    const port = await serve();
    const dir = await outDir();
    const s = await client(`rqcast://127.0.0.1:${port}`, dir).fetch();
    await expectSame(dir, Object.keys(SIZES));
    expect(s.objects).toHaveLength(4);
    for (const o of s.objects) expect(o.sha256).toBe(createHash('sha256').update(src.files[o.name]).digest('hex'));
    expect(s.bytes).toBe(Object.values(SIZES).reduce((a, b) => a + b, 0));
    expect(s.neededSymbols).toBe(Object.values(SIZES).reduce((a, b) => a + Math.ceil(b / 1280), 0));
    expect(s.symbolsReceived).toBeGreaterThanOrEqual(s.neededSymbols);
  });

  test('10% loss', async () => {
    const port = await serve([{ name: 'main', objects: ['one.byte', 'mid.bin'] }]);
    const dir = await outDir();
    const c = client(`rqcast://127.0.0.1:${port}`, dir, { lossRate: 0.1, lossSeed: 42 });
    const s = await c.fetch();
    await expectSame(dir, ['one.byte', 'mid.bin']);
    expect(s.simulatedDrops).toBeGreaterThan(0);
  });

  test('ACK mode under 10% loss: replacements arrive and carry never-seen ESIs', async () => {
    const port = await serve([{ name: 'main', objects: ['mid.bin'] }], 30);
    const dir = await outDir();
    const c = client(`rqcast://127.0.0.1:${port}`, dir, { ack: true, ackIntervalMs: 10, lossRate: 0.1, lossSeed: 7, recordEsis: true });
    const s = await c.fetch();
    await expectSame(dir, ['mid.bin']);
    expect(s.acksSent).toBeGreaterThan(0);
    expect(s.replacements).toBeGreaterThan(0);
    const seen = new Set<string>();
    let replacements = 0;
    for (const e of c.stats.esiLog) {
      const key = `${e.toi}/${e.sbn}/${e.esi}`;
      if (e.replacement) {
        replacements++;
        expect(seen.has(key)).toBe(false);
      }
      seen.add(key);
    }
    expect(replacements).toBe(s.replacements);
  });

  test('a named object on two channels: symbols of both combine', async () => {
    const port = await serve([
      { name: 'main', objects: ['small.bin'] },
      { name: 'a', objects: ['mid.bin', 'small.bin'], rateMbps: 50 },
      { name: 'b', objects: ['mid.bin'], rateMbps: 50 },
    ]);
    const dir = await outDir();
    const c = client(`rqcast://127.0.0.1:${port}/a,b/mid.bin`, dir, { recordEsis: true });
    const s = await c.fetch();
    await expectSame(dir, ['mid.bin']);
    const midToi = BigInt(src.catalogue.get('mid.bin')?.toi as number);
    const tsis = new Set(c.stats.esiLog.filter((e) => e.toi === midToi).map((e) => e.tsi));
    expect(tsis.size).toBe(2);
    // One ESI space for the object across channels: no symbol arrived twice.
    const keys = c.stats.esiLog.filter((e) => e.toi === midToi).map((e) => `${e.sbn}/${e.esi}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(s.objects.map((o) => o.name)).toEqual(['mid.bin']);
  });

  test('a session longer than its ttl is renewed, and the server counts the renewals', async () => {
    // 300 kB at 1 Mbit/s: about 2.5 s, against a 1 s ttl (renewed every 0.5 s).
    const port = await serve([{ name: 'main', objects: ['mid.bin'] }], 1);
    const server = servers[0];
    const dir = await outDir();
    const c = client(`rqcast://127.0.0.1:${port}`, dir, { ttlMs: 1000 });
    await c.fetch();
    await expectSame(dir, ['mid.bin']);
    expect(c.stats.renewals).toBeGreaterThanOrEqual(2);
    // A JOIN repeated because its JOINED was late renews twice on the server.
    expect(server.counters.sessionsRenewed).toBeGreaterThanOrEqual(c.stats.renewals);
    expect(server.counters.sessionsExpired).toBe(0);
  });

  test('IPv6: rqcast://[::1]:PORT', async () => {
    const port = await serve([{ name: 'main', objects: ['one.byte', 'small.bin'] }], 100, '::1');
    const dir = await outDir();
    await client(`rqcast://[::1]:${port}`, dir).fetch();
    await expectSame(dir, ['one.byte', 'small.bin']);
  });

  test('a directory of 120 small objects in subdirectories', async () => {
    const many = path.join(src.root, 'many');
    const want = new Map<string, Buffer>();
    for (let i = 0; i < 120; i++) {
      const name = `d${i % 7}/f${i}.dat`;
      const data = randomBytes(1 + ((i * 37) % 3000));
      want.set(name, data);
      await fs.mkdir(path.join(many, `d${i % 7}`), { recursive: true });
      await fs.writeFile(path.join(many, name), data);
    }
    const cat = await Catalogue.load([many]);
    const server = new RqcastServer({ catalogue: cat, port: 0, host: '127.0.0.1', rateMbps: 100 });
    servers.push(server);
    const port = (await server.listen()).port;
    const dir = await outDir();
    const s = await client(`rqcast://127.0.0.1:${port}`, dir).fetch();
    expect(s.objects).toHaveLength(120);
    for (const [name, data] of want) expect((await fs.readFile(path.join(dir, name))).equals(data)).toBe(true);
    for (const o of cat.objects) o.encoder.close();
  });

  test('JOIN of an unknown channel is refused', async () => {
    const port = await serve();
    const dir = await outDir();
    const err = await client(`rqcast://127.0.0.1:${port}/nosuch`, dir).fetch().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JoinRefusedError);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  test('the server sees the client join and leave', async () => {
    const port = await serve([{ name: 'main', objects: ['small.bin'] }]);
    const server = servers[0];
    const events: string[] = [];
    server.on('joined', () => events.push('joined'));
    server.on('left', () => events.push('left'));
    await client(`rqcast://127.0.0.1:${port}`, await outDir()).fetch();
    for (let i = 0; i < 50 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(events).toEqual(['joined', 'left']);
    expect(server.sessionCount).toBe(0);
  });
});

describe('a client within a small memory budget', () => {
  test.each([
    // Every block in the window: all ten fill up together, the budget's worst case.
    ['sent round-robin', { windowBlocks: 10 }],
    ['sent as a sliding window of 3 blocks (10% per pass beyond K)', { windowBlocks: 3, passOverhead: 0.1 }],
  ])('an object of 10 source blocks, %s, through a budget of two blocks: bit-exact, the reservation within the budget', async (_label, stream) => {
    // Blocks of 1 MiB: the catalogue derives the OTI (RFC 6330 §4.3) for a
    // receiver working memory WS of 1 MiB instead of 16 MiB, so a 10 MiB
    // object has 10 source blocks of K = 1024 symbols of T = 1024 bytes.
    const native = loadNative();
    const binding = { ...native, otiDerive: (F: number, P: number, Al: number, SS: number) => native.otiDerive(F, P, Al, SS, 1 << 20) };
    const dir10 = await fs.mkdtemp(path.join(src.root, 'ten-'));
    const data = randomBytes(10 << 20);
    await fs.writeFile(path.join(dir10, 'ten.bin'), data);
    const cat = await Catalogue.load([dir10], { symbolSize: 1024, binding });
    try {
      expect(cat.get('ten.bin')?.oti.Z).toBeGreaterThanOrEqual(8);
      const server = new RqcastServer({ catalogue: cat, port: 0, host: '127.0.0.1', rateMbps: 400, ...stream });
      servers.push(server);
      const port = (await server.listen()).port;
      const dir = await outDir();
      const warnings: string[] = [];
      // 1 byte: raised to the least a fetch can work with, two blocks.
      const c = client(`rqcast://127.0.0.1:${port}`, dir, { memoryBytes: 1, lossRate: 0.05, lossSeed: 3 });
      c.on('warning', (w) => warnings.push(w));
      const s = await c.fetch();
      expect((await fs.readFile(path.join(dir, 'ten.bin'))).equals(data)).toBe(true);
      expect(warnings.some((w) => /memory budget raised/.test(w))).toBe(true);
      // Two blocks of about 1 MiB each, solves included: far below the object.
      expect(s.memoryBytes).toBeLessThan(8 << 20);
      expect(s.peakPartialBlockBytes).toBeLessThanOrEqual(s.memoryBytes);
      expect(s.peakPartialBlockBytes).toBeGreaterThan(s.memoryBytes / 2);
      expect(s.budgetDrops).toBeGreaterThan(0);
      expect(c.budget.usedBytes).toBe(0);
    } finally {
      for (const o of cat.objects) o.encoder.close();
    }
  });
});
