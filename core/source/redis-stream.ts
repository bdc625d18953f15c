/**
 * Reader for `redis-stream` sources: the partitions of a replayable log in Redis Streams
 * (layout: core/streams/layout.ts). Records are typed by the file source's LineDecoder, so a
 * stream entry and a file line with the same text give the same row or the same rejection.
 */
import { Redis } from 'ioredis';
import { redactUrl } from '../config/local-redis.js';
import { EngineError } from '../errors/index.js';
import type { RedisStreamSourceSpec } from '../spec/types.js';
import { compareEntryIds, parseEntryId, RECORD_FIELD, streamKey, streamPartitions } from '../streams/layout.js';
import { LineDecoder } from './decode.js';
import { RAW_LIMIT } from './lines.js';
import type { SourceBatch, SourcePosition, SourceReader } from './types.js';

/** An entry as ioredis returns it: `[id, [field, value, field, value, ...]]`. */
type Entry = [string, string[]];

const START = '0-0';

/**
 * Reads partitions `partitions` (indexes, usually exactly one: the graph runs one subtask per
 * partition) of stream `spec.stream`.
 *
 * - Unbounded (default): `XREAD COUNT n BLOCK blockMs STREAMS …` from after the last id read, so
 *   a poll returns within `blockMs` when nothing arrives (stop, cancel and checkpoint triggers
 *   are served between polls). After `stopFollowing()` the reader reads what is there without
 *   blocking and ends once a read returns nothing (a drain).
 * - Bounded: on its first poll (unless restored) it records each partition's last entry id
 *   (`XREVRANGE key + - COUNT 1`, `0-0` for an empty or missing stream) and then reads with
 *   `XRANGE key (last end COUNT n` until every partition reached its end. The ends are part of
 *   the position, so a restored reader stops where the first attempt would have. (Entries
 *   appended before the first poll of a later attempt restored from no checkpoint are included:
 *   such an attempt starts afresh.)
 * - Position: `entryIds[p]` = id of the last entry read from partition p; a restored reader reads
 *   the entries after it. `nextLine` counts entries read + 1 (informational).
 * - Each entry is one record: the text of its `data` field. A rejected record becomes a dead
 *   letter whose `source` is `<stream key>:<entry id>`; an entry without a `data` field is
 *   rejected with reason `entry has no "data" field`.
 * - The stream's recorded partition count (`fluxo:stream:{name}:meta`) must equal
 *   `spec.partitions` when present.
 *
 * Errors: `SOURCE_IO` (retryable) when Redis cannot be reached or a read fails, or (not
 * retryable) when the partition counts differ; surfaced by `poll`.
 * With several partitions in one reader, their entries interleave in the order Redis returns
 * them, so lateness decisions depend on timing; one partition per reader is deterministic.
 */
export class RedisStreamReader implements SourceReader {
  readonly description: string;
  private readonly decoder: LineDecoder;
  private readonly keys: string[];
  private readonly lastIds: string[];
  private endIds: string[] | undefined;
  /** partitions (indexes into `partitions`) not yet at their bound */
  private active: number[];
  private redis: Redis | undefined;
  private opened = false;
  private done: boolean;
  private stopped = false;
  private read = 0;
  private lastError: Error | undefined;

  /** @throws EngineError `EXPR_INVALID` when a validate rule does not compile. */
  constructor(
    private readonly spec: RedisStreamSourceSpec,
    private readonly partitions: number[],
    private readonly url: string,
    restore?: SourcePosition,
    fields?: string[],
  ) {
    this.partitions = [...partitions].sort((a, b) => a - b);
    this.decoder = new LineDecoder(spec, fields);
    this.keys = this.partitions.map((p) => streamKey(spec.stream, p));
    this.description =
      this.keys.length === 0 ? `redis-stream ${spec.stream} (no partition)` : `redis-stream ${this.keys.join(', ')}`;
    this.lastIds = this.partitions.map((p) => restore?.entryIds?.[String(p)] ?? START);
    for (const id of this.lastIds) {
      if (!parseEntryId(id)) throw new EngineError('PROTOCOL', `restored position has a malformed entry id "${id}"`);
    }
    if (restore) this.read = Math.max(0, restore.nextLine - 1);
    if (spec.bounded && restore?.endIds) {
      const ends = restore.endIds;
      this.endIds = this.partitions.map((p) => ends[String(p)] ?? START);
    }
    this.active = this.partitions.map((_, i) => i);
    this.done = this.partitions.length === 0;
  }

  private async open(): Promise<Redis> {
    if (this.redis && this.opened) return this.redis;
    const redis = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 2, connectTimeout: 5000 });
    redis.on('error', (e: Error) => {
      this.lastError = e;
    });
    this.redis = redis;
    try {
      await redis.connect();
      const recorded = await streamPartitions(redis, this.spec.stream);
      if (recorded !== undefined && recorded !== this.spec.partitions) {
        throw new EngineError(
          'SOURCE_IO',
          `stream ${this.spec.stream} has ${recorded} partitions, the source reads ${this.spec.partitions}; set source.partitions: ${recorded}`,
        );
      }
      if (this.spec.bounded && !this.endIds) {
        const ends: string[] = [];
        for (const key of this.keys) {
          const last = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as Entry[];
          ends.push(last[0]?.[0] ?? START);
        }
        this.endIds = ends;
      }
    } catch (e) {
      throw this.ioError(e, 'cannot open');
    }
    if (this.endIds) {
      const ends = this.endIds;
      this.active = this.active.filter((i) => compareEntryIds(this.lastIds[i] as string, ends[i] as string) < 0);
      this.done = this.active.length === 0;
    }
    this.opened = true;
    return redis;
  }

  private ioError(e: unknown, what: string): EngineError {
    if (e instanceof EngineError) return e;
    const reason = (e as Error)?.message ?? String(e);
    const extra = this.lastError && this.lastError.message !== reason ? ` (${this.lastError.message})` : '';
    return new EngineError('SOURCE_IO', `${what} ${this.description} at ${redactUrl(this.url)}: ${reason}${extra}`, {
      cause: e,
      retryable: true,
    });
  }

  async poll(out: SourceBatch, maxLines: number): Promise<boolean> {
    out.rows.length = 0;
    out.timestamps.length = 0;
    out.deadLetters.length = 0;
    out.linesRead = 0;
    if (this.done) return false;
    const redis = await this.open();
    if (this.done) return false;
    const count = Math.max(1, Math.ceil(maxLines / this.active.length));
    try {
      if (this.endIds || this.stopped) await this.readRanges(redis, count, out);
      else await this.readBlocking(redis, count, out);
    } catch (e) {
      throw this.ioError(e, 'cannot read');
    }
    return !this.done;
  }

  /** Unbounded: one blocking XREAD over every partition. */
  private async readBlocking(redis: Redis, count: number, out: SourceBatch): Promise<void> {
    const keys = this.active.map((i) => this.keys[i] as string);
    const ids = this.active.map((i) => this.lastIds[i] as string);
    const reply = (await redis.xread('COUNT', count, 'BLOCK', this.spec.blockMs, 'STREAMS', ...keys, ...ids)) as
      | [string, Entry[]][]
      | null;
    if (!reply) return;
    for (const [key, entries] of reply) {
      const i = this.keys.indexOf(key);
      if (i >= 0) this.take(i, entries, out);
    }
  }

  /**
   * Bounded, or draining after stopFollowing: one XRANGE per active partition (one pipeline),
   * from after the last id read to the bound (or the current end); a partition with fewer than
   * `count` entries left is finished.
   */
  private async readRanges(redis: Redis, count: number, out: SourceBatch): Promise<void> {
    const pipe = redis.pipeline();
    for (const i of this.active)
      pipe.xrange(this.keys[i] as string, `(${this.lastIds[i]}`, this.endIds?.[i] ?? '+', 'COUNT', count);
    const replies = (await pipe.exec()) ?? [];
    const still: number[] = [];
    this.active.forEach((i, j) => {
      const [err, entries] = replies[j] ?? [new Error('no reply'), null];
      if (err) throw err;
      const list = entries as Entry[];
      this.take(i, list, out);
      if (list.length >= count) still.push(i);
    });
    this.active = still;
    this.done = still.length === 0;
  }

  private take(i: number, entries: Entry[], out: SourceBatch): void {
    const key = this.keys[i] as string;
    for (let e = 0; e < entries.length; e++) {
      const [id, kv] = entries[e] as Entry;
      this.lastIds[i] = id;
      out.linesRead++;
      let record: string | undefined;
      for (let f = 0; f + 1 < kv.length; f += 2) {
        if (kv[f] === RECORD_FIELD) {
          record = kv[f + 1];
          break;
        }
      }
      if (record === undefined) {
        this.reject(`entry has no "${RECORD_FIELD}" field`, kv.join(' '), key, id, out);
        continue;
      }
      const reason = this.decoder.decode(record, out.rows, out.timestamps);
      if (reason !== null) this.reject(reason, record, key, id, out);
    }
    this.read += entries.length;
  }

  private reject(reason: string, raw: string, key: string, id: string, out: SourceBatch): void {
    out.deadLetters.push({
      reason,
      source: `${key}:${id}`,
      raw: raw.length > RAW_LIMIT ? raw.slice(0, RAW_LIMIT) : raw,
    });
  }

  position(): SourcePosition {
    const entryIds: Record<string, string> = {};
    this.partitions.forEach((p, i) => {
      entryIds[String(p)] = this.lastIds[i] as string;
    });
    const pos: SourcePosition = { split: this.partitions[0] ?? 0, nextLine: this.read + 1, byteOffset: 0, entryIds };
    if (this.endIds) {
      const endIds: Record<string, string> = {};
      const ends = this.endIds;
      this.partitions.forEach((p, i) => {
        endIds[String(p)] = ends[i] as string;
      });
      pos.endIds = endIds;
    }
    return pos;
  }

  /** Unbounded: read up to the current end of every partition, then end (drain). */
  stopFollowing(): void {
    this.stopped = true;
  }

  async close(): Promise<void> {
    this.done = true;
    const r = this.redis;
    this.redis = undefined;
    if (r) r.disconnect();
  }
}
