// Where a receiver's time goes in bench:e2e, against the fountain floor
// (bytes * 8 / rate / (1 - loss)): pieces that add up to its time exactly.
//
//   startup   process start -> first data packet (fetch --json startupMs)
//   headers   the ALC header of each of the K symbols it needed: what the
//             rate spends beyond the payload the floor counts
//   extra     packets it read beyond K (FDT packets, symbols of blocks it
//             had already decoded: symbolsLate, duplicates), at the rate
//   loss      realised loss above (or below) the nominal one, on K
//   stream    first data -> last useful packet, less what the packets it
//             read take at the rate after the loss: the stream falling short
//             of its rate (a late sender, a ring run dry, passes it waits
//             for); it also holds the process launch (the bench's spawn to
//             the process start, through `ip netns exec` and GNU time) and
//             exit, which no counter of the fetch sees
//   tail      last useful packet -> file verified (fetch --json tailMs)
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
}

export interface Breakdown {
  seconds: number;
  floor_s: number;
  /** Pieces in seconds; their sum plus floor_s is `seconds`. */
  startup_s: number;
  headers_s: number;
  extra_s: number;
  loss_s: number;
  stream_s: number;
  tail_s: number;
  /** The same pieces as % of floor_s. */
  pct: Record<'startup' | 'headers' | 'extra' | 'loss' | 'stream' | 'tail', number>;
  /** Counts behind `extra`: packets read beyond K, of which late and duplicate symbols; the rest is FDT and other packets. */
  packets_beyond_k: number;
  symbols_late: number | null;
  symbols_duplicate: number | null;
}

export interface BreakdownInput {
  /** The receiver's time in the bench (launch to exit). */
  seconds: number;
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
  const headers = (k * (i.packetBytes - i.symbolSize) * 8) / (i.rateMbit * 1e6) / (1 - nominal) + ((k * i.symbolSize - i.bytes) * 8) / (i.rateMbit * 1e6) / (1 - nominal);
  const loss = k * perPacket * (1 / (1 - real) - 1 / (1 - nominal));
  const extra = ((packets - k) * perPacket) / (1 - real);
  const stream = i.seconds - startup - tail - (packets * perPacket) / (1 - real);
  const pct = (x: number): number => r1((x / floor) * 100);
  return {
    seconds: r3(i.seconds),
    floor_s: r3(floor),
    startup_s: r3(startup),
    headers_s: r3(headers),
    extra_s: r3(extra),
    loss_s: r3(loss),
    stream_s: r3(stream),
    tail_s: r3(tail),
    pct: { startup: pct(startup), headers: pct(headers), extra: pct(extra), loss: pct(loss), stream: pct(stream), tail: pct(tail) },
    packets_beyond_k: packets - k,
    symbols_late: i.summary.symbolsLate ?? null,
    symbols_duplicate: i.summary.symbolsDuplicate ?? null,
  };
}

/** One line per receiver: its time and each piece as % of the floor. */
export function printBreakdowns(rows: { loss_pct: number; each: (Breakdown | undefined | null)[] | null }[]): void {
  console.log('breakdown per receiver, % of the floor: startup + headers + extra packets + loss luck + stream short of rate + tail = time/floor - 1');
  for (const r of rows) {
    for (const [n, b] of (r.each ?? []).entries()) {
      if (!b) continue;
      const p = b.pct;
      const total = r1(((b.seconds - b.floor_s) / b.floor_s) * 100);
      console.log(
        `${String(r.loss_pct).padEnd(4)}% r${n}  ${b.seconds} s = floor ${b.floor_s} s + ${total} %: startup ${p.startup}  headers ${p.headers}  extra ${p.extra} (${b.packets_beyond_k} pkts, late ${b.symbols_late ?? 'n/a'})  loss ${p.loss}  stream ${p.stream}  tail ${p.tail}`,
      );
    }
  }
}
