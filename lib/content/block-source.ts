/**
 * BlockSource: where a channel's source blocks come from. RFC 6330 §4.4.1
 * partitions an object into source blocks (SBN 0..Z-1) of K source symbols
 * each; a stream sends encoding symbols of one block at a time, and a block's
 * repair symbols depend on all K of its source symbols (§5.3.3.4), so a block
 * can be sent only once its source symbols are final: once it is *sealed*.
 *
 * One interface for every kind of content, so that the stream (ChannelStream)
 * and the block cache (BlockCache) never depend on where bytes come from:
 * - a file (ObjectEncoder, as the catalogue opens it): all Z blocks exist and
 *   are sealed from the start, and the source has ended. ObjectEncoder
 *   satisfies BlockSource as it is, with no `sealing` (see sealingOf);
 * - live ingest: blocks are appended as input arrives and sealed when full
 *   (or when the input ends); the source ends with the input;
 * - a relay: blocks are sealed as its upstream decoder completes them, in
 *   any SBN order.
 *
 * Each consumer reads only its part: the stream reads BlockSymbols (packets
 * of sealed blocks, and the announcements of newly sealed ones), the block
 * cache drives BlockPreparation (prepare, release, memory).
 */

/** Announcements of a source whose blocks appear over time (live ingest, relay). */
export interface BlockSealing {
  /** Whether block sbn is final (K and its bytes will not change): only then may it be prepared and sent. */
  isSealed(sbn: number): boolean;
  /** Whether no block will be added or sealed any more. */
  readonly ended: boolean;
  /**
   * Calls `listener` once for each block sealed from now on (in the order
   * they are sealed, not necessarily SBN order). Returns a function that
   * stops the calls.
   */
  onSealed(listener: (sbn: number) => void): () => void;
}

/** What a stream reads from a source: the encoding packets of its known blocks. */
export interface BlockSymbols {
  /** T, bytes per symbol (RFC 6330 §3.3.2). */
  readonly symbolSize: number;
  /** Blocks known so far (SBN 0..sourceBlocks-1): Z for a file; for a live source, grows. */
  readonly sourceBlocks: number;
  /** K of block sbn. */
  sourceSymbols(sbn: number): number;
  /**
   * `count` finished packets with consecutive ESIs, back to back in `out`
   * from `offset`: `header` (with the 32-bit sequence number firstSeq + i
   * written at `seqAt`, unless -1), FEC Payload ID, symbol. Returns the
   * bytes written.
   */
  packetsWithHeader(out: Uint8Array, offset: number, header: Uint8Array, seqAt: number, firstSeq: number, sbn: number, firstEsi: number, count: number): number;
  /** Absent: every known block is sealed and the source has ended (a file). */
  readonly sealing?: BlockSealing;
}

/** What the block cache drives: preparing a block (RFC 6330 §5.3.3.4) and freeing it. */
export interface BlockPreparation {
  prepareBlockAsync(sbn: number): Promise<void>;
  releaseBlock(sbn: number): void;
  /** Bytes block sbn holds once prepared (source + intermediate symbols). */
  blockMemory(sbn: number): number;
}

/** A source of blocks: what files, live ingest and relays each implement. */
export interface BlockSource extends BlockSymbols, BlockPreparation {}

const NEVER = (): void => undefined;

/**
 * The sealing of `source`: its own, or a file's (every known block sealed,
 * ended, nothing ever announced).
 */
export function sealingOf(source: Pick<BlockSymbols, 'sourceBlocks' | 'sealing'>): BlockSealing {
  return (
    source.sealing ?? {
      isSealed: (sbn: number) => Number.isInteger(sbn) && sbn >= 0 && sbn < source.sourceBlocks,
      ended: true,
      onSealed: () => NEVER,
    }
  );
}

/** The SBNs of `source` sealed now, in SBN order. */
export function sealedBlocks(source: Pick<BlockSymbols, 'sourceBlocks' | 'sealing'>): number[] {
  const sealing = sealingOf(source);
  const out: number[] = [];
  for (let sbn = 0; sbn < source.sourceBlocks; sbn++) if (sealing.isSealed(sbn)) out.push(sbn);
  return out;
}
