// The rqcast server's Prometheus metrics (`serve --metrics`), scraped from
// inside its testbed namespace at the end of a bench run (bench:tcp's TCP
// counters, bench:e2e's pacing stalls).
import { Testbed } from '../../test/support/netns';

/** The port the benches give `serve --metrics`. */
export const METRICS_PORT = 9464;

/**
 * The server's metrics at http://ADDRESS:METRICS_PORT/metrics, fetched by a
 * node process in the server's namespace; returns a lookup of one series
 * (its name with its labels as the text has them, e.g.
 * `rqcast_sent_packets_total{channel="main",tsi="1",transport="udp"}`):
 * its value, undefined if absent.
 */
export async function scrapeServerMetrics(bed: Testbed, address: string): Promise<(series: string) => number | undefined> {
  const scrape = `fetch('http://${address}:${METRICS_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
  const r = await bed.run(bed.server.ns, [process.execPath, '-e', scrape], { timeoutMs: 30_000 });
  const values = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const at = line.lastIndexOf(' ');
    if (line.startsWith('#') || at <= 0) continue;
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return (series) => values.get(series);
}
