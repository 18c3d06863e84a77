/**
 * Packet building for a stream: finished packets (header template + FEC
 * Payload ID + symbol) written by the block source's native batch call, with
 * no per-packet work in JavaScript.
 *
 * - RunBuilder: a batch of stream packets in one staging buffer, grouped
 *   into runs of equally long packets, so that each run goes to the
 *   replicator in one push (with one T per channel, every data packet has
 *   one length and every FDT packet another).
 * - PendingRuns: what a push did not take. The packets keep the sequence
 *   numbers they were built with, and go first next time.
 * - replacementPackets: packets without EXT_RQSEQ, one buffer per run, each
 *   packet its own view.
 *
 * A run of ESIs with a stride (an ESI layout shared by several servers)
 * takes one native call per packet: the batch call writes consecutive ESIs.
 */
import { PAYLOAD_ID_SIZE } from '../fec/encoder';
import type { BlockSymbols } from '../content/block-source';
import type { EsiRange } from '../content/symbol-allocator';
import type { HeaderTemplate } from './header-template';

/** Callback taking `count` packets of `packetSize` bytes laid end to end; returns how many it took. */
export type PushFn = (packets: Uint8Array, packetSize: number, count: number) => number;

/** `count` packets of `packetSize` bytes laid end to end. */
export interface PacketRun {
  bytes: Uint8Array;
  packetSize: number;
  count: number;
}

/** Packets staged per batch. */
export const CHUNK = 256;

const SEQ_MOD = 2 ** 32;

/** Bytes of a packet with `header` and one T-byte symbol. */
export function packetSize(header: HeaderTemplate, symbolSize: number): number {
  return header.bytes.length + PAYLOAD_ID_SIZE + symbolSize;
}

/**
 * Writes the packets of `range` (ESIs of block sbn) back to back into `out`
 * from `offset`, the i-th with sequence number firstSeq + i (mod 2^32) if
 * the header has EXT_RQSEQ. Returns the bytes written.
 */
export function writePackets(source: BlockSymbols, out: Uint8Array, offset: number, header: HeaderTemplate, firstSeq: number, sbn: number, range: EsiRange): number {
  if (range.stride === 1) {
    return source.packetsWithHeader(out, offset, header.bytes, header.seqAt, firstSeq, sbn, range.firstEsi, range.count);
  }
  let at = offset;
  for (let i = 0; i < range.count; i++) {
    at += source.packetsWithHeader(out, at, header.bytes, header.seqAt, (firstSeq + i) % SEQ_MOD, sbn, range.firstEsi + i * range.stride, 1);
  }
  return at - offset;
}

/** A batch of stream packets in one reused staging buffer, as runs of one packet size. */
export class RunBuilder {
  /** Packets a batch may hold. */
  readonly capacity: number;
  private readonly staging: Uint8Array;
  private runs: PacketRun[] = [];
  private at = 0;
  private runStart = 0;
  private runSize = 0;
  private runCount = 0;

  /** `slotSize`: the largest packet the stream builds. */
  constructor(slotSize: number, capacity = CHUNK) {
    this.capacity = capacity;
    this.staging = new Uint8Array(capacity * slotSize);
  }

  /** Starts a batch; the runs of the previous one are overwritten. */
  begin(): void {
    this.runs = [];
    this.at = this.runStart = this.runSize = this.runCount = 0;
  }

  /** Appends the packets of `range` to the batch (see writePackets). */
  write(source: BlockSymbols, header: HeaderTemplate, symbolSize: number, firstSeq: number, sbn: number, range: EsiRange): void {
    const size = packetSize(header, symbolSize);
    if (size !== this.runSize) {
      this.closeRun();
      this.runSize = size;
    }
    this.at += writePackets(source, this.staging, this.at, header, firstSeq, sbn, range);
    this.runCount += range.count;
  }

  /** The batch's runs: views of the staging buffer, valid until the next begin(). */
  end(): PacketRun[] {
    this.closeRun();
    return this.runs;
  }

  private closeRun(): void {
    if (this.runCount > 0) this.runs.push({ bytes: this.staging.subarray(this.runStart, this.at), packetSize: this.runSize, count: this.runCount });
    this.runStart = this.at;
    this.runCount = 0;
  }
}

/** Packets built but not taken by a push, oldest first. */
export class PendingRuns {
  private readonly runs: PacketRun[] = [];

  get packets(): number {
    let n = 0;
    for (const r of this.runs) n += r.count;
    return n;
  }

  /**
   * Hands pending runs to `push`, oldest first, while fewer than `max`
   * packets were taken. Returns the packets taken, and whether a push took
   * less than it was offered (then nothing more should be offered now).
   */
  offer(push: PushFn, max: number): { taken: number; blocked: boolean } {
    let taken = 0;
    while (this.runs.length > 0 && taken < max) {
      const r = this.runs[0];
      const n = push(r.bytes, r.packetSize, r.count);
      taken += n;
      if (n < r.count) {
        this.runs[0] = { bytes: r.bytes.subarray(n * r.packetSize), packetSize: r.packetSize, count: r.count - n };
        return { taken, blocked: true };
      }
      this.runs.shift();
    }
    return { taken, blocked: false };
  }

  /**
   * Keeps what a push did not take of a batch: run `i` from its packet
   * `taken` on, and every run after it. Copied, since the batch's staging
   * buffer is reused.
   */
  keep(batch: readonly PacketRun[], i: number, taken: number): void {
    const r = batch[i];
    this.runs.push({ bytes: r.bytes.slice(taken * r.packetSize), packetSize: r.packetSize, count: r.count - taken });
    for (let j = i + 1; j < batch.length; j++) this.runs.push({ ...batch[j], bytes: batch[j].bytes.slice() });
  }
}

/** The packets of `range` as replacement packets (header without EXT_RQSEQ): one buffer, a view per packet. */
export function replacementPackets(source: BlockSymbols, header: HeaderTemplate, symbolSize: number, sbn: number, range: EsiRange): Uint8Array[] {
  const size = packetSize(header, symbolSize);
  const run = new Uint8Array(range.count * size);
  writePackets(source, run, 0, header, 0, sbn, range);
  const out: Uint8Array[] = [];
  for (let i = 0; i < range.count; i++) out.push(run.subarray(i * size, (i + 1) * size));
  return out;
}
