/**
 * The SHA-256 (RFC 6234) of a file's bytes as the catalogue announces them
 * (the FDT's rq:Content-SHA-256, docs/PROTOCOL.md), streamed: nothing is
 * kept.
 *
 * Read through one buffer of at most DIGEST_READ_BYTES, reused for every
 * read: a read stream hands out a fresh buffer per chunk, which the kernel
 * must map and zero as the read fills it. For a 256 MiB file that was about
 * 20 000 page faults and 550 ms of CPU, against about 3 000 and 220 ms here
 * (docs/BENCHMARKS.md, 2026-12-05: "TCP at 1 %: where the server's other
 * 2 s go", and "the server's large allocations counted", where 24
 * alternated bench:tcp pairs found the transfer no slower for it).
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { CatalogueError } from './catalogue-error';

/** The largest read: big enough that syscalls are few, small enough to stay in cache between the read and the hash. */
export const DIGEST_READ_BYTES = 1 << 20;

/**
 * The SHA-256 of `file`, which must hold exactly `expected` bytes while it
 * is read: more or fewer is ERR_OBJECT_CHANGED (the file changed since its
 * size was taken).
 */
export async function digestFile(file: string, expected: number): Promise<Uint8Array> {
  const hash = createHash('sha256');
  const handle = await fsp.open(file, 'r');
  try {
    // One byte at least, so that a file that grew from empty is seen.
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(expected, DIGEST_READ_BYTES)));
    let at = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      if (at + bytesRead > expected) throw new CatalogueError('ERR_OBJECT_CHANGED', `${file} grew while being read`);
      // update() consumes the bytes before it returns: the buffer is free for the next read.
      hash.update(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    if (at !== expected) throw new CatalogueError('ERR_OBJECT_CHANGED', `${file} shrank while being read`);
    return new Uint8Array(hash.digest());
  } finally {
    await handle.close();
  }
}
