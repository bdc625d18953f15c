/**
 * The running (non-windowed) keyed aggregate: event-time order, one row per distinct ts, exact
 * sums, lateness, and snapshot/restore at another parallelism giving the rows of an unbroken run.
 * ```
 *  arrival:  s1@3000=1  s1@1000=2  s1@2000=4 | W=2500              | end of input
 *  emitted:                                  | s1@1000, s1@2000    | s1@3000
 * ```
 */
import { describe, expect, it } from 'vitest';
import { RunningOperator } from '../../../core/running/running-operator.js';
import type { AggregateSpec, Row } from '../../../core/spec/types.js';
import { keyGroupOf, keyGroupRange } from '../../../core/state/keygroups.js';

const MAXP = 8;
const AGGS: AggregateSpec[] = [
  { output: 'sum', kind: 'sum', field: 't' },
  { output: 'count', kind: 'count' },
  { output: 'max', kind: 'max', field: 't' },
];

function make(range = { start: 0, end: MAXP - 1 }) {
  const rows: Row[] = [];
  const late: Row[] = [];
  const op = new RunningOperator(
    { aggregates: AGGS, keyFields: ['id'], maxParallelism: MAXP, keyGroupStart: range.start, keyGroupEnd: range.end },
    { emit: (r) => rows.push(r), late: (r) => late.push(r) },
  );
  return { op, rows, late };
}
const NEG = Number.NEGATIVE_INFINITY;

describe('the running aggregate', () => {
  it('adds readings in event-time order once the watermark passes them and emits the running value', () => {
    const { op, rows } = make();
    op.processElement({ id: 's1', t: 1 }, 3000, NEG);
    op.processElement({ id: 's1', t: 2 }, 1000, NEG);
    op.processElement({ id: 's1', t: 4 }, 2000, NEG);
    expect(rows).toEqual([]);
    op.processWatermark(2500);
    expect(rows).toEqual([
      { key: 's1', sum: 2, count: 1, max: 2, updatedAt: 1000 },
      { key: 's1', sum: 6, count: 2, max: 4, updatedAt: 2000 },
    ]);
    op.endOfInput();
    expect(rows[2]).toEqual({ key: 's1', sum: 7, count: 3, max: 4, updatedAt: 3000 });
  });

  it('emits once per distinct event time, after every reading with that time', () => {
    const { op, rows } = make();
    op.processElement({ id: 's1', t: 0.5 }, 1000, NEG);
    op.processElement({ id: 's1', t: 0.25 }, 1000, NEG);
    op.processElement({ id: 's2', t: 5 }, 1000, NEG);
    op.endOfInput();
    expect(rows).toEqual([
      {
        key: 's1',
        sum: 0.75,
        count: 2,
        max: 0.5,
        updatedAt: 1000,
      },
      { key: 's2', sum: 5, count: 1, max: 5, updatedAt: 1000 },
    ]);
  });

  it('keeps exact sums: the total does not depend on the order readings were added in', () => {
    const values = [1e16, 1, -1e16, 0.1, 0.2, 0.3, 1e-3, 2.5];
    const sums = new Set<number>();
    for (let rot = 0; rot < values.length; rot++) {
      const { op, rows } = make();
      values.forEach((v, i) => {
        op.processElement({ id: 'k', t: v }, 1000 + ((i + rot) % values.length), NEG);
      });
      op.endOfInput();
      sums.add(rows[rows.length - 1].sum as number);
    }
    expect(sums.size).toBe(1);
  });

  it('passes a reading behind the watermark to the late output without changing the sum', () => {
    const { op, rows, late } = make();
    op.processElement({ id: 's1', t: 1 }, 1000, NEG);
    op.processWatermark(1500);
    op.processElement({ id: 's1', t: 100 }, 1200, NEG);
    op.processElement({ id: 's1', t: 200 }, 5000, 1300); // its source split's watermark: not late
    op.endOfInput();
    expect(late).toEqual([{ id: 's1', t: 100 }]);
    expect(rows.map((r) => r.sum)).toEqual([1, 201]);
    expect(op.metrics).toMatchObject({ late: 1, updates: 2, keys: 1 });
  });

  it('writes several key fields by name', () => {
    const rows: Row[] = [];
    const op = new RunningOperator(
      { aggregates: AGGS, keyFields: ['house', 'room'], maxParallelism: MAXP, keyGroupStart: 0, keyGroupEnd: MAXP - 1 },
      { emit: (r) => rows.push(r), late: () => {} },
    );
    op.processElement({ house: 'h1', room: 'kitchen', t: 20 }, 1000, NEG);
    op.endOfInput();
    expect(rows).toEqual([
      { key: 'h1|kitchen', house: 'h1', room: 'kitchen', sum: 20, count: 1, max: 20, updatedAt: 1000 },
    ]);
  });

  it('restored at another parallelism, emits exactly the rows of an unbroken run', () => {
    const input: [Row, number][] = [];
    for (let i = 0; i < 400; i++)
      input.push([{ id: `s${i % 13}`, t: ((i * 37) % 101) / 10 }, 1000 + Math.floor(i / 3) * 100 - (i % 5) * 30]);
    const reference = make();
    for (const [r, ts] of input) reference.op.processElement({ ...r }, ts, NEG);
    reference.op.endOfInput();

    // first half at parallelism 1, checkpoint with a watermark mid-way (pending readings in state)
    const first = make();
    const half = 200;
    for (const [r, ts] of input.slice(0, half)) first.op.processElement({ ...r }, ts, NEG);
    first.op.processWatermark(input[half][1] - 200);
    const parts = new Map<number, Uint8Array>();
    for (let kg = 0; kg < MAXP; kg++) parts.set(kg, first.op.snapshotKeyGroup(kg));
    expect(first.op.pendingReadings).toBeGreaterThan(0);

    // restore at parallelism 3: each subtask its key groups; feed the rest by key group
    const subs = [0, 1, 2].map((s) => {
      const range = keyGroupRange(s, 3, MAXP);
      const m = make(range);
      for (let kg = range.start; kg <= range.end; kg++) m.op.restoreKeyGroup(kg, parts.get(kg) as Uint8Array);
      return { ...m, range };
    });
    for (const [r, ts] of input.slice(half)) {
      const kg = keyGroupOf(r.id as string, MAXP);
      const sub = subs.find((s) => kg >= s.range.start && kg <= s.range.end);
      sub?.op.processElement({ ...r }, ts, NEG);
    }
    for (const s of subs) s.op.endOfInput();
    const byKey = (rows: Row[]) => {
      const m = new Map<string, Row[]>();
      for (const r of rows) m.set(r.key as string, [...(m.get(r.key as string) ?? []), r]);
      return m;
    };
    const got = byKey([...first.rows, ...subs.flatMap((s) => s.rows)]);
    const want = byKey(reference.rows);
    expect(got).toEqual(want);
    expect(subs.reduce((n, s) => n + s.late.length, 0) + first.late.length).toBe(0);
  });

  it('refuses a snapshot of another aggregate layout', () => {
    const { op } = make();
    op.processElement({ id: 's1', t: 1 }, 1000, NEG);
    const bytes = op.snapshotKeyGroup(keyGroupOf('s1', MAXP));
    const other = new RunningOperator(
      {
        aggregates: [{ output: 'n', kind: 'count' }],
        keyFields: ['id'],
        maxParallelism: MAXP,
        keyGroupStart: 0,
        keyGroupEnd: MAXP - 1,
      },
      { emit: () => {}, late: () => {} },
    );
    expect(() => other.restoreKeyGroup(keyGroupOf('s1', MAXP), bytes)).toThrow(/accumulator slots/);
  });
});
