/**
 * SymbolTally: where a multi-server fetch's symbols came from (issue 11,
 * docs/PROTOCOL.md §10.12). For each source (a session: one server over
 * one transport) it counts the symbols of wanted objects that arrived, and
 * of those, the duplicates: symbols whose (object, SBN, ESI) had already
 * arrived by any source. Servers of one group never send the same symbol,
 * so a fetch that combines them counts 0 duplicates; servers outside a
 * group (or no-code servers) do send the same ones, and this shows it.
 *
 * Memory: one bit per ESI up to the highest ESI seen of each block (a
 * bitmap that doubles as it grows, at most 2 MiB per block for ESIs up to
 * 2^24), kept until the fetch ends so that a late duplicate still counts.
 */

/** One source's counts. */
export interface SourceTally {
  symbols: number;
  duplicates: number;
}

const INITIAL_BITS = 1 << 12;
const MAX_BITS = 1 << 24;

export class SymbolTally {
  private readonly sources = new Map<number, SourceTally>();
  /** object (any key object: the registry's RegisteredObject) -> SBN -> bitmap of ESIs seen. */
  private readonly seen = new Map<object, (Uint8Array | undefined)[]>();
  private total = 0;
  private dups = 0;

  /** `count` symbols ESI esi..esi+count-1 of block `sbn` of `object` arrived from `source`. */
  record(source: number, object: object, sbn: number, esi: number, count: number): void {
    let s = this.sources.get(source);
    if (!s) this.sources.set(source, (s = { symbols: 0, duplicates: 0 }));
    let blocks = this.seen.get(object);
    if (!blocks) this.seen.set(object, (blocks = []));
    let bits = blocks[sbn];
    const last = Math.min(esi + count, MAX_BITS) - 1;
    if (bits === undefined || last >= bits.length * 8) bits = blocks[sbn] = grown(bits, last + 1);
    for (let e = esi; e <= last; e++) {
      const byte = e >>> 3;
      const bit = 1 << (e & 7);
      if (bits[byte] & bit) {
        s.duplicates++;
        this.dups++;
      } else bits[byte] |= bit;
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
}

/** `bits` (or nothing) copied into a bitmap of at least `needBits` bits, doubling. */
function grown(bits: Uint8Array | undefined, needBits: number): Uint8Array {
  let size = Math.max(INITIAL_BITS, (bits?.length ?? 0) * 8);
  while (size < needBits) size *= 2;
  const out = new Uint8Array(Math.min(size, MAX_BITS) / 8);
  if (bits) out.set(bits);
  return out;
}
