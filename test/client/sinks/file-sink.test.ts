/**
 * The file sink: where each object is written, which names and paths it
 * refuses, and that its temporary file exists only from the first write
 * until commit or abort.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DigestMismatchError, UnfetchableObjectError } from '../../../lib/client/errors';
import { FileSinkFactory } from '../../../lib/client/sinks/file-sink';
import { ObjectFileWriter } from '../../../lib/client/sinks/file-writer';
import type { SinkObject } from '../../../lib/client/sinks/sink';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-fsink-'));
});
afterEach(async () => {
  jest.restoreAllMocks();
  await fs.rm(dir, { recursive: true, force: true });
});

function object(name: string, data: Buffer, sha256 = createHash('sha256').update(data).digest()): SinkObject {
  return { name, sha256, oti: { transferLength: data.length, symbolSize: 256, sourceBlocks: 1, subBlocks: 1, alignment: 4 } };
}

describe('FileSinkFactory', () => {
  test('an object goes under the output directory at its sanitised name; with an output file, there', () => {
    const data = randomBytes(10);
    expect(new FileSinkFactory({ outputDir: dir }).open(object('/a//./b\\c.bin', data)).path).toBe(path.join(dir, 'a', 'b', 'c.bin'));
    const out = path.join(dir, 'exact.dat');
    expect(new FileSinkFactory({ outputDir: dir, outputFile: out }).open(object('any/name', data)).path).toBe(out);
  });

  test('unsafe names and a path already in use are refused (UnfetchableObjectError)', () => {
    const f = new FileSinkFactory({ outputDir: dir });
    const data = randomBytes(10);
    expect(() => f.open(object('../evil', data))).toThrow(UnfetchableObjectError);
    f.open(object('a/b', data));
    expect(() => f.open(object('a\\b', data))).toThrow(/already used by "a\/b"/);
  });
});

describe('FileSink', () => {
  test('no file until the first write; blocks in any order; commit verifies and renames', async () => {
    const data = randomBytes(3000);
    const sink = new FileSinkFactory({ outputDir: dir }).open(object('x.bin', data));
    expect(await fs.readdir(dir)).toEqual([]);
    sink.prewrite(0, data.subarray(0, 1000));
    await sink.writeBlock(2, 2000, data.subarray(2000));
    await sink.writeBlock(0, 0, data.subarray(0, 1000));
    await sink.writeBlock(1, 1000, data.subarray(1000, 2000));
    expect((await fs.readdir(dir)).filter((n) => n.includes('rqcast-tmp'))).toHaveLength(1);
    await sink.commit();
    expect(await fs.readdir(dir)).toEqual(['x.bin']);
    expect((await fs.readFile(path.join(dir, 'x.bin'))).equals(data)).toBe(true);
  });

  test('a digest mismatch: DigestMismatchError, no file under any name', async () => {
    const data = randomBytes(500);
    const sink = new FileSinkFactory({ outputDir: dir }).open(object('x.bin', data, Buffer.alloc(32, 1)));
    await sink.writeBlock(0, 0, data);
    await expect(sink.commit()).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  test('abort removes the temporary file; with nothing written it does nothing', async () => {
    const data = randomBytes(500);
    const f = new FileSinkFactory({ outputDir: dir });
    const idle = f.open(object('idle', data));
    await idle.abort();
    const sink = f.open(object('x.bin', data));
    await sink.writeBlock(0, 0, data.subarray(0, 100));
    await sink.abort();
    expect(await fs.readdir(dir)).toEqual([]);
  });

  test('the writer keeps early blocks within holdBytes, read when it is created', async () => {
    const created: ObjectFileWriter[] = [];
    const real = ObjectFileWriter.create.bind(ObjectFileWriter);
    jest.spyOn(ObjectFileWriter, 'create').mockImplementation(async (p, n) => {
      const w = await real(p, n);
      created.push(w);
      return w;
    });
    let limit = 1234;
    const data = randomBytes(100);
    const sink = new FileSinkFactory({ outputDir: dir, holdBytes: () => limit }).open(object('x', data));
    limit = 999;
    await sink.writeBlock(0, 0, data);
    expect(created[0].holdBytes).toBe(999);
    await sink.abort();
  });
});
