/**
 * Passes by need, end to end over loopback in one process (docs/PROTOCOL.md
 * §7a): an RqcastServer sending one channel of several blocks in order, and
 * three RqcastClients fetching it at once, 0 % and 5 % loss (the client's
 * loss hook). Counted, not timed: the stream packets that reached each
 * client (taken + dropped by the hook) from its JOIN to its last object,
 * against the source symbols it needed, and the same with NEED turned off
 * (the fixed passes of 1.15 K each).
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RqcastClient } from '../../lib/client/client';
import type { FetchSummary } from '../../lib/client/events';
import { Catalogue } from '../../lib/content/catalogue';
import { RqcastServer } from '../../lib/server/server';

let root: string;
let catalogue: Catalogue;
// 5 objects of 1.25 MB: 5 blocks of K = 1024 at T = 1280, sent one at a time (W = 1).
const FILES = 5;
const SIZE = 1024 * 1280;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-need-'));
  const src = path.join(root, 'src');
  await fs.mkdir(src);
  for (let i = 0; i < FILES; i++) await fs.writeFile(path.join(src, `f${i}.bin`), randomBytes(SIZE));
  catalogue = await Catalogue.load([src]);
});

afterAll(async () => {
  for (const o of catalogue?.objects ?? []) o.encoder.close();
  await fs.rm(root, { recursive: true, force: true });
});

/** Three clients at once; what reached each (packets received + dropped by the hook) and what it needed. */
async function fetchAll(loss: number, need: boolean): Promise<{ delivered: number[]; needed: number; server: RqcastServer }> {
  // 10 Mbit/s, a short ring (64 packets built ahead): a report is in force within ~65 ms of packets. What a
  // client is sent beyond its need includes what it is sent while its report lags (a block's need stayed 1
  // until its solve was done; now it is 0 from K + 2 accepted, BlockAccounting.need), and server, clients
  // and solves share this process.
  // At 100 Mbit/s (and 512 slots) a loaded machine (load average 19-24 on 2 cores) made that lag up to
  // 20 ms a block, 200 packets: the worst client had 1.13-1.23 × K/(1 − loss), over the bound (1.09), in 3
  // runs of 3; at 10 Mbit/s the same lag is 20 packets (worst 1.034-1.057 under the same load).
  const server = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', rateMbps: 10, ringCapacity: 64 });
  const { port } = await server.listen();
  try {
    const summaries: FetchSummary[] = await Promise.all(
      [1, 2, 3].map(async (seed) => {
        const dir = await fs.mkdtemp(path.join(root, 'out-'));
        return new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: dir, timeoutMs: 20_000, lossRate: loss, lossSeed: seed, need }).fetch();
      }),
    );
    for (const s of summaries) {
      expect(s.objects).toHaveLength(FILES);
      // Every data packet read is one symbol taken or refused for a reason the summary counts, or an FDT packet.
      expect(s.fdtPackets).toBeGreaterThan(0);
      expect(s.symbolsReceived + s.symbolsLate + s.symbolsSurplus + s.symbolsDuplicate + s.symbolsDropped + s.budgetDrops + s.fdtPackets).toBe(s.packetsReceived);
    }
    return { delivered: summaries.map((s) => s.packetsReceived + s.simulatedDrops), needed: summaries[0].neededSymbols, server };
  } finally {
    await server.close();
  }
}

describe('passes by need over loopback (3 clients, 5 blocks in order)', () => {
  test.each([0, 0.05])('at %s loss each client gets at most 1.05 × its source symbols / (1 − loss) + 200; without NEED, 1.10 × its source symbols or more', async (loss) => {
    const withNeed = await fetchAll(loss, true);
    const fixed = await fetchAll(loss, false);
    const floor = withNeed.needed / (1 - loss);
    console.log(
      `loss ${loss}: K total ${withNeed.needed}; packets per client / (K/(1 − loss)): with NEED ${withNeed.delivered.map((d) => (d / floor).toFixed(3)).join(' ')}; fixed passes ${fixed.delivered.map((d) => (d / floor).toFixed(3)).join(' ')}`,
    );
    for (const d of withNeed.delivered) expect(d).toBeLessThanOrEqual(1.05 * floor + 200);
    expect(withNeed.server.counters.needReports).toBeGreaterThan(0);
    expect(withNeed.server.counters.passesEndedEarly).toBeGreaterThan(0);
    expect(fixed.server.counters.needReports).toBe(0);
    for (const d of fixed.delivered) expect(d).toBeGreaterThanOrEqual(1.1 * fixed.needed);
  });
});
