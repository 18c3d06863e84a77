/**
 * ACK mode when ACKs get lost, end to end over loopback: RqcastServer and
 * RqcastClient as they are, with a UDP relay between them that drops
 * stream packets on the way to the client and ACKs on the way to the
 * server. The relay decodes what it forwards, so the test knows which
 * packets were lost, which ACKs reported them and which ACKs arrived, and
 * compares that with what the server answered (docs/PROTOCOL.md §7).
 */
import * as dgram from 'dgram';
import { promises as fs } from 'fs';
import * as path from 'path';
import { DEFAULT_ACK_OVERLAP } from '../../lib/client/ack-reporter';
import { RqcastClient } from '../../lib/client/client';
import { decodeAlc } from '../../lib/protocol/alc';
import { decodeControl } from '../../lib/protocol/control';
import { MessageType, type AckMessage } from '../../lib/protocol/messages';
import { RqcastServer } from '../../lib/server/server';
import { Rng } from '../../lib/support/rng';
import { RandomFiles } from '../support/random-files';

const M = 2 ** 32;

interface SentAck {
  lost: number[];
  delivered: boolean;
}

/**
 * Client <-> relay (listen socket, which the client takes for the server's
 * control port) <-> relay (upstream socket, which the server takes for the
 * client) <-> server. Stream packets (with EXT_RQSEQ) are dropped with
 * probability dataLoss, ACKs with probability ackLoss; the rest, and the
 * replacements, pass.
 */
class LossyRelay {
  readonly dropped = new Set<number>();
  readonly acks: SentAck[] = [];
  acksForwarded = 0;
  replacements = 0;
  private readonly listen = dgram.createSocket('udp4');
  private readonly upstream = dgram.createSocket('udp4');
  private client?: { address: string; port: number };

  constructor(
    private readonly serverPort: number,
    private readonly rng: Rng,
    private readonly dataLoss: number,
    private readonly ackLoss: number,
  ) {
    this.listen.on('message', (msg, from) => {
      this.client = { address: from.address, port: from.port };
      const d = decodeControl(msg);
      if (d.ok && d.msg.type === MessageType.Ack) {
        const delivered = this.rng.unit() >= this.ackLoss;
        this.acks.push({ lost: lostOf(d.msg), delivered });
        if (!delivered) return;
        this.acksForwarded++;
      }
      this.upstream.send(msg, this.serverPort, '127.0.0.1');
    });
    this.upstream.on('message', (msg, from) => {
      if (!this.client) return;
      if (from.port !== this.serverPort) {
        const d = decodeAlc(msg);
        if (d.ok && d.packet.sequence === undefined) this.replacements++;
        if (d.ok && d.packet.sequence !== undefined && this.rng.unit() < this.dataLoss) {
          this.dropped.add(d.packet.sequence);
          return;
        }
      }
      this.listen.send(msg, this.client.port, this.client.address);
    });
  }

  async start(): Promise<number> {
    await Promise.all([this.listen, this.upstream].map((s) => new Promise<void>((ok) => s.bind(0, '127.0.0.1', ok))));
    // Room for bursts while this process is busy (the stream is 30 Mbit/s).
    for (const s of [this.listen, this.upstream]) s.setRecvBufferSize(8 << 20);
    return this.listen.address().port;
  }

  close(): void {
    this.listen.close();
    this.upstream.close();
  }
}

/** The sequence numbers an ACK reports lost. */
function lostOf(ack: AckMessage): number[] {
  const out: number[] = [];
  let cursor = ack.windowStart;
  for (const g of [...ack.received, { start: ack.windowEnd, end: ack.windowEnd }]) {
    for (let x = cursor; x !== g.start; x = (x + 1) % M) out.push(x);
    cursor = g.end;
  }
  return out;
}

let src: RandomFiles;
beforeAll(async () => {
  src = await RandomFiles.create('rqcast-ackloss-', { 'obj.bin': 3 << 20 });
});
afterAll(async () => {
  await src?.close();
});

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!done()) throw new Error(`timed out waiting for ${what}`);
}

test('30% of ACKs lost: every loss a delivered ACK reports is answered, once; each loss is in 3 consecutive ACKs', async () => {
  const seed = 6330;
  const server = new RqcastServer({ catalogue: src.catalogue, port: 0, host: '127.0.0.1', rateMbps: 30 });
  const relay = new LossyRelay((await server.listen()).port, new Rng(seed), 0.1, 0.3);
  const out = await src.outDir();
  try {
    const port = await relay.start();
    const c = new RqcastClient(`rqcast://127.0.0.1:${port}`, { outputDir: out, ack: true, ackEveryPackets: 32, timeoutMs: 20_000 });
    await c.fetch();
    expect((await fs.readFile(path.join(out, 'obj.bin'))).equals(src.files['obj.bin'])).toBe(true);
    // Every ACK the relay let through has reached the server.
    await until('the ACKs to arrive', () => server.counters.ackReceived === relay.acksForwarded);

    // What the delivered ACKs reported lost, once each: what the tracker answers.
    const reported = new Set<number>();
    for (const a of relay.acks) if (a.delivered) for (const x of a.lost) reported.add(x);
    expect(server.counters.freshSymbolsRequested).toBe(reported.size);
    // One replacement per loss answered (none skipped: the whole file fits the window)...
    expect(server.counters.freshPackets + server.counters.freshUnknown + server.counters.freshSkipped).toBe(reported.size);
    // ...and each sent once: the relay never sees more than were made. (It may
    // see fewer: it is JS in this busy process, and the kernel drops what
    // overflows its socket buffer, replacements included; and the last ones
    // may still be in the replicator's queue.)
    expect(relay.replacements).toBeLessThanOrEqual(server.counters.freshPackets);

    // Each dropped packet is in DEFAULT_ACK_OVERLAP + 1 consecutive ACKs, unless the client finished before sending them.
    const covering = new Map<number, number[]>();
    relay.acks.forEach((a, i) => {
      for (const x of a.lost) if (relay.dropped.has(x)) covering.set(x, [...(covering.get(x) ?? []), i]);
    });
    let full = 0;
    let answered = 0;
    let firstDelivered = 0;
    for (const [x, acks] of covering) {
      const first = acks[0];
      const expected = Array.from({ length: Math.min(DEFAULT_ACK_OVERLAP + 1, relay.acks.length - first) }, (_, k) => first + k);
      expect([x, acks]).toEqual([x, expected]);
      if (acks.length === DEFAULT_ACK_OVERLAP + 1) full++;
      if (reported.has(x)) answered++;
      if (relay.acks[first].delivered) firstDelivered++;
    }
    expect(full).toBeGreaterThan(0);
    const share = (n: number) => (n / covering.size).toFixed(3);
    // Figures for the record, not thresholds: with windows that follow each other, only the first report would count.
    console.log(
      `seed ${seed}: ${relay.acks.length} ACKs, ${relay.acks.filter((a) => !a.delivered).length} dropped; ` +
        `${relay.dropped.size} stream packets dropped, ${covering.size} reported; answered ${share(answered)} ` +
        `(first report alone ${share(firstDelivered)}); ${server.counters.freshPackets} replacements`,
    );
  } finally {
    relay.close();
    await server.close();
    await fs.rm(out, { recursive: true, force: true });
  }
});
