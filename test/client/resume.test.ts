/**
 * Resume through the library (RqcastClient's `resume` option) against a
 * scripted server that stops sending part-way: the fetch that times out
 * keeps what it had and says so ('partial'), with the symbols it had
 * gathered but not yet written through; the next fetch reads them back
 * and receives only the rest. Without `resume`, nothing is kept.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { RqcastClient, RqcastClientOptions } from '../../lib/client/client';
import { FetchTimeoutError } from '../../lib/client/errors';
import type { KeptPartial } from '../../lib/client/sinks/sink';
import { parseState } from '../../lib/client/sinks/resume-state';
import type { FakeServerOptions } from './fake-server';
import { scriptedServers } from '../support/scripted-servers';

const scripted = scriptedServers('rqcast-resume-client-');
const serve = scripted.serve;

function client(port: number, o: RqcastClientOptions = {}): RqcastClient {
  return new RqcastClient(`rqcast://127.0.0.1:${port}//r.bin`, { outputDir: scripted.dir, retryMs: 20, ...o });
}

const T = 256;
const DATA = randomBytes(100 * T + 17);
const K = Math.ceil(DATA.length / T);

test('a fetch that stops short keeps its symbols (partial); the next one reads them back and receives only the rest', async () => {
  // 60 packets in all, FDT ones included: about half the object's source symbols, in ESI order (one block).
  // One packet per 2 ms tick: the second fetch reads its kept symbols back (a few file reads) long before the stream
  // alone fills the block (K + 8 symbols), which would leave them nothing to add.
  const { server, port } = await serve({ objects: [{ name: 'r.bin', data: DATA }], unicastPackets: 60, burst: 1 });
  const first = client(port, { resume: 'continue', timeoutMs: 400 });
  const partial: KeptPartial[][] = [];
  first.on('partial', (k) => partial.push(k));
  await expect(first.fetch()).rejects.toBeInstanceOf(FetchTimeoutError);
  expect(partial).toHaveLength(1);
  const kept = partial[0][0];
  expect(kept).toMatchObject({ name: 'r.bin', path: path.join(scripted.dir, 'r.bin'), blocksKept: 0, blocks: 1, bytesKept: 0, bytes: DATA.length });
  // The symbols gathered for one write-through run were written and recorded when the fetch stopped.
  const received = first.stats.packetsReceived;
  expect(kept.symbolBytesKept).toBeGreaterThan(0);
  expect(kept.symbolBytesKept % T).toBe(0);
  expect((await fs.readdir(scripted.dir)).sort()).toEqual(['.r.bin.rqcast-part', '.r.bin.rqcast-state']);
  const journal = parseState(await fs.readFile(path.join(scripted.dir, '.r.bin.rqcast-state')), {
    oti: { transferLength: DATA.length, symbolSize: T, sourceBlocks: 1, subBlocks: 1, alignment: 4 },
    sha256: createHash('sha256').update(DATA).digest(),
  });
  expect(journal.runs.reduce((a, r) => a + r.length, 0)).toBe(kept.symbolBytesKept);
  const keptSymbols = kept.symbolBytesKept / T;
  expect(keptSymbols).toBeLessThanOrEqual(received);

  // The server goes on with fresh symbols (its ESI counters continue).
  (server as unknown as { o: FakeServerOptions }).o.unicastPackets = undefined;
  const second = client(port, { resume: 'continue', timeoutMs: 5000 });
  const s = await second.fetch();
  expect((await fs.readFile(path.join(scripted.dir, 'r.bin'))).equals(DATA)).toBe(true);
  expect(await fs.readdir(scripted.dir)).toEqual(['r.bin']);
  expect(s.symbolsReplayed).toBe(keptSymbols);
  expect(s.symbolsReceived).toBeGreaterThanOrEqual(K - keptSymbols);
  // K - kept, plus at most the margin a block accepts beyond K (8) before an attempt.
  expect(s.symbolsReceived).toBeLessThanOrEqual(K - keptSymbols + 8);
  expect(s.objects[0].symbolsReplayed).toBe(keptSymbols);
});

test('without resume, a fetch that stops short keeps nothing and emits no partial', async () => {
  const { port } = await serve({ objects: [{ name: 'r.bin', data: DATA }], unicastPackets: 60 });
  const first = client(port, { timeoutMs: 400 });
  let partials = 0;
  first.on('partial', () => partials++);
  await expect(first.fetch()).rejects.toBeInstanceOf(FetchTimeoutError);
  expect(partials).toBe(0);
  expect(await fs.readdir(scripted.dir)).toEqual([]);
});
