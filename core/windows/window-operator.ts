/**
 * The keyed event-time window operator (tumbling, sliding, session) with incremental
 * aggregation, in the manner of Flink's `WindowOperator` with an `AggregateFunction`.
 *
 * Semantics (shared/cases/README.md):
 * - windows are `[start, end)`; window `[s, e)` of a key fires (one final row) once the
 *   operator watermark W ≥ e; at end of input (W = +∞) every open window fires; a window that
 *   received nothing emits nothing;
 * - lateness is per window: a reading goes into each of its windows still open, where "open" is
 *   judged against the **effective watermark** `max(sourceWatermark, operator watermark)`.
 *   `sourceWatermark` is the watermark of the source split that read the record, tagged at read
 *   time, so the decision does not depend on how channels interleave (DESIGN.md, determinism);
 *   a reading with no open window left is late: counted and passed to `WindowOutput.late`;
 * - session windows (gap G): a reading is the proto-session `[ts, ts + G)`; it merges with
 *   every open session of its key that it intersects, using Flink's `TimeWindow.intersects`
 *   (touching sessions, `end == start`, merge too); a session is `[first ts, last ts + G)`.
 *   Sessions that the effective watermark has already closed are not merged into.
 *
 * State: `Map<key, KeyWindows>`; each key keeps its open windows sorted by start with their
 * accumulators in one flat `number[]` (see aggregates.ts). Timers: windows of all keys share
 * ends for tumbling/sliding, so timers are buckets `Map<end, KeyWindows[]>` plus a min-heap of
 * distinct ends; `processWatermark` costs O(fired · log) and never scans idle keys. Stale
 * session timers (after a merge moved the end) are skipped when popped.
 *
 * Allowed lateness L > 0 (tumbling and sliding; Flink's `allowedLateness` with `EventTimeTrigger`):
 * a window still fires once at `W ≥ end`, but is kept until `W ≥ end + L`, then purged. A reading
 * that arrives for it in between (judged by the effective watermark) is added and the window
 * immediately emits an **updated** row for the same `(key, windowStart)`: later rows supersede
 * earlier ones, so upsert sinks overwrite and append sinks keep every version. With L > 0 every
 * row carries `update` (UPDATE_FIELD): 0 for the on-time firing, n for the n-th update of that
 * key and window (the per-window count is part of the snapshot). If the record's tag says the window has fired but this
 * operator has not fired it yet (its watermark lags the tag), the window is first fired with its
 * old content, so the rows emitted do not depend on channel timing. With L > 0 a window is late
 * only once `end + L ≤ W`. Session windows with L > 0 are not supported yet (`SPEC_INVALID`).
 */

import { ByteReader, ByteWriter } from '../codec/bytes.js';
import { EngineError } from '../errors/index.js';
import type { AggregateSpec, Row, Value, WindowSpec } from '../spec/types.js';
import { checkOwnedKeyGroup, type KeyEntry, KeyedOperator } from '../state/keyed-operator.js';
import { readSnapshotHead, readValues, writeSnapshotHead, writeValues } from '../state/snapshot-values.js';
import { type AggregateLayout, compileAggregates } from './aggregates.js';
import { createAssigner, type WindowAssigner } from './assigners.js';

export interface WindowOperatorConfig {
  window: WindowSpec;
  aggregates: AggregateSpec[];
  /** keyBy fields; the key is `keyOf(row, keyFields)` */
  keyFields: string[];
  /** number of key groups (default 128 in the job spec) */
  maxParallelism: number;
  /** inclusive key-group range owned by this subtask; records of other groups are an INTERNAL error */
  keyGroupStart: number;
  keyGroupEnd: number;
}

export interface WindowOutput {
  /**
   * a final window result: { key, ...keyFields (each by name, only when there are 2+ key fields), windowStart, windowEnd, ...aggregates }.
   * With allowedLatenessMs > 0 a window may emit again (an update); the later row for the same (key, windowStart) supersedes.
   */
  emit(row: Row): void;
  /** a reading dropped because all of its windows had fired; `watermark` = the effective watermark that made it late */
  late(row: Row, ts: number, watermark: number): void;
}

export interface WindowOperatorMetrics {
  recordsIn: number;
  late: number;
  windowsEmitted: number;
  /** distinct keys seen (keys are kept for the life of the operator) */
  keys: number;
}

/** Open windows of one key. `acc` holds `n · stride` doubles in the order of `starts`. */
class KeyWindows implements KeyEntry {
  n = 0;
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly acc: number[] = [];
  /**
   * how many rows the window has emitted: 0 before it fired, 1 after its on-time row, 1 + n after
   * n updates (only kept open after firing when allowed lateness > 0)
   */
  readonly fired: number[] = [];
  constructor(
    readonly key: string,
    readonly keyGroup: number,
    /** values of the key fields (only with 2+ key fields), for the output row */
    readonly keyValues: Value[] | null,
  ) {}
}

const SNAPSHOT_MAGIC = 0x46; // 'F'
/** 3: `u32 fired` (rows emitted) per window; 2 (still restored): `u8 fired` flag */
const SNAPSHOT_VERSION = 3;

/**
 * The field of a window result that numbers its versions when the window has allowed lateness
 * > 0: 0 for the on-time firing, n for the n-th update of the same (key, windowStart). Absent
 * (not written) when allowed lateness is 0, so on-time-only jobs keep their row shape.
 */
export const UPDATE_FIELD = 'update';

export class WindowOperator extends KeyedOperator<KeyWindows> {
  readonly metrics: WindowOperatorMetrics = { recordsIn: 0, late: 0, windowsEmitted: 0, keys: 0 };

  private readonly assigner: WindowAssigner;
  private readonly aggs: AggregateLayout;
  private readonly stride: number;
  private readonly latenessMs: number;
  private readonly keyFields: string[];
  private readonly starts: number[];
  declare protected readonly cfg: WindowOperatorConfig;

  /**
   * @throws EngineError `SPEC_INVALID` for an invalid window or aggregate spec, or
   *   `allowedLatenessMs` negative, or > 0 with session windows (not supported yet);
   *   `INTERNAL` for an invalid key-group range
   */
  constructor(
    cfg: WindowOperatorConfig,
    private readonly out: WindowOutput,
  ) {
    super(cfg, false);
    this.assigner = createAssigner(cfg.window);
    this.aggs = compileAggregates(cfg.aggregates);
    this.stride = this.aggs.stride;
    this.latenessMs = cfg.window.allowedLatenessMs ?? 0;
    if (!(this.latenessMs >= 0) || !Number.isFinite(this.latenessMs)) {
      throw new EngineError('SPEC_INVALID', `allowedLatenessMs must be a finite number ≥ 0, got ${this.latenessMs}`);
    }
    if (this.latenessMs > 0 && this.assigner.merging) {
      throw new EngineError(
        'SPEC_INVALID',
        `allowedLatenessMs > 0 with session windows is not supported yet (got ${this.latenessMs})`,
      );
    }
    this.keyFields = cfg.keyFields;
    this.starts = new Array<number>(this.assigner.maxWindowsPerElement).fill(0);
  }

  /** Number of open windows over all keys (for metrics and tests). */
  get openWindows(): number {
    let n = 0;
    for (const kw of this.keys.values()) n += kw.n;
    return n;
  }

  /**
   * Adds a reading to each of its windows that is still open.
   * @param ts event time, ms
   * @param sourceWatermark the watermark of the source split that read the record, at read time
   * @throws EngineError `INTERNAL` if the record's key group is not owned by this subtask
   */
  processElement(row: Row, ts: number, sourceWatermark: number): void {
    this.metrics.recordsIn++;
    const kw = this.keyState(row);
    const effWm = Math.max(sourceWatermark, this.wm);
    if (this.assigner.merging) {
      this.addToSession(kw, row, ts, effWm);
      return;
    }
    const starts = this.starts;
    const n = this.assigner.assign(ts, starts);
    const assigner = this.assigner;
    const lateness = this.latenessMs;
    let added = 0;
    for (let i = 0; i < n; i++) {
      const start = starts[i];
      const end = assigner.windowEnd(start); // not start + sizeMs: calendar windows vary in length
      if (end + lateness <= effWm) continue; // this window has fired: late for it
      const idx = this.findOrCreate(kw, start, end);
      if (lateness > 0 && end <= effWm) {
        // in its allowed-lateness period: fire the old content first if this operator has not
        // yet (its watermark lags the record's tag), then add and emit the updated row
        if (kw.fired[idx] === 0 && kw.acc[idx * this.stride] > 0) this.emitWindow(kw, idx);
        this.aggs.add(kw.acc, idx * this.stride, row);
        this.emitWindow(kw, idx);
      } else {
        this.aggs.add(kw.acc, idx * this.stride, row);
      }
      added++;
    }
    if (added === 0) {
      this.metrics.late++;
      this.out.late(row, ts, effWm);
    }
  }

  // processWatermark (KeyedOperator) fires every window with end ≤ wm, in order of (windowEnd, key)

  // ---- state helpers ------------------------------------------------------------------------

  protected createKey(key: string, keyGroup: number, keyValues: Value[] | null): KeyWindows {
    return new KeyWindows(key, keyGroup, keyValues);
  }

  /** Index of the window of `kw` starting at `start`, creating it (sorted by start) if absent. */
  private findOrCreate(kw: KeyWindows, start: number, end: number): number {
    const starts = kw.starts;
    let i = 0;
    for (; i < kw.n; i++) {
      const s = starts[i];
      if (s === start) return i;
      if (s > start) break;
    }
    this.insertWindow(kw, i, start, end);
    this.addWindowTimers(end, kw);
    return i;
  }

  private insertWindow(kw: KeyWindows, i: number, start: number, end: number): void {
    const stride = this.stride;
    if (i === kw.n) {
      kw.starts.push(start);
      kw.ends.push(end);
      kw.fired.push(0);
      const base = kw.acc.length;
      for (let j = 0; j < stride; j++) kw.acc.push(0);
      this.aggs.init(kw.acc, base);
    } else {
      kw.starts.splice(i, 0, start);
      kw.ends.splice(i, 0, end);
      kw.fired.splice(i, 0, 0);
      const fill = new Array<number>(stride).fill(0);
      kw.acc.splice(i * stride, 0, ...fill);
      this.aggs.init(kw.acc, i * stride);
    }
    kw.n++;
  }

  private removeWindow(kw: KeyWindows, i: number): void {
    if (i === kw.n - 1) {
      kw.starts.pop();
      kw.ends.pop();
      kw.fired.pop();
      kw.acc.length = i * this.stride;
    } else {
      kw.starts.splice(i, 1);
      kw.ends.splice(i, 1);
      kw.fired.splice(i, 1);
      kw.acc.splice(i * this.stride, this.stride);
    }
    kw.n--;
  }

  private addTimer(end: number, kw: KeyWindows): void {
    this.timers.add(end, kw);
  }

  /** Timers of a new window: fire at `end`; with allowed lateness also clean up at `end + L`. */
  private addWindowTimers(end: number, kw: KeyWindows): void {
    this.addTimer(end, kw);
    if (this.latenessMs > 0) this.addTimer(end + this.latenessMs, kw);
  }

  /** Timer `time` of `kw` is due: fire the window ending at `time`, and/or drop one past its lateness. */
  protected onTimer(kw: KeyWindows, time: number): void {
    const lateness = this.latenessMs;
    for (let i = 0; i < kw.n; i++) {
      const end = kw.ends[i];
      if (end === time && kw.fired[i] === 0) {
        this.emitWindow(kw, i);
        if (lateness === 0) {
          this.removeWindow(kw, i);
          i--;
        }
      } else if (lateness > 0 && end + lateness === time) {
        this.removeWindow(kw, i);
        i--;
      }
    }
  }

  private emitWindow(kw: KeyWindows, i: number): void {
    const row: Row = { key: kw.key };
    if (kw.keyValues !== null) {
      for (let f = 0; f < this.keyFields.length; f++) row[this.keyFields[f]] = kw.keyValues[f];
    }
    row.windowStart = kw.starts[i];
    row.windowEnd = kw.ends[i];
    this.aggs.writeResult(kw.acc, i * this.stride, row);
    if (this.latenessMs > 0) row[UPDATE_FIELD] = kw.fired[i];
    kw.fired[i]++;
    this.metrics.windowsEmitted++;
    this.out.emit(row);
  }

  private addToSession(kw: KeyWindows, row: Row, ts: number, effWm: number): void {
    const gap = this.assigner.sizeMs;
    const lateness = this.latenessMs;
    let newStart = ts;
    let newEnd = ts + gap;
    // open sessions of this key that intersect [ts, ts + gap] (Flink TimeWindow.intersects)
    let first = -1;
    let last = -1;
    for (let i = 0; i < kw.n; i++) {
      const s = kw.starts[i];
      const e = kw.ends[i];
      if (e + lateness <= effWm) continue; // closed for this reading
      if (s <= ts + gap && e >= ts) {
        if (first < 0) first = i;
        last = i;
        if (s < newStart) newStart = s;
        if (e > newEnd) newEnd = e;
      }
    }
    if (first < 0) {
      if (newEnd + lateness <= effWm) {
        this.metrics.late++;
        this.out.late(row, ts, effWm);
        return;
      }
      let i = 0;
      while (i < kw.n && kw.starts[i] < newStart) i++;
      this.insertWindow(kw, i, newStart, newEnd);
      this.addTimer(newEnd, kw);
      this.aggs.add(kw.acc, i * this.stride, row);
      return;
    }
    // merge every intersecting open session in [first, last] into `first`
    const stride = this.stride;
    for (let i = last; i > first; i--) {
      const s = kw.starts[i];
      const e = kw.ends[i];
      if (e + lateness <= effWm || !(s <= ts + gap && e >= ts)) continue;
      this.aggs.merge(kw.acc, first * stride, kw.acc, i * stride);
      this.removeWindow(kw, i);
    }
    const oldEnd = kw.ends[first];
    kw.starts[first] = newStart;
    kw.ends[first] = newEnd;
    if (newEnd !== oldEnd) this.addTimer(newEnd, kw);
    this.aggs.add(kw.acc, first * stride, row);
    // keep starts sorted (the merged start can only move left, past no open session it did not absorb)
    this.resortFrom(kw, first);
  }

  private resortFrom(kw: KeyWindows, i: number): void {
    const stride = this.stride;
    while (i > 0 && kw.starts[i - 1] > kw.starts[i]) {
      swap(kw.starts, i - 1, i);
      swap(kw.ends, i - 1, i);
      swap(kw.fired, i - 1, i);
      for (let j = 0; j < stride; j++) swap(kw.acc, (i - 1) * stride + j, i * stride + j);
      i--;
    }
  }

  // ---- checkpoints --------------------------------------------------------------------------

  /**
   * Serialises the state of one key group: the operator watermark and, per key (sorted), its
   * open windows and accumulators. Binary layout (little-endian, see core/codec/bytes.ts):
   * ```
   * u8 magic 'F', u8 version 3, u8 stride, f64 operatorWatermark, u32 keyCount
   * per key: string key, u8 keyValueCount, per value: u8 tag (0 null, 1 string, 2 number, 3 bool) + value,
   *          u32 windowCount, per window: f64 start, f64 end, u32 fired (rows emitted), stride × f64 accumulator
   * ```
   * The returned bytes are a fresh buffer, owned by the caller (safe to transfer).
   */
  snapshotKeyGroup(keyGroup: number): Uint8Array {
    const w = new ByteWriter(1024);
    const head = { magic: SNAPSHOT_MAGIC, version: SNAPSHOT_VERSION, shape: this.stride };
    const keys = writeSnapshotHead(w, head, this.wm, this.statesOf(keyGroup), keyGroup, (kw) => kw.n > 0);
    for (const kw of keys) {
      w.string(kw.key);
      writeValues(w, kw.keyValues);
      w.u32(kw.n);
      for (let i = 0; i < kw.n; i++) {
        w.f64(kw.starts[i]);
        w.f64(kw.ends[i]);
        w.u32(kw.fired[i]);
        for (let j = 0; j < this.stride; j++) w.f64(kw.acc[i * this.stride + j]);
      }
    }
    return w.toBytes();
  }

  /**
   * Restores one key group written by `snapshotKeyGroup` (possibly by another subtask, after
   * rescaling). Call before any record. The operator watermark becomes the minimum of the
   * watermarks of all restored key groups (never later than any subtask was at the checkpoint).
   * @throws EngineError `PROTOCOL` for malformed bytes or an accumulator layout that does not
   *   match this job; `INTERNAL` if the key group is not owned by this subtask
   */
  restoreKeyGroup(keyGroup: number, bytes: Uint8Array): void {
    checkOwnedKeyGroup(keyGroup, this.cfg);
    const r = new ByteReader(bytes);
    const stride = this.stride;
    // version 2 (a u8 fired flag) is still read: savepoints taken before update counts
    const version = bytes[1] === 2 ? 2 : SNAPSHOT_VERSION;
    const { watermark: wm, keyCount } = readSnapshotHead(
      r,
      { magic: SNAPSHOT_MAGIC, version, shape: stride },
      'window-operator',
      (got) => `snapshot accumulator stride ${got} does not match the job's aggregates (${stride})`,
    );
    this.restoreWatermark(wm);
    for (let k = 0; k < keyCount; k++) {
      const key = r.string() ?? '';
      const kw = this.restoredKey(key, keyGroup, readValues(r), true);
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const start = r.f64();
        const end = r.f64();
        const fired = version === 2 ? r.u8() : r.u32();
        const idx = kw.n;
        this.insertWindow(kw, idx, start, end);
        kw.fired[idx] = fired;
        for (let j = 0; j < stride; j++) kw.acc[idx * stride + j] = r.f64();
        if (fired === 0) this.addTimer(end, kw);
        if (this.latenessMs > 0) this.addTimer(end + this.latenessMs, kw);
      }
      this.resortAll(kw);
    }
  }

  private resortAll(kw: KeyWindows): void {
    for (let i = 1; i < kw.n; i++) this.resortFrom(kw, i);
  }
}

function swap(a: number[], i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}
