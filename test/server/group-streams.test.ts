/**
 * A channel's group stream (lib/server/group-streams.ts, docs/PROTOCOL.md
 * §10.10) on its own, built by RqcastServer but driven by hand (no
 * replicator, no sockets): the same TSI, objects and FDT instance as the
 * unicast stream, ESIs from the same counters in coded mode (never one
 * twice across both), a carousel of its own in no-code mode, its own
 * EXT_RQSEQ sequence, and an FDT a receiver of the group alone can decode.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ObjectDecoder } from '../../lib/fec/decoder';
import type { AlcPacket } from '../../lib/protocol/alc';
import { tryParseFdt } from '../../lib/protocol/fdt';
import { Catalogue } from '../../lib/content/catalogue';
import { GROUP_STREAM_CHANNEL_FLAG, groupChannelId } from '../../lib/server/group-streams';
import { RqcastServer, type RqcastServerOptions } from '../../lib/server/server';
import { codecPacket, takePackets } from '../support/stream-packets';

let dir: string;
let catalogue: Catalogue;
let files: Record<string, Buffer>;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-group-'));
  files = { 'a.bin': randomBytes(40 * 1280), 'b.bin': randomBytes(7_000) };
  for (const [n, d] of Object.entries(files)) writeFileSync(path.join(dir, n), d);
  catalogue = await Catalogue.load([dir]);
});

afterAll(() => {
  catalogue.close();
  rmSync(dir, { recursive: true, force: true });
});

const GROUP = { group: '239.7.7.7', port: 7000 };

function server(options: Partial<RqcastServerOptions> = {}): RqcastServer {
  return new RqcastServer({ catalogue, prepare: false, channels: [{ name: 'main', multicast: GROUP }, { name: 'plain' }], ...options });
}

function key(p: AlcPacket): string {
  return `${p.toi}/${p.sbn}/${p.esi}`;
}

test('replicator channel of a group stream: bit 31 over the TSI', () => {
  expect(GROUP_STREAM_CHANNEL_FLAG).toBe(2 ** 31);
  expect(groupChannelId(1)).toBe(0x80000001);
  expect(groupChannelId(2 ** 31 - 1)).toBe(2 ** 32 - 1);
  expect(groupChannelId(5)).toBeGreaterThan(0);
});

test('only a channel with a group has a group stream, on the same TSI, objects and FDT instance', async () => {
  const s = server();
  try {
    const [main, plain] = s.channels;
    expect(plain.multicast).toBeUndefined();
    const g = main.multicast!;
    expect(g).toMatchObject({ group: '239.7.7.7', port: 7000, ttl: 1, loop: true, channelId: 0x80000001 });
    expect(g.stream).not.toBe(main.stream);
    expect(g.stream.tsi).toBe(main.tsi);
    expect(g.stream.slotSize).toBe(main.stream.slotSize);
    expect(g.stream.windowBlocks).toBe(main.stream.windowBlocks);
  } finally {
    await s.close();
  }
});

test('coded: the two streams never carry the same ESI of a block, FDT included; each has its own EXT_RQSEQ', async () => {
  const s = server();
  try {
    const [main] = s.channels;
    const g = main.multicast!;
    const seen = new Map<string, string>();
    const seqs: Record<string, number[]> = { unicast: [], group: [] };
    for (let round = 0; round < 30; round++) {
      for (const [name, stream] of [
        ['unicast', main.stream],
        ['group', g.stream],
      ] as const) {
        for (const p of takePackets(stream, 17)) {
          expect(p.tsi).toBe(1);
          expect(seen.get(key(p))).toBeUndefined();
          seen.set(key(p), name);
          seqs[name].push(p.sequence!);
        }
      }
    }
    // Both streams carried FDT and object packets.
    for (const name of ['unicast', 'group']) {
      const mine = Array.from(seen).filter(([, n]) => n === name).map(([k]) => k);
      expect(mine.some((k) => k.startsWith('0/'))).toBe(true);
      expect(mine.some((k) => !k.startsWith('0/'))).toBe(true);
    }
    expect(seqs.unicast).toEqual(Array.from({ length: 30 * 17 }, (_, i) => i));
    expect(seqs.group).toEqual(Array.from({ length: 30 * 17 }, (_, i) => i));
  } finally {
    await s.close();
  }
});

test('a receiver of the group alone decodes the FDT and every object from it', async () => {
  // Both blocks in the window (round-robin): packets are taken synchronously
  // here, so a window that moves on would wait for a preparation that never
  // gets the event loop (the server's default is one block at a time).
  const s = server({ channels: [{ name: 'main', multicast: GROUP }], windowBlocks: 2 });
  try {
    const g = s.channels[0].multicast!;
    // NEED reports reach the unicast stream only (§10.10): the group stream keeps no table for them.
    expect(s.channels[0].stream.counters).toHaveProperty('needReports', 0);
    expect(g.stream.counters).not.toHaveProperty('needReports');
    // The unicast stream runs too, drawing from the same counters.
    takePackets(s.channels[0].stream, 500);
    const packets = takePackets(g.stream, 400);
    const first = packets.find((p) => p.toi === 0n)!;
    const o = first.oti!;
    const fdtDec = new ObjectDecoder({ F: o.transferLength, T: o.symbolSize, Z: o.sourceBlocks, N: o.subBlocks, Al: o.alignment });
    for (const p of packets) if (p.toi === 0n) fdtDec.push(codecPacket(p));
    expect(fdtDec.complete).toBe(true);
    const parsed = tryParseFdt(fdtDec.result());
    fdtDec.close();
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(parsed.fdt.files.map((f) => f.contentLocation).sort()).toEqual(['a.bin', 'b.bin']);
    for (const f of parsed.fdt.files) {
      const fo = f.oti!;
      const dec = new ObjectDecoder({ F: fo.transferLength, T: fo.symbolSize, Z: fo.sourceBlocks, N: fo.subBlocks, Al: fo.alignment });
      for (const p of packets) if (p.toi === f.toi) dec.push(codecPacket(p));
      expect(dec.complete).toBe(true);
      expect(Buffer.from(dec.result()).equals(files[f.contentLocation])).toBe(true);
      dec.close();
    }
  } finally {
    await s.close();
  }
});

test('no-code: each stream runs its own carousel, so the group alone carries every source symbol, FDT included', async () => {
  const s = server({ noCode: true, channels: [{ name: 'main', objects: ['a.bin'], multicast: GROUP }] });
  try {
    const [main] = s.channels;
    const g = main.multicast!;
    const a = catalogue.get('a.bin')!;
    const K = a.encoder.sourceSymbols(0);
    const fdtK = main.fdt.encoder.sourceSymbols(0);
    const got = { unicast: new Set<string>(), group: new Set<string>() };
    // One packet each in turn, in step: a shared carousel would split the ESIs between them.
    for (let i = 0; i < 6 * (K + fdtK); i++) {
      for (const p of takePackets(main.stream, 1)) got.unicast.add(key(p));
      for (const p of takePackets(g.stream, 1)) got.group.add(key(p));
    }
    for (const set of [got.unicast, got.group]) {
      expect(Array.from(set).filter((k) => k.startsWith(`${a.toi}/`))).toHaveLength(K);
      expect(Array.from(set).filter((k) => k.startsWith('0/'))).toHaveLength(fdtK);
    }
  } finally {
    await s.close();
  }
});

test('closing the server closes the group stream too', async () => {
  const s = server();
  const g = s.channels[0].multicast!;
  await s.close();
  expect(takePackets(g.stream, 10)).toEqual([]);
});
