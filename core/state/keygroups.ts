/**
 * Key groups: the unit in which keyed state is partitioned, stored, snapshotted and moved when a
 * job is rescaled. Mirrors Flink's `KeyGroupRangeAssignment`:
 *
 * - `keyGroup = murmur3_32(utf8(key)) mod maxParallelism` (Flink hashes `key.hashCode()` with its
 *   own murmur finaliser; Fluxo keys are always strings, so it hashes their UTF-8 bytes instead);
 * - subtask `i` of `p` owns the contiguous, inclusive range
 *   `[ceil(i·maxP / p), floor(((i+1)·maxP − 1) / p)]` (`computeKeyGroupRangeForOperatorIndex`);
 * - key group `g` belongs to subtask `floor(g·p / maxP)` (`computeOperatorIndexForKeyGroup`).
 *
 * The two are consistent: every key group in `[0, maxP)` is owned by exactly one subtask.
 */
import type { Row } from '../spec/types.js';

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

let scratch = new Uint8Array(256);
const encoder = new TextEncoder();

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixH(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number, len: number): number {
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function murmurBytes(bytes: Uint8Array, len: number, seed: number): number {
  let h = seed | 0;
  const blocks = len & ~3;
  let i = 0;
  for (; i < blocks; i += 4) {
    h = mixH(h, bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
  }
  const rest = len & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[i + 2] << 16;
    if (rest >= 2) k ^= bytes[i + 1] << 8;
    k ^= bytes[i];
    h ^= mixK(k);
  }
  return fmix(h, len);
}

/**
 * MurmurHash3_x86_32 of the UTF-8 bytes of `s`, as an unsigned 32-bit integer.
 * ASCII strings are hashed straight from their char codes (no allocation); others are encoded
 * into a reused scratch buffer first. Reference vectors (checked against the `mmh3` Python
 * package 5.3.0): `""`→0, `"hello"`→0x248bfa47, `"The quick brown fox jumps over the lazy dog"`
 * →0x2e4ff723 (all seed 0).
 * @param seed 32-bit seed, default 0
 */
export function murmur3_32(s: string, seed = 0): number {
  const len = s.length;
  let h = seed | 0;
  const blocks = len & ~3;
  let i = 0;
  for (; i < blocks; i += 4) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) > 0x7f) return murmurNonAscii(s, seed);
    h = mixH(h, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24));
  }
  const rest = len & 3;
  if (rest > 0) {
    const c0 = s.charCodeAt(i);
    const c1 = rest >= 2 ? s.charCodeAt(i + 1) : 0;
    const c2 = rest === 3 ? s.charCodeAt(i + 2) : 0;
    if ((c0 | c1 | c2) > 0x7f) return murmurNonAscii(s, seed);
    h ^= mixK(c0 | (c1 << 8) | (c2 << 16));
  }
  return fmix(h, len);
}

function murmurNonAscii(s: string, seed: number): number {
  if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3);
  const { written } = encoder.encodeInto(s, scratch);
  return murmurBytes(scratch, written, seed);
}

function checkParallelism(parallelism: number, maxParallelism: number): void {
  if (!Number.isInteger(maxParallelism) || maxParallelism < 1 || maxParallelism > 32768) {
    throw new RangeError(`maxParallelism must be an integer in [1, 32768], got ${maxParallelism}`);
  }
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > maxParallelism) {
    throw new RangeError(`parallelism must be an integer in [1, maxParallelism=${maxParallelism}], got ${parallelism}`);
  }
}

/** The key group of `key`: `murmur3_32(key) mod maxParallelism`, in `[0, maxParallelism)`. */
export function keyGroupOf(key: string, maxParallelism: number): number {
  return murmur3_32(key) % maxParallelism;
}

/**
 * The inclusive key-group range `{ start, end }` owned by `subtask` (0-based) of `parallelism`
 * (Flink `KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex`). When
 * `parallelism == maxParallelism` each subtask owns one group.
 * @throws RangeError if `parallelism` is not in `[1, maxParallelism]` or `subtask` not in `[0, parallelism)`
 */
export function keyGroupRange(
  subtask: number,
  parallelism: number,
  maxParallelism: number,
): { start: number; end: number } {
  checkParallelism(parallelism, maxParallelism);
  if (!Number.isInteger(subtask) || subtask < 0 || subtask >= parallelism) {
    throw new RangeError(`subtask must be an integer in [0, ${parallelism}), got ${subtask}`);
  }
  const start = Math.floor((subtask * maxParallelism + parallelism - 1) / parallelism);
  const end = Math.floor(((subtask + 1) * maxParallelism - 1) / parallelism);
  return { start, end };
}

/**
 * The subtask that owns `keyGroup`: `floor(keyGroup · parallelism / maxParallelism)`
 * (Flink `computeOperatorIndexForKeyGroup`).
 */
export function subtaskForKeyGroup(keyGroup: number, parallelism: number, maxParallelism: number): number {
  return Math.floor((keyGroup * parallelism) / maxParallelism);
}

/**
 * The string key of `row` for `keyBy(fields)`.
 * - one field: `String(value)`, with `null`/missing → `''` (a string value is returned as is,
 *   without allocation);
 * - several fields: each value as above, joined with `'|'`. A `'|'` inside a value is not
 *   escaped, so `a|b` + `c` and `a` + `b|c` share a key; key fields are sensor/room/house ids in
 *   practice. Keep key values free of `'|'` if that matters.
 * - no fields: `''` (all records share one key).
 */
export function keyOf(row: Row, fields: string[]): string {
  if (fields.length === 1) {
    const v = row[fields[0]];
    return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
  }
  let out = '';
  for (let i = 0; i < fields.length; i++) {
    const v = row[fields[i]];
    if (i > 0) out += '|';
    if (v !== null && v !== undefined) out += String(v);
  }
  return out;
}
