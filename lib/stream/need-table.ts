/**
 * NeedTable: what the members of one channel's stream still need, block by
 * block, as their NEED reports say (docs/PROTOCOL.md §7a), turned into what
 * the schedule asks: how many more packets of block b anyone still needs
 * (schedule.ts, BlockNeeds). I/O-free and clock-free: positions in, packet
 * counts out.
 *
 * - A report from member m says: as of stream position r (the highest
 *   EXT_RQSEQ it had received), block b still needed need(m,b) symbols, and
 *   m loses a fraction loss_m of its packets. Every packet of b built after
 *   r is in flight to m (built ahead in the replicator's ring, queued, on
 *   the wire), and each arrives with probability 1 − loss_m. So m needs
 *   n(m,b) packets of b built after r, enough that even a receipt a few
 *   standard deviations below the mean covers need + a small constant:
 *   n = (N + z·sqrt(N·loss)) / (1 − loss), N = need + NEED_MARGIN_SYMBOLS,
 *   z = NEED_MARGIN_SIGMAS (n packets at loss l deliver n(1 − l) on average
 *   with σ = sqrt(n·l(1 − l)) ≈ sqrt(N·l); the constant covers RaptorQ's
 *   decoding failure at exactly K symbols, RFC 6330 Annex B: ~1 in 100 at
 *   K, ~1 in 10^6 at K + 2). A need of 0 asks for nothing.
 * - Kept as a target in the block's own count of built packets:
 *   target(m,b) = built(b, ≤ r) + n(m,b). The block is still wanted while
 *   built(b) < max over members of target(m,b): wanted(b) is the
 *   difference. So the remaining need of every member after the packets
 *   already built is remaining(m,b) = target(m,b) − built(b), and the
 *   prediction counts what is already built but not yet sent.
 * - Unknown unless every member has reported on b: a member that never
 *   reports (an older client, a relay) or that has not named b leaves
 *   wanted(b) undefined, and the schedule's fixed quota rules.
 * - Built packets are remembered per segment (position, count, block) in a
 *   ring of `ledgerSegments`; a report older than the ring counts no packet
 *   as built after it (the block goes on: the safe side). A report whose r
 *   is ahead of the last packet built is taken as of that packet. Each
 *   block keeps its own segments of the ring too, in order, with what it
 *   had built before each: built(b, > r) is a binary search in b's, so a
 *   report costs O(log) per block it names however far back r is (a
 *   scan of the ring from its newest segment back to r cost up to
 *   `ledgerSegments` steps per report: a client reporting old positions,
 *   slow or hostile, could spend ~0.25 ms of the server per report).
 * - Raised (repair candidates, takeRaised): a block a report puts above
 *   what is built, if some of its packets were built after the member
 *   became a destination (expect). A member short of a block it saw sent
 *   gets it repaired at once; the blocks sent before it joined come round
 *   in the cycle, where every member that needs them takes them too.
 * - Bounded: per member one target per block of the channel; a member's
 *   state goes when it stops being a destination (forget).
 */

/** Symbols asked beyond a member's reported need (RaptorQ decodes from K + 2 with failure ~10^-6). */
export const NEED_MARGIN_SYMBOLS = 2;
/** Standard deviations of the in-flight packets' binomial receipt that the margin covers. */
export const NEED_MARGIN_SIGMAS = 3;
/** The highest loss fraction a prediction uses (a report of more is clamped): bounds n at 2N + 3σ. */
export const NEED_MAX_LOSS = 0.5;
/** Segments of built packets remembered to date reports by. */
export const DEFAULT_LEDGER_SEGMENTS = 16384;

const SEQ_MOD = 2 ** 32;

/** One block's reported need, resolved by the stream to its schedule index. */
export interface BlockNeed {
  block: number;
  need: number;
}

export interface NeedTableCounters {
  /** Reports applied. */
  needReports: number;
  /** Reports whose sequence number was older than the member's last one: dropped. */
  needStale: number;
  /** Reports whose sequence number was ahead of the stream: taken as of its last packet. */
  needAhead: number;
  /** Reports older than the ledger: no packet counted as in flight. */
  needBeyondLedger: number;
}

/** One block's segments of the ledger, oldest first from `head`: where each starts and ends (one past), and the block's packets built before it. */
interface BlockSegments {
  start: number[];
  end: number[];
  before: number[];
  head: number;
}

/** Dropped segments a block's arrays keep before they are cut (amortised O(1) per segment). */
const COMPACT_AFTER = 1024;

interface Member {
  /** Unwrapped position of its latest report. */
  at: number;
  /** Position one past the last packet built when it became a destination: it receives what is built from here on. */
  since: number;
  /** Some report of it was applied (it holds the FDT instance: fdt-cadence.ts). */
  reported: boolean;
  /** target(m,b) per block index (undefined: not reported). */
  targets: (number | undefined)[];
}

export class NeedTable {
  readonly counters: NeedTableCounters;
  /** Changes with every report, member added or forgotten (the schedule's cache key). */
  version = 0;
  private readonly members = new Map<string, Member>();
  /** Members that have not reported yet. */
  private silent = 0;
  /** Packets of each block built so far (by schedule index). */
  private readonly builtTotal: number[] = [];
  /** The ledger's ring: the block of each segment, in the order built (the segments themselves are in byBlock). */
  private readonly segBlock: Int32Array;
  private segNext = 0;
  private segSize = 0;
  /** One past the last packet of the newest segment the ring dropped (0: none). */
  private droppedEnd = 0;
  /** The ring's segments by block (same order, same lifetime). */
  private readonly byBlock: (BlockSegments | undefined)[] = [];
  /** Unwrapped position one past the last packet built. */
  private end = 0;
  /** Blocks a report raised above what was built (schedule.ts: repair turns). */
  private raised = new Set<number>();
  /** Position one past the last packet built of each block (by schedule index). */
  private readonly lastBuiltEnd: number[] = [];

  constructor(ledgerSegments = DEFAULT_LEDGER_SEGMENTS, counters?: NeedTableCounters) {
    this.counters = counters ?? { needReports: 0, needStale: 0, needAhead: 0, needBeyondLedger: 0 };
    this.segBlock = new Int32Array(ledgerSegments);
  }

  /** Members whose reports count (a destination of the stream). */
  get memberCount(): number {
    return this.members.size;
  }

  /** There is a member and every member has reported (BlockNeeds). */
  get everyoneReported(): boolean {
    return this.members.size > 0 && this.silent === 0;
  }

  /** `count` packets of `block` were built from position `position` on (FDT packets too, as block -1: they move `end`). */
  built(block: number, position: number, count: number): void {
    this.end = Math.max(this.end, position + count);
    if (block < 0 || count <= 0) return;
    const before = this.builtTotal[block] ?? 0;
    this.builtTotal[block] = before + count;
    this.lastBuiltEnd[block] = position + count;
    const i = this.segNext;
    // A full ring overwrites its oldest segment, which is the oldest of its block's.
    if (this.segSize === this.segBlock.length) this.dropOldest(this.segBlock[i]);
    const own = (this.byBlock[block] ??= { start: [], end: [], before: [], head: 0 });
    own.start.push(position);
    own.end.push(position + count);
    own.before.push(before);
    this.segBlock[i] = block;
    this.segNext = (i + 1) % this.segBlock.length;
    this.segSize = Math.min(this.segSize + 1, this.segBlock.length);
  }

  /** Packets of `block` built so far. */
  builtOf(block: number): number {
    return this.builtTotal[block] ?? 0;
  }

  /** `member` is a destination now: until it reports, every block is unknown. */
  expect(member: string): void {
    if (this.members.has(member)) return;
    this.members.set(member, { at: -1, since: this.end, reported: false, targets: [] });
    this.silent++;
    this.version++;
  }

  /** `member` is no longer a destination: its reports no longer count. */
  forget(member: string): void {
    const m = this.members.get(member);
    if (m === undefined) return;
    if (!m.reported) this.silent--;
    this.members.delete(member);
    this.version++;
  }

  /**
   * A report of `member` (not a destination: ignored, false): as of EXT_RQSEQ
   * `rqseq`, loss fraction `loss`, the needs of `blocks`. False if dropped (stale).
   */
  report(member: string, rqseq: number, loss: number, blocks: readonly BlockNeed[]): boolean {
    const m = this.members.get(member);
    if (m === undefined) return false;
    const at = this.unwrap(rqseq);
    if (at < m.at) {
      this.counters.needStale++;
      return false;
    }
    if (!m.reported) this.silent--;
    m.reported = true;
    m.at = at;
    const known = this.datable(at);
    if (!known) this.counters.needBeyondLedger++;
    const l = Math.min(Math.max(loss, 0), NEED_MAX_LOSS);
    for (const { block, need } of blocks) {
      const n = need <= 0 ? 0 : packetsFor(need, l);
      const target = this.builtOf(block) - (known ? this.builtAfter(block, at) : 0) + n;
      m.targets[block] = target;
      // A repair only for a block the member saw sent since it joined: one
      // whose packets all went before is the cycle's to bring round (a
      // newcomer's whole backlog repaired at once would go first and hold
      // back every member already there).
      if (target > this.builtOf(block) && (this.lastBuiltEnd[block] ?? 0) > m.since) this.raised.add(block);
    }
    this.counters.needReports++;
    this.version++;
    return true;
  }

  /**
   * Packets of `block` someone still needs: max over members of target −
   * built, at least 0; undefined if there is no member or one has not
   * reported on it.
   */
  wanted(block: number): number | undefined {
    if (this.members.size === 0) return undefined;
    let most = -Infinity;
    for (const m of this.members.values()) {
      const t = m.targets[block];
      if (t === undefined) return undefined;
      if (t > most) most = t;
    }
    return Math.max(0, Math.ceil(most - this.builtOf(block)));
  }

  /** The blocks reports raised above their built count since the last call. */
  takeRaised(): number[] {
    if (this.raised.size === 0) return [];
    const out = Array.from(this.raised);
    this.raised = new Set();
    return out;
  }

  /** The unwrapped position of the packet with EXT_RQSEQ `rqseq`: the latest one at or before the last packet built. */
  private unwrap(rqseq: number): number {
    const last = this.end - 1;
    const back = (((last - rqseq) % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
    if (back >= SEQ_MOD / 2) {
      this.counters.needAhead++;
      return last;
    }
    return last - back;
  }

  /**
   * Whether the ledger knows what was built after position `at`: no segment
   * it dropped had a packet after it. Otherwise (older than the ledger) what
   * it would count as in flight is a lower bound, and a report counts none.
   */
  private datable(at: number): boolean {
    return this.droppedEnd <= at + 1;
  }

  /** Packets of `block` built after position `at` (at positions at + 1 on), from its segments: a binary search. */
  private builtAfter(block: number, at: number): number {
    const own = this.byBlock[block];
    if (own === undefined) return 0;
    const { start, end, before } = own;
    // The first segment with a packet after `at` (ends are ascending).
    let lo = own.head;
    let hi = end.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (end[mid] > at + 1) hi = mid;
      else lo = mid + 1;
    }
    if (lo === end.length) return 0;
    return this.builtOf(block) - before[lo] - Math.max(0, at + 1 - start[lo]);
  }

  /** The ring dropped `block`'s oldest segment: its arrays let it go (cut once enough have gone). */
  private dropOldest(block: number): void {
    const own = this.byBlock[block] as BlockSegments;
    this.droppedEnd = own.end[own.head];
    own.head++;
    if (own.head < COMPACT_AFTER || own.head * 2 < own.start.length) return;
    own.start.splice(0, own.head);
    own.end.splice(0, own.head);
    own.before.splice(0, own.head);
    own.head = 0;
  }
}

/** Packets to build so that a member at loss `l` receives `need` symbols and the margin (see above). */
export function packetsFor(need: number, l: number): number {
  const N = need + NEED_MARGIN_SYMBOLS;
  return (N + NEED_MARGIN_SIGMAS * Math.sqrt(N * l)) / (1 - l);
}
