/**
 * LiveChannel: wiring of one live stream (issue 10) into a server channel
 * of its own. Its LiveSource cuts the input into segments; each stored
 * segment becomes an object (LiveObjects: TOI seq + 1, `NAME/seq`), and each
 * change (a segment added, one dropped, the input ended) builds the
 * channel's stream again with a new FDT instance, which the server installs
 * in place of the old one (docs/PROTOCOL.md §10.14):
 *
 * - the stream's objects are the kept segments, newest first, one block at
 *   a time (IN_ORDER_WINDOW): a new segment gets its pass quota at once,
 *   then the older ones follow for receivers that joined late or lag;
 * - EXT_RQSEQ continues from the old stream, and each segment keeps its ESI
 *   allocator for as long as it is kept, so no symbol is sent twice;
 * - a segment's block is prepared when the stream first needs it and
 *   released when the window moves past it: prepared memory is about two
 *   segments, the kept window stays on disk.
 */
import type { CatalogueObject, FdtObject } from '../content/catalogue';
import { LiveObjects } from '../content/live-objects';
import type { LiveSegment, LiveSource } from '../content/live-source';
import { SymbolAllocator } from '../content/symbol-allocator';
import { wireOti } from '../content/catalogue';
import { ChannelStream, IN_ORDER_WINDOW, type BlockPins, type SymbolSource } from '../stream/channel-stream';
import type { BlockPreparation } from '../content/block-source';
import type { FdtChannel } from '../protocol/fdt-schema';
import type { Catalogue } from '../content/catalogue';
import { InvalidServerConfigError } from '../errors';
import type { ReplicatorChannelConfig } from '../transport/replicator-contract';
import type { ServerChannel } from './channel-content';
import { type ChannelPlan, type LiveChannelConfig, liveRateMbps, replicatorChannelConfig, type RqcastServerOptions, type ServerPlan } from './config';

/**
 * Ring slots of a live channel: at 100 Mbit/s with T = 1280, 256 packets
 * are 27 ms of stream, the most a new segment waits behind packets built
 * before it (a file channel's 4096 would be 430 ms).
 */
export const LIVE_RING_CAPACITY = 256;
/**
 * One FDT packet in this many on a live channel: a receiver learns of a new
 * segment only from the FDT instance that lists it, so the FDT is the
 * announcement path and gets one packet in 8.
 */
export const LIVE_FDT_INTERVAL = 8;

export interface LiveChannelOptions {
  tsi: number;
  source: LiveSource;
  symbolSize: number;
  noCode: boolean;
  fdtInterval?: number;
  passOverhead?: number;
  /** The server's channels, listed in each FDT instance (rq:Channel, as every channel's FDT). */
  channels?: readonly FdtChannel[];
  clock: () => number;
  /** The channel's stream changed: the server installs it (and closes the old one). */
  install(stream: ChannelStream, fdt: FdtObject, objects: readonly CatalogueObject[]): void;
}

/** Blocks prepared on first use and released when the window leaves them. */
const RELEASE_ON_UNPIN: BlockPins = {
  pin() {},
  unpin(source: SymbolSource, sbn: number) {
    (source as unknown as BlockPreparation).releaseBlock(sbn);
  },
  ready: () => true,
};

export class LiveChannel {
  readonly objects: LiveObjects;
  private readonly allocators = new Map<CatalogueObject, SymbolAllocator>();
  private stream?: ChannelStream;
  private fdt?: FdtObject;
  /** Encoders of dropped segments, closed once the stream that used them is replaced. */
  private closing: CatalogueObject[] = [];
  private closed = false;

  constructor(private readonly o: LiveChannelOptions) {
    this.objects = new LiveObjects(o.source.name, o.symbolSize);
    o.source.on('segment', (s: LiveSegment) => this.onSegment(s));
    o.source.on('dropped', (s: LiveSegment) => this.onDropped(s));
    o.source.on('end', () => this.rebuild());
  }

  /** The first stream: no segment yet, an FDT listing none (Complete="false"). */
  initial(): { stream: ChannelStream; fdt: FdtObject } {
    return this.build();
  }

  close(): void {
    this.closed = true;
    this.stream?.close();
    this.fdt?.encoder.close();
    for (const o of this.closing.splice(0)) o.encoder.close();
    this.objects.close();
  }

  private onSegment(s: LiveSegment): void {
    if (this.closed) return;
    const obj = this.objects.add(s);
    this.allocators.set(obj, SymbolAllocator.forEncoder(obj.encoder, this.o.noCode ? 'carousel' : 'coded'));
    this.rebuild();
  }

  private onDropped(s: LiveSegment): void {
    if (this.closed) return;
    const obj = this.objects.remove(s.seq);
    if (!obj) return;
    this.allocators.delete(obj);
    this.closing.push(obj);
    this.rebuild();
  }

  private rebuild(): void {
    if (this.closed) return;
    const old = { stream: this.stream, fdt: this.fdt, closing: this.closing };
    this.closing = [];
    const { stream, fdt } = this.build();
    this.o.install(stream, fdt, this.objects.objects);
    old.stream?.close();
    old.fdt?.encoder.close();
    for (const o of old.closing) o.encoder.close();
  }

  private build(): { stream: ChannelStream; fdt: FdtObject } {
    const fdt = this.objects.fdt(this.o.source.ended, this.o.clock(), this.o.channels);
    const newestFirst = [...this.objects.objects].reverse();
    const stream = new ChannelStream({
      tsi: this.o.tsi,
      objects: newestFirst.map((o) => ({ toi: o.toi, encoder: o.encoder, allocator: this.allocators.get(o)! })),
      fdt: {
        instanceId: fdt.instanceId,
        encoder: fdt.encoder,
        allocator: SymbolAllocator.forEncoder(fdt.encoder, this.o.noCode ? 'carousel' : 'coded'),
        oti: wireOti(fdt.encoder.otiInfo),
      },
      fdtInterval: this.o.fdtInterval,
      windowBlocks: IN_ORDER_WINDOW,
      passOverhead: this.o.passOverhead,
      pins: RELEASE_ON_UNPIN,
      firstSequence: this.stream ? this.stream.unwrappedPosition : 0,
    });
    this.stream = stream;
    this.fdt = fdt;
    return { stream, fdt };
  }
}

/** What liveServerChannel needs of the server. */
export interface LiveServerContext {
  catalogue: Catalogue;
  options: RqcastServerOptions;
  noCode: boolean;
  clock: () => number;
  /** The channel's stream changed (RqcastServer's replaceStream, through ChannelContent). */
  install(tsi: number, stream: ChannelStream, fdt: FdtObject, objects: readonly CatalogueObject[]): void;
}

/**
 * A live stream's channel, TSI after the channels before it. Its NAME must
 * not be a channel's, nor an object's name or prefix (its objects are
 * NAME/seq).
 */
export function liveServerChannel(
  live: LiveChannelConfig,
  before: readonly ServerChannel[],
  offered: readonly FdtChannel[],
  ctx: LiveServerContext,
): { ch: ServerChannel; channel: LiveChannel; rateMbps: number } {
  const name = live.name;
  if (before.some((c) => c.name === name)) throw new InvalidServerConfigError(`live stream "${name}": a channel has that name already; choose another NAME`);
  const clash = ctx.catalogue.objects.find((o) => o.name === name || o.name.startsWith(name + '/') || name.startsWith(o.name + '/'));
  if (clash) throw new InvalidServerConfigError(`live stream "${name}" clashes with the file object "${clash.name}": its segments are named ${name}/N; choose another NAME`);
  const tsi = before.length + 1;
  const rateMbps = liveRateMbps(live, ctx.options);
  const symbolSize = ctx.catalogue.symbolSize;
  const channel = new LiveChannel({
    tsi,
    source: live.source,
    symbolSize,
    noCode: ctx.noCode,
    fdtInterval: ctx.options.fdtInterval ?? LIVE_FDT_INTERVAL,
    passOverhead: ctx.options.passOverhead,
    channels: offered,
    clock: ctx.clock,
    install: (stream, fdt, objects) => ctx.install(tsi, stream, fdt, objects),
  });
  const first = channel.initial();
  const ch: ServerChannel = { name, tsi, objects: [], rateMbps, stream: first.stream, fdt: first.fdt };
  return { ch, channel, rateMbps };
}

/** A live channel's ring: a short one, so a new segment waits behind at most LIVE_RING_CAPACITY packets. */
export function liveRingConfig(plan: ServerPlan, rateMbps: number, slotSize: number): ReplicatorChannelConfig {
  const cfg = replicatorChannelConfig(plan, { rateMbps } as ChannelPlan, slotSize);
  const capacity = Math.min(cfg.capacity ?? LIVE_RING_CAPACITY, LIVE_RING_CAPACITY);
  return { ...cfg, capacity, lowWater: Math.floor(capacity / 4) };
}
