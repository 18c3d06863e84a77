// Where a receiver's time goes in bench:e2e, against the fountain floor
// (bytes * 8 / rate / (1 - loss)): pieces that add up to its time exactly.
//
//   queue     the bench's start of the fetches -> its own spawn call: the
//             bench spawning the receivers before it, one after the other
//   launch    its spawn call -> Node's start in it (performance.timeOrigin):
//             the bench's fork, `ip netns exec`, GNU time, the launcher's sh,
//             Node's exec; the time its summary line reached the bench, less
//             the process's age then (fetch --json summaryAtMs)
//   startup   process start -> first data packet (fetch --json startupMs)
//   headers   the ALC header of each of the K symbols it needed: what the
//             rate spends beyond the payload the floor counts
//   extra     packets it read beyond K, at the rate: by kind (fetch --json),
//             symbols of blocks it had already decoded (symbolsLate),
//             symbols beyond K + margin of a block not decoded yet, most
//             while its solve ran (symbolsSurplus), source symbols it held
//             (symbolsDuplicate), symbols its decoders' backlog or memory
//             budget refused (symbolsDropped, budgetDrops), FDT packets
//             (fdtPackets), the symbols beyond K that decoding took
//             (symbolsReceived - K) and the rest (other)
//   loss      realised loss above (or below) the nominal one, on K
//   stream    first data -> last useful packet, less what the packets it
//             read take at the rate after the loss: the stream falling short
//             of its rate (a late sender, a ring run dry, passes it waits
//             for)
//   tail      last useful packet -> file verified (fetch --json tailMs)
//   end       file verified -> summary line written: transports closed
//             (LEAVE, sockets, receive threads), then the line (fetch --json
//             endPhasesMs close + summary)
//   exit      summary line at the bench -> the process gone as the bench
//             sees it (Node's exit, the kernel freeing its memory, GNU
//             time's report, the pipes closed)
// queue and launch are 0 for a fetch that does not report summaryAtMs, end
// for one without endPhasesMs (an older build), exit when the bench did not
// see its summary line: stream then holds them, as it did.
//
// Each piece is given in seconds and as a share of the floor.

/** The fetch --json fields the breakdown reads. */
export interface FetchCounts {
  startupMs?: number;
  tailMs?: number;
  packetsReceived?: number;
  neededSymbols?: number;
  symbolsReceived?: number;
  symbolsLate?: number;
  symbolsDuplicate?: number;
  symbolsSurplus?: number;
  symbolsDropped?: number;
  budgetDrops?: number;
  fdtPackets?: number;
  summaryAtMs?: number;
  endPhasesMs?: { close: number; summary: number };
}

export interface Breakdown {
  seconds: number;
  floor_s: number;
  /** Pieces in seconds; their sum plus floor_s is `seconds`. */
  queue_s: number;
  launch_s: number;
  startup_s: number;
  headers_s: number;
  extra_s: number;
  loss_s: number;
  stream_s: number;
  tail_s: number;
  end_s: number;
  exit_s: number;
  /** The same pieces as % of floor_s. */
  pct: Record<Piece, number>;
  /** Counts behind `extra`: packets read beyond K, and of those each kind (null: the fetch does not report it). */
  packets_beyond_k: number;
  beyond_k: BeyondK;
  symbols_late: number | null;
  symbols_duplicate: number | null;
}

/** The packets a receiver read beyond K, by kind; `other` is what no counter explains (null when one is missing). */
export interface BeyondK {
  taken: number | null;
  late: number | null;
  surplus: number | null;
  duplicate: number | null;
  dropped: number | null;
  fdt: number | null;
  other: number | null;
}

/** Splits packetsReceived - K by the fetch's counters (FetchCounts). */
export function beyondK(c: FetchCounts): BeyondK {
  const k = c.neededSymbols ?? 0;
  const taken = c.symbolsReceived !== undefined ? c.symbolsReceived - k : null;
  const dropped = c.symbolsDropped !== undefined ? c.symbolsDropped + (c.budgetDrops ?? 0) : null;
  const kinds = { taken, late: c.symbolsLate ?? null, surplus: c.symbolsSurplus ?? null, duplicate: c.symbolsDuplicate ?? null, dropped, fdt: c.fdtPackets ?? null };
  const known = Object.values(kinds);
  const other = c.packetsReceived !== undefined && known.every((x) => x !== null) ? c.packetsReceived - k - known.reduce((a: number, b) => a + (b as number), 0) : null;
  return { ...kinds, other };
}

type Piece = 'queue' | 'launch' | 'startup' | 'headers' | 'extra' | 'loss' | 'stream' | 'tail' | 'end' | 'exit';

export interface BreakdownInput {
  /** The receiver's time in the bench (launch to exit). */
  seconds: number;
  /** When the bench called spawn for it, on the same clock as `seconds`. */
  spawnedAt?: number;
  /** When its summary line reached the bench, on the same clock as `seconds`. */
  summarySeen?: number;
  summary: FetchCounts;
  bytes: number;
  symbolSize: number;
  /** Bytes of a data packet the rate counts (ALC header + symbol). */
  packetBytes: number;
  rateMbit: number;
  lossPct: number;
  /** The share of its data packets the receiver's loss rule dropped (0-1), when measured. */
  realisedLoss?: number;
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const r1 = (x: number): number => Math.round(x * 10) / 10;

/** The breakdown of one receiver, or undefined when its summary lacks a count. */
export function breakdown(i: BreakdownInput): Breakdown | undefined {
  const { startupMs, tailMs, packetsReceived: packets, neededSymbols: k } = i.summary;
  if (startupMs === undefined || tailMs === undefined || packets === undefined || k === undefined) return undefined;
  const perPacket = (i.packetBytes * 8) / (i.rateMbit * 1e6);
  const nominal = i.lossPct / 100;
  const real = i.realisedLoss ?? nominal;
  const floor = (i.bytes * 8) / (i.rateMbit * 1e6) / (1 - nominal);
  const startup = startupMs / 1000;
  const tail = tailMs / 1000;
  const { summaryAtMs, endPhasesMs } = i.summary;
  const seen = i.summarySeen;
  const aged = seen !== undefined && summaryAtMs !== undefined;
  const queue = aged ? (i.spawnedAt ?? 0) : 0;
  const launch = aged ? seen - summaryAtMs / 1000 - queue : 0;
  const end = endPhasesMs ? (endPhasesMs.close + endPhasesMs.summary) / 1000 : 0;
  const exit = seen !== undefined ? i.seconds - seen : 0;
  const headers = (k * (i.packetBytes - i.symbolSize) * 8) / (i.rateMbit * 1e6) / (1 - nominal) + ((k * i.symbolSize - i.bytes) * 8) / (i.rateMbit * 1e6) / (1 - nominal);
  const loss = k * perPacket * (1 / (1 - real) - 1 / (1 - nominal));
  const extra = ((packets - k) * perPacket) / (1 - real);
  const stream = i.seconds - queue - launch - startup - tail - end - exit - (packets * perPacket) / (1 - real);
  const pct = (x: number): number => r1((x / floor) * 100);
  return {
    seconds: r3(i.seconds),
    floor_s: r3(floor),
    queue_s: r3(queue),
    launch_s: r3(launch),
    startup_s: r3(startup),
    headers_s: r3(headers),
    extra_s: r3(extra),
    loss_s: r3(loss),
    stream_s: r3(stream),
    tail_s: r3(tail),
    end_s: r3(end),
    exit_s: r3(exit),
    pct: {
      queue: pct(queue),
      launch: pct(launch),
      startup: pct(startup),
      headers: pct(headers),
      extra: pct(extra),
      loss: pct(loss),
      stream: pct(stream),
      tail: pct(tail),
      end: pct(end),
      exit: pct(exit),
    },
    packets_beyond_k: packets - k,
    beyond_k: beyondK(i.summary),
    symbols_late: i.summary.symbolsLate ?? null,
    symbols_duplicate: i.summary.symbolsDuplicate ?? null,
  };
}

/** One line per receiver: its time and each piece as % of the floor. */
export function printBreakdowns(rows: { loss_pct: number; each: (Breakdown | undefined | null)[] | null }[]): void {
  console.log('breakdown per receiver, % of the floor: queue + launch + startup + headers + extra packets + loss luck + stream short of rate + tail + end + exit = time/floor - 1 (launch, end, exit: also in ms)');
  for (const r of rows) {
    for (const [n, b] of (r.each ?? []).entries()) {
      if (!b) continue;
      const p = b.pct;
      const total = r1(((b.seconds - b.floor_s) / b.floor_s) * 100);
      console.log(
        `${String(r.loss_pct).padEnd(4)}% r${n}  ${b.seconds} s = floor ${b.floor_s} s + ${total} %: queue ${p.queue}  launch ${p.launch} (${Math.round(b.launch_s * 1000)})  startup ${p.startup}  headers ${p.headers}  extra ${p.extra} (${b.packets_beyond_k} pkts: ${kindsText(b.beyond_k)})  loss ${p.loss}  stream ${p.stream}  tail ${p.tail}  end ${p.end} (${Math.round(b.end_s * 1000)})  exit ${p.exit} (${Math.round(b.exit_s * 1000)})`,
      );
    }
  }
}

function kindsText(b: BeyondK): string {
  return Object.entries(b)
    .map(([kind, n]) => `${kind} ${n ?? 'n/a'}`)
    .join(', ');
}
