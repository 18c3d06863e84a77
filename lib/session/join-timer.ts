/**
 * Join timers: when each client's JOIN runs out.
 *
 * One binary min-heap for all clients, ordered by (deadline, scheduling
 * order), with lazy deletion: cancel and reschedule only touch a Map; the
 * stale heap entry is skipped when it surfaces. So schedule/reschedule cost
 * O(log n), cancel O(1), and expire(now) O((k + stale) log n) for k due
 * timers — never one JS timer per client. The heap is rebuilt from the live
 * entries when stale ones outnumber live ones, so memory stays O(live)
 * however often clients renew.
 *
 * Clock-free: the caller passes `now`, and owns the single real timer that
 * drives `expire` (see ClientManager.tick and `nextDeadline`).
 */

import { InvalidTimeError } from '../errors';

interface TimerEntry<K> {
  id: K;
  atMs: number;
  /** Global scheduling order: breaks ties between equal deadlines. */
  seq: number;
}

export class JoinTimer<K> {
  private readonly live = new Map<K, TimerEntry<K>>();
  private heap: TimerEntry<K>[] = [];
  private nextSeq = 0;

  /** Number of scheduled (not cancelled, not expired) timers. */
  get size(): number {
    return this.live.size;
  }

  /** Heap slots in use, stale ones included (for tests of the memory bound). */
  get heapSize(): number {
    return this.heap.length;
  }

  has(id: K): boolean {
    return this.live.has(id);
  }

  /** Deadline of `id`, or undefined if it has none. */
  deadline(id: K): number | undefined {
    return this.live.get(id)?.atMs;
  }

  /** Sets `id` to expire at `atMs`, replacing any deadline it had. */
  schedule(id: K, atMs: number): void {
    if (!Number.isFinite(atMs)) throw new InvalidTimeError('atMs', atMs);
    const entry: TimerEntry<K> = { id, atMs, seq: this.nextSeq++ };
    const had = this.live.has(id);
    this.live.set(id, entry);
    this.push(entry);
    if (had) this.maybeCompact();
  }

  /** Moves the deadline of an already scheduled `id`; returns false (and does nothing) if there is none. */
  reschedule(id: K, atMs: number): boolean {
    if (!this.live.has(id)) return false;
    this.schedule(id, atMs);
    return true;
  }

  /** Removes `id`'s deadline; returns whether it had one. */
  cancel(id: K): boolean {
    const had = this.live.delete(id);
    if (had) this.maybeCompact();
    return had;
  }

  /** Removes and returns every id whose deadline is <= now, earliest first (ties: scheduling order). */
  expire(now: number): K[] {
    const due: K[] = [];
    while (this.heap.length > 0 && this.heap[0].atMs <= now) {
      const entry = this.pop();
      if (this.live.get(entry.id) === entry) {
        this.live.delete(entry.id);
        due.push(entry.id);
      }
    }
    return due;
  }

  /** The earliest live deadline, or undefined: when the caller's single timer should fire next. */
  nextDeadline(): number | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0];
      if (this.live.get(top.id) === top) return top.atMs;
      this.pop();
    }
    return undefined;
  }

  clear(): void {
    this.live.clear();
    this.heap = [];
  }

  private maybeCompact(): void {
    if (this.heap.length > 64 && this.heap.length > 2 * this.live.size) {
      this.heap = Array.from(this.live.values());
      for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
    }
  }

  private static before<K>(a: TimerEntry<K>, b: TimerEntry<K>): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private push(entry: TimerEntry<K>): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!JoinTimer.before(entry, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): TimerEntry<K> {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop() as TimerEntry<K>;
    if (heap.length > 0) {
      heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && JoinTimer.before(heap[child + 1], heap[child])) child++;
      if (!JoinTimer.before(heap[child], entry)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = entry;
  }
}
