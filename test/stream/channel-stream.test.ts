import { randomBytes } from 'node:crypto';
import { ObjectDecoder } from '../../lib/fec/decoder';
import { ObjectEncoder, PAYLOAD_ID_SIZE } from '../../lib/fec/encoder';
import { AlcPacket, decodeAlc, encodeAlc } from '../../lib/protocol/alc';
import { tryParseFdt } from '../../lib/protocol/fdt';
import { decodeOti } from '../../lib/protocol/oti';
import { ChannelStream, StreamFdt, StreamObject } from '../../lib/stream/channel-stream';
import { SymbolAllocator } from '../../lib/content/symbol-allocator';
import { wireOti } from '../../lib/content/catalogue';
import { buildFdt } from '../../lib/protocol/fdt';

const T = 64;

interface Obj {
  data: Buffer;
  encoder: ObjectEncoder;
  stream: StreamObject;
}

const open: { close(): void }[] = [];
afterAll(() => open.forEach((e) => e.close()));

function object(toi: number, size: number, blocks: number, mode: 'coded' | 'carousel' = 'coded'): Obj {
  const data = randomBytes(size);
  const encoder = new ObjectEncoder(data, { symbolSize: T, sourceBlocks: blocks });
  open.push(encoder);
  return { data, encoder, stream: { toi, encoder, allocator: SymbolAllocator.forEncoder(encoder, mode) } };
}

function fdtFor(objs: Obj[], instanceId: number, mode: 'coded' | 'carousel' = 'coded'): StreamFdt & { xml: string } {
  const xml = buildFdt({
    expiresAtMs: Date.UTC(2040, 0, 1),
    files: objs.map((o) => ({ toi: BigInt(o.stream.toi), contentLocation: `o${o.stream.toi}`, contentLength: o.data.length, oti: wireOti(o.encoder.otiInfo) })),
  });
  const encoder = new ObjectEncoder(new TextEncoder().encode(xml), { symbolSize: T });
  open.push(encoder);
  return { xml, instanceId, encoder, allocator: SymbolAllocator.forEncoder(encoder, mode), oti: wireOti(encoder.otiInfo) };
}

/** Fills `n` packets and splits them into single packets. */
function take(stream: ChannelStream, n: number, accept = (c: number): number => c): Uint8Array[] {
  const out: Uint8Array[] = [];
  stream.fill(n, (buf, size, count) => {
    const k = accept(count);
    for (let i = 0; i < k; i++) out.push(buf.slice(i * size, (i + 1) * size));
    return k;
  });
  return out;
}

function decode(p: Uint8Array): AlcPacket {
  const r = decodeAlc(p);
  if (!r.ok) throw new Error(`decodeAlc refused: ${r.reason}`);
  return r.packet;
}

describe('ChannelStream', () => {
  test('packets are ALC packets: CP 6, TSI, consecutive EXT_RQSEQ, FDT every fdtInterval, fixed sizes, encodeAlc bytes', () => {
    const objs = [object(1, 5000, 3), object(2, 700, 1)];
    const fdt = fdtFor(objs, 42);
    const s = new ChannelStream({ tsi: 9, objects: objs.map((o) => o.stream), fdt, fdtInterval: 16 });
    const packets = take(s, 500);
    expect(packets).toHaveLength(500);
    expect(s.nextSequence).toBe(500);
    packets.forEach((bytes, i) => {
      const p = decode(bytes);
      expect(p.header.codepoint).toBe(6);
      expect(p.tsi).toBe(9);
      expect(p.sequence).toBe(i);
      expect(p.payloadLength).toBe(T);
      if (i % 16 === 0) {
        expect(p.toi).toBe(0n);
        expect(p.fdt?.instanceId).toBe(42);
        expect(p.oti).toEqual(fdt.oti);
        expect(bytes.length).toBe(s.fdtPacketSize);
      } else {
        expect(p.toi).not.toBe(0n);
        expect(p.oti).toBeUndefined();
        expect(p.fdt).toBeUndefined();
        expect(bytes.length).toBe(s.dataPacketSize);
      }
      // Byte for byte what the reference encoder builds from the same fields.
      const again = encodeAlc({
        tsi: p.tsi,
        toi: p.toi,
        sbn: p.sbn,
        esi: p.esi,
        symbols: p.payload,
        sequence: p.sequence,
        fdtInstanceId: p.fdt?.instanceId,
        oti: p.oti,
      });
      expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
      expect(s.lookup(i)).toEqual({ toi: Number(p.toi), sbn: p.sbn, esi: p.esi });
    });
    expect(s.slotSize).toBe(Math.max(s.dataPacketSize, s.fdtPacketSize));
    // Every block was visited, round-robin.
    const blocks = new Set(packets.map(decode).filter((p) => p.toi !== 0n).map((p) => `${p.toi}/${p.sbn}`));
    expect(blocks).toEqual(new Set(['1/0', '1/1', '1/2', '2/0']));
    expect(s.counters.packets).toBe(500);
    expect(s.counters.fdtPackets).toBe(Math.ceil(500 / 16));
  });

  test('two channels sharing an object never send the same (TOI, SBN, ESI); one channel alone decodes everything', () => {
    const shared = object(1, 20_000, 2);
    const only = object(2, 3000, 1);
    const a = new ChannelStream({ tsi: 1, objects: [shared.stream, only.stream], fdt: fdtFor([shared, only], 1) });
    const b = new ChannelStream({ tsi: 2, objects: [shared.stream], fdt: fdtFor([shared], 2) });
    const seen = new Set<string>();
    const fromA: AlcPacket[] = [];
    for (let round = 0; round < 20; round++) {
      for (const [s, sink] of [
        [a, fromA],
        [b, undefined],
      ] as const) {
        for (const bytes of take(s, 37)) {
          const p = decode(bytes);
          if (p.toi === 0n) continue;
          const key = `${p.toi}/${p.sbn}/${p.esi}`;
          expect(seen.has(key)).toBe(false);
          seen.add(key);
          sink?.push(p);
        }
      }
    }
    // Channel A's packets alone: both objects decode.
    for (const o of [shared, only]) {
      const dec = new ObjectDecoder(o.encoder.oti);
      for (const p of fromA) {
        if (p.toi === BigInt(o.stream.toi)) dec.push(bytesOf(p));
      }
      expect(dec.complete).toBe(true);
      expect(Buffer.from(dec.result()).equals(o.data)).toBe(true);
      dec.close();
    }
  });

  test('the FDT decodes from the TOI 0 packets, using the OTI they carry', () => {
    const objs = Array.from({ length: 30 }, (_, i) => object(i + 1, 100 + i, 1));
    const fdt = fdtFor(objs, 3);
    expect(fdt.encoder.sourceSymbols(0)).toBeGreaterThan(1);
    const s = new ChannelStream({ tsi: 5, objects: objs.map((o) => o.stream), fdt, fdtInterval: 8 });
    let dec: ObjectDecoder | undefined;
    for (let i = 0; i < 100 && !dec?.complete; i++) {
      for (const bytes of take(s, 64)) {
        const p = decode(bytes);
        if (p.toi !== 0n) continue;
        dec ??= new ObjectDecoder({ F: p.oti!.transferLength, T: p.oti!.symbolSize, Z: p.oti!.sourceBlocks, N: p.oti!.subBlocks, Al: p.oti!.alignment });
        dec.push(bytesOf(p));
      }
    }
    expect(dec?.complete).toBe(true);
    const parsed = tryParseFdt(dec!.result());
    dec!.close();
    expect(parsed.ok && parsed.fdt.files.length).toBe(30);
  });

  test('no-code: a carousel of source ESIs only, each block cycling 0..K-1', () => {
    const o = object(1, 40 * T, 2, 'carousel');
    const s = new ChannelStream({ tsi: 1, objects: [o.stream], fdt: fdtFor([o], 1, 'carousel'), symbolsPerTurn: 3 });
    const perBlock = new Map<number, number[]>();
    for (const bytes of take(s, 400)) {
      const p = decode(bytes);
      if (p.toi === 0n) {
        expect(p.esi).toBeLessThan(s['fdt'].allocator.sourceSymbols(0));
        continue;
      }
      const list = perBlock.get(p.sbn) ?? [];
      list.push(p.esi);
      perBlock.set(p.sbn, list);
    }
    for (const [sbn, esis] of perBlock) {
      const K = o.encoder.sourceSymbols(sbn);
      expect(esis.every((e) => e < K)).toBe(true);
      // The carousel order: ESI i is followed by (i + 1) mod K.
      esis.forEach((e, i) => expect(e).toBe(i % K));
      expect(esis.length).toBeGreaterThan(K);
    }
  });

  test('fresh packets: same block, ESIs no stream sent, no EXT_RQSEQ; unknown sequence numbers counted', () => {
    const o = object(1, 10_000, 2);
    const a = new ChannelStream({ tsi: 1, objects: [o.stream], fdt: fdtFor([o], 1), historySegments: 64 });
    const b = new ChannelStream({ tsi: 2, objects: [o.stream], fdt: fdtFor([o], 2) });
    const sent = new Set<string>();
    const streamA = take(a, 200).map(decode);
    for (const p of [...streamA, ...take(b, 200).map(decode)]) sent.add(`${p.toi}/${p.sbn}/${p.esi}`);
    const lost = [150, 151, 160, 199, 176];
    const fresh = a.freshPackets(lost).map(decode);
    expect(fresh).toHaveLength(lost.length);
    const wantBlocks = lost.map((q) => `${streamA[q].toi}/${streamA[q].sbn}`).sort();
    expect(fresh.map((p) => `${p.toi}/${p.sbn}`).sort()).toEqual(wantBlocks);
    for (const p of fresh) {
      expect(p.sequence).toBeUndefined();
      expect(p.tsi).toBe(1);
      const key = `${p.toi}/${p.sbn}/${p.esi}`;
      expect(sent.has(key)).toBe(false);
      sent.add(key);
    }
    // Later stream packets do not reuse the fresh ESIs either.
    for (const p of take(a, 100).map(decode)) {
      const key = `${p.toi}/${p.sbn}/${p.esi}`;
      expect(sent.has(key)).toBe(false);
      sent.add(key);
    }
    // 64 segments of history: sequence 0 is long forgotten; 10^6 was never sent.
    expect(a.freshPackets([0, 1_000_000])).toHaveLength(0);
    expect(a.counters.freshUnknown).toBe(2);
    expect(a.lookup(300)).toBeUndefined();
  });

  test('fresh packets in no-code mode resend the lost source symbol', () => {
    const o = object(1, 30 * T, 1, 'carousel');
    const s = new ChannelStream({ tsi: 1, objects: [o.stream], fdt: fdtFor([o], 1, 'carousel') });
    const stream = take(s, 50).map(decode);
    const fresh = s.freshPackets([5, 40]).map(decode);
    expect(fresh.map((p) => [p.toi, p.sbn, p.esi, p.sequence])).toEqual([
      [stream[5].toi, stream[5].sbn, stream[5].esi, undefined],
      [stream[40].toi, stream[40].sbn, stream[40].esi, undefined],
    ]);
    expect(Buffer.from(fresh[0].payload).equals(Buffer.from(stream[5].payload))).toBe(true);
  });

  test('packets a push does not take stay pending and keep their sequence numbers', () => {
    const o = object(1, 10_000, 2);
    const s = new ChannelStream({ tsi: 1, objects: [o.stream], fdt: fdtFor([o], 1), fdtInterval: 10 });
    let budget = 25;
    const first = take(s, 100, (c) => {
      const k = Math.min(c, budget);
      budget -= k;
      return k;
    });
    expect(first).toHaveLength(25);
    expect(s.pendingPackets).toBeGreaterThan(0);
    const rest = take(s, 200);
    const seqs = [...first, ...rest].map((b) => decode(b).sequence);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i));
    expect(s.pendingPackets).toBe(0);
  });

  test('sequence numbers wrap at 2^32 and lookups still work across the wrap', () => {
    const o = object(1, 10_000, 1);
    const s = new ChannelStream({ tsi: 1, objects: [o.stream], fdt: fdtFor([o], 1) });
    (s as unknown as { position: number }).position = 2 ** 32 - 5;
    const ps = take(s, 10).map(decode);
    expect(ps.map((p) => p.sequence)).toEqual([2 ** 32 - 5, 2 ** 32 - 4, 2 ** 32 - 3, 2 ** 32 - 2, 2 ** 32 - 1, 0, 1, 2, 3, 4]);
    expect(s.lookup(2 ** 32 - 2)).toEqual({ toi: Number(ps[3].toi), sbn: ps[3].sbn, esi: ps[3].esi });
    expect(s.lookup(3)).toEqual({ toi: Number(ps[8].toi), sbn: ps[8].sbn, esi: ps[8].esi });
  });

  test('restartOnFirstMember: a stream nobody was on starts its cycle again at block 0 when it gets a member; a second member, or a stream without it, goes on where it was', () => {
    /** The SBNs of the data packets of `n` packets. */
    const sbns = (s: ChannelStream, n: number): number[] => take(s, n).map(decode).filter((p) => p.toi === 1n).map((p) => p.sbn);
    const runs = (s: ChannelStream, n: number): number[] => sbns(s, n).filter((b, i, all) => i === 0 || all[i - 1] !== b);
    const streamOf = (restart: boolean): ChannelStream => {
      const objs = [object(1, 4 * 40 * T, 4)];
      return new ChannelStream({ tsi: 1, objects: objs.map((o) => o.stream), fdt: fdtFor(objs, 1), windowBlocks: 1, needs: true, restartOnFirstMember: restart, fdtInterval: 1000 });
    };
    const s = streamOf(true);
    // Nobody on it: fixed passes (46 packets a block); into block 2's.
    expect(runs(s, 110)).toEqual([0, 1, 2]);
    s.expectNeed('a');
    // Block 0 next, then the cycle on from there: block 2's pass comes round in its turn.
    expect(runs(s, 200)).toEqual([0, 1, 2, 3, 0]);
    // A second member joins a stream that has one: no restart.
    const before = sbns(s, 10);
    s.expectNeed('b');
    expect(sbns(s, 5)[0]).toBe(before[before.length - 1]);
    // Everyone gone, then a newcomer: a restart again.
    s.forgetNeed('a');
    s.forgetNeed('b');
    let at = 0;
    while (at === 0) at = sbns(s, 10).pop() ?? 0;
    s.expectNeed('c');
    expect(sbns(s, 5)[0]).toBe(0);
    s.close();
    // A client joining and leaving over and over restarts nothing while block 0 is in the window:
    // block 0 is pinned (prepared again, if released) once per time the stream moved past it.
    const pinsOf0: number[] = [];
    const objs = [object(1, 4 * 40 * T, 4)];
    const pins = { pin: (_src: unknown, sbn: number) => void (sbn === 0 && pinsOf0.push(1)), unpin() {}, ready: () => true };
    const churn = new ChannelStream({ tsi: 1, objects: objs.map((o) => o.stream), fdt: fdtFor(objs, 1), windowBlocks: 1, needs: true, restartOnFirstMember: true, fdtInterval: 1000, pins });
    expect(runs(churn, 110)).toEqual([0, 1, 2]);
    const pinned = pinsOf0.length;
    for (let i = 0; i < 50; i++) {
      churn.expectNeed(`m${i}`);
      take(churn, 3);
      churn.forgetNeed(`m${i}`);
    }
    // 150 packets: block 0's pass (46) came round at most once per 46 packets sent, not once per join.
    expect(pinsOf0.length - pinned).toBeLessThanOrEqual(1 + Math.ceil(150 / 46));
    churn.close();
    const plain = streamOf(false);
    expect(runs(plain, 110)).toEqual([0, 1, 2]);
    plain.expectNeed('a');
    expect(runs(plain, 60)[0]).toBe(2);
    plain.close();
  });
});

/** FEC Payload ID + symbol of a decoded ALC packet: what ObjectDecoder.push takes. */
function bytesOf(p: AlcPacket): Uint8Array {
  const out = new Uint8Array(PAYLOAD_ID_SIZE + p.payloadLength);
  out[0] = p.sbn;
  out[1] = p.esi >> 16;
  out[2] = (p.esi >> 8) & 0xff;
  out[3] = p.esi & 0xff;
  out.set(p.payload, PAYLOAD_ID_SIZE);
  return out;
}
