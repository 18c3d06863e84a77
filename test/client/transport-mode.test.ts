/**
 * RqcastClient's transport modes against a server that announces no group
 * (the scripted server on loopback, no namespace needed): what JOIN says,
 * what 'transport' events and the summary say, and that nothing else
 * changes for a fetch without multicast (docs/PROTOCOL.md §10.10).
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RqcastClient } from '../../lib/client/client';
import type { TransportEvent } from '../../lib/client/events';
import type { TransportMode } from '../../lib/client/fallback';
import { JoinMessage, MessageType } from '../../lib/protocol/messages';
import { FakeServer } from './fake-server';

const A = randomBytes(20_000);

test.each<[TransportMode, string[] | undefined, string]>([
  ['auto', ['main', 'hd'], 'no-group'],
  ['multicast', ['main', 'hd'], 'no-group'],
  ['udp', undefined, 'transport-udp'],
])('--transport %s: JOIN flags %p; without groups every channel is received by udp (%s)', async (mode, flagged, reason) => {
  const server = new FakeServer({ objects: [{ name: 'a.bin', data: A }], channels: { main: 1, hd: 2 } });
  const port = await server.listen();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-mode-'));
  try {
    const c = new RqcastClient(`rqcast://127.0.0.1:${port}/main,hd`, { outputDir: dir, retryMs: 2000, timeoutMs: 10_000, transport: mode });
    const events: TransportEvent[] = [];
    c.on('transport', (e) => events.push(e));
    const s = await c.fetch();
    expect((await fs.readFile(path.join(dir, 'a.bin'))).equals(A)).toBe(true);
    const joins = server.received.filter((m): m is JoinMessage => m.type === MessageType.Join);
    expect(joins).toHaveLength(1);
    expect(joins[0].multicast).toEqual(flagged);
    expect(events).toEqual([
      { channel: 'main', transport: 'udp', reason },
      { channel: 'hd', transport: 'udp', reason },
    ]);
    expect(s.channels).toEqual([
      { name: 'main', tsi: 1, transport: 'udp' },
      { name: 'hd', tsi: 2, transport: 'udp' },
    ]);
    expect(s.multicastPackets).toBe(0);
    expect(s.multicastForeign).toBe(0);
  } finally {
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
