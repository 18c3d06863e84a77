/**
 * TransportFallback (docs/PROTOCOL.md §10.10), driven by a fake clock:
 * when a channel gives up its group for unicast, and when it must not.
 */
import { fallbackChain, TransportFallback } from '../../lib/client/fallback';

const T0 = 1_700_000_000_000;
const AFTER = 2000;

function auto(fallbackAfterMs = AFTER): TransportFallback {
  return new TransportFallback({ chain: fallbackChain('auto'), fallbackAfterMs });
}

describe('fallbackChain', () => {
  test('auto tries multicast, then UDP, then TCP; the forced modes are one step', () => {
    expect(fallbackChain('auto')).toEqual(['multicast', 'udp', 'tcp']);
    expect(fallbackChain('multicast')).toEqual(['multicast']);
    expect(fallbackChain('udp')).toEqual(['udp']);
    expect(fallbackChain('tcp')).toEqual(['tcp']);
  });
});

describe('TransportFallback', () => {
  test('nothing from the group within fallbackAfterMs of joining it: UDP at exactly that time (no-data)', () => {
    const f = auto();
    expect(f.start('main', 'multicast', T0)).toBe('multicast');
    expect(f.nextDeadline()).toBe(T0 + AFTER);
    expect(f.tick(T0 + AFTER - 1)).toEqual([]);
    expect(f.transport('main')).toBe('multicast');
    expect(f.tick(T0 + AFTER)).toEqual([{ channel: 'main', from: 'multicast', transport: 'udp', reason: 'no-data', at: T0 + AFTER }]);
    expect(f.transport('main')).toBe('udp');
    // UDP is watched in turn, from the decision on.
    expect(f.nextDeadline()).toBe(T0 + 2 * AFTER);
  });

  test('packets keep it on multicast; silence mid-transfer moves it fallbackAfterMs after the last packet (silent)', () => {
    const f = auto();
    f.start('main', 'multicast', T0);
    for (let t = T0 + 500; t <= T0 + 10_000; t += 500) {
      f.received('main', 'multicast', t);
      expect(f.tick(t)).toEqual([]);
    }
    expect(f.nextDeadline()).toBe(T0 + 10_000 + AFTER);
    expect(f.tick(T0 + 10_000 + AFTER - 1)).toEqual([]);
    expect(f.tick(T0 + 10_000 + AFTER)).toEqual([{ channel: 'main', from: 'multicast', transport: 'udp', reason: 'silent', at: T0 + 10_000 + AFTER }]);
  });

  test('a packet just before the deadline moves it by fallbackAfterMs', () => {
    const f = auto();
    f.start('main', 'multicast', T0);
    f.received('main', 'multicast', T0 + AFTER - 1);
    expect(f.tick(T0 + AFTER)).toEqual([]);
    expect(f.nextDeadline()).toBe(T0 + 2 * AFTER - 1);
  });

  test('a late tick decides at its own time, once', () => {
    const f = auto();
    f.start('main', 'multicast', T0);
    const d = f.tick(T0 + 5 * AFTER);
    expect(d).toEqual([{ channel: 'main', from: 'multicast', transport: 'udp', reason: 'no-data', at: T0 + 5 * AFTER }]);
    expect(f.tick(T0 + 5 * AFTER)).toEqual([]);
  });

  test('packets by another transport, of another channel, or out of order do not feed the watch', () => {
    const f = auto();
    f.start('main', 'multicast', T0);
    f.start('hd', 'multicast', T0 + 100);
    f.received('main', 'udp', T0 + 1000);
    f.received('other', 'multicast', T0 + 1000);
    f.received('hd', 'multicast', T0 + 1500);
    f.received('hd', 'multicast', T0 + 1200);
    expect(f.nextDeadline()).toBe(T0 + AFTER);
    expect(f.tick(T0 + AFTER)).toEqual([{ channel: 'main', from: 'multicast', transport: 'udp', reason: 'no-data', at: T0 + AFTER }]);
    expect(f.nextDeadline()).toBe(T0 + 1500 + AFTER);
    expect(f.tick(T0 + 1500 + AFTER)).toEqual([{ channel: 'hd', from: 'multicast', transport: 'udp', reason: 'silent', at: T0 + 1500 + AFTER }]);
  });

  test('two channels due at once are decided together, in the order they were started', () => {
    const f = auto();
    f.start('b', 'multicast', T0);
    f.start('a', 'multicast', T0);
    expect(f.tick(T0 + AFTER).map((d) => d.channel)).toEqual(['b', 'a']);
    expect(f.transports()).toEqual([
      { channel: 'b', transport: 'udp' },
      { channel: 'a', transport: 'udp' },
    ]);
  });

  test('once the channel has finished, a silent group is no reason to move', () => {
    const f = auto();
    f.start('main', 'multicast', T0);
    f.received('main', 'multicast', T0 + 100);
    f.finished('main');
    expect(f.nextDeadline()).toBeUndefined();
    expect(f.tick(T0 + 100 * AFTER)).toEqual([]);
    expect(f.transport('main')).toBe('multicast');
  });

  test('a membership that fails moves the channel at once (failed); twice is nothing', () => {
    const f = auto();
    f.start('main', 'multicast', T0);
    expect(f.failed('main', 'multicast', T0 + 7)).toEqual({ channel: 'main', from: 'multicast', transport: 'udp', reason: 'failed', at: T0 + 7 });
    expect(f.failed('main', 'multicast', T0 + 8)).toBeUndefined();
    expect(f.failed('other', 'multicast', T0 + 8)).toBeUndefined();
    expect(f.transport('main')).toBe('udp');
  });

  test("'multicast' never falls back: no deadline, no decision, even on failure", () => {
    const f = new TransportFallback({ chain: fallbackChain('multicast'), fallbackAfterMs: AFTER });
    f.start('main', 'multicast', T0);
    expect(f.nextDeadline()).toBeUndefined();
    expect(f.tick(T0 + 1000 * AFTER)).toEqual([]);
    expect(f.failed('main', 'multicast', T0)).toBeUndefined();
    expect(f.transport('main')).toBe('multicast');
  });

  test("a transport the chain does not have is not watched ('udp' chain, a multicast start)", () => {
    const f = new TransportFallback({ chain: fallbackChain('udp'), fallbackAfterMs: AFTER });
    expect(f.start('main', 'multicast', T0)).toBeUndefined();
    expect(f.transport('main')).toBeUndefined();
    expect(f.start('main', 'udp', T0)).toBe('udp');
    expect(f.nextDeadline()).toBeUndefined();
  });

  test('a longer chain (a third transport, as TCP will be) watches each step but the last, from when it started', () => {
    const f = new TransportFallback({ chain: ['multicast', 'udp', 'tcp'], fallbackAfterMs: AFTER });
    f.start('main', 'multicast', T0);
    f.received('main', 'multicast', T0 + 300);
    expect(f.tick(T0 + 300 + AFTER)).toEqual([{ channel: 'main', from: 'multicast', transport: 'udp', reason: 'silent', at: T0 + 300 + AFTER }]);
    // The new step's wait starts at the decision; multicast packets no longer count.
    f.received('main', 'multicast', T0 + 300 + AFTER + 10);
    expect(f.nextDeadline()).toBe(T0 + 300 + 2 * AFTER);
    expect(f.tick(T0 + 300 + 2 * AFTER)).toEqual([{ channel: 'main', from: 'udp', transport: 'tcp', reason: 'no-data', at: T0 + 300 + 2 * AFTER }]);
    expect(f.nextDeadline()).toBeUndefined();
  });

  test('auto, TCP step: nothing by UDP within fallbackAfterMs of its start, TCP at exactly that time, then nothing more to decide', () => {
    const f = auto();
    f.start('main', 'udp', T0);
    expect(f.nextDeadline()).toBe(T0 + AFTER);
    expect(f.tick(T0 + AFTER - 1)).toEqual([]);
    expect(f.tick(T0 + AFTER)).toEqual([{ channel: 'main', from: 'udp', transport: 'tcp', reason: 'no-data', at: T0 + AFTER }]);
    expect(f.transport('main')).toBe('tcp');
    // TCP is the last step: nothing more to decide, ever; TCP packets change nothing.
    f.received('main', 'tcp', T0 + AFTER + 5);
    expect(f.nextDeadline()).toBeUndefined();
    expect(f.tick(T0 + 100 * AFTER)).toEqual([]);
  });

  test('auto, TCP step: UDP that goes silent mid-transfer moves to TCP fallbackAfterMs after its last packet (silent)', () => {
    const f = auto();
    f.start('main', 'udp', T0);
    for (let t = T0 + 100; t <= T0 + 5000; t += 100) f.received('main', 'udp', t);
    expect(f.tick(T0 + 5000 + AFTER - 1)).toEqual([]);
    expect(f.tick(T0 + 5000 + AFTER)).toEqual([{ channel: 'main', from: 'udp', transport: 'tcp', reason: 'silent', at: T0 + 5000 + AFTER }]);
  });

  test('auto, the whole chain: a silent group, then silent UDP, reaches TCP at 2 x fallbackAfterMs', () => {
    const f = auto();
    f.start('main', 'multicast', T0);
    expect(f.tick(T0 + AFTER).map((d) => d.transport)).toEqual(['udp']);
    expect(f.tick(T0 + 2 * AFTER - 1)).toEqual([]);
    expect(f.tick(T0 + 2 * AFTER)).toEqual([{ channel: 'main', from: 'udp', transport: 'tcp', reason: 'no-data', at: T0 + 2 * AFTER }]);
  });

  test("auto: a finished channel never moves to TCP; 'tcp' alone never falls back", () => {
    const f = auto();
    f.start('main', 'udp', T0);
    f.finished('main');
    expect(f.nextDeadline()).toBeUndefined();
    expect(f.tick(T0 + 10 * AFTER)).toEqual([]);
    const t = new TransportFallback({ chain: fallbackChain('tcp'), fallbackAfterMs: AFTER });
    t.start('main', 'tcp', T0);
    expect(t.nextDeadline()).toBeUndefined();
    expect(t.failed('main', 'tcp', T0)).toBeUndefined();
  });

  test('a fallback time or a chain that cannot work is refused', () => {
    expect(() => new TransportFallback({ chain: [], fallbackAfterMs: AFTER })).toThrow(RangeError);
    expect(() => new TransportFallback({ chain: ['udp'], fallbackAfterMs: 0 })).toThrow(RangeError);
    expect(() => new TransportFallback({ chain: ['udp'], fallbackAfterMs: NaN })).toThrow(RangeError);
  });
});
