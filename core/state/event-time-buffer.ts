/**
 * The readings of one key that wait for the watermark, kept in event-time order: what keyed
 * operators that process a key's readings in event-time order (detect, running) buffer until the
 * watermark has passed them (then they are final). Two parallel arrays from index `head`; inserts
 * search from the tail, since input is mostly in order; released entries are dropped lazily and
 * the arrays compacted when more than half of them (and over 1024) are released.
 */
export class EventTimeBuffer<T> {
  private readonly ts: number[] = [];
  private readonly items: T[] = [];
  private head = 0;

  /** Readings waiting. */
  get pending(): number {
    return this.ts.length - this.head;
  }

  /** Event time (ms) of the earliest waiting reading; only when `pending > 0`. */
  get headTs(): number {
    return this.ts[this.head] as number;
  }

  /** The earliest waiting reading; only when `pending > 0`. */
  get headItem(): T {
    return this.items[this.head] as T;
  }

  /**
   * Inserts a reading in event-time order; among equal times after those for which `after(x, item)`
   * is false (default: arrival order).
   * @returns true when it became the earliest waiting reading (the caller re-arms its timer)
   */
  insert(ts: number, item: T, after?: (a: T, b: T) => boolean): boolean {
    const tsa = this.ts;
    const items = this.items;
    let i = tsa.length;
    tsa.push(ts);
    items.push(item);
    while (
      i > this.head &&
      (tsa[i - 1] > ts || (after !== undefined && tsa[i - 1] === ts && after(items[i - 1] as T, item)))
    ) {
      tsa[i] = tsa[i - 1];
      items[i] = items[i - 1] as T;
      i--;
    }
    tsa[i] = ts;
    items[i] = item;
    return i === this.head;
  }

  /** Drops the earliest waiting reading (after reading `headTs`/`headItem`). */
  shift(): void {
    this.head++;
  }

  /**
   * Ends a round of `shift`s: frees released entries (all of them when none is left, else when
   * they are the larger part) and returns the earliest waiting time, or NaN when none is left.
   */
  settle(): number {
    const h = this.head;
    if (h === this.ts.length) {
      this.ts.length = 0;
      this.items.length = 0;
      this.head = 0;
      return Number.NaN;
    }
    if (h > 1024 && h * 2 > this.ts.length) {
      this.ts.splice(0, h);
      this.items.splice(0, h);
      this.head = 0;
    }
    return this.ts[this.head] as number;
  }

  /** Calls `f` for each waiting reading, in release order (snapshots). */
  forEach(f: (ts: number, item: T) => void): void {
    for (let i = this.head; i < this.ts.length; i++) f(this.ts[i] as number, this.items[i] as T);
  }

  /** Appends a reading known to sort last (restoring a snapshot written by `forEach`). */
  append(ts: number, item: T): void {
    this.ts.push(ts);
    this.items.push(item);
  }
}
