/**
 * Encoding Symbol ID allocation (RFC 6330 §3.2: ESI, 24 bits per source block).
 *
 * One allocator per object, shared by every channel that carries the object:
 * each source block has ONE server-wide counter, and a channel takes its next
 * ESIs from it. So two channels never send the same symbol of a block (a
 * client on both gets no duplicates), and a fresh symbol sent to replace a
 * lost packet has an ESI that no stream used before.
 *
 * Coded mode (default): the first pass over a block sends its K source
 * symbols (ESI 0..K-1), then repair symbols (ESI >= K, RFC 6330 §5.3.2).
 * When the repair ESIs run out (the top of the 24-bit space) the counter
 * restarts at the first repair ESI, not at 0: source symbols went out once,
 * and repair symbols are all equally useful. With the default layout ESIs
 * repeat only after 2^24 - K symbols of one block (about 21 GB of one block
 * at T = 1280).
 *
 * ESI layout (EsiLayout), so that several servers can hand out disjoint
 * symbols of the same object to a client that combines them:
 * - `sendsSourceSymbols` (default true): whether this allocator starts with
 *   ESI 0..K-1. Exactly one of the servers (or none, if repair symbols are
 *   enough) should be configured to send them.
 * - repair ESIs are either `base + j * stride` (j >= 0; default base 0,
 *   stride 1), or the ESIs of explicit `ranges` [first, end), in order —
 *   in both cases only those >= K (the smaller ones are source symbols).
 *   Allocators with one stride and different bases (0 <= base < stride)
 *   never hand out the same repair ESI; nor do allocators with disjoint
 *   ranges.
 * - Running out for stride s > 1: a block then has about (2^24 - K) / s
 *   repair ESIs in this allocator's class, e.g. 4.2 million at s = 4 (about
 *   5.4 GB of one block at T = 1280). Past the last one the allocator wraps
 *   to its first repair ESI (wraps() counts it) and hands out the ESIs of
 *   its own class again, never another class's: a client combining servers
 *   may then get repeats from this server, never a symbol another server
 *   sent. With ranges, the same holds within the ranges.
 * - `repairStart` (default 0), with any of the above: each block's repair
 *   counter starts at the (repairStart mod n)-th of its n repair ESIs
 *   instead of the first (after the source symbols, if it sends them), and
 *   wraps to the first after the last as always; only the starting point
 *   moves, so the ESIs stay in this allocator's class. A server that draws
 *   it at random on each start does not repeat, after a restart, the
 *   repair ESIs it sent before for the same object (a client still holding
 *   them would get nothing new).
 * The default layout (source symbols, base 0, stride 1, repairStart 0) is
 * exactly the counter described above.
 *
 * No-code mode: the counter cycles over 0..K-1 (a plain carousel of the
 * source symbols, no repair symbol is ever produced); only the default
 * layout applies.
 *
 * A range handed out never crosses a wrap point nor the end of a layout
 * range, so it is always an arithmetic run of ESIs (firstEsi, count,
 * stride): with stride 1, one batch call to the encoder.
 */
import { MAX_ESI } from '../fec/encoder';
import { MAX_SOURCE_BLOCKS } from '../protocol/oti';
import { ServerError } from '../errors';
import { BlockSymbols, sealedBlocks } from './block-source';

export type AllocationMode = 'coded' | 'carousel';

/** ESIs firstEsi, firstEsi + stride, …: `count` of them. */
export interface EsiRange {
  firstEsi: number;
  count: number;
  /** 1 unless the allocator's layout has a stride. */
  stride: number;
}

/** ESIs first..end-1. */
export interface EsiSpan {
  first: number;
  /** Exclusive. */
  end: number;
}

/** Which ESIs an allocator hands out (see the file comment). */
export interface EsiLayout {
  /** Whether the allocator sends ESI 0..K-1 before repair symbols. Default true. */
  sendsSourceSymbols?: boolean;
  /** Repair ESIs are base + j * stride (those >= K). 0 <= base < stride. Default 0. */
  base?: number;
  /** Default 1. */
  stride?: number;
  /** Instead of base and stride: repair ESIs from these spans, sorted, disjoint (those >= K). */
  ranges?: readonly EsiSpan[];
  /** Each block's repair counter starts at its (repairStart mod n)-th repair ESI of n. Default 0. Ignored in no-code mode. */
  repairStart?: number;
}

/** An ESI layout that cannot be used (bad numbers, or no repair ESI left for a block). */
export class EsiLayoutError extends ServerError {
  constructor(message: string) {
    super('ERR_ESI_LAYOUT', message);
  }
}

/** ESIs first, first + stride, … below end. */
interface Progression {
  first: number;
  end: number;
  stride: number;
}

interface BlockCounter {
  K: number;
  /** The ESIs of one pass, in order; the last one ends at a wrap point. */
  progressions: Progression[];
  /** Where the counter goes after the last progression: the first repair ESI (coded) or 0 (carousel). */
  restartAt: number;
  restartEsi: number;
  at: number;
  next: number;
  wraps: number;
  /** Where the counter goes when the source symbols are done, if not to the first repair ESI (repairStart). */
  afterSource?: { at: number; next: number };
}

const ESI_END = MAX_ESI + 1;

export class SymbolAllocator {
  readonly mode: AllocationMode;
  private readonly blocks: (BlockCounter | undefined)[] = [];
  private readonly repair: Progression[];
  private readonly sendsSource: boolean;
  private readonly repairStart: number;

  /**
   * `sourceSymbols[sbn]` = K of block sbn, for up to 256 blocks (RFC 6330
   * §3.3.2: SBN is 8 bits). May be empty (a live source before its first
   * block is sealed): addBlock adds blocks later.
   */
  constructor(sourceSymbols: readonly number[], mode: AllocationMode = 'coded', layout: EsiLayout = {}) {
    if (sourceSymbols.length > MAX_SOURCE_BLOCKS) throw new RangeError('1..256 source blocks');
    this.mode = mode;
    this.sendsSource = layout.sendsSourceSymbols ?? true;
    this.repair = repairProgressions(layout);
    this.repairStart = layout.repairStart ?? 0;
    if (!Number.isSafeInteger(this.repairStart) || this.repairStart < 0) throw new EsiLayoutError('repairStart must be a safe integer >= 0');
    if (mode === 'carousel' && !isDefaultLayout(layout)) {
      throw new EsiLayoutError('no-code mode sends the source symbols only: it takes no ESI layout');
    }
    sourceSymbols.forEach((k, sbn) => this.addBlock(sbn, k));
  }

  /** For an ObjectEncoder (or any BlockSymbols): K of each block sealed now. */
  static forEncoder(encoder: Pick<BlockSymbols, 'sourceBlocks' | 'sourceSymbols' | 'sealing'>, mode: AllocationMode = 'coded', layout: EsiLayout = {}): SymbolAllocator {
    const a = new SymbolAllocator([], mode, layout);
    for (const sbn of sealedBlocks(encoder)) a.addBlock(sbn, encoder.sourceSymbols(sbn));
    return a;
  }

  /**
   * Adds block sbn with K source symbols (a block sealed after the allocator
   * was made). Adding a block again with the same K does nothing: every
   * channel that carries the object may announce it.
   */
  addBlock(sbn: number, K: number): void {
    if (!Number.isInteger(sbn) || sbn < 0 || sbn >= MAX_SOURCE_BLOCKS) throw new RangeError('sbn must be 0..255');
    if (!Number.isInteger(K) || K < 1 || K > MAX_ESI) throw new RangeError('K must be 1..2^24-1');
    const known = this.blocks[sbn];
    if (known !== undefined) {
      if (known.K !== K) throw new RangeError(`block ${sbn} already has K = ${known.K}`);
      return;
    }
    this.blocks[sbn] = this.counterFor(sbn, K);
  }

  /** One past the highest SBN known. */
  get sourceBlocks(): number {
    return this.blocks.length;
  }

  sourceSymbols(sbn: number): number {
    return this.block(sbn).K;
  }

  /** The ESI the next take(sbn) starts at. */
  peek(sbn: number): number {
    return this.block(sbn).next;
  }

  wraps(sbn: number): number {
    return this.block(sbn).wraps;
  }

  /** Takes up to `max` (>= 1) ESIs of block sbn, a run of one stride; returns at least one. */
  take(sbn: number, max: number): EsiRange {
    const b = this.blocks[sbn];
    if (b === undefined) throw new RangeError(`sbn ${sbn} out of range`);
    const p = b.progressions[b.at];
    const first = b.next;
    const left = Math.ceil((p.end - first) / p.stride);
    const count = Math.max(1, Math.min(max, left));
    if (count < left) {
      b.next = first + count * p.stride;
    } else if (b.afterSource) {
      b.at = b.afterSource.at;
      b.next = b.afterSource.next;
      b.afterSource = undefined;
    } else if (b.at + 1 < b.progressions.length) {
      b.at++;
      b.next = b.progressions[b.at].first;
    } else {
      b.at = b.restartAt;
      b.next = b.restartEsi;
      b.wraps++;
    }
    return { firstEsi: first, count, stride: p.stride };
  }

  /**
   * The ESIs to send in place of `lost` ESIs of block sbn. Coded: as many
   * fresh ESIs, taken like any others (so no stream sent them before, and
   * any repair symbol helps a receiver as much as the lost one, RFC 6330
   * §5.3.2). No-code: the lost ESIs themselves, the only symbols that can
   * stand in for them in a carousel.
   */
  replacements(sbn: number, lost: readonly number[]): EsiRange[] {
    if (this.mode === 'carousel') return lost.map((esi) => ({ firstEsi: esi, count: 1, stride: 1 }));
    const out: EsiRange[] = [];
    let need = lost.length;
    while (need > 0) {
      const r = this.take(sbn, need);
      out.push(r);
      need -= r.count;
    }
    return out;
  }

  private block(sbn: number): BlockCounter {
    const b = this.blocks[sbn];
    if (b === undefined) throw new RangeError(`sbn ${sbn} out of range`);
    return b;
  }

  private counterFor(sbn: number, K: number): BlockCounter {
    if (this.mode === 'carousel') {
      return { K, progressions: [{ first: 0, end: K, stride: 1 }], restartAt: 0, restartEsi: 0, at: 0, next: 0, wraps: 0 };
    }
    const repair = clipBelow(this.repair, K);
    if (repair.length === 0) throw new EsiLayoutError(`the ESI layout leaves block ${sbn} (K = ${K}) no repair ESI`);
    const progressions = repair.slice();
    let restartAt = 0;
    const start = repairPosition(repair, this.repairStart);
    if (this.sendsSource) {
      if (start.at === 0 && start.next === repair[0].first && repair[0].stride === 1 && repair[0].first === K) {
        // Source and repair ESIs are one run (the default layout): one
        // progression, so a take crosses from source to repair symbols.
        progressions[0] = { first: 0, end: repair[0].end, stride: 1 };
      } else {
        progressions.unshift({ first: 0, end: K, stride: 1 });
        restartAt = 1;
      }
    }
    const restartEsi = repair[0].first;
    const counter: BlockCounter = { K, progressions, restartAt, restartEsi, at: 0, next: progressions[0].first, wraps: 0 };
    const at = restartAt + start.at;
    if (at === restartAt && start.next === restartEsi) return counter;
    if (this.sendsSource) counter.afterSource = { at, next: start.next };
    else {
      counter.at = at;
      counter.next = start.next;
    }
    return counter;
  }
}

/** The (j mod n)-th of the n ESIs of `repair`: its progression and the ESI. */
function repairPosition(repair: readonly Progression[], j: number): { at: number; next: number } {
  const counts = repair.map((p) => Math.ceil((p.end - p.first) / p.stride));
  let k = j % counts.reduce((a, b) => a + b, 0);
  for (let i = 0; i < repair.length; i++) {
    if (k < counts[i]) return { at: i, next: repair[i].first + k * repair[i].stride };
    k -= counts[i];
  }
  return { at: 0, next: repair[0].first };
}

/** The layout without repairStart, which no-code mode ignores (it has no repair symbols). */
function isDefaultLayout(layout: EsiLayout): boolean {
  return (layout.sendsSourceSymbols ?? true) && (layout.base ?? 0) === 0 && (layout.stride ?? 1) === 1 && layout.ranges === undefined;
}

/** The layout's repair ESIs, before removing those below K. */
function repairProgressions(layout: EsiLayout): Progression[] {
  if (layout.ranges !== undefined) {
    if (layout.base !== undefined || layout.stride !== undefined) throw new EsiLayoutError('an ESI layout has ranges or a base and stride, not both');
    if (layout.ranges.length === 0) throw new EsiLayoutError('an ESI layout needs at least one range');
    let previousEnd = 0;
    return layout.ranges.map(({ first, end }) => {
      if (!Number.isInteger(first) || !Number.isInteger(end) || first < previousEnd || end <= first || end > ESI_END) {
        throw new EsiLayoutError('ESI ranges must be sorted, disjoint, non-empty and within 0..2^24');
      }
      previousEnd = end;
      return { first, end, stride: 1 };
    });
  }
  const stride = layout.stride ?? 1;
  const base = layout.base ?? 0;
  if (!Number.isInteger(stride) || stride < 1 || stride > MAX_ESI) throw new EsiLayoutError('the ESI stride must be an integer in 1..2^24-1');
  if (!Number.isInteger(base) || base < 0 || base >= stride) throw new EsiLayoutError('the ESI base must be an integer in 0..stride-1');
  return [{ first: base, end: ESI_END, stride }];
}

/** The progressions' ESIs >= K (repair ESIs of a block with K source symbols, RFC 6330 §5.3.2). */
function clipBelow(progressions: readonly Progression[], K: number): Progression[] {
  const out: Progression[] = [];
  for (const p of progressions) {
    const first = p.first >= K ? p.first : p.first + Math.ceil((K - p.first) / p.stride) * p.stride;
    if (first < p.end) out.push({ first, end: p.end, stride: p.stride });
  }
  return out;
}
