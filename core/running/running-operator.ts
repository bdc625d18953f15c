/**
 * The keyed running aggregate behind a job's `running` step (issue 4, item 7): a continuous,
 * non-windowed aggregate per key (the PyFlink walkthrough's `GROUP BY sensor_id` with an upserting
 * sink), emitting the key's current value as an upsert row `{ key, ...aggregates, updatedAt }`.
 *
 * Order: event time, like the detect operator. Each key buffers its accepted readings until the
 * operator watermark W has passed them (ts < W), then adds them in (ts) order and emits one row
 * per distinct event time after adding every reading with that ts. Why not arrival order (as
 * PyFlink does)? The sequence of rows a key emits must not depend on how the channels of several
 * source splits interleave, or on where a restore cut the input: with event-time order it is the
 * same at any parallelism and after any recovery, so an upsert sink's intermediate states and an
 * append sink's lines are reproducible, not only the final value. The price is latency (a reading
 * shows once the watermark passes it, `outOfOrdernessMs` later) and lateness: a reading with
 * ts < max(its source split's watermark tag, operator watermark) is late, counted and passed to
 * `RunningOutput.late` (the late-data output), and is not in the aggregate.
 *
 * Values: the aggregates of core/windows/aggregates.ts (`count()`, `sum`, `avg`, `min`, `max`),
 * with exact sums (`addToSum`/`readSum`), so a total is the correctly rounded sum of the same
 * readings whatever the order they were added in. `updatedAt` is the event time (ms) of the
 * latest reading the row includes (never wall-clock time, which would differ between runs).
 * Readings that tie on ts are all added before the row is emitted, so their order is invisible.
 *
 * State per key (in the key-group snapshots, like the detect operator's): the accumulator, the
 * latest ts added, and the pending readings (their aggregate input fields). Keys are kept for the
 * life of the job (a running total never expires).
 */

import { ByteReader, ByteWriter } from '../codec/bytes.js';
import { EngineError } from '../errors/index.js';
import type { AggregateSpec, Row, Value } from '../spec/types.js';
import { EventTimeBuffer } from '../state/event-time-buffer.js';
import { type BufferedKey, BufferedKeyedOperator, checkOwnedKeyGroup } from '../state/keyed-operator.js';
import {
  readSnapshotHead,
  readValue,
  readValues,
  writeSnapshotHead,
  writeValue,
  writeValues,
} from '../state/snapshot-values.js';
import { type AggregateLayout, compileAggregates } from '../windows/aggregates.js';

export interface RunningOperatorConfig {
  aggregates: AggregateSpec[];
  /** keyBy fields; the key is `keyOf(row, keyFields)` */
  keyFields: string[];
  /** number of key groups */
  maxParallelism: number;
  /** inclusive key-group range owned by this subtask; records of other groups are an INTERNAL error */
  keyGroupStart: number;
  keyGroupEnd: number;
}

export interface RunningOutput {
  /** the key's current value: `{ key, ...keyFields (2+), ...aggregates, updatedAt }`; a later row for the key supersedes */
  emit(row: Row): void;
  /** a reading that came after the watermark had passed its event time; `watermark` = the effective one */
  late(row: Row, ts: number, watermark: number): void;
}

export interface RunningOperatorMetrics {
  recordsIn: number;
  late: number;
  /** rows emitted (updates) */
  updates: number;
  /** distinct keys with state */
  keys: number;
}

/** The output field with the event time (ms) of the latest reading a running row includes. */
export const UPDATED_AT_FIELD = 'updatedAt';

class KeyState implements BufferedKey<Row> {
  readonly acc: number[];
  /** the latest ts added to `acc`; −Infinity before the first */
  maxTs = Number.NEGATIVE_INFINITY;
  /** pending readings (their aggregate inputs), by ts, arrival order among equal ts */
  readonly buf = new EventTimeBuffer<Row>();
  /** the ts of this key's live timer, NaN when none */
  timerTs = Number.NaN;
  constructor(
    readonly key: string,
    readonly keyGroup: number,
    readonly keyValues: Value[] | null,
    layout: AggregateLayout,
  ) {
    this.acc = new Array<number>(layout.stride).fill(0);
    layout.init(this.acc, 0);
  }
  get pending(): number {
    return this.buf.pending;
  }
}

const SNAPSHOT_MAGIC = 0x52; // 'R'
const SNAPSHOT_VERSION = 1;

export class RunningOperator extends BufferedKeyedOperator<Row, KeyState> {
  readonly metrics: RunningOperatorMetrics = { recordsIn: 0, late: 0, updates: 0, keys: 0 };

  private readonly layout: AggregateLayout;
  /** the distinct aggregate input fields a pending reading keeps */
  private readonly inputs: string[];

  /** @throws EngineError `SPEC_INVALID` for invalid aggregates, `INTERNAL` for an invalid key-group range */
  constructor(
    cfg: RunningOperatorConfig,
    private readonly out: RunningOutput,
  ) {
    super(cfg, (row, ts, wm) => out.late(row, ts, wm));
    this.layout = compileAggregates(cfg.aggregates);
    if (this.layout.stride > 255)
      throw new EngineError(
        'SPEC_INVALID',
        `running: too many aggregates (${this.layout.stride} state slots, max 255)`,
      );
    this.inputs = [...new Set(cfg.aggregates.flatMap((a) => (a.field === undefined ? [] : [a.field])))];
  }

  /**
   * Buffers an accepted reading, or passes it to the late output when ts < the effective watermark.
   * @param ts event time, ms
   * @param sourceWatermark the watermark of the source split that read the record, at read time
   * @throws EngineError `INTERNAL` if the record's key group is not owned by this subtask
   */
  processElement(row: Row, ts: number, sourceWatermark: number): void {
    const ks = this.acceptReading(row, ts, sourceWatermark);
    if (ks !== undefined) this.buffer(ks, ts, this.project(row));
  }

  /** The current row of `key` (as last emitted), or undefined when it has none yet (tests, diagnostics). */
  current(key: string): Row | undefined {
    const ks = this.keys.get(key);
    return ks === undefined || ks.maxTs === Number.NEGATIVE_INFINITY ? undefined : this.resultRow(ks);
  }

  protected createKey(key: string, keyGroup: number, keyValues: Value[] | null): KeyState {
    return new KeyState(key, keyGroup, keyValues, this.layout);
  }

  /** The aggregate inputs of a reading (what a pending reading keeps, and its snapshot holds). */
  private project(row: Row): Row {
    const p: Row = {};
    for (const f of this.inputs) p[f] = row[f] ?? null;
    return p;
  }

  /** Adds every pending reading of `ks` with ts < wm, emitting after the last of each distinct ts. */
  protected releaseDue(ks: KeyState, wm: number): void {
    const b = ks.buf;
    while (b.pending > 0 && b.headTs < wm) {
      const ts = b.headTs;
      this.layout.add(ks.acc, 0, b.headItem);
      ks.maxTs = ts;
      b.shift();
      if (b.pending === 0 || b.headTs !== ts) this.emit(ks);
    }
  }

  private resultRow(ks: KeyState): Row {
    const row: Row = { key: ks.key };
    if (ks.keyValues !== null) {
      const kf = this.cfg.keyFields;
      for (let f = 0; f < kf.length; f++) row[kf[f]] = ks.keyValues[f];
    }
    this.layout.writeResult(ks.acc, 0, row);
    row[UPDATED_AT_FIELD] = ks.maxTs;
    return row;
  }

  private emit(ks: KeyState): void {
    this.metrics.updates++;
    this.out.emit(this.resultRow(ks));
  }

  // ---- checkpoints --------------------------------------------------------------------------

  /**
   * Serialises the state of one key group. Layout (little-endian, core/codec/bytes.ts):
   * ```
   * u8 magic 'R', u8 version 1, u8 stride, f64 operatorWatermark, u32 keyCount
   * per key (sorted): string key, key values (core/state/snapshot-values.ts), f64 maxTs,
   *   stride × f64 accumulator, u32 pendingCount,
   *   pendingCount × (f64 ts, inputCount × tagged value of each aggregate input field)
   * ```
   * The returned bytes are a fresh buffer, owned by the caller.
   */
  snapshotKeyGroup(keyGroup: number): Uint8Array {
    const w = new ByteWriter(256);
    const head = { magic: SNAPSHOT_MAGIC, version: SNAPSHOT_VERSION, shape: this.layout.stride };
    const inputs = this.inputs;
    for (const ks of writeSnapshotHead(w, head, this.wm, this.statesOf(keyGroup), keyGroup)) {
      w.string(ks.key);
      writeValues(w, ks.keyValues);
      w.f64(ks.maxTs);
      for (let i = 0; i < ks.acc.length; i++) w.f64(ks.acc[i]);
      w.u32(ks.pending);
      ks.buf.forEach((ts, row) => {
        w.f64(ts);
        for (let f = 0; f < inputs.length; f++) writeValue(w, row[inputs[f]] ?? null);
      });
    }
    return w.toBytes();
  }

  /**
   * Restores one key group written by `snapshotKeyGroup` (possibly by another subtask, after
   * rescaling). Call before any record. The operator watermark becomes the minimum of the
   * restored key groups' watermarks.
   * @throws EngineError `PROTOCOL` for malformed bytes, another operator's snapshot, or an
   *   accumulator layout that differs from this job's aggregates; `INTERNAL` if the key group is
   *   not this subtask's
   */
  restoreKeyGroup(keyGroup: number, bytes: Uint8Array): void {
    checkOwnedKeyGroup(keyGroup, this.cfg);
    const r = new ByteReader(bytes);
    const stride = this.layout.stride;
    const { watermark: wm, keyCount } = readSnapshotHead(
      r,
      { magic: SNAPSHOT_MAGIC, version: SNAPSHOT_VERSION, shape: stride },
      'running-operator',
      (got) => `snapshot has ${got} accumulator slots per key, the job's running step needs ${stride}`,
    );
    this.restoreWatermark(wm);
    const inputs = this.inputs;
    for (let k = 0; k < keyCount; k++) {
      const key = r.string() ?? '';
      const ks = this.restoredKey(key, keyGroup, readValues(r));
      ks.maxTs = r.f64();
      for (let i = 0; i < stride; i++) ks.acc[i] = r.f64();
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const ts = r.f64();
        const row: Row = {};
        for (let f = 0; f < inputs.length; f++) row[inputs[f]] = readValue(r);
        ks.buf.append(ts, row);
      }
      this.restoredPending(ks);
    }
  }
}
