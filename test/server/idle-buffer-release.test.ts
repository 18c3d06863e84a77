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
import { IdleBufferRelease } from '../../lib/server/idle-buffer-release';

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
      expect(native.symbolBufferCounters().cachedBytes).toBe(400 * T);
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
});
