/**
 * A side-output sink (dead letters, late readings) that appends each row to a Fluxo stream in
 * Redis Streams (core/streams/layout.ts): stream `{name}` with ONE partition, key
 * `fluxo:stream:{name}:0`, written with the layout's `StreamWriter` (`XADD … * data <json>`), so
 * `fluxo deadletters`, `XRANGE`, or another job's `redis-stream` source (format jsonl) can read it.
 *
 * Entry: the field `data` holds the row as one JSON object, the schema's fields in schema order,
 * plus `rowId` (ROW_ID_FIELD): the first 16 hex digits of the SHA-1 of the row's JSON over its
 * identity fields (every field except `watermarkMs`, which depends on channel timing). The same
 * row of the same job always gets the same `rowId`.
 *
 * Delivery: **at-least-once**, not transactional. Rows are appended as they come (batched per 256
 * rows and at each watermark), not at checkpoints. After a failure the job restores its latest
 * completed checkpoint and replays from there, so rows written after that checkpoint are appended
 * again, with the same `rowId`: readers deduplicate by `rowId` (`fluxo deadletters` does). Nothing
 * is lost: a row is in Redis before the task finishes (end of input waits for every write).
 *
 * Errors: a failed write fails the task at its next record, watermark or end of input with
 * `SINK_IO` (retryable), or `SPEC_INVALID` when the stream exists with another partition count.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { EngineError } from '../errors/index.js';
import type { FieldDesc } from '../graph/types.js';
import { jsonLineRenderer } from '../runtime/sinks.js';
import type { RedisStreamSinkSpec, Row } from '../spec/types.js';
import { StreamWriter } from '../streams/layout.js';
import { BatchedSink } from './batched-sink.js';
import { DEFAULT_COMMAND_TIMEOUT_MS } from './redis-write-ahead.js';

/** The JSON field of a stream entry's record that carries its deterministic row id. */
export const ROW_ID_FIELD = 'rowId';
/** Fields left out of the row id: they may differ between a run and its replay. */
const NOT_IDENTITY = new Set(['watermarkMs']);
const BATCH = 256;

/**
 * Renders rows of `fields` as stream records: `{...fields, "rowId": "<16 hex>"}`.
 * Exported for tests and for readers that want to recompute ids.
 */
export function streamRecordRenderer(fields: FieldDesc[]): (row: Row) => string {
  const render = jsonLineRenderer(fields);
  const renderId = jsonLineRenderer(fields.filter((f) => !NOT_IDENTITY.has(f.name)));
  return (row) => {
    const id = createHash('sha1').update(renderId(row)).digest('hex').slice(0, 16);
    const line = render(row);
    return line === '{}' ? `{"${ROW_ID_FIELD}":"${id}"}` : `${line.slice(0, -1)},"${ROW_ID_FIELD}":"${id}"}`;
  };
}

/** Appends rows to `fluxo:stream:{spec.stream}:0`; see the module comment. */
export class RedisStreamSink extends BatchedSink<string> {
  private readonly client: Redis;
  private readonly writer: StreamWriter;
  private readonly render: (row: Row) => string;
  private opened = false;

  /**
   * @param defaultUrl the cluster's Redis, used when the spec has no `url`
   * @param onRow called for each row taken (the task's `rowsWritten` counter)
   */
  constructor(
    private readonly spec: RedisStreamSinkSpec,
    defaultUrl: string,
    fields: FieldDesc[],
    onRow: () => void,
    opts: { commandTimeoutMs?: number } = {},
  ) {
    super(BATCH, onRow);
    this.client = new Redis(spec.url ?? defaultUrl, {
      maxRetriesPerRequest: 3,
      commandTimeout: opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    });
    this.client.on('error', () => {});
    this.writer = new StreamWriter(this.client, spec.stream, 1, { batchEntries: 10_000 });
    this.render = streamRecordRenderer(fields);
  }

  protected itemOf(row: Row): string {
    return this.render(row);
  }

  protected async writeBatch(records: string[]): Promise<void> {
    if (!this.opened) {
      await this.writer.open();
      this.opened = true;
    }
    for (const r of records) await this.writer.append(r, 0);
    await this.writer.flush();
  }

  protected failureOf(err: unknown): EngineError {
    return err instanceof EngineError
      ? err
      : new EngineError('SINK_IO', `cannot append to stream ${this.spec.stream}: ${(err as Error).message}`, {
          cause: err,
          retryable: true,
        });
  }

  protected async disconnect(graceful: boolean): Promise<void> {
    if (graceful) await this.client.quit();
    else this.client.disconnect();
  }
}
