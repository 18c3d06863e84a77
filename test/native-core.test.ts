// Runs the standalone C++ self-tests of the native core (no Node headers):
// `make -C native test` builds every test/native/*_test.cc against the core
// library and runs each binary; this fails if any of them fails.
import { spawnSync } from 'child_process';
import * as path from 'path';

const repoRoot = path.resolve(__dirname, '..');

describe('native core (make -C native test)', () => {
  it('builds and passes every test/native/*_test.cc', () => {
    const jobs = process.env.RQCAST_MAKE_JOBS ?? '2';
    const res = spawnSync('make', ['-C', path.join(repoRoot, 'native'), `-j${jobs}`, 'test'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const output = `${res.stdout ?? ''}\n${res.stderr ?? ''}`;
    if (res.error) throw res.error;
    if (res.status !== 0) {
      // The tail names the failing binary and check.
      throw new Error(`make -C native test exited with ${res.status}:\n${output.slice(-8000)}`);
    }
    expect(output).toMatch(/== PASS .*fec_math_test/);
    expect(output).not.toMatch(/== FAIL /);
  }, 900_000);
});
