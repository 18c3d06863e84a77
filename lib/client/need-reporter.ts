/**
 * NeedReporter: one channel's NEED reports (docs/PROTOCOL.md §4.11, §7a).
 *
 * The server ends a block's pass once every member has what it needs of it
 * (lib/stream/need-table.ts), so it must hear, per block, how many symbols
 * each member still needs, as of which packet, and how many of the packets
 * in flight will reach it. The reporter keeps the second and the third:
 *
 * - the highest EXT_RQSEQ received on the channel's own transport (serial
 *   arithmetic, RFC 1982: a packet overtaken by later ones does not move
 *   it back);
 * - the loss fraction over the recent packets: between two reports, the
 *   sequence numbers the highest moved over against the packets received;
 *   summed over about the last LOSS_HORIZON sequence numbers (halved when
 *   they pass it), so a burst is forgotten within a few thousand packets.
 *
 * The needs themselves come from the registry (ObjectReceiver.blockNeed;
 * objects of the channel the fetch does not want: 0), turned into canonical
 * entries (needEntries; at most 64, the first in TOI order: a block left out
 * is one the server does not know, and gets its fixed pass). A report is
 * due every intervalMs while packets arrive (the owner's timer), once
 * `everyPackets` arrived since the last, when the packets move on to a
 * block that had none among the last RECENT_PACKETS (a block starts, so
 * the one before is through: the window moved), and when the needs changed
 * (a block decoded or reached K + 2) even if nothing arrived. Turns going
 * round the blocks of a wider window (W > 1, a few packets each) are not
 * moves: before, each one was, and a window of 3 at 400 Mbit/s brought
 * ~2 000 reports a second, most of them over the server's 1 000
 * (needTooFrequent).
 */
import { NEED_LOSS_SCALE } from '../protocol/control-header';
import type { NeedEntry } from '../protocol/messages';
import { needEntries } from '../protocol/need';

const SEQ_MOD = 2 ** 32;
const HALF = 2 ** 31;
/** Sequence numbers the loss estimate spans, about. */
export const LOSS_HORIZON = 4096;
/** A move to another block triggers a report once this many packets arrived since the last one. */
const BLOCK_CHANGE_PACKETS = 16;
/** A block with a packet among this many is one the stream is on: a move to it is a turn, not a new block. */
export const RECENT_PACKETS = 256;
/** Blocks remembered for RECENT_PACKETS (a wider window's moves all count as new blocks). */
const RECENT_BLOCKS = 64;
/** While the packets stay on one block, its stamp is moved once this many behind (not a Map update per packet). */
const RECENT_STAMP_LAG = 16;

export interface NeedReportBody {
  rqseq: number;
  loss: number;
  entries: NeedEntry[];
}

export class NeedReporter {
  /** Packets recorded since the last report. */
  unreported = 0;
  private started = false;
  /** The highest sequence number received (32-bit). */
  private highest = 0;
  /** `highest` at the last report. */
  private reportedHighest = 0;
  private spanSum = 0;
  private receivedSum = 0;
  /** The block (toi * 256 + sbn) of the last object packet. */
  private lastBlock = -1;
  /** Object packets recorded so far, and the count at each recent block's last packet (at most RECENT_BLOCKS). */
  private packets = 0;
  private readonly recent = new Map<number, number>();
  /** The entries of the last report, to tell whether the needs changed. */
  private lastKey = '';

  /** A stream packet with EXT_RQSEQ `seq` arrived; true if a report is due now. */
  record(seq: number, toi: number, sbn: number, everyPackets: number): boolean {
    if (!this.started) {
      this.started = true;
      this.highest = seq;
      this.reportedHighest = (seq - 1 + SEQ_MOD) % SEQ_MOD;
    } else {
      const ahead = (seq - this.highest + SEQ_MOD) % SEQ_MOD;
      if (ahead !== 0 && ahead < HALF) this.highest = seq;
    }
    this.unreported++;
    if (toi > 0) {
      const block = toi * 256 + sbn;
      const packets = ++this.packets;
      if (block !== this.lastBlock) {
        const moved = this.lastBlock >= 0;
        this.lastBlock = block;
        const seen = this.recent.get(block);
        this.remember(block, packets);
        if (moved && (seen === undefined || packets - seen > RECENT_PACKETS) && this.unreported >= BLOCK_CHANGE_PACKETS) return true;
      } else if (packets - (this.recent.get(block) as number) > RECENT_STAMP_LAG) {
        this.remember(block, packets);
      }
    }
    return this.unreported >= everyPackets;
  }

  /** `block` had a packet at count `packets`: most recent last (Map order); the oldest goes beyond RECENT_BLOCKS. */
  private remember(block: number, packets: number): void {
    this.recent.delete(block);
    this.recent.set(block, packets);
    if (this.recent.size > RECENT_BLOCKS) this.recent.delete(this.recent.keys().next().value as number);
  }

  /** The loss fraction the next report says (0..1). */
  get loss(): number {
    return this.spanSum > 0 ? Math.min(1, Math.max(0, 1 - this.receivedSum / this.spanSum)) : 0;
  }

  /**
   * The next report, given the channel's per-block needs; undefined when
   * nothing arrived yet, or nothing arrived and the needs are as last said.
   */
  report(blocks: readonly { toi: number; sbn: number; need: number }[]): NeedReportBody | undefined {
    if (!this.started || blocks.length === 0) return undefined;
    const entries = needEntries(blocks);
    const key = entries.map((e) => `${e.toi}/${e.firstSbn}/${e.lastSbn}/${e.need}`).join(',');
    if (this.unreported === 0 && key === this.lastKey) return undefined;
    const span = (this.highest - this.reportedHighest + SEQ_MOD) % SEQ_MOD;
    if (span < HALF) {
      this.spanSum += span;
      this.receivedSum += Math.min(span, this.unreported);
      while (this.spanSum > LOSS_HORIZON) {
        this.spanSum /= 2;
        this.receivedSum /= 2;
      }
    }
    this.reportedHighest = this.highest;
    this.unreported = 0;
    this.lastKey = key;
    return { rqseq: this.highest, loss: Math.min(NEED_LOSS_SCALE - 1, Math.round(this.loss * NEED_LOSS_SCALE)), entries };
  }
}
