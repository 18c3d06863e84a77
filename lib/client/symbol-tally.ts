/**
 * SymbolTally: where a multi-server fetch's symbols came from (issue 11,
 * docs/PROTOCOL.md §10.12). For each source (a session: one server over
 * one transport) it counts the symbols of wanted objects that arrived, and
 * of those, the duplicates: symbols whose (object, SBN, ESI) had already
 * arrived by any source. Servers of one group never send the same symbol,
 * so a fetch that combines them counts 0 duplicates; servers outside a
 * group (or no-code servers) do send the same ones, and this shows it.
 *
 * Memory: the ESIs seen are kept as bitmaps of CHUNK_ESIS ESIs (512
 * bytes each), made as symbols arrive in them, kept until the fetch ends so
 * that a late duplicate still counts. A server is hostile input: ESIs
 * spread over the whole 24-bit space cost one chunk per packet at worst,
 * under half the packet's own size, never a bitmap of the whole space.
 */

/** One source's counts. */
export interface SourceTally {
  symbols: number;
  duplicates: number;
}

/** ESIs per bitmap chunk. */
export const CHUNK_ESIS = 4096;
const CHUNK_SHIFT = 12;
const ESI_END = 1 << 24;

export class SymbolTally {
  private readonly sources = new Map<number, SourceTally>();
  /** object (any key object: the registry's RegisteredObject) -> (SBN, ESI chunk) -> bitmap of the chunk's ESIs seen. */
  private readonly seen = new Map<object, Map<number, Uint8Array>>();
  private chunkCount = 0;
  private total = 0;
  private dups = 0;

  /** `count` symbols ESI esi..esi+count-1 of block `sbn` of `object` arrived from `source`. */
  record(source: number, object: object, sbn: number, esi: number, count: number): void {
    let s = this.sources.get(source);
    if (!s) this.sources.set(source, (s = { symbols: 0, duplicates: 0 }));
    let chunks = this.seen.get(object);
    if (!chunks) this.seen.set(object, (chunks = new Map()));
    const last = Math.min(esi + count, ESI_END) - 1;
    let key = -1;
    let bits: Uint8Array | undefined;
    for (let e = esi; e <= last; e++) {
      const k = sbn * (ESI_END >>> CHUNK_SHIFT) + (e >>> CHUNK_SHIFT);
      if (k !== key) {
        key = k;
        bits = chunks.get(k);
        if (!bits) {
          chunks.set(k, (bits = new Uint8Array(CHUNK_ESIS / 8)));
          this.chunkCount++;
        }
      }
      const at = (e & (CHUNK_ESIS - 1)) >>> 3;
      const bit = 1 << (e & 7);
      const b = bits as Uint8Array;
      if (b[at] & bit) {
        s.duplicates++;
        this.dups++;
      } else b[at] |= bit;
    }
    const n = last - esi + 1;
    s.symbols += n;
    this.total += n;
  }

  /** Counts of `source` (zeros if it sent nothing). */
  of(source: number): SourceTally {
    const s = this.sources.get(source);
    return s ? { ...s } : { symbols: 0, duplicates: 0 };
  }

  get symbols(): number {
    return this.total;
  }

  get duplicates(): number {
    return this.dups;
  }

  /** Bitmap chunks held (each CHUNK_ESIS / 8 bytes). */
  get chunks(): number {
    return this.chunkCount;
  }
}
