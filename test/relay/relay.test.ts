/**
 * Relay (lib/relay/relay.ts) in one process over loopback: an origin
 * RqcastServer, a Relay fed by it, a client of the relay. The namespace
 * tests (test/e2e/relay.test.ts) run the CLI; these pin down what the relay
 * serves: the upstream's channels under the same names, only the wanted
 * objects, with the upstream's name, digest and OTI.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fetchRqcast } from '../../lib/client/client';
import { Catalogue } from '../../lib/content/catalogue';
import { Relay } from '../../lib/relay/relay';
import { RqcastServer } from '../../lib/server/server';

let dir: string;
const data = { 'one.bin': randomBytes(300_000), 'two.bin': randomBytes(200_000) };

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-relay-unit-'));
  for (const [n, d] of Object.entries(data)) writeFileSync(path.join(dir, n), d);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the relay serves the upstream channels it was asked for, under the same names, with the same digests and OTIs; a channel with no wanted object is left out, with a warning', async () => {
  const catalogue = await Catalogue.load([dir], { symbolSize: 1024 });
  const origin = new RqcastServer({
    catalogue,
    port: 0,
    host: '127.0.0.1',
    rateMbps: 40,
    channels: [
      { name: 'a', objects: ['one.bin'] },
      { name: 'b', objects: ['two.bin'] },
    ],
    serverGroup: { index: 0, servers: 2 },
  });
  const spool = mkdtempSync(path.join(dir, 'spool-'));
  let relay: Relay | undefined;
  try {
    const o = await origin.listen();
    relay = new Relay({
      upstream: `rqcast://127.0.0.1:${o.port}/a,b/one.bin`,
      spoolDir: spool,
      server: { port: 0, host: '127.0.0.1', rateMbps: 40, serverGroup: { index: 1, servers: 2 } },
      client: { transport: 'udp' },
    });
    const warnings: string[] = [];
    relay.on('warning', (w) => warnings.push(w));
    const r = await relay.start();
    const served = relay.downstream!;
    expect(served.channels.map((c) => [c.name, c.objects.map((x) => x.name)])).toEqual([['a', ['one.bin']]]);
    expect(warnings.some((w) => /channel b has no object to relay/.test(w))).toBe(true);
    const mine = served.catalogue.get('one.bin')!;
    const theirs = catalogue.get('one.bin')!;
    expect(Buffer.from(mine.sha256).equals(Buffer.from(theirs.sha256))).toBe(true);
    // The upstream's symbol size, not the default: the same OTI, so a client can combine them.
    expect(Buffer.from(mine.encoder.otiInfo.toBytes()).equals(Buffer.from(theirs.encoder.otiInfo.toBytes()))).toBe(true);
    expect(served.serverGroup).toEqual({ index: 1, servers: 2 });
    const out = mkdtempSync(path.join(dir, 'out-'));
    const summary = await fetchRqcast([`rqcast://127.0.0.1:${o.port}/a/one.bin`, `rqcast://127.0.0.1:${r.port}/a/one.bin`], { outputDir: out, transport: 'udp', timeoutMs: 20_000 });
    expect(readFileSync(path.join(out, 'one.bin')).equals(data['one.bin'])).toBe(true);
    expect(summary.duplicates).toBe(0);
    expect(summary.servers?.every((s) => s.symbols > 0)).toBe(true);
  } finally {
    await relay?.close();
    await origin.close();
    catalogue.close();
  }
}, 60_000);
