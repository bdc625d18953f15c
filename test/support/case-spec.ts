/**
 * Job specs for the shared acceptance-case format (`sensor_id,timestamp_ms,temperature_c`, one
 * reading per line): a file source, keyBy sensor_id, a 10 s tumbling window and the cases'
 * count/avg/min/max, written to a spec file. Options override the parts a test is about.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

export interface CaseSpecOptions {
  /** job name; also the spec file's and default sink's base name */
  name: string;
  /** folder the spec (and by default the sink) is written to */
  dir: string;
  /** input files, relative to `dir` or absolute (default `input.csv`) */
  paths?: string[];
  parallelism?: number;
  follow?: boolean;
  outOfOrdernessMs?: number;
  idleTimeoutMs?: number;
  window?: Record<string, unknown>;
  /** default count/avg/min/max of temperature_c */
  aggregate?: Record<string, string>;
  /** default `{ type: file, path: <dir>/<name>.jsonl }` */
  sink?: Record<string, unknown>;
  /** extra top-level fields (deadLetter, lateData, ...) */
  extra?: Record<string, unknown>;
}

export const CASE_AGGREGATES = {
  count: 'count()',
  avg: 'avg(temperature_c)',
  min: 'min(temperature_c)',
  max: 'max(temperature_c)',
};

/** Writes `<dir>/<name>.yaml` and returns its path. */
export function writeCaseSpec(o: CaseSpecOptions): string {
  const file = join(o.dir, `${o.name}.yaml`);
  writeFileSync(
    file,
    JSON.stringify({
      name: o.name,
      parallelism: o.parallelism ?? 1,
      source: {
        type: 'file',
        paths: o.paths ?? ['input.csv'],
        ...(o.follow ? { follow: true } : {}),
        columns: ['sensor_id:string', 'timestamp_ms:int', 'temperature_c:double'],
        eventTime: { field: 'timestamp_ms', unit: 'ms' },
        watermark: { outOfOrdernessMs: o.outOfOrdernessMs ?? 2000, idleTimeoutMs: o.idleTimeoutMs ?? 0 },
      },
      steps: [
        { keyBy: 'sensor_id' },
        { window: o.window ?? { type: 'tumbling', sizeMs: 10000 } },
        { aggregate: o.aggregate ?? CASE_AGGREGATES },
      ],
      sink: o.sink ?? { type: 'file', path: join(o.dir, `${o.name}.jsonl`) },
      ...o.extra,
    }),
  );
  return file;
}

/** An expected row of a shared case table (test/cases/data/BR-*.expected.json). */
export interface ExpectedRow {
  sensor_id: string;
  window_start_ms: number;
  window_end_ms: number;
  count: number;
  avg: number;
  min: number;
  max: number;
}

/** A window result row as a file sink writes it. */
export interface OutRow {
  key: string;
  windowStart: number;
  windowEnd: number;
  count: number;
  avg: number;
  min: number;
  max: number;
}

/** The JSON rows of a sink file; none when it does not exist (yet). */
export function readRows(path: string): OutRow[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as OutRow);
}

/**
 * Compares a sink's rows with a case table as a set (the cases' convention): no (sensor, window)
 * twice, the same windows, count/min/max exact, avg within ±0.001.
 */
export function expectRows(actual: OutRow[], expected: ExpectedRow[], label = 'rows'): void {
  const norm = (r: OutRow) => `${r.key}|${r.windowStart}|${r.windowEnd}`;
  const keys = actual.map(norm);
  expect(new Set(keys).size, `${label}: duplicate (sensor, window) rows in ${JSON.stringify(actual)}`).toBe(
    keys.length,
  );
  const sorted = [...actual].sort((a, b) => norm(a).localeCompare(norm(b)));
  const wantKey = (e: ExpectedRow) => `${e.sensor_id}|${e.window_start_ms}|${e.window_end_ms}`;
  const want = [...expected].sort((a, b) => wantKey(a).localeCompare(wantKey(b)));
  expect(sorted.map(norm), label).toEqual(want.map(wantKey));
  for (let i = 0; i < want.length; i++) {
    const what = `${label}: ${wantKey(want[i])}`;
    expect(sorted[i].count, what).toBe(want[i].count);
    expect(sorted[i].min, what).toBe(want[i].min);
    expect(sorted[i].max, what).toBe(want[i].max);
    expect(Math.abs(sorted[i].avg - want[i].avg), `${what} avg ${sorted[i].avg}`).toBeLessThanOrEqual(0.001);
  }
}
