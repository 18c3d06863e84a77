/**
 * The catalogue reader behind `rqcast ls`: what a server offers, read from
 * its FDTs as any client reads them (docs/PROTOCOL.md §9, §10.7), without
 * fetching an object.
 *
 * One session over UDP unicast JOINs the channels asked for (the default
 * channel when none), waits for each one's first FDT instance, and LEAVEs.
 * The FDT lists the channel's objects (name, size, SHA-256, TOI) and every
 * channel of the server (rq:Channel: rate, transports); asked for no
 * channel in particular, the reader then joins the other channels too (one
 * more session, at most MAX_CHANNELS per JOIN) so that each one's objects
 * are listed. Packets of objects are dropped unread (ObjectRegistry
 * listOnly).
 */
import { decodeContentLocation } from '../protocol/content-location';
import { MAX_CHANNELS } from '../protocol/control-header';
import type { FdtChannelTransport } from '../protocol/fdt';
import type { JoinedChannel } from '../protocol/messages';
import { openUdpClientTransport } from '../transport/udp/client-socket';
import { PartialBlockBudget } from './block-budget';
import { FetchTimeoutError, InvalidClientOptionError } from './errors';
import { newClientStats } from './events';
import { ObjectRegistry } from './object-registry';
import { resolveServer } from './resolve';
import { ServerLink } from './server-link';
import { ClientSession } from './session';
import type { SinkFactory } from './sinks/sink';
import { joinChannels, RqcastUrl } from './url';
import { durationText } from '../support/duration-text';

export interface ListedObject {
  /** The name (Content-Location, decoded). */
  name: string;
  toi: number;
  /** Bytes (Content-Length, else Transfer-Length); undefined when the FDT gives neither. */
  size?: number;
  /** rq:Content-SHA-256 in hex. */
  sha256?: string;
}

export interface ListedChannel {
  name: string;
  /** Its TSI, when the reader joined it. */
  tsi?: number;
  /** From the FDTs' rq:Channel list, when they carry one. */
  rateBps?: number;
  transports?: FdtChannelTransport[];
  /** The multicast group JOINED announced, as GROUP:PORT. */
  group?: string;
  /** Its FDT's objects, when the reader joined it; undefined otherwise. */
  objects?: ListedObject[];
  /** Its FDT said Complete="false": a live stream, whose objects are the segments kept now (docs/PROTOCOL.md §10.14). */
  live?: boolean;
}

export interface CatalogueListing {
  /** The URL's channels in its order; without any, every channel the server lists (the default one first). */
  channels: ListedChannel[];
}

export interface CatalogueReaderOptions {
  /** Give up after this long without an answer or an FDT (default 10 s). */
  timeoutMs?: number;
  /** First HELLO/JOIN retry (default 200 ms). */
  retryMs?: number;
}

/** A sink factory for a reader that wants no object. */
const NO_SINKS: SinkFactory = {
  open() {
    throw new Error('the catalogue reader fetches no object');
  },
};

interface Joined {
  channel: JoinedChannel;
  objects: ListedObject[];
  live?: boolean;
  rq?: { rateBps: number; transports: FdtChannelTransport[] }[];
}

/** The first FDT instance of every channel in `channels`, over one session. */
async function readChannels(url: RqcastUrl, channels: string[], timeoutMs: number, retryMs: number): Promise<{ joined: Joined[]; listed: Map<string, { rateBps: number; transports: FdtChannelTransport[] }> }> {
  const server = await resolveServer(url.host, url.port);
  const stats = newClientStats();
  const listed = new Map<string, { rateBps: number; transports: FdtChannelTransport[] }>();
  let settle!: { resolve: () => void; reject: (e: Error) => void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  let ended = false;
  let lastActivity = Date.now();
  const registry: ObjectRegistry = new ObjectRegistry({
    listOnly: true,
    maxUnknownPackets: 0,
    budget: new PartialBlockBudget(2 ** 20),
    sinks: NO_SINKS,
    stats,
    events: {
      warning: () => undefined,
      failed: (e) => settle.reject(e instanceof Error ? e : new Error(String(e))),
      fdtApplied: () => {
        if (registry.fdtsComplete()) settle.resolve();
      },
      objectDecoded: () => undefined,
      objectVerified: () => undefined,
    },
  });
  let joinedChannels: JoinedChannel[] = [];
  const link = new ServerLink(
    0,
    server,
    registry,
    {
      get ended() {
        return ended;
      },
      activity: (now) => (lastActivity = now),
      joined: (_l, info) => (joinedChannels = info.channels),
      failed: (e) => settle.reject(e),
      warning: () => undefined,
      watchingPackets: () => false,
      packet: () => undefined,
    },
    {
      session: new ClientSession({ channels, ttlMs: Math.max(2 * timeoutMs, 10_000), ack: false, retryMs }),
      dataPath: { lossRate: 0, random: Math.random, ack: false, ackEveryPackets: 256, recordEsis: false, stats },
      ackIntervalMs: 50,
    },
  );
  // A small buffer: the reader keeps only FDT packets, and the stream goes on until LEAVE.
  const transport = await openUdpClientTransport(server, link, { receiveBufferBytes: 4 << 20, batch: 256, gatherMicros: 2000 });
  const timer = setInterval(() => {
    if (Date.now() - lastActivity > timeoutMs) {
      settle.reject(new FetchTimeoutError(`${link.joined ? 'no FDT' : 'no answer from the server'} for ${durationText(timeoutMs)}`));
    }
  }, Math.min(250, timeoutMs));
  link.start(transport);
  try {
    await done;
  } finally {
    ended = true;
    clearInterval(timer);
    await link.shutdown();
  }
  const joined = joinedChannels.map((channel): Joined => {
    const entry = registry.channel(0, channel.tsi);
    const fdt = entry?.fdtInstance;
    for (const c of fdt?.channels ?? []) listed.set(c.name, { rateBps: c.rateBps, transports: c.transports });
    const objects = (fdt?.files ?? []).map((f): ListedObject => {
      const size = f.contentLength ?? f.transferLength;
      return {
        name: decodeContentLocation(f.contentLocation),
        toi: Number(f.toi),
        ...(size !== undefined ? { size } : {}),
        ...(f.sha256 ? { sha256: Buffer.from(f.sha256).toString('hex') } : {}),
      };
    });
    return { channel, objects, ...(fdt?.complete === false ? { live: true } : {}) };
  });
  return { joined, listed };
}

/**
 * What the server of `url` offers: the URL's channels (or the default one,
 * then every other its FDT lists) with their objects.
 */
export async function readCatalogue(url: RqcastUrl, options: CatalogueReaderOptions = {}): Promise<CatalogueListing> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const retryMs = options.retryMs ?? 200;
  if (url.name !== undefined) throw new InvalidClientOptionError('rqcast ls lists channels: give rqcast://HOST:PORT[/CHANNELS], without an object NAME');
  const first = await readChannels(url, joinChannels(url), timeoutMs, retryMs);
  const joined = [...first.joined];
  const listed = first.listed;
  if (url.channels.length === 0) {
    const others = [...listed.keys()].filter((n) => !joined.some((j) => j.channel.name === n));
    for (let i = 0; i < others.length; i += MAX_CHANNELS) {
      // The default channel's list is the server's word: channels it names but refuses, or whose FDT does not come, are listed without objects.
      const more = await readChannels(url, others.slice(i, i + MAX_CHANNELS), timeoutMs, retryMs).catch(() => undefined);
      if (!more) continue;
      joined.push(...more.joined);
      for (const [k, v] of more.listed) if (!listed.has(k)) listed.set(k, v);
    }
  }
  const channels: ListedChannel[] = joined.map(({ channel, objects, live }) => {
    const rq = listed.get(channel.name);
    const m = channel.multicast;
    return {
      name: channel.name,
      tsi: channel.tsi,
      ...(rq ? { rateBps: rq.rateBps, transports: rq.transports } : {}),
      ...(m ? { group: m.group.includes(':') ? `[${m.group}]:${m.port}` : `${m.group}:${m.port}` } : {}),
      objects,
      ...(live ? { live } : {}),
    };
  });
  // Asked for every channel: any the reader could not join (more than it asked for at once never happens) still shows.
  if (url.channels.length === 0) {
    for (const [name, rq] of listed) {
      if (!channels.some((c) => c.name === name)) channels.push({ name, rateBps: rq.rateBps, transports: rq.transports });
    }
  }
  return { channels };
}
