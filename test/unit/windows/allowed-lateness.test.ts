/**
 * Allowed lateness of the window operator (Flink's `allowedLateness`): on-time firing (`update: 0`),
 * updated rows for readings within the lateness (`update: n`), purge at W ≥ end + L, late beyond
 * it, and the update counts through a snapshot. Expected rows are computed by hand.
 *
 * Tumbling 10 s, L = 5 s, one key `a`:
 * ```
 *   [0 s, 10 s)           fires at W = 10 s (update 0)
 *               [10 s, 15 s) lateness: each reading adds and emits update 1, 2, …
 *                            W ≥ 15 s: purged; a reading for it is late
 * ```
 */
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../../../core/codec/bytes.js';
import type { AggregateSpec, Row, WindowSpec } from '../../../core/spec/types.js';
import { keyGroupOf } from '../../../core/state/keygroups.js';
import { UPDATE_FIELD, WindowOperator } from '../../../core/windows/window-operator.js';

const T0 = 1717200000000;
const S = 1000;
const aggs: AggregateSpec[] = [
  { output: 'count', kind: 'count' },
  { output: 'max', kind: 'max', field: 't' },
];
const tumbling: WindowSpec = { type: 'tumbling', sizeMs: 10 * S, offsetMs: 0, allowedLatenessMs: 5 * S };

function make(window: WindowSpec = tumbling) {
  const emitted: Row[] = [];
  const late: { row: Row; ts: number; watermark: number }[] = [];
  const op = new WindowOperator(
    { window, aggregates: aggs, keyFields: ['id'], maxParallelism: 128, keyGroupStart: 0, keyGroupEnd: 127 },
    { emit: (r) => emitted.push(r), late: (row, ts, watermark) => late.push({ row, ts, watermark }) },
  );
  return { op, emitted, late };
}

/** A window result of key `a`: [start, end) relative to T0 in s. */
const row = (startS: number, endS: number, count: number, max: number, update: number): Row => ({
  key: 'a',
  windowStart: T0 + startS * S,
  windowEnd: T0 + endS * S,
  count,
  max,
  update,
});

describe('allowed lateness, tumbling 10 s with L = 5 s', () => {
  it('emits the on-time row as update 0, then one updated row per reading within the lateness', () => {
    const { op, emitted } = make();
    op.processElement({ id: 'a', t: 1 }, T0 + 1 * S, T0 + 1 * S);
    op.processElement({ id: 'a', t: 3 }, T0 + 4 * S, T0 + 4 * S);
    op.processWatermark(T0 + 10 * S);
    expect(emitted).toEqual([row(0, 10, 2, 3, 0)]);
    op.processElement({ id: 'a', t: 7 }, T0 + 2 * S, T0 + 12 * S);
    op.processElement({ id: 'a', t: 5 }, T0 + 9 * S, T0 + 15 * S - 1);
    expect(emitted).toEqual([row(0, 10, 2, 3, 0), row(0, 10, 3, 7, 1), row(0, 10, 4, 7, 2)]);
    expect(op.metrics.late).toBe(0);
  });

  it('purges the window at W = end + L; a reading for it after that is late, and nothing more is emitted', () => {
    const { op, emitted, late } = make();
    op.processElement({ id: 'a', t: 1 }, T0 + 1 * S, T0 + 1 * S);
    op.processWatermark(T0 + 10 * S);
    expect(op.openWindows).toBe(1); // fired, kept for updates
    op.processWatermark(T0 + 15 * S - 1);
    expect(op.openWindows).toBe(1);
    op.processWatermark(T0 + 15 * S);
    expect(op.openWindows).toBe(0);
    op.processElement({ id: 'a', t: 9 }, T0 + 3 * S, T0 + 15 * S);
    expect(late).toEqual([{ row: { id: 'a', t: 9 }, ts: T0 + 3 * S, watermark: T0 + 15 * S }]);
    op.endOfInput();
    expect(emitted).toEqual([row(0, 10, 1, 1, 0)]);
    expect(op.metrics).toMatchObject({ late: 1, windowsEmitted: 1 });
  });

  it('judges "beyond the lateness" by the record tag (source-split watermark), not only the operator watermark', () => {
    const { op, emitted, late } = make();
    op.processElement({ id: 'a', t: 1 }, T0 + 1 * S, T0 + 1 * S);
    // the operator watermark still lags at 11 s, but the record's split was at 15 s: late
    op.processWatermark(T0 + 11 * S);
    op.processElement({ id: 'a', t: 2 }, T0 + 2 * S, T0 + 15 * S);
    expect(late).toHaveLength(1);
    expect(emitted).toEqual([row(0, 10, 1, 1, 0)]);
  });

  it('numbers the rows of each window separately (sliding 10 s / 5 s, L = 5 s)', () => {
    const sliding: WindowSpec = {
      type: 'sliding',
      sizeMs: 10 * S,
      slideMs: 5 * S,
      offsetMs: 0,
      allowedLatenessMs: 5 * S,
    };
    const { op, emitted } = make(sliding);
    // 7 s belongs to [0, 10) and [5, 15)
    op.processElement({ id: 'a', t: 1 }, T0 + 7 * S, T0 + 7 * S);
    op.processWatermark(T0 + 12 * S); // [0, 10) fires
    // 8 s at W = 12 s: [0, 10) is in its lateness (update 1), [5, 15) is still open
    op.processElement({ id: 'a', t: 4 }, T0 + 8 * S, T0 + 12 * S);
    op.endOfInput();
    expect(emitted).toEqual([row(0, 10, 1, 1, 0), row(0, 10, 2, 4, 1), row(5, 15, 2, 4, 0)]);
  });

  it('keeps the update count through a snapshot taken in the lateness period, and purges after the restore', () => {
    const a = make();
    a.op.processElement({ id: 'a', t: 1 }, T0 + 1 * S, T0 + 1 * S);
    a.op.processWatermark(T0 + 10 * S);
    a.op.processElement({ id: 'a', t: 7 }, T0 + 2 * S, T0 + 12 * S);
    a.op.processWatermark(T0 + 12 * S);
    const kg = keyGroupOf('a', 128);
    const bytes = a.op.snapshotKeyGroup(kg);

    const b = make();
    b.op.restoreKeyGroup(kg, bytes);
    expect(b.op.currentWatermark).toBe(T0 + 12 * S);
    b.op.processElement({ id: 'a', t: 5 }, T0 + 9 * S, T0 + 13 * S);
    expect(b.emitted).toEqual([row(0, 10, 3, 7, 2)]);
    b.op.processWatermark(T0 + 15 * S);
    expect(b.op.openWindows).toBe(0);
    b.op.processElement({ id: 'a', t: 9 }, T0 + 3 * S, T0 + 15 * S);
    expect(b.late).toHaveLength(1);
    b.op.endOfInput();
    expect(b.emitted).toHaveLength(1);
  });

  it('restores a version 2 snapshot (a fired flag, no count) as a window that fired once', () => {
    const a = make();
    a.op.processElement({ id: 'a', t: 1 }, T0 + 1 * S, T0 + 1 * S);
    a.op.processWatermark(T0 + 10 * S);
    const kg = keyGroupOf('a', 128);
    // rewrite the v3 snapshot (u32 fired) as v2 (u8 fired)
    const r = new ByteReader(a.op.snapshotKeyGroup(kg));
    const w = new ByteWriter(256);
    r.u8();
    r.u8();
    const stride = r.u8();
    w.u8(0x46);
    w.u8(2);
    w.u8(stride);
    w.f64(r.f64());
    w.u32(r.u32());
    w.string(r.string() ?? '');
    w.u8(r.u8());
    w.u32(r.u32());
    w.f64(r.f64());
    w.f64(r.f64());
    w.u8(r.u32());
    for (let j = 0; j < stride; j++) w.f64(r.f64());
    const b = make();
    b.op.restoreKeyGroup(kg, w.toBytes());
    b.op.processElement({ id: 'a', t: 8 }, T0 + 2 * S, T0 + 11 * S);
    expect(b.emitted).toEqual([row(0, 10, 2, 8, 1)]);
  });

  it('writes no update field when the allowed lateness is 0', () => {
    const { op, emitted } = make({ ...tumbling, allowedLatenessMs: 0 });
    op.processElement({ id: 'a', t: 1 }, T0 + 1 * S, T0 + 1 * S);
    op.endOfInput();
    expect(emitted).toEqual([{ key: 'a', windowStart: T0, windowEnd: T0 + 10 * S, count: 1, max: 1 }]);
    expect(UPDATE_FIELD in (emitted[0] as Row)).toBe(false);
  });
});
