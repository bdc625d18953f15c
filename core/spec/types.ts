/**
 * The validated, normalised job spec: what `parseJobSpec` (core/spec/schema.ts) returns after
 * defaults are applied. Everything downstream (job graph, operators, sources) reads only this
 * shape, never the raw YAML/JSON.
 *
 * Units: every duration is in milliseconds and its name ends in `Ms`.
 */

/** Value types a column or computed field can have. `double` and `int` are both JS numbers. */
export type FieldType = 'string' | 'double' | 'int' | 'bool';

/** One value of a record. `null` means missing (an empty CSV cell of a nullable column). */
export type Value = string | number | boolean | null;

/** A record flowing through the job: a flat object of named values. */
export type Row = Record<string, Value>;

export interface ColumnSpec {
  name: string;
  type: FieldType;
  /** When false (default), an empty or missing cell rejects the line to the dead-letter output. */
  nullable: boolean;
}

/**
 * How event time is read from a record. Exactly one of `unit`, `format`, `iso` applies:
 * - `unit`: the field is a number of ms, s or us since the Unix epoch (UTC);
 * - `format`: a Luxon pattern such as `dd-MM-yyyy HH:mm`, read in `timeZone` (default UTC);
 * - `iso`: ISO 8601 text with an offset (text without an offset is read in `timeZone`).
 * `fields` (instead of `field`) joins several columns with a space before parsing, for files that
 * keep date and time apart (SML2010: `Date` + `Time`).
 */
export interface EventTimeSpec {
  field: string;
  /** extra fields joined to `field` with a single space before parsing */
  joinFields: string[];
  unit?: 'ms' | 's' | 'us';
  format?: string;
  iso?: boolean;
  timeZone: string;
  /**
   * Plausibility range; a timestamp outside `[minMs, maxMs)` rejects the line with reason
   * `timestamp out of range`. Defaults: 2000-01-01T00:00Z .. 2100-01-01T00:00Z (BR-05).
   */
  minMs: number;
  maxMs: number;
  /** Name of the field the parsed ms timestamp is written to in the row (default `timestamp`... see schema) */
  outputField: string;
}

/** Bounded out-of-orderness watermarks: W = max(ts seen) − outOfOrdernessMs (see shared cases README). */
export interface WatermarkSpec {
  outOfOrdernessMs: number;
  /** Wall-clock ms without records after which a source split stops holding the watermark back; 0 = never. */
  idleTimeoutMs: number;
}

/** Turns one wide line into one record per listed column (energydata: T1..T9 → one reading per room). */
export interface MeltSpec {
  /** columns to unpivot */
  columns: string[];
  /** name of the new field holding the original column name (e.g. `room`) */
  nameField: string;
  /** name of the new field holding the value (e.g. `temperature`) */
  valueField: string;
  valueType: FieldType;
  /** optional relabelling of column names, e.g. { T1: kitchen } */
  names: Record<string, string>;
}

/** A boolean CEL rule checked at the source; failing lines go to the dead-letter output. */
export interface ValidateRule {
  rule: string;
  reason: string;
}

export interface FileSourceSpec {
  type: 'file';
  /** one or more paths (relative to the spec file's folder); each file is one split */
  paths: string[];
  /** the paths as written in the spec (before resolution), used in dead-letter positions; parallel to `paths` */
  displayPaths?: string[];
  /** `thingspeak-*`: ThingSpeak channel exports / feeds (core/spec/thingspeak.ts); `thingspeak` is then set */
  format: 'csv' | 'jsonl' | 'thingspeak-csv' | 'thingspeak-json';
  /** gzip is detected from the `.gz` suffix or magic bytes unless set */
  compression: 'auto' | 'gzip' | 'none';
  /**
   * Text encoding of the file (default utf8). With utf8, a line that is not valid UTF-8 is
   * rejected (`invalid UTF-8`); use latin1 for files with raw Latin-1 bytes (ULB R3's 0xA0).
   */
  encoding?: 'utf8' | 'latin1';
  /** csv only */
  delimiter: string;
  /** csv only: true = the first line is a header (skipped; names are taken from `columns`) */
  header: boolean;
  /** csv: a separator like `, ` (comma + space) trims spaces around every cell; default true */
  trim: boolean;
  /** csv: decimal comma (`21,21`), only valid when the delimiter is not a comma */
  decimalComma: boolean;
  /** Columns in file order (csv) or field names to read (jsonl). Extra cells reject the line unless `extraColumns: ignore`. */
  columns: ColumnSpec[];
  extraColumns: 'reject' | 'ignore';
  /** Maximum line length in bytes; longer lines are rejected without being buffered whole. Default 1 MiB. */
  maxLineBytes: number;
  /**
   * Keep reading as the files grow (like `tail -f`, Flink's FileSource monitorContinuously):
   * the source never ends by itself; `fluxo stop` ends it with a drain, `fluxo cancel` without.
   * Each file is read by its own subtask. Plain files only. Default false.
   */
  follow?: boolean;
  melt?: MeltSpec;
  eventTime: EventTimeSpec;
  watermark: WatermarkSpec;
  validate: ValidateRule[];
  /** set for the `thingspeak-csv` / `thingspeak-json` formats */
  thingspeak?: ThingSpeakSpec;
}

/** One ThingSpeak field a `thingspeak-*` file source reads. */
export interface ThingSpeakFieldSpec {
  /** 1..8: key `fieldN` of a JSON feed entry; in a CSV export, the N-th field column of the header */
  slot: number;
  /** name of the field in the rows */
  name: string;
  type: FieldType;
  /** false: an empty value rejects the entry (default true: it is null) */
  nullable: boolean;
}

/** ThingSpeak options of a file source (core/spec/thingspeak.ts). */
export interface ThingSpeakSpec {
  /** channel id (the sensor key); default: `channel.id` of a JSON feed, else the file name without extension */
  channel?: string;
  /** the fields read, in slot order */
  fields: ThingSpeakFieldSpec[];
}

export interface GeneratorSourceSpec {
  type: 'generator';
  /** number of synthetic sensors (`sensor-00000` ..) */
  sensors: number;
  /** total readings to produce; the source is bounded */
  count: number;
  /** readings per second of event time across all sensors (event-time spacing = 1000 / rate ms) */
  ratePerSec: number;
  seed: number;
  /** event time of the first reading (ms) */
  startMs: number;
  /** maximum random out-of-orderness added to event times (ms) */
  jitterMs: number;
  /**
   * How many splits the generator is divided into (default 1), fixed by the spec so that the
   * output never depends on the job's parallelism; each split is deterministic from (seed, split).
   */
  splits: number;
  eventTime: EventTimeSpec;
  watermark: WatermarkSpec;
  validate: ValidateRule[];
}

/**
 * A replayable log in Redis Streams (core/streams/layout.ts): partition p of stream `stream` is
 * the Redis stream `fluxo:stream:{stream}:{p}`; each partition is one split (one source subtask).
 * Each entry's `data` field holds one record, a JSON object (`jsonl`) or a CSV line (`csv`), typed
 * like a file source's lines (columns, melt, eventTime, validate; no header).
 */
export interface RedisStreamSourceSpec {
  type: 'redis-stream';
  /** stream name, `[A-Za-z0-9][A-Za-z0-9._-]*` */
  stream: string;
  /** number of partitions, each read by its own subtask; must match the stream's (default 1) */
  partitions: number;
  /** Redis URL; default: the cluster's Redis */
  url?: string;
  /**
   * true: read the entries present when the job first reads each partition, then end (the bound is
   * kept in checkpoints); false (default): follow the stream until `fluxo stop` / `cancel`.
   */
  bounded: boolean;
  /** longest wait (ms) of one blocking read of an unbounded stream, default 100 */
  blockMs: number;
  format: 'csv' | 'jsonl';
  delimiter: string;
  trim: boolean;
  decimalComma: boolean;
  columns: ColumnSpec[];
  extraColumns: 'reject' | 'ignore';
  melt?: MeltSpec;
  eventTime: EventTimeSpec;
  watermark: WatermarkSpec;
  validate: ValidateRule[];
}

export type SourceSpec = FileSourceSpec | GeneratorSourceSpec | RedisStreamSourceSpec;

export interface TumblingWindowSpec {
  type: 'tumbling';
  sizeMs: number;
  offsetMs: number;
}
export interface SlidingWindowSpec {
  type: 'sliding';
  sizeMs: number;
  slideMs: number;
  offsetMs: number;
}
/** Local calendar periods a `calendar` tumbling window can span. */
export type CalendarUnit = 'day' | 'week' | 'month';
/**
 * Tumbling windows aligned to local calendar periods in an IANA time zone (YAML
 * `{ type: tumbling, calendar: day, timeZone: Europe/Brussels }`): each window is one local day
 * (from local midnight to the next), ISO week (Monday to Monday) or month, so its length in ms
 * follows daylight-saving changes (a local day is 23 h at spring-forward, 25 h at fall-back).
 * Window starts and ends stay ms since the epoch (core/windows/assigners.ts).
 */
export interface CalendarWindowSpec {
  type: 'tumbling';
  calendar: CalendarUnit;
  /** IANA zone, e.g. `Europe/Brussels`; default `UTC` */
  timeZone: string;
}
/** Gap-based session windows (designed now; built in the IoT issue). */
export interface SessionWindowSpec {
  type: 'session';
  gapMs: number;
}
export type WindowSpec = (TumblingWindowSpec | CalendarWindowSpec | SlidingWindowSpec | SessionWindowSpec) & {
  allowedLatenessMs: number;
};

export type AggregateKind = 'count' | 'sum' | 'avg' | 'min' | 'max';
/** `avg: "avg(temperature)"` → { output: 'avg', kind: 'avg', field: 'temperature' }; count has no field. */
export interface AggregateSpec {
  output: string;
  kind: AggregateKind;
  field?: string;
}

export type StepSpec =
  | { kind: 'filter'; expr: string; parallelism?: number }
  | {
      kind: 'map' /** output field → CEL expression over the row */;
      fields: Record<string, string>;
      parallelism?: number;
    }
  | { kind: 'keyBy'; fields: string[] }
  | { kind: 'window'; window: WindowSpec; parallelism?: number }
  | { kind: 'aggregate'; aggregates: AggregateSpec[] }
  | { kind: 'detect'; detect: DetectSpec; parallelism?: number }
  /** a continuous keyed aggregate, one upsert row per update (core/running/running-operator.ts) */
  | { kind: 'running'; aggregates: AggregateSpec[]; parallelism?: number };

/**
 * One rule of a `detect` step (core/detect/detect-operator.ts), evaluated on each accepted
 * reading of a key against its predecessor (the key's previous accepted reading in event-time
 * order) or its exponentially weighted statistics. `name` is written to the alert's `rule` field
 * (default: the type). Values are in the unit of the value field (°C for temperatures).
 * - `jump`: |value − previous value| ≥ `minDelta`;
 * - `rate`: |Δvalue / Δt| > `perMinute`, Δt in minutes (not evaluated when Δt = 0);
 * - `zscore`: |value − EWMA mean| > `k` · max(EWMA std dev, `minStdDev`), once `warmup` readings
 *   have entered the statistics (exponential smoothing factor `alpha` in (0, 1]).
 */
export type DetectRule =
  | { type: 'jump'; name: string; minDelta: number }
  | { type: 'rate'; name: string; perMinute: number }
  | { type: 'zscore'; name: string; k: number; alpha: number; warmup: number; minStdDev: number };

/** A keyed spike-detection step: rules over the numeric field `valueField` (e.g. `temperature`). */
export interface DetectSpec {
  valueField: string;
  rules: DetectRule[];
}

export interface FileSinkSpec {
  type: 'file';
  path: string;
}
export interface StdoutSinkSpec {
  type: 'stdout';
}
export interface RedisSinkSpec {
  type: 'redis';
  /** Redis URL; default: the cluster's Redis */
  url?: string;
  /** hash key prefix; a row is written with HSET `${keyPrefix}:${key}:${windowStart}` */
  keyPrefix: string;
}
/** Alerts (or rows) to a BullMQ queue, one job per row, idempotent by id (core/sinks/bullmq-sink.ts). */
export interface BullMqSinkSpec {
  type: 'bullmq';
  /** queue name */
  queue: string;
  /** Redis URL of the queue; default: the cluster's Redis */
  url?: string;
  /** row fields the job id is made of; default sensor, ts, rule (alerts) or key, windowStart */
  idFields?: string[];
  /** seconds completed jobs are kept (their ids keep deduplicating). Default 604800 */
  keepCompletedS?: number;
  /** attempts a worker gets per job. Default 5 */
  attempts?: number;
  /** first retry delay, ms, doubled each time. Default 1000 */
  backoffMs?: number;
}
export type SinkSpec = FileSinkSpec | StdoutSinkSpec | RedisSinkSpec | BullMqSinkSpec;
/**
 * A side output (dead letters, late readings) appended to the Redis stream `stream`: one entry per
 * row in `fluxo:stream:{stream}:0` (core/streams/layout.ts, one partition), field `data`: the row
 * as one JSON object plus `rowId`, a deterministic id of the row (core/sinks/redis-stream-sink.ts).
 * At-least-once: a replay after recovery appends rows again with the same `rowId`.
 */
export interface RedisStreamSinkSpec {
  type: 'redis-stream';
  /** stream name (`[A-Za-z0-9][A-Za-z0-9._-]*`) */
  stream: string;
  /** Redis URL; default: the cluster's Redis */
  url?: string;
}
/** Where dead letters can go. */
export type DeadLetterSinkSpec = FileSinkSpec | StdoutSinkSpec | RedisStreamSinkSpec;
/** Where late readings can go (a bullmq sink: one job per late reading, id over all its fields). */
export type LateDataSinkSpec = FileSinkSpec | StdoutSinkSpec | RedisStreamSinkSpec | BullMqSinkSpec;

export interface JobSpec {
  name: string;
  /** default parallelism of every step */
  parallelism: number;
  /** number of key groups; the upper bound of any keyed step's parallelism. Default 128. */
  maxParallelism: number;
  source: SourceSpec;
  steps: StepSpec[];
  sink: SinkSpec;
  /** where rejected lines go; default: file `<sink path>.deadletter.jsonl` (or out/<name>.deadletter.jsonl) */
  deadLetter: DeadLetterSinkSpec;
  /** where late readings go; default: file `<sink path>.late.jsonl` (or out/<name>.late.jsonl) */
  lateData: LateDataSinkSpec;
  /**
   * Periodic checkpoints (asynchronous barrier snapshots); absent = none. Defaults: timeoutMs
   * 60000, minPauseMs 0, retained 3, tolerableFailures 0 (Flink's), mode exactly-once.
   */
  /**
   * How a job with checkpoints restarts after a failure (core/restart): `exponential-delay`
   * (default; initialBackoffMs 1000, maxBackoffMs 300000, multiplier 2, jitterFactor 0.1),
   * `fixed-delay`, `failure-rate` or `none`. Jobs without checkpoints never restart.
   */
  restart?: { type: 'exponential-delay' | 'fixed-delay' | 'failure-rate' | 'none'; [option: string]: unknown };
  checkpoint?: {
    intervalMs: number;
    timeoutMs: number;
    minPauseMs: number;
    retained: number;
    tolerableFailures: number;
    mode: 'exactly-once' | 'at-least-once';
  };
  /**
   * Reactive mode (a JobManager started with `--scheduler reactive`, jobmanager/reactive.ts): the
   * job's keyed steps run at as many subtasks as there are slots for it, at most
   * `maxParallelism` (a positive integer ≤ the job's `maxParallelism`; default: the job's
   * `maxParallelism`, the number of key groups). Ignored by the default scheduler. Absent = no cap.
   */
  reactive?: { maxParallelism?: number };
}

/** A rejected input line, as written to the dead-letter output. */
export interface DeadLetter {
  /** why it was rejected, e.g. `expected 3 fields, got 2` or `timestamp out of range` */
  reason: string;
  /** where: `path:line` (1-based line number) */
  source: string;
  /** the line's text (truncated to 1 KiB; invalid UTF-8 shown with U+FFFD) */
  raw: string;
}
