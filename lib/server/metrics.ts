/**
 * prom-client metrics for an RqcastServer, all read at scrape time (collect
 * callbacks), so the hot paths never touch prom-client:
 *
 * - every counter of `server.counters` as `rqcast_server_<snake_case>_total`,
 *   except the ones that go down as well as up (prepared blocks and their
 *   bytes, GAUGE_COUNTERS), which are gauges without `_total`;
 * - `rqcast_server_sessions`: the clients joined now;
 * - what went out, per channel and transport (`udp`: the channel's unicast
 *   stream and the ACK replacements sent beside it; `multicast`: its group
 *   stream; `tcp`, with a TCP transport: the stream packets copied to its
 *   connections, each connection counted, of which a full connection may
 *   evict its oldest, `rqcast_server_tcp_pool_evicted_total`):
 *   `rqcast_sent_packets_total`, `rqcast_sent_bytes_total`; and what the
 *   kernel refused of the UDP ones, `rqcast_replicator_drops_total{reason}`
 *   and `rqcast_replicator_send_errors_total`; the rate its sender thread's
 *   stalls took and paid back, `rqcast_pacing_stall_bytes_total{kind}`
 *   (docs/PROTOCOL.md §10.6); TCP's segments and send
 *   errors are counted per server (`rqcast_server_tcp_segments_out_total`,
 *   ...);
 * - `rqcast_cookie_refusals_total{reason}`: one series per reason of
 *   docs/PROTOCOL.md §5 (also under their own names above);
 * - the replicator's per-channel gauges (`rqcast_channel_*`,
 *   `rqcast_group_*`), as before.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { COOKIE_REFUSAL_COUNTER } from '../session/session-counters';
import type { ReplicatorChannelCounters } from '../transport/replicator-contract';
import type { RqcastServer, ServerChannel, ServerCounters } from './server';

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Server counters that are levels, not counts: exported as gauges. */
const GAUGE_COUNTERS: ReadonlySet<keyof ServerCounters> = new Set<keyof ServerCounters>(['preparedBlocks', 'preparedBytes', 'preparedBytesPeak']);

type Labels = Record<string, string>;

/**
 * A prom-client Counter mirroring counts kept elsewhere: at each scrape,
 * `read` gives each label set's count now, and the counter grows by the
 * difference since the last scrape (the counts only grow).
 */
function mirroredCounter(registry: Registry, name: string, help: string, labelNames: string[], read: () => Iterable<[Labels, number]>): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const [labels, now] of read()) {
        const key = JSON.stringify(labels);
        const before = last.get(key);
        // The first scrape creates the series, at 0 when nothing was counted yet.
        if (before === undefined) this.inc(labels, now);
        else if (now > before) this.inc(labels, now - before);
        last.set(key, Math.max(now, before ?? 0));
      }
    },
  });
}

/** A channel's label set. */
function channelLabels(ch: ServerChannel, transport: 'udp' | 'multicast' | 'tcp'): Labels {
  return { channel: ch.name, tsi: String(ch.tsi), transport };
}

/** Each channel stream's replicator statistics, labelled with its channel and transport. */
function* streamStats(server: RqcastServer): Iterable<[Labels, ReplicatorChannelCounters]> {
  for (const ch of server.channels) {
    const u = server.channelStats(ch.name, 'unicast');
    if (u) yield [channelLabels(ch, 'udp'), u];
    const g = ch.multicast && server.channelStats(ch.name, 'group');
    if (g) yield [channelLabels(ch, 'multicast'), g];
  }
}

/**
 * `read()` at most once per turn of the event loop: a scrape calls every
 * metric's collect() in one turn, and they share one reading. Reading
 * `server.counters` sums every stream and asks the native TCP server for
 * its figures (~0.6 ms); once per counter, that was ~65 ms of the server's
 * JS thread per scrape (perf, bench:tcp's scrape at the end of a run).
 */
export function oncePerTurn<T>(read: () => T): () => T {
  let held: { value: T } | undefined;
  return () => {
    if (held === undefined) {
      held = { value: read() };
      setImmediate(() => {
        held = undefined;
      });
    }
    return held.value;
  };
}

/** Registers the server's metrics in `registry` (a new one by default) and returns it. */
export function registerServerMetrics(server: RqcastServer, registry: Registry = new Registry()): Registry {
  const counters = oncePerTurn(() => server.counters);
  const keys = Object.keys(counters()) as (keyof ServerCounters)[];
  for (const key of keys) {
    if (GAUGE_COUNTERS.has(key)) {
      new Gauge({
        name: `rqcast_server_${snake(key)}`,
        help: `RqcastServer ${key} (now)`,
        registers: [registry],
        collect() {
          this.set(counters()[key]);
        },
      });
      continue;
    }
    mirroredCounter(registry, `rqcast_server_${snake(key)}_total`, `RqcastServer counter ${key}`, [], () => [[{}, counters()[key]]]);
  }
  new Gauge({
    name: 'rqcast_server_sessions',
    help: 'Clients currently joined',
    registers: [registry],
    collect() {
      this.set(server.sessionCount);
    },
  });

  const perStream = (pick: (s: ReplicatorChannelCounters) => number) =>
    function* (): Iterable<[Labels, number]> {
      for (const [labels, s] of streamStats(server)) yield [labels, pick(s)];
    };
  /** UDP and multicast from the streams' datagrams; TCP (with a TCP transport) from the unicast stream's copies to connections. */
  const sent = (datagrams: (s: ReplicatorChannelCounters) => number, tcp: (s: ReplicatorChannelCounters) => number) =>
    function* (): Iterable<[Labels, number]> {
      yield* perStream(datagrams)();
      if (server.tcpAddress() === undefined) return;
      for (const ch of server.channels) {
        const u = server.channelStats(ch.name, 'unicast');
        if (u) yield [channelLabels(ch, 'tcp'), tcp(u)];
      }
    };
  const streamLabels = ['channel', 'tsi', 'transport'];
  mirroredCounter(
    registry,
    'rqcast_sent_packets_total',
    'Packets sent, per channel and transport (udp: unicast stream and ACK replacements; multicast: the group; tcp: stream packets copied to connections)',
    streamLabels,
    sent((s) => s.datagrams, (s) => s.tcpPackets ?? 0),
  );
  mirroredCounter(registry, 'rqcast_sent_bytes_total', 'Bytes of those packets (UDP payload; TCP: frame contents)', streamLabels, sent((s) => s.bytes, (s) => s.tcpBytes ?? 0));
  mirroredCounter(registry, 'rqcast_replicator_drops_total', 'Datagrams the kernel did not take: send buffer full (eagain) or no buffers (enobufs)', [...streamLabels, 'reason'], function* () {
    for (const [labels, s] of streamStats(server)) {
      yield [{ ...labels, reason: 'eagain' }, s.dropsEagain ?? 0];
      yield [{ ...labels, reason: 'enobufs' }, s.dropsEnobufs ?? 0];
    }
  });
  mirroredCounter(registry, 'rqcast_replicator_send_errors_total', 'Datagrams lost to other send errors', streamLabels, perStream((s) => s.errors ?? 0));
  mirroredCounter(registry, 'rqcast_pacing_stall_bytes_total', "Bytes of a stream's rate its sender thread's stalls took beyond the burst (forfeited), and of them those paid back later (repaid); docs/PROTOCOL.md §10.6", [...streamLabels, 'kind'], function* () {
    for (const [labels, s] of streamStats(server)) {
      if (s.pacingForfeitedBytes === undefined) continue;
      yield [{ ...labels, kind: 'forfeited' }, s.pacingForfeitedBytes];
      yield [{ ...labels, kind: 'repaid' }, s.pacingRepaidBytes ?? 0];
    }
  });
  mirroredCounter(registry, 'rqcast_cookie_refusals_total', 'Cookies refused, by reason (docs/PROTOCOL.md §5)', ['reason'], function* () {
    const c = counters();
    for (const [reason, key] of Object.entries(COOKIE_REFUSAL_COUNTER)) yield [{ reason }, c[key]];
  });

  const channelGauge = (field: 'queued' | 'destinations' | 'streamPackets' | 'datagrams' | 'bytes', help: string): void => {
    new Gauge({
      name: `rqcast_channel_${snake(field)}`,
      help,
      labelNames: ['channel', 'tsi'],
      registers: [registry],
      collect() {
        for (const ch of server.channels) {
          const s = server.channelStats(ch.name);
          if (s) this.set({ channel: ch.name, tsi: String(ch.tsi) }, s[field]);
        }
      },
    });
  };
  channelGauge('queued', 'Packets queued in the channel ring');
  channelGauge('destinations', 'Destinations of the channel');
  channelGauge('streamPackets', 'Stream packets sent (to all destinations)');
  channelGauge('datagrams', 'Datagrams sent on the channel');
  channelGauge('bytes', 'Bytes sent on the channel');
  const groupGauge = (field: 'queued' | 'streamPackets' | 'datagrams' | 'bytes', help: string): void => {
    new Gauge({
      name: `rqcast_group_${snake(field)}`,
      help,
      labelNames: ['channel', 'tsi', 'group'],
      registers: [registry],
      collect() {
        for (const ch of server.channels) {
          const g = ch.multicast;
          const s = g && server.channelStats(ch.name, 'group');
          if (g && s) this.set({ channel: ch.name, tsi: String(ch.tsi), group: g.family === 6 ? `[${g.group}]:${g.port}` : `${g.group}:${g.port}` }, s[field]);
        }
      },
    });
  };
  groupGauge('queued', 'Packets queued in the group stream ring');
  groupGauge('streamPackets', 'Group stream packets sent to the group');
  groupGauge('datagrams', 'Datagrams sent to the group');
  groupGauge('bytes', 'Bytes sent to the group');
  return registry;
}
