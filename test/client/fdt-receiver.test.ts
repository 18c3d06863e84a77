import { createHash, randomBytes } from 'crypto';
import { FdtReceiver } from '../../lib/client/fdt-receiver';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { buildFdt, FdtInstance } from '../../lib/protocol/fdt';
import { alcPacket, lossyPackets, prng } from './support';

function fdtWith(names: string[]): FdtInstance {
  return {
    expiresAtMs: 4_000_000_000_000,
    files: names.map((name, i) => ({
      toi: BigInt(i + 1),
      contentLocation: name,
      oti: { transferLength: 1000 + i, symbolSize: 64, sourceBlocks: 1, subBlocks: 1, alignment: 4 },
      sha256: createHash('sha256').update(name).digest(),
    })),
  };
}

function fdtEncoder(fdt: FdtInstance): ObjectEncoder {
  return new ObjectEncoder(Buffer.from(buildFdt(fdt), 'utf8'), { symbolSize: 64 });
}

describe('FdtReceiver', () => {
  test('decodes an instance from shuffled, lossy TOI 0 packets, once', () => {
    const names = Array.from({ length: 30 }, (_, i) => `dir/file-${i}.bin`);
    const fdt = fdtWith(names);
    const enc = fdtEncoder(fdt);
    const rx = new FdtReceiver();
    const got: { instanceId: number; fdt: FdtInstance }[] = [];
    const packets = lossyPackets(enc, prng(11), { toi: 0, withOti: true, fdtInstanceId: 5 });
    for (const p of packets) {
      const r = rx.add(p);
      if (r) got.push(r);
    }
    expect(got).toHaveLength(1);
    expect(got[0].instanceId).toBe(5);
    expect(got[0].fdt.files.map((f) => f.contentLocation)).toEqual(names);
    expect(got[0].fdt.files[3].oti?.transferLength).toBe(1003);
    expect(got[0].fdt.files[3].sha256).toEqual(new Uint8Array(fdt.files[3].sha256 as Uint8Array));
    expect(rx.hasFinished(5)).toBe(true);
    expect(rx.stats.instancesDecoded).toBe(1);
    expect(rx.stats.late).toBeGreaterThan(0);
    enc.close();
  });

  test('two instances interleaved decode independently', () => {
    const a = fdtEncoder(fdtWith(['a']));
    const b = fdtEncoder(fdtWith(['b', 'c']));
    const rx = new FdtReceiver();
    const done: number[] = [];
    const pa = lossyPackets(a, prng(1), { toi: 0, withOti: true, fdtInstanceId: 1, loss: 0, dup: 0 });
    const pb = lossyPackets(b, prng(2), { toi: 0, withOti: true, fdtInstanceId: 2, loss: 0, dup: 0 });
    for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
      for (const p of [pa[i], pb[i]]) {
        if (p === undefined) continue;
        const r = rx.add(p);
        if (r) done.push(r.instanceId);
      }
    }
    expect(done.sort()).toEqual([1, 2]);
    a.close();
    b.close();
  });

  test('packets without EXT_FTI, with a different OTI, or too large are rejected', () => {
    const enc = fdtEncoder(fdtWith(['x']));
    const rx = new FdtReceiver({ maxLength: 100_000 });
    rx.add(alcPacket(enc, 0, 0, { toi: 0, fdtInstanceId: 3 }));
    expect(rx.stats.rejected).toBe(1);
    rx.add(alcPacket(enc, 0, 0, { toi: 0, fdtInstanceId: 3, withOti: true }));
    const other = fdtEncoder(fdtWith(['a much longer name', 'and another one']));
    rx.add(alcPacket(other, 0, 1, { toi: 0, fdtInstanceId: 3, withOti: true }));
    expect(rx.stats.rejected).toBe(2);
    const huge = new ObjectEncoder(randomBytes(200_000), { symbolSize: 1024 });
    rx.add(alcPacket(huge, 0, 0, { toi: 0, fdtInstanceId: 4, withOti: true }));
    expect(rx.stats.rejected).toBe(3);
    enc.close();
    other.close();
    huge.close();
  });

  test('a decoded instance that is not an FDT is counted, not returned', () => {
    const enc = new ObjectEncoder(Buffer.from('<html>not an fdt</html>'), { symbolSize: 64 });
    const rx = new FdtReceiver();
    let r;
    for (let esi = 0; esi < 3 && !r; esi++) r = rx.add(alcPacket(enc, 0, esi, { toi: 0, fdtInstanceId: 9, withOti: true }));
    expect(r).toBeUndefined();
    expect(rx.stats.parseFailures).toBe(1);
    expect(rx.hasFinished(9)).toBe(true);
    enc.close();
  });

  test('at most maxInstances decode at once', () => {
    const rx = new FdtReceiver({ maxInstances: 2 });
    const encs = [0, 1, 2].map((i) => fdtEncoder(fdtWith([`n${i}`, 'padding-name-to-need-more-than-one-symbol'])));
    // One symbol of each of three instances: the first is evicted.
    encs.forEach((e, i) => rx.add(alcPacket(e, 0, 0, { toi: 0, fdtInstanceId: i, withOti: true })));
    // Instance 0 starts over: its remaining source symbols alone are not enough.
    const K = encs[0].sourceSymbols(0);
    let r;
    for (let esi = 1; esi < K; esi++) r = rx.add(alcPacket(encs[0], 0, esi, { toi: 0, fdtInstanceId: 0, withOti: true }));
    expect(r).toBeUndefined();
    for (const e of encs) e.close();
    rx.close();
  });
});
