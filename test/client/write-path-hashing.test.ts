/**
 * SHA-256 passes of a resumable fetch's write path (ObjectReceiver →
 * WriteThrough → ResumableFileSink → ObjectFileWriter), counted: an object
 * whose blocks arrive in order, with 5 % of the packets lost, is hashed
 * once, by the file's running digest. Its blocks are journaled by prefix
 * records taken from that digest, and the runs of source symbols written
 * through for them are never hashed (their blocks decoded first). Before,
 * the block records and the run records hashed the object twice more.
 */
import * as crypto from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ObjectReceiver } from '../../lib/client/object-receiver';
import { ResumableFileSink } from '../../lib/client/sinks/resumable-sink';
import { parseState } from '../../lib/client/sinks/resume-state';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { alcPacket, feedBlocksInOrder, prng, wireOti } from './support';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-hashing-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Counts the bytes every SHA-256 is fed from now on, beyond the journal's 40–56-byte record checks. */
function countHashing(): { bytes: () => number; restore: () => void } {
  let bytes = 0;
  const proto = crypto.Hash.prototype as unknown as { update: (data: crypto.BinaryLike, encoding?: crypto.Encoding) => crypto.Hash };
  const real = proto.update;
  const spy = jest.spyOn(proto, 'update').mockImplementation(function (this: crypto.Hash, data: crypto.BinaryLike, encoding?: crypto.Encoding) {
    const n = typeof data === 'string' ? Buffer.byteLength(data) : (data as Uint8Array).byteLength;
    if (n > 64) bytes += n;
    return real.call(this, data, encoding);
  });
  return { bytes: () => bytes, restore: () => spy.mockRestore() };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('blocks in order at 5 % loss: the object is hashed once (the running digest), its runs never, its blocks only through prefix records', async () => {
  // Blocks of 2000 symbols of 1280 bytes: each fills its 1 MiB write-through slab twice (written through), the rest is gathered.
  const T = 1280;
  const data = crypto.randomBytes(4 * 2000 * T - 77);
  const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 4 });
  const oti = wireOti(enc);
  const object = { name: 'h.bin', sha256: crypto.createHash('sha256').update(data).digest(), oti };
  const hashing = countHashing();
  try {
    // Runs are recorded only if the fetch stops short (no delay elapses in this test, whatever the machine's speed).
    const sink = new ResumableFileSink(object, path.join(dir, 'h.bin'), { mode: 'continue', runRecordDelayMs: Infinity });
    await sink.resumed;
    const rx = new ObjectReceiver(oti, sink, { solveAsync: false });
    // The blocks' source symbols, then repair ones until each decodes, 5 % of them lost.
    const { lost } = await feedBlocksInOrder(rx, enc, prng(12), 0.05);
    await rx.done;
    await sink.commit();
    expect((await fs.readFile(path.join(dir, 'h.bin'))).equals(data)).toBe(true);
    expect(lost).toBeGreaterThan(0);
    // Every block was recorded through the running digest, and each run's block decoded before the run was due.
    expect(sink.stats.blocksHashed).toBe(0);
    expect(sink.stats.runsHashed).toBe(0);
    expect(sink.stats.runsSkipped).toBeGreaterThan(0);
    expect(sink.stats.prefixRecords).toBe(enc.sourceBlocks - 1);
    // Blocks given back to the decoder once written and recorded: all but the last (held until commit records it).
    expect(rx.blocksReturned).toBe(enc.sourceBlocks - 1);
    // Bytes fed to SHA-256 over the whole fetch: the object once.
    expect(hashing.bytes()).toBe(data.length);
  } finally {
    hashing.restore();
  }
});

test('the same stream stopped in block 2: the kept prefix and the runs of the block in progress resume; only those runs were hashed', async () => {
  const T = 256;
  const data = crypto.randomBytes(4 * 400 * T);
  const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 4 });
  const oti = wireOti(enc);
  const object = { name: 'h.bin', sha256: crypto.createHash('sha256').update(data).digest(), oti };
  const sink = new ResumableFileSink(object, path.join(dir, 'h.bin'), { mode: 'continue', runRecordDelayMs: Infinity });
  await sink.resumed;
  const rx = new ObjectReceiver(oti, sink, { solveAsync: false });
  for (let sbn = 0; sbn < 2; sbn++) {
    for (let esi = 0; rx.blockNeed(sbn) > 0 && esi < 3 * 400; esi++) {
      rx.add(alcPacket(enc, sbn, esi));
      if (esi % 32 === 31) rx.commitAll();
    }
    rx.commitAll();
    expect(rx.blockNeed(sbn)).toBe(0);
  }
  // Half of block 2's source symbols, then the fetch stops.
  for (let esi = 0; esi < 200; esi++) rx.add(alcPacket(enc, 2, esi));
  rx.commitAll();
  await tick();
  rx.close(new Error('stopped'));
  await rx.done.catch(() => undefined);
  const kept = await sink.suspend();
  expect(kept).toMatchObject({ blocksKept: 2, symbolBytesKept: 200 * T });
  expect(sink.stats).toMatchObject({ blocksHashed: 0, bytesHashed: 200 * T });
  const p = parseState(await fs.readFile(path.join(dir, '.h.bin.rqcast-state')), object);
  expect(p.blocks.size).toBe(0);
  expect(Math.max(...p.prefixes.keys())).toBe(2 * 400 * T);

  const next = new ResumableFileSink(object, path.join(dir, 'h.bin'), { mode: 'continue' });
  expect(await next.resumed).toEqual([0, 1]);
  let replayed = 0;
  await next.resumeSymbols((_offset, bytes) => (replayed += bytes.length));
  expect(replayed).toBe(200 * T);
  await next.abort();
});
