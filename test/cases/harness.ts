/**
 * Operator-level harness for the acceptance cases in shared/cases: reads a case's CSV
 * (`sensor_id,timestamp_ms,temperature_c`, arrival order) and runs it through
 * `BoundedOutOfOrdernessWatermarks` + `WindowOperator` exactly as one source split would: each
 * record is tagged with the split's watermark after the line, then the operator receives that
 * watermark. Output rows are converted to the cases' table columns.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { Row, WindowSpec } from '../../core/spec/types.js';
import { BoundedOutOfOrdernessWatermarks } from '../../core/time/watermarks.js';
import { WindowOperator } from '../../core/windows/window-operator.js';

const dataDir = join(dirname(fileURLToPath(import.meta.url)), 'data');

export const T0 = 1717200000000;

/** One row of a case's expected table. */
export interface CaseRow {
  sensor_id: string;
  window_start_ms: number;
  window_end_ms: number;
  count: number;
  avg: number;
  min: number;
  max: number;
}

export interface Reading {
  row: Row;
  ts: number;
}

/** Parses `data/<name>.csv` with a plain split (the cases have no quoting). */
export function readCase(name: string): Reading[] {
  return readFileSync(join(dataDir, `${name}.csv`), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [sensorId, ts, temp] = line.split(',');
      const row: Row = { sensor_id: sensorId, timestamp_ms: Number(ts), temperature_c: Number(temp) };
      return { row, ts: Number(ts) };
    });
}

export function readExpected(name: string): CaseRow[] {
  return JSON.parse(readFileSync(join(dataDir, `${name}.expected.json`), 'utf8')) as CaseRow[];
}

export const caseAggregates = [
  { output: 'count', kind: 'count' as const },
  { output: 'avg', kind: 'avg' as const, field: 'temperature_c' },
  { output: 'min', kind: 'min' as const, field: 'temperature_c' },
  { output: 'max', kind: 'max' as const, field: 'temperature_c' },
];

export function toCaseRow(r: Row): CaseRow {
  return {
    sensor_id: r.key as string,
    window_start_ms: r.windowStart as number,
    window_end_ms: r.windowEnd as number,
    count: r.count as number,
    avg: r.avg as number,
    min: r.min as number,
    max: r.max as number,
  };
}

/** A window operator over the case columns, collecting emitted and late rows. */
export class CaseOperator {
  readonly emitted: CaseRow[] = [];
  readonly late: { row: Row; ts: number; watermark: number }[] = [];
  readonly op: WindowOperator;

  constructor(window: WindowSpec) {
    this.op = new WindowOperator(
      {
        window,
        aggregates: caseAggregates,
        keyFields: ['sensor_id'],
        maxParallelism: 128,
        keyGroupStart: 0,
        keyGroupEnd: 127,
      },
      {
        emit: (row) => this.emitted.push(toCaseRow(row)),
        late: (row, ts, watermark) => this.late.push({ row, ts, watermark }),
      },
    );
  }
}

/** Runs readings through one source split: tag = split watermark after the line, then advance the operator. */
export function runSingleSplit(c: CaseOperator, gen: BoundedOutOfOrdernessWatermarks, readings: Reading[]): void {
  for (const { row, ts } of readings) {
    gen.onEvent(ts);
    c.op.processElement(row, ts, gen.current);
    c.op.processWatermark(gen.current);
  }
}

/** Runs a whole bounded case on one split and returns the operator after end of input. */
export function runBoundedCase(name: string, window: WindowSpec, boundMs: number): CaseOperator {
  const c = new CaseOperator(window);
  runSingleSplit(c, new BoundedOutOfOrdernessWatermarks(boundMs), readCase(name));
  c.op.endOfInput();
  return c;
}

function sortRows(rows: CaseRow[]): CaseRow[] {
  return [...rows].sort((a, b) =>
    a.sensor_id < b.sensor_id ? -1 : a.sensor_id > b.sensor_id ? 1 : a.window_start_ms - b.window_start_ms,
  );
}

/** Compares rows as sets: exact count/min/max/bounds, avg within ±0.001, no duplicates. */
export function expectSameRows(actual: CaseRow[], expected: CaseRow[]): void {
  const a = sortRows(actual);
  const e = sortRows(expected);
  const ids = (rows: CaseRow[]) =>
    rows.map((r) => `${r.sensor_id} [${r.window_start_ms - T0}, ${r.window_end_ms - T0})`);
  expect(ids(a)).toEqual(ids(e));
  for (let i = 0; i < e.length; i++) {
    const { avg: aAvg, ...aRest } = a[i];
    const { avg: eAvg, ...eRest } = e[i];
    expect(aRest).toEqual(eRest);
    expect(Math.abs(aAvg - eAvg)).toBeLessThanOrEqual(0.001);
  }
}
