/**
 * serve --metrics: the Prometheus endpoint of a running server
 * (lib/server/metrics.ts over lib/server/metrics-http.ts), opened on
 * [ADDR:]PORT; a port that cannot be bound is said plainly.
 */
import type { RqcastServer } from '../server/server';
import { registerServerMetrics } from '../server/metrics';
import { type MetricsEndpoint, startMetricsEndpoint } from '../server/metrics-http';
import { UsageError } from './errors';
import type { MetricsListenSpec } from './options';

/** The metrics endpoint of `server` at `spec`; a port that cannot be bound is said plainly. */
export async function openMetrics(server: RqcastServer, spec: MetricsListenSpec): Promise<MetricsEndpoint> {
  const host = spec.address ?? '127.0.0.1';
  try {
    return await startMetricsEndpoint({ registry: registerServerMetrics(server), host, port: spec.port });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const where = host.includes(':') ? `[${host}]:${spec.port}` : `${host}:${spec.port}`;
    if (code === 'EADDRINUSE') throw new Error(`--metrics ${where}: the port is in use; choose another port`, { cause: e });
    if (code === 'EADDRNOTAVAIL') throw new UsageError(`--metrics ${where}: not an address of this host; use 127.0.0.1, 0.0.0.0 or one of its addresses`);
    throw e;
  }
}
