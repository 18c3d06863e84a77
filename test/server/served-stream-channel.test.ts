/**
 * A channel with a stream its caller made (ChannelConfig.stream,
 * lib/stream/served-stream.ts; a forward relay's channels): planServer
 * takes it without catalogue objects, refuses it with objects or a group,
 * and checks its ring size; the server builds it with the channel's TSI,
 * the offered channels and a refill, and sends what it gives.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Catalogue } from '../../lib/content/catalogue';
import { InvalidServerConfigError } from '../../lib/errors';
import { planServer } from '../../lib/server/config';
import { RqcastServer } from '../../lib/server/server';
import type { ServedStream, ServedStreamContext } from '../../lib/stream/served-stream';
import type { ReplicatorContract } from '../../lib/transport/replicator-contract';

let dir: string;
let catalogue: Catalogue;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-served-stream-'));
  catalogue = await Catalogue.load([dir], { symbolSize: 64 });
});
afterAll(() => {
  catalogue.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A stream that hands out `n` packets of 100 bytes, each filled with its index. */
function counting(ctx: ServedStreamContext, n: number): ServedStream & { ctx: ServedStreamContext; add(k: number): void } {
  let next = 0;
  return {
    ctx,
    add(k: number) {
      n += k;
    },
    tsi: ctx.tsi,
    slotSize: 100,
    counters: { packets: 0, fdtPackets: 0, freshPackets: 0, freshUnknown: 0, freshSkipped: 0, windowAdvances: 0, windowStalls: 0 },
    get nextSequence() {
      return next;
    },
    pendingPackets: 0,
    get unwrappedPosition() {
      return next;
    },
    windowBlocks: 0,
    sliding: false,
    start() {},
    close() {},
    fill(max, push) {
      const count = Math.min(max, n - next);
      if (count <= 0) return 0;
      const buf = new Uint8Array(count * 100);
      for (let i = 0; i < count; i++) buf.fill(next + i, i * 100, (i + 1) * 100);
      const taken = push(buf, 100, count);
      next += taken;
      return taken;
    },
    freshPackets: () => [],
  };
}

test('planServer: a caller-made stream needs no catalogue object; with objects, a group or a bad ring size it is refused', () => {
  const stream = (ctx: ServedStreamContext) => counting(ctx, 0);
  const plan = planServer({ catalogue, channels: [{ name: 'fwd', stream, ringCapacity: 256 }] });
  expect(plan.channels.map((c) => [c.name, c.objects.length, c.ringCapacity])).toEqual([['fwd', 0, 256]]);
  expect(() => planServer({ catalogue, channels: [{ name: 'fwd', stream, objects: [] }] })).toThrow(InvalidServerConfigError);
  expect(() => planServer({ catalogue, channels: [{ name: 'fwd', stream, multicast: { group: '239.1.1.1', port: 5000 } }] })).toThrow(/a stream of its own has no catalogue objects and no group/);
  expect(() => planServer({ catalogue, channels: [{ name: 'fwd', stream, ringCapacity: 8 }] })).toThrow(/ringCapacity must be an integer >= 16/);
  // Without a stream, a channel still needs objects.
  expect(() => planServer({ catalogue, channels: [{ name: 'empty', objects: [] }] })).toThrow(/has no objects/);
});

test('the server builds the stream with its TSI, the offered channels and a refill, and pushes what it gives into a ring of the size asked', async () => {
  const pushed: number[] = [];
  const created: { id: number; capacity?: number; slotSize: number }[] = [];
  const rep: ReplicatorContract = {
    createChannel: (id, c) => void created.push({ id, capacity: c.capacity, slotSize: c.slotSize }),
    removeChannel: () => undefined,
    addDestination: () => undefined,
    removeDestination: () => undefined,
    addGroup: () => undefined,
    removeGroup: () => undefined,
    push: (_id, packets, size, count) => {
      for (let i = 0; i < count; i++) pushed.push(packets[i * size]);
      return count;
    },
    sendTo: () => undefined,
    channelStats: () => ({ queued: 0, destinations: 0, streamPackets: 0, datagrams: 0, bytes: 0 }),
    close: () => undefined,
    on: () => undefined,
    off: () => undefined,
  };
  let made: ReturnType<typeof counting> | undefined;
  const server = new RqcastServer({
    catalogue,
    port: 0,
    host: '127.0.0.1',
    replicator: rep,
    channels: [{ name: 'fwd', ringCapacity: 64, stream: (ctx) => (made = counting(ctx, 5)) }],
  });
  try {
    expect(made?.ctx.tsi).toBe(1);
    expect(made?.ctx.channels.map((c) => c.name)).toEqual(['fwd']);
    await server.listen();
    expect(created).toEqual([{ id: 1, capacity: 64, slotSize: 100 }]);
    // listen() filled the ring with everything the stream had.
    expect(pushed).toEqual([0, 1, 2, 3, 4]);
    // More packets, and the stream's refill: the server pushes them at once.
    made!.add(2);
    made!.ctx.refill();
    expect(pushed).toEqual([0, 1, 2, 3, 4, 5, 6]);
  } finally {
    await server.close();
  }
});
