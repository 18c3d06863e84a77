/**
 * `rqcast ls` against a real server on loopback: every channel with its
 * rate and transports and each object's name, size and SHA-256, as text
 * and as JSON; a channel subset; the refusals and the timeout.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as path from 'node:path';
import { parseChannelSpec } from '../../lib/cli/serve';
import { runLs } from '../../lib/cli/ls';
import { FakeServer } from '../client/fake-server';
import { runHere, servedFiles } from './support';

const files: Record<string, Buffer> = { 'a.bin': randomBytes(40_000), 'b.txt': Buffer.from('bee\n'), 'c d/é.bin': randomBytes(2_000_000) };
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const served = servedFiles('rqcast-ls-', files, (src) => ({ rate: 200, channel: [parseChannelSpec(`hd:${path.join(src, 'a.bin')}:50.5`)] }));

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

async function ls(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const [url, ...rest] = args;
  const code = await runLs(url, { json: rest.includes('--json'), timeout: rest.includes('--short') ? 1000 : 10_000 }, (t) => (out += t));
  return { code, out };
}

test('every channel and its objects, as text; each session it opened has left', async () => {
  const before = served.serving.server.counters;
  const r = await ls([served.base]);
  expect(r.code).toBe(0);
  // Two sessions: main first (its FDT lists hd), then hd; both LEAVE once their FDT is read.
  const after = served.serving.server.counters;
  expect(after.sessionsStarted - before.sessionsStarted).toBe(2);
  await waitFor(() => served.serving.server.counters.sessionsLeft - before.sessionsLeft === 2);
  expect(served.serving.server.sessionCount).toBe(0);
  const p = (name: string): string => sha(files[name]).slice(0, 12);
  expect(r.out).toBe(
    [
      'channel main (tsi 1): 200 Mbit/s, udp',
      `  a.bin      39.1 KiB  ${p('a.bin')}`,
      `  b.txt           4 B  ${p('b.txt')}`,
      `  c d/é.bin  1.91 MiB  ${p('c d/é.bin')}`,
      'channel hd (tsi 2): 50.5 Mbit/s, udp',
      `  a.bin  39.1 KiB  ${p('a.bin')}`,
      '',
    ].join('\n'),
  );
});

test('--json: full digests, sizes in bytes, rates in bit/s, TSIs and TOIs', async () => {
  const r = await ls([served.base, '--json']);
  expect(r.code).toBe(0);
  const listing = JSON.parse(r.out) as { type: string; channels: unknown[] };
  const obj = (toi: number, name: string): unknown => ({ name, toi, size: files[name].length, sha256: sha(files[name]) });
  expect(listing).toEqual({
    type: 'listing',
    channels: [
      { name: 'main', tsi: 1, rateBps: 200_000_000, transports: ['udp'], objects: [obj(1, 'a.bin'), obj(2, 'b.txt'), obj(3, 'c d/é.bin')] },
      { name: 'hd', tsi: 2, rateBps: 50_500_000, transports: ['udp'], objects: [obj(1, 'a.bin')] },
    ],
  });
});

test('the URL\'s channels only; a one-segment URL is a channel here', async () => {
  const r = await ls([`${served.base}/hd`, '--json']);
  expect(r.code).toBe(0);
  const listing = JSON.parse(r.out) as { channels: { name: string }[] };
  expect(listing.channels.map((c) => c.name)).toEqual(['hd']);
});

test('through main.ts: no such channel exits 3 saying what to do, a NAME exits 2, silence exits 4', async () => {
  const refused = await runHere(['ls', `${served.base}/nosuch`]);
  expect(refused.code).toBe(3);
  expect(refused.stderr).toMatch(/^rqcast ls: server refused the join: unknown channel nosuch: name channels the server has/);
  const named = await runHere(['ls', `${served.base}//a.bin`]);
  expect(named.code).toBe(2);
  expect(named.stderr).toMatch(/without an object NAME/);
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  try {
    const timeout = await runHere(['ls', `rqcast://127.0.0.1:${silent.address().port}`, '--timeout', '1s']);
    expect(timeout.code).toBe(4);
    expect(timeout.stderr).toMatch(/no answer from the server for 1 s/);
  } finally {
    silent.close();
  }
});

describe('a server whose channel list says more than it serves', () => {
  let fake: FakeServer;
  afterAll(async () => fake?.close());

  test('a listed channel it refuses is listed without objects; the others in full', async () => {
    fake = new FakeServer({
      objects: [{ name: 'x.bin', data: Buffer.from('x') }],
      channels: { main: 1, hd: 2 },
      fdtChannels: [
        { name: 'main', rateBps: 1e6, transports: ['udp'] },
        { name: 'hd', rateBps: 2e6, transports: ['udp', 'tcp'] },
        { name: 'ghost', rateBps: 3e6, transports: ['udp'] },
      ],
    });
    const port = await fake.listen();
    const r = await ls([`rqcast://127.0.0.1:${port}`]);
    expect(r.code).toBe(0);
    const p = sha(Buffer.from('x')).slice(0, 12);
    // hd and ghost go in one JOIN, which the server refuses (ghost): both are listed from main's FDT alone.
    expect(r.out).toBe(['channel main (tsi 1): 1 Mbit/s, udp', `  x.bin  1 B  ${p}`, 'channel hd: 2 Mbit/s, udp, tcp', '  (objects not read)', 'channel ghost: 3 Mbit/s, udp', '  (objects not read)', ''].join('\n'));
  });
});
