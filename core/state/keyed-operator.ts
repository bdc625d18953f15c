/**
 * Building blocks of Fluxo's keyed event-time operators (the window operator, the detect
 * operator): key extraction, key-group ownership checks, and event-time timers per key.
 */
import { EngineError } from '../errors/index.js';
import type { Row } from '../spec/types.js';
import { NumberMinHeap } from '../windows/heap.js';
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
