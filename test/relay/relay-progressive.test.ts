/**
 * A regenerating relay (lib/relay/relay.ts, docs/PROTOCOL.md §10.13) serves
 * each object as soon as it is complete, and goes on when its upstream
 * stops and comes back. In one process over loopback: an origin with a
 * small and a large file; the relay opens once the small one is complete
 * (the large one still partial), the origin stops (no goodbye: a crash),
 * a client gets the small one from the relay bit-exact meanwhile; the
 * origin starts again on the same port; the relay's one upstream fetch
 * finishes the large one (no second attempt) and adds it to its channel,
 * and a client gets it bit-exact.
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
const small = randomBytes(30_000);
const large = randomBytes(1_500_000);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-relay-progressive-'));
  writeFileSync(path.join(dir, 'a.bin'), small);
  writeFileSync(path.join(dir, 'b.bin'), large);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function origin(port: number): Promise<{ server: RqcastServer; catalogue: Catalogue; port: number }> {
  const catalogue = await Catalogue.load([path.join(dir, 'a.bin'), path.join(dir, 'b.bin')], { symbolSize: 1024 });
  // 6 Mbit/s: the large file takes 2 s or more, the small one a few tens of ms.
  const server = new RqcastServer({ catalogue, port, host: '127.0.0.1', rateMbps: 6 });
  return { server, catalogue, port: (await server.listen()).port };
}

test('serves the complete object while another is partial; upstream stops: still serves it; upstream back: the partial one finishes (one attempt) and is served', async () => {
  let o: { server: RqcastServer; catalogue: Catalogue; port: number } | undefined = await origin(0);
  const port = o.port;
  const relay = new Relay({
    upstream: `rqcast://127.0.0.1:${port}`,
    spoolDir: mkdtempSync(path.join(dir, 'spool-')),
    server: { port: 0, host: '127.0.0.1', rateMbps: 40 },
    // A short session: its renewal reaches the restarted origin soon (§10.13, upstream losses).
    client: { transport: 'udp', ttlMs: 1000 },
  });
  const completed: string[] = [];
  relay.on('upstream-object', (x) => completed.push(x.name));
  try {
    const r = await relay.start();
    const served = () => relay.downstream!.channels[0].objects.map((x) => x.name);
    // Open with the small object only: the large one is still partial.
    expect(served()).toEqual(['a.bin']);
    await o.server.close();
    o.catalogue.close();
    o = undefined;
    expect(completed).toEqual(['a.bin']);
    const out = mkdtempSync(path.join(dir, 'out-'));
    await fetchRqcast(`rqcast://127.0.0.1:${r.port}//a.bin`, { outputDir: out, transport: 'udp', timeoutMs: 20_000 });
    expect(readFileSync(path.join(out, 'a.bin')).equals(small)).toBe(true);
    // The upstream returns on the same port.
    o = await origin(port);
    while (!served().includes('b.bin')) await new Promise((res) => setTimeout(res, 20));
    expect(completed).toEqual(['a.bin', 'b.bin']);
    expect(relay.attempts).toBe(1);
    await fetchRqcast(`rqcast://127.0.0.1:${r.port}//b.bin`, { outputDir: out, transport: 'udp', timeoutMs: 30_000 });
    expect(readFileSync(path.join(out, 'b.bin')).equals(large)).toBe(true);
  } finally {
    await relay.close();
    await o?.server.close();
    o?.catalogue.close();
  }
}, 60_000);
