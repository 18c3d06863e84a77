/**
 * The server's memory is bounded by --memory, not by what it serves: files
 * are read block by block (ObjectEncoder.fromFile) and a channel whose
 * blocks do not fit sends a sliding window of them (docs/PROTOCOL.md
 * §10.3). Real server, real client, loopback.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RqcastClient } from '../../lib/client/client';
import { Catalogue } from '../../lib/content/catalogue';
import { RqcastServer } from '../../lib/server/server';

let root: string;
let file: string;
let data: Buffer;
let catalogue: Catalogue;
const MIB = 1024 * 1024;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-bounded-'));
  file = path.join(root, 'big.bin');
  data = randomBytes(60 * MIB + 12345);
  await fs.writeFile(file, data);
  catalogue = await Catalogue.load([file]);
});

afterAll(async () => {
  catalogue?.close();
  await fs.rm(root, { recursive: true, force: true });
});

function blockBytes(): number[] {
  const enc = catalogue.objects[0].encoder;
  return Array.from({ length: enc.sourceBlocks }, (_, sbn) => enc.blockMemory(sbn));
}

test('the catalogue holds no block in memory until a stream needs it', () => {
  const enc = catalogue.objects[0].encoder;
  expect(enc.sourceBlocks).toBeGreaterThanOrEqual(3);
  for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) expect(enc.isPrepared(sbn)).toBe(false);
});

test.each([
  ['no loss', 0, 0.15],
  ['10% loss, 5% pass overhead: blocks complete over several passes', 0.1, 0.05],
])('a file larger than the budget is served through a sliding window, bit-exact (%s)', async (_name, loss, passOverhead) => {
  const costs = blockBytes();
  const largest = Math.max(...costs);
  // Room for three blocks: W = 1 plus the one prepared ahead, which holds
  // its source copy too while it is being prepared.
  const budget = 3 * largest;
  expect(costs.reduce((a, b) => a + b, 0)).toBeGreaterThan(budget);
  const server = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', rateMbps: 800, memoryBytes: budget, passOverhead });
  try {
    expect(server.channels[0].stream.windowBlocks).toBe(1);
    const { port } = await server.listen();
    const out = await fs.mkdtemp(path.join(root, 'out-'));
    const summary = await new RqcastClient(`rqcast://127.0.0.1:${port}`, {
      outputDir: out,
      timeoutMs: 60_000,
      lossRate: loss,
      lossSeed: 7,
    }).fetch();
    expect(summary.objects).toHaveLength(1);
    expect((await fs.readFile(path.join(out, 'big.bin'))).equals(data)).toBe(true);
    const c = server.counters;
    expect(c.preparedBytesPeak).toBeLessThanOrEqual(budget);
    expect(c.preparedBytesPeak).toBeGreaterThan(0);
    expect(c.windowAdvances).toBeGreaterThanOrEqual(costs.length - 1);
    expect(c.blockPrepareErrors).toBe(0);
    if (loss > passOverhead) {
      // Each pass gives a block K(1.05) packets of which ~10% are lost: no
      // block can complete in one pass. The rest came in a second pass (the
      // window went round again) or in repair turns lent by it (NEED).
      expect({ second: c.windowAdvances >= costs.length, repairs: c.repairPackets > 0 }).not.toEqual({ second: false, repairs: false });
    }
  } finally {
    await server.close();
  }
});
