import { describe, expect, it } from 'vitest';
import { querySensors } from '../../../jobmanager/dashboard.js';

const row = (key: string, avg: number | null = null) => ({
  key,
  fields: {},
  windowStart: 0,
  windowEnd: 0,
  avg,
  min: null,
  max: null,
  count: null,
  freshnessMs: 0,
});

describe('querySensors sort by key', () => {
  it('is natural: house-2 before house-10, in both orders, and breaks ties of a value by natural key', () => {
    const rows = ['house-10|kitchen', 'house-2|kitchen', 'house-1|bath', 'house-2|bath', 'house-100|attic'].map((k) =>
      row(k, 20),
    );
    const asc = querySensors(rows, { sort: 'key' }).sensors.map((r) => r.key);
    expect(asc).toEqual(['house-1|bath', 'house-2|bath', 'house-2|kitchen', 'house-10|kitchen', 'house-100|attic']);
    expect(querySensors(rows, { sort: 'key', order: 'desc' }).sensors.map((r) => r.key)).toEqual([...asc].reverse());
    expect(querySensors(rows, { sort: 'avg' }).sensors.map((r) => r.key)).toEqual(asc);
  });
});
