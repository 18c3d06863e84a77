// End-to-end on plain loopback (no namespaces): `rqcast serve` from the
// sources on 127.0.0.1, and
//   (c) CLI fetches with the in-process loss hook (`--loss 10`): bit-exact
//       files, and the hook really dropped packets;
//   (d) ACK mode with the library client (RqcastClient, recordEsis), on two
//       channels carrying the same object: every replacement (a packet
//       without EXT_RQSEQ) carried an ESI this client had never received
//       before, from either channel, and no symbol arrived twice at all (the
//       server's ESI counter is shared by every channel carrying an object).
import * as dgram from 'dgram';
import * as fs from 'fs';
import * as path from 'path';
import { RqcastClient } from '../../lib/client/client';
import { cliOptions, describeRun, hostSpawn, lastJson, rqcastArgv, sha256, startServer, stopProcess, tempDir, writeContent } from './helpers';
import { NsProcess } from '../support/netns';

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('e2e on loopback', () => {
  let dir: string;
  let port: number;
  let server: NsProcess | undefined;
  const digests = new Map<string, string>();

  beforeAll(async () => {
    dir = tempDir('loopback');
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    digests.set('D.bin', writeContent(path.join(src, 'D.bin'), 1_200_000, 11));
    digests.set('E.bin', writeContent(path.join(src, 'E.bin'), 300_007, 12));
    port = await freePort();
    server = await startServer(undefined, undefined, [
      path.join(src, 'D.bin'),
      path.join(src, 'E.bin'),
      '--bind', '127.0.0.1',
      '--port', String(port),
      '--channel', `main:${path.join(src, 'D.bin')},${path.join(src, 'E.bin')}:24`,
      '--channel', `one:${path.join(src, 'D.bin')}:16`,
      '--channel', `two:${path.join(src, 'D.bin')}:16`,
    ]);
  });

  afterAll(async () => {
    await stopProcess(server);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('(c) --loss 10 (in-process loss hook): bit-exact files, packets really dropped', async () => {
    const runs = [0, 1, 2].map((i) => {
      const out = path.join(dir, 'c', `c${i}`);
      fs.mkdirSync(out, { recursive: true });
      const argv = rqcastArgv('fetch', `rqcast://127.0.0.1:${port}`, '-o', out, '--json', '--quiet', '--loss', '10', '--timeout', '30s');
      return { out, p: hostSpawn(argv, cliOptions({ timeoutMs: 120_000 })) };
    });
    for (const r of runs) {
      const res = await r.p.wait();
      if (res.code !== 0) throw new Error(describeRun('fetch --loss 10', res));
      for (const [name, digest] of digests) expect(sha256(path.join(r.out, name))).toBe(digest);
      const s = lastJson(res.stdout)!;
      expect(s.type).toBe('summary');
      const drops = Number(s.simulatedDrops);
      const received = Number(s.packetsReceived);
      // About 10 % of data packets (binomial; broad bound).
      expect(drops).toBeGreaterThan(0);
      expect(drops / (drops + received)).toBeGreaterThan(0.04);
      expect(drops / (drops + received)).toBeLessThan(0.2);
      // The CLI marks its start: the steps begin with Node's own, and add up to startupMs and tailMs.
      const phases = s.startupPhasesMs as Record<string, number>;
      expect(Object.keys(phases)).toEqual(['process', 'modules', 'hello', 'cookie', 'joined', 'data']);
      expect(Object.values(phases).reduce((a, b) => a + b, 0)).toBe(s.startupMs);
      const tail = s.tailPhasesMs as Record<string, number>;
      expect(Object.keys(tail)).toEqual(['solve', 'write', 'verify']);
      expect(tail.solve + tail.write + tail.verify).toBeLessThanOrEqual(Number(s.tailMs));
    }
  }, 150_000);

  it('(d) ACK mode: every replacement carries an ESI never received before, on two channels of one object', async () => {
    const out = path.join(dir, 'd');
    fs.mkdirSync(out, { recursive: true });
    const client = new RqcastClient(`rqcast://127.0.0.1:${port}/one,two/D.bin`, {
      outputDir: out,
      ack: true,
      lossRate: 0.2,
      lossSeed: 0xac4,
      recordEsis: true,
      timeoutMs: 30_000,
    });
    const summary = await client.fetch();
    expect(sha256(path.join(out, 'D.bin'))).toBe(digests.get('D.bin'));
    const log = client.stats.esiLog;
    const replacements = log.filter((e) => e.replacement);
    console.log(`[e2e d] ${log.length} packets, ${replacements.length} replacements, ${summary.acksSent} ACKs, overhead ${(summary.overhead * 100).toFixed(2)}%`);
    // The ACK path was exercised: losses were reported and answered.
    expect(summary.acksSent).toBeGreaterThan(0);
    expect(replacements.length).toBeGreaterThan(0);
    expect(summary.replacements).toBe(replacements.length);
    const seen = new Set<string>();
    const repeated: string[] = [];
    const staleReplacements: string[] = [];
    for (const e of log) {
      if (e.toi === 0n) continue; // the FDT object is a separate stream per channel
      const key = `${e.toi}/${e.sbn}/${e.esi}`;
      if (seen.has(key)) {
        repeated.push(key);
        if (e.replacement) staleReplacements.push(key);
      }
      seen.add(key);
    }
    expect(staleReplacements).toEqual([]);
    expect(repeated).toEqual([]);
    // Both channels contributed symbols of the object.
    expect(new Set(log.filter((e) => e.toi !== 0n).map((e) => e.tsi)).size).toBe(2);
  }, 150_000);
});
