// Builds the libFuzzer harnesses of native/fuzz and runs each for a short
// while (FUZZ_TEST_SECONDS, default 8), starting from its checked-in seeds
// (native/fuzz/seeds/NAME, when there are some). `npm run fuzz` runs them
// for long. The codec's (OTI, payload ID, hostile decoder) and the TCP
// core's (segment parser, connection, listener).
// Skipped, with the reason printed, only when clang++ or its libFuzzer
// runtime is absent (CI installs both: .ci/run).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const FUZZ_DIR = path.resolve(__dirname, '..', 'native', 'fuzz');
const HARNESSES = ['fuzz_oti', 'fuzz_payload_id', 'fuzz_object_decoder', 'fuzz_tcp_segment', 'fuzz_tcp_connection', 'fuzz_tcp_listener'];
const SECONDS = Number(process.env.FUZZ_TEST_SECONDS ?? 8);

function missingToolchain(): string | undefined {
  const cxx = process.env.FUZZ_CXX ?? 'clang++';
  const probe = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `${cxx} not found`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-fuzzprobe-'));
  try {
    const src = path.join(dir, 'p.cc');
    fs.writeFileSync(
      src,
      'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n',
    );
    const link = spawnSync(cxx, ['-fsanitize=fuzzer', src, '-o', path.join(dir, 'p')], {
      encoding: 'utf8',
    });
    if (link.status !== 0) return `${cxx} cannot link -fsanitize=fuzzer (libFuzzer runtime missing)`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return undefined;
}

const missing = missingToolchain();
if (missing) {
  // eslint-disable-next-line no-console
  console.log(`fuzz tests skipped: ${missing} (apt-get install clang libclang-rt-14-dev)`);
}
const maybe = missing ? describe.skip : describe;

maybe('libFuzzer harnesses (native/fuzz)', () => {
  beforeAll(() => {
    const env = { ...process.env };
    if (process.env.FUZZ_CXX) env.CXX = process.env.FUZZ_CXX;
    const build = spawnSync('make', ['-C', FUZZ_DIR, '-j', '2', 'all'], {
      encoding: 'utf8',
      env,
    });
    if (build.status !== 0) {
      throw new Error(`fuzz build failed:\n${build.stdout}\n${build.stderr}`);
    }
  }, 900_000);

  test.each(HARNESSES)(
    '%s runs clean',
    (name) => {
      const corpus = fs.mkdtempSync(path.join(os.tmpdir(), `rqcast-${name}-`));
      const seeds = path.join(FUZZ_DIR, 'seeds', name);
      try {
        const run = spawnSync(
          path.join(FUZZ_DIR, 'build', name),
          [
            `-max_total_time=${SECONDS}`,
            '-timeout=20',
            '-rss_limit_mb=2048',
            '-print_final_stats=1',
            `-artifact_prefix=${path.join(FUZZ_DIR, 'build')}/${name}-`,
            corpus,
            ...(fs.existsSync(seeds) ? [seeds] : []),
          ],
          { encoding: 'utf8', maxBuffer: 64 << 20 },
        );
        const out = `${run.stdout}\n${run.stderr}`;
        const execs = /stat::number_of_executed_units:\s*(\d+)/.exec(out)?.[1];
        // eslint-disable-next-line no-console
        console.log(`${name}: ${execs ?? '?'} executions in ${SECONDS} s, exit ${run.status}`);
        if (run.status !== 0) {
          throw new Error(`${name} exited ${run.status}:\n${out.slice(-6000)}`);
        }
        expect(Number(execs)).toBeGreaterThan(0);
      } finally {
        fs.rmSync(corpus, { recursive: true, force: true });
      }
    },
    (SECONDS + 120) * 1000,
  );
});
