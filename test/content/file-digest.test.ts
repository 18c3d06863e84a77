import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CatalogueError } from '../../lib/content/catalogue-error';
import { DIGEST_READ_BYTES, digestFile } from '../../lib/content/file-digest';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-digest-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function put(name: string, data: Buffer): string {
  const p = path.join(dir, name);
  writeFileSync(p, data);
  return p;
}

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

describe('digestFile', () => {
  // Sizes around the reused buffer's length: each read refills the same buffer, so a byte
  // hashed twice, or one left out, at a read's edge changes the digest.
  it.each([0, 1, 4095, DIGEST_READ_BYTES - 1, DIGEST_READ_BYTES, DIGEST_READ_BYTES + 1, 3 * DIGEST_READ_BYTES + 12345])('is the SHA-256 of a %d-byte file', async (n) => {
    const data = randomBytes(n);
    const p = put(`f${n}.bin`, data);
    expect(Buffer.from(await digestFile(p, n))).toEqual(sha(data));
  });

  it('fails with ERR_OBJECT_CHANGED when the file holds more bytes than expected (it grew)', async () => {
    const p = put('grew.bin', randomBytes(2 * DIGEST_READ_BYTES + 7));
    for (const expected of [0, 5, DIGEST_READ_BYTES, 2 * DIGEST_READ_BYTES + 6]) {
      const err = await digestFile(p, expected).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CatalogueError);
      expect(err).toMatchObject({ code: 'ERR_OBJECT_CHANGED', message: expect.stringContaining('grew') });
    }
  });

  it('fails with ERR_OBJECT_CHANGED when the file holds fewer bytes than expected (it shrank)', async () => {
    const p = put('shrank.bin', randomBytes(DIGEST_READ_BYTES + 3));
    for (const expected of [DIGEST_READ_BYTES + 4, 5 * DIGEST_READ_BYTES]) {
      const err = await digestFile(p, expected).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_OBJECT_CHANGED', message: expect.stringContaining('shrank') });
    }
  });

  it('rejects a missing file with the system error', async () => {
    await expect(digestFile(path.join(dir, 'none.bin'), 1)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
