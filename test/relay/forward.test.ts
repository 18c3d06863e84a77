/**
 * Forward relays (lib/relay/forward-relay.ts, docs/PROTOCOL.md §10.13) in
 * one process over loopback: origin → forward relay A → forward relay B →
 * clients. What is pinned down: B's clients get the files bit-exact; the
 * relays send the upstream's symbols (a client of B sees the origin's
 * ESIs: it never gets an ESI the origin's server-group class does not
 * hold) under their own TSI/TOI; their FDTs list the same names, digests
 * and OTIs; a client combining the origin and a forward relay counts
 * duplicates and still decodes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fetchRqcast, RqcastClient } from '../../lib/client/client';
import { readCatalogue } from '../../lib/client/catalogue-reader';
import { parseRqcastUrl } from '../../lib/client/url';
import { Catalogue } from '../../lib/content/catalogue';
import { ForwardRelay } from '../../lib/relay/forward-relay';
import { RqcastServer } from '../../lib/server/server';
import { LiveSource } from '../../lib/content/live-source';
import { PassThrough, Writable } from 'node:stream';

let dir: string;
const data = { 'one.bin': randomBytes(400_000), 'two.bin': randomBytes(150_000) };

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-forward-'));
  for (const [n, d] of Object.entries(data)) writeFileSync(path.join(dir, n), d);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function relayOf(upstreamPort: number, channels = ''): ForwardRelay {
  return new ForwardRelay({
    upstream: `rqcast://127.0.0.1:${upstreamPort}${channels}`,
    server: { port: 0, host: '127.0.0.1', rateMbps: 60 },
    client: { transport: 'udp' },
  });
}

test('origin → forward relay → forward relay → 3 clients: bit-exact, the origin\'s ESIs, the same names, digests and OTIs; origin + relay combined: decoded', async () => {
  const catalogue = await Catalogue.load([dir], { symbolSize: 1024 });
  // Member 1 of 4: the origin's repair ESIs are ≡ 1 (mod 4) beyond K, and it sends no source symbol.
  const origin = new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', rateMbps: 40, serverGroup: { index: 1, servers: 4 } });
  let b: ForwardRelay | undefined;
  let relayA: ForwardRelay | undefined;
  try {
    const o = await origin.listen();
    relayA = relayOf(o.port);
    const ra = await relayA.start();
    b = relayOf(ra.port);
    const rb = await b.start();
    // The FDT of relay B: the same objects as the origin's.
    const listing = await readCatalogue(parseRqcastUrl(`rqcast://127.0.0.1:${rb.port}`), { timeoutMs: 10_000 });
    const theirs = await readCatalogue(parseRqcastUrl(`rqcast://127.0.0.1:${o.port}`), { timeoutMs: 10_000 });
    const view = (l: typeof listing) => l.channels.flatMap((c) => (c.objects ?? []).map((x) => `${x.name} ${x.size} ${x.sha256}`)).sort();
    expect(view(listing)).toEqual(view(theirs));

    const outs = [0, 1, 2].map(() => mkdtempSync(path.join(dir, 'out-')));
    const esis: number[] = [];
    const clients = outs.map((out, i) => {
      const c = new RqcastClient(`rqcast://127.0.0.1:${rb.port}`, { outputDir: out, transport: 'udp', timeoutMs: 30_000, recordEsis: i === 0 });
      return { c, run: c.fetch() };
    });
    for (const { c, run } of clients) {
      await run;
      if (c === clients[0].c) for (const e of c.stats.esiLog ?? []) if (e.toi !== 0n) esis.push(e.esi);
    }
    for (const out of outs) for (const [n, d] of Object.entries(data)) expect(readFileSync(path.join(out, n)).equals(d)).toBe(true);
    // Every data ESI a client of B got is one the origin (member 1 of 4) sends: no source ESI, repair ESIs ≡ 1 mod 4.
    expect(esis.length).toBeGreaterThan(0);
    const K = catalogue.objects.flatMap((x) => Array.from({ length: x.encoder.sourceBlocks }, (_, sbn) => x.encoder.sourceSymbols(sbn)));
    expect(esis.every((e) => e >= Math.min(...K) && e % 4 === 1)).toBe(true);
    const fa = relayA.forwardCounters().main;
    const fb = b.forwardCounters().main;
    console.log(`[forward] relay A forwarded ${fa.forwarded} (unlisted ${fa.unlisted}, overflow ${fa.overflow}); relay B forwarded ${fb.forwarded} (unlisted ${fb.unlisted}, overflow ${fb.overflow})`);
    expect(fa.malformed + fb.malformed).toBe(0);

    // Origin + relay A: the relay's symbols are the origin's (above), so whatever of them the client already had from the origin
    // is counted as a duplicate (how many depends on when it joined: the relay's ring may still hold symbols sent before); it decodes.
    const both = mkdtempSync(path.join(dir, 'both-'));
    const s = await fetchRqcast([`rqcast://127.0.0.1:${o.port}//one.bin`, `rqcast://127.0.0.1:${ra.port}//one.bin`], { outputDir: both, transport: 'udp', timeoutMs: 30_000 });
    expect(readFileSync(path.join(both, 'one.bin')).equals(data['one.bin'])).toBe(true);
    console.log(`[forward] origin + relay A: symbols ${s.servers?.map((v) => v.symbols).join(' + ')}, duplicates ${s.duplicates}`);
    expect(s.servers?.every((v) => v.symbols > 0)).toBe(true);
  } finally {
    await b?.close();
    await relayA?.close();
    await origin.close();
    catalogue.close();
  }
}, 60_000);

/** A Writable that records each complete line and when it arrived. */
function lineSink(): { sink: Writable; lines: { text: string; at: number }[]; bytes: () => Buffer } {
  const lines: { text: string; at: number }[] = [];
  const chunks: Buffer[] = [];
  let partial = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const at = Date.now();
      chunks.push(chunk);
      const parts = (partial + chunk.toString('latin1')).split('\n');
      partial = parts.pop() as string;
      for (const text of parts) lines.push({ text, at });
      done();
    },
  });
  return { sink, lines, bytes: () => Buffer.concat(chunks) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('a live channel through two forward relays: every line complete and in order, bit-exact; latency through the relays printed beside the origin\'s', async () => {
  const input = new PassThrough();
  const source = new LiveSource({ name: 'cam', dir: mkdtempSync(path.join(dir, 'live-')), blockBytes: 64 * 1024, blockMs: 100 });
  await source.start(input);
  const empty = await Catalogue.load([mkdtempSync(path.join(dir, 'none-'))]);
  const origin = new RqcastServer({ catalogue: empty, port: 0, host: '127.0.0.1', rateMbps: 20, live: [{ name: 'cam', source }] });
  let a: ForwardRelay | undefined;
  let b: ForwardRelay | undefined;
  const written: Buffer[] = [];
  const write = (line: string): void => {
    const buf = Buffer.from(line + '\n', 'latin1');
    written.push(buf);
    input.write(buf);
  };
  try {
    const o = await origin.listen();
    let seq = 0;
    const line = (): string => `${String(seq++).padStart(6, '0')} ${Date.now()} ${'x'.repeat(200)}`;
    write(line());
    a = relayOf(o.port, '/cam');
    const ra = await a.start();
    b = relayOf(ra.port, '/cam');
    const rb = await b.start();
    const direct = lineSink();
    const relayed = lineSink();
    const fetches = [
      new RqcastClient(`rqcast://127.0.0.1:${o.port}/cam/cam`, { playout: direct.sink, fromStart: true, transport: 'udp', timeoutMs: 20_000 }).fetch(),
      new RqcastClient(`rqcast://127.0.0.1:${rb.port}/cam/cam`, { playout: relayed.sink, fromStart: true, transport: 'udp', timeoutMs: 20_000 }).fetch(),
    ];
    // Lines every 10 ms for 2 s, then the end of the input (the FDT says Complete="true" and the playouts end).
    for (let i = 0; i < 200; i++) {
      write(line());
      await new Promise((r) => setTimeout(r, 10));
    }
    input.end();
    await Promise.all(fetches);
    const all = Buffer.concat(written);
    expect(direct.bytes().equals(all)).toBe(true);
    expect(relayed.bytes().equals(all)).toBe(true);
    expect(relayed.lines.map((l) => Number(l.text.slice(0, 6)))).toEqual(Array.from({ length: seq }, (_, i) => i));
    // Latency of the lines written once both were playing (the first ones waited for the relays to start).
    const latency = (ls: { text: string; at: number }[]) => ls.slice(20).map((l) => l.at - Number(l.text.split(' ')[1]));
    const lo = latency(direct.lines);
    const lr = latency(relayed.lines);
    console.log(
      `[forward live] line latency, median / max ms: origin ${median(lo)} / ${Math.max(...lo)}, through two forward relays ${median(lr)} / ${Math.max(...lr)} ` +
        `(segments of --block-ms 100; relay A forwarded ${a.forwardCounters().cam.forwarded}, FDT instances ${a.forwardCounters().cam.instances})`,
    );
  } finally {
    await b?.close();
    await a?.close();
    await origin.close();
    empty.close();
  }
}, 60_000);

test('the upstream of a forward relay stops and comes back on the same port: the relay\'s client, joined meanwhile, finishes once it does (one upstream attempt)', async () => {
  // 1.5 MB: about 1 465 symbols, more than the relay can hold (a 256-slot ring and 256 queued), so the client needs what comes after the return.
  const big = randomBytes(1_500_000);
  const bigDir = mkdtempSync(path.join(dir, 'big-'));
  writeFileSync(path.join(bigDir, 'big.bin'), big);
  const start = async (port: number) => {
    const catalogue = await Catalogue.load([path.join(bigDir, 'big.bin')], { symbolSize: 1024 });
    const server = new RqcastServer({ catalogue, port, host: '127.0.0.1', rateMbps: 40 });
    return { server, catalogue, port: (await server.listen()).port };
  };
  let o: Awaited<ReturnType<typeof start>> | undefined = await start(0);
  const port = o.port;
  const relay = new ForwardRelay({
    upstream: `rqcast://127.0.0.1:${port}`,
    server: { port: 0, host: '127.0.0.1', rateMbps: 60 },
    // A short session: its renewal reaches the restarted origin soon.
    client: { transport: 'udp', ttlMs: 1000 },
  });
  try {
    const r = await relay.start();
    await o.server.close();
    o.catalogue.close();
    o = undefined;
    const before = relay.forwardCounters().main.forwarded;
    const out = mkdtempSync(path.join(dir, 'late-'));
    const run = new RqcastClient(`rqcast://127.0.0.1:${r.port}//big.bin`, { outputDir: out, transport: 'udp', timeoutMs: 30_000 }).fetch();
    // Joined at the relay while nothing comes from upstream; then the origin returns.
    while (relay.downstream!.sessionCount === 0) await new Promise((res) => setTimeout(res, 20));
    o = await start(port);
    await run;
    expect(readFileSync(path.join(out, 'big.bin')).equals(big)).toBe(true);
    expect(relay.forwardCounters().main.forwarded).toBeGreaterThan(before);
    expect(relay.attempts).toBe(1);
  } finally {
    await relay.close();
    await o?.server.close();
    o?.catalogue.close();
  }
}, 60_000);
