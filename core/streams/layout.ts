/**
 * The replayable log: how Fluxo lays out a named sensor stream in Redis Streams. Everything that
 * writes into or reads from such a stream (the `redis-stream` source, `fluxo produce`,
 * `fluxo replay`, an ingest bridge) goes through this module, so the layout is written once.
 *
 * Layout of stream `{name}` with P partitions:
 *
 * | key                          | type   | content                                              |
 * |------------------------------|--------|------------------------------------------------------|
 * | `fluxo:stream:{name}:{p}`    | stream | partition p (0 ≤ p < P); one entry per record        |
 * | `fluxo:stream:{name}:meta`   | hash   | `partitions` = P, written once by the first producer |
 * | `fluxo:stream:{name}:rejected` | stream | payloads an ingest bridge could not turn into a record |
 * | `fluxo:stream:{name}:seen:*` | string | an ingest bridge's duplicate-delivery markers (TTL)  |
 *
 * - An entry holds one record in the field `data` (RECORD_FIELD): one JSON object (a JSON line,
 *   without the newline) or one CSV line (no header; columns as the reading job declares them).
 *   Entry ids are Redis-generated (`<ms>-<seq>`, `XADD … *`), so they grow within a partition.
 * - Partitioner: a record whose key field has the value `k` goes to partition
 *   `murmur3_32(utf8(k)) mod P` (core/state/keygroups.ts, the hash of key groups), so one sensor's
 *   readings stay in one partition, in the order they were appended. Records without a key
 *   (no key field chosen) are dealt round-robin by their sequence number: record i → i mod P.
 * - The partition count is fixed at the first write (`meta.partitions`); a producer or source
 *   with another count is refused, since it would scatter a sensor over partitions.
 *
 * Names: `[A-Za-z0-9][A-Za-z0-9._-]*` (no `:`, so keys cannot collide), at most 200 characters.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { EngineError } from '../errors/index.js';
import { splitCells } from '../source/csv.js';
import { murmur3_32 } from '../state/keygroups.js';

/** The entry field that holds the record text. */
export const RECORD_FIELD = 'data';
/** Valid stream names. */
export const STREAM_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
/** Upper bound on partitions of one stream. */
export const MAX_PARTITIONS = 1024;

/** Key of partition `partition` (0-based) of stream `name`: `fluxo:stream:{name}:{partition}`. */
export function streamKey(name: string, partition: number): string {
  return `fluxo:stream:${name}:${partition}`;
}

/** Key of the stream's metadata hash: `fluxo:stream:{name}:meta`. */
export function streamMetaKey(name: string): string {
  return `fluxo:stream:${name}:meta`;
}

/** The keys of one stream, for writers that build their own commands (e.g. in a Lua script). */
export interface StreamLayout {
  name: string;
  partitions: number;
  /** `fluxo:stream:{name}`: every key of the stream starts with it */
  prefix: string;
  /** the entry field holding the record (RECORD_FIELD) */
  field: string;
  /** partition keys, index = partition */
  keys: string[];
  metaKey: string;
  /** `fluxo:stream:{name}:rejected`, a stream of what an ingest bridge rejected */
  rejectedKey: string;
  /** partition of a record with partitioning key `key` */
  partitionFor(key: string): number;
  /** stream key of the partition of a record with partitioning key `key` */
  keyFor(key: string): string;
}

/**
 * The layout of stream `name` with `partitions` partitions.
 * @throws EngineError `SPEC_INVALID` on a bad name or count
 */
export function streamLayout(name: string, partitions: number): StreamLayout {
  checkStream(name, partitions);
  const keys = Array.from({ length: partitions }, (_, p) => streamKey(name, p));
  return {
    name,
    partitions,
    prefix: `fluxo:stream:${name}`,
    field: RECORD_FIELD,
    keys,
    metaKey: streamMetaKey(name),
    rejectedKey: `fluxo:stream:${name}:rejected`,
    partitionFor: (key) => partitionOf(key, partitions),
    keyFor: (key) => keys[partitionOf(key, partitions)] as string,
  };
}

/**
 * Checks a stream name and partition count.
 * @throws EngineError `SPEC_INVALID` naming the bad value.
 */
export function checkStream(name: string, partitions: number): void {
  if (!STREAM_NAME_RE.test(name))
    throw new EngineError(
      'SPEC_INVALID',
      `stream name "${name}": expected letters, digits, ".", "_" or "-" (at most 200, no ":")`,
    );
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS)
    throw new EngineError(
      'SPEC_INVALID',
      `partitions: expected an integer from 1 to ${MAX_PARTITIONS}, got ${partitions}`,
    );
}

/** Partition of a record whose key is `key`: `murmur3_32(utf8(key)) mod partitions`. */
export function partitionOf(key: string, partitions: number): number {
  return murmur3_32(key) % partitions;
}

/** An entry id `<ms>-<seq>` as two numbers; `null` when malformed. */
export function parseEntryId(id: string): [number, number] | null {
  const m = /^(\d{1,16})-(\d{1,16})$/.exec(id);
  if (!m) return null;
  return [Number(m[1]), Number(m[2])];
}

/**
 * Orders two entry ids (`<ms>-<seq>`): negative, 0 or positive. Both must be well formed.
 * @throws EngineError `PROTOCOL` on a malformed id
 */
export function compareEntryIds(a: string, b: string): number {
  const x = parseEntryId(a);
  const y = parseEntryId(b);
  if (!x || !y) throw new EngineError('PROTOCOL', `malformed stream entry id "${x ? b : a}"`);
  return x[0] !== y[0] ? x[0] - y[0] : x[1] - y[1];
}

/**
 * The partition count recorded for stream `name`, or undefined when nothing was written yet.
 * @throws EngineError `PROTOCOL` when the metadata is not a positive integer
 */
export async function streamPartitions(redis: Redis, name: string): Promise<number | undefined> {
  const raw = await redis.hget(streamMetaKey(name), 'partitions');
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new EngineError('PROTOCOL', `${streamMetaKey(name)} holds partitions=${JSON.stringify(raw)}`);
  return n;
}

/**
 * Records `partitions` for stream `name` unless a count is already recorded (HSETNX), and
 * returns the recorded count.
 * @throws EngineError `SPEC_INVALID` when the stream already has another partition count
 */
export async function claimStreamPartitions(redis: Redis, name: string, partitions: number): Promise<number> {
  checkStream(name, partitions);
  await redis.hsetnx(streamMetaKey(name), 'partitions', String(partitions));
  const recorded = (await streamPartitions(redis, name)) as number;
  if (recorded !== partitions)
    throw new EngineError(
      'SPEC_INVALID',
      `stream ${name} has ${recorded} partitions (${streamMetaKey(name)}), not ${partitions}; use --partitions ${recorded} or another stream name`,
    );
  return recorded;
}

/**
 * Extracts the partitioning key from one record's text.
 * - `jsonl`: the value of field `keyField` of the JSON object (strings as they are, numbers and
 *   booleans as JSON text);
 * - `csv`: the cell at the index of `keyField` in `columns` (RFC 4180 quoting, `delimiter`),
 *   trimmed.
 * The returned function gives undefined when the record has no such value (invalid JSON, too few
 * cells, null): such records go to the partition of the empty key, and the reading job's source
 * sends them to its dead letters if they are invalid.
 * @throws EngineError `SPEC_INVALID` when csv is asked for and `keyField` is not in `columns`
 */
export function recordKeyReader(
  format: 'csv' | 'jsonl',
  keyField: string,
  columns: string[] = [],
  delimiter = ',',
): (record: string) => string | undefined {
  if (format === 'jsonl') {
    return (record) => {
      let obj: unknown;
      try {
        obj = JSON.parse(record);
      } catch {
        return undefined;
      }
      if (typeof obj !== 'object' || obj === null) return undefined;
      const v = (obj as Record<string, unknown>)[keyField];
      return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
    };
  }
  const idx = columns.indexOf(keyField);
  if (idx < 0)
    throw new EngineError(
      'SPEC_INVALID',
      `key field "${keyField}" is not a column (columns: ${columns.join(', ') || 'none given'})`,
    );
  const cells: string[] = [];
  return (record) => {
    if (splitCells(record, delimiter, cells) !== null) return undefined;
    const c = cells[idx];
    return c === undefined ? undefined : c.trim();
  };
}

export interface StreamWriterOptions {
  /** entries per pipeline (one round trip); default 1000 */
  batchEntries?: number;
  /** partitioning key of each record; default none (round-robin by sequence number) */
  keyOf?: (record: string) => string | undefined;
}

/**
 * A batched writer into stream `name`: records are partitioned (see the module comment) and
 * appended with `XADD fluxo:stream:{name}:{p} * data <record>`, `batchEntries` per pipeline.
 * Order: the records of one partition are appended in the order given. Call `open()` first (it
 * claims the partition count) and `flush()` at the end.
 *
 * Not safe for concurrent `append` calls on one writer: await each (append resolves at once
 * unless it had to flush a full batch).
 */
export class StreamWriter {
  /** records appended and flushed so far */
  written = 0;
  /** records appended per partition (flushed or not) */
  readonly perPartition: number[];
  private pipeline: ChainableCommander | undefined;
  private pending = 0;
  private seq = 0;
  private readonly batch: number;
  private readonly keyOf: ((record: string) => string | undefined) | undefined;
  private readonly keys: string[];

  constructor(
    private readonly redis: Redis,
    readonly name: string,
    readonly partitions: number,
    opts: StreamWriterOptions = {},
  ) {
    checkStream(name, partitions);
    this.batch = opts.batchEntries ?? 1000;
    this.keyOf = opts.keyOf;
    this.keys = Array.from({ length: partitions }, (_, p) => streamKey(name, p));
    this.perPartition = new Array(partitions).fill(0);
  }

  /** Claims the partition count (see claimStreamPartitions). */
  async open(): Promise<void> {
    await claimStreamPartitions(this.redis, this.name, this.partitions);
  }

  /** The partition `record` goes to (advances the round-robin counter when there is no key). */
  partitionFor(record: string): number {
    if (!this.keyOf) return this.seq++ % this.partitions;
    return partitionOf(this.keyOf(record) ?? '', this.partitions);
  }

  /**
   * Queues `record` (one JSON object or CSV line, no newline); flushes when the batch is full.
   * `partition` overrides the partitioner.
   */
  async append(record: string, partition = this.partitionFor(record)): Promise<void> {
    this.pipeline ??= this.redis.pipeline();
    this.pipeline.xadd(this.keys[partition] as string, '*', RECORD_FIELD, record);
    this.perPartition[partition]++;
    if (++this.pending >= this.batch) await this.flush();
  }

  /**
   * Sends the queued records in one pipeline and waits for every reply.
   * @throws EngineError `SINK_IO` (retryable) naming the first failed XADD
   */
  async flush(): Promise<void> {
    const p = this.pipeline;
    const n = this.pending;
    this.pipeline = undefined;
    this.pending = 0;
    if (!p || n === 0) return;
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await p.exec();
    } catch (e) {
      throw new EngineError('SINK_IO', `cannot append to stream ${this.name}: ${(e as Error).message}`, {
        cause: e,
        retryable: true,
      });
    }
    const failed = (replies ?? []).find(([err]) => err !== null);
    if (failed)
      throw new EngineError('SINK_IO', `cannot append to stream ${this.name}: ${(failed[0] as Error).message}`, {
        retryable: true,
      });
    this.written += n;
  }
}
