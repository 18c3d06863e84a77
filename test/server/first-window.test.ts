/**
 * Start-up of a channel (issue 12): the server prepares the first window of
 * every channel (RFC 6330 §5.3.3.4: the block's intermediate symbols) while
 * it starts, before its control socket takes any HELLO or JOIN, so that the
 * first client's JOIN is answered and served at once, never after a solve.
 * Ordered, not timed: what is prepared when the data engine first sees a
 * channel, and when the control socket is bound; and a JOIN's JOINED handed
 * to the kernel before the client becomes a destination, so that the
 * client reads JOINED first, not behind the first window's packets.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Catalogue } from '../../lib/content/catalogue';
import { RqcastServer } from '../../lib/server/server';
import type { ReplicatorChannelConfig } from '../../lib/transport/replicator-contract';
import { procNetAddress } from '../../lib/transport/udp/socket-drops';
import { serverRig } from '../support/server-rig';
import { TakingReplicator } from '../support/taking-replicator';

let dir: string;
let catalogue: Catalogue;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-first-window-'));
  writeFileSync(path.join(dir, 'a.bin'), randomBytes(300_000));
  writeFileSync(path.join(dir, 'b.bin'), randomBytes(40_000));
  catalogue = await Catalogue.load([path.join(dir, 'a.bin'), path.join(dir, 'b.bin')]);
});

afterAll(() => {
  catalogue?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("every channel's first block is prepared before the data engine gets the channel and before the control socket is bound", async () => {
  const [a, b] = catalogue.objects;
  /** At each createChannel: which first blocks were prepared, and whether the server had an address yet. */
  const seen: { id: number; a: boolean; b: boolean; bound: boolean }[] = [];
  let server: RqcastServer | undefined = undefined;
  class Watching extends TakingReplicator {
    override createChannel(id: number, config: ReplicatorChannelConfig): void {
      seen.push({ id, a: a.encoder.isPrepared(0), b: b.encoder.isPrepared(0), bound: server?.address() !== undefined });
      super.createChannel(id, config);
    }
  }
  const replicator = new Watching();
  server = new RqcastServer({
    catalogue,
    host: '127.0.0.1',
    port: 0,
    replicator,
    channels: [
      { name: 'main', objects: ['a.bin'] },
      { name: 'other', objects: ['b.bin'] },
    ],
  });
  try {
    // Made, not started: nothing is prepared yet.
    expect([a.encoder.isPrepared(0), b.encoder.isPrepared(0)]).toEqual([false, false]);
    const bound = await server.listen();
    expect(bound.port).toBeGreaterThan(0);
    expect(seen).toEqual([
      { id: 1, a: true, b: true, bound: false },
      { id: 2, a: true, b: true, bound: false },
    ]);
    // No member yet: the engine got no destination.
    expect(replicator.destinations).toEqual([]);
  } finally {
    await server.close();
  }
});

/** Bytes queued at the UDP socket bound to 127.0.0.1:`port` (/proc/net/udp's rx_queue): what the kernel holds for it, read without the event loop. */
function receiveQueue(port: number): number {
  const local = procNetAddress('127.0.0.1', port, 'IPv4');
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[1] === local) return parseInt(cols[4].split(':')[1], 16);
  }
  throw new Error(`no UDP socket on 127.0.0.1:${port}`);
}

test("a JOIN's JOINED is in the client's socket before the client becomes a destination of the data engine (it never waits behind the first window)", async () => {
  /** At each addDestination: the bytes queued at that destination's socket. */
  const queued: number[] = [];
  class Watching extends TakingReplicator {
    override addDestination(id: number, address: string, port: number): void {
      // The replicator's thread would send the first window from here on.
      // The reply has left or it has not: the event loop cannot send it
      // while this runs, so a short look for the kernel's delivery is all.
      const until = Date.now() + 200;
      let q = receiveQueue(port);
      while (q === 0 && Date.now() < until) q = receiveQueue(port);
      queued.push(q);
      super.addDestination(id, address, port);
    }
  }
  const rig = await serverRig(catalogue, () => new Watching(), { channels: [{ name: 'main', objects: ['a.bin'] }] });
  try {
    const c = await rig.client();
    const joined = await c.join(rig.port, await c.cookie(rig.port), ['main']);
    expect(joined.channels.map((ch) => ch.name)).toEqual(['main']);
    expect(queued).toHaveLength(1);
    expect(queued[0]).toBeGreaterThan(0);
    // What was queued is the JOINED, read after: nothing else came.
    expect(c.data).toHaveLength(0);
  } finally {
    await rig.close();
  }
});
