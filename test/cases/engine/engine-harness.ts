/**
 * Whole-engine harness for the acceptance cases in shared/cases: writes a case's input CSV into a
 * fresh temp folder, writes a job spec file beside it (file source → keyBy sensor_id → window →
 * count/avg/min/max → file sink), loads it with the real spec loader and runs it in-process with
 * `runJobLocally` (real file source, tasks, codec, credit-based channels, window operator and
 * file sinks). Returns the sink's rows in the cases' table columns, the late-data and dead-letter
 * side outputs (written beside the sink as `<sink>.late.jsonl` / `<sink>.deadletter.jsonl`) and
 * the task counters.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJobLocally } from '../../../core/runtime/local.js';
import type { TaskCounters } from '../../../core/runtime/transport.js';
import { loadJobSpecFile } from '../../../core/spec/load.js';
import type { CaseRow } from '../harness.js';

export const dataDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'data');

export const T0 = 1717200000000;

/** The parallelisms every engine case runs at. */
export const PARALLELISMS = [1, 2, 4] as const;

export type CaseWindow =
  | { type: 'tumbling'; sizeMs: number; offsetMs?: number }
  | { type: 'sliding'; sizeMs: number; slideMs: number; offsetMs?: number }
  | { type: 'session'; gapMs: number };

export interface CaseJob {
  /** the window step */
  window: CaseWindow;
  /** watermark out-of-orderness bound B */
  outOfOrdernessMs: number;
}

/** One record of the late-data side output. */
export interface LateRecord {
  sensor_id: string;
  /** the reading's event time (the source's event-time field) */
  timestamp_ms: number;
  temperature_c: number;
  /** the window operator's watermark when the reading arrived */
  watermarkMs: number;
}

/** One record of the dead-letter output. */
export interface DeadLetter {
  reason: string;
  source: string;
  raw: string;
}

export interface EngineRun {
  rows: CaseRow[];
  late: LateRecord[];
  deadLetters: DeadLetter[];
  /** sum of `late` over window tasks */
  lateCount: number;
  /** sum of `rejected` over source tasks */
  rejectedCount: number;
  counters: Record<string, TaskCounters>;
  /** the temp folder (input.csv, job.json, out/) */
  dir: string;
  specPath: string;
}

/** The case's input bytes from test/cases/data/<name>.csv. */
export function caseInput(name: string): Buffer {
  return readFileSync(join(dataDir, `${name}.csv`));
}

/**
 * Builds the raw (user-facing) job spec of a case. The source path is relative (resolved against
 * the spec file's folder, and shown as written in dead-letter positions: `input.csv:<line>`); the
 * sink path is absolute (`<dir>/out/results.jsonl`), so the outputs land in the case's folder
 * whatever the working directory.
 */
export function caseSpec(job: CaseJob, dir: string, name = 'case'): Record<string, unknown> {
  return {
    name,
    source: {
      type: 'file',
      path: 'input.csv',
      columns: ['sensor_id:string', 'timestamp_ms:int', 'temperature_c:double'],
      eventTime: { field: 'timestamp_ms', unit: 'ms' },
      watermark: { outOfOrdernessMs: job.outOfOrdernessMs },
    },
    steps: [
      { keyBy: 'sensor_id' },
      { window: job.window },
      {
        aggregate: {
          count: 'count()',
          avg: 'avg(temperature_c)',
          min: 'min(temperature_c)',
          max: 'max(temperature_c)',
        },
      },
    ],
    sink: { type: 'file', path: join(dir, 'out', 'results.jsonl') },
  };
}

/** Writes input.csv and job.json into a new temp folder; returns the folder and the spec path. */
export function writeCase(input: Buffer | string, job: CaseJob, name = 'case'): { dir: string; specPath: string } {
  const dir = mkdtempSync(join(tmpdir(), `fluxo-${name}-`));
  writeFileSync(join(dir, 'input.csv'), input);
  const specPath = join(dir, 'job.json');
  writeFileSync(specPath, JSON.stringify(caseSpec(job, dir, name), null, 2));
  return { dir, specPath };
}

/** Reads a JSON-lines file; a missing file reads as no lines. */
export function readJsonLines<T>(file: string): T[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

interface SinkRow {
  key: string;
  windowStart: number;
  windowEnd: number;
  count: number;
  avg: number;
  min: number;
  max: number;
}

function toCaseRow(r: SinkRow): CaseRow {
  return {
    sensor_id: r.key,
    window_start_ms: r.windowStart,
    window_end_ms: r.windowEnd,
    count: r.count,
    avg: r.avg,
    min: r.min,
    max: r.max,
  };
}

/** Reads the sink and side outputs of a finished case run in `dir`. */
export function readOutputs(dir: string): Pick<EngineRun, 'rows' | 'late' | 'deadLetters'> {
  const out = join(dir, 'out');
  return {
    rows: readJsonLines<SinkRow>(join(out, 'results.jsonl')).map(toCaseRow),
    late: readJsonLines<LateRecord>(join(out, 'results.late.jsonl')),
    deadLetters: readJsonLines<DeadLetter>(join(out, 'results.deadletter.jsonl')),
  };
}

function sumCounter(counters: Record<string, TaskCounters>, vertex: string, field: keyof TaskCounters): number {
  let sum = 0;
  for (const [taskId, c] of Object.entries(counters)) {
    // task ids are `<vertex id>-<subtask>`
    if (taskId.slice(0, taskId.lastIndexOf('-')) === vertex) sum += c[field] as number;
  }
  return sum;
}

/** Runtime knobs of runJobLocally (defaults: 256 records per source batch, 4 channel credits). */
export interface EngineOptions {
  /** records per source poll / output buffer */
  batchRecords?: number;
  /** credits (buffers in flight) per channel */
  channelCredits?: number;
  /** hand records between tasks as objects (as inside one slot) instead of encoded frames */
  localBatches?: boolean;
}

/**
 * Runs a case through the whole engine at `parallelism`: writes the input and the spec file,
 * loads the spec with `loadJobSpecFile`, runs `runJobLocally` and reads every output.
 */
export async function runCase(
  input: Buffer | string,
  job: CaseJob,
  parallelism: number,
  name = 'case',
  engine: EngineOptions = {},
): Promise<EngineRun> {
  const { dir, specPath } = writeCase(input, job, name);
  const spec = loadJobSpecFile(specPath);
  const { counters } = await runJobLocally(spec, { parallelism, ...engine });
  return {
    ...readOutputs(dir),
    lateCount: sumCounter(counters, 'window', 'late'),
    rejectedCount: sumCounter(counters, 'source', 'rejected'),
    counters,
    dir,
    specPath,
  };
}

/** Removes a case's temp folder. */
export function cleanup(run: { dir: string }): void {
  rmSync(run.dir, { recursive: true, force: true });
}

/**
 * BR-13's input, generated as the case's snippet does: line 8 is 2,000,000 'x' characters and
 * line 11 ends in the invalid UTF-8 bytes 0xFF 0xFE.
 */
export function br13Input(): Buffer {
  const good = (rel: number, t: string) => Buffer.from(`hall-2,${T0 + rel},${t}`);
  const lines = [
    good(1000, '20.0'),
    Buffer.from(`hall-2,${T0 + 2000}`),
    Buffer.concat([good(3000, '20.4'), Buffer.from(',extra')]),
    Buffer.from('hall-2,abc,20.6'),
    Buffer.from(`,${T0 + 4000},20.8`),
    Buffer.from(`{"sensor_id":"hall-2","timestamp_ms":${T0 + 6000},"temperature_c":21.0}`),
    good(5000, '20.2'),
    Buffer.alloc(2_000_000, 'x'),
    good(12000, '21.0'),
    good(14000, '21.4'),
    Buffer.concat([Buffer.from(`hall-2,${T0 + 15000},`), Buffer.from([0xff, 0xfe])]),
    good(16000, '21.6'),
  ];
  const parts: Buffer[] = [];
  for (const l of lines) parts.push(l, Buffer.from('\n'));
  return Buffer.concat(parts);
}
