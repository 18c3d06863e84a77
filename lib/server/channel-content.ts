/**
 * What a server channel carries, and changes to it while serving
 * (docs/PROTOCOL.md §10.2): objects withdrawn (a block could not be
 * prepared as announced), added, removed or replaced (serve's watch of a
 * served FILE or DIR). Each change gives every channel concerned a new
 * stream (and group stream) with a new FDT instance (the next unused
 * instance ID) that lists what the channel now carries, its sequence
 * numbers going on from the old stream's.
 *
 * Every stream change of a channel, these and a live channel's new
 * segments (live-channel.ts), goes through one operation,
 * `replaceStream`. A change of content also drops what the old stream
 * left queued in the replicator (its channel is made again with the same
 * members), and the counts of the channel made again are carried so that
 * channelStats (and the metrics that mirror it) never go back.
 */
import type { ObjectEncoder } from '../fec/encoder';
import type { Catalogue, CatalogueObject, FdtObject } from '../content/catalogue';
import type { SymbolAllocator } from '../content/symbol-allocator';
import type { FdtChannel } from '../protocol/fdt';
import type { ServedStream } from '../stream/served-stream';
import { type BlockPins, ChannelStream, type ChannelStreamOptions, type SymbolSource } from '../stream/channel-stream';
import { type Peer, peerKey } from '../session/peer';
import type { ReplicatorChannelConfig, ReplicatorChannelCounters } from '../transport/replicator-contract';
import type { ServerTransport } from '../transport/server-transport';
import { sinkConfig } from '../transport/multicast/group-config';
import { groupChannelId, groupStreamOptions, type ServerChannelGroup } from './group-streams';
import { channelStreamOptions, liveRateMbps, type ReplicatorLike, type RqcastServerOptions, type ServerLogger, type ServerPlan } from './config';

/** FDT Instance IDs are 20 bits (RFC 6726 §3.4.1); a new instance takes the next, modulo this. */
const FDT_INSTANCE_IDS = 2 ** 20;

export interface ServerChannel {
  name: string;
  tsi: number;
  objects: readonly CatalogueObject[];
  rateMbps: number;
  /** The unicast stream: what the channel's unicast members receive, and what their ACKs are about. */
  stream: ServedStream;
  fdt: FdtObject;
  /** The channel's multicast group and group stream, if it has one (docs/PROTOCOL.md §10.10). */
  multicast?: ServerChannelGroup;
}

/** A channel's next stream, its FDT instance and the objects it lists; `group`: its next group stream. */
export interface StreamReplacement {
  stream: ChannelStream;
  fdt: FdtObject;
  objects: readonly CatalogueObject[];
  group?: ChannelStream;
}

/** Content changes while serving, counted (ServerCounters). */
export interface ChannelContentCounters {
  /** Objects withdrawn because a block could not be prepared as announced (§10.2). */
  objectsWithdrawn: number;
  /** Objects announced while serving: files that appeared in a served DIR (serve's watch, §10.2). */
  objectsAdded: number;
  /** Objects taken off because their file was removed or emptied (serve's watch). */
  objectsRemoved: number;
  /** Objects announced again under a new TOI because their file changed (serve's watch). */
  objectsReplaced: number;
}

/** What ChannelContent needs of the server it changes. */
export interface ChannelContentContext {
  catalogue: Catalogue;
  options: RqcastServerOptions;
  plan: ServerPlan;
  noCode: boolean;
  allocatorOf: (o: CatalogueObject) => SymbolAllocator;
  pins: BlockPins;
  /** The server's channels, as every FDT instance lists them (rq:Channel). */
  offered: readonly FdtChannel[];
  /** Every encoder a stream may pin: the catalogue's, and those added since (never removed while running). */
  encoders: Map<SymbolSource, ObjectEncoder>;
  /** Every stream by its replicator channel id: TSI (unicast) or groupChannelId(TSI). */
  streams: Map<number, ServedStream>;
  log: ServerLogger;
  clock: () => number;
  closed: () => boolean;
  /** The server's channels (read when a change comes, so set once they are made). */
  channels: () => readonly ServerChannel[];
  /** undefined before listen. */
  replicator: () => ReplicatorLike | undefined;
  /** The ring configuration of one of `ch`'s replicator channels (its unicast or group stream's slot size). */
  ringConfig: (ch: ServerChannel, slotSize: number) => ReplicatorChannelConfig;
  /** The unicast members of channel `name` now. */
  members: (name: string) => readonly Peer[];
  transportOf: (peer: Peer) => ServerTransport | undefined;
  /** Tops up the ring of replicator channel `id`. */
  refill: (id: number) => void;
}

export class ChannelContent {
  private readonly own: ChannelContentCounters = { objectsWithdrawn: 0, objectsAdded: 0, objectsRemoved: 0, objectsReplaced: 0 };
  /**
   * What the replicator channels made again (resetRings) had counted, by
   * channel ID: channelStats adds it, so the counts (and the metrics that
   * mirror them) never go back.
   */
  private readonly carried = new Map<number, CarriedChannelCounts>();
  /** Objects withdrawn (§10.2): no stream sends them any more. */
  private readonly withdrawn = new Set<CatalogueObject>();
  /** The FDT instance ID the next new instance takes (channel i's first is i). */
  private nextInstanceId: number;

  constructor(private readonly c: ChannelContentContext) {
    this.nextInstanceId = c.plan.channels.length + 1;
  }

  /**
   * The configured channels as the server starts: channel i (TSI i) with
   * its first FDT instance (ID i) and its stream, and its group stream if it
   * has a group; every stream listed in the context's `streams`.
   */
  fileChannels(now: number): ServerChannel[] {
    const { options, plan, allocatorOf, pins, offered } = this.c;
    return plan.channels.map((c) => {
      const fdt = this.c.catalogue.fdt(c.objects, c.tsi, now, undefined, offered);
      const unicast = channelStreamOptions(options, plan, c, fdt, allocatorOf, pins);
      const stream = c.stream ? c.stream({ tsi: c.tsi, channels: offered, refill: () => this.c.refill(c.tsi) }) : new ChannelStream(unicast);
      const ch: ServerChannel = { name: c.name, tsi: c.tsi, objects: c.objects, rateMbps: c.rateMbps, stream, fdt };
      this.c.streams.set(c.tsi, stream);
      if (c.multicast) {
        const group = new ChannelStream(groupStreamOptions(unicast, c.objects, this.c.noCode, allocatorOf));
        ch.multicast = { ...c.multicast, channelId: groupChannelId(c.tsi), stream: group };
        this.c.streams.set(ch.multicast.channelId, group);
      }
      return ch;
    });
  }

  get counters(): ChannelContentCounters {
    return { ...this.own };
  }

  /** Replicator channel `id`'s counts now plus what its earlier replicator channels counted. */
  withCarried(id: number, now: ReplicatorChannelCounters): ReplicatorChannelCounters {
    return withCarried(now, this.carried.get(id));
  }

  /**
   * Withdraws `obj` (§10.2): logged once with why; each channel that carries
   * it gets a new stream (and group stream) without it, announcing a new
   * FDT instance that does not list it, its EXT_RQSEQ going on from the old
   * stream's. The old stream is closed (its blocks unpinned).
   */
  withdraw(obj: CatalogueObject, why: { sbn?: number; code?: unknown; reason: string }): void {
    if (this.c.closed() || this.withdrawn.has(obj)) return;
    this.withdrawn.add(obj);
    this.own.objectsWithdrawn++;
    const now = this.c.clock();
    const affected = this.c.channels().filter((c) => c.objects.includes(obj));
    this.c.log.error(
      { object: obj.name, toi: obj.toi, path: obj.path, ...why, channels: affected.map((c) => c.name) },
      'object withdrawn: it can no longer be served as announced',
    );
    this.restreamAll(affected, (objects) => objects.filter((o) => o !== obj), now);
  }

  /**
   * Adds catalogue object `obj` (a file that appeared in a served
   * directory, lib/content/served-path-watch.ts) to the channels named: each gets
   * a new stream and a new FDT instance listing it (§10.2). Logged
   * 'object added'.
   */
  addObject(obj: CatalogueObject, channels: readonly string[]): void {
    if (this.c.closed()) return;
    this.c.encoders.set(obj.encoder, obj.encoder);
    const affected = this.c.channels().filter((c) => channels.includes(c.name) && !c.objects.includes(obj));
    this.own.objectsAdded++;
    this.c.log.info({ object: obj.name, toi: obj.toi, length: obj.length, channels: affected.map((c) => c.name) }, 'object added');
    this.restreamAll(affected, (objects) => [...objects, obj], this.c.clock());
  }

  /**
   * Takes `obj` off every channel (its file was removed or replaced in a
   * served directory): new streams and FDT instances without it (§10.2).
   * Logged 'object removed' with `why`.
   */
  removeObject(obj: CatalogueObject, why: string): void {
    if (this.c.closed()) return;
    const affected = this.c.channels().filter((c) => c.objects.includes(obj));
    this.own.objectsRemoved++;
    this.c.log.info({ object: obj.name, toi: obj.toi, why, channels: affected.map((c) => c.name) }, 'object removed');
    this.restreamAll(affected, (objects) => objects.filter((o) => o !== obj), this.c.clock());
  }

  /**
   * `next` is the new version of `old` (its file changed while served):
   * in one new FDT instance per channel, `old` is dropped and `next`
   * listed under its new TOI, on the channels that carried `old` and those
   * named. Logged 'object replaced'.
   */
  replaceObject(old: CatalogueObject, next: CatalogueObject, channels: readonly string[]): void {
    if (this.c.closed()) return;
    this.c.encoders.set(next.encoder, next.encoder);
    const affected = this.c.channels().filter((c) => c.objects.includes(old) || channels.includes(c.name));
    this.own.objectsReplaced++;
    this.c.log.info({ object: next.name, toi: next.toi, oldToi: old.toi, length: next.length, channels: affected.map((c) => c.name) }, 'object replaced');
    this.restreamAll(affected, (objects) => [...objects.filter((o) => o !== old && o !== next), next], this.c.clock());
  }

  /**
   * The one operation that replaces a channel's stream (and group stream),
   * its FDT instance and its objects, then refills its rings. `dropQueued`:
   * what the old stream left queued in the rings (up to a ring of packets,
   * its old FDT instance among them, which a client joining later would
   * decode first) is dropped first, the replicator channels made again
   * with their members and their counts carried (a change of content). A
   * live channel's new segment does not drop: it keeps what is queued.
   * Closing the old stream is its owner's (restream here, LiveChannel).
   */
  replaceStream(ch: ServerChannel, next: StreamReplacement, dropQueued: boolean): void {
    ch.stream = next.stream;
    ch.objects = next.objects;
    ch.fdt = next.fdt;
    this.c.streams.set(ch.tsi, ch.stream);
    // The new stream knows no member's needs yet: each is unknown until it reports again (§7a).
    for (const peer of this.c.members(ch.name)) ch.stream.expectNeed?.(peerKey(peer));
    const g = ch.multicast;
    if (g && next.group) {
      g.stream = next.group;
      this.c.streams.set(g.channelId, g.stream);
    }
    if (dropQueued) this.resetRings(ch);
    this.c.refill(ch.tsi);
    if (g) this.c.refill(g.channelId);
  }

  private restreamAll(affected: readonly ServerChannel[], objectsOf: (objects: readonly CatalogueObject[]) => CatalogueObject[], now: number): void {
    for (const ch of affected) {
      try {
        this.restream(ch, objectsOf(ch.objects), now);
      } catch (err) {
        // Called from the block cache's callback: a throw here would end the process.
        this.c.log.error({ channel: ch.name, code: (err as { code?: unknown }).code, reason: err instanceof Error ? err.message : String(err) }, 'channel could not drop a withdrawn object');
      }
    }
  }

  /** `ch` gets a new stream (and group stream) of `objects`, with a new FDT instance listing them (§10.2). */
  private restream(ch: ServerChannel, objects: CatalogueObject[], now: number): void {
    const plan = this.c.plan.channels.find((p) => p.tsi === ch.tsi);
    if (!plan) return;
    const instanceId = this.nextInstanceId;
    this.nextInstanceId = (this.nextInstanceId + 1) % FDT_INSTANCE_IDS;
    const fdt = this.c.catalogue.fdt(objects, instanceId, now, undefined, this.c.offered);
    const unicast: ChannelStreamOptions = {
      ...channelStreamOptions(this.c.options, this.c.plan, { ...plan, objects }, fdt, this.c.allocatorOf, this.c.pins),
      firstSequence: ch.stream.unwrappedPosition,
    };
    // A channel left with no object sends its FDT alone.
    if (objects.length === 0) delete unicast.windowBlocks;
    const old = [ch.stream, ch.multicast?.stream];
    const oldFdt = ch.fdt;
    const stream = new ChannelStream(unicast);
    const g = ch.multicast;
    const group = g && new ChannelStream({ ...groupStreamOptions(unicast, objects, this.c.noCode, this.c.allocatorOf), firstSequence: g.stream.unwrappedPosition });
    for (const s of old) s?.close();
    oldFdt.encoder.close();
    this.replaceStream(ch, { stream, fdt, objects, group }, true);
  }

  /**
   * Drops what the old stream left queued in `ch`'s rings: each replicator
   * channel is made again, with the same members (the client manager's
   * unicast destinations; the group).
   */
  private resetRings(ch: ServerChannel): void {
    const rep = this.c.replicator();
    if (!rep) return;
    this.carry(ch.tsi);
    rep.removeChannel(ch.tsi);
    rep.createChannel(ch.tsi, this.c.ringConfig(ch, ch.stream.slotSize));
    for (const peer of this.c.members(ch.name)) this.c.transportOf(peer)?.addMember(ch.tsi, peer);
    const g = ch.multicast;
    if (g) {
      rep.removeGroup(g.channelId);
      this.carry(g.channelId);
      rep.removeChannel(g.channelId);
      rep.createChannel(g.channelId, this.c.ringConfig(ch, g.stream.slotSize));
      rep.addGroup(g.channelId, sinkConfig(g));
    }
  }

  /** Keeps what replicator channel `id` counted so far, before it is made again. */
  private carry(id: number): void {
    const rep = this.c.replicator();
    if (!rep) return;
    let now: ReplicatorChannelCounters;
    try {
      now = rep.channelStats(id);
    } catch {
      return;
    }
    const c = this.carried.get(id) ?? { ...NO_CARRIED };
    for (const k of CARRIED_KEYS) c[k] += now[k] ?? 0;
    this.carried.set(id, c);
  }
}

/**
 * The server's channels as every FDT instance lists them (rq:Channel,
 * docs/PROTOCOL.md §9: `rqcast ls`, one-segment URLs): the configured ones,
 * then the live ones (unicast, over TCP where the server has it).
 */
export function offeredChannels(plan: ServerPlan, options: RqcastServerOptions): FdtChannel[] {
  return [
    ...plan.channels.map((c) => ({
      name: c.name,
      rateBps: Math.round(c.rateMbps * 1e6),
      transports: ['udp', ...(plan.tcp ? (['tcp'] as const) : []), ...(c.multicast ? (['multicast'] as const) : [])] as FdtChannel['transports'],
    })),
    ...(options.live ?? []).map((l) => ({
      name: l.name,
      rateBps: Math.round(liveRateMbps(l, options) * 1e6),
      transports: ['udp', ...(plan.tcp ? (['tcp'] as const) : [])] as FdtChannel['transports'],
    })),
  ];
}

/** The replicator's per-channel counts that only grow (not queued, destinations). */
const CARRIED_KEYS = ['streamPackets', 'datagrams', 'bytes', 'dropsEagain', 'dropsEnobufs', 'errors', 'tcpPackets', 'tcpBytes', 'pacingForfeitedBytes', 'pacingRepaidBytes'] as const;
type CarriedChannelCounts = Record<(typeof CARRIED_KEYS)[number], number>;
const NO_CARRIED: CarriedChannelCounts = { streamPackets: 0, datagrams: 0, bytes: 0, dropsEagain: 0, dropsEnobufs: 0, errors: 0, tcpPackets: 0, tcpBytes: 0, pacingForfeitedBytes: 0, pacingRepaidBytes: 0 };

/** A channel's counts now plus what its earlier replicator channels counted (a field the replicator leaves out stays out). */
function withCarried(now: ReplicatorChannelCounters, carried: CarriedChannelCounts | undefined): ReplicatorChannelCounters {
  if (!carried) return now;
  const out: ReplicatorChannelCounters = { ...now };
  for (const k of CARRIED_KEYS) {
    if (k === 'streamPackets' || k === 'datagrams' || k === 'bytes') out[k] = now[k] + carried[k];
    else if (now[k] !== undefined) out[k] = (now[k] as number) + carried[k];
  }
  return out;
}
