// The playout sink alone: blocks handed over in any decode order come out
// of the stream in object order, the digest is checked over what went out,
// and a stream that does not drain holds writeBlock back.
import { createHash, randomBytes } from 'crypto';
import { PassThrough, Writable } from 'stream';
import { DigestMismatchError, UnfetchableObjectError } from '../../../lib/client/errors';
import { PlayoutSink, PlayoutSinkFactory } from '../../../lib/client/sinks/playout-sink';
import type { SinkObject } from '../../../lib/client/sinks/sink';

const BLOCK = 1000;
const data = randomBytes(5 * BLOCK - 123);
const blockAt = (sbn: number): Buffer => data.subarray(sbn * BLOCK, Math.min(data.length, (sbn + 1) * BLOCK));

function object(sha256 = createHash('sha256').update(data).digest()): SinkObject {
  return { name: 'x.bin', oti: { transferLength: data.length, symbolSize: 100, sourceBlocks: 5, subBlocks: 1, alignment: 4 }, sha256 };
}

/** A stream that records each chunk and the order of writes. */
function collector(): { out: PassThrough; chunks: Buffer[] } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return { out, chunks };
}

test('blocks decoded out of order go out in order, each as soon as the ones before it are out', async () => {
  const { out, chunks } = collector();
  const sink = new PlayoutSinkFactory(out).open(object());
  const order = [2, 0, 4, 1, 3];
  const outAfter: number[] = [];
  for (const sbn of order) {
    await sink.writeBlock(sbn, sbn * BLOCK, blockAt(sbn));
    await new Promise((r) => setImmediate(r));
    outAfter.push(Buffer.concat(chunks).length);
  }
  // After 2: nothing (0 missing); after 0: block 0; after 4: still block 0; after 1: 0..2; after 3: all.
  expect(outAfter).toEqual([0, BLOCK, BLOCK, 3 * BLOCK, data.length]);
  expect(Buffer.concat(chunks).equals(data)).toBe(true);
  await expect(sink.commit()).resolves.toBeUndefined();
  expect(sink.stats).toMatchObject({ blocksWritten: 5, bytesWritten: data.length, peakHeldBlocks: 2 });
});

test('a digest mismatch is found after every byte went out (DigestMismatchError): written bytes stay written', async () => {
  const { out, chunks } = collector();
  const sink = new PlayoutSinkFactory(out).open(object(Buffer.alloc(32, 7)));
  for (let sbn = 4; sbn >= 0; sbn--) await sink.writeBlock(sbn, sbn * BLOCK, blockAt(sbn));
  await expect(sink.commit()).rejects.toBeInstanceOf(DigestMismatchError);
  await sink.abort();
  expect(Buffer.concat(chunks).equals(data)).toBe(true);
});

test('a block handed over twice, or at the wrong offset, is refused; commit before the end is refused', async () => {
  const { out } = collector();
  const sink = new PlayoutSink(object(), out, '-');
  await sink.writeBlock(0, 0, blockAt(0));
  await expect(sink.writeBlock(0, 0, blockAt(0))).rejects.toThrow(/twice/);
  await expect(sink.writeBlock(1, 5, blockAt(1))).rejects.toThrow(/expected 1000/);
  const other = new PlayoutSink(object(), out, '-');
  await other.writeBlock(0, 0, blockAt(0));
  await expect(other.commit()).rejects.toThrow(/1000 of 4877 bytes/);
});

test('one object per stream: a second object is refused with the fix named', () => {
  const f = new PlayoutSinkFactory(new PassThrough());
  f.open(object());
  expect(() => f.open({ ...object(), name: 'y.bin' })).toThrow(UnfetchableObjectError);
  expect(() => f.open({ ...object(), name: 'y.bin' })).toThrow(/name one object in the URL/);
});

test('backpressure: writeBlock settles only once a full stream has drained', async () => {
  let release: (() => void) | undefined;
  let written = 0;
  const slow = new Writable({
    highWaterMark: 10,
    write(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      release = () => cb();
    },
  });
  const sink = new PlayoutSink(object(), slow, '-');
  let settled = false;
  const w = sink.writeBlock(0, 0, blockAt(0)).then(() => (settled = true));
  await new Promise((r) => setImmediate(r));
  expect(written).toBe(BLOCK);
  expect(settled).toBe(false);
  release?.();
  await w;
  expect(settled).toBe(true);
});

test('after abort nothing more is written', async () => {
  const { out, chunks } = collector();
  const sink = new PlayoutSink(object(), out, '-');
  await sink.abort();
  await sink.writeBlock(0, 0, blockAt(0));
  await new Promise((r) => setImmediate(r));
  expect(chunks).toHaveLength(0);
});
