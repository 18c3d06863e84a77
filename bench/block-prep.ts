// bench:prep — what a fresh server pays to prepare a file's blocks
// (RFC 6330 §5.3.3.4: read the block, replay the encoding plan into its
// intermediate symbols), and how much of it is fresh memory: the same
// preparations in the same process, once into memory taken fresh from the
// system (a fresh `rqcast serve` keeps every block of a catalogue that fits
// its budget, so its first pass touches L + 1 symbols of new memory per
// block) and once into buffers the codec's cache hands back (blocks
// released as soon as prepared: a sliding window), the baseline.
//
//   npm run bench:prep                 256 MiB (T = 1280: 17 blocks of ~16 MiB, as bench:tcp serves)
//   npm run bench:prep -- --quick      64 MiB
//   options: --bytes N  --lanes N (preparations at once; default 2, as the
//            server's window of one block and the one prepared ahead)
//
// CPU is the process's (user + system, process.cpuUsage) over each pass;
// the system share is where first touches go (the kernel faulting and
// zeroing pages); faults are minor page faults (process.resourceUsage).
// The last line printed is one JSON object.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encoderOptionsFor, DEFAULT_SYMBOL_SIZE } from '../lib/content/catalogue';
import { ObjectEncoder } from '../lib/fec/encoder';
import { loadNative } from '../lib/native';
import { cliOption, round, writeRandomFile } from './support/measure';

const QUICK = process.argv.includes('--quick');
const BYTES = Number(cliOption('--bytes') ?? (QUICK ? 64 : 256) * 1024 * 1024);
const LANES = Number(cliOption('--lanes') ?? 2);

interface Pass {
  cpu_s: number;
  sys_s: number;
  minor_faults: number;
  fresh_MiB: number;
  reused_MiB: number;
}

/** Prepares every block, LANES at a time; `release` drops each one once prepared. */
async function pass(enc: ObjectEncoder, release: boolean): Promise<Pass> {
  const native = loadNative();
  native.symbolBufferCounters(true);
  const c0 = process.cpuUsage();
  const r0 = process.resourceUsage();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < enc.sourceBlocks) {
      const sbn = next++;
      await enc.prepareBlockAsync(sbn);
      if (release) enc.releaseBlock(sbn);
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  const c = process.cpuUsage(c0);
  const r = process.resourceUsage();
  const b = native.symbolBufferCounters();
  return {
    cpu_s: round((c.user + c.system) / 1e6, 3),
    sys_s: round(c.system / 1e6, 3),
    minor_faults: r.minorPageFault - r0.minorPageFault,
    fresh_MiB: round(b.freshBytes / 2 ** 20, 1),
    reused_MiB: round(b.reusedBytes / 2 ** 20, 1),
  };
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-bench-prep-'));
  try {
    const file = path.join(work, 'payload.bin');
    writeRandomFile(file, BYTES);
    const enc = ObjectEncoder.fromFile(file, { ...encoderOptionsFor(BYTES, DEFAULT_SYMBOL_SIZE), length: BYTES });
    // The encoding plan of each K' is computed once per process: not block memory, so outside both passes.
    await enc.prepareBlockAsync(0);
    enc.releaseBlock(0);
    loadNative().symbolBufferCounters(true, true);
    const fresh = await pass(enc, false);
    for (let sbn = 0; sbn < enc.sourceBlocks; sbn++) enc.releaseBlock(sbn);
    const reused = await pass(enc, true);
    enc.close();
    console.log(`prep: ${BYTES} bytes, ${enc.sourceBlocks} blocks, T = ${DEFAULT_SYMBOL_SIZE}, ${LANES} at a time (loadavg ${os.loadavg()[0].toFixed(1)})`);
    console.log('pass                  cpu_s   sys_s   minor_faults  fresh_MiB  reused_MiB');
    for (const [name, p] of [['kept (fresh memory)', fresh], ['released (reused)', reused]] as const) {
      console.log(`${name.padEnd(22)}${String(p.cpu_s).padEnd(8)}${String(p.sys_s).padEnd(8)}${String(p.minor_faults).padEnd(14)}${String(p.fresh_MiB).padEnd(11)}${p.reused_MiB}`);
    }
    console.log(JSON.stringify({ bench: 'prep', bytes: BYTES, blocks: enc.sourceBlocks, lanes: LANES, fresh, reused, ratio: round(fresh.cpu_s / reused.cpu_s, 2) }));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
