/**
 * How big a channel's sliding window is and how many packets a block gets
 * per pass of it: the sizes the stream schedule (schedule.ts) works with,
 * derived from the server's memory share and each block's K. No state.
 */
import { PREPARING_FACTOR } from '../content/block-cache';

/** Packets per block per pass of a sliding window beyond K, as a fraction of K. */
export const DEFAULT_PASS_OVERHEAD = 0.15;
/**
 * The server's default W: one block at a time, in order. Block b gets its
 * pass quota, ceil(K * (1 + passOverhead)) packets, before block b + 1
 * gets any, so a receiver that joins at the start decodes the blocks in
 * order, one quota apart, instead of all of them at the end of a
 * round-robin (progressive playout); later passes cover every block again.
 */
export const IN_ORDER_WINDOW = 1;
/**
 * What the server pins ahead while sliding (ChannelStream's
 * prepareAheadPackets): the blocks after the next one too, until their
 * quotas and the next one's reach this many packets. A block is prepared off
 * the JS thread while the stream is built in fills of up to a ring of
 * packets (4096 by default) at a time; a block with a quota of a few packets
 * (a small object) whose successor was pinned only when it entered the
 * window would keep the channel until that preparation lands. Blocks of
 * K >= 3 562 (quota >= 4096 at 15%) are pinned one ahead as before.
 */
export const PREPARE_AHEAD_PACKETS = 4096;

/**
 * W for a channel whose blocks hold `costs` bytes each once prepared: all of
 * them if they fit `share`, else as many of the largest as fit next to the
 * one prepared ahead, which holds twice its size while it is being prepared
 * (PREPARING_FACTOR); at least 1.
 */
export function windowFor(costs: readonly number[], share: number): number {
  let total = 0;
  let largest = 0;
  for (const c of costs) {
    total += c;
    largest = Math.max(largest, c);
  }
  if (total <= share) return costs.length;
  return Math.max(1, Math.min(costs.length - 1, Math.floor(share / largest) - PREPARING_FACTOR));
}

/** ceil(K * (1 + passOverhead)), at least 1: a block's packets per pass of a sliding window. */
export function passQuota(sourceSymbols: number, passOverhead: number): number {
  return Math.max(1, Math.ceil(sourceSymbols * (1 + passOverhead)));
}
