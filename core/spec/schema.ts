/**
 * The job spec validator: user-facing YAML/JSON shape → normalised JobSpec (core/spec/types.ts).
 *
 * User-facing shape (see examples/room-temperature.yaml):
 * ```yaml
 * name: room-temperature
 * parallelism: 2                 # default 1
 * maxParallelism: 128            # default 128
 * source: { type: file, path: data.csv, format: csv, columns: [...], eventTime: {...}, ... }
 *   # or { type: redis-stream, stream: readings, partitions: 4, bounded?, url?, format: json | csv, columns, ... }
 * steps:
 *   - filter: "temperature >= -40.0"
 *   - map: { tempF: "temperature * 9 / 5 + 32" }
 *   - keyBy: sensorId            # or [house, room]
 *   - window: { type: tumbling, sizeMs: 60000 }
 *     parallelism: 4             # optional, on filter / map / window steps
 *   - aggregate: { count: "count()", avg: "avg(temperature)" }
 * sink: { type: file, path: out/x.jsonl }    # | { type: stdout } | { type: redis, keyPrefix, url? }
 * reactive: { maxParallelism: 8 }            # optional: caps the parallelism reactive mode gives the job
 * deadLetter: { type: file, path: ... }      # optional; or stdout, or { type: redis-stream, stream, url? }
 * lateData: { type: file, path: ... }        # optional; or stdout, redis-stream, bullmq
 * ```
 *
 * Decisions (where the issue was silent):
 * - Steps: any number of `filter` / `map`, then optionally `keyBy` → `window` → `aggregate`
 *   as three consecutive steps, which must end the job. (Like Flink, a keyed stream is windowed
 *   directly.) A job without a window is a stateless pipeline.
 * - Or `keyBy` → `detect` (spike alerts, core/detect/spec.ts), which ends the job; a job has one
 *   keyed stage, so `detect` and `window` never share a job.
 * - Or `keyBy` → `running: { sum: "sum(temperature)", n: "count()" }`, a continuous per-key
 *   aggregate (same aggregate syntax, no window; core/running/running-operator.ts), ending the job.
 * - `map` expressions all see the step's input row; outputs of the same step are not visible to
 *   each other. Map outputs add or replace fields.
 * - Event time is written to `eventTime.outputField`. Default: for `unit` event time, the field
 *   itself (its value replaced by ms; a no-op for `unit: ms`); for `format` / `iso`, a new field
 *   `timestamp` (or `eventTimeMs` if a column is already called `timestamp`); the text fields are kept.
 * - Generator sources have the implicit event time `{ field: timestamp, unit: ms }`.
 * - CSV `header` defaults to false; `format` defaults to `jsonl` for `.jsonl`/`.ndjson`(.gz)
 *   paths, else `csv`. A delimiter with spaces around a character (`", "`) splits on the character
 *   (`trim` is on by default anyway).
 * - Columns: `{ name, type, nullable? }` or shorthand `"name:type"`, `"name:type?"` (nullable),
 *   `"name"` (string), `"name?"` (nullable string). Type aliases: float/number → double, long/integer → int, boolean → bool.
 * - Relative source paths are resolved against `baseDir` (the spec file's folder), relative sink
 *   paths against `outputBaseDir` (the working directory, when loaded from a file); `displayPaths`
 *   keeps the paths as written, for dead-letter positions.
 * - Default dead-letter / late-data outputs: beside a file sink (`x.jsonl` → `x.deadletter.jsonl`,
 *   `x.late.jsonl`), otherwise `out/<name>.deadletter.jsonl` / `out/<name>.late.jsonl`.
 */
import path from 'node:path';
import * as z from 'zod';
import { normaliseDetect } from '../detect/spec.js';
import { EngineError, printable } from '../errors/index.js';
import { checkExpression, type ExprFields } from '../expr/cel.js';
import { type RestartStrategyConfig, restartStrategy } from '../restart/strategies.js';
import { MAX_PARTITIONS, STREAM_NAME_RE } from '../streams/layout.js';
import { DEFAULT_MAX_MS, DEFAULT_MIN_MS } from '../time/timestamps.js';
import { LOCAL_DATE_FIELD } from '../windows/calendar.js';

/** Result field names (core/windows/window-operator.ts UPDATE_FIELD, core/running UPDATED_AT_FIELD; not imported: spec stays below the operators). */
const UPDATE_NAME = 'update';
const UPDATED_AT_NAME = 'updatedAt';

import { GENERATOR_FIELDS, sourceExprFields } from './fields.js';
import { normaliseThingSpeakSource, type RawThingSpeakSource, thingSpeakSourceShape } from './thingspeak.js';
import type {
  AggregateKind,
  AggregateSpec,
  ColumnSpec,
  DeadLetterSinkSpec,
  EventTimeSpec,
  FieldType,
  FileSinkSpec,
  FileSourceSpec,
  GeneratorSourceSpec,
  JobSpec,
  LateDataSinkSpec,
  MeltSpec,
  RedisStreamSinkSpec,
  RedisStreamSourceSpec,
  SinkSpec,
  SourceSpec,
  StepSpec,
  WatermarkSpec,
  WindowSpec,
} from './types.js';

export interface ParseJobSpecOptions {
  /** folder that relative source paths are resolved against (the spec file's folder); default: keep relative */
  baseDir?: string;
  /**
   * folder that relative sink, dead-letter and late-data paths are resolved against; default
   * `baseDir`. loadJobSpecFile passes the working directory, so `fluxo run examples/x.yaml` with
   * `sink.path: out/x.jsonl` writes `./out/x.jsonl` where the user ran it.
   */
  outputBaseDir?: string;
}

/** Default number of key groups. */
export const DEFAULT_MAX_PARALLELISM = 128;
/** Default maximum CSV/JSONL line length (1 MiB). */
export const DEFAULT_MAX_LINE_BYTES = 1_048_576;

// ---------------------------------------------------------------------------------------------
// zod building blocks

const POS_INT = 'expected a positive integer';
const NONNEG_INT = 'expected a non-negative integer';
const posInt = () => z.int({ error: POS_INT }).positive({ error: POS_INT });
const nonNegInt = () => z.int({ error: NONNEG_INT }).nonnegative({ error: NONNEG_INT });
const anyInt = () => z.int({ error: 'expected an integer' });
const nonEmpty = () => z.string().min(1, { error: 'must not be empty' });

const TYPE_ALIASES: Record<string, FieldType> = {
  string: 'string',
  double: 'double',
  float: 'double',
  number: 'double',
  int: 'int',
  integer: 'int',
  long: 'int',
  bool: 'bool',
  boolean: 'bool',
};
const fieldType = z.string().refine((t) => t in TYPE_ALIASES, {
  error: 'expected a type: string | double | int | bool',
});

const columnObject = z.strictObject({ name: nonEmpty(), type: fieldType, nullable: z.boolean().optional() });
const columnShorthand = z
  .string()
  .regex(/^[^:\s?]+(\??|:[A-Za-z]+\??)$/, { error: 'expected "name:type" or { name, type }' });
const column = z.union([columnShorthand, columnObject], { error: 'expected "name:type" or { name, type }' });

const watermarkSchema = z.strictObject({
  outOfOrdernessMs: nonNegInt().default(0),
  idleTimeoutMs: nonNegInt().default(0),
});

const validateSchema = z.array(z.strictObject({ rule: nonEmpty(), reason: nonEmpty().optional() }));

const eventTimeSchema = z.strictObject({
  field: nonEmpty().optional(),
  fields: z.array(nonEmpty()).min(1, { error: 'must list at least one field' }).optional(),
  unit: z.enum(['ms', 's', 'us']).optional(),
  format: nonEmpty().optional(),
  iso: z.boolean().optional(),
  timeZone: nonEmpty().optional(),
  minMs: anyInt().optional(),
  maxMs: anyInt().optional(),
  outputField: nonEmpty().optional(),
});

const meltSchema = z.strictObject({
  columns: z.array(nonEmpty()).min(1, { error: 'must list at least one column' }),
  nameField: nonEmpty(),
  valueField: nonEmpty(),
  valueType: fieldType.optional(),
  names: z.record(z.string(), z.string()).optional(),
});

const fileSourceSchema = z.strictObject({
  type: z.literal('file'),
  path: nonEmpty().optional(),
  paths: z.array(nonEmpty()).min(1, { error: 'must list at least one path' }).optional(),
  format: z.enum(['csv', 'jsonl']).optional(),
  compression: z.enum(['auto', 'gzip', 'none']).default('auto'),
  encoding: z.enum(['utf8', 'latin1']).default('utf8'),
  delimiter: z.string().min(1, { error: 'must not be empty' }).optional(),
  header: z.boolean().default(false),
  trim: z.boolean().default(true),
  decimalComma: z.boolean().default(false),
  columns: z.array(column).min(1, { error: 'must list at least one column' }),
  extraColumns: z.enum(['reject', 'ignore']).default('reject'),
  maxLineBytes: posInt().default(DEFAULT_MAX_LINE_BYTES),
  follow: z.boolean().default(false),
  melt: meltSchema.optional(),
  eventTime: eventTimeSchema,
  watermark: watermarkSchema.default({ outOfOrdernessMs: 0, idleTimeoutMs: 0 }),
  validate: validateSchema.default([]),
});

/** a file source with `format: thingspeak-csv | thingspeak-json` (core/spec/thingspeak.ts) */
const thingSpeakSourceSchema = thingSpeakSourceShape({
  z,
  nonEmpty,
  anyInt,
  posInt,
  fieldType,
  watermark: watermarkSchema.default({ outOfOrdernessMs: 0, idleTimeoutMs: 0 }),
  validate: validateSchema.default([]),
  maxLineBytes: DEFAULT_MAX_LINE_BYTES,
});

const generatorSourceSchema = z.strictObject({
  type: z.literal('generator'),
  sensors: posInt().default(100),
  count: nonNegInt(),
  ratePerSec: z
    .number({ error: 'expected a positive number' })
    .positive({ error: 'expected a positive number' })
    .default(1000),
  seed: anyInt().default(0),
  startMs: anyInt().default(1_717_200_000_000),
  jitterMs: nonNegInt().default(0),
  splits: posInt().default(1),
  watermark: watermarkSchema.default({ outOfOrdernessMs: 0, idleTimeoutMs: 0 }),
  validate: validateSchema.default([]),
});

const tumblingSchema = z.strictObject({
  type: z.literal('tumbling'),
  sizeMs: posInt(),
  offsetMs: anyInt().default(0),
  allowedLatenessMs: nonNegInt().default(0),
});
const calendarWindowSchema = z.strictObject({
  type: z.literal('tumbling'),
  calendar: z.enum(['day', 'week', 'month'], { error: 'expected day | week | month' }),
  timeZone: nonEmpty().default('UTC'),
  allowedLatenessMs: nonNegInt().default(0),
});
const slidingSchema = z.strictObject({
  type: z.literal('sliding'),
  sizeMs: posInt(),
  slideMs: posInt(),
  offsetMs: anyInt().default(0),
  allowedLatenessMs: nonNegInt().default(0),
});
const sessionSchema = z.strictObject({
  type: z.literal('session'),
  gapMs: posInt(),
  // updates of merged sessions are not built: refused here rather than when the job deploys
  allowedLatenessMs: nonNegInt()
    .max(0, { error: 'must be 0: allowed lateness with session windows is not supported yet' })
    .default(0),
});

const fileSinkSchema = z.strictObject({ type: z.literal('file'), path: nonEmpty() });
const stdoutSinkSchema = z.strictObject({ type: z.literal('stdout') });
const redisSinkSchema = z.strictObject({ type: z.literal('redis'), keyPrefix: nonEmpty(), url: nonEmpty().optional() });
const redisStreamSinkSchema = z.strictObject({
  type: z.literal('redis-stream'),
  stream: z
    .string()
    .regex(STREAM_NAME_RE, { error: 'expected letters, digits, ".", "_" or "-" (at most 200, no ":")' }),
  url: nonEmpty().optional(),
});
const bullMqSinkSchema = z.strictObject({
  type: z.literal('bullmq'),
  queue: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected letters, digits, ".", "_" or "-" (no ":")' }),
  url: nonEmpty().optional(),
  idFields: z.array(nonEmpty()).min(1).optional(),
  keepCompletedS: posInt().optional(),
  attempts: posInt().optional(),
  backoffMs: posInt().optional(),
});

const topSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
    error: 'expected a name of letters, digits, ".", "_" or "-"',
  }),
  parallelism: posInt().default(1),
  maxParallelism: posInt().max(32768, { error: 'must be at most 32768' }).default(DEFAULT_MAX_PARALLELISM),
  source: z.unknown(),
  steps: z.array(z.unknown(), { error: 'expected a list of steps' }),
  sink: z.unknown(),
  deadLetter: z.unknown().optional(),
  lateData: z.unknown().optional(),
  restart: z.looseObject({ type: z.enum(['exponential-delay', 'fixed-delay', 'failure-rate', 'none']) }).optional(),
  checkpoint: z
    .strictObject({
      intervalMs: posInt(),
      timeoutMs: posInt().default(60_000),
      minPauseMs: z
        .number()
        .int({ error: 'expected a non-negative integer' })
        .min(0, { error: 'expected a non-negative integer' })
        .default(0),
      retained: posInt().default(3),
      tolerableFailures: z
        .number()
        .int({ error: 'expected a non-negative integer' })
        .min(0, { error: 'expected a non-negative integer' })
        .default(0),
      mode: z.enum(['exactly-once', 'at-least-once']).default('exactly-once'),
    })
    .optional(),
  // reactive mode's cap (JobManager `--scheduler reactive`, jobmanager/reactive.ts)
  reactive: z.strictObject({ maxParallelism: posInt().optional() }).optional(),
});

// ---------------------------------------------------------------------------------------------
// problem collection

type PathPart = string | number;

/** `['steps', 2, 'window', 'sizeMs']` → `steps[2].window.sizeMs` */
export function formatPath(parts: readonly PathPart[]): string {
  let s = '';
  for (const p of parts) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s === '' ? p : `.${p}`;
  }
  return s === '' ? '(root)' : s;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') {
    // control bytes (a binary file given as a spec) are shown as ? so they never reach the terminal
    return `"${printable(v, 40)}"`;
  }
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const errorMap = (iss: {
  code: string;
  input?: unknown;
  expected?: unknown;
  values?: unknown[];
}): string | undefined => {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) return 'required';
    const exp =
      iss.expected === 'array' ? 'a list' : iss.expected === 'object' ? 'an object' : `a ${String(iss.expected)}`;
    return `expected ${exp}, got ${describe(iss.input)}`;
  }
  if (iss.code === 'invalid_value' && Array.isArray(iss.values)) {
    return `expected ${iss.values.map((v) => String(v)).join(' | ')}, got ${describe(iss.input)}`;
  }
  return undefined;
};

class Problems {
  readonly list: string[] = [];
  add(at: readonly PathPart[], message: string): void {
    this.list.push(`${formatPath(at)}: ${message}`);
  }
  /** Runs `schema` on `value`; records every issue under `at`; returns the data or undefined. */
  parse<T extends z.ZodType>(schema: T, value: unknown, at: readonly PathPart[]): z.output<T> | undefined {
    const r = schema.safeParse(value, { reportInput: true, error: errorMap as never });
    if (r.success) return r.data;
    for (const iss of r.error.issues) {
      const where = [...at, ...(iss.path as PathPart[])];
      if (iss.code === 'unrecognized_keys') {
        for (const k of iss.keys) this.add([...where, k], 'unknown field');
      } else {
        this.add(where, iss.message);
      }
    }
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// source

function resolvePath(p: string, baseDir: string | undefined): string {
  return baseDir === undefined || path.isAbsolute(p) ? p : path.resolve(baseDir, p);
}

function normaliseColumn(c: string | { name: string; type: string; nullable?: boolean | undefined }): ColumnSpec {
  if (typeof c === 'string') {
    const [name, rawType] = c.split(':') as [string, string | undefined];
    if (rawType === undefined) {
      return name.endsWith('?')
        ? { name: name.slice(0, -1), type: 'string', nullable: true }
        : { name, type: 'string', nullable: false };
    }
    const nullable = rawType.endsWith('?');
    const t = nullable ? rawType.slice(0, -1) : rawType;
    return { name, type: TYPE_ALIASES[t.toLowerCase()] as FieldType, nullable };
  }
  return { name: c.name, type: TYPE_ALIASES[c.type] as FieldType, nullable: c.nullable ?? false };
}

function checkShorthandTypes(cols: unknown[], problems: Problems): void {
  cols.forEach((c, i) => {
    if (typeof c !== 'string' || !c.includes(':')) return;
    const t = (c.split(':')[1] ?? '').replace(/\?$/, '').toLowerCase();
    if (!(t in TYPE_ALIASES))
      problems.add(['source', 'columns', i], `unknown type "${t}" (string | double | int | bool)`);
  });
}

function normaliseEventTime(
  raw: z.output<typeof eventTimeSchema>,
  columns: Map<string, ColumnSpec>,
  melted: Set<string>,
  problems: Problems,
): EventTimeSpec | undefined {
  const at = ['source', 'eventTime'];
  let ok = true;
  const fail = (sub: PathPart[], msg: string) => {
    problems.add([...at, ...sub], msg);
    ok = false;
  };
  if ((raw.field === undefined) === (raw.fields === undefined)) fail([], 'set exactly one of field, fields');
  const modes = [raw.unit !== undefined, raw.format !== undefined, raw.iso === true].filter(Boolean).length;
  if (modes !== 1) fail([], 'set exactly one of unit, format, iso: true');
  if (raw.fields !== undefined && raw.unit !== undefined) fail(['fields'], 'several fields need a format or iso: true');
  const all = raw.fields ?? (raw.field !== undefined ? [raw.field] : []);
  all.forEach((f, i) => {
    const sub: PathPart[] = raw.fields ? ['fields', i] : ['field'];
    if (!columns.has(f)) fail(sub, `unknown column "${f}"`);
    else if (melted.has(f)) fail(sub, `column "${f}" is melted`);
    else if (raw.unit === undefined && columns.get(f)?.type !== 'string')
      fail(sub, `column "${f}" must be a string for format / iso`);
    else if (raw.unit !== undefined && columns.get(f)?.type === 'bool') fail(sub, `column "${f}" must be a number`);
  });
  const timeZone = raw.timeZone ?? 'UTC';
  if (raw.timeZone !== undefined && !isValidZone(timeZone)) fail(['timeZone'], `unknown time zone "${timeZone}"`);
  const minMs = raw.minMs ?? DEFAULT_MIN_MS;
  const maxMs = raw.maxMs ?? DEFAULT_MAX_MS;
  if (minMs >= maxMs) fail(['maxMs'], 'must be greater than minMs');
  const field = all[0] ?? '';
  let outputField = raw.outputField;
  if (outputField === undefined) {
    if (raw.unit !== undefined && raw.fields === undefined) outputField = field;
    else outputField = columns.has('timestamp') ? 'eventTimeMs' : 'timestamp';
  } else if (columns.has(outputField) && !(raw.unit !== undefined && outputField === field)) {
    fail(['outputField'], `"${outputField}" is already a column`);
  }
  if (!ok) return undefined;
  const spec: EventTimeSpec = { field, joinFields: all.slice(1), timeZone, minMs, maxMs, outputField };
  if (raw.unit !== undefined) spec.unit = raw.unit;
  if (raw.format !== undefined) spec.format = raw.format;
  if (raw.iso === true) spec.iso = true;
  return spec;
}

function isValidZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function validateRules(raw: { rule: string; reason?: string | undefined }[]) {
  return raw.map((r) => ({ rule: r.rule, reason: r.reason ?? `rule failed: ${r.rule}` }));
}

function normaliseFileSource(
  rawIn: Record<string, unknown>,
  baseDir: string | undefined,
  problems: Problems,
): FileSourceSpec | undefined {
  if (Array.isArray(rawIn.columns)) checkShorthandTypes(rawIn.columns, problems);
  const raw = problems.parse(fileSourceSchema, rawIn, ['source']);
  if (!raw) return undefined;
  let ok = true;
  const fail = (sub: PathPart[], msg: string) => {
    problems.add(['source', ...sub], msg);
    ok = false;
  };
  if ((raw.path === undefined) === (raw.paths === undefined)) fail([], 'set exactly one of path, paths');
  const given = raw.paths ?? (raw.path !== undefined ? [raw.path] : []);
  const format =
    raw.format ?? (given.every((p) => /\.(jsonl|ndjson)(\.gz)?$/i.test(p)) && given.length > 0 ? 'jsonl' : 'csv');
  let delimiter = raw.delimiter ?? ',';
  if (delimiter.length > 1 && delimiter.trim().length === 1) delimiter = delimiter.trim();
  else if (delimiter.length > 1) fail(['delimiter'], 'expected a single character (optionally with spaces around it)');
  if (delimiter === '"') fail(['delimiter'], 'cannot be a double quote');
  if (raw.decimalComma && delimiter === ',' && format === 'csv')
    fail(['decimalComma'], 'needs a delimiter other than ","');
  const columns = raw.columns.map(normaliseColumn);
  const byName = new Map<string, ColumnSpec>();
  columns.forEach((c, i) => {
    if (byName.has(c.name)) fail(['columns', i], `duplicate column "${c.name}"`);
    byName.set(c.name, c);
  });

  let melt: MeltSpec | undefined;
  const melted = new Set<string>();
  if (raw.melt) {
    const m = raw.melt;
    m.columns.forEach((c, i) => {
      if (!byName.has(c)) fail(['melt', 'columns', i], `unknown column "${c}"`);
      else if (melted.has(c)) fail(['melt', 'columns', i], `duplicate column "${c}"`);
      melted.add(c);
    });
    const valueType = m.valueType !== undefined ? (TYPE_ALIASES[m.valueType] as FieldType) : 'double';
    for (const c of m.columns) {
      const col = byName.get(c);
      if (col && col.type !== valueType)
        fail(['melt', 'columns'], `column "${c}" is ${col.type}, melt valueType is ${valueType}`);
    }
    for (const k of ['nameField', 'valueField'] as const) {
      if (byName.has(m[k]) && !melted.has(m[k])) fail(['melt', k], `"${m[k]}" is already a column`);
    }
    if (m.nameField === m.valueField) fail(['melt', 'valueField'], 'must differ from nameField');
    for (const k of Object.keys(m.names ?? {})) {
      if (!melted.has(k)) fail(['melt', 'names', k], `"${k}" is not a melted column`);
    }
    melt = { columns: m.columns, nameField: m.nameField, valueField: m.valueField, valueType, names: m.names ?? {} };
  }
  if (raw.follow && raw.compression === 'gzip')
    fail(['follow'], 'cannot follow a gzip file (it cannot grow line by line)');
  const eventTime = normaliseEventTime(raw.eventTime, byName, melted, problems);
  if (!ok || !eventTime) return undefined;
  const spec: FileSourceSpec = {
    type: 'file',
    paths: given.map((p) => resolvePath(p, baseDir)),
    displayPaths: given,
    format,
    compression: raw.compression,
    encoding: raw.encoding,
    delimiter,
    header: raw.header,
    trim: raw.trim,
    decimalComma: raw.decimalComma,
    columns,
    extraColumns: raw.extraColumns,
    maxLineBytes: raw.maxLineBytes,
    follow: raw.follow,
    eventTime,
    watermark: raw.watermark as WatermarkSpec,
    validate: validateRules(raw.validate),
  };
  if (melt) spec.melt = melt;
  return spec;
}

const streamSourceSchema = z.object({
  stream: z.string().regex(STREAM_NAME_RE, {
    error: 'expected a stream name of letters, digits, ".", "_" or "-" (at most 200, no ":")',
  }),
  partitions: posInt()
    .max(MAX_PARTITIONS, { error: `must be at most ${MAX_PARTITIONS}` })
    .default(1),
  url: nonEmpty().optional(),
  bounded: z.boolean().default(false),
  blockMs: posInt().max(10_000, { error: 'must be at most 10000' }).default(100),
  format: z.enum(['json', 'jsonl', 'csv']).default('json'),
});
/** fields a redis-stream source shares with a file source: how its records are typed */
const STREAM_RECORD_FIELDS = [
  'delimiter',
  'trim',
  'decimalComma',
  'columns',
  'extraColumns',
  'melt',
  'eventTime',
  'watermark',
  'validate',
] as const;

/**
 * A `redis-stream` source: its own fields (stream, partitions, url, bounded, blockMs, format
 * json | jsonl | csv, default json) checked here; the record fields (columns, melt, eventTime,
 * watermark, validate, csv options) by the file source's rules, so both type records alike.
 * File-only fields (path, header, follow, ...) are unknown here.
 */
function normaliseStreamSource(raw: Record<string, unknown>, problems: Problems): RedisStreamSourceSpec | undefined {
  const own = problems.parse(streamSourceSchema, raw, ['source']);
  const record: Record<string, unknown> = { type: 'file', path: '-' };
  for (const k of Object.keys(raw)) {
    if ((STREAM_RECORD_FIELDS as readonly string[]).includes(k)) record[k] = raw[k];
    else if (k !== 'type' && !(k in streamSourceSchema.shape)) problems.add(['source', k], 'unknown field');
  }
  record.format = own?.format === 'csv' ? 'csv' : 'jsonl';
  const f = normaliseFileSource(record, undefined, problems);
  if (!own || !f) return undefined;
  const spec: RedisStreamSourceSpec = {
    type: 'redis-stream',
    stream: own.stream,
    partitions: own.partitions,
    bounded: own.bounded,
    blockMs: own.blockMs,
    format: record.format as 'csv' | 'jsonl',
    delimiter: f.delimiter,
    trim: f.trim,
    decimalComma: f.decimalComma,
    columns: f.columns,
    extraColumns: f.extraColumns,
    eventTime: f.eventTime,
    watermark: f.watermark,
    validate: f.validate,
  };
  if (own.url !== undefined) spec.url = own.url;
  if (f.melt) spec.melt = f.melt;
  return spec;
}

function normaliseSource(raw: unknown, baseDir: string | undefined, problems: Problems): SourceSpec | undefined {
  if (!isObject(raw)) {
    problems.add(['source'], `expected an object, got ${describe(raw)}`);
    return undefined;
  }
  let source: SourceSpec | undefined;
  if (raw.type === 'file' && typeof raw.format === 'string' && raw.format.startsWith('thingspeak')) {
    const t = problems.parse(thingSpeakSourceSchema, raw, ['source']);
    if (t) {
      const ctx = {
        resolvePath: (p: string) => resolvePath(p, baseDir),
        typeOf: (ty: string) => TYPE_ALIASES[ty] as FieldType,
        isValidZone,
        defaultMinMs: DEFAULT_MIN_MS,
        defaultMaxMs: DEFAULT_MAX_MS,
      };
      const rawTs = {
        ...t,
        watermark: t.watermark as WatermarkSpec,
        validate: validateRules(t.validate as z.output<typeof validateSchema>),
      };
      source = normaliseThingSpeakSource(rawTs as RawThingSpeakSource, ctx, problems);
    }
  } else if (raw.type === 'file') source = normaliseFileSource(raw, baseDir, problems);
  else if (raw.type === 'generator') {
    const g = problems.parse(generatorSourceSchema, raw, ['source']);
    if (g) {
      const spec: GeneratorSourceSpec = {
        ...g,
        watermark: g.watermark as WatermarkSpec,
        validate: validateRules(g.validate),
        eventTime: {
          field: 'timestamp',
          joinFields: [],
          unit: 'ms',
          timeZone: 'UTC',
          minMs: DEFAULT_MIN_MS,
          maxMs: DEFAULT_MAX_MS,
          outputField: 'timestamp',
        },
      };
      source = spec;
    }
  } else if (raw.type === 'redis-stream') {
    source = normaliseStreamSource(raw, problems);
  } else {
    problems.add(['source', 'type'], `expected file | generator | redis-stream, got ${describe(raw.type)}`);
    return undefined;
  }
  if (source) {
    const fields = sourceExprFields(source);
    source.validate.forEach((v, i) => {
      checkCel(v.rule, fields, ['source', 'validate', i, 'rule'], problems, true);
    });
  }
  return source;
}

/**
 * When the source block has problems, the fields its rows would have, as far as they can be
 * told (so step problems are still reported); undefined when not even the columns are readable.
 */
function bestEffortFields(raw: unknown): ExprFields | undefined {
  if (!isObject(raw)) return undefined;
  if (raw.type === 'generator') return { ...GENERATOR_FIELDS };
  if (raw.type !== 'file' && raw.type !== 'redis-stream') return undefined;
  const cols = z.array(column).safeParse(raw.columns);
  if (!cols.success) return undefined;
  const fields: ExprFields = {};
  const melt = isObject(raw.melt) ? raw.melt : undefined;
  const melted = new Set(Array.isArray(melt?.columns) ? melt.columns : []);
  for (const c of cols.data.map(normaliseColumn)) {
    if (!melted.has(c.name)) fields[c.name] = c.nullable ? 'dyn' : c.type;
  }
  if (melt && typeof melt.nameField === 'string') fields[melt.nameField] = 'string';
  if (melt && typeof melt.valueField === 'string') {
    fields[melt.valueField] =
      typeof melt.valueType === 'string' ? (TYPE_ALIASES[melt.valueType] ?? 'double') : 'double';
  }
  const et = isObject(raw.eventTime) ? raw.eventTime : {};
  if (typeof et.outputField === 'string') fields[et.outputField] = 'int';
  else if (et.unit === undefined) fields[fields.timestamp === undefined ? 'timestamp' : 'eventTimeMs'] = 'int';
  else if (typeof et.field === 'string') fields[et.field] = 'int';
  return fields;
}

function checkCel(
  expr: string,
  fields: ExprFields,
  at: PathPart[],
  problems: Problems,
  bool: boolean,
): string | undefined {
  try {
    const t = checkExpression(expr, fields);
    if (bool && t !== 'bool' && t !== 'dyn') {
      problems.add(at, `must be a boolean expression, got ${t}`);
      return undefined;
    }
    return t;
  } catch (e) {
    problems.add(at, e instanceof Error ? e.message : String(e));
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// steps

const STEP_KINDS = ['filter', 'map', 'keyBy', 'window', 'aggregate', 'detect', 'running'] as const;
type StepKind = (typeof STEP_KINDS)[number];
const AGG = /^\s*(count|sum|avg|min|max)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)?\s*\)\s*$/;

function celResultType(t: string): FieldType {
  return t === 'int' || t === 'uint' ? 'int' : t === 'string' ? 'string' : t === 'bool' ? 'bool' : 'double';
}

function normaliseSteps(
  rawSteps: unknown[],
  initial: ExprFields | undefined,
  maxParallelism: number,
  problems: Problems,
): StepSpec[] | undefined {
  const steps: StepSpec[] = [];
  let ok = true;
  const fail = (at: PathPart[], msg: string) => {
    problems.add(at, msg);
    ok = false;
  };
  // fields visible at the current step; undefined when the source was invalid (skip field checks)
  let fields: ExprFields | undefined = initial ? { ...initial } : undefined;
  const kinds: StepKind[] = [];
  // the stage being read (a rollup stage's fields are the window results of the one before)
  const windowAt = new Map<number, WindowSpec>();
  let lastKeyBy: string[] | undefined;
  let lastWindow: WindowSpec | undefined;

  rawSteps.forEach((raw, i) => {
    const at: PathPart[] = ['steps', i];
    if (!isObject(raw)) {
      fail(at, `expected a step such as { filter: "..." }, got ${describe(raw)}`);
      return;
    }
    const present = STEP_KINDS.filter((k) => k in raw);
    for (const k of Object.keys(raw)) {
      if (k !== 'parallelism' && !(STEP_KINDS as readonly string[]).includes(k)) fail([...at, k], 'unknown field');
    }
    if (present.length !== 1) {
      fail(
        at,
        `expected exactly one of ${STEP_KINDS.join(', ')}${present.length ? `, got ${present.join(', ')}` : ''}`,
      );
      return;
    }
    const kind = present[0] as StepKind;
    kinds.push(kind);
    const body = raw[kind];
    let parallelism: number | undefined;
    if (raw.parallelism !== undefined) {
      if (kind === 'keyBy' || kind === 'aggregate') {
        fail([...at, 'parallelism'], `cannot be set on ${kind} (set it on the window step)`);
      } else {
        const p = problems.parse(posInt(), raw.parallelism, [...at, 'parallelism']);
        if (p === undefined) ok = false;
        else if ((kind === 'window' || kind === 'detect' || kind === 'running') && p > maxParallelism)
          fail([...at, 'parallelism'], `must be at most maxParallelism (${maxParallelism})`);
        else parallelism = p;
      }
    }
    const withP = <T extends StepSpec>(s: T): T => (parallelism === undefined ? s : { ...s, parallelism });

    switch (kind) {
      case 'filter': {
        if (typeof body !== 'string' || body.trim() === '') {
          fail([...at, 'filter'], 'expected a CEL expression');
          return;
        }
        if (fields && checkCel(body, fields, [...at, 'filter'], problems, true) === undefined) ok = false;
        steps.push(withP({ kind: 'filter', expr: body }));
        return;
      }
      case 'map': {
        if (!isObject(body) || Object.keys(body).length === 0) {
          fail([...at, 'map'], 'expected { outputField: "CEL expression", ... }');
          return;
        }
        const out: Record<string, string> = {};
        const added: ExprFields = {};
        for (const [name, expr] of Object.entries(body)) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
            fail([...at, 'map', name], 'output name must be an identifier');
            continue;
          }
          if (typeof expr !== 'string' || expr.trim() === '') {
            fail([...at, 'map', name], 'expected a CEL expression');
            continue;
          }
          out[name] = expr;
          if (fields) {
            const t = checkCel(expr, fields, [...at, 'map', name], problems, false);
            if (t === undefined) ok = false;
            else added[name] = celResultType(t);
          }
        }
        if (fields) fields = { ...fields, ...added };
        steps.push(withP({ kind: 'map', fields: out }));
        return;
      }
      case 'keyBy': {
        const list = typeof body === 'string' ? [body] : body;
        const previousKey = lastKeyBy;
        lastKeyBy = undefined;
        lastWindow = undefined;
        if (!Array.isArray(list) || list.length === 0 || !list.every((f) => typeof f === 'string' && f !== '')) {
          fail([...at, 'keyBy'], 'expected a field name or a list of field names');
          return;
        }
        const names = list as string[];
        names.forEach((f, j) => {
          const sub: PathPart[] = typeof body === 'string' ? [...at, 'keyBy'] : [...at, 'keyBy', j];
          if (fields && !(f in fields))
            fail(
              sub,
              previousKey?.length === 1 && previousKey[0] === f
                ? `unknown field "${f}": window results of a one-field key carry it as "key"`
                : `unknown field "${f}"`,
            );
          if (names.indexOf(f) !== j) fail(sub, `duplicate field "${f}"`);
        });
        steps.push({ kind: 'keyBy', fields: names });
        lastKeyBy = names;
        return;
      }
      case 'window': {
        const w = normaliseWindow(body, [...at, 'window'], problems);
        if (!w) {
          ok = false;
          return;
        }
        steps.push(withP({ kind: 'window', window: w }));
        windowAt.set(i, w);
        lastWindow = w;
        return;
      }
      case 'aggregate':
      case 'running': {
        // `running` takes the aggregate syntax (a continuous aggregate per key, no window)
        if (!isObject(body) || Object.keys(body).length === 0) {
          fail([...at, kind], 'expected { output: "count()" | "sum(f)" | "avg(f)" | "min(f)" | "max(f)", ... }');
          return;
        }
        const aggs: AggregateSpec[] = [];
        // names every result row already has (core/graph/build.ts windowResultFields, runningResultFields)
        const taken =
          kind === 'running'
            ? ['key', UPDATED_AT_NAME, ...(lastKeyBy && lastKeyBy.length > 1 ? lastKeyBy : [])]
            : [
                'key',
                'windowStart',
                'windowEnd',
                UPDATE_NAME,
                LOCAL_DATE_FIELD,
                ...(lastKeyBy && lastKeyBy.length > 1 ? lastKeyBy : []),
              ];
        for (const [output, expr] of Object.entries(body)) {
          const sub: PathPart[] = [...at, kind, output];
          if (taken.includes(output)) {
            fail(sub, `"${output}" is already a field of every result row (${taken.join(', ')}); choose another name`);
            continue;
          }
          const m = typeof expr === 'string' ? AGG.exec(expr) : null;
          if (!m) {
            fail(sub, 'expected count(), sum(field), avg(field), min(field) or max(field)');
            continue;
          }
          const aggKind = m[1] as AggregateKind;
          const field = m[2];
          if (aggKind === 'count') {
            if (field !== undefined) fail(sub, 'count takes no field: count()');
            aggs.push({ output, kind: 'count' });
            continue;
          }
          if (field === undefined) {
            fail(sub, `${aggKind} needs a field: ${aggKind}(field)`);
            continue;
          }
          if (fields) {
            const t = fields[field];
            if (t === undefined) fail(sub, `unknown field "${field}"`);
            else if (t !== 'int' && t !== 'double')
              fail(sub, `field "${field}" is ${t === 'dyn' ? 'nullable' : t}, expected a non-null number`);
          }
          aggs.push({ output, kind: aggKind, field });
        }
        if (kind === 'running') {
          steps.push(withP({ kind: 'running', aggregates: aggs }));
          return;
        }
        steps.push({ kind: 'aggregate', aggregates: aggs });
        // a rollup stage after it sees the window results (core/graph/build.ts windowResultFields)
        if (!lastKeyBy || !lastWindow)
          fields = undefined; // that stage was invalid: its results are unknown
        else if (fields) {
          const next: ExprFields = { key: 'string' };
          if (lastKeyBy.length > 1) for (const f of lastKeyBy) next[f] = fields[f] ?? 'string';
          next.windowStart = 'int';
          next.windowEnd = 'int';
          if (lastWindow.type === 'tumbling' && 'calendar' in lastWindow) next[LOCAL_DATE_FIELD] = 'string';
          for (const a of aggs) next[a.output] = a.kind === 'count' ? 'int' : 'double';
          fields = next;
        }
        return;
      }
      case 'detect': {
        const d = normaliseDetect(body, fields, [...at, 'detect'], problems);
        if (!d) {
          ok = false;
          return;
        }
        steps.push(withP({ kind: 'detect', detect: d }));
        return;
      }
    }
  });

  // structure: [filter|map]* ( keyBy window aggregate )* ( keyBy ( window aggregate | detect | running ) )?
  // Every keyBy after the first starts a rollup stage over the window results of the stage before.
  const keyBys = kinds.flatMap((k, i) => (k === 'keyBy' ? [i] : []));
  kinds.forEach((k, i) => {
    const at: PathPart[] = ['steps', i];
    if (k === 'keyBy') {
      if (kinds[i + 1] !== 'window' && kinds[i + 1] !== 'detect' && kinds[i + 1] !== 'running')
        fail(at, 'keyBy must be followed by a window, a detect or a running step');
      else if (i !== keyBys[0] && kinds[i - 1] !== 'aggregate' && kinds[i - 1] !== 'filter' && kinds[i - 1] !== 'map')
        fail(at, 'a second keyBy (a rollup stage) must follow a window + aggregate stage');
    } else if (k === 'window') {
      if (kinds[i - 1] !== 'keyBy') fail(at, 'window must directly follow a keyBy step');
      if (kinds[i + 1] !== 'aggregate') fail(at, 'window must be followed by an aggregate step');
      const w = windowAt.get(i);
      if (w && i < keyBys[keyBys.length - 1] && (w.allowedLatenessMs ?? 0) > 0)
        fail(
          [...at, 'window', 'allowedLatenessMs'],
          'a window whose results feed a rollup stage cannot emit updates (the next stage would count a window twice); set allowedLatenessMs on the last window only',
        );
    } else if (k === 'detect' || k === 'running') {
      // one keyed stage per job for these: each needs the keyBy's hash exchange of raw readings
      if (keyBys.length > 1 || kinds.includes('window'))
        fail(at, `${k} cannot be combined with window/aggregate or rollup stages in one job; run it as its own job`);
      else if (kinds[i - 1] !== 'keyBy') fail(at, `${k} must directly follow a keyBy step`);
      else if (i !== kinds.length - 1) fail(['steps', i + 1], `no step may follow ${k}`);
    } else if (k === 'aggregate') {
      if (kinds[i - 1] !== 'window') fail(at, 'aggregate needs a window step before it');
      else if (i !== kinds.length - 1 && kinds[i + 1] !== 'keyBy')
        fail(['steps', i + 1], 'only a keyBy (a rollup stage) may follow aggregate');
    }
  });
  return ok ? steps : undefined;
}

function normaliseWindow(raw: unknown, at: PathPart[], problems: Problems): WindowSpec | undefined {
  if (!isObject(raw)) {
    problems.add(at, `expected an object, got ${describe(raw)}`);
    return undefined;
  }
  let body = raw;
  if ('parallelism' in raw) {
    problems.add(
      [...at, 'parallelism'],
      'set parallelism beside the step, not inside it: `- window: {...}` and `parallelism: N` on the next line',
    );
    const { parallelism: _, ...rest } = raw;
    body = rest;
  }
  switch (body.type) {
    case 'tumbling': {
      if ('calendar' in body) {
        // local days / weeks / months in a time zone (core/windows/calendar.ts); no sizeMs, no offsetMs
        const c = problems.parse(calendarWindowSchema, body, at);
        if (c && !isValidZone(c.timeZone)) problems.add([...at, 'timeZone'], `unknown time zone "${c.timeZone}"`);
        else return c;
        return undefined;
      }
      const w = problems.parse(tumblingSchema, body, at);
      if (!w) return undefined;
      if (Math.abs(w.offsetMs) >= w.sizeMs) {
        problems.add([...at, 'offsetMs'], `must be smaller than sizeMs (${w.sizeMs}) in absolute value`);
        return undefined;
      }
      return w;
    }
    case 'sliding': {
      const w = problems.parse(slidingSchema, body, at);
      if (!w) return undefined;
      let ok = true;
      if (w.slideMs > w.sizeMs) {
        problems.add([...at, 'slideMs'], `must be at most sizeMs (${w.sizeMs})`);
        ok = false;
      }
      if (Math.abs(w.offsetMs) >= w.slideMs) {
        problems.add([...at, 'offsetMs'], `must be smaller than slideMs (${w.slideMs}) in absolute value`);
        ok = false;
      }
      return ok ? w : undefined;
    }
    case 'session':
      return problems.parse(sessionSchema, body, at);
    default:
      problems.add([...at, 'type'], `expected tumbling | sliding | session, got ${describe(body.type)}`);
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// sinks

function normaliseSink(
  raw: unknown,
  at: string,
  sideOutput: boolean,
  baseDir: string | undefined,
  problems: Problems,
): SinkSpec | RedisStreamSinkSpec | undefined {
  if (!isObject(raw)) {
    problems.add([at], `expected an object, got ${describe(raw)}`);
    return undefined;
  }
  if (raw.type === 'file') {
    if (raw.parallelism !== undefined) {
      problems.add([at, 'parallelism'], 'cannot be set for a file sink (one file, one writer)');
      const { parallelism: _ignored, ...rest } = raw;
      problems.parse(fileSinkSchema, rest, [at]);
      return undefined;
    }
    const s = problems.parse(fileSinkSchema, raw, [at]);
    return s ? { type: 'file', path: resolvePath(s.path, baseDir) } : undefined;
  }
  if (raw.type === 'stdout') return problems.parse(stdoutSinkSchema, raw, [at]);
  if (raw.type === 'redis' && !sideOutput) {
    const s = problems.parse(redisSinkSchema, raw, [at]);
    if (!s) return undefined;
    const out: SinkSpec = { type: 'redis', keyPrefix: s.keyPrefix };
    if (s.url !== undefined) out.url = s.url;
    return out;
  }
  // side outputs: a redis stream (dead letters, late data), or a BullMQ queue (late data)
  if (raw.type === 'redis-stream' && sideOutput) return problems.parse(redisStreamSinkSchema, raw, [at]);
  if (raw.type === 'bullmq' && (!sideOutput || at === 'lateData')) return problems.parse(bullMqSinkSchema, raw, [at]);
  const expected = !sideOutput
    ? 'file | stdout | redis | bullmq'
    : at === 'lateData'
      ? 'file | stdout | redis-stream | bullmq'
      : 'file | stdout | redis-stream';
  problems.add([at, 'type'], `expected ${expected}, got ${describe(raw.type)}`);
  return undefined;
}

function sideOutputDefault(
  sink: SinkSpec | undefined,
  name: string,
  suffix: string,
  baseDir: string | undefined,
): FileSinkSpec {
  if (sink?.type === 'file') {
    const ext = path.extname(sink.path);
    const stem = ext === '' ? sink.path : sink.path.slice(0, -ext.length);
    return { type: 'file', path: `${stem}.${suffix}.jsonl` };
  }
  return { type: 'file', path: resolvePath(`out/${name}.${suffix}.jsonl`, baseDir) };
}

// ---------------------------------------------------------------------------------------------

/**
 * Validates a raw job spec (as parsed from YAML or JSON) and returns the normalised JobSpec:
 * defaults applied, steps converted to the tagged StepSpec union, relative paths resolved
 * against `opts.baseDir` (left relative when no baseDir is given). The result is plain JSON
 * (no undefined values, no class instances) and can be sent over gRPC with jobSpecToJson.
 *
 * @throws EngineError `SPEC_INVALID` listing EVERY problem in `problems`, each `path: message`
 * (e.g. `steps[2].window.sizeMs: expected a positive integer`); the message is a summary with the
 * first few problems.
 */
export function parseJobSpec(raw: unknown, opts: ParseJobSpecOptions = {}): JobSpec {
  const problems = new Problems();
  const baseDir = opts.baseDir;
  const outDir = opts.outputBaseDir ?? baseDir;
  if (!isObject(raw)) {
    problems.add([], `expected a job spec object, got ${describe(raw)}`);
    throw invalid(problems.list);
  }
  const top = problems.parse(topSchema, raw, []);
  const name = top?.name ?? (typeof raw.name === 'string' ? raw.name : 'job');
  const maxParallelism = top?.maxParallelism ?? DEFAULT_MAX_PARALLELISM;
  if (top && top.parallelism > maxParallelism)
    problems.add(['parallelism'], `must be at most maxParallelism (${maxParallelism})`);
  if (top?.reactive?.maxParallelism !== undefined && top.reactive.maxParallelism > maxParallelism)
    problems.add(
      ['reactive', 'maxParallelism'],
      `must be at most maxParallelism (${maxParallelism}): a keyed step cannot run more subtasks than there are key groups`,
    );
  if (top?.restart) {
    // the strategy checks its own fields, also for a job that has no checkpoint: block (the
    // cluster's checkpoint defaults may apply to it)
    try {
      restartStrategy(top.restart as RestartStrategyConfig);
    } catch (err) {
      const list = err instanceof EngineError ? err.problems : [];
      for (const p of list.length > 0 ? list : [(err as Error).message]) {
        const m = /^(\w+): (.*)$/.exec(p);
        if (m) problems.add(['restart', m[1]], m[2]);
        else problems.add(['restart'], p);
      }
    }
  }

  const source = 'source' in raw ? normaliseSource(raw.source, baseDir, problems) : undefined;
  const steps = Array.isArray(raw.steps)
    ? normaliseSteps(
        raw.steps,
        source ? sourceExprFields(source) : bestEffortFields(raw.source),
        maxParallelism,
        problems,
      )
    : undefined;
  const sink =
    'sink' in raw ? (normaliseSink(raw.sink, 'sink', false, outDir, problems) as SinkSpec | undefined) : undefined;
  const deadLetter =
    raw.deadLetter === undefined
      ? sideOutputDefault(sink, name, 'deadletter', outDir)
      : (normaliseSink(raw.deadLetter, 'deadLetter', true, outDir, problems) as DeadLetterSinkSpec | undefined);
  const lateData =
    raw.lateData === undefined
      ? sideOutputDefault(sink, name, 'late', outDir)
      : (normaliseSink(raw.lateData, 'lateData', true, outDir, problems) as LateDataSinkSpec | undefined);

  if (problems.list.length > 0 || !top || !source || !steps || !sink || !deadLetter || !lateData) {
    if (problems.list.length === 0) problems.add([], 'invalid job spec');
    throw invalid(problems.list);
  }
  return {
    name: top.name,
    parallelism: top.parallelism,
    maxParallelism,
    source,
    steps,
    sink,
    deadLetter,
    lateData,
    ...(top.checkpoint ? { checkpoint: top.checkpoint } : {}),
    ...(top.restart ? { restart: top.restart } : {}),
    ...(top.reactive
      ? { reactive: top.reactive.maxParallelism === undefined ? {} : { maxParallelism: top.reactive.maxParallelism } }
      : {}),
  };
}

function invalid(list: string[]): EngineError {
  const shown = list.slice(0, 3).join('; ');
  const more = list.length > 3 ? ` (and ${list.length - 3} more)` : '';
  return new EngineError(
    'SPEC_INVALID',
    `invalid job spec: ${list.length} problem${list.length === 1 ? '' : 's'}: ${shown}${more}`,
    {
      problems: [...list],
    },
  );
}

/** Serialises a normalised JobSpec for the wire (gRPC carries it as JSON text). */
export function jobSpecToJson(spec: JobSpec): string {
  return JSON.stringify(spec);
}

/**
 * Reads a JobSpec sent by jobSpecToJson. The spec was validated by the sender; this only checks
 * that the text is a JSON object with the top-level fields.
 * @throws EngineError `SPEC_INVALID` when the text is not such an object.
 */
export function jobSpecFromJson(text: string): JobSpec {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new EngineError('SPEC_INVALID', 'job spec is not valid JSON', { cause: e });
  }
  if (
    !isObject(v) ||
    typeof v.name !== 'string' ||
    !isObject(v.source) ||
    !Array.isArray(v.steps) ||
    !isObject(v.sink)
  ) {
    throw new EngineError('SPEC_INVALID', 'job spec JSON lacks name, source, steps or sink');
  }
  return v as unknown as JobSpec;
}
