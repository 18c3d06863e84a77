import fc from 'fast-check';
import { AckReporter } from '../../lib/client/ack-reporter';
import { decodeControl, encodeControl } from '../../lib/protocol/control';
import { MessageType, type AckMessage } from '../../lib/protocol/messages';
import { AckTracker } from '../../lib/session/ack-tracker';
import { InvalidServerConfigError } from '../../lib/errors';
import { Rng } from '../../lib/support/rng';

const M = 2 ** 32;

function lostOf(t: AckTracker<string>, windowStart: number, windowEnd: number, received: [number, number][], sentEnd?: number): number[] {
  const v = t.onAck('c', 1, { windowStart, windowEnd, received: received.map(([start, end]) => ({ start, end })) }, sentEnd);
  if (!v.ok) throw new Error(`refused: ${v.reason}`);
  return v.lost;
}

describe('AckTracker', () => {
  test('reports the gaps of the window as lost', () => {
    const t = new AckTracker<string>();
    expect(lostOf(t, 100, 110, [[100, 103], [105, 108]])).toEqual([103, 104, 108, 109]);
  });

  test('each loss is answered once, however often it is reported', () => {
    const t = new AckTracker<string>();
    expect(lostOf(t, 0, 10, [[0, 5]])).toEqual([5, 6, 7, 8, 9]);
    expect(lostOf(t, 0, 10, [[0, 5]])).toEqual([]);
    expect(lostOf(t, 5, 15, [[12, 15]])).toEqual([10, 11]);
    expect(lostOf(t, 0, 20, [[0, 5], [12, 15]])).toEqual([15, 16, 17, 18, 19]);
    // A packet reported received before and lost now was never answered: it is answered now.
    expect(lostOf(t, 0, 20, [[1, 5], [12, 15]])).toEqual([0]);
  });

  test('streams of different clients and channels are independent', () => {
    const t = new AckTracker<string>();
    expect(t.onAck('a', 1, { windowStart: 0, windowEnd: 3, received: [] })).toEqual({ ok: true, lost: [0, 1, 2] });
    expect(t.onAck('a', 2, { windowStart: 0, windowEnd: 3, received: [] })).toEqual({ ok: true, lost: [0, 1, 2] });
    expect(t.onAck('b', 1, { windowStart: 0, windowEnd: 3, received: [] })).toEqual({ ok: true, lost: [0, 1, 2] });
    expect(t.streamCount).toBe(3);
    t.dropChannel('a', 1);
    expect(t.streamCount).toBe(2);
    t.dropClient('a');
    expect(t.streamCount).toBe(1);
  });

  test('losses below the remembered window are never answered again', () => {
    const t = new AckTracker<string>({ windowSize: 64 });
    expect(lostOf(t, 0, 10, [])).toHaveLength(10);
    // The window slides up to [1000-64, 1000); 0..9 fall below it.
    expect(lostOf(t, 990, 1000, [])).toEqual([990, 991, 992, 993, 994, 995, 996, 997, 998, 999]);
    expect(lostOf(t, 0, 1000, [])).toEqual(Array.from({ length: 54 }, (_, i) => 936 + i));
    expect(lostOf(t, 0, 1000, [])).toEqual([]);
  });

  test('at most maxLossesPerAck per ACK; the rest can be reported again', () => {
    const t = new AckTracker<string>({ maxLossesPerAck: 4 });
    expect(lostOf(t, 0, 10, [[2, 3]])).toEqual([0, 1, 3, 4]);
    expect(lostOf(t, 0, 10, [[2, 3]])).toEqual([5, 6, 7, 8]);
    expect(lostOf(t, 0, 10, [[2, 3]])).toEqual([9]);
  });

  test('losses claimed beyond what was sent are cut', () => {
    const t = new AckTracker<string>();
    expect(lostOf(t, 0, 100, [[0, 5]], 8)).toEqual([5, 6, 7]);
    expect(lostOf(t, 0, 100, [[0, 5]], 10)).toEqual([8, 9]);
  });

  test('sequence numbers wrap modulo 2^32', () => {
    const t = new AckTracker<string>();
    expect(lostOf(t, M - 4, 2, [[M - 2, M - 1], [0, 1]])).toEqual([M - 4, M - 3, M - 1, 1]);
    // Same losses reported again across the wrap: nothing new.
    expect(lostOf(t, M - 4, 4, [[M - 2, M - 1], [0, 1]])).toEqual([2, 3]);
    expect(lostOf(t, 0, 6, [[0, 2]])).toEqual([4, 5]);
  });

  test('malformed ACKs are refused and change nothing', () => {
    const t = new AckTracker<string>();
    const bad = [
      { windowStart: -1, windowEnd: 3, received: [] },
      { windowStart: 0, windowEnd: M, received: [] },
      { windowStart: 0, windowEnd: 2 ** 31, received: [] },
      { windowStart: 0, windowEnd: 1.5, received: [] },
      { windowStart: 0, windowEnd: 10, received: [{ start: 5, end: 4 }] },
      { windowStart: 0, windowEnd: 10, received: [{ start: 5, end: 11 }] },
    ];
    for (const b of bad) expect(t.onAck('c', 1, b)).toEqual({ ok: false, reason: 'malformed' });
    expect(t.streamCount).toBe(0);
    expect(lostOf(t, 0, 3, [])).toEqual([0, 1, 2]);
  });

  test('random ACK streams: every loss answered at most once, only real gaps, only inside the remembered window', () => {
    const W = 256;
    const ackArb = fc.record({
      advance: fc.nat(200),
      back: fc.nat(300),
      len: fc.integer({ min: 1, max: 300 }),
      holes: fc.array(fc.nat(299), { maxLength: 20 }),
    });
    fc.assert(
      fc.property(fc.nat(M - 1), fc.array(ackArb, { minLength: 1, maxLength: 40 }), (base, acks) => {
        const t = new AckTracker<string>({ windowSize: W, maxLossesPerAck: 1000 });
        const answered = new Set<number>();
        let head = 0; // unwrapped, relative to base
        let floor: number | undefined; // the model of the tracker's floor
        for (const a of acks) {
          head += a.advance;
          const start = Math.max(0, head - a.back);
          const end = start + a.len;
          const holes = new Set(a.holes.filter((h) => h < a.len).map((h) => start + h));
          // Received ranges: the maximal runs between holes.
          const received: { start: number; end: number }[] = [];
          let runStart: number | undefined;
          for (let s = start; s <= end; s++) {
            const isGot = s < end && !holes.has(s);
            if (isGot && runStart === undefined) runStart = s;
            if (!isGot && runStart !== undefined) {
              received.push({ start: (base + runStart) % M, end: (base + s) % M });
              runStart = undefined;
            }
          }
          const v = t.onAck('c', 7, { windowStart: (base + start) % M, windowEnd: (base + end) % M, received });
          if (!v.ok) throw new Error('refused a well-formed ACK');
          // The first ACK puts the top of the remembered span at its start; every window end pulls it up.
          floor = Math.max(floor ?? start - W, end - W);
          for (const wire of v.lost) {
            const rel = (((wire - base) % M) + M) % M;
            if (!holes.has(rel)) throw new Error(`${rel} answered but not reported lost`);
            if (rel < floor || rel >= end) throw new Error(`${rel} answered outside [${floor}, ${end})`);
            if (answered.has(rel)) throw new Error(`${rel} answered twice`);
            answered.add(rel);
          }
          // Every hole at or above the window's floor that was not answered before is answered now.
          for (const h of holes) if (h >= floor && !answered.has(h)) throw new Error(`loss ${h} never answered`);
          head = Math.max(head, end);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('configuration is checked', () => {
    expect(() => new AckTracker({ windowSize: 12 })).toThrow(InvalidServerConfigError);
    expect(() => new AckTracker({ maxLossesPerAck: 0 })).toThrow(InvalidServerConfigError);
  });

  test('an ACK overtaken by a later one (reordered) is still answered, nothing twice', () => {
    const t = new AckTracker<string>();
    // The later ACK arrives first ...
    expect(lostOf(t, 10, 20, [[10, 15], [16, 20]])).toEqual([15]);
    // ... then the earlier one, with a loss the later one does not cover.
    expect(lostOf(t, 0, 10, [[0, 5], [6, 10]])).toEqual([5]);
    // An ACK covering both again (overlapping windows): nothing new.
    expect(lostOf(t, 0, 20, [[0, 5], [6, 15], [16, 20]])).toEqual([]);
    const u = new AckTracker<string>();
    expect(lostOf(u, 30, 40, [[30, 35], [36, 40]])).toEqual([35]);
    // An ACK entirely below the first one received, within windowSize: its losses were never answered.
    expect(lostOf(u, 10, 30, [[11, 30]])).toEqual([10]);
    expect(lostOf(u, 10, 40, [[11, 35], [36, 40]])).toEqual([]);
  });

  test('a first ACK just after the 2^32 wrap: an older ACK from before the wrap still counts', () => {
    const t = new AckTracker<string>({ windowSize: 64 });
    expect(lostOf(t, 2, 6, [[2, 3], [4, 6]])).toEqual([3]);
    // 3 was answered already; M - 2 is new.
    expect(lostOf(t, M - 3, 4, [[M - 3, M - 2], [M - 1, 3]])).toEqual([M - 2]);
    // More than windowSize below the highest end seen (6): below the floor, never answered.
    expect(lostOf(t, M - 70, M - 50, [])).toEqual([M - 58, M - 57, M - 56, M - 55, M - 54, M - 53, M - 52, M - 51]);
  });

  test('more losses than maxLossesPerAck: overlapping ACKs answer the rest', () => {
    const lose = (overlap: number): number => {
      const reporter = new AckReporter({ overlap });
      const t = new AckTracker<string>();
      let answered = 0;
      reporter.record(0);
      const ack = () => {
        const r = reporter.report();
        if (r) answered += (t.onAck('c', 1, r) as { lost: number[] }).lost.length;
      };
      ack();
      reporter.record(601); // 1..600 lost in one burst
      ack();
      for (let s = 602; s < 610; s++) {
        reporter.record(s);
        ack();
      }
      return answered;
    };
    expect(lose(0)).toBe(256);
    expect(lose(2)).toBe(600);
  });

  describe('with AckReporter over a lossy, reordering reverse path', () => {
    interface Run {
      /** Packets that never arrived. */
      lost: Set<number>;
      /** Sequence number -> times the tracker answered it. */
      answered: Map<number, number>;
      /** Lost packets reported lost in at least one ACK sent / delivered. */
      reportedSent: Set<number>;
      reportedDelivered: Set<number>;
      /** Lost packets whose first report was delivered (what non-overlapping windows would answer). */
      firstDelivered: Set<number>;
      /** Every number any delivered ACK reported lost. */
      anyDelivered: Set<number>;
    }

    /**
     * Packets origin, origin + 1, ... (mod 2^32) cross a lossy forward path
     * (some swapped with their neighbour); every `every` arrivals the client
     * sends an ACK, each one dropped with probability `ackLoss` and the rest
     * delivered up to `maxDelay` ACKs late. ACKs go through the real
     * encoder and decoder. Sequence numbers in the result are offsets from origin.
     */
    function simulate(seed: number, o: { origin: number; packets: number; dataLoss: number; ackLoss: number; every: number; overlap: number; maxDelay: number }): Run {
      const rng = new Rng(seed);
      const reporter = new AckReporter({ overlap: o.overlap });
      const tracker = new AckTracker<string>({ maxLossesPerAck: 1 << 20 });
      const cookie = new Uint8Array(16).fill(1);
      const run: Run = { lost: new Set(), answered: new Map(), reportedSent: new Set(), reportedDelivered: new Set(), firstDelivered: new Set(), anyDelivered: new Set() };
      const firstReport = new Map<number, boolean>(); // lost packet -> was its first report delivered
      const inFlight: { at: number; bytes: Uint8Array }[] = [];
      const rel = (x: number) => (((x - o.origin) % M) + M) % M;
      let sent = 0;
      const deliver = (upTo: number) => {
        inFlight.sort((a, b) => a.at - b.at);
        while (inFlight.length > 0 && inFlight[0].at <= upTo) {
          const d = decodeControl((inFlight.shift() as { bytes: Uint8Array }).bytes);
          if (!d.ok || d.msg.type !== MessageType.Ack) throw new Error('ACK did not decode');
          const ack = d.msg;
          forEachLost(ack, (x) => {
            run.anyDelivered.add(x);
            if (run.lost.has(x)) run.reportedDelivered.add(x);
          });
          const v = tracker.onAck('c', ack.tsi, ack);
          if (!v.ok) throw new Error('tracker refused an ACK');
          for (const w of v.lost) run.answered.set(rel(w), (run.answered.get(rel(w)) ?? 0) + 1);
        }
      };
      const forEachLost = (ack: AckMessage, f: (x: number) => void) => {
        // Offsets from origin do not wrap: the runs stay far below 2^32 packets.
        let cursor = rel(ack.windowStart);
        for (const g of [...ack.received, { start: ack.windowEnd, end: ack.windowEnd }]) {
          for (let x = cursor; x < rel(g.start); x++) f(x);
          cursor = rel(g.end);
        }
      };
      const sendAck = () => {
        const r = reporter.report();
        if (!r) return;
        const msg: AckMessage = { type: MessageType.Ack, cookie, tsi: 9, windowStart: r.windowStart, windowEnd: r.windowEnd, received: r.received };
        const delivered = rng.unit() >= o.ackLoss;
        forEachLost(msg, (x) => {
          if (!run.lost.has(x)) return;
          run.reportedSent.add(x);
          if (!firstReport.has(x)) firstReport.set(x, delivered);
        });
        if (delivered) inFlight.push({ at: sent + rng.below(o.maxDelay + 1), bytes: encodeControl(msg) });
        deliver(sent);
        sent++;
      };
      // The forward path: which packets arrive, in which order.
      const order: number[] = [];
      for (let x = 0; x < o.packets; x++) {
        if (rng.unit() < o.dataLoss) run.lost.add(x);
        else order.push(x);
      }
      for (let i = 1; i < order.length; i++) if (rng.unit() < 0.05) [order[i - 1], order[i]] = [order[i], order[i - 1]];
      order.forEach((x, i) => {
        reporter.record((o.origin + x) % M);
        if ((i + 1) % o.every === 0) sendAck();
      });
      // The stream stops: the reporter's repeat-only ACKs, then the last deliveries.
      for (let i = 0; i <= o.overlap; i++) sendAck();
      deliver(Infinity);
      for (const [x, first] of firstReport) if (first) run.firstDelivered.add(x);
      return run;
    }

    const optionsArb = fc.record({
      origin: fc.oneof(fc.integer({ min: 0, max: M - 1 }), fc.integer({ min: M - 3000, max: M - 1 })),
      packets: fc.integer({ min: 1, max: 3000 }),
      dataLoss: fc.double({ min: 0, max: 0.5, noNaN: true }),
      ackLoss: fc.constantFrom(0, 0.3, 0.6),
      every: fc.integer({ min: 1, max: 64 }),
      overlap: fc.nat(3),
      maxDelay: fc.nat(6),
    });

    test('every lost packet that a delivered ACK reports is answered exactly once; nothing else is', () => {
      fc.assert(
        fc.property(fc.integer(), optionsArb, (seed, o) => {
          const run = simulate(seed, o);
          for (const [x, n] of run.answered) {
            if (n !== 1) throw new Error(`${x} answered ${n} times`);
            if (!run.anyDelivered.has(x)) throw new Error(`${x} answered but no delivered ACK reported it lost`);
          }
          for (const x of run.reportedDelivered) if (!run.answered.has(x)) throw new Error(`lost ${x} reported by a delivered ACK, never answered`);
          // Only overtaken packets (swapped on the forward path) are answered without being lost.
          for (const x of run.answered.keys()) if (!run.lost.has(x) && !run.anyDelivered.has(x)) throw new Error(`${x} answered`);
          // Non-overlapping windows answer only losses whose one report was delivered.
          if (o.overlap === 0) expect(run.reportedDelivered).toEqual(run.firstDelivered);
        }),
        { numRuns: 150 },
      );
    });

    test('30% of ACKs lost: overlapping windows answer what non-overlapping ones miss (fixed seed, figures)', () => {
      const figures: Record<string, number> = {};
      for (const overlap of [0, 1, 2, 3]) {
        const run = simulate(20261125, { origin: M - 20_000, packets: 100_000, dataLoss: 0.1, ackLoss: 0.3, every: 64, overlap, maxDelay: 2 });
        let answeredLost = 0;
        for (const x of run.lost) if (run.answered.get(x) === 1) answeredLost++;
        expect(answeredLost).toBe(run.reportedDelivered.size);
        expect(run.reportedSent.size).toBe(run.lost.size);
        figures[`overlap ${overlap}`] = answeredLost / run.lost.size;
        if (overlap === 0) expect(answeredLost).toBe(run.firstDelivered.size);
        // With repeats, a loss goes unanswered only if every ACK reporting it was lost: fewer than without.
        else expect(answeredLost).toBeGreaterThan(run.firstDelivered.size);
      }
      // Share of lost packets answered, for the report (not a threshold).
      console.log(`ACK loss 30%, data loss 10%: share of lost packets answered ${JSON.stringify(figures)}`);
    });
  });
});
