/**
 * The metrics endpoint (`serve --metrics [ADDR:]PORT`): a prom-client
 * registry in the Prometheus text format at GET /metrics, over node:http.
 *
 * It answers whoever can reach it, so every request is hostile until shown
 * otherwise: only GET and HEAD of /metrics (any query string ignored) are
 * served; another path is 404, another method 405; request headers are
 * limited to MAX_HEADER_BYTES (431 beyond); a request must arrive whole
 * within REQUEST_TIMEOUT_MS; at most MAX_CONNECTIONS connections are open
 * at once (the kernel's accept is followed by an immediate close beyond
 * that); a request body is never read. Each refusal is counted
 * (`refused`, by reason) and the counts are themselves in the registry
 * (`rqcast_metrics_http_refused_total`).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, type Registry } from 'prom-client';

/** Most bytes of request line and headers (Prometheus sends a few hundred). */
export const MAX_HEADER_BYTES = 8 * 1024;
/** Connections open at once; a scraper needs one. */
export const MAX_CONNECTIONS = 16;
/** A request's headers must arrive within this long. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** An idle keep-alive connection is closed after this long. */
const KEEP_ALIVE_MS = 5_000;
const REFUSED_METRIC = 'rqcast_metrics_http_refused_total';

export type MetricsRefusal = 'path' | 'method' | 'headers';

export interface MetricsEndpointOptions {
  registry: Registry;
  /** Default 127.0.0.1: only this host. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
}

export interface MetricsEndpoint {
  readonly address: { address: string; port: number; family: string };
  /** Requests served, and requests refused by reason. */
  readonly counters: { served: number; refused: Record<MetricsRefusal, number> };
  /** The URL to scrape. */
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the endpoint; rejects if the address cannot be bound (e.g. EADDRINUSE). */
export async function startMetricsEndpoint(o: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  const counters = { served: 0, refused: { path: 0, method: 0, headers: 0 } as Record<MetricsRefusal, number> };
  const registry = o.registry;
  // This endpoint's counts (an earlier endpoint's on the same registry is replaced).
  registry.removeSingleMetric(REFUSED_METRIC);
  new Counter({
    name: REFUSED_METRIC,
    help: 'Requests to the metrics endpoint refused, by reason (path, method, headers)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(counters.refused)) this.inc({ reason }, n);
    },
  });
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    const refuse = (status: number, reason: MetricsRefusal, extra: Record<string, string> = {}): void => {
      counters.refused[reason]++;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...extra });
      res.end(status === 404 ? 'not found: the metrics are at /metrics\n' : 'method not allowed: GET /metrics\n');
    };
    const pathOnly = (req.url ?? '').split('?')[0];
    if (pathOnly !== '/metrics') return refuse(404, 'path');
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(405, 'method', { allow: 'GET, HEAD' });
    registry.metrics().then(
      (text) => {
        counters.served++;
        res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`metrics could not be collected: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  // Oversized headers and malformed requests: node answers 431 / 400 and closes.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'HPE_HEADER_OVERFLOW') counters.refused.headers++;
    if (socket.writable) socket.end(err.code === 'HPE_HEADER_OVERFLOW' ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const hostText = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    address: { address: a.address, port: a.port, family: a.family },
    counters,
    url: `http://${hostText}:${a.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
