/**
 * The server's configuration on its own: defaults, refusals, and what a
 * channel's options turn into (stream and replicator settings), without
 * listening on anything.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Catalogue } from '../../lib/content/catalogue';
import { InvalidServerConfigError } from '../../lib/errors';
import {
  channelStreamOptions,
  DEFAULT_MEMORY_BYTES,
  planServer,
  replicatorChannelConfig,
  type RqcastServerOptions,
  symbolAllocators,
} from '../../lib/server/config';
import type { BlockPins } from '../../lib/stream/channel-stream';
import { IN_ORDER_WINDOW } from '../../lib/stream/channel-stream';

let dir: string;
let catalogue: Catalogue;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-config-'));
  writeFileSync(path.join(dir, 'a.bin'), randomBytes(5000));
  writeFileSync(path.join(dir, 'b.bin'), randomBytes(3000));
  catalogue = await Catalogue.load([dir]);
});

afterAll(() => {
  catalogue.close();
  rmSync(dir, { recursive: true, force: true });
});

const ON_DEMAND: BlockPins = { pin() {}, unpin() {}, ready: () => true };

describe('planServer', () => {
  test('defaults: one channel main with every object, TSI 1, port 4433 on 0.0.0.0, a 100 ms tick', () => {
    const plan = planServer({ catalogue });
    expect(plan).toEqual({
      noCode: false,
      serverGroup: { index: 0, servers: 1 },
      ringCapacity: 4096,
      memoryBytes: DEFAULT_MEMORY_BYTES,
      memoryShare: DEFAULT_MEMORY_BYTES,
      host: '0.0.0.0',
      port: 4433,
      tickIntervalMs: 100,
      prepare: true,
      channels: [{ name: 'main', tsi: 1, objects: catalogue.objects, rateMbps: 100 }],
    });
  });

  test('channel i (1-based, in configuration order) has TSI i; the memory is shared equally; rates default to the server rate', () => {
    const plan = planServer({ catalogue, rateMbps: 7, memoryBytes: 900, channels: [{ name: 'x', objects: ['b.bin'] }, { name: 'y', rateMbps: 3 }, { name: 'z' }] });
    expect(plan.channels.map((c) => [c.name, c.tsi, c.objects.map((o) => o.name), c.rateMbps])).toEqual([
      ['x', 1, ['b.bin'], 7],
      ['y', 2, ['a.bin', 'b.bin'], 3],
      ['z', 3, ['a.bin', 'b.bin'], 7],
    ]);
    expect(plan.memoryShare).toBe(300);
  });

  const refused: [string, Partial<RqcastServerOptions>, string][] = [
    ['a ring under 16 slots', { ringCapacity: 15 }, 'ringCapacity must be an integer >= 16'],
    ['a fractional ring', { ringCapacity: 16.5 }, 'ringCapacity must be an integer >= 16'],
    ['no channels', { channels: [] }, 'at least one channel'],
    ['negative memory', { memoryBytes: -1 }, 'memoryBytes must be >= 0'],
    ['NaN memory', { memoryBytes: Number.NaN }, 'memoryBytes must be >= 0'],
    ['an empty name', { channels: [{ name: '' }] }, 'a channel name is 1..64 bytes of UTF-8'],
    ['a 65-byte name', { channels: [{ name: '\u00e9'.repeat(32) + 'x' }] }, 'a channel name is 1..64 bytes of UTF-8'],
    ['two channels of one name', { channels: [{ name: 'x' }, { name: 'x' }] }, 'two channels are named x'],
    ['an unknown object', { channels: [{ name: 'x', objects: ['nope'] }] }, 'channel x: no object named nope'],
    ['a channel without objects', { channels: [{ name: 'x', objects: [] }] }, 'channel x has no objects'],
    ['a zero rate', { rateMbps: 0 }, 'rate must be a positive number of Mbit/s'],
    ['a NaN channel rate', { channels: [{ name: 'x', rateMbps: Number.NaN }] }, 'rate must be a positive number of Mbit/s'],
  ];
  test.each(refused)('refuses %s', (_name, options, message) => {
    expect(() => planServer({ catalogue, ...options })).toThrow(new InvalidServerConfigError(message));
  });
});

test('replicator channel: the ring, refilled at a quarter, paced at the rate in bytes (docs/PROTOCOL.md §10.6)', () => {
  const plan = planServer({ catalogue });
  expect(replicatorChannelConfig(plan, plan.channels[0], 1308)).toEqual({ slotSize: 1308, capacity: 4096, lowWater: 1024, rateBytesPerSec: 12_500_000 });
  const small = planServer({ catalogue, ringCapacity: 256, rateMbps: 20 });
  expect(replicatorChannelConfig(small, small.channels[0], 100)).toEqual({ slotSize: 100, capacity: 256, lowWater: 64, rateBytesPerSec: 2_500_000 });
});

describe('channelStreamOptions', () => {
  function streamOf(options: Partial<RqcastServerOptions>) {
    const full = { catalogue, ...options };
    const plan = planServer(full);
    const ch = plan.channels[0];
    const fdt = catalogue.fdt(ch.objects, ch.tsi, Date.now());
    try {
      return channelStreamOptions(full, plan, ch, fdt, symbolAllocators(plan.noCode), ON_DEMAND);
    } finally {
      fdt.encoder.close();
    }
  }

  test('FDT interval from the rate: one FDT packet per 10 ms of stream, at least 32 packets apart', () => {
    // 200 Mbit/s of 24 + 1280-byte packets (16-bit TSI and TOI): 19172 packets/s, so one in 192.
    expect(streamOf({ rateMbps: 200 }).fdtInterval).toBe(192);
    expect(streamOf({ rateMbps: 10 }).fdtInterval).toBe(32);
    expect(streamOf({ rateMbps: 200, fdtInterval: 50 }).fdtInterval).toBe(50);
  });

  test('one block at a time in order by default (IN_ORDER_WINDOW), whatever the memory share; an explicit W wins', () => {
    const blocks = catalogue.objects.reduce((n, o) => n + o.encoder.sourceBlocks, 0);
    expect(blocks).toBeGreaterThan(1);
    expect(IN_ORDER_WINDOW).toBe(1);
    expect(streamOf({}).windowBlocks).toBe(IN_ORDER_WINDOW);
    expect(streamOf({ memoryBytes: 0 }).windowBlocks).toBe(1);
    expect(streamOf({ windowBlocks: 5 }).windowBlocks).toBe(5);
    expect(streamOf({ windowBlocks: blocks }).windowBlocks).toBe(blocks);
  });

  test('objects keep their TOIs; the stream is the channel TSI and the FDT instance id', () => {
    const o = streamOf({});
    expect(o.tsi).toBe(1);
    expect(o.fdt.instanceId).toBe(1);
    expect(o.objects.map((x) => x.toi)).toEqual(catalogue.objects.map((x) => x.toi));
  });
});

test('symbol allocators: coded shares one per object across channels, no-code gives each channel its own carousel', () => {
  const [a] = catalogue.objects;
  const coded = symbolAllocators(false);
  expect(coded(a)).toBe(coded(a));
  const carousel = symbolAllocators(true);
  expect(carousel(a)).not.toBe(carousel(a));
});

describe('channels with a multicast group (docs/PROTOCOL.md §10.10)', () => {
  const HOST = () => ({
    lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4' as const, mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
  });

  test('the group is checked and completed with its defaults; channels without one have none', () => {
    const plan = planServer({
      catalogue,
      host: '127.0.0.1',
      networkInterfaces: HOST,
      channels: [{ name: 'm', multicast: { group: '239.9.9.9', port: 7000 } }, { name: 'u' }],
    });
    expect(plan.channels[0].multicast).toEqual({ group: '239.9.9.9', family: 4, port: 7000, ttl: 1, loop: true, source: '127.0.0.1' });
    expect(plan.channels[1]).not.toHaveProperty('multicast');
  });

  test('a group stream takes a memory share like any stream: 900 bytes over 2 channels, one with a group, is 300 each', () => {
    const plan = planServer({ catalogue, memoryBytes: 900, networkInterfaces: HOST, channels: [{ name: 'm', multicast: { group: '239.9.9.9', port: 7000 } }, { name: 'u' }] });
    expect(plan.memoryShare).toBe(300);
    expect(planServer({ catalogue, memoryBytes: 900, channels: [{ name: 'a' }, { name: 'b' }] }).memoryShare).toBe(450);
  });

  test.each([
    [{ group: '10.1.1.1', port: 7000 }, 'ERR_MULTICAST_GROUP', 'channel hd: multicast group 10.1.1.1 is not a multicast address'],
    [{ group: '239.1.1.1', port: 0 }, 'ERR_MULTICAST_PORT', 'channel hd: multicast port 0'],
    [{ group: '239.1.1.1', port: 1, ttl: 300 }, 'ERR_MULTICAST_TTL', 'channel hd: multicast TTL 300'],
    [{ group: '239.1.1.1', port: 1, interface: 'eth0' }, 'ERR_MULTICAST_INTERFACE', 'channel hd: multicast interface eth0'],
    [{ group: '239.1.1.1', port: 1, source: '192.0.2.1' }, 'ERR_MULTICAST_SOURCE', 'channel hd: multicast source 192.0.2.1'],
  ])('refuses %j at construction, naming the channel', (multicast, code, message) => {
    let caught: unknown;
    try {
      planServer({ catalogue, networkInterfaces: HOST, channels: [{ name: 'hd', multicast }] });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InvalidServerConfigError);
    expect((caught as InvalidServerConfigError).code).toBe(code);
    expect((caught as Error).message).toContain(message);
  });
});
