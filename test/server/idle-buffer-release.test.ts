/**
 * IdleBufferRelease: the codec's cached block buffers go back to the system
 * once a whole interval passes with no preparation and no release, once
 * per idle spell; and, with the real addon, what that frees.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ObjectEncoder } from '../../lib/fec/encoder';
import { loadNative } from '../../lib/native';
import { holdIdleBufferRelease, IdleBufferRelease, sharedIdleBufferRelease } from '../../lib/server/idle-buffer-release';

/** Whether `rule` finds an idle interval within `checks` checks (activity from elsewhere in the process can make one check false). */
function idleWithin(rule: IdleBufferRelease, checks: number): boolean {
  for (let i = 0; i < checks; i++) if (rule.check()) return true;
  return false;
}

describe('IdleBufferRelease', () => {
  afterEach(() => jest.useRealTimers());

  it('releases after one idle interval, once, and again only after new activity', () => {
    jest.useFakeTimers();
    let activity = 0;
    let released = 0;
    const r = new IdleBufferRelease({ activity: () => activity, release: () => released++, intervalMs: 1000 });
    try {
      activity++; // a preparation during the first interval
      jest.advanceTimersByTime(1000);
      expect(released).toBe(0);
      jest.advanceTimersByTime(1000); // a whole interval with nothing
      expect(released).toBe(1);
      jest.advanceTimersByTime(5000); // still idle: nothing more to give back
      expect(released).toBe(1);
      activity += 2; // blocks released from the budget: buffers in the cache again
      jest.advanceTimersByTime(1000);
      expect(released).toBe(1);
      jest.advanceTimersByTime(1000);
      expect(released).toBe(2);
      expect(r.releases).toBe(2);
    } finally {
      r.stop();
    }
    jest.advanceTimersByTime(10_000);
    expect(released).toBe(2);
  });

  it('refuses an interval that is not a positive number', () => {
    expect(() => new IdleBufferRelease({ activity: () => 0, release: () => undefined, intervalMs: 0 })).toThrow(RangeError);
  });

  it('empties the codec cache that a preparation filled (its source copy)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-idle-release-'));
    const file = path.join(dir, 'object.bin');
    const T = 1024;
    fs.writeFileSync(file, Buffer.alloc(400 * T, 7));
    const native = loadNative();
    const enc = ObjectEncoder.fromFile(file, { symbolSize: T, sourceBlocks: 1 });
    try {
      native.symbolBufferCounters(true, true);
      await enc.prepareBlockAsync(0);
      // At least its source copy (an earlier test's buffers, collected meanwhile, may join it).
      expect(native.symbolBufferCounters().cachedBytes).toBeGreaterThanOrEqual(400 * T);
      const r = new IdleBufferRelease({ activity: () => 0, release: () => native.symbolBufferCounters(false, true), intervalMs: 60_000 });
      r.stop();
      expect(r.check()).toBe(true);
      const after = native.symbolBufferCounters();
      expect(after.cachedBytes).toBe(0);
      expect(after.freedBytes).toBeGreaterThanOrEqual(400 * T);
      // The prepared block itself is the encoder's, not the cache's: still there.
      expect(enc.blockMemory(0)).toBeGreaterThan(0);
    } finally {
      enc.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is one rule per process: servers hold it while they listen, and the last to let go stops it', () => {
    expect(sharedIdleBufferRelease()).toBeUndefined();
    const letGoA = holdIdleBufferRelease({ intervalMs: 60_000 });
    const rule = sharedIdleBufferRelease();
    expect(rule).toBeDefined();
    const letGoB = holdIdleBufferRelease({ intervalMs: 1 }); // a later holder shares the first one's rule
    expect(sharedIdleBufferRelease()).toBe(rule);
    letGoA();
    letGoA(); // once only: B still holds it
    expect(sharedIdleBufferRelease()).toBe(rule);
    letGoB();
    expect(sharedIdleBufferRelease()).toBeUndefined();
    const letGoC = holdIdleBufferRelease();
    expect(sharedIdleBufferRelease()).not.toBe(rule);
    letGoC();
  });

  it("takes the process's activity from the codec: anyone's preparation (not only a server's) keeps the cache, an idle interval empties it", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rqcast-idle-shared-'));
    const file = path.join(dir, 'object.bin');
    const T = 1024;
    fs.writeFileSync(file, Buffer.alloc(400 * T, 9));
    const native = loadNative();
    const enc = ObjectEncoder.fromFile(file, { symbolSize: T, sourceBlocks: 2 });
    const letGo = holdIdleBufferRelease({ intervalMs: 60_000 });
    try {
      const rule = sharedIdleBufferRelease() as IdleBufferRelease;
      native.symbolBufferCounters(false, true);
      rule.check(); // a known start: whatever came before is counted
      await enc.prepareBlockAsync(0); // an encoder of no server: its buffers are the process's activity
      expect(native.symbolBufferCounters().cachedBytes).toBeGreaterThan(0);
      expect(rule.check()).toBe(false);
      expect(native.symbolBufferCounters().cachedBytes).toBeGreaterThan(0);
      // A whole interval with nothing: true. An earlier test's encoder
      // collected by V8 meanwhile frees its buffers, which is activity too
      // (false, then true at the next check); this test does nothing more.
      expect(idleWithin(rule, 3)).toBe(true);
      expect(native.symbolBufferCounters().cachedBytes).toBe(0);
      await enc.prepareBlockAsync(1);
      expect(rule.check()).toBe(false);
    } finally {
      letGo();
      enc.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
