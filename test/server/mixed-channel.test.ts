import type { ChannelStream } from '../../lib/stream/channel-stream';
// Issue 12 end to end over loopback: RqcastServer (native replicator) serves
// one channel of a 3 MB, a 12 KB and a 1-byte file; RqcastClient fetches all
// three bit-exact. Then the server's own stream says which object every
// packet it built carried (lookup): each object had its blocks' pass quotas
// per pass, ceil(K * 1.15), so the 3 MB file had > 99% of the data packets.
// Both with the server's default window (one block at a time, in order) and
// with every block in the window (a plain round-robin by quota). Before the
// server pinned small blocks ahead (PREPARE_AHEAD_PACKETS), the 12 KB file's
// block, quota 12, kept the channel for 1401 packets (19 stalls) while the
// 1-byte file's block was being prepared.
import { promises as fs } from 'fs';
import * as path from 'path';
import { RqcastClient } from '../../lib/client/client';
import { RqcastServer } from '../../lib/server/server';
import { DEFAULT_PASS_OVERHEAD, passQuota } from '../../lib/stream/window-size';
import { RandomFiles } from '../support/random-files';

const SIZES: Record<string, number> = { 'large.bin': 3_000_000, 'medium.bin': 12_000, 'tiny.bin': 1 };
let src: RandomFiles;

beforeAll(async () => {
  src = await RandomFiles.create('rqcast-mixed-', SIZES);
});

afterAll(async () => {
  await src?.close();
});

describe('a channel of a 3 MB, a 12 KB and a 1-byte file over loopback', () => {
  test.each([
    ['the default window (one block at a time)', undefined],
    ['every block in the window', 3],
  ])('%s: all three bit-exact; every object had its quota per pass, the 3 MB file > 99%% of the data packets', async (_name, windowBlocks) => {
    const server = new RqcastServer({ catalogue: src.catalogue, port: 0, host: '127.0.0.1', rateMbps: 100, windowBlocks });
    try {
      const port = (await server.listen()).port;
      const out = await src.outDir();
      // No NEED reports: the fixed passes, whose shares this checks (passes by need: e2e-need.test.ts).
      await new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: out, timeoutMs: 30_000, need: false }).fetch();
      for (const [name, bytes] of Object.entries(src.files)) expect((await fs.readFile(path.join(out, name))).equals(bytes)).toBe(true);

      const channel = server.channels[0];
      const stream = channel.stream as ChannelStream;
      expect(stream.windowBlocks).toBe(windowBlocks ?? 1);
      // The packets built so far that the stream still remembers (from the start).
      const built = stream.counters.packets;
      const toiOf = new Map(channel.objects.map((o) => [o.toi, o.name]));
      const perName = new Map<string, number>();
      let remembered = 0;
      for (let seq = 0; seq < built; seq++) {
        const hit = stream.lookup(seq);
        if (hit === undefined) break;
        remembered++;
        if (hit.toi === 0) continue;
        const name = toiOf.get(hit.toi)!;
        perName.set(name, (perName.get(name) ?? 0) + 1);
      }
      expect(remembered).toBeGreaterThan(0);
      // No block kept the channel past its quota waiting for the next one's preparation.
      expect(stream.counters.windowStalls).toBe(0);
      const quota = new Map(channel.objects.map((o) => [o.name, passQuota(o.encoder.sourceSymbols(0), DEFAULT_PASS_OVERHEAD)]));
      expect([...quota.values()].sort((a, b) => b - a)).toEqual([2696, 12, 2]);
      const data = [...perName.values()].reduce((a, b) => a + b, 0);
      const sum = 2696 + 12 + 2;
      const m = Math.floor(data / sum);
      // The fetch took at least one pass.
      expect(m).toBeGreaterThanOrEqual(1);
      for (const [name, q] of quota) {
        const n = perName.get(name) ?? 0;
        expect(n).toBeGreaterThanOrEqual(m * q);
        expect(n).toBeLessThanOrEqual((m + 1) * q);
      }
      expect((perName.get('large.bin') ?? 0) / data).toBeGreaterThan(0.99);
    } finally {
      await server.close();
    }
  });
});
