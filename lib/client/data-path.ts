/**
 * DataPath: what arrives over one transport of one session, datagram by
 * datagram, in the order it arrived (docs/PROTOCOL.md §3, §10.1):
 *
 * - Source check: only datagrams from the server's address count (an
 *   IPv4-mapped IPv6 source is the IPv4 address); a control message (first
 *   byte 0x52) only from the control port, and it goes to the session; an
 *   ALC packet (RFC 5775) from any port, and only for a TSI the session
 *   joined. Everything else is ignored and counted.
 * - Pre-JOIN buffer: the server adds a client to its channels before its
 *   JOINED reaches the client, so data may overtake the reply; up to
 *   PRE_JOIN_PACKETS wait for it (§10.7 step 3).
 * - The loss hook (a test option): drops a fraction of the data packets
 *   before anything else sees them.
 * - ACK recording (ACK mode, §7): each channel's EXT_RQSEQ numbers go to its
 *   AckReporter; an ACK goes out every ackIntervalMs (the owner's timer
 *   calls sendAcks) or once ackEveryPackets are unreported.
 * - Dispatch to the object registry.
 *
 * A channel's multicast group (docs/PROTOCOL.md §10.10) feeds the same
 * channel through onGroupDatagrams: only ALC packets of that channel's TSI
 * and, when a source is announced, from that source (anything else is
 * counted as multicastForeign); never a control message, never ACKed (the
 * group stream's EXT_RQSEQ is its own and nobody acknowledges it, §7).
 * Its symbols go to the same objects as the unicast stream's, and its FDT
 * to the same channel: whichever carriage delivers them, they count.
 *
 * The fast path: object packets of joined channels are read in place
 * (scanAlcData), with no object or BigInt per packet; their symbols are
 * handed to the receivers as offsets into the delivery's buffer and added
 * to the decoders once per delivery. Everything else (control messages,
 * the FDT, packets before JOINED, packets the scan leaves to decodeAlc, the
 * debug hooks) is decoded (decodeAlc, decodeControl) and takes the general
 * path.
 */
import { performance } from 'perf_hooks';
import { AlcPacket, decodeAlc, newAlcScan, scanAlcData } from '../protocol/alc';
import { decodeControl } from '../protocol/control';
import { CONTROL_MAGIC_0 } from '../protocol/control-header';
import { ControlMessage, JoinedChannel, MessageType } from '../protocol/messages';
import { normalizeAddress, unmapIPv4 } from '../support/address';
import type { Datagrams, ServerEndpoint } from '../transport/client-transport';
import { AckReporter } from './ack-reporter';
import { NeedReporter } from './need-reporter';
import type { ClientStats, PacketInfo } from './events';
import type { ChannelEntry, ObjectRegistry, RegisteredObject } from './object-registry';
import type { SymbolTally } from './symbol-tally';
import type { PacketTap } from './packet-tap';

/** Whether two numeric addresses are the same host (false for anything that is not an address). */
function sameAddress(a: string, b: string): boolean {
  try {
    return normalizeAddress(a).text === normalizeAddress(b).text;
  } catch {
    return false;
  }
}

/** Data packets kept while JOINED is on its way. */
export const PRE_JOIN_PACKETS = 1024;

/** What the data path needs from the session and the fetch it serves. */
export interface DataPathOwner {
  /** The fetch is over: stop, even in the middle of a delivery. */
  readonly ended: boolean;
  /** The session's first JOINED has arrived. */
  readonly joined: boolean;
  /** LEAVE has been sent: nothing more is read. */
  readonly left: boolean;
  /** The cookie ACKs carry; undefined while a new one is being asked for. */
  readonly cookie: Uint8Array | undefined;
  /** A control message from the server's control port. */
  control(msg: ControlMessage): void;
  /** Sends a control message (an ACK) to the server. */
  send(msg: ControlMessage): void;
  /** Something that may still help arrived at `now` (the fetch's timeout). */
  activity(now: number): void;
  /** 'packet' listeners are there: every data packet takes the general path and is reported. */
  watchingPackets(): boolean;
  packet(info: PacketInfo): void;
}

export interface DataPathOptions {
  /** The loss hook: drop this fraction of data packets, drawing from `random`. */
  lossRate: number;
  random: () => number;
  /** ACK mode: a reporter per channel. */
  ack: boolean;
  /** ACK as soon as this many packets of a channel are unreported. */
  ackEveryPackets: number;
  /** NEED reports (need-reporter.ts): a reporter per channel; one as soon as this many packets are unreported. Absent: none. */
  needEveryPackets?: number;
  /** Log every (tsi, toi, sbn, esi) in stats.esiLog (the general path for every packet). */
  recordEsis: boolean;
  /** Counters, shared by every data path of the fetch. */
  stats: ClientStats;
  /** Where each object symbol came from (a fetch from several servers; the registry counts the general path's). */
  tally?: SymbolTally;
  /** Decode nothing: object packets go to the tap (a forward relay; packet-tap.ts). */
  tap?: PacketTap;
}

/** A joined channel as the data path sees it: the registry's entry and its ACK reporter. */
interface Channel {
  entry: ChannelEntry;
  ack?: AckReporter;
  need?: NeedReporter;
  /** Packets taken from the session's own transport (not a group): what the fallback watches. */
  unicastPackets: number;
}

/** A multicast group feeding one joined channel: its TSI, and the source JOINED announced (absent: any source). */
export interface GroupFeed {
  readonly tsi: number;
  readonly source?: string;
}

export class DataPath {
  /** TSI -> channel, for this session only. */
  private readonly channels = new Map<number, Channel>();
  private readonly serverAddress: string;
  /** The last source address seen and whether it is the server's (most datagrams come from one or two). */
  private lastSource = '';
  private lastSourceIsServer = false;
  /** The same for group datagrams: the last source seen, the source it was checked against, and the verdict. */
  private lastGroupSource = '';
  private lastGroupAnnounced = '';
  private lastGroupSourceOk = false;
  /** The scan of the current packet (reused). */
  private readonly scan = newAlcScan();
  /** Objects given symbols in the current delivery. */
  private readonly touched: RegisteredObject[] = [];
  /** This delivery sent a packet where a view of it may be kept (onDatagrams' result). */
  private viewsKept = false;
  /** Data that arrived before JOINED. */
  private preJoin: { p: AlcPacket; length: number }[] = [];
  private readonly stats: ClientStats;
  private readonly lossRate: number;

  constructor(
    /** The session's id in the registry. */
    readonly source: number,
    private readonly server: ServerEndpoint,
    private readonly registry: ObjectRegistry,
    private readonly owner: DataPathOwner,
    private readonly o: DataPathOptions,
  ) {
    this.serverAddress = unmapIPv4(server.address);
    this.stats = o.stats;
    this.lossRate = o.lossRate;
  }

  /** The channels of the session's first JOINED. */
  addChannels(joined: JoinedChannel[]): void {
    for (const c of joined) {
      const need = this.o.needEveryPackets !== undefined && (!c.multicast || c.multicast.unicast) ? new NeedReporter() : undefined;
      this.channels.set(c.tsi, { entry: this.registry.addChannel(this.source, c), ack: this.o.ack ? new AckReporter() : undefined, need, unicastPackets: 0 });
    }
  }

  /** The data that overtook JOINED, now that the channels are known. */
  replayPreJoin(): void {
    const early = this.preJoin;
    this.preJoin = [];
    for (const e of early) this.onAlc(e.p, e.length, true);
  }

  /** Data packets waiting for JOINED. */
  get preJoinCount(): number {
    return this.preJoin.length;
  }

  /**
   * One delivery of datagrams (a native batch, or one dgram message), in
   * one pass. true: no view of `d` is held past it (what the fast path
   * takes is copied, or staged and handed to the decoders at the end of the
   * delivery; a reusable delivery's other datagrams go the general path as
   * copies: an FDT, a control message, data before JOINED); false: a packet
   * went where a view of it may be kept (the general path of a delivery
   * that is not reusable, or with hooks; a tap; the registry's packets of a
   * TOI not yet in an FDT).
   */
  onDatagrams(d: Datagrams): boolean {
    const owner = this.owner;
    if (owner.ended || owner.left) return true;
    this.viewsKept = false;
    const stats = this.stats;
    stats.ignored += d.truncated;
    const data = d.data;
    const scan = this.scan;
    const hooks = this.o.recordEsis || owner.watchingPackets();
    // Rare but for hooks: copied, they leave the storage free.
    const copyGeneral = d.reusable === true && !hooks;
    // Only the general path (a control message, an FDT) can end the fetch or
    // join the session: read both again after it, not per packet.
    let ended = false;
    let joined = owner.joined;
    let useful = false;
    for (let i = 0; i < d.count && !ended; i++) {
      if (!this.fromServer(d.address(i))) {
        stats.ignored++;
        continue;
      }
      const at = d.offset(i);
      const length = d.length(i);
      if (!hooks && joined && length > 0 && data[at] !== CONTROL_MAGIC_0 && scanAlcData(data, at, length, scan)) {
        if (this.onObjectPacket(data, at, length, true)) useful = true;
        continue;
      }
      if (copyGeneral) {
        this.onDatagram(Buffer.from(d.datagram(i)), d.port(i));
      } else {
        this.viewsKept = true;
        this.onDatagram(d.datagram(i), d.port(i));
      }
      ended = owner.ended;
      joined = owner.joined;
    }
    this.commitTouched();
    if (useful) owner.activity(Date.now());
    return !this.viewsKept;
  }

  /**
   * One delivery of channel `feed.tsi`'s multicast group. Returns how many
   * of its packets were taken (after the loss hook): what the fallback
   * watches (fallback.ts).
   */
  onGroupDatagrams(d: Datagrams, feed: GroupFeed): number {
    const owner = this.owner;
    if (owner.ended || owner.left || !owner.joined || !this.channels.has(feed.tsi)) return 0;
    const stats = this.stats;
    const before = stats.multicastPackets;
    stats.ignored += d.truncated;
    const data = d.data;
    const scan = this.scan;
    const hooks = this.o.recordEsis || owner.watchingPackets();
    let useful = false;
    for (let i = 0; i < d.count && !owner.ended; i++) {
      if (feed.source !== undefined && !this.fromGroupSource(d.address(i), feed.source)) {
        stats.multicastForeign++;
        continue;
      }
      const at = d.offset(i);
      const length = d.length(i);
      // A group carries ALC packets only (§10.10): a control message there is not the server's.
      if (length === 0 || data[at] === CONTROL_MAGIC_0) {
        stats.multicastForeign++;
        continue;
      }
      if (!hooks && scanAlcData(data, at, length, scan)) {
        if (scan.tsi !== feed.tsi) {
          stats.multicastForeign++;
          continue;
        }
        if (this.onObjectPacket(data, at, length, false)) useful = true;
        continue;
      }
      const p = decodeAlc(d.datagram(i));
      if (!p.ok) {
        stats.ignored++;
        continue;
      }
      if (p.packet.tsi !== feed.tsi) {
        stats.multicastForeign++;
        continue;
      }
      this.onAlc(p.packet, length, false);
    }
    this.commitTouched();
    if (useful) owner.activity(Date.now());
    return stats.multicastPackets - before;
  }

  /** Packets of channel `tsi` taken from the session's own transport so far (after the loss hook). */
  unicastPackets(tsi: number): number {
    return this.channels.get(tsi)?.unicastPackets ?? 0;
  }

  /** An ACK for every channel with something to report (the owner's ACK timer). */
  sendAcks(): void {
    for (const ch of this.channels.values()) this.sendAck(ch);
  }

  /** A NEED for every channel with something new to report (the owner's NEED timer). */
  sendNeeds(): void {
    for (const ch of this.channels.values()) this.sendNeed(ch);
  }

  // ---------------------------------------------------------------------

  /** The symbols handed over in this delivery, added to the decoders once. */
  private commitTouched(): void {
    if (this.touched.length === 0) return;
    const now = Date.now();
    for (const obj of this.touched) {
      obj.receiver.commitAll();
      if (obj.receiver.stats.symbolsReceived !== obj.batchMark) obj.lastUsefulAt = now;
      obj.batchMark = -1;
    }
    this.touched.length = 0;
  }

  /**
   * The fast path: the object packet scanAlcData just read (this.scan) at
   * data[at, at + length). What onAlc and the registry's route do for a
   * decoded packet, without the packet object. `unicast`: it came by the
   * session's own transport (ACKable), not by a group. True if it gave
   * a block still needed a symbol (the fetch's timeout counts that only).
   */
  private onObjectPacket(data: Uint8Array, at: number, length: number, unicast: boolean): boolean {
    const s = this.scan;
    const stats = this.stats;
    const ch = this.channels.get(s.tsi);
    if (!ch) {
      stats.ignored++;
      return false;
    }
    if (this.lossRate > 0 && this.dropped()) return false;
    if (stats.packetsReceived++ === 0) stats.firstPacketMs = performance.now();
    stats.bytesReceived += length;
    if (s.toi === 0) stats.fdtPackets++;
    if (unicast) ch.unicastPackets++;
    if (!unicast) stats.multicastPackets++;
    else if (s.sequence < 0) stats.replacements++;
    else {
      if (ch.ack) this.record(ch, s.sequence);
      if (ch.need?.record(s.sequence, s.toi, s.sbn, this.o.needEveryPackets as number)) this.sendNeed(ch);
    }
    const entry = ch.entry;
    const tap = this.o.tap;
    if (tap) {
      this.viewsKept = true;
      const at = s.payloadIdOffset + 4;
      tap.packet(this.source, s.tsi, s.toi, s.sbn, s.esi, data.subarray(at, at + s.payloadLength));
      return true;
    }
    const obj = entry.toiNumbers.get(s.toi);
    if (obj) {
      this.o.tally?.record(this.source, obj, s.sbn, s.esi, Math.floor(s.payloadLength / obj.oti.symbolSize));
      const r = obj.receiver;
      if (obj.batchMark < 0) {
        obj.batchMark = r.stats.symbolsReceived;
        this.touched.push(obj);
      }
      // Useful progress (the fetch's timeout) is a symbol taken for a block
      // still needed, not any packet of an unfinished object: symbols of
      // blocks already decoded (symbolsLate) keep coming while one block the
      // server cannot send never does.
      const before = r.stats.symbolsReceived;
      r.addSymbols(data, s.payloadIdOffset, s.sbn, s.esi, s.payloadLength);
      return r.stats.symbolsReceived !== before;
    }
    if (entry.fdtSeen || entry.ignoredToiNumbers.has(s.toi)) return false;
    // Not in an FDT yet: the general path keeps it (a view of this delivery's buffer, which is ours).
    this.viewsKept = true;
    const d = decodeAlc(data.subarray(at, at + length));
    if (d.ok) this.registry.route(entry, d.packet, Date.now());
    return false;
  }

  /** Whether a group datagram's source is the announced one (an IPv4-mapped source is the IPv4 address; RFC 5952 and other spellings agree). */
  private fromGroupSource(address: string, announced: string): boolean {
    if (address !== this.lastGroupSource || announced !== this.lastGroupAnnounced) {
      this.lastGroupSource = address;
      this.lastGroupAnnounced = announced;
      this.lastGroupSourceOk = sameAddress(address, announced);
    }
    return this.lastGroupSourceOk;
  }

  private fromServer(address: string): boolean {
    if (address !== this.lastSource) {
      this.lastSource = address;
      this.lastSourceIsServer = unmapIPv4(address) === this.serverAddress;
    }
    return this.lastSourceIsServer;
  }

  /** A datagram from the server's address: control (0x52 0x51) or ALC. */
  private onDatagram(msg: Buffer, port: number): void {
    const stats = this.stats;
    if (msg.length === 0) {
      stats.ignored++;
      return;
    }
    if (msg[0] === CONTROL_MAGIC_0) {
      if (port !== this.server.port) {
        stats.ignored++;
        return;
      }
      const d = decodeControl(msg);
      if (d.ok) this.owner.control(d.msg);
      else stats.ignored++;
      return;
    }
    const d = decodeAlc(msg);
    if (!d.ok) {
      stats.ignored++;
      return;
    }
    if (!this.owner.joined) {
      if (this.preJoin.length < PRE_JOIN_PACKETS) this.preJoin.push({ p: d.packet, length: msg.length });
      else stats.ignored++;
      return;
    }
    this.onAlc(d.packet, msg.length, true);
  }

  /** The general path: a decoded ALC packet of a joined session; `unicast` as for onObjectPacket. */
  private onAlc(p: AlcPacket, length: number, unicast: boolean): void {
    if (this.owner.ended) return;
    const stats = this.stats;
    const ch = this.channels.get(p.tsi);
    if (!ch) {
      stats.ignored++;
      return;
    }
    if (this.dropped()) return;
    if (stats.packetsReceived++ === 0) stats.firstPacketMs = performance.now();
    stats.bytesReceived += length;
    if (p.toi === 0n) stats.fdtPackets++;
    const replacement = unicast && p.sequence === undefined;
    if (unicast) ch.unicastPackets++;
    if (!unicast) stats.multicastPackets++;
    else if (replacement) stats.replacements++;
    else {
      if (ch.ack) this.record(ch, p.sequence as number);
      if (ch.need?.record(p.sequence as number, Number(p.toi), p.sbn, this.o.needEveryPackets as number)) this.sendNeed(ch);
    }
    if (this.o.recordEsis) stats.esiLog.push({ tsi: p.tsi, toi: p.toi, sbn: p.sbn, esi: p.esi, replacement });
    if (this.owner.watchingPackets()) {
      const T = p.oti?.symbolSize ?? ch.entry.tois.get(p.toi)?.oti.symbolSize;
      this.owner.packet({
        tsi: p.tsi,
        toi: p.toi,
        sbn: p.sbn,
        esi: p.esi,
        symbols: T ? Math.floor(p.payloadLength / T) : 1,
        sequence: p.sequence,
        replacement,
      });
    }
    const now = Date.now();
    if (this.registry.route(ch.entry, p, now)) this.owner.activity(now);
  }

  /** The loss hook. */
  private dropped(): boolean {
    if (this.lossRate > 0 && this.o.random() < this.lossRate) {
      this.stats.simulatedDrops++;
      return true;
    }
    return false;
  }

  private record(ch: Channel, sequence: number): void {
    const ack = ch.ack as AckReporter;
    ack.record(sequence);
    if (ack.unreported >= this.o.ackEveryPackets) this.sendAck(ch);
  }

  /** The channel's per-block needs (objects not wanted: 0) to its NEED reporter, and the report out. */
  private sendNeed(ch: Channel): void {
    const cookie = this.owner.cookie;
    if (!ch.need || !cookie) return;
    const entry = ch.entry;
    const blocks: { toi: number; sbn: number; need: number }[] = [];
    for (const [toi, obj] of entry.toiNumbers) {
      if (toi > 0xffffffff || obj.replaced || obj.withdrawn) continue;
      const done = obj.done || obj.skipped === true;
      for (let sbn = 0; sbn < obj.oti.sourceBlocks; sbn++) blocks.push({ toi, sbn, need: done ? 0 : obj.receiver.blockNeed(sbn) });
    }
    for (const f of entry.fdtInstance?.files ?? []) {
      const toi = Number(f.toi);
      if (!entry.ignoredToiNumbers.has(toi) || toi > 0xffffffff || f.oti === undefined) continue;
      for (let sbn = 0; sbn < f.oti.sourceBlocks; sbn++) blocks.push({ toi, sbn, need: 0 });
    }
    const r = ch.need.report(blocks);
    if (!r) return;
    this.stats.needsSent++;
    this.owner.send({ type: MessageType.Need, cookie, tsi: entry.tsi, rqseq: r.rqseq, loss: r.loss, entries: r.entries });
  }

  private sendAck(ch: Channel): void {
    // Without a cookie nothing can be sent: leave the window unreported (report()
    // consumes it) so its losses go out with the next ACK.
    const cookie = this.owner.cookie;
    if (!ch.ack || !cookie) return;
    const r = ch.ack.report();
    if (!r) return;
    this.stats.acksSent++;
    this.owner.send({ type: MessageType.Ack, cookie, tsi: ch.entry.tsi, windowStart: r.windowStart, windowEnd: r.windowEnd, received: r.received });
  }
}
