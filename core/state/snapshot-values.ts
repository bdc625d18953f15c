/**
 * Helpers shared by the keyed operators' per-key-group snapshots (the window operator and the
 * detect operator): tagged key-field values, snapshot heads, and the names of key-group parts.
 */
import type { ByteReader, ByteWriter } from '../codec/bytes.js';
import { EngineError } from '../errors/index.js';
import type { Value } from '../spec/types.js';
import { compareKeys } from './keyed-operator.js';

/** Writes one row value as `u8 tag` (0 null, 1 string, 2 number, 3 bool) followed by the value. */
export function writeValue(w: ByteWriter, v: Value): void {
  if (v === null) w.u8(0);
  else if (typeof v === 'string') {
    w.u8(1);
    w.string(v);
  } else if (typeof v === 'number') {
    w.u8(2);
    w.f64(v);
  } else {
    w.u8(3);
    w.u8(v ? 1 : 0);
  }
}

/**
 * Reads a value written by `writeValue`.
 * @throws EngineError `PROTOCOL` for an unknown tag
 */
export function readValue(r: ByteReader): Value {
  const tag = r.u8();
  switch (tag) {
    case 0:
      return null;
    case 1:
      return r.string();
    case 2:
      return r.f64();
    case 3:
      return r.u8() === 1;
    default:
      throw new EngineError('PROTOCOL', `unknown value tag ${tag} in snapshot`);
  }
}

/** Writes `u8 count` then each value (the key-field values of a key with 2+ key fields). */
export function writeValues(w: ByteWriter, values: readonly Value[] | null): void {
  const vals = values ?? [];
  w.u8(vals.length);
  for (const v of vals) writeValue(w, v);
}

/** Reads values written by `writeValues`; `null` when there were none. */
export function readValues(r: ByteReader): Value[] | null {
  const n = r.u8();
  if (n === 0) return null;
  const vals: Value[] = [];
  for (let i = 0; i < n; i++) vals.push(readValue(r));
  return vals;
}

/** The key group N of a part named `<operator>.kg-N`, or `undefined` when `part` is not one. */
export function keyGroupOfPart(operator: string, part: string): number | undefined {
  const prefix = `${operator}.kg-`;
  if (!part.startsWith(prefix)) return undefined;
  const rest = part.slice(prefix.length);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}

/** The fixed head of a keyed operator's key-group snapshot: what it is, and the operator watermark. */
export interface SnapshotHead {
  /** identifies the operator kind ('F' window, 'D' detect) */
  magic: number;
  version: number;
  /** one byte of layout that must match the job (the window's accumulator stride, the number of zscore rules) */
  shape: number;
}

/**
 * Writes `u8 magic, u8 version, u8 shape, f64 watermark, u32 keyCount` and returns the states of
 * `keyGroup` (those `keep` accepts) sorted by key, for the caller to write in that order.
 */
export function writeSnapshotHead<T extends { readonly key: string; readonly keyGroup: number }>(
  w: ByteWriter,
  head: SnapshotHead,
  watermark: number,
  states: Iterable<T>,
  keyGroup: number,
  keep?: (state: T) => boolean,
): T[] {
  w.u8(head.magic);
  w.u8(head.version);
  w.u8(head.shape);
  w.f64(watermark);
  const keys: T[] = [];
  for (const s of states) if (s.keyGroup === keyGroup && (keep === undefined || keep(s))) keys.push(s);
  keys.sort(compareKeys);
  w.u32(keys.length);
  return keys;
}

/**
 * Reads the head written by `writeSnapshotHead`.
 * @param what the operator, for errors (`window-operator`)
 * @param shapeMismatch the message when the shape byte differs from `head.shape`
 * @throws EngineError `PROTOCOL` when magic, version or shape differ
 */
export function readSnapshotHead(
  r: ByteReader,
  head: SnapshotHead,
  what: string,
  shapeMismatch: (got: number) => string,
): { watermark: number; keyCount: number } {
  if (r.u8() !== head.magic || r.u8() !== head.version)
    throw new EngineError('PROTOCOL', `not a ${what} key-group snapshot (magic/version)`);
  const shape = r.u8();
  if (shape !== head.shape) throw new EngineError('PROTOCOL', shapeMismatch(shape));
  const watermark = r.f64();
  return { watermark, keyCount: r.u32() };
}
