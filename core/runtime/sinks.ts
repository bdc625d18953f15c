import { once } from 'node:events';
import { constants, createWriteStream, fstatSync, ftruncateSync, mkdirSync, openSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { Redis } from 'ioredis';
import { checkpointId as asCheckpointId, epoch as asEpoch } from '../checkpoint/ids.js';
import { EngineError, ioReason } from '../errors/index.js';
import { faults, sinkDelay } from '../fault/inject.js';
import type { FieldDesc, OutputTag } from '../graph/types.js';
import { FileCommitter, fileCommitterState } from '../sinks/file-committer.js';
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  RedisWriteAhead,
  redisSinkError,
  redisSinkFenceKey,
} from '../sinks/redis-write-ahead.js';
import type { FileSinkSpec, RedisSinkSpec, RedisStreamSinkSpec, Row, SinkSpec, StdoutSinkSpec } from '../spec/types.js';
import type { Downstream, TaskCounters } from './transport.js';

/**
 * Compiles a renderer of one row as a JSON line with only the schema's fields, in schema order
 * (non-finite numbers become null). Built once per sink: no intermediate object per row.
 */
export function jsonLineRenderer(fields: FieldDesc[]): (row: Row) => string {
  const names = fields.map((f) => f.name);
  const prefixes = names.map((n, i) => `${i === 0 ? '{' : ','}${JSON.stringify(n)}:`);
  return (row: Row): string => {
    let s = '';
    for (let i = 0; i < names.length; i++) {
      const v = row[names[i]];
      s += prefixes[i];
      if (typeof v === 'number') s += Number.isFinite(v) ? String(v) : 'null';
      else if (typeof v === 'string') s += JSON.stringify(v);
      else s += v === undefined ? 'null' : String(v);
    }
    return names.length === 0 ? '{}' : `${s}}`;
  };
}

/**
 * JSON-lines sink on a local file or on stdout. Lines are buffered and written in chunks;
 * `pending()` lets the task wait while the OS is slower than the job (backpressure instead of
 * memory growth). The file is opened (created if missing) when the task is created, so a path that
 * cannot be written fails the deployment at once; a later write error (disk full) fails the task at
 * its next record, watermark or end of input. Nothing is lost silently.
 *
 * A plain (non-transactional, non-append) file is truncated at the sink's first write, or at end
 * of input when the job wrote nothing (an empty result is an empty file), never when the task
 * starts: a job that fails or is canceled before writing anything leaves the previous file byte
 * for byte. Only a regular file is truncated (a device such as `/dev/full` or a FIFO is not).
 */
export class LineSink implements Downstream, TransactionalSink {
  private buf: string[] = [];
  private bufChars = 0;
  private readonly out: WriteStream | NodeJS.WriteStream;
  private readonly render: (row: Row) => string;
  private blocked: Promise<void> | null = null;
  private failure: EngineError | null = null;
  private readonly where: string;
  /** exactly-once file output when the job takes checkpoints (two-phase commit); opened by begin() */
  private committer: FileCommitter | undefined;
  private readonly transactional: { path: string; epoch: number } | undefined;
  /** fault injection `slow@sink` is set and this is the main output */
  private readonly slow: boolean;
  /** the plain file's descriptor while its old content still waits to be truncated (first write or end of input) */
  private truncateFd: number | undefined;

  /** @throws EngineError `SINK_IO` when the file's folder cannot be created or the file cannot be opened for writing */
  constructor(
    spec: FileSinkSpec | StdoutSinkSpec,
    readonly fields: FieldDesc[],
    private readonly counters: TaskCounters,
    readonly role: OutputTag,
    /** the sink's fencing epoch when the job takes exactly-once checkpoints: output becomes visible only at completed checkpoints */
    transactionalEpoch?: number,
    /** a file written directly (not transactional) is appended to instead of truncated (an at-least-once restore). Default false */
    direct: { append?: boolean } = {},
  ) {
    this.render = jsonLineRenderer(fields);
    this.slow = role === 'main' && (faults()?.sinkDelayMs ?? 0) > 0;
    if (spec.type === 'file' && transactionalEpoch !== undefined) {
      this.where = spec.path;
      this.transactional = { path: spec.path, epoch: transactionalEpoch };
      this.out = process.stdout; // unused: the committer owns the file
    } else if (spec.type === 'file') {
      this.where = spec.path;
      let fd: number;
      try {
        mkdirSync(dirname(spec.path), { recursive: true });
        // no O_TRUNC: the old content stays until the first write (truncatePending)
        fd = openSync(spec.path, direct.append ? 'a' : constants.O_WRONLY | constants.O_CREAT);
        if (!direct.append && fstatSync(fd).isFile()) this.truncateFd = fd;
      } catch (err) {
        throw new EngineError('SINK_IO', `cannot open sink file ${spec.path}: ${ioReason(err)}`, {
          cause: err,
        });
      }
      this.out = createWriteStream(spec.path, { fd });
      this.out.on('error', (err) => {
        this.failure ??= new EngineError('SINK_IO', `cannot write ${spec.path}: ${ioReason(err)}`, { cause: err });
      });
    } else {
      this.where = 'stdout';
      this.out = process.stdout;
    }
  }

  processElement(row: Row): void {
    if (this.failure) throw this.failure;
    if (this.slow) sinkDelay();
    const line = this.render(row);
    this.buf.push(line);
    this.bufChars += line.length;
    this.counters.rowsWritten++;
    if (this.bufChars > 64 * 1024) this.write();
  }

  processWatermark(): void {
    if (this.failure) throw this.failure;
    this.write();
  }

  pending(): Promise<void> | null {
    if (this.failure) throw this.failure;
    return this.committer ? this.committer.backlog() : this.blocked;
  }

  /** The checkpoint part name this sink's committer state is stored under. */
  get statePart(): string {
    return `sink-${this.role}.committer`;
  }

  /**
   * Opens the transactional output: fresh (`state` undefined: the file is truncated), or restored
   * from a checkpoint's committer state (output committed after it is cut, its pending output
   * committed). No-op for a non-transactional sink or when already begun.
   */
  async begin(state?: Uint8Array): Promise<void> {
    if (!this.transactional || this.committer) return;
    const opts = { path: this.transactional.path, epoch: asEpoch(this.transactional.epoch) };
    this.committer = await (state
      ? FileCommitter.restore(opts, fileCommitterState(JSON.parse(new TextDecoder().decode(state))))
      : FileCommitter.open(opts));
  }

  preCommit(checkpointId: number): [string, Uint8Array][] {
    if (!this.committer) return [];
    this.write();
    const state = this.committer.preCommit(asCheckpointId(checkpointId));
    return [[this.statePart, new TextEncoder().encode(JSON.stringify(state))]];
  }

  durable(): Promise<void> | null {
    return this.committer?.durable() ?? null;
  }

  commit(checkpointId: number): void {
    // runs in the background; a failure is thrown by the sink's next call
    this.committer?.commit(asCheckpointId(checkpointId)).catch(() => {});
  }

  async endOfInput(): Promise<void> {
    if (this.committer) {
      this.write();
      await this.committer.commitAll();
      return;
    }
    this.write();
    this.truncatePending(); // wrote nothing: the result is an empty file
    if (this.blocked) await this.blocked.catch(() => {});
    if (this.failure) throw this.failure;
    if (this.out !== process.stdout) {
      const s = this.out as WriteStream;
      const err = await new Promise<Error | null | undefined>((resolve) => s.end((e?: Error | null) => resolve(e)));
      if (err)
        this.failure ??= new EngineError('SINK_IO', `cannot write ${this.where}: ${ioReason(err)}`, { cause: err });
      if (this.failure) throw this.failure;
      if (!s.writableFinished) throw new EngineError('SINK_IO', `cannot finish writing ${this.where}`);
    }
  }

  close(): void {
    if (this.committer) this.committer.close();
    else if (this.out !== process.stdout) (this.out as WriteStream).destroy();
  }

  private write(): void {
    if (this.buf.length === 0) return;
    const chunk = `${this.buf.join('\n')}\n`;
    this.buf = [];
    this.bufChars = 0;
    if (this.committer) {
      this.committer.write(chunk);
      return;
    }
    this.truncatePending();
    if (this.failure) return;
    if (!this.out.write(chunk) && !this.blocked) {
      this.blocked = once(this.out, 'drain').then(
        () => {
          this.blocked = null;
        },
        (err: Error) => {
          this.blocked = null;
          this.failure ??= new EngineError('SINK_IO', `cannot write ${this.where}: ${ioReason(err)}`, { cause: err });
        },
      );
    }
  }

  /** Cuts the previous content of a plain file once, before its first bytes (nothing is queued on the stream yet). */
  private truncatePending(): void {
    if (this.truncateFd === undefined) return;
    const fd = this.truncateFd;
    this.truncateFd = undefined;
    try {
      ftruncateSync(fd, 0);
    } catch (err) {
      this.failure ??= new EngineError('SINK_IO', `cannot truncate ${this.where}: ${ioReason(err)}`, { cause: err });
    }
  }
}

/**
 * What the task drives on a sink of its chain before it starts (core/runtime/task.ts): `begin`
 * with the sink's part of the restored checkpoint, looked up by `statePart`, or `undefined` for a
 * fresh start. Both the file and the redis sink implement it; phase 1 and 2 of the two-phase
 * commit (`preCommit`, `commit`) are on `Downstream`.
 */
export interface TransactionalSink {
  /** the checkpoint part name the sink's state is stored under (`sink-…`; restored to the same task id) */
  readonly statePart: string;
  /**
   * Opens the sink's transactional output, fresh (`undefined`) or from its restored state;
   * idempotent. The task starts only after it has resolved.
   */
  begin(state?: Uint8Array): void | Promise<void>;
}

/** Two-phase commit settings of a redis sink of a job with exactly-once checkpoints. */
export interface RedisSinkTransaction {
  /** the job's id (owner of the sink's fence) */
  jobId: string;
  /** the attempt's fencing epoch (`transactionalEpoch` in chain.ts) */
  epoch: number;
  /** true for a task of a job's first run: its begin may take the key prefix over from another job */
  claim: boolean;
}

/**
 * Upserts each window result into a Redis hash `${keyPrefix}:${key}:${windowStart}` (HSET of every
 * non-null field; numbers as `String(n)`). The fields that name the hash are the sink's
 * `upsertKey` (default `key`, `windowStart`): a running aggregate's rows use `key` alone, one hash
 * `${keyPrefix}:${key}` per key. A row whose hash would be the fence `${keyPrefix}:fluxo-fence`
 * (a key literally `fluxo-fence` with `upsertKey: ['key']`) fails the task with `SINK_IO`.
 *
 * Without `transaction` (no checkpoints, or at-least-once): written directly, pipelined per batch
 * of 512 rows and at each watermark; re-writing the same window overwrites it, so a replay after a
 * failure is idempotent but output is visible before its checkpoint completes.
 *
 * With `transaction` (exactly-once checkpoints): a write-ahead sink with two-phase commit
 * (core/sinks/redis-write-ahead.ts): rows are kept in memory and stored with the checkpoint at the
 * barrier, written by one fenced Lua script when the checkpoint completes, and the rest at end of
 * input. Its state part is `sink-<role>.redis`; the fence is `${keyPrefix}:fluxo-fence`.
 *
 * Either way a failed Redis call fails the task at its next record, watermark, barrier or end of
 * input with `REDIS_UNAVAILABLE` (unreachable, timed out after `commandTimeoutMs`) or `SINK_IO`,
 * naming the key prefix; nothing waits forever.
 */
export class RedisHashSink implements Downstream, TransactionalSink {
  private readonly client: Redis;
  private pipeline: ReturnType<Redis['pipeline']>;
  private queued = 0;
  private inflight: Promise<void> | null = null;
  private failure: Error | null = null;
  /** the two-phase commit log, when transactional */
  private readonly wal: RedisWriteAhead | undefined;
  /** fault injection `slow@sink` is set and this is the main output */
  private readonly slow: boolean;
  /** the row fields naming the hash, after the key prefix */
  private readonly upsertKey: string[];
  private readonly fenceKey: string;

  /**
   * @param defaultUrl the cluster's Redis, used when the spec has no `url`
   * @param opts.commandTimeoutMs ms a Redis command may take before it fails, default 30 000
   * @param opts.upsertKey the row fields whose values, joined by `:` after the key prefix, name a
   *   row's hash; default `['key', 'windowStart']`
   */
  constructor(
    private readonly spec: RedisSinkSpec,
    defaultUrl: string,
    private readonly fields: FieldDesc[],
    private readonly counters: TaskCounters,
    readonly role: OutputTag = 'main',
    transaction?: RedisSinkTransaction,
    opts: { commandTimeoutMs?: number; upsertKey?: string[] } = {},
  ) {
    this.upsertKey = opts.upsertKey ?? ['key', 'windowStart'];
    this.fenceKey = redisSinkFenceKey(spec.keyPrefix);
    this.client = new Redis(spec.url ?? defaultUrl, {
      maxRetriesPerRequest: 3,
      lazyConnect: false,
      commandTimeout: opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    });
    this.client.on('error', () => {});
    this.pipeline = this.client.pipeline();
    this.slow = role === 'main' && (faults()?.sinkDelayMs ?? 0) > 0;
    if (transaction)
      this.wal = new RedisWriteAhead(this.client, {
        keyPrefix: spec.keyPrefix,
        label: `${role} output`,
        jobId: transaction.jobId,
        epoch: transaction.epoch,
        claim: transaction.claim,
        fields: fields.map((f) => f.name),
      });
  }

  /** The checkpoint part name this sink's write-ahead state is stored under. */
  get statePart(): string {
    return `sink-${this.role}.redis`;
  }

  /** Resolves when every Redis call of the transactional sink issued so far has ended (never rejects). */
  settled(): Promise<void> {
    return this.wal?.settled() ?? Promise.resolve();
  }

  /** True when the sink takes part in two-phase commit. */
  get transactional(): boolean {
    return this.wal !== undefined;
  }

  /**
   * Fences older attempts and, on a restore, writes the restored pending transactions (async;
   * a failure fails the task at its next call). No-op for a direct sink or when already begun.
   * @throws EngineError `PROTOCOL` when `state` is not a redis sink state
   */
  begin(state?: Uint8Array): void {
    this.wal?.begin(state);
  }

  processElement(row: Row): void {
    if (this.slow) sinkDelay();
    const key = this.hashKey(row);
    this.counters.rowsWritten++;
    if (this.wal) {
      this.wal.add(key, row);
      return;
    }
    if (this.failure) throw this.failure;
    const args: (string | number)[] = [];
    for (const f of this.fields) {
      const v = row[f.name];
      if (v !== null && v !== undefined) args.push(f.name, typeof v === 'number' ? v : String(v));
    }
    this.pipeline.hset(key, ...args);
    this.queued++;
    if (this.queued >= 512) this.flush();
  }

  processWatermark(): void {
    if (this.wal) this.wal.check();
    else this.flush();
  }

  pending(): Promise<void> | null {
    if (this.wal) return this.wal.pending();
    if (this.failure) throw this.failure;
    return this.inflight;
  }

  /** Phase 1 at barrier `checkpointId`: the sink's state part (nothing written); none when direct. */
  preCommit(checkpointId: number): [string, Uint8Array][] {
    if (!this.wal) return [];
    return [[this.statePart, this.wal.preCommit(checkpointId)]];
  }

  /** Phase 2: checkpoint `checkpointId` completed; writes its rows and any earlier unsent ones (async). */
  commit(checkpointId: number): void {
    this.wal?.commit(checkpointId);
  }

  async endOfInput(): Promise<void> {
    if (this.wal) {
      await this.wal.finish();
      await this.client.quit();
      return;
    }
    this.flush();
    while (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    await this.client.quit();
  }

  close(): void {
    this.client.disconnect();
  }

  /**
   * `${keyPrefix}:${v1}:${v2}…` for the values of the upsert-key fields.
   * @throws EngineError `SINK_IO` when that is the fence key
   */
  private hashKey(row: Row): string {
    const uk = this.upsertKey;
    let key = this.spec.keyPrefix;
    for (let i = 0; i < uk.length; i++) key += `:${row[uk[i]]}`;
    if (key === this.fenceKey)
      throw new EngineError(
        'SINK_IO',
        `redis sink ${this.spec.keyPrefix}: a row would write the sink's fence hash ${key}; rename the key '${row.key}'`,
      );
    return key;
  }

  private flush(): void {
    if (this.queued === 0) return;
    const p = this.pipeline;
    this.pipeline = this.client.pipeline();
    this.queued = 0;
    const prev = this.inflight ?? Promise.resolve();
    const run = prev.then(async () => {
      const res = await p.exec();
      const bad = res?.find(([e]) => e);
      if (bad?.[0]) throw bad[0];
    });
    this.inflight = run.then(
      () => {
        if (this.inflight === tracked) this.inflight = null;
      },
      (err: Error) => {
        this.failure ??= redisSinkError(`redis sink ${this.spec.keyPrefix} (${this.role} output)`, 'write', err);
        if (this.inflight === tracked) this.inflight = null;
      },
    );
    const tracked = this.inflight;
  }
}

export function isLineSinkSpec(s: SinkSpec | RedisStreamSinkSpec): s is FileSinkSpec | StdoutSinkSpec {
  return s.type === 'file' || s.type === 'stdout';
}
