/**
 * A decoded block's write after the write-through (ObjectReceiver →
 * WriteThrough → FileSink → ObjectFileWriter.writeAt): the ranges the
 * write-through left, one per run of lost source symbols at a lossy
 * stream, go to the file in one native job per block (pwriteRanges), not
 * one fs write (thread-pool hand-off, promise) per range. Counted: jobs,
 * pwrite calls, the fs writes that remain (the write-through's own), bytes
 * written (each once).
 */
import * as crypto from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ObjectReceiver } from '../../../lib/client/object-receiver';
import { FileSink } from '../../../lib/client/sinks/file-sink';
import { ObjectFileWriter } from '../../../lib/client/sinks/file-writer';
import { ObjectEncoder } from '../../../lib/fec/encoder';
import { alcPacket, feedBlocksInOrder, prng, wireOti } from '../support';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-block-writes-'));
});
afterEach(async () => {
  jest.restoreAllMocks();
  await fs.rm(dir, { recursive: true, force: true });
});

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

test('blocks in order at 5 % loss: one write job per block whatever the number of lost runs; each byte written once; the fs writes left are the write-through\'s', async () => {
  const T = 1280;
  const data = crypto.randomBytes(4 * 2000 * T - 77);
  const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 4 });
  const oti = wireOti(enc);
  const object = { name: 'w.bin', sha256: crypto.createHash('sha256').update(data).digest(), oti };
  const writers: ObjectFileWriter[] = [];
  /** Bytes the blocks' own writes put in the file. */
  let blockBytes = 0;
  /** Ranges those writes were given. */
  let blockRanges = 0;
  const create = ObjectFileWriter.create.bind(ObjectFileWriter);
  jest.spyOn(ObjectFileWriter, 'create').mockImplementation(async (...args) => {
    const w = await create(...args);
    writers.push(w);
    const real = w.pwriteRanges;
    w.pwriteRanges = async (fd, bytes, position, ranges) => {
      const r = await real(fd, bytes, position, ranges);
      blockBytes += r.bytes;
      blockRanges += ranges.length / 2;
      return r;
    };
    return w;
  });
  // Every fs write of the fetch: the write-through's prewrites only, from now on.
  const probe = await fs.open(path.join(dir, 'probe'), 'w');
  await probe.close();
  const fileWrite = jest.spyOn(Object.getPrototypeOf(probe) as { write: () => unknown }, 'write');
  const sink = new FileSink(object, path.join(dir, 'w.bin'));
  const rx = new ObjectReceiver(oti, sink, { solveAsync: false });
  // Runs of consecutive lost source symbols, per block: each leaves a range the block write must fill.
  const { lostSourceRuns: lostRuns } = await feedBlocksInOrder(rx, enc, prng(7), 0.05);
  await rx.done;
  await sink.commit();
  expect((await fs.readFile(path.join(dir, 'w.bin'))).equals(data)).toBe(true);
  expect(writers).toHaveLength(1);
  // Every block written in order and hashed at once went back to the decoder's cache when its write resolved;
  // the last, which completes the object, was kept for commit's digest (beside the file's fsync).
  expect(rx.blocksReturned).toBe(enc.sourceBlocks - 1);
  const w = writers[0];
  // The block writes skipped what the write-through put in place: every byte of the object is in the file, the block writes wrote a small part of it.
  expect(w.bytesWritten).toBe(data.length);
  expect(blockBytes).toBeGreaterThan(0);
  expect(blockBytes).toBeLessThan(data.length / 4);
  // The rest of bytesToFile is the write-through's (a FileSink's prewrite writes a run whole, its holes' filler too: replaced by the block writes).
  expect(w.bytesToFile - blockBytes).toBeGreaterThanOrEqual(data.length - blockBytes);
  expect(lostRuns).toBeGreaterThan(50);
  // One job per block, not one per range: before, a block's write made one fs write per range (blockWriteCalls of them).
  expect(w.blockWriteJobs).toBe(enc.sourceBlocks);
  // A pwrite per range (no short writes to a regular file), many ranges per job (lost runs, and the runs still gathered when the block decoded).
  expect(w.blockWriteCalls).toBe(blockRanges);
  expect(blockRanges).toBeGreaterThan(lostRuns / 2);
  // The fs writes made: the write-through's runs, none for the blocks' ranges.
  const prewrites = fileWrite.mock.calls.length;
  expect(prewrites).toBeGreaterThan(0);
  expect(prewrites).toBeLessThan(lostRuns);
});

test('blocks decoded last to first: those the running digest keeps, and the first, which completes the object, are not given back (the digest reads them at commit)', async () => {
  const T = 1280;
  const data = crypto.randomBytes(4 * 500 * T - 77);
  const enc = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 4 });
  const oti = wireOti(enc);
  const object = { name: 'r.bin', sha256: crypto.createHash('sha256').update(data).digest(), oti };
  const sink = new FileSink(object, path.join(dir, 'r.bin'));
  const rx = new ObjectReceiver(oti, sink, { solveAsync: false });
  for (let sbn = enc.sourceBlocks - 1; sbn >= 0; sbn--) {
    for (let esi = 0; esi < enc.sourceSymbols(sbn); esi++) rx.add(alcPacket(enc, sbn, esi));
    rx.commitAll();
    await tick();
  }
  await rx.done;
  // Blocks 3, 2, 1 were kept for the digest, and block 0 too: it completes the object (commit hashes them all beside the fsync).
  expect(rx.blocksReturned).toBe(0);
  await sink.commit();
  expect((await fs.readFile(path.join(dir, 'r.bin'))).equals(data)).toBe(true);
});
