// Waiting on a condition that a socket's datagrams make true: checked again
// on each one (wake()), so a test waits for what it needs and not for a
// fixed time that a loaded machine may not keep.

export class Waiters {
  private pending: (() => void)[] = [];

  /** Resolves with `pred`'s first truthy value, checked now and at each wake(). */
  until<T>(pred: () => T | undefined | false): Promise<T> {
    return new Promise((resolve) => {
      const check = (): void => {
        const v = pred();
        if (v) resolve(v);
        else this.pending.push(check);
      };
      check();
    });
  }

  /** Something happened: checks every pending condition once more. */
  wake(): void {
    const w = this.pending;
    this.pending = [];
    w.forEach((f) => f());
  }
}
