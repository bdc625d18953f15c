import { describe, expect, it } from 'vitest';
import type { Row } from '../../../core/spec/types.js';
import { compileAggregates, SUM_SLOTS } from '../../../core/windows/aggregates.js';

const all = [
  { output: 'count', kind: 'count' },
  { output: 'avg', kind: 'avg', field: 'temperature' },
  { output: 'min', kind: 'min', field: 'temperature' },
  { output: 'max', kind: 'max', field: 'temperature' },
  { output: 'sum', kind: 'sum', field: 'temperature' },
] as const;

describe('compiled aggregates', () => {
  it('keeps only the slots the aggregates need', () => {
    expect(compileAggregates([{ output: 'count', kind: 'count' }]).stride).toBe(1);
    expect(compileAggregates([...all]).stride).toBe(4 + SUM_SLOTS); // rows, n, sum partials, min, max
  });

  it('computes count, avg, min, max and sum', () => {
    const l = compileAggregates([...all]);
    const acc: number[] = [];
    l.init(acc, 0);
    for (const t of [20, 21.5, 19]) l.add(acc, 0, { temperature: t });
    const out: Row = {};
    l.writeResult(acc, 0, out);
    expect(out).toEqual({ count: 3, avg: 20.166666666666668, min: 19, max: 21.5, sum: 60.5 });
  });

  it('skips nulls in field aggregates but counts the row', () => {
    const l = compileAggregates([...all, { output: 'n', kind: 'count', field: 'temperature' }]);
    const acc: number[] = [];
    l.init(acc, 0);
    l.add(acc, 0, { temperature: null });
    const out: Row = {};
    l.writeResult(acc, 0, out);
    expect(out).toEqual({ count: 1, avg: null, min: null, max: null, sum: null, n: 0 });
  });

  it('merges two accumulators as if all rows went into one', () => {
    const l = compileAggregates([...all]);
    const acc: number[] = [];
    l.init(acc, 0);
    l.init(acc, l.stride);
    l.add(acc, 0, { temperature: 18 });
    l.add(acc, l.stride, { temperature: 19.6 });
    l.add(acc, l.stride, { temperature: 18.8 });
    l.merge(acc, 0, acc, l.stride);
    const out: Row = {};
    l.writeResult(acc, 0, out);
    expect(out.count).toBe(3);
    expect(out.min).toBe(18);
    expect(out.max).toBe(19.6);
    expect(out.avg as number).toBeCloseTo(18.8, 9);
  });

  it('rejects duplicate outputs and field aggregates without a field', () => {
    expect(() =>
      compileAggregates([
        { output: 'a', kind: 'count' },
        { output: 'a', kind: 'count' },
      ]),
    ).toThrow(/duplicate/);
    expect(() => compileAggregates([{ output: 'a', kind: 'avg' }])).toThrow(/needs a field/);
  });
});
