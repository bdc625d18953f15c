import { describe, expect, it } from 'vitest';
import type { AggregateSpec, Row, WindowSpec } from '../../../core/spec/types.js';
import { keyGroupOf, keyGroupRange } from '../../../core/state/keygroups.js';
import { WindowOperator, type WindowOperatorConfig } from '../../../core/windows/window-operator.js';

const T0 = 1717200000000;
const tumbling10s: WindowSpec = { type: 'tumbling', sizeMs: 10_000, offsetMs: 0, allowedLatenessMs: 0 };
const aggs: AggregateSpec[] = [
  { output: 'count', kind: 'count' },
  { output: 'max', kind: 'max', field: 't' },
];

function make(over: Partial<WindowOperatorConfig> = {}) {
  const emitted: Row[] = [];
  const late: { row: Row; ts: number; watermark: number }[] = [];
  const op = new WindowOperator(
    {
      window: tumbling10s,
      aggregates: aggs,
      keyFields: ['id'],
      maxParallelism: 128,
      keyGroupStart: 0,
      keyGroupEnd: 127,
      ...over,
    },
    { emit: (r) => emitted.push(r), late: (row, ts, watermark) => late.push({ row, ts, watermark }) },
  );
  return { op, emitted, late };
}

describe('WindowOperator', () => {
  it('emits one row per key and window with key, bounds and aggregates', () => {
    const { op, emitted } = make();
    op.processElement({ id: 'a', t: 1 }, T0 + 1000, Number.NEGATIVE_INFINITY);
    op.processElement({ id: 'a', t: 3 }, T0 + 2000, Number.NEGATIVE_INFINITY);
    op.processWatermark(T0 + 9999);
    expect(emitted).toEqual([]);
    op.processWatermark(T0 + 10_000);
    expect(emitted).toEqual([{ key: 'a', windowStart: T0, windowEnd: T0 + 10_000, count: 2, max: 3 }]);
    expect(op.metrics).toEqual({ recordsIn: 2, late: 0, windowsEmitted: 1, keys: 1 });
  });

  it('fires in order of window end, then key, whatever the arrival order', () => {
    const { op, emitted } = make();
    const w = Number.NEGATIVE_INFINITY;
    op.processElement({ id: 'c', t: 1 }, T0 + 15_000, w);
    op.processElement({ id: 'b', t: 1 }, T0 + 1000, w);
    op.processElement({ id: 'a', t: 1 }, T0 + 12_000, w);
    op.processElement({ id: 'c', t: 1 }, T0 + 2000, w);
    op.processElement({ id: 'a', t: 1 }, T0 + 3000, w);
    op.endOfInput();
    expect(emitted.map((r) => [r.windowEnd as number, r.key])).toEqual([
      [T0 + 10_000, 'a'],
      [T0 + 10_000, 'b'],
      [T0 + 10_000, 'c'],
      [T0 + 20_000, 'a'],
      [T0 + 20_000, 'c'],
    ]);
  });

  it('names each key field in the output when there are several', () => {
    const { op, emitted } = make({ keyFields: ['house', 'room'] });
    op.processElement({ house: 'h1', room: 'kitchen', t: 5 }, T0, Number.NEGATIVE_INFINITY);
    op.endOfInput();
    expect(emitted).toEqual([
      { key: 'h1|kitchen', house: 'h1', room: 'kitchen', windowStart: T0, windowEnd: T0 + 10_000, count: 1, max: 5 },
    ]);
  });

  it('judges lateness by the source watermark carried by the record', () => {
    const { op, emitted, late } = make();
    op.processElement({ id: 'a', t: 1 }, T0 + 1000, Number.NEGATIVE_INFINITY);
    // the source split has moved to W = 10 s but the operator has not heard of it yet
    op.processElement({ id: 'a', t: 2 }, T0 + 2000, T0 + 10_000);
    expect(late).toEqual([{ row: { id: 'a', t: 2 }, ts: T0 + 2000, watermark: T0 + 10_000 }]);
    op.processWatermark(T0 + 10_000);
    expect(emitted.map((r) => r.count)).toEqual([1]);
  });

  it('judges lateness by the operator watermark when the record comes from a lagging split', () => {
    const { op, late } = make();
    op.processElement({ id: 'a', t: 1 }, T0 + 1000, Number.NEGATIVE_INFINITY);
    op.processWatermark(T0 + 31_000);
    op.processElement({ id: 'a', t: 2 }, T0 + 25_000, T0 + 23_000);
    expect(late.map((l) => l.watermark)).toEqual([T0 + 31_000]);
    expect(op.metrics.late).toBe(1);
  });

  it('never fires a window twice and ignores a watermark that goes back', () => {
    const { op, emitted } = make();
    op.processElement({ id: 'a', t: 1 }, T0, Number.NEGATIVE_INFINITY);
    op.processWatermark(T0 + 20_000);
    op.processWatermark(T0 + 5000);
    op.processWatermark(T0 + 20_000);
    op.endOfInput();
    expect(emitted).toHaveLength(1);
    expect(op.currentWatermark).toBe(Number.POSITIVE_INFINITY);
  });

  it('adds a partially late reading only to its sliding windows that are still open', () => {
    const { op, emitted, late } = make({
      window: { type: 'sliding', sizeMs: 10_000, slideMs: 5000, offsetMs: 0, allowedLatenessMs: 0 },
    });
    op.processElement({ id: 'a', t: 9 }, T0 + 9000, T0 + 12_000);
    expect(late).toEqual([]);
    op.endOfInput();
    expect(emitted.map((r) => [(r.windowStart as number) - T0, r.count])).toEqual([[5000, 1]]);
  });

  it('uses an empty key for a null key value', () => {
    const { op, emitted } = make();
    op.processElement({ id: null, t: 1 }, T0, Number.NEGATIVE_INFINITY);
    op.endOfInput();
    expect(emitted[0].key).toBe('');
  });

  it('refuses a record whose key group belongs to another subtask', () => {
    const g = keyGroupOf('a', 128);
    const { op } = make({ keyGroupStart: (g + 1) % 128, keyGroupEnd: (g + 1) % 128 });
    expect(() => op.processElement({ id: 'a', t: 1 }, T0, 0)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });

  it('rejects allowed lateness with session windows and a negative lateness', () => {
    expect(() => make({ window: { type: 'session', gapMs: 5000, allowedLatenessMs: 1000 } })).toThrow(
      expect.objectContaining({ code: 'SPEC_INVALID' }),
    );
    expect(() => make({ window: { ...tumbling10s, allowedLatenessMs: -1 } })).toThrow(
      expect.objectContaining({ code: 'SPEC_INVALID' }),
    );
  });
});

describe('WindowOperator sessions', () => {
  const session5s: WindowSpec = { type: 'session', gapMs: 5000, allowedLatenessMs: 0 };

  it('extends a session by each reading within the gap', () => {
    const { op, emitted } = make({ window: session5s });
    for (const ts of [0, 3000, 7000]) op.processElement({ id: 'a', t: ts }, T0 + ts, Number.NEGATIVE_INFINITY);
    op.processElement({ id: 'a', t: 1 }, T0 + 20_000, Number.NEGATIVE_INFINITY);
    op.endOfInput();
    expect(emitted.map((r) => [(r.windowStart as number) - T0, (r.windowEnd as number) - T0, r.count])).toEqual([
      [0, 12_000, 3],
      [20_000, 25_000, 1],
    ]);
  });

  it('merges sessions that merely touch, as Flink does', () => {
    const { op, emitted } = make({ window: session5s });
    op.processElement({ id: 'a', t: 1 }, T0, Number.NEGATIVE_INFINITY); // [0, 5)
    op.processElement({ id: 'a', t: 2 }, T0 + 10_000, Number.NEGATIVE_INFINITY); // [10, 15)
    op.processElement({ id: 'a', t: 3 }, T0 + 5000, Number.NEGATIVE_INFINITY); // [5, 10) touches both
    op.endOfInput();
    expect(emitted).toEqual([{ key: 'a', windowStart: T0, windowEnd: T0 + 15_000, count: 3, max: 3 }]);
  });

  it('counts a reading late when its session would already have closed', () => {
    const { op, late } = make({ window: session5s });
    op.processElement({ id: 'a', t: 1 }, T0 + 1000, T0 + 6000);
    expect(late).toHaveLength(1);
  });
});

describe('WindowOperator snapshots', () => {
  function feed(op: WindowOperator, from: number, to: number) {
    for (let i = from; i < to; i++) {
      const ts = T0 + i * 700;
      op.processElement({ id: `s-${i % 7}`, t: i }, ts, ts - 2000);
      op.processWatermark(ts - 2000);
    }
  }

  it('restores key groups at another parallelism and gives the same rows', () => {
    const whole = make();
    feed(whole.op, 0, 100);
    whole.op.endOfInput();

    const before = make();
    feed(before.op, 0, 40);
    const snaps = Array.from({ length: 128 }, (_, kg) => before.op.snapshotKeyGroup(kg));

    const after = [0, 1].map((i) => {
      const { start, end } = keyGroupRange(i, 2, 128);
      const m = make({ keyGroupStart: start, keyGroupEnd: end });
      for (let kg = start; kg <= end; kg++) m.op.restoreKeyGroup(kg, snaps[kg]);
      return m;
    });
    for (let i = 40; i < 100; i++) {
      const ts = T0 + i * 700;
      const row = { id: `s-${i % 7}`, t: i };
      const kg = keyGroupOf(row.id, 128);
      const target = after[kg <= keyGroupRange(0, 2, 128).end ? 0 : 1].op;
      target.processElement(row, ts, ts - 2000);
      for (const a of after) a.op.processWatermark(ts - 2000);
    }
    for (const a of after) a.op.endOfInput();
    const sortRows = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();
    expect(sortRows([...before.emitted, ...after[0].emitted, ...after[1].emitted])).toEqual(sortRows(whole.emitted));
  });

  it('snapshots a range of key groups in one pass, byte for byte as one group at a time', () => {
    const { op } = make();
    for (let i = 0; i < 3000; i++) op.processElement({ id: `k-${i % 500}`, t: i }, T0 + i, Number.NEGATIVE_INFINITY);
    const { start, end } = keyGroupRange(1, 2, 128);
    const one = Array.from({ length: end - start + 1 }, (_, i) => op.snapshotKeyGroup(start + i));
    expect(op.snapshotKeyGroups(start, end)).toEqual(one);
    expect(one.filter((b) => b.byteLength > 16).length).toBeGreaterThan(50); // most groups hold keys
  });

  it('rejects a snapshot of another layout or garbage bytes', () => {
    const a = make();
    a.op.processElement({ id: 'x', t: 1 }, T0, 0);
    const kg = keyGroupOf('x', 128);
    const bytes = a.op.snapshotKeyGroup(kg);
    const other = make({ aggregates: [{ output: 'count', kind: 'count' }] });
    expect(() => other.op.restoreKeyGroup(kg, bytes)).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
    expect(() => make().op.restoreKeyGroup(kg, new Uint8Array([1, 2, 3]))).toThrow(
      expect.objectContaining({ code: 'PROTOCOL' }),
    );
  });
});

describe('WindowOperator with allowed lateness', () => {
  const lateness5s: WindowSpec = { ...tumbling10s, allowedLatenessMs: 5000 };
  const view = (rows: Row[]) => rows.map((r) => [(r.windowStart as number) - T0, r.count, r.max]);

  //  [0, 10s) fires at W = 10 s, takes updates until W = 15 s, then is gone
  it('fires on time, emits an updated row per reading within the lateness, then drops', () => {
    const { op, emitted, late } = make({ window: lateness5s });
    op.processElement({ id: 'a', t: 1 }, T0 + 1000, T0 + 1000);
    op.processWatermark(T0 + 10_000);
    expect(view(emitted)).toEqual([[0, 1, 1]]);
    op.processElement({ id: 'a', t: 7 }, T0 + 2000, T0 + 12_000);
    expect(view(emitted)).toEqual([
      [0, 1, 1],
      [0, 2, 7],
    ]);
    op.processWatermark(T0 + 15_000);
    op.processElement({ id: 'a', t: 9 }, T0 + 3000, T0 + 15_000);
    expect(late).toHaveLength(1);
    op.endOfInput();
    expect(emitted).toHaveLength(2);
    expect(op.openWindows).toBe(0);
  });

  it('emits the same rows whether the operator watermark lags the record tag or not', () => {
    const run = (lagging: boolean) => {
      const m = make({ window: lateness5s });
      m.op.processElement({ id: 'a', t: 1 }, T0 + 1000, T0 + 1000);
      if (!lagging) m.op.processWatermark(T0 + 12_000);
      m.op.processElement({ id: 'a', t: 7 }, T0 + 2000, T0 + 12_000);
      m.op.processWatermark(T0 + 12_000);
      m.op.endOfInput();
      return view(m.emitted);
    };
    expect(run(true)).toEqual(run(false));
    expect(run(true)).toEqual([
      [0, 1, 1],
      [0, 2, 7],
    ]);
  });

  it('opens a new window for a reading within the lateness of a window that got nothing on time', () => {
    const { op, emitted } = make({ window: lateness5s });
    op.processWatermark(T0 + 12_000);
    op.processElement({ id: 'b', t: 4 }, T0 + 4000, T0 + 12_000);
    expect(view(emitted)).toEqual([[0, 1, 4]]);
    op.endOfInput();
    expect(emitted).toHaveLength(1);
  });

  it('keeps the fired flag through a snapshot', () => {
    const a = make({ window: lateness5s });
    a.op.processElement({ id: 'a', t: 1 }, T0 + 1000, T0 + 1000);
    a.op.processWatermark(T0 + 11_000);
    const kg = keyGroupOf('a', 128);
    const b = make({ window: lateness5s });
    b.op.restoreKeyGroup(kg, a.op.snapshotKeyGroup(kg));
    expect(b.op.currentWatermark).toBe(T0 + 11_000);
    b.op.processElement({ id: 'a', t: 8 }, T0 + 2000, T0 + 11_000);
    b.op.endOfInput();
    expect(view(b.emitted)).toEqual([[0, 2, 8]]);
  });
});
