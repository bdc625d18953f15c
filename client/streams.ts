/**
 * `fluxo produce` and `fluxo replay`: push CSV or JSON lines into a replayable stream (layout and
 * partitioner: core/streams/layout.ts), batched (one pipeline per `batch` records).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Redis } from 'ioredis';
import { DateTime } from 'luxon';
import { redactUrl } from '../core/config/local-redis.js';
import { EngineError, ioReason } from '../core/errors/index.js';
import { splitCells } from '../core/source/csv.js';
import type { EventTimeSpec } from '../core/spec/types.js';
import { recordKeyReader, StreamWriter, streamPartitions } from '../core/streams/layout.js';
import { compileTimestampParser, DEFAULT_MAX_MS, DEFAULT_MIN_MS } from '../core/time/timestamps.js';

export interface ProduceOptions {
  stream: string;
  /** input file (`.gz` is gunzipped); default stdin */
  file?: string;
  /** default: the stream's recorded count, else 1 */
  partitions?: number;
  /** partitioning key field; default none (round-robin) */
  key?: string;
  /** default csv for `.csv(.gz)` files, else json */
  format?: 'json' | 'csv';
  /** csv column names; default: the first line is a header (not appended) */
  columns?: string[];
  delimiter: string;
  redisUrl: string;
  /** records per pipeline, default 1000 */
  batch: number;
}

export interface ProduceResult {
  stream: string;
  appended: number;
  perPartition: number[];
}

/** A line source: the file (gunzipped when it ends in .gz) or stdin, as a readline interface. */
function lineInput(file: string | undefined): AsyncIterable<string> & { close(): void } {
  let input: Readable = process.stdin;
  if (file !== undefined) {
    const raw = createReadStream(file);
    input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
    raw.on('error', (e) => input.destroy(e));
  }
  return createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
}

function inputError(file: string | undefined, e: unknown): EngineError {
  if (e instanceof EngineError) return e;
  return new EngineError('SOURCE_IO', `cannot read ${file ?? 'stdin'}: ${ioReason(e)}`, { cause: e });
}

function formatOf(o: { format?: 'json' | 'csv'; file?: string }): 'json' | 'csv' {
  return o.format ?? (o.file && /\.csv(\.gz)?$/i.test(o.file) ? 'csv' : 'json');
}

/** Column names of a CSV header line (quotes removed, trimmed). */
function headerColumns(line: string, delimiter: string, where: string): string[] {
  const cells: string[] = [];
  const bad = splitCells(line, delimiter, cells);
  if (bad !== null) throw new EngineError('SPEC_INVALID', `${where}: header line: ${bad}`);
  return cells.map((c) => c.trim());
}

async function connect(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, connectTimeout: 5000 });
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new EngineError('REDIS_UNAVAILABLE', `cannot reach Redis at ${redactUrl(url)}: ${(e as Error).message}`, {
      cause: e,
      retryable: true,
    });
  }
  return redis;
}

async function openWriter(
  redis: Redis,
  o: Pick<ProduceOptions, 'stream' | 'partitions' | 'batch'>,
  keyOf: ((record: string) => string | undefined) | undefined,
): Promise<StreamWriter> {
  const partitions = o.partitions ?? (await streamPartitions(redis, o.stream)) ?? 1;
  const writer = new StreamWriter(redis, o.stream, partitions, { batchEntries: o.batch, keyOf });
  await writer.open();
  return writer;
}

/**
 * Appends every non-empty line of the input to stream `o.stream`, partitioned by `o.key`.
 * Records keep their text (a CSV line or a JSON object); a record whose key cannot be read goes
 * to the partition of the empty key (its job's source dead-letters it if it is invalid).
 * @throws EngineError `SOURCE_IO` (input), `REDIS_UNAVAILABLE` / `SINK_IO` (Redis),
 *   `SPEC_INVALID` (bad name, key not a column, partition count differs from the stream's)
 */
export async function produce(o: ProduceOptions): Promise<ProduceResult> {
  const format = formatOf(o);
  const redis = await connect(o.redisUrl);
  // after the connect: readline reads from its creation on, and lines emitted before the loop
  // starts iterating would be lost
  const lines = lineInput(o.file);
  try {
    let writer: StreamWriter | undefined;
    let columns = o.columns;
    const where = o.file ?? 'stdin';
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        if (!writer) {
          if (format === 'csv' && columns === undefined) {
            columns = headerColumns(line, o.delimiter, where);
            writer = await openWriter(redis, o, keyReader(format, o.key, columns, o.delimiter));
            continue;
          }
          writer = await openWriter(redis, o, keyReader(format, o.key, columns, o.delimiter));
        }
        await writer.append(line);
      }
    } catch (e) {
      throw inputError(o.file, e);
    }
    writer ??= await openWriter(redis, o, undefined);
    await writer.flush();
    return { stream: o.stream, appended: writer.written, perPartition: [...writer.perPartition] };
  } finally {
    lines.close();
    redis.disconnect();
  }
}

function keyReader(
  format: 'json' | 'csv',
  key: string | undefined,
  columns: string[] | undefined,
  delimiter: string,
): ((record: string) => string | undefined) | undefined {
  if (key === undefined) return undefined;
  return recordKeyReader(format === 'csv' ? 'csv' : 'jsonl', key, columns ?? [], delimiter);
}

// ---------------------------------------------------------------------------------------------
// replay

export interface ReplayOptions extends Omit<ProduceOptions, 'file'> {
  file: string;
  /** event time per wall-clock time: 600 = 10 minutes of event time per second */
  speedup: number;
  timeField: string;
  timeUnit?: 'ms' | 's' | 'us';
  timeFormat?: string;
  timeIso?: boolean;
  timeZone: string;
  /** progress output: a bar (TTY) or a line every `progressEveryMs` (default 2000) */
  progress: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  progressEveryMs?: number;
}

export interface ReplayResult extends ProduceResult {
  /** lines without a valid event time, skipped */
  skipped: number;
  firstSkipped?: string;
  /** event time span replayed, ms */
  eventSpanMs: number;
  wallMs: number;
}

interface Timed {
  ts: number;
  line: string;
}

/**
 * Reads the whole file, orders its records by event time (stable: equal times keep file order)
 * and appends them at `speedup` × real time: the record with event time `t` is appended at
 * `start + (t − t₀) / speedup` ms of wall-clock time (t₀ = the earliest event time). Records due
 * together are appended in one pipeline. Lines whose event time cannot be read are skipped and
 * counted (`skipped`, `firstSkipped` names the first with its reason).
 * Event time: `timeField` read like a source's `eventTime` (one of unit, format (Luxon) or iso;
 * `timeZone` for text without an offset, default UTC).
 * @throws EngineError as produce, and `SPEC_INVALID` when no event-time mode is given
 */
export async function replay(o: ReplayOptions): Promise<ReplayResult> {
  const modes = [o.timeUnit !== undefined, o.timeFormat !== undefined, o.timeIso === true].filter(Boolean).length;
  if (modes !== 1) throw new EngineError('SPEC_INVALID', 'set exactly one of --time-unit, --time-format, --time-iso');
  if (!(o.speedup > 0) || !Number.isFinite(o.speedup))
    throw new EngineError('SPEC_INVALID', `--speedup must be a positive number, got ${o.speedup}`);
  const format = formatOf(o);
  const et: EventTimeSpec = {
    field: o.timeField,
    joinFields: [],
    timeZone: o.timeZone,
    minMs: DEFAULT_MIN_MS,
    maxMs: DEFAULT_MAX_MS,
    outputField: o.timeField,
  };
  if (o.timeUnit) et.unit = o.timeUnit;
  if (o.timeFormat) et.format = o.timeFormat;
  if (o.timeIso) et.iso = true;
  const parse = compileTimestampParser(et);

  // read and time every record
  const records: Timed[] = [];
  let columns = o.columns;
  let timeIdx = -1;
  let skipped = 0;
  let firstSkipped: string | undefined;
  const cells: string[] = [];
  let lineNo = 0;
  const lines = lineInput(o.file);
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      if (format === 'csv' && columns === undefined) {
        columns = headerColumns(line, o.delimiter, o.file);
        continue;
      }
      if (format === 'csv' && timeIdx < 0) {
        timeIdx = (columns as string[]).indexOf(o.timeField);
        if (timeIdx < 0)
          throw new EngineError(
            'SPEC_INVALID',
            `--time-field ${o.timeField} is not a column of ${o.file} (columns: ${(columns as string[]).join(', ')})`,
          );
      }
      let value: unknown;
      if (format === 'csv') {
        value = splitCells(line, o.delimiter, cells) === null ? cells[timeIdx]?.trim() : undefined;
      } else {
        try {
          value = (JSON.parse(line) as Record<string, unknown>)?.[o.timeField];
        } catch {
          value = undefined;
        }
      }
      const ts = typeof value === 'string' || typeof value === 'number' ? parse(value, {}) : `no field ${o.timeField}`;
      if (typeof ts === 'string') {
        skipped++;
        firstSkipped ??= `line ${lineNo}: ${ts}`;
        continue;
      }
      records.push({ ts, line });
    }
  } catch (e) {
    throw inputError(o.file, e);
  } finally {
    lines.close();
  }
  records.sort((a, b) => a.ts - b.ts); // Array#sort is stable

  const redis = await connect(o.redisUrl);
  const progress = new Progress(o.progress, records.length, o.progressEveryMs ?? 2000);
  const started = Date.now();
  try {
    const writer = await openWriter(redis, o, keyReader(format, o.key, columns, o.delimiter));
    const t0 = records[0]?.ts ?? 0;
    let i = 0;
    while (i < records.length) {
      const now = Date.now();
      const due = (k: number) => started + ((records[k] as Timed).ts - t0) / o.speedup;
      if (due(i) > now) {
        progress.update(i, (records[i] as Timed).ts, false);
        await new Promise((r) => setTimeout(r, Math.min(due(i) - now, 100)));
        continue;
      }
      // everything due by now, at most one batch
      const end = Math.min(records.length, i + o.batch);
      while (i < end && due(i) <= now) await writer.append((records[i++] as Timed).line);
      await writer.flush();
      progress.update(i, (records[i - 1] as Timed).ts, false);
    }
    await writer.flush();
    progress.update(records.length, records[records.length - 1]?.ts ?? t0, true);
    return {
      stream: o.stream,
      appended: writer.written,
      perPartition: [...writer.perPartition],
      skipped,
      ...(firstSkipped !== undefined ? { firstSkipped } : {}),
      eventSpanMs: records.length > 0 ? (records[records.length - 1] as Timed).ts - t0 : 0,
      wallMs: Date.now() - started,
    };
  } finally {
    progress.end();
    redis.disconnect();
  }
}

/**
 * Replay progress: on a TTY one redrawn line with a bar
 * (`[#####.....] 1234/5000 25% 812/s event time 2016-01-12 10:00Z`, at most 10 redraws a second);
 * otherwise a plain line every `everyMs` and at the end.
 */
class Progress {
  private last = 0;
  private readonly started = Date.now();
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    private readonly total: number,
    private readonly everyMs: number,
  ) {}

  update(done: number, eventMs: number, final: boolean): void {
    const now = Date.now();
    const tty = this.out.isTTY === true;
    if (!final && now - this.last < (tty ? 100 : this.everyMs)) return;
    this.last = now;
    const pct = this.total === 0 ? 100 : Math.floor((done / this.total) * 100);
    const secs = Math.max((now - this.started) / 1000, 0.001);
    const rate = Math.round(done / secs);
    const at = DateTime.fromMillis(eventMs, { zone: 'utc' }).toFormat("yyyy-MM-dd HH:mm:ss'Z'");
    const text = `${done}/${this.total} ${pct}% ${rate}/s event time ${at}`;
    if (tty) {
      const width = 24;
      const full = Math.round((pct / 100) * width);
      this.out.write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${text}\u001b[K`);
      this.drawn = true;
    } else {
      this.out.write(`replay: ${text}\n`);
    }
  }

  end(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
