/**
 * Job specs for the shared acceptance-case format (`sensor_id,timestamp_ms,temperature_c`, one
 * reading per line): a file source, keyBy sensor_id, a 10 s tumbling window and the cases'
 * count/avg/min/max, written to a spec file. Options override the parts a test is about.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
