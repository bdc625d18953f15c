/**
 * Building blocks of Fluxo's keyed event-time operators (window, detect, running): key
 * extraction, key-group ownership checks, event-time timers per key, and the operator base
 * classes that hold the keyed states, the timers and the watermark.
 */
import { EngineError } from '../errors/index.js';
import type { Row, Value } from '../spec/types.js';
import { NumberMinHeap } from '../windows/heap.js';
import type { EventTimeBuffer } from './event-time-buffer.js';
import { keyGroupOf, keyOf } from './keygroups.js';

/** The key groups a keyed subtask owns: the inclusive range `[keyGroupStart, keyGroupEnd]` of `maxParallelism`. */
export interface KeyGroupOwnership {
  maxParallelism: number;
  keyGroupStart: number;
  keyGroupEnd: number;
}

/** @throws EngineError `INTERNAL` when the range is empty or outside `[0, maxParallelism)` */
export function checkKeyGroupRange(o: KeyGroupOwnership): void {
  if (o.keyGroupStart < 0 || o.keyGroupEnd >= o.maxParallelism || o.keyGroupStart > o.keyGroupEnd) {
    throw new EngineError(
      'INTERNAL',
      `invalid key-group range [${o.keyGroupStart}, ${o.keyGroupEnd}] for maxParallelism ${o.maxParallelism}`,
    );
  }
}

/**
 * The key group of `key`, which this subtask must own.
 * @throws EngineError `INTERNAL` when it is another subtask's (a partitioning bug)
 */
export function ownedKeyGroup(key: string, o: KeyGroupOwnership): number {
  const kg = keyGroupOf(key, o.maxParallelism);
  if (kg < o.keyGroupStart || kg > o.keyGroupEnd) {
    throw new EngineError(
      'INTERNAL',
      `key '${key}' (key group ${kg}) is not in this subtask's range [${o.keyGroupStart}, ${o.keyGroupEnd}]`,
    );
  }
  return kg;
}

/**
 * Checks, before restoring `keyGroup`, that this subtask owns it.
 * @throws EngineError `INTERNAL` otherwise
 */
export function checkOwnedKeyGroup(keyGroup: number, o: KeyGroupOwnership): void {
  if (keyGroup < o.keyGroupStart || keyGroup > o.keyGroupEnd) {
    throw new EngineError(
      'INTERNAL',
      `key group ${keyGroup} is not in this subtask's range [${o.keyGroupStart}, ${o.keyGroupEnd}]`,
    );
  }
}

/**
 * Checks that a key read from the snapshot of `keyGroup` hashes to it.
 * @throws EngineError `PROTOCOL` otherwise (a corrupt or misfiled snapshot)
 */
export function checkRestoredKey(key: string, keyGroup: number, maxParallelism: number): void {
  if (keyGroupOf(key, maxParallelism) !== keyGroup)
    throw new EngineError('PROTOCOL', `key '${key}' does not belong to key group ${keyGroup}`);
}

/**
 * The key of `row`: with a single key field (`singleKeyField` non-null) its value as a string
 * without allocation for string values; otherwise `keyOf(row, keyFields)` (core/state/keygroups.ts).
 */
export function rowKey(row: Row, singleKeyField: string | null, keyFields: string[]): string {
  if (singleKeyField === null) return keyOf(row, keyFields);
  const v = row[singleKeyField];
  return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
}

/** Orders keyed states by key (code-unit order), for deterministic firing and snapshots. */
export function compareKeys(a: { readonly key: string }, b: { readonly key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Event-time timers of keyed states: buckets `Map<time, T[]>` plus a min-heap of distinct times,
 * so advancing the watermark costs O(due timers · log) and never scans idle keys. A state may be
 * registered at several times (stale entries are the owner's to skip when they fire).
 */
export class KeyedTimers<T extends { readonly key: string }> {
  private readonly buckets = new Map<number, T[]>();
  private readonly heap = new NumberMinHeap();

  /** Registers `item` to fire at `time` (ms). Allocates only for the first item of a time. */
  add(time: number, item: T): void {
    let bucket = this.buckets.get(time);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(time, bucket);
      this.heap.push(time);
    }
    bucket.push(item);
  }

  /**
   * Fires, in order of (time, key), every timer with time ≤ `wm` (or < `wm` when `strict`),
   * removing it first; `fire` may register new timers, which fire in the same call when due.
   */
  fireDue(wm: number, strict: boolean, fire: (item: T, time: number) => void): void {
    const heap = this.heap;
    while (heap.size > 0 && (strict ? heap.peek() < wm : heap.peek() <= wm)) {
      const time = heap.pop();
      const bucket = this.buckets.get(time);
      this.buckets.delete(time);
      if (bucket === undefined) continue;
      if (bucket.length > 1) bucket.sort(compareKeys);
      for (let i = 0; i < bucket.length; i++) fire(bucket[i], time);
    }
  }
}

/** What every keyed operator keeps of a key: the key, its key group and, for 2+ key fields, their values. */
export interface KeyEntry {
  readonly key: string;
  readonly keyGroup: number;
  /** the key fields' values when there are 2+ key fields (written into result rows); null for one */
  readonly keyValues: Value[] | null;
}

/** Key fields and key-group ownership of a keyed operator subtask. */
export interface KeyedOperatorConfig extends KeyGroupOwnership {
  /** keyBy fields; the key is `keyOf(row, keyFields)` (core/state/keygroups.ts) */
  keyFields: string[];
}

/**
 * The common frame of Fluxo's keyed event-time operators (window, detect, running): the keyed
 * states by key, their event-time timers, and the operator watermark W (the minimum over the
 * input channels, which the task computes; −Infinity initially). Advancing W fires the due timers
 * in (time, key) order (`KeyedTimers`), so results never depend on the order keys were seen.
 *
 * Restoring: every restored key group carries the watermark of the subtask that wrote it; the
 * operator resumes at the minimum of them (`restoreWatermark`), so after rescaling no key group
 * sees a watermark its old subtask had not reached.
 */
export abstract class KeyedOperator<K extends KeyEntry> {
  /** the operator's counters; `keys` counts the distinct keys with state */
  abstract readonly metrics: { keys: number };
  protected readonly keys = new Map<string, K>();
  protected readonly timers = new KeyedTimers<K>();
  protected readonly singleKeyField: string | null;
  protected wm = Number.NEGATIVE_INFINITY;
  private restoredWm: number | null = null;
  /** during `snapshotKeyGroups`: the states of each key group */
  private groupIndex: Map<number, K[]> | null = null;
  private readonly fireTimer = (k: K, time: number): void => this.onTimer(k, time);

  /**
   * @param strictTimers a timer at t fires once W > t (true: a buffered reading at ts = t is
   *   released once no reading with ts ≤ t can come) or once W ≥ t (false: a window [start, end)
   *   with its timer at `end` fires once no reading with ts < end can come)
   * @throws EngineError `INTERNAL` for an invalid key-group range
   */
  protected constructor(
    protected readonly cfg: KeyedOperatorConfig,
    private readonly strictTimers: boolean,
  ) {
    this.singleKeyField = cfg.keyFields.length === 1 ? cfg.keyFields[0] : null;
    checkKeyGroupRange(cfg);
  }

  /** The operator's current (combined input) watermark; −Infinity initially. */
  get currentWatermark(): number {
    return this.wm;
  }

  /** The combined input watermark advanced to `wm`: fires every due timer. Lower or equal values are ignored. */
  processWatermark(wm: number): void {
    if (!(wm > this.wm)) return;
    this.wm = wm;
    this.timers.fireDue(wm, this.strictTimers, this.fireTimer);
  }

  /** The bounded input ended: same as `processWatermark(+Infinity)`, which fires every timer. */
  endOfInput(): void {
    this.processWatermark(Number.POSITIVE_INFINITY);
  }

  /** A timer of `k` at `time` fired (W passed it); stale timers are the subclass's to skip. */
  protected abstract onTimer(k: K, time: number): void;

  /** A new, empty state for a key (not yet registered). */
  protected abstract createKey(key: string, keyGroup: number, keyValues: Value[] | null): K;

  /**
   * The state of `row`'s key, created (and counted) on its first record.
   * @throws EngineError `INTERNAL` if the key's group is not owned by this subtask
   */
  protected keyState(row: Row): K {
    const key = rowKey(row, this.singleKeyField, this.cfg.keyFields);
    const k = this.keys.get(key);
    if (k !== undefined) return k;
    const kf = this.cfg.keyFields;
    const values = kf.length > 1 ? kf.map((f) => row[f] ?? null) : null;
    return this.register(this.createKey(key, ownedKeyGroup(key, this.cfg), values));
  }

  /**
   * Creates and registers the state of a key read from the snapshot of `keyGroup`; with
   * `merge`, a key restored before is returned to add to (the window operator's windows).
   * @throws EngineError `PROTOCOL` if the key does not hash to `keyGroup`, or without `merge` was restored before
   */
  protected restoredKey(key: string, keyGroup: number, keyValues: Value[] | null, merge = false): K {
    checkRestoredKey(key, keyGroup, this.cfg.maxParallelism);
    const known = this.keys.get(key);
    if (known !== undefined) {
      if (merge) return known;
      throw new EngineError('PROTOCOL', `key '${key}' restored twice`);
    }
    return this.register(this.createKey(key, keyGroup, keyValues));
  }

  /**
   * Serialises the state of one key group (possibly for another subtask, after rescaling).
   * The returned bytes are a fresh buffer, owned by the caller.
   */
  abstract snapshotKeyGroup(keyGroup: number): Uint8Array;

  /**
   * The snapshots of key groups `start..end`, in group order: what a checkpoint takes of this
   * subtask. One pass over the keys sorts them into their groups first, so a snapshot costs
   * O(keys), not O(keys × groups) as one `snapshotKeyGroup` per group would.
   */
  snapshotKeyGroups(start: number, end: number): Uint8Array[] {
    const index = new Map<number, K[]>();
    for (const k of this.keys.values()) {
      if (k.keyGroup < start || k.keyGroup > end) continue;
      const list = index.get(k.keyGroup);
      if (list === undefined) index.set(k.keyGroup, [k]);
      else list.push(k);
    }
    this.groupIndex = index;
    try {
      const out: Uint8Array[] = [];
      for (let kg = start; kg <= end; kg++) out.push(this.snapshotKeyGroup(kg));
      return out;
    } finally {
      this.groupIndex = null;
    }
  }

  /**
   * The states to look through for `keyGroup` in `snapshotKeyGroup` (`writeSnapshotHead` keeps
   * only that group's): within `snapshotKeyGroups` just that group's, otherwise every key.
   */
  protected statesOf(keyGroup: number): Iterable<K> {
    if (this.groupIndex !== null) return this.groupIndex.get(keyGroup) ?? [];
    return this.keys.values();
  }

  /** Resumes at the minimum of the restored key groups' watermarks (`wm` is one group's). */
  protected restoreWatermark(wm: number): void {
    this.restoredWm = this.restoredWm === null ? wm : Math.min(this.restoredWm, wm);
    this.wm = this.restoredWm;
  }

  private register(k: K): K {
    this.keys.set(k.key, k);
    this.metrics.keys++;
    return k;
  }
}

/** A key state of a `BufferedKeyedOperator`: pending items in event-time order, and its live timer. */
export interface BufferedKey<T> extends KeyEntry {
  readonly buf: EventTimeBuffer<T>;
  /** the time of this key's live timer, NaN when none */
  timerTs: number;
}

/**
 * A keyed operator that processes each key's readings in event-time order (detect, running): an
 * accepted reading waits in its key's buffer until W has passed it (ts < W: the watermark promises
 * no more readings with ts < W), then `releaseDue` takes it. A key with pending readings has one
 * live timer, at the ts of its earliest pending reading.
 *
 * Lateness: a reading with ts < max(the watermark tagged on it by the source split that read it,
 * W) could no longer be put in order, so it is late: counted and passed to the late output, and
 * it changes no state. One with ts ≥ that is after everything already released, so releases never
 * need undoing; and lateness depends only on the record's tag, not on channel interleaving.
 */
export abstract class BufferedKeyedOperator<T, K extends BufferedKey<T>> extends KeyedOperator<K> {
  abstract override readonly metrics: { recordsIn: number; late: number; keys: number };

  /**
   * @param late the late output: a reading, its ts and the effective watermark it was late for
   * @param tieOrder orders items of equal ts (true = `a` after `b`); default: arrival order
   */
  protected constructor(
    cfg: KeyedOperatorConfig,
    private readonly late: (row: Row, ts: number, watermark: number) => void,
    private readonly tieOrder?: (a: T, b: T) => boolean,
  ) {
    super(cfg, true);
  }

  /** Readings buffered over all keys, waiting for the watermark (for metrics and tests). */
  get pendingReadings(): number {
    let n = 0;
    for (const k of this.keys.values()) n += k.buf.pending;
    return n;
  }

  /**
   * Counts a reading and decides its lateness: returns the state of its key, or undefined after
   * passing a late reading to the late output. The caller then `buffer`s what the reading keeps.
   * @param ts event time, ms
   * @param sourceWatermark the watermark of the source split that read the record, at read time
   * @throws EngineError `INTERNAL` if the record's key group is not owned by this subtask
   */
  protected acceptReading(row: Row, ts: number, sourceWatermark: number): K | undefined {
    this.metrics.recordsIn++;
    const effWm = Math.max(sourceWatermark, this.wm);
    if (ts < effWm) {
      this.metrics.late++;
      this.late(row, ts, effWm);
      return undefined;
    }
    return this.keyState(row);
  }

  /** Buffers `item` (what a pending reading keeps) at `ts` in `k`'s event-time order. */
  protected buffer(k: K, ts: number, item: T): void {
    if (k.buf.insert(ts, item, this.tieOrder)) this.setTimer(k, ts);
  }

  /** Takes, in order, every pending reading of `k` with ts < `wm` off its buffer. */
  protected abstract releaseDue(k: K, wm: number): void;

  protected override onTimer(k: K, time: number): void {
    if (k.timerTs !== time) return;
    k.timerTs = Number.NaN;
    this.releaseDue(k, this.wm);
    const next = k.buf.settle();
    if (!Number.isNaN(next)) this.setTimer(k, next);
  }

  /** After a key's pending readings were restored: arms its timer at the earliest. */
  protected restoredPending(k: K): void {
    if (k.buf.pending > 0) this.setTimer(k, k.buf.headTs);
  }

  private setTimer(k: K, t: number): void {
    if (k.timerTs === t) return;
    k.timerTs = t;
    this.timers.add(t, k);
  }
}
