/**
 * ObjectReceiver: one object being received, from any number of channels.
 *
 * Symbols arrive one ALC packet at a time; they are collected and handed to
 * the native decoder in one call per burst (everything that arrived before
 * the event loop next turns, setImmediate), never per packet. Blocks that
 * become decodable are solved on a worker thread (pushManyAsync) while the
 * socket keeps being read; one batch is in the decoder at a time, the next
 * one grows meanwhile.
 *
 * As soon as a source block decodes it is taken out of the decoder
 * (takeBlock frees the decoder's copy) and handed to the sink at its offset
 * (RFC 6330 §4.4.1.2 partitioning), so memory is bounded by the blocks in
 * flight, not by the object's size. Symbols for a finished block are
 * counted and dropped before they reach the decoder.
 */
import { BlockProgress, ObjectDecoder } from '../fec/decoder';
import type { RawCodecBinding } from '../native';
import type { AlcPacket } from '../protocol/alc';
import type { Oti as WireOti } from '../protocol/oti';
import { codecPackets } from './symbols';

export interface BlockSink {
  /** Called once per source block, in decode order. */
  writeBlock(sbn: number, offset: number, data: Uint8Array): Promise<void>;
}

export interface ObjectReceiverOptions {
  /**
   * Most symbols waiting for the decoder while it solves a block; beyond it
   * symbols are dropped (and counted): the stream will send others.
   * Default 32768.
   */
  maxPendingSymbols?: number;
  /** Solve blocks on a worker thread (default true). */
  solveAsync?: boolean;
  binding?: RawCodecBinding;
}

export interface ObjectReceiverStats {
  /** Symbols received for blocks not yet decoded (what decoding cost). */
  symbolsReceived: number;
  /** Distinct symbols the decoder held when each block decoded, summed. */
  symbolsUsed: number;
  /** Symbols that arrived for blocks already decoded. */
  symbolsLate: number;
  /** Symbols dropped because the decoder's backlog was full. */
  symbolsDropped: number;
  /** Packets whose payload is not whole symbols, or with a bad SBN/ESI. */
  rejected: number;
  /** Native calls that added symbols. */
  batches: number;
  blocksDone: number;
}

export function toDecoderOti(oti: WireOti): { F: number; T: number; Z: number; N: number; Al: number } {
  return { F: oti.transferLength, T: oti.symbolSize, Z: oti.sourceBlocks, N: oti.subBlocks, Al: oti.alignment };
}

export class ObjectReceiver {
  readonly stats: ObjectReceiverStats = {
    symbolsReceived: 0,
    symbolsUsed: 0,
    symbolsLate: 0,
    symbolsDropped: 0,
    rejected: 0,
    batches: 0,
    blocksDone: 0,
  };
  /** Settles when every block has been written to the sink (or on the first failure). */
  readonly done: Promise<void>;
  /** Sum of K over the blocks: the symbols decoding needs at least. */
  readonly neededSymbols: number;

  private readonly decoder: ObjectDecoder;
  private readonly T: number;
  private readonly Z: number;
  private readonly K: number[];
  private readonly blockDone: boolean[];
  private readonly blockReceived: number[];
  private readonly maxPending: number;
  private readonly solveAsync: boolean;
  private pending: Uint8Array[] = [];
  private pendingSbns = new Set<number>();
  private scheduled = false;
  private busy = false;
  private closed = false;
  private readonly writes: Promise<void>[] = [];
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;

  constructor(
    readonly oti: WireOti,
    private readonly sink: BlockSink,
    options: ObjectReceiverOptions = {},
  ) {
    this.decoder = options.binding ? new ObjectDecoder(toDecoderOti(oti), options.binding) : new ObjectDecoder(toDecoderOti(oti));
    this.T = oti.symbolSize;
    this.Z = this.decoder.sourceBlocks;
    this.K = [];
    for (let sbn = 0; sbn < this.Z; sbn++) this.K.push(this.decoder.layout.sourceSymbols(sbn));
    this.neededSymbols = this.K.reduce((a, b) => a + b, 0);
    this.blockDone = new Array<boolean>(this.Z).fill(false);
    this.blockReceived = new Array<number>(this.Z).fill(0);
    this.maxPending = options.maxPendingSymbols ?? 32768;
    this.solveAsync = options.solveAsync ?? true;
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A failure is reported through `done`; keep Node from calling it unhandled
    // when the owner only awaits later.
    this.done.catch(() => undefined);
  }

  get complete(): boolean {
    return this.stats.blocksDone === this.Z;
  }

  /** Symbols that count towards decoding: K for finished blocks, else min(received, K). */
  get heldSymbols(): number {
    let n = 0;
    for (let sbn = 0; sbn < this.Z; sbn++) n += this.blockDone[sbn] ? this.K[sbn] : Math.min(this.blockReceived[sbn], this.K[sbn]);
    return n;
  }

  /** Adds the symbols of one ALC packet of this object (its TOI on any channel). */
  add(packet: AlcPacket): void {
    if (this.closed) return;
    const sbn = packet.sbn;
    if (sbn >= this.Z) {
      this.stats.rejected++;
      return;
    }
    const symbols = codecPackets(packet, this.T);
    if (symbols === undefined) {
      this.stats.rejected++;
      return;
    }
    if (this.blockDone[sbn]) {
      this.stats.symbolsLate += symbols.length;
      return;
    }
    if (this.pending.length + symbols.length > this.maxPending) {
      this.stats.symbolsDropped += symbols.length;
      return;
    }
    for (const s of symbols) this.pending.push(s);
    this.pendingSbns.add(sbn);
    this.blockReceived[sbn] += symbols.length;
    this.stats.symbolsReceived += symbols.length;
    this.schedule();
  }

  /** Stops receiving and frees the decoder; `done` rejects if it had not settled. */
  close(reason: unknown = new Error('object receiver closed')): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    if (!this.busy) this.decoder.close();
    if (!this.complete) this.rejectDone(reason);
  }

  private schedule(): void {
    if (this.scheduled || this.busy) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.busy || this.closed || this.pending.length === 0) return;
    const batch = this.pending;
    const touched = this.pendingSbns;
    this.pending = [];
    this.pendingSbns = new Set();
    this.busy = true;
    this.stats.batches++;
    let rejected: number;
    try {
      const r = this.solveAsync
        ? await this.decoder.pushManyAsync(batch, { skipInvalid: true })
        : this.decoder.pushMany(batch, { skipInvalid: true });
      rejected = r.rejected;
    } catch (e) {
      this.busy = false;
      this.fail(e);
      return;
    }
    this.busy = false;
    this.stats.rejected += rejected;
    if (this.closed) {
      this.decoder.close();
      return;
    }
    try {
      this.collectBlocks(touched);
    } catch (e) {
      this.fail(e);
      return;
    }
    if (this.complete) {
      this.decoder.close();
      Promise.all(this.writes).then(() => this.resolveDone(), (e) => this.fail(e));
      return;
    }
    if (this.pending.length > 0) this.schedule();
  }

  /** Takes every newly decoded block among `touched` out of the decoder and writes it. */
  private collectBlocks(touched: Set<number>): void {
    let progress: BlockProgress[] | undefined;
    for (const sbn of touched) {
      if (this.blockDone[sbn] || !this.decoder.blockDecoded(sbn)) continue;
      progress ??= this.decoder.progress;
      this.stats.symbolsUsed += progress[sbn].received;
      const data = this.decoder.takeBlock(sbn);
      this.blockDone[sbn] = true;
      this.stats.blocksDone++;
      const w = this.sink.writeBlock(sbn, this.decoder.layout.blockOffset(sbn), data);
      w.catch((e) => this.fail(e));
      this.writes.push(w);
    }
  }

  private fail(e: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    if (!this.busy) this.decoder.close();
    this.rejectDone(e);
  }
}
