import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { tryParseFdt } from '../../lib/protocol/fdt';
import { decodeOti, encodeOti } from '../../lib/protocol/oti';
import {
  BadObjectNameError,
  Catalogue,
  DuplicateObjectNameError,
  CatalogueError,
  EmptyObjectError,
  ObjectNotFoundError,
  isSafeObjectName,
  encoderOptionsFor,
} from '../../lib/content/catalogue';
import { chooseOti } from '../../lib/fec/encoder';
import { loadNative } from '../../lib/native';

let dir: string;
const contents = new Map<string, Buffer>();

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-cat-'));
  const put = (rel: string, data: Buffer): void => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), data);
    contents.set(rel, data);
  };
  put('site/index.html', randomBytes(3000));
  put('site/img/a.png', randomBytes(200_000));
  put('site/empty.txt', Buffer.alloc(0));
  put('one.bin', randomBytes(1));
  put('big.bin', randomBytes(5_000_000));
  put('bad\\name.bin', randomBytes(10));
  put('names/a b.bin', randomBytes(100));
  put('names/é/ü 100%.txt', randomBytes(50));
  put('names/ctl\u0001.bin', randomBytes(5));
  put('names/z.bin', randomBytes(7));
  put('zero.bin', Buffer.alloc(0));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

describe('Catalogue.load', () => {
  test('files and directories: names, TOIs 1..n, lengths, SHA-256, one T', async () => {
    const cat = await Catalogue.load([path.join(dir, 'one.bin'), path.join(dir, 'site'), path.join(dir, 'big.bin')]);
    try {
      expect(cat.objects.map((o) => o.name)).toEqual(['one.bin', 'img/a.png', 'index.html', 'big.bin']);
      expect(cat.objects.map((o) => o.toi)).toEqual([1, 2, 3, 4]);
      const src: Record<string, string> = { 'one.bin': 'one.bin', 'img/a.png': 'site/img/a.png', 'index.html': 'site/index.html', 'big.bin': 'big.bin' };
      for (const o of cat.objects) {
        const data = contents.get(src[o.name]) as Buffer;
        expect(o.length).toBe(data.length);
        expect(Buffer.from(o.sha256)).toEqual(Buffer.from(sha(data)));
        expect(o.oti.T).toBe(1280);
        expect(o.oti.F).toBe(data.length);
        expect(cat.byToi(o.toi)).toBe(o);
        expect(cat.get(o.name)).toBe(o);
      }
      // Every block §4.3 derived for 5 MB decodes from repair symbols alone:
      const big = cat.get('big.bin')!;
      const dec = new ObjectDecoder(big.encoder.oti);
      for (let sbn = 0; sbn < big.encoder.sourceBlocks; sbn++) {
        const k = big.encoder.sourceSymbols(sbn);
        // Repair symbols only: proves the encoder really holds the file.
        dec.pushBatch(big.encoder.packets(sbn, k, k + 2));
      }
      expect(dec.complete).toBe(true);
      expect(Buffer.from(dec.result()).equals(contents.get('big.bin') as Buffer)).toBe(true);
      dec.close();
      expect(cat.skipped.map((s) => path.basename(s.path))).toEqual(['empty.txt']);
      expect(cat.objectsUnder(path.join(dir, 'site')).map((o) => o.name)).toEqual(['img/a.png', 'index.html']);
    } finally {
      cat.close();
    }
  });

  test('symbol size option sets T of every object', async () => {
    const cat = await Catalogue.load([path.join(dir, 'site')], { symbolSize: 512 });
    try {
      expect(cat.objects.every((o) => o.oti.T === 512)).toBe(true);
    } finally {
      cat.close();
    }
  });

  test('refusals: missing path, empty FILE argument, unsafe name, duplicate name', async () => {
    await expect(Catalogue.load([path.join(dir, 'nope')])).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(Catalogue.load([path.join(dir, 'zero.bin')])).rejects.toBeInstanceOf(EmptyObjectError);
    await expect(Catalogue.load([path.join(dir, 'bad\\name.bin')])).rejects.toBeInstanceOf(BadObjectNameError);
    await expect(Catalogue.load([path.join(dir, 'one.bin'), path.join(dir, 'one.bin')])).rejects.toBeInstanceOf(
      DuplicateObjectNameError,
    );
  });

  test('a DIR with names that need encoding: served; one no client could write: skipped with its reason, the rest served', async () => {
    const cat = await Catalogue.load([path.join(dir, 'names')]);
    try {
      expect(cat.objects.map((o) => o.name)).toEqual(['a b.bin', 'z.bin', 'é/ü 100%.txt']);
      expect(cat.skipped).toEqual([{ path: path.join(dir, 'names', 'ctl\u0001.bin'), reason: 'name cannot be served: a control character in the name' }]);
      const fdt = cat.fdt(cat.objects, 1, Date.UTC(2030, 0, 1));
      expect(fdt.xml).toContain('Content-Location="a%20b.bin"');
      expect(fdt.xml).toContain('Content-Location="%C3%A9/%C3%BC%20100%25.txt"');
    } finally {
      cat.close();
    }
    await expect(Catalogue.load([path.join(dir, 'names', 'ctl\u0001.bin')])).rejects.toThrow(/cannot be served: a control character/);
  });

  test.each([
    ['a.txt', true],
    ['dir/sub/a-b_c~d.e', true],
    ['', false],
    ['/abs', false],
    ['a/../b', false],
    ['./a', false],
    ['a//b', false],
    ['a b', true],
    ['é/ü 1%.txt', true],
    ['a\\b', false],
    ['a\u0001b', false],
    ['a\u007fb', false],
    ['bad\uFFFDutf8', false],
    ['x'.repeat(1025), false],
    ['\u4e00'.repeat(1000), false],
  ])('isSafeObjectName(%j) = %s', (name, ok) => {
    expect(isSafeObjectName(name)).toBe(ok);
  });
});

describe('FDT', () => {
  test('round trip through tryParseFdt; the FDT object decodes from its own packets', async () => {
    const cat = await Catalogue.load([path.join(dir, 'site'), path.join(dir, 'one.bin')]);
    try {
      const fdt = cat.fdt(cat.objects, 7, Date.UTC(2030, 0, 1));
      expect(fdt.instanceId).toBe(7);
      expect(fdt.encoder.symbolSize).toBe(1280);
      const dec = new ObjectDecoder(fdt.encoder.oti);
      dec.pushBatch(fdt.encoder.packets(0, 1000, fdt.encoder.sourceSymbols(0) + 1));
      expect(dec.complete).toBe(true);
      const parsed = tryParseFdt(dec.result());
      dec.close();
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) return;
      expect(parsed.fdt.files).toHaveLength(cat.objects.length);
      expect(parsed.fdt.expiresAtMs).toBeGreaterThan(Date.UTC(2030, 0, 1));
      for (const o of cat.objects) {
        const f = parsed.fdt.files.find((x) => x.toi === BigInt(o.toi))!;
        expect(f.contentLocation).toBe(o.name);
        expect(f.contentLength).toBe(o.length);
        expect(f.transferLength).toBe(o.length);
        expect(Buffer.from(f.sha256!)).toEqual(Buffer.from(o.sha256));
        expect(f.fecEncodingId).toBe(6);
        // The OTI in the FDT is the encoder's, byte for byte.
        expect(Buffer.from(encodeOti(f.oti!))).toEqual(Buffer.from(o.encoder.oti));
        expect(decodeOti(o.encoder.oti)).toEqual(f.oti);
      }
      fdt.encoder.close();
    } finally {
      cat.close();
    }
  });
});

describe('encoderOptionsFor: objects beyond the default 256 x 16 MiB', () => {
  test.each([1, 300e6, 4.29e9, 4.5e9, 10e9, 18e9])('F = %d at T = 1280: Z <= 256, blocks of at most 16 MiB when that is enough', (F) => {
    const oti = chooseOti(F, encoderOptionsFor(F, 1280), loadNative());
    expect(oti.Z).toBeLessThanOrEqual(256);
    expect(oti.F).toBe(F);
    if (F <= 4e9) expect(oti.layout.KL * 1280).toBeLessThanOrEqual(16 * 1024 * 1024);
  });
  test('beyond 256 blocks of 56403 symbols the codec refuses, with its typed error', () => {
    expect(() => chooseOti(20e9, encoderOptionsFor(20e9, 1280), loadNative())).toThrow(/more than 56403 symbols/);
  });
});
