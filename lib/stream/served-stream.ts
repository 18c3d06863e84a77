/**
 * ServedStream: what the server asks of a channel's stream (ChannelStream
 * satisfies it). A channel may instead be given a stream its caller makes
 * (ChannelConfig.stream, lib/server/config.ts): a relay in forward mode
 * passes on its upstream's packets as they arrive (lib/relay/forward-stream.ts)
 * and encodes nothing.
 */
import type { FdtChannel } from '../protocol/fdt';
import type { PushFn } from './packet-builder';
import type { NeedReport, NeedVerdict, StreamCounters } from './channel-stream';

export interface ServedStream {
  /** The channel id: LCT TSI. */
  readonly tsi: number;
  /** The largest packet: the replicator's slot size. */
  readonly slotSize: number;
  readonly counters: StreamCounters;
  /** EXT_RQSEQ of the next packet built. */
  readonly nextSequence: number;
  /** Packets built but not yet taken by the replicator. */
  readonly pendingPackets: number;
  /** Position of the next packet built, not wrapped. */
  readonly unwrappedPosition: number;
  /** W, blocks sent at a time (0: the stream has no window of its own). */
  readonly windowBlocks: number;
  readonly sliding: boolean;
  start(): void;
  close(): void;
  /** Hands up to `max` packets to `push`; returns how many it took. */
  fill(max: number, push: PushFn): number;
  /** Replacement packets for lost stream packets (docs/PROTOCOL.md §10.5); may be none. */
  freshPackets(lost: readonly number[]): Uint8Array[];
  /**
   * Passes by need (docs/PROTOCOL.md §7a), for a stream that keeps them: a
   * destination added (`expectNeed`) or removed (`forgetNeed`), by peer key,
   * and its NEED reports. A stream without them ignores NEED: fixed passes.
   */
  expectNeed?(member: string): void;
  forgetNeed?(member: string): void;
  reportNeed?(member: string, report: NeedReport): NeedVerdict;
}

/** What a caller-made stream is given by the server that sends it. */
export interface ServedStreamContext {
  /** The channel's TSI. */
  tsi: number;
  /** The server's channels, as every FDT instance lists them (rq:Channel). */
  channels: readonly FdtChannel[];
  /** Asks the server to top up the channel's ring now (e.g. packets arrived); a no-op before listen and after close. */
  refill: () => void;
}

export type ServedStreamFactory = (ctx: ServedStreamContext) => ServedStream;
