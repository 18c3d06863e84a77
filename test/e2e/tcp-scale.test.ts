// Many TCP clients on one rqcast server (issue 9): 200 connections at once
// from one client namespace (test/e2e/tcp-many-probe.js: 200 fetches in one
// process, each its own kernel TCP connection), every one bit-exact within
// its 120 s timeout (a starved connection fails the run). The spread of the
// fetches' times is printed, not asserted: tests hold no timing thresholds.
import * as fs from 'fs';
import * as path from 'path';
import { probeNetns, Testbed } from '../support/netns';
import { describeRun, lastJson, startServer, stopProcess, tempDir, transpiledRoot, writeContent } from './helpers';

const probe = probeNetns();
if (!probe.ok) console.warn(`skipping e2e TCP scale test: ${probe.reason}`);
const describeNetns = probe.ok ? describe : describe.skip;

const PORT = 4433;
const CLIENTS = Number(process.env.TCP_CLIENTS ?? 200);
const PROBE = path.join(__dirname, 'tcp-many-probe.js');

describeNetns(`${CLIENTS} TCP clients on one server`, () => {
  let bed: Testbed;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir('tcp-scale');
    bed = await Testbed.create({ clients: 1 });
  });

  afterAll(() => {
    bed?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves every one bit-exact', async () => {
    const source = path.join(dir, 'S.bin');
    const digest = writeContent(source, 300_007, 11);
    const server = await startServer(bed, bed.server.ns, [source, '--bind', bed.server.address, '--port', String(PORT), '--tcp', '--rate', '200', '--max-sessions-per-address', String(CLIENTS)]);
    try {
      const out = path.join(dir, 'out');
      const r = await bed.run(bed.clients[0].ns, [process.execPath, PROBE, transpiledRoot(), `rqcast://${bed.server.address}:${PORT}`, out, String(CLIENTS)], { timeoutMs: 240_000 });
      expect({ code: r.code, run: r.code === 0 ? '' : describeRun('probe', r) }).toEqual({ code: 0, run: '' });
      const got = lastJson(r.stdout) as { fetches: { seconds: number; sha256: string[] }[]; failed: number; errors: string[] };
      expect({ failed: got.failed, errors: got.errors }).toEqual({ failed: 0, errors: [] });
      expect(got.fetches).toHaveLength(CLIENTS);
      for (const f of got.fetches) expect(f.sha256).toEqual([digest]);
      const times = got.fetches.map((f) => f.seconds).sort((a, b) => a - b);
      console.log(`${CLIENTS} TCP fetches: fastest ${times[0].toFixed(2)} s, median ${times[times.length >> 1].toFixed(2)} s, slowest ${times[times.length - 1].toFixed(2)} s`);
    } finally {
      await stopProcess(server);
    }
  }, 300_000);
});
