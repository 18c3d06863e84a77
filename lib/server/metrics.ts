/**
 * prom-client metrics for an RqcastServer: every counter of
 * `server.counters` as `rqcast_server_<snake_case>_total`, the joined
 * session count, and the replicator's per-channel statistics — of each
 * channel's unicast stream (`rqcast_channel_*`) and of each group stream
 * (`rqcast_group_*`, labelled with the group too) — all read at scrape time
 * (collect callbacks), so the hot paths never touch prom-client.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { RqcastServer, ServerCounters } from './server';

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Registers the server's metrics in `registry` (a new one by default) and returns it. */
export function registerServerMetrics(server: RqcastServer, registry: Registry = new Registry()): Registry {
  const keys = Object.keys(server.counters) as (keyof ServerCounters)[];
  for (const key of keys) {
    let last = 0;
    new Counter({
      name: `rqcast_server_${snake(key)}_total`,
      help: `RqcastServer counter ${key}`,
      registers: [registry],
      collect() {
        // Counters only grow; inc by the difference since the last scrape.
        const now = server.counters[key];
        if (now > last) this.inc(now - last);
        last = now;
      },
    });
  }
  new Gauge({
    name: 'rqcast_server_sessions',
    help: 'Clients currently joined',
    registers: [registry],
    collect() {
      this.set(server.sessionCount);
    },
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
