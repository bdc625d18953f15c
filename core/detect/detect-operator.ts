/**
 * The keyed event-time spike detector behind a job's `detect` step (issue 4, item 5).
 *
 * Per key (sensor) it buffers the accepted readings until the operator watermark W has passed
 * them (ts < W: Fluxo's watermark promises no more readings with ts < W), releases them in
 * event-time order, and evaluates the configured rules on each released reading, in rule order:
 * - `jump`: |v − v_prev| ≥ minDelta;
 * - `rate`: |v − v_prev| / ((ts − ts_prev) / 60000) > perMinute; skipped when ts = ts_prev;
 * - `zscore`: |v − μ| > k · max(σ, minStdDev), evaluated only once `warmup` readings have entered
 *   the statistics; μ and σ² are the exponentially weighted mean and variance of the key's
 *   earlier readings, updated after each reading with (Tony Finch, "Incremental calculation of
 *   weighted mean and variance", Univ. of Cambridge Computing Service, 2009, §9):
 *   `δ = x − μ; μ ← μ + α·δ; σ² ← (1 − α)·(σ² + α·δ²)`, starting from μ = x₁, σ² = 0.
 * `prev` is the key's previous released reading: a reading rejected before this operator (dead
 * letter, filtered) or a late one never gets here, so it never becomes a predecessor; the first
 * reading of a key has none (jump and rate do not fire on it). Every reading, alerting or not,
 * becomes the predecessor and enters the statistics.
 *
 * Lateness (as the window operator): a reading with ts < max(source watermark tagged on the
 * record, operator watermark) could no longer be put in order, so it is late: counted and passed
 * to `DetectOutput.late`, and changes no state. A reading with ts ≥ that watermark is always
 * after every reading already released (they all have ts < W), so releases never need undoing.
 *
 * Determinism: the buffer of a key is ordered by (ts, value). Readings that tie on both are
 * indistinguishable to every rule and to the alert row, so the order in which channels happened
 * to deliver them cannot change any output; and lateness depends only on the record's source
 * watermark tag. Hence the same input gives the same alerts at any parallelism and after a
 * restore (the buffers, predecessors and statistics are in the key-group snapshots).
 *
 * Timers: a key with pending readings has a timer at the ts of its earliest pending reading
 * (`BufferedKeyedOperator`, core/state/keyed-operator.ts, shared with the running operator);
 * `processWatermark` only touches keys with due readings. Per reading, the hot path
 * allocates nothing beyond amortised array growth (and a timer bucket when a key's buffer was empty).
 */

import { ByteReader, ByteWriter } from '../codec/bytes.js';
import type { DetectRule, DetectSpec, Row, Value } from '../spec/types.js';
import { EventTimeBuffer } from '../state/event-time-buffer.js';
import { type BufferedKey, BufferedKeyedOperator, checkOwnedKeyGroup } from '../state/keyed-operator.js';
import { readSnapshotHead, readValues, writeSnapshotHead, writeValues } from '../state/snapshot-values.js';

export interface DetectOperatorConfig {
  detect: DetectSpec;
  /** keyBy fields; the key (the alert's `sensor`) is `keyOf(row, keyFields)` */
  keyFields: string[];
  /** number of key groups */
  maxParallelism: number;
  /** inclusive key-group range owned by this subtask; records of other groups are an INTERNAL error */
  keyGroupStart: number;
  keyGroupEnd: number;
}

/** An alert: `{ sensor, ts, value, rule, detail }` (`ts` in ms since the epoch, `detail` human-readable). */
export interface DetectOutput {
  /** an alert row; `ts` is the event time of the reading that raised it */
  emit(row: Row): void;
  /** a reading that came after the watermark had passed its event time; `watermark` = the effective one */
  late(row: Row, ts: number, watermark: number): void;
}

export interface DetectOperatorMetrics {
  recordsIn: number;
  late: number;
  alerts: number;
  /** distinct keys with state */
  keys: number;
}

/** Output row fields of the detect operator, in order. */
export const ALERT_FIELDS = [
  { name: 'sensor', type: 'string' },
  { name: 'ts', type: 'int' },
  { name: 'value', type: 'double' },
  { name: 'rule', type: 'string' },
  { name: 'detail', type: 'string' },
] as const;

/** The state of one key. Pending readings (their values) wait in `buf`, sorted by (ts, value). */
class KeyState implements BufferedKey<number> {
  /** readings released so far (the EWMA's count) */
  count = 0;
  hasPrev = false;
  prevTs = 0;
  prevValue = 0;
  /** per zscore rule: mean, variance (2 numbers each) */
  readonly ew: number[];
  readonly buf = new EventTimeBuffer<number>();
  /** the ts of this key's live timer, NaN when none */
  timerTs = Number.NaN;
  constructor(
    readonly key: string,
    readonly keyGroup: number,
    readonly keyValues: Value[] | null,
    zscoreRules: number,
  ) {
    this.ew = new Array<number>(zscoreRules * 2).fill(0);
  }
  get pending(): number {
    return this.buf.pending;
  }
}

/** Equal event times are released in order of value: the alerts do not depend on arrival order. */
const byValue = (a: number, b: number): boolean => a > b;

const SNAPSHOT_MAGIC = 0x44; // 'D'
const SNAPSHOT_VERSION = 1;

export class DetectOperator extends BufferedKeyedOperator<number, KeyState> {
  readonly metrics: DetectOperatorMetrics = { recordsIn: 0, late: 0, alerts: 0, keys: 0 };

  private readonly rules: DetectRule[];
  /** for each rule, its index among the zscore rules (its EWMA slot), or −1 */
  private readonly ewSlot: number[];
  private readonly zscoreRules: number;
  private readonly valueField: string;

  /** @throws EngineError `INTERNAL` for an invalid key-group range */
  constructor(
    cfg: DetectOperatorConfig,
    private readonly out: DetectOutput,
  ) {
    super(cfg, (row, ts, wm) => out.late(row, ts, wm), byValue);
    this.rules = cfg.detect.rules;
    let z = 0;
    this.ewSlot = this.rules.map((r) => (r.type === 'zscore' ? z++ : -1));
    this.zscoreRules = z;
    this.valueField = cfg.detect.valueField;
  }

  /**
   * Buffers an accepted reading, or passes it to the late output when ts < the effective watermark.
   * @param ts event time, ms
   * @param sourceWatermark the watermark of the source split that read the record, at read time
   * @returns false when the value field is not a finite number (the caller dead-letters it; no state changes)
   * @throws EngineError `INTERNAL` if the record's key group is not owned by this subtask
   */
  processElement(row: Row, ts: number, sourceWatermark: number): boolean {
    const value = row[this.valueField];
    if (typeof value !== 'number' || !Number.isFinite(value)) return false;
    const ks = this.acceptReading(row, ts, sourceWatermark);
    if (ks !== undefined) this.buffer(ks, ts, value);
    return true;
  }

  // ---- buffering and release ----------------------------------------------------------------

  protected createKey(key: string, keyGroup: number, keyValues: Value[] | null): KeyState {
    return new KeyState(key, keyGroup, keyValues, this.zscoreRules);
  }

  /** Evaluates and drops every pending reading of `ks` with ts < wm. */
  protected releaseDue(ks: KeyState, wm: number): void {
    const b = ks.buf;
    while (b.pending > 0 && b.headTs < wm) {
      this.evaluate(ks, b.headTs, b.headItem);
      b.shift();
    }
  }

  /** Runs every rule on one released reading, then makes it the predecessor and updates the statistics. */
  private evaluate(ks: KeyState, ts: number, v: number): void {
    const rules = this.rules;
    for (let r = 0; r < rules.length; r++) {
      const rule = rules[r];
      switch (rule.type) {
        case 'jump': {
          if (!ks.hasPrev) break;
          const d = v - ks.prevValue;
          if (Math.abs(d) >= rule.minDelta)
            this.alert(
              ks,
              ts,
              v,
              rule.name,
              `jump ${signed(d)} from ${fmt(ks.prevValue)} (${ts - ks.prevTs} ms earlier)`,
            );
          break;
        }
        case 'rate': {
          if (!ks.hasPrev || ts === ks.prevTs) break;
          const perMin = ((v - ks.prevValue) * 60_000) / (ts - ks.prevTs);
          if (Math.abs(perMin) > rule.perMinute)
            this.alert(
              ks,
              ts,
              v,
              rule.name,
              `rate ${signed(perMin)}/min from ${fmt(ks.prevValue)} over ${ts - ks.prevTs} ms`,
            );
          break;
        }
        case 'zscore': {
          if (ks.count < rule.warmup || ks.count === 0) break;
          const s = this.ewSlot[r] * 2;
          const mean = ks.ew[s];
          const sd = Math.sqrt(ks.ew[s + 1]);
          const scale = Math.max(sd, rule.minStdDev);
          const dev = v - mean;
          if (Math.abs(dev) > rule.k * scale)
            this.alert(
              ks,
              ts,
              v,
              rule.name,
              `z ${scale > 0 ? signed(dev / scale) : dev > 0 ? '+inf' : '-inf'} (mean ${fmt(mean)}, std ${fmt(sd)}, k ${rule.k})`,
            );
          break;
        }
      }
    }
    // statistics (Finch 2009, §9), after the rules saw the earlier readings' values
    for (let r = 0; r < rules.length; r++) {
      const rule = rules[r];
      if (rule.type !== 'zscore') continue;
      const s = this.ewSlot[r] * 2;
      if (ks.count === 0) {
        ks.ew[s] = v;
        ks.ew[s + 1] = 0;
      } else {
        const diff = v - ks.ew[s];
        const incr = rule.alpha * diff;
        ks.ew[s] += incr;
        ks.ew[s + 1] = (1 - rule.alpha) * (ks.ew[s + 1] + diff * incr);
      }
    }
    ks.count++;
    ks.hasPrev = true;
    ks.prevTs = ts;
    ks.prevValue = v;
  }

  private alert(ks: KeyState, ts: number, value: number, rule: string, detail: string): void {
    const row: Row = { sensor: ks.key };
    if (ks.keyValues !== null) {
      const kf = this.cfg.keyFields;
      for (let f = 0; f < kf.length; f++) if (!(kf[f] in ALERT_ROW_NAMES)) row[kf[f]] = ks.keyValues[f];
    }
    row.ts = ts;
    row.value = value;
    row.rule = rule;
    row.detail = detail;
    this.metrics.alerts++;
    this.out.emit(row);
  }

  // ---- checkpoints --------------------------------------------------------------------------

  /**
   * Serialises the state of one key group: the operator watermark and, per key (sorted), its
   * predecessor, statistics and pending readings. Layout (little-endian, core/codec/bytes.ts):
   * ```
   * u8 magic 'D', u8 version 1, u8 zscoreRules, f64 operatorWatermark, u32 keyCount
   * per key: string key, key values (core/state/snapshot-values.ts), f64 count, u8 hasPrev,
   *          f64 prevTs, f64 prevValue, zscoreRules × (f64 mean, f64 variance),
   *          u32 pendingCount, pendingCount × (f64 ts, f64 value) in release order
   * ```
   * The returned bytes are a fresh buffer, owned by the caller.
   */
  snapshotKeyGroup(keyGroup: number): Uint8Array {
    const w = new ByteWriter(256);
    const head = { magic: SNAPSHOT_MAGIC, version: SNAPSHOT_VERSION, shape: this.zscoreRules };
    for (const ks of writeSnapshotHead(w, head, this.wm, this.statesOf(keyGroup), keyGroup)) {
      w.string(ks.key);
      writeValues(w, ks.keyValues);
      w.f64(ks.count);
      w.u8(ks.hasPrev ? 1 : 0);
      w.f64(ks.prevTs);
      w.f64(ks.prevValue);
      for (let i = 0; i < ks.ew.length; i++) w.f64(ks.ew[i]);
      w.u32(ks.pending);
      ks.buf.forEach((ts, value) => {
        w.f64(ts);
        w.f64(value);
      });
    }
    return w.toBytes();
  }

  /**
   * Restores one key group written by `snapshotKeyGroup` (possibly by another subtask, after
   * rescaling). Call before any record. The operator watermark becomes the minimum of the
   * restored key groups' watermarks.
   * @throws EngineError `PROTOCOL` for malformed bytes, a window-operator snapshot, or a number
   *   of zscore rules that differs from this job's; `INTERNAL` if the key group is not this subtask's
   */
  restoreKeyGroup(keyGroup: number, bytes: Uint8Array): void {
    checkOwnedKeyGroup(keyGroup, this.cfg);
    const r = new ByteReader(bytes);
    const z = this.zscoreRules;
    const { watermark: wm, keyCount } = readSnapshotHead(
      r,
      { magic: SNAPSHOT_MAGIC, version: SNAPSHOT_VERSION, shape: z },
      'detect-operator',
      (got) => `snapshot has ${got} zscore rule statistics, the job's detect step has ${z}`,
    );
    this.restoreWatermark(wm);
    for (let k = 0; k < keyCount; k++) {
      const key = r.string() ?? '';
      const ks = this.restoredKey(key, keyGroup, readValues(r));
      ks.count = r.f64();
      ks.hasPrev = r.u8() === 1;
      ks.prevTs = r.f64();
      ks.prevValue = r.f64();
      for (let i = 0; i < ks.ew.length; i++) ks.ew[i] = r.f64();
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const ts = r.f64();
        ks.buf.append(ts, r.f64());
      }
      this.restoredPending(ks);
    }
  }
}

/** Field names of the alert row that a key field of the same name must not overwrite. */
const ALERT_ROW_NAMES: Record<string, true> = { sensor: true, ts: true, value: true, rule: true, detail: true };

/** A number for an alert's detail: at most 4 decimals, trailing zeros dropped. */
function fmt(x: number): string {
  return String(Math.round(x * 10_000) / 10_000);
}

function signed(x: number): string {
  return x >= 0 ? `+${fmt(x)}` : fmt(x);
}
