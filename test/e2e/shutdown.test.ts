/**
 * Clean shutdown and server faults, with real `rqcast serve` and `rqcast
 * fetch` processes on loopback (docs/PROTOCOL.md §6.7, §10.9): what the
 * client is told and what it does, counted from what each process printed,
 * never from how long things took.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NsProcess } from '../support/netns';
import { RqcastClient } from '../../lib/client/client';
import { cliOptions, hostSpawn, lastJson, logLines, perTestProcesses, rqcastArgv, serveOnLoopback, sha256, writeContent } from './helpers';

jest.setTimeout(180_000);

const MIB = 1024 * 1024;
const rig = perTestProcesses('shutdown');
const running = rig.running;

function serve(args: string[]): Promise<{ p: NsProcess; port: number }> {
  return serveOnLoopback(running, args);
}

function fetch(port: number, out: string, ...args: string[]): NsProcess {
  const p = hostSpawn(rqcastArgv('fetch', `rqcast://127.0.0.1:${port}`, '-o', out, '--json', ...args), cliOptions({ timeoutMs: 170_000 }));
  running.push(p);
  return p;
}

test('SIGTERM on serve with a fetch running: the client is told, the server logs "left" and exits 0; the fetch exits 7 and keeps its resume files only', async () => {
  const file = path.join(rig.dir, 'big.bin');
  writeContent(file, 8 * MIB, 13);
  // 8 MiB at 4 Mbit/s: about 17 s, far more than it takes to get going.
  const { p: server, port } = await serve([file, '--rate', '4']);
  const out = path.join(rig.dir, 'out');
  fs.mkdirSync(out);
  const client = fetch(port, out, '--timeout', '120s');
  await client.waitForStdout(/"type":"progress"/, 60_000);

  server.kill('SIGTERM');
  const s = await server.wait();
  expect(s.signal).toBeNull();
  expect(s.code).toBe(0);
  const logs = logLines(s.stderr);
  expect(logs.filter((l) => l.msg === 'leaving').map((l) => l.sessions)).toEqual([1]);
  expect(logs.filter((l) => l.msg === 'left')).toHaveLength(1);
  expect(logs.filter((l) => l.msg === 'closed')).toHaveLength(1);

  const c = await client.wait();
  // 7, not 4: the cause is the notice, not the 120 s timeout.
  expect(c.code).toBe(7);
  expect(c.stderr).toMatch(/the server 127\.0\.0\.1:\d+ shut down before the transfer completed; run the same fetch again/);
  // A server that left is a stop like any other: what was received is kept for the next fetch (resume), nothing else.
  const partial = c.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { type?: string; name?: string })
    .filter((l) => l.type === 'partial');
  expect(partial.map((k) => k.name)).toEqual(['big.bin']);
  expect(fs.readdirSync(out).sort()).toEqual(['.big.bin.rqcast-part', '.big.bin.rqcast-state']);
});

test('the control: a fetch that ends normally exits 0; after the server left, a new fetch finds nobody and times out (4)', async () => {
  const file = path.join(rig.dir, 'small.bin');
  writeContent(file, 64 * 1024, 14);
  const { p: server, port } = await serve([file, '--rate', '50']);
  const out = path.join(rig.dir, 'out');
  fs.mkdirSync(out);
  const ok = await fetch(port, out).wait();
  expect(ok.code).toBe(0);
  expect(lastJson(ok.stdout)).toMatchObject({ type: 'summary' });
  server.kill('SIGTERM');
  expect((await server.wait()).code).toBe(0);
  const late = await fetch(port, path.join(rig.dir, 'late'), '--timeout', '1s').wait();
  expect(late.code).toBe(4);
});

test('a file truncated while served: the server withdraws the object once (one log line, its reason once), announces an FDT without it, and the fetch stops at once with a clear error', async () => {
  const file = path.join(rig.dir, 'big.bin');
  writeContent(file, 64 * MIB, 15);
  // --memory 40: a sliding window; at "listening" only the first window and
  // the block after it are prepared, the later blocks are read when the
  // window reaches them, after the truncation below.
  // --no-watch: the withdrawal alone (a watched file would also be announced again, truncated, once settled).
  const { p: server, port } = await serve([file, '--rate', '200', '--memory', '40', '--no-watch']);
  fs.truncateSync(file, 10_000_000);
  const out = path.join(rig.dir, 'out');
  fs.mkdirSync(out);
  const c = await fetch(port, out, '--timeout', '120s').wait();
  expect(c.code).toBe(1);
  expect(c.stderr).toMatch(/the server withdrew "big\.bin" while it was being fetched/);
  expect(fs.readdirSync(out)).toEqual([]);
  server.kill('SIGTERM');
  const s = await server.wait();
  expect(s.code).toBe(0);
  const logs = logLines(s.stderr);
  const withdrawn = logs.filter((l) => l.msg === 'object withdrawn: it can no longer be served as announced');
  expect(withdrawn).toHaveLength(1);
  // Caught before the block is read: the file is not the one announced (its size and mtime changed).
  expect(withdrawn[0]).toMatchObject({ object: 'big.bin', toi: 1, code: 'ERR_OBJECT_CHANGED', channels: ['main'] });
  const reason = String(withdrawn[0].reason);
  expect(reason.length).toBeGreaterThan(0);
  expect(reason.indexOf(reason.slice(0, 20), 1)).toBe(-1);
  expect(logs.filter((l) => l.msg === 'a block could not be prepared')).toEqual([]);
});

test('a server killed (-9) and restarted mid-fetch: the client rejoins at once (no renewal wait), gets no repair symbol it already held, and finishes', async () => {
  const file = path.join(rig.dir, 'obj.bin');
  const digest = writeContent(file, 4 * MIB, 16);
  const first = await serve([file, '--rate', '8']);
  const out = path.join(rig.dir, 'out');
  fs.mkdirSync(out);
  // 70% of the packets dropped by the client's own hook: by the time it holds
  // 60% of K it has been given repair symbols too (the first pass sent K).
  const client = new RqcastClient(`rqcast://127.0.0.1:${first.port}`, {
    outputDir: out,
    lossRate: 0.7,
    lossSeed: 7,
    recordEsis: true,
    transport: 'udp',
    ttlMs: 30_000,
    timeoutMs: 60_000,
    progressIntervalMs: 50,
  });
  let killedAt = -1;
  let restarted: Promise<{ p: NsProcess; port: number }> | undefined;
  client.on('progress', (p) => {
    if (restarted || p.neededSymbols === 0 || p.heldSymbols < 0.6 * p.neededSymbols) return;
    killedAt = client.stats.esiLog.length;
    first.p.kill('SIGKILL');
    restarted = first.p.wait().then(() => serve([file, '--rate', '8', '--port', String(first.port)]));
  });
  const done = client.fetch();
  const summary = await done;
  await restarted;
  expect(killedAt).toBeGreaterThan(0);
  expect(summary.objects).toHaveLength(1);
  expect(sha256(path.join(out, 'obj.bin'))).toBe(digest);
  // The session came back by the prompt rejoin, not by its renewal 15 s later.
  expect(client.stats.rejoins).toBeGreaterThanOrEqual(1);
  expect(client.stats.renewals).toBeGreaterThanOrEqual(1);
  // Symbols of the second run that the first had sent: none among repair ESIs.
  const k = summary.neededSymbols; // one block: K
  const objectEsis = (from: number, to?: number): number[] =>
    client.stats.esiLog
      .slice(from, to)
      .filter((e) => e.toi === 1n)
      .map((e) => e.esi);
  const before = new Set(objectEsis(0, killedAt));
  const after = objectEsis(killedAt);
  const repairRepeats = after.filter((esi) => esi >= k && before.has(esi)).length;
  const sourceRepeats = after.filter((esi) => esi < k && before.has(esi)).length;
  const heldRepair = [...before].filter((esi) => esi >= k).length;
  expect(heldRepair).toBeGreaterThan(0);
  expect(repairRepeats).toBe(0);
  // The source symbols go first again on every start (§10.4): at most the ones held.
  expect(sourceRepeats).toBeLessThanOrEqual(k);
  process.stdout.write(`restart: K=${k} held before kill: ${before.size} (repair ${heldRepair}); after: ${after.length} received, source repeats ${sourceRepeats}, repair repeats ${repairRepeats}; rejoins ${client.stats.rejoins}\n`);
});
