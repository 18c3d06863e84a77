/**
 * Start-up of a channel (issue 12): the server prepares the first window of
 * every channel (RFC 6330 §5.3.3.4: the block's intermediate symbols) while
 * it starts, before its control socket takes any HELLO or JOIN, so that the
 * first client's JOIN is answered and served at once, never after a solve.
 * Ordered, not timed: what is prepared when the data engine first sees a
 * channel, and when the control socket is bound.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Catalogue } from '../../lib/content/catalogue';
import { RqcastServer } from '../../lib/server/server';
import type { ReplicatorChannelConfig } from '../../lib/transport/replicator-contract';
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
