/**
 * One scrape reads `server.counters` once (metrics.ts's oncePerTurn): every
 * metric's collect() of that scrape shares the reading, and the next scrape
 * reads again, so it sees what changed in between.
 */
import { oncePerTurn, registerServerMetrics } from '../../lib/server/metrics';
import type { RqcastServer } from '../../lib/server/server';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('oncePerTurn', () => {
  test('reads once per turn of the event loop, again in the next', async () => {
    let reads = 0;
    const read = oncePerTurn(() => ++reads);
    expect([read(), read(), read()]).toEqual([1, 1, 1]);
    await turn();
    expect([read(), read()]).toEqual([2, 2]);
    expect(reads).toBe(2);
  });
});

describe('registerServerMetrics', () => {
  test('a scrape reads the server counters once, and the next scrape sees their new values', async () => {
    let reads = 0;
    let joins = 3;
    const server = {
      get counters() {
        reads++;
        return { joins, preparedBytes: 7, leaves: 1 };
      },
      channels: [],
      channelStats: () => undefined,
      tcpAddress: () => undefined,
      sessionCount: 0,
    } as unknown as RqcastServer;
    const registry = registerServerMetrics(server);
    await turn();
    reads = 0;
    const first = await registry.metrics();
    expect(reads).toBe(1);
    expect(first).toMatch(/^rqcast_server_joins_total 3$/m);
    expect(first).toMatch(/^rqcast_server_prepared_bytes 7$/m);
    await turn();
    joins = 5;
    const second = await registry.metrics();
    expect(reads).toBe(2);
    expect(second).toMatch(/^rqcast_server_joins_total 5$/m);
  });
});
