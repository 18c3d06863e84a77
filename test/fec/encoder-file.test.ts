/**
 * ObjectEncoder.fromFile: an object read block by block from a file
 * (pread on the worker that prepares the block), so that a server can
 * serve files larger than memory. Its packets must be those of the same
 * bytes in memory, its memory that of its prepared blocks only.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodecClosedError, InvalidArgumentError, OtiOutOfBoundsError, SourceTruncatedError, TooManySourceSymbolsError, statusErrorClasses } from '../../lib/fec/errors';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { Oti } from '../../lib/fec/oti';
import { statusCodes, systematicParams } from '../../lib/fec/rfc';
import { Rng } from '../../lib/support/rng';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-encoder-file-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function tempFile(name: string, data: Uint8Array): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, data);
  return p;
}

/** Byte equality without jest's element-by-element diff of large buffers. */
function expectSame(a: Uint8Array, b: Uint8Array): void {
  expect(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(0);
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/**
 * Sends block sbn's packets from ESI `firstEsi` up, dropping each with
 * probability `loss`, until the decoder has the block.
 */
function deliverBlock(enc: ObjectEncoder, dec: ObjectDecoder, sbn: number, rng: Rng, loss: number, firstEsi = 0): void {
  const K = enc.sourceSymbols(sbn);
  let esi = firstEsi;
  while (!dec.blockDecoded(sbn)) {
    expect(esi - firstEsi).toBeLessThan(2 * K + 100);
    const count = Math.max(16, Math.ceil(K / 4));
    const kept = enc.packetList(sbn, esi, count).filter(() => rng.unit() >= loss);
    dec.pushMany(kept);
    esi += count;
  }
}

describe('ObjectEncoder.fromFile', () => {
  it('agrees with the codec on the status codes, its new ones included', () => {
    expect(statusCodes().slice(1)).toEqual(statusErrorClasses.map((c) => c.code));
    expect(statusCodes()).toContain(SourceTruncatedError.code);
  });

  it.each([
    ['one sub-block, padded last block', { symbolSize: 64, sourceBlocks: 3 }, 10007],
    ['sub-blocks', { symbolSize: 96, sourceBlocks: 4, subBlocks: 5 }, 20011],
    ['derived OTI', {}, 300001],
  ])('round-trips through ObjectDecoder with loss (%s)', async (_name, options, F) => {
    const seed = F;
    const rng = new Rng(seed);
    const data = rng.bytes(F);
    const file = tempFile(`round-trip-${F}`, data);
    const enc = ObjectEncoder.fromFile(file, options);
    const mem = new ObjectEncoder(data, options);
    // The OTI is derived exactly as for the same bytes in memory.
    expect(Buffer.from(enc.oti)).toEqual(Buffer.from(mem.oti));
    // Blocks read on worker threads, then packets equal to memory's.
    await enc.prepareAllAsync();
    for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) {
      const K = enc.sourceSymbols(sbn);
      expectSame(enc.packets(sbn, 0, K + 8), mem.packets(sbn, 0, K + 8));
    }
    const dec = new ObjectDecoder(enc.oti);
    for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) deliverBlock(enc, dec, sbn, rng, 0.3);
    expect(dec.complete).toBe(true);
    expect(Buffer.compare(Buffer.from(dec.result()), Buffer.from(data))).toBe(0);
    dec.close();
    enc.close();
    mem.close();
  });

  it('encodes the first `length` bytes of a longer file', () => {
    const data = new Rng(5).bytes(5000);
    const file = tempFile('prefix', data);
    const enc = ObjectEncoder.fromFile(file, { symbolSize: 32, length: 3001 });
    const mem = new ObjectEncoder(data.subarray(0, 3001), { symbolSize: 32 });
    expect(enc.transferLength).toBe(3001);
    expect(Buffer.from(enc.oti)).toEqual(Buffer.from(mem.oti));
    for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) {
      const K = enc.sourceSymbols(sbn);
      expectSame(enc.packets(sbn, 0, K + 3), mem.packets(sbn, 0, K + 3));
    }
    enc.close();
    mem.close();
  });

  it('holds memory only for prepared blocks, and frees it on releaseBlock', async () => {
    const T = 128;
    const data = new Rng(6).bytes(T * 400 * 3 - 50);
    const file = tempFile('memory', data);
    const enc = ObjectEncoder.fromFile(file, { symbolSize: T, sourceBlocks: 3 });
    const mem = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: 3 });
    for (let sbn = 0; sbn < 3; sbn++) {
      const K = enc.sourceSymbols(sbn);
      // The L + 1 work slots: the block's source copy is dropped once the
      // intermediate symbols are solved (source symbols are then LTEnc at ISI = ESI).
      const work = (systematicParams(K).L + 1) * T;
      expect(enc.isPrepared(sbn)).toBe(false);
      expect(enc.blockMemory(sbn)).toBe(work);
      await enc.prepareBlockAsync(sbn);
      expect(enc.isPrepared(sbn)).toBe(true);
      expect(enc.blockMemory(sbn)).toBe(work);
      enc.releaseBlock(sbn);
      expect(enc.isPrepared(sbn)).toBe(false);
      // In memory the same: full blocks read the caller's bytes in place;
      // the zero-padded last one is copied, then the copy dropped.
      expect(mem.blockMemory(sbn)).toBe(work);
    }
    // packets() prepares on demand, as for a buffer.
    enc.packets(1, 0, 2);
    expect(enc.isPrepared(1)).toBe(true);
    expect(enc.isPrepared(0)).toBe(false);
    enc.close();
    mem.close();
  });

  it('keeps its own descriptor until close', async () => {
    const data = new Rng(7).bytes(10000);
    const file = tempFile('fds', data);
    const before = openFds();
    const enc = ObjectEncoder.fromFile(file, { symbolSize: 64, sourceBlocks: 2 });
    expect(openFds()).toBe(before + 1);
    await enc.prepareBlockAsync(1);
    enc.close();
    expect(openFds()).toBe(before);
    expect(() => enc.packet(0, 0)).toThrow(CodecClosedError);
    expect(() => enc.isPrepared(0)).toThrow(CodecClosedError);
    // A failed open leaks nothing either.
    expect(() => ObjectEncoder.fromFile(file, { symbolSize: 64, length: 10001 })).toThrow(InvalidArgumentError);
    expect(openFds()).toBe(before);
  });

  it('refuses what it cannot encode', () => {
    const empty = tempFile('empty', new Uint8Array(0));
    expect(() => ObjectEncoder.fromFile(empty)).toThrow(OtiOutOfBoundsError);
    expect(() => new ObjectEncoder(new Uint8Array(0))).toThrow(OtiOutOfBoundsError);
    expect(() => ObjectEncoder.fromFile(dir)).toThrow(InvalidArgumentError);
    expect(() => ObjectEncoder.fromFile(path.join(dir, 'absent'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    const small = tempFile('small', new Uint8Array(10));
    expect(() => ObjectEncoder.fromFile(small, { length: 0 })).toThrow(OtiOutOfBoundsError);
    expect(() => ObjectEncoder.fromFile(small, { length: 1.5 })).toThrow(InvalidArgumentError);
  });

  it('fails with SourceTruncatedError, not a crash, when the file shrinks', async () => {
    const data = new Rng(8).bytes(64 * 100 * 4);
    const file = tempFile('shrinks', data);
    const enc = ObjectEncoder.fromFile(file, { symbolSize: 64, sourceBlocks: 4 });
    await enc.prepareBlockAsync(0);
    fs.truncateSync(file, enc.layout.blockOffset(2) + 100);
    // Blocks still inside the file are read; the others fail, every time.
    expect(() => enc.packets(1, 0, 3)).not.toThrow();
    await expect(enc.prepareBlockAsync(2)).rejects.toThrow(SourceTruncatedError);
    await expect(enc.prepareBlockAsync(3)).rejects.toThrow(SourceTruncatedError);
    expect(() => enc.packets(2, 0, 3)).toThrow(SourceTruncatedError);
    expect(() => enc.prepareBlock(3)).toThrow(SourceTruncatedError);
    expect(enc.isPrepared(2)).toBe(false);
    // A prepared block keeps serving from its own copy.
    const mem = new ObjectEncoder(data, { symbolSize: 64, sourceBlocks: 4 });
    expectSame(enc.packet(0, 5), mem.packet(0, 5));
    enc.close();
    mem.close();
  });

  describe('a sparse file larger than 4 GiB', () => {
    const F = 4 * 2 ** 30 + 2 ** 20;
    let file: string;
    // Random bytes at a few offsets: in the last blocks, across 2^32, at
    // the very end; everything else reads as zeros (a hole).
    beforeAll(() => {
      file = path.join(dir, 'sparse');
      const fd = fs.openSync(file, 'w');
      try {
        fs.ftruncateSync(fd, F);
        const rng = new Rng(9);
        for (const at of [F - 20 * 2 ** 20, 2 ** 32 - 1000, 2 ** 32 + 12345, F - 4096, F - 7]) {
          const bytes = rng.bytes(Math.min(3000, F - at));
          fs.writeSync(fd, bytes, 0, bytes.length, at);
        }
      } finally {
        fs.closeSync(fd);
      }
      expect(fs.statSync(file).size).toBe(F);
    });
    afterAll(() => {
      fs.rmSync(file, { force: true });
    });

    function readAt(offset: number, length: number): Buffer {
      const out = Buffer.alloc(length);
      const fd = fs.openSync(file, 'r');
      try {
        let done = 0;
        while (done < length) {
          const n = fs.readSync(fd, out, done, length - done, offset + done);
          if (n === 0) break;
          done += n;
        }
      } finally {
        fs.closeSync(fd);
      }
      return out;
    }

    it('carries F > 2^32 in the OTI (RFC 6330 §3.3.2: 40 bits)', () => {
      // The default derivation (WS = 16 MiB, no sub-blocks) cannot cut it
      // into 256 blocks or fewer, as for a buffer of that size.
      expect(() => ObjectEncoder.fromFile(file)).toThrow(TooManySourceSymbolsError);
      const enc = ObjectEncoder.fromFile(file, { maxSubBlockSize: 64 * 2 ** 20 });
      expect(enc.transferLength).toBe(F);
      const oti = Buffer.from(enc.oti);
      expect(oti[0] * 2 ** 32 + oti.readUInt32BE(1)).toBe(F);
      expect(Oti.parse(oti).F).toBe(F);
      const last = enc.sourceBlocks - 1;
      expect(enc.layout.blockOffset(last) + enc.layout.blockLength(last)).toBe(F);
      expect(enc.isPrepared(last)).toBe(false);
      enc.close();
    });

    it('gives the right symbols for the blocks near the end (N > 1), reading only those', async () => {
      const enc = ObjectEncoder.fromFile(file, { symbolSize: 1280, sourceBlocks: 256, subBlocks: 4 });
      expect(enc.transferLength).toBe(F);
      const dec = new ObjectDecoder(enc.oti);
      const rng = new Rng(10);
      for (const sbn of [254, 255]) {
        await enc.prepareBlockAsync(sbn);
        // Repair symbols from a high ESI, 20% lost.
        deliverBlock(enc, dec, sbn, rng, 0.2, 1 << 20);
        enc.releaseBlock(sbn);
        const offset = enc.layout.blockOffset(sbn);
        const got = Buffer.from(dec.takeBlock(sbn));
        expect(got.length).toBe(enc.layout.blockLength(sbn));
        // Blocks of ~16.8 MB: the last one holds every byte beyond 2^32.
        expect(offset + got.length > 2 ** 32).toBe(sbn === 255);
        expect(Buffer.compare(got, readAt(offset, got.length))).toBe(0);
        // Not only the hole's zeros: some of the random bytes are there.
        expect(got.some((b) => b !== 0)).toBe(true);
      }
      for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) expect(enc.isPrepared(sbn)).toBe(false);
      dec.close();
      enc.close();
    });

    it('reads the source symbols around offset 2^32 (N = 1)', () => {
      const enc = ObjectEncoder.fromFile(file, { symbolSize: 1280, sourceBlocks: 256 });
      let sbn = 0;
      while (enc.layout.blockOffset(sbn) + enc.layout.blockLength(sbn) <= 2 ** 32) sbn++;
      const offset = enc.layout.blockOffset(sbn);
      expect(offset).toBeLessThan(2 ** 32);
      const K = enc.sourceSymbols(sbn);
      const T = enc.symbolSize;
      // With one sub-block, source symbol i is bytes [i*T, (i+1)*T) of the block.
      const first = Math.floor((2 ** 32 - 1000 - offset) / T);
      const count = Math.min(K - first, 16);
      const packets = Buffer.from(enc.packets(sbn, first, count));
      const want = readAt(offset + first * T, count * T);
      for (let i = 0; i < count; i++) {
        const p = packets.subarray(i * (4 + T), (i + 1) * (4 + T));
        expect(p.readUInt32BE(0)).toBe(sbn * 2 ** 24 + first + i);
        expect(Buffer.compare(p.subarray(4), want.subarray(i * T, (i + 1) * T))).toBe(0);
      }
      expect(want.some((b) => b !== 0)).toBe(true);
      enc.close();
    });
  });
});
