/**
 * ServerWatch (lib/client/server-watch.ts): which servers of a fetch from
 * several are dropped, with time passed in.
 */
import { ServerWatch } from '../../lib/client/server-watch';

describe('ServerWatch', () => {
  test('a joined server whose packet count stops growing for longer than the limit is dropped once; one that keeps sending is not', () => {
    const w = new ServerWatch(1000);
    w.add(0);
    w.add(1);
    w.joined(0, 0);
    w.joined(1, 0);
    w.heard(0, 10, 500);
    w.heard(1, 10, 500);
    w.heard(0, 20, 1400);
    // Server 1's count is the same: not news.
    w.heard(1, 10, 1400);
    expect(w.tick(1500)).toEqual([]);
    expect(w.tick(1501)).toEqual([1]);
    expect(w.dropped(1)).toBe('silent');
    expect(w.dropped(0)).toBeUndefined();
    expect(w.tick(1600)).toEqual([]);
  });

  test('the last joined server left is never dropped for silence (the fetch timeout decides)', () => {
    const w = new ServerWatch(1000);
    w.joined(0, 0);
    w.joined(1, 0);
    expect(w.tick(5000)).toHaveLength(1);
    expect(w.tick(99_000)).toEqual([]);
  });

  test('a server that has not joined is not watched for silence, and does not count as someone to carry on with', () => {
    const w = new ServerWatch(1000);
    w.add(0);
    w.add(1);
    w.joined(0, 0);
    expect(w.tick(10_000)).toEqual([]);
  });

  test('a failed server is dropped while another is left; the last one left failing is the fetch failing', () => {
    const w = new ServerWatch(1000);
    w.add(0);
    w.add(1);
    w.add(2);
    expect(w.failed(2)).toBe(true);
    expect(w.dropped(2)).toBe('failed');
    expect(w.failed(1)).toBe(true);
    expect(w.failed(0)).toBe(false);
    expect(w.dropped(0)).toBeUndefined();
  });

  test('once finished (every object decoded), nothing more is dropped', () => {
    const w = new ServerWatch(1000);
    w.joined(0, 0);
    w.joined(1, 0);
    w.finish();
    expect(w.tick(10_000)).toEqual([]);
  });
});
