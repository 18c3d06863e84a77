/**
 * DecoderLane: one native decoder of an object, the symbols staged for it,
 * and its solves. The native decoder solves one set of blocks at a time,
 * on one worker thread; an ObjectReceiver spreads its blocks over a few
 * lanes (block sbn on lane sbn % lanes) so that blocks that become
 * decodable together are solved in parallel.
 *
 * Symbols are staged as codec packets (the 4-byte FEC Payload ID, RFC 6330
 * §3.2, then T bytes) and handed to the decoder in one native call per
 * stage (ObjectDecoder.addPackets):
 * - `received`: offsets into a receive batch, the packets read in place
 *   (nothing copied before the decoder's own copy); the batch must stay
 *   unchanged until the stage is flushed;
 * - `copied`: packets copied into the lane's own buffer (packets kept past
 *   their batch, G > 1, and those set aside while their block was being
 *   solved).
 */
import type { ObjectDecoder } from '../fec/decoder';
import { FEC_PAYLOAD_ID_SIZE } from '../protocol/alc';

/** Counts the symbols handed to the decoder per block (BlockAccounting). */
export interface PushCounter {
  /** One symbol of `sbn` handed over; true once the block holds K. */
  pushedOne(sbn: number): boolean;
}

/** Packets (4 + T bytes) staged for one native addPackets call: where they sit in `buf`. */
interface Stage {
  buf: Uint8Array | undefined;
  offsets: Uint32Array;
  count: number;
}

function newStage(buf?: Uint8Array): Stage {
  return { buf, offsets: new Uint32Array(256), count: 0 };
}

function pushOffset(st: Stage, at: number): void {
  if (st.count === st.offsets.length) {
    const bigger = new Uint32Array(st.offsets.length * 2);
    bigger.set(st.offsets);
    st.offsets = bigger;
  }
  st.offsets[st.count++] = at;
}

/** Removes block `sbn`'s packets from a stage; returns how many. */
function unstage(st: Stage, sbn: number): number {
  const buf = st.buf;
  if (buf === undefined) return 0;
  let n = 0;
  for (let i = 0; i < st.count; i++) if (buf[st.offsets[i]] !== sbn) st.offsets[n++] = st.offsets[i];
  const removed = st.count - n;
  st.count = n;
  return removed;
}

/** The codec packet of symbol `esi` of block `sbn`: its payload ID, then the T bytes at buf[at]. */
export function codecPacket(sbn: number, esi: number, buf: Uint8Array, at: number, T: number): Uint8Array {
  const packet = new Uint8Array(FEC_PAYLOAD_ID_SIZE + T);
  packet[0] = sbn;
  packet[1] = esi >> 16;
  packet[2] = (esi >> 8) & 0xff;
  packet[3] = esi & 0xff;
  packet.set(buf.subarray(at, at + T), FEC_PAYLOAD_ID_SIZE);
  return packet;
}

export class DecoderLane {
  /** Copies of the symbols of blocks being solved, added if the attempt fails. */
  deferred: Uint8Array[] = [];
  /** Blocks to try to solve (they hold K symbols or more). */
  readonly ready = new Set<number>();
  /** Blocks being solved now (busy). */
  readonly solving = new Set<number>();
  /** A solve is running. */
  busy = false;
  /** A flush is scheduled for the end of the event-loop turn. */
  scheduled = false;
  private readonly received: Stage = newStage();
  private readonly copied: Stage;

  constructor(
    readonly decoder: ObjectDecoder,
    T: number,
  ) {
    this.copied = newStage(new Uint8Array(64 * (FEC_PAYLOAD_ID_SIZE + T)));
  }

  /** Symbols staged and not yet handed to the decoder. */
  get staged(): number {
    return this.received.count + this.copied.count;
  }

  /** Whether the in-place stage holds packets of another buffer than `buf` (flush them first). */
  holdsOtherBuffer(buf: Uint8Array): boolean {
    return this.received.buf !== buf && this.received.count > 0;
  }

  /** Stages the codec packet at buf[at] where it is. */
  stageInPlace(buf: Uint8Array, at: number): void {
    this.received.buf = buf;
    pushOffset(this.received, at);
  }

  /** Copies one codec packet (4 + T bytes) into the lane's own stage. */
  stageCopy(packet: Uint8Array): void {
    const st = this.copied;
    const size = packet.length;
    let buf = st.buf as Uint8Array;
    if ((st.count + 1) * size > buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf.subarray(0, st.count * size));
      st.buf = buf = bigger;
    }
    buf.set(packet, st.count * size);
    pushOffset(st, st.count * size);
  }

  /** Removes block `sbn`'s staged packets (an evicted block); returns how many. */
  unstage(sbn: number): number {
    return unstage(this.received, sbn) + unstage(this.copied, sbn);
  }

  /**
   * Hands every staged packet to the decoder (one native call per stage),
   * telling `blocks` each packet's block; a block it says holds K symbols
   * is ready to be solved. Returns the packets handed over.
   */
  flush(blocks: PushCounter, stats: { batches: number; rejected: number }): number {
    const n = this.flushStage(this.received, blocks, stats);
    this.received.buf = undefined;
    return n + this.flushStage(this.copied, blocks, stats);
  }

  /** Drops everything staged, deferred or ready. */
  clear(): void {
    this.received.buf = undefined;
    this.received.count = 0;
    this.copied.count = 0;
    this.deferred = [];
    this.ready.clear();
  }

  private flushStage(st: Stage, blocks: PushCounter, stats: { batches: number; rejected: number }): number {
    const n = st.count;
    if (n === 0) return 0;
    const buf = st.buf as Uint8Array;
    st.count = 0;
    stats.batches++;
    stats.rejected += this.decoder.addPackets(buf, st.offsets, n);
    for (let i = 0; i < n; i++) {
      const sbn = buf[st.offsets[i]];
      if (blocks.pushedOne(sbn)) this.ready.add(sbn);
    }
    return n;
  }
}
