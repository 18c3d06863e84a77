/**
 * RqcastServer in a server group (serve --server-index I --servers N): the
 * streams of the members of one group, built without a network, carry
 * disjoint ESIs of each object; each member's stream alone decodes the
 * object, and so does their union. No-code members each send every source
 * symbol. And serve's --server-index / --servers are read together.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Catalogue } from '../../lib/content/catalogue';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { type AlcPacket, decodeAlc } from '../../lib/protocol/alc';
import { RqcastServer } from '../../lib/server/server';
import { InvalidServerConfigError } from '../../lib/errors';
import { serverGroupOf } from '../../lib/cli/serve';
import { UsageError } from '../../lib/cli/errors';
import { codecPacket, takePackets } from '../support/stream-packets';

let dir: string;
let data: Buffer;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rqcast-group-'));
  // One source block of K = 100 symbols at T = 1280.
  data = randomBytes(100 * 1280 - 77);
  writeFileSync(path.join(dir, 'f.bin'), data);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Member `index` of `servers` serving dir (its own catalogue, as on its own host), and the object's TOI. */
async function member(index: number, servers: number, noCode = false): Promise<{ server: RqcastServer; catalogue: Catalogue; toi: bigint }> {
  const catalogue = await Catalogue.load([dir]);
  const server = new RqcastServer({ catalogue, port: 0, noCode, serverGroup: { index, servers }, prepare: false });
  return { server, catalogue, toi: BigInt(catalogue.get('f.bin')!.toi) };
}

async function close(m: { server: RqcastServer; catalogue: Catalogue }): Promise<void> {
  await m.server.close();
  m.catalogue.close();
}

function decoderFor(m: { catalogue: Catalogue }): ObjectDecoder {
  return new ObjectDecoder(m.catalogue.get('f.bin')!.encoder.otiInfo.toBytes());
}

describe('a group of 3 coded servers', () => {
  test('disjoint ESIs per block (member 0 alone sends ESI < K, member i only ESI = i mod 3 above); each alone decodes, and their union does', async () => {
    const members = await Promise.all([0, 1, 2].map((i) => member(i, 3)));
    try {
      const K = members[0].catalogue.get('f.bin')!.encoder.sourceSymbols(0);
      const packets: AlcPacket[][] = members.map((m) => takePackets(m.server.channels[0].stream, 3 * K).filter((p) => p.toi === m.toi));
      const owner = new Map<string, number>();
      packets.forEach((ps, i) => {
        expect(ps.length).toBeGreaterThan(K);
        for (const p of ps) {
          const key = `${p.sbn}/${p.esi}`;
          expect(owner.get(key) ?? i).toBe(i);
          owner.set(key, i);
          if (p.esi < K) expect(i).toBe(0);
          else expect(p.esi % 3).toBe(i);
        }
      });
      // Each member's packets alone decode the object (repair symbols suffice).
      packets.forEach((ps, i) => {
        const d = decoderFor(members[i]);
        for (const p of ps) d.push(codecPacket(p));
        expect(d.complete).toBe(true);
        expect(Buffer.from(d.result()).equals(data)).toBe(true);
        d.close();
      });
      // A third of each member's packets, together: the union decodes.
      const d = decoderFor(members[0]);
      for (const ps of packets) for (const p of ps.slice(ps.length - Math.ceil((K + 4) / 3))) d.push(codecPacket(p));
      expect(d.complete).toBe(true);
      expect(Buffer.from(d.result()).equals(data)).toBe(true);
      d.close();
    } finally {
      for (const m of members) await close(m);
    }
  });

  test('ACK replacements of member 1 stay in its class: fresh ESIs = 1 mod 3, above K, none of them an ESI of the packets reported lost', async () => {
    // Listening (on loopback, nobody joined): the streams start and their blocks are prepared, as replacements need.
    const catalogue = await Catalogue.load([dir]);
    const m = { catalogue, server: new RqcastServer({ catalogue, port: 0, host: '127.0.0.1', serverGroup: { index: 1, servers: 3 } }), toi: BigInt(catalogue.get('f.bin')!.toi) };
    try {
      await m.server.listen();
      const stream = m.server.channels[0].stream;
      const K = m.catalogue.get('f.bin')!.encoder.sourceSymbols(0);
      const sent = takePackets(stream, 200);
      const sentEsis = new Set(sent.filter((p) => p.toi === m.toi).map((p) => p.esi));
      // Every sequence number the stream used, reported lost.
      const lost = sent.filter((p) => p.sequence !== undefined).map((p) => p.sequence as number);
      const fresh = stream.freshPackets(lost).map((b) => decodeAlc(b)).filter((r) => r.ok).map((r) => (r as { packet: AlcPacket }).packet);
      const objectFresh = fresh.filter((p) => p.toi === m.toi);
      expect(objectFresh.length).toBeGreaterThan(0);
      for (const p of objectFresh) {
        expect(p.esi % 3).toBe(1);
        expect(p.esi).toBeGreaterThanOrEqual(K);
        expect(sentEsis.has(p.esi)).toBe(false);
      }
    } finally {
      await close(m);
    }
  });

  test('an object is the same across members: name, SHA-256 and OTI agree (TOIs need not)', async () => {
    const members = await Promise.all([0, 1].map((i) => member(i, 2)));
    try {
      const [a, b] = members.map((m) => m.catalogue.get('f.bin')!);
      expect(Buffer.from(a.sha256).equals(Buffer.from(b.sha256))).toBe(true);
      expect(Buffer.from(a.encoder.otiInfo.toBytes()).equals(Buffer.from(b.encoder.otiInfo.toBytes()))).toBe(true);
    } finally {
      for (const m of members) await close(m);
    }
  });
});

test('no-code members each send every source symbol (the group does not split a carousel)', async () => {
  const members = await Promise.all([0, 1].map((i) => member(i, 2, true)));
  try {
    const K = members[0].catalogue.get('f.bin')!.encoder.sourceSymbols(0);
    for (const m of members) {
      const esis = new Set(takePackets(m.server.channels[0].stream, 3 * K).filter((p) => p.toi === m.toi).map((p) => p.esi));
      expect(esis.size).toBe(K);
    }
  } finally {
    for (const m of members) await close(m);
  }
});

test('a bad group is refused at construction with a typed error', async () => {
  const catalogue = await Catalogue.load([dir]);
  try {
    expect(() => new RqcastServer({ catalogue, serverGroup: { index: 2, servers: 2 } })).toThrow(InvalidServerConfigError);
  } finally {
    catalogue.close();
  }
});

describe('serve --server-index / --servers', () => {
  test('neither: alone; both: the group; --servers alone: index 0', () => {
    expect(serverGroupOf({})).toBeUndefined();
    expect(serverGroupOf({ serverIndex: 2, servers: 3 })).toEqual({ index: 2, servers: 3 });
    expect(serverGroupOf({ servers: 3 })).toEqual({ index: 0, servers: 3 });
  });
  test('--server-index without --servers, or not below it: a usage error that names the fix', () => {
    expect(() => serverGroupOf({ serverIndex: 1 })).toThrow(UsageError);
    expect(() => serverGroupOf({ serverIndex: 1 })).toThrow(/needs --servers N/);
    expect(() => serverGroupOf({ serverIndex: 3, servers: 3 })).toThrow(/numbered 0\.\.2/);
  });
});
