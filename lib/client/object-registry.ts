/**
 * ObjectRegistry: what a fetch receives, whatever session, transport or
 * channel the packets come by.
 *
 * - Channels are keyed by (source, TSI): a source is one session (one server
 *   over one transport), and the TSI (RFC 5651 §5.1) is unique only within
 *   the server that gave it in JOINED, so two servers' TSIs may collide.
 * - Objects are keyed by what they are, not by where they come from: the
 *   FDT's Content-Location (percent-decoded: the name, RFC 3986),
 *   rq:Content-SHA-256 and OTI (RFC 6726 §3.4.2,
 *   RFC 6330 §3.3). Every channel, of any source, whose FDT lists the same
 *   name, digest and OTI feeds the same ObjectReceiver, so their symbols
 *   combine (servers of one deployment give each source its own ESI range).
 *   A name listed with another digest or OTI is refused with a warning (the
 *   first one is kept: both would be written to one path).
 * - Per channel, TOI 0 goes to the channel's FdtReceiver; packets of TOIs no
 *   FDT of the channel has listed yet wait in a bounded buffer until its
 *   first FDT instance arrives (docs/PROTOCOL.md §10.7 step 6).
 * - Each object's decoded blocks go to its sink (sinks/sink.ts), which
 *   verifies and publishes the object once every block is written.
 */
import { AlcPacket, FDT_TOI } from '../protocol/alc';
import { decodeContentLocation } from '../protocol/content-location';
import type { FdtFile, FdtInstance } from '../protocol/fdt';
import type { JoinedChannel } from '../protocol/messages';
import { sameOti } from '../protocol/oti';
import type { Oti as WireOti } from '../protocol/oti';
import type { PartialBlockBudget } from './block-budget';
import { DigestMismatchError, ObjectWithdrawnError, quotedName, ServerOffer, UnfetchableObjectError } from './errors';
import { FdtReceiver } from './fdt-receiver';
import { ObjectReceiver } from './object-receiver';
import type { KeptPartial, ObjectSink, SinkFactory } from './sinks/sink';
import type { SymbolTally } from './symbol-tally';
import type { PacketTap } from './packet-tap';

/** One object being received. */
export interface RegisteredObject {
  readonly name: string;
  readonly file: FdtFile;
  readonly oti: WireOti;
  readonly sha256: Uint8Array;
  readonly receiver: ObjectReceiver;
  readonly sink: ObjectSink;
  /** When the receiver last took a symbol (Unix ms). */
  lastUsefulAt: number;
  /** symbolsReceived when the current receive batch first gave it symbols; -1 when it has not (data-path.ts). */
  batchMark: number;
  /** When its last block decoded, and when every block was written (Unix ms): the tail's steps (fetch-report.ts). */
  decodedAt?: number;
  writtenAt?: number;
  /** Verified and published. */
  done: boolean;
  /** A newer FDT instance gave its name a new version (new TOI): this one was dropped for it. */
  replaced?: boolean;
  /** A newer FDT instance no longer lists it, anywhere: the server withdrew it (its resume files are not kept). */
  withdrawn?: boolean;
  /** Given up (a live segment that left the server's window): counts as done, its failure is not the fetch's. */
  skipped?: boolean;
}

/**
 * Which Files of an FDT instance the fetch wants, when it is not "the one
 * named" or "all" (live playout: the segments of one stream from a start
 * on, lib/client/live-playout.ts). Sees every instance applied.
 */
export interface FileSelector {
  /** Called with every FDT instance before its Files are looked at. */
  instance(files: readonly FdtFile[], complete: boolean | undefined): void;
  wants(file: FdtFile): boolean;
}

/** One joined channel of one source. */
export interface ChannelEntry {
  /** The session it was joined by. */
  readonly source: number;
  readonly name: string;
  readonly tsi: number;
  readonly fdt: FdtReceiver;
  /** A first FDT instance has been decoded. */
  fdtSeen: boolean;
  /** The instance ID of the newest FDT instance applied (docs/PROTOCOL.md §10.2). */
  fdtInstanceId?: number;
  /** The last FDT instance applied said Complete="false": more Files may come (a live channel, docs/PROTOCOL.md §10.14). */
  fdtOpen: boolean;
  /** The last FDT instance applied (what `rqcast ls` lists). */
  fdtInstance?: FdtInstance;
  /** TOI -> object of this channel. */
  readonly tois: Map<bigint, RegisteredObject>;
  /** The same for the TOIs that are safe Numbers (every one rqcast sends): the data path's lookup. */
  readonly toiNumbers: Map<number, RegisteredObject>;
  /** TOIs this channel's FDTs list that are not wanted. */
  readonly ignoredTois: Set<bigint>;
  readonly ignoredToiNumbers: Set<number>;
  /** Packets of TOIs not (yet) in an FDT, until the first FDT instance. */
  unknown: AlcPacket[];
}

/** What the registry tells its owner. */
export interface ObjectRegistryEvents {
  warning(message: string): void;
  /** A failure that ends the fetch (the named object cannot be fetched, a decode or a write failed, a digest mismatch). */
  failed(e: unknown): void;
  /** An FDT instance was applied: the set of wanted objects may have changed. */
  fdtApplied(): void;
  /** Every block of `obj` decoded (its writes may still be in flight). */
  objectDecoded(obj: RegisteredObject): void;
  /** `obj` verified and published by its sink. */
  objectVerified(obj: RegisteredObject): void;
}

export interface ObjectRegistryOptions {
  /** The one object wanted (the URL's NAME); every object of the FDTs if undefined. */
  name?: string;
  /** Packets of TOIs not yet in an FDT kept per channel. */
  maxUnknownPackets: number;
  /** Read the FDTs only (`rqcast ls`): no object is wanted, every TOI is ignored. */
  listOnly?: boolean;
  /** Partial blocks of every object, shared. */
  budget: PartialBlockBudget;
  sinks: SinkFactory;
  /** With `name` undefined: which Files are wanted (default: all). An open FDT (Complete="false") then keeps the fetch going. */
  selector?: FileSelector;
  /** Counted here: packets of unknown TOIs dropped because the buffer was full. */
  stats: { unknownDropped: number };
  /** Where each object symbol came from (a fetch from several servers; symbol-tally.ts). */
  tally?: SymbolTally;
  /** Decode nothing: no object is wanted, FDT instances and object packets go here, and the fetch never finishes (packet-tap.ts). */
  tap?: PacketTap;
  events: ObjectRegistryEvents;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

export class ObjectRegistry {
  /** source -> TSI -> channel. */
  private readonly channels = new Map<number, Map<number, ChannelEntry>>();
  private channelCount = 0;
  /** Channels another session took over (supersede). */
  private readonly superseded = new Set<ChannelEntry>();
  /** By name; each one is also known by its digest and OTI (objectFor). */
  private readonly byName = new Map<string, RegisteredObject>();
  /** Names whose replaced version's sink is still being taken back (its abort): the new version's sink waits for it. */
  private readonly releasing = new Map<string, Promise<unknown>>();
  /** Every name the FDTs listed, wanted or not, and the server's channels as the last FDT listed them: what an error offers instead. */
  private readonly listed = new Set<string>();
  private listedChannels: string[] = [];

  constructor(private readonly o: ObjectRegistryOptions) {}

  /** Every object, in the order the FDTs listed them. */
  get objects(): IterableIterator<RegisteredObject> {
    return this.byName.values();
  }

  get size(): number {
    return this.byName.size;
  }

  /** A channel `source` joined. */
  addChannel(source: number, joined: JoinedChannel): ChannelEntry {
    let bySource = this.channels.get(source);
    if (bySource === undefined) this.channels.set(source, (bySource = new Map()));
    const existing = bySource.get(joined.tsi);
    if (existing) return existing;
    const ch: ChannelEntry = {
      source,
      name: joined.name,
      tsi: joined.tsi,
      fdt: new FdtReceiver(),
      fdtSeen: false,
      fdtOpen: false,
      tois: new Map(),
      toiNumbers: new Map(),
      ignoredTois: new Set(),
      ignoredToiNumbers: new Set(),
      unknown: [],
    };
    bySource.set(joined.tsi, ch);
    this.channelCount++;
    return ch;
  }

  /** Every channel of every source, superseded ones included, in the order they were joined per source. */
  *allChannels(): IterableIterator<ChannelEntry> {
    for (const bySource of this.channels.values()) yield* bySource.values();
  }

  channel(source: number, tsi: number): ChannelEntry | undefined {
    return this.channels.get(source)?.get(tsi);
  }

  /** Some channel is joined and every one has delivered an FDT (a superseded one needs none). */
  fdtsComplete(): boolean {
    if (this.channelCount === 0) return false;
    for (const bySource of this.channels.values()) {
      for (const ch of bySource.values()) {
        if (!ch.fdtSeen && !this.superseded.has(ch)) return false;
        // A selector's fetch (live) runs until its FDT is complete.
        if (this.o.selector !== undefined && ch.fdtOpen) return false;
      }
    }
    return true;
  }

  /** Gives up on `obj` (a live segment that can no longer come): closes its receiver, counts it as done. */
  skip(obj: RegisteredObject, reason: Error): void {
    if (obj.done) return;
    obj.skipped = true;
    obj.done = true;
    obj.receiver.close(reason);
    void obj.sink.abort();
  }

  /**
   * Channel `tsi` of `source` is now received by another session (the
   * fallback to TCP opens one): it no longer needs an FDT of its own for the
   * fetch to finish, since the new session's entry of the channel does.
   * Its packets still count wherever they go.
   */
  supersede(source: number, tsi: number): void {
    const ch = this.channel(source, tsi);
    if (ch) this.superseded.add(ch);
  }

  /**
   * The URL names an object that no FDT has listed, and none will: no
   * channel's last FDT instance is Complete="false" (RFC 6726 §3.4.2:
   * Files may still be added to such a session).
   */
  missingNamed(): boolean {
    if (this.o.name === undefined || this.byName.has(this.o.name)) return false;
    for (const bySource of this.channels.values()) for (const ch of bySource.values()) if (ch.fdtOpen) return false;
    return true;
  }

  /** What the FDTs applied so far offer: every object name they listed, and the server's channels. */
  offer(): ServerOffer {
    return { objects: [...this.listed], channels: [...this.listedChannels] };
  }

  /** Every object's blocks are decoded (never while the URL's NAME is not listed yet: an open FDT may add it). */
  allDecoded(): boolean {
    if (this.o.tap) return false;
    if (this.o.name !== undefined && !this.byName.has(this.o.name)) return false;
    for (const obj of this.byName.values()) if (!obj.receiver.complete) return false;
    return true;
  }

  /** Every object is verified and published (as allDecoded, never before the URL's NAME is listed). */
  allVerified(): boolean {
    if (this.o.tap) return false;
    if (this.o.name !== undefined && !this.byName.has(this.o.name)) return false;
    for (const obj of this.byName.values()) if (!obj.done) return false;
    return true;
  }

  /**
   * A decoded ALC packet of channel `ch`. True if it helped (the fetch's
   * timeout counts it): an FDT packet of a channel with no FDT yet, or a
   * symbol taken for a block still needed. A packet of a block already
   * decoded does not count, even while its object is unfinished.
   */
  route(ch: ChannelEntry, p: AlcPacket, now: number): boolean {
    if (p.toi === FDT_TOI) {
      const useful = !ch.fdtSeen;
      const r = ch.fdt.add(p);
      if (r) this.applyFdt(ch, r.fdt, r.instanceId, now);
      return useful;
    }
    const tap = this.o.tap;
    if (tap) {
      if (p.toi <= BigInt(Number.MAX_SAFE_INTEGER)) tap.packet(ch.source, ch.tsi, Number(p.toi), p.sbn, p.esi, p.payload);
      return true;
    }
    const obj = ch.tois.get(p.toi);
    if (obj) {
      this.tallied(ch, obj, p);
      const before = obj.receiver.stats.symbolsReceived;
      obj.receiver.add(p);
      const useful = obj.receiver.stats.symbolsReceived !== before;
      if (useful) obj.lastUsefulAt = now;
      return useful;
    }
    if (ch.fdtSeen || ch.ignoredTois.has(p.toi)) return false;
    // Not in an FDT yet: keep a bounded number for when it arrives.
    if (ch.unknown.length >= this.o.maxUnknownPackets) {
      this.o.stats.unknownDropped++;
      return false;
    }
    ch.unknown.push(p);
    return false;
  }

  /** Frees the FDT decoders. */
  close(): void {
    for (const bySource of this.channels.values()) for (const ch of bySource.values()) ch.fdt.close();
  }

  /**
   * The fetch failed: stop every receiver; the sinks of unverified objects
   * take back what they wrote, except resumable ones, which keep it for the
   * next fetch (ObjectSink.suspend) unless the object failed its digest
   * (a kept block may be the bad one) or the server withdrew it (§10.2).
   * A server that left (ServerLeftError) is like any other stop: kept.
   * Returns what was kept.
   */
  async abort(err: Error): Promise<KeptPartial[]> {
    const kept: KeptPartial[] = [];
    for (const obj of this.byName.values()) {
      obj.receiver.close(err);
      if (obj.done) continue;
      // A withdrawn object will not be served again as announced: what it kept could never be resumed.
      if (obj.sink.suspend !== undefined && !(err instanceof DigestMismatchError) && !obj.withdrawn) {
        const k = await obj.sink.suspend();
        if (k !== undefined) kept.push(k);
      } else {
        await obj.sink.abort();
      }
    }
    return kept;
  }

  // ---------------------------------------------------------------------

  private applyFdt(ch: ChannelEntry, fdt: FdtInstance, instanceId: number, now: number): void {
    // An instance older than the one applied (late packets of it) says nothing new.
    if (ch.fdtInstanceId !== undefined && !newerInstance(instanceId, ch.fdtInstanceId)) return;
    ch.fdtInstanceId = instanceId;
    if (ch.fdtSeen) this.withdrawUnlisted(ch, fdt);
    ch.fdtSeen = true;
    ch.fdtOpen = fdt.complete === false;
    ch.fdtInstance = fdt;
    this.o.tap?.fdt(ch.source, ch.name, ch.tsi, instanceId, fdt);
    const listOnly = this.o.listOnly || this.o.tap !== undefined;
    const named = this.o.name;
    if (fdt.channels) this.listedChannels = fdt.channels.map((c) => c.name);
    const selector = named === undefined && !listOnly ? this.o.selector : undefined;
    selector?.instance(fdt.files, fdt.complete);
    for (const file of fdt.files) {
      const name = decodeContentLocation(file.contentLocation);
      this.listed.add(name);
      if (ch.tois.has(file.toi) || ch.ignoredTois.has(file.toi)) continue;
      if (listOnly || (named !== undefined && name !== named) || (selector !== undefined && !selector.wants(file))) {
        this.ignoreToi(ch, file.toi);
        continue;
      }
      let obj: RegisteredObject | undefined;
      try {
        obj = this.objectFor(file, name, now);
      } catch (e) {
        if (named !== undefined) {
          this.o.events.failed(e);
          return;
        }
        this.o.events.warning(e instanceof Error ? e.message : String(e));
      }
      if (obj) {
        ch.tois.set(file.toi, obj);
        if (file.toi <= BigInt(Number.MAX_SAFE_INTEGER)) ch.toiNumbers.set(Number(file.toi), obj);
      } else {
        this.ignoreToi(ch, file.toi);
      }
    }
    const buffered = ch.unknown;
    ch.unknown = [];
    for (const p of buffered) {
      const obj = ch.tois.get(p.toi);
      if (obj) {
        this.tallied(ch, obj, p);
        obj.receiver.add(p);
        obj.lastUsefulAt = now;
      }
    }
    this.o.events.fdtApplied();
  }

  /**
   * A newer FDT instance of `ch` no longer lists objects an earlier one did:
   * the server withdrew them (§10.2; a file it can no longer serve as
   * announced). They leave the channel; one that is wanted, not yet done,
   * and on no other channel any more fails the fetch (ObjectWithdrawnError).
   */
  private withdrawUnlisted(ch: ChannelEntry, fdt: FdtInstance): void {
    const listed = new Set(fdt.files.map((f) => f.toi));
    const gone: RegisteredObject[] = [];
    for (const [toi, obj] of ch.tois) {
      if (listed.has(toi)) continue;
      ch.tois.delete(toi);
      ch.toiNumbers.delete(Number(toi));
      this.ignoreToi(ch, toi);
      gone.push(obj);
    }
    const names = new Set(fdt.files.map((f) => decodeContentLocation(f.contentLocation)));
    for (const obj of gone) {
      if (obj.done) continue;
      if (names.has(obj.name)) {
        this.replace(obj);
        continue;
      }
      let elsewhere = false;
      for (const bySource of this.channels.values()) {
        for (const other of bySource.values()) for (const o of other.tois.values()) if (o === obj) elsewhere = true;
      }
      if (!elsewhere) {
        obj.withdrawn = true;
        this.o.events.failed(new ObjectWithdrawnError(obj.name));
      }
    }
  }

  /**
   * The server announced a new version of `obj` (its name under a new TOI,
   * §10.2: the file changed while served): what was received of the old
   * one is dropped (its temp file too), and the name is free for the new
   * version, which the FDT being applied registers.
   */
  private replace(obj: RegisteredObject): void {
    obj.replaced = true;
    this.byName.delete(obj.name);
    for (const bySource of this.channels.values()) {
      for (const ch of bySource.values()) {
        for (const [toi, o] of ch.tois) {
          if (o !== obj) continue;
          ch.tois.delete(toi);
          ch.toiNumbers.delete(Number(toi));
          this.ignoreToi(ch, toi);
        }
      }
    }
    obj.receiver.close(new Error('replaced by a new version'));
    // The new version's sink (same destination, same resume files) touches nothing before this one has let go.
    const released = obj.sink.abort().catch(() => undefined);
    this.releasing.set(obj.name, released);
    void released.then(() => {
      if (this.releasing.get(obj.name) === released) this.releasing.delete(obj.name);
    });
    this.o.events.warning(`${quotedName(obj.name)} changed on the server: fetching its new version`);
  }

  /** Counts `p`'s symbols for its source (with a tally). */
  private tallied(ch: ChannelEntry, obj: RegisteredObject, p: AlcPacket): void {
    this.o.tally?.record(ch.source, obj, p.sbn, p.esi, Math.floor(p.payloadLength / obj.oti.symbolSize));
  }

  private ignoreToi(ch: ChannelEntry, toi: bigint): void {
    ch.ignoredTois.add(toi);
    if (toi <= BigInt(Number.MAX_SAFE_INTEGER)) ch.ignoredToiNumbers.add(Number(toi));
  }

  /** The object for an FDT entry named `name` (its Content-Location decoded): the one already known (same name, digest, OTI), a new one, or undefined (refused). */
  private objectFor(file: FdtFile, name: string, now: number): RegisteredObject | undefined {
    if (file.oti === undefined) throw new UnfetchableObjectError(name, 'the FDT gives no RaptorQ OTI');
    if (file.sha256 === undefined) throw new UnfetchableObjectError(name, 'the FDT gives no rq:Content-SHA-256 to verify it');
    const existing = this.byName.get(name);
    if (existing) {
      if (sameOti(existing.oti, file.oti) && sameBytes(existing.sha256, file.sha256)) return existing;
      this.o.events.warning(`channels disagree about ${quotedName(name)} (digest or OTI); using the first`);
      return undefined;
    }
    const previous = this.releasing.get(name);
    const sink = this.o.sinks.open({ name, oti: file.oti, sha256: file.sha256, ...(previous ? { after: previous } : {}) });
    const receiver = new ObjectReceiver(file.oti, sink, { budget: this.o.budget });
    if (receiver.budgetRaised) {
      this.o.events.warning(
        `memory budget raised to ${Math.ceil(this.o.budget.limitBytes / 2 ** 20)} MiB: two source blocks of ${quotedName(name)} must fit`,
      );
    }
    const obj: RegisteredObject = { name, file, oti: file.oti, sha256: file.sha256, receiver, sink, lastUsefulAt: now, batchMark: -1, done: false };
    this.byName.set(name, obj);
    // A resumed fetch: the blocks the sink kept (verified) count as decoded.
    sink.resumed?.then(
      (sbns) => {
        receiver.resumeBlocks(sbns);
        // Then the symbols it had of the other blocks; failing to read them back only loses them.
        sink.resumeSymbols?.((offset, bytes) => receiver.addKeptSource(offset, bytes)).catch(() => undefined);
      },
      (e: unknown) => {
        if (!obj.replaced) this.o.events.failed(e);
      },
    );
    receiver.done.then(
      () => {
        obj.writtenAt = Date.now();
        return this.verify(obj);
      },
      (e: unknown) => {
        if (!obj.replaced && !obj.skipped) this.o.events.failed(e);
      },
    );
    void receiver.decoded.then(() => {
      obj.decodedAt = Date.now();
      this.o.events.objectDecoded(obj);
    });
    return obj;
  }

  private async verify(obj: RegisteredObject): Promise<void> {
    try {
      await obj.sink.commit();
    } catch (e) {
      if (!obj.skipped) this.o.events.failed(e);
      return;
    }
    if (obj.skipped) return;
    obj.done = true;
    this.o.events.objectVerified(obj);
  }
}

/** FDT Instance IDs are 20 bits and count up (RFC 6726 §3.4.1): whether `a` is newer than `b`, modulo 2^20. */
export function newerInstance(a: number, b: number): boolean {
  const d = (a - b + 2 ** 20) % 2 ** 20;
  return d > 0 && d < 2 ** 19;
}
