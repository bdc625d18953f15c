import { once } from 'node:events';
import { createWriteStream, mkdirSync, openSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { Redis } from 'ioredis';
import { checkpointId as asCheckpointId, epoch as asEpoch } from '../checkpoint/ids.js';
import { EngineError, ioReason } from '../errors/index.js';
import { faults, sinkDelay } from '../fault/inject.js';
import type { FieldDesc, OutputTag } from '../graph/types.js';
import { FileCommitter, fileCommitterState } from '../sinks/file-committer.js';
import type { FileSinkSpec, RedisSinkSpec, Row, SinkSpec, StdoutSinkSpec } from '../spec/types.js';
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
 * JSON-lines sink on a local file (truncated when the task starts) or on stdout. Lines are
 * buffered and written in chunks; `pending()` lets the task wait while the OS is slower than the
 * job (backpressure instead of memory growth). The file is opened when the task is created, so a
 * path that cannot be written fails the deployment at once; a later write error (disk full) fails
 * the task at its next record, watermark or end of input. Nothing is lost silently.
 */
export class LineSink implements Downstream {
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

  /** @throws EngineError `SINK_IO` when the file's folder cannot be created or the file cannot be opened for writing */
  constructor(
    spec: FileSinkSpec | StdoutSinkSpec,
    readonly fields: FieldDesc[],
    private readonly counters: TaskCounters,
    readonly role: OutputTag,
    /** the job attempt, when the job takes checkpoints: output becomes visible only at completed checkpoints */
    transactionalEpoch?: number,
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
        fd = openSync(spec.path, 'w');
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
    return this.blocked;
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
  begin(state?: Uint8Array): void {
    if (!this.transactional || this.committer) return;
    const opts = { path: this.transactional.path, epoch: asEpoch(this.transactional.epoch) };
    this.committer = state
      ? FileCommitter.restore(opts, fileCommitterState(JSON.parse(new TextDecoder().decode(state))))
      : FileCommitter.open(opts);
  }

  preCommit(checkpointId: number): [string, Uint8Array][] {
    if (!this.committer) return [];
    this.write();
    const state = this.committer.preCommit(asCheckpointId(checkpointId));
    return [[this.statePart, new TextEncoder().encode(JSON.stringify(state))]];
  }

  commit(checkpointId: number): void {
    this.committer?.commit(asCheckpointId(checkpointId));
  }

  async endOfInput(): Promise<void> {
    if (this.committer) {
      this.write();
      this.committer.commitAll();
      return;
    }
    this.write();
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
}

/**
 * Upserts each window result into a Redis hash `${keyPrefix}:${key}:${windowStart}` (HSET of every
 * field), pipelined per batch. Re-writing the same window overwrites it, so the sink is idempotent.
 */
export class RedisHashSink implements Downstream {
  private readonly client: Redis;
  private pipeline: ReturnType<Redis['pipeline']>;
  private queued = 0;
  private inflight: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly spec: RedisSinkSpec,
    defaultUrl: string,
    private readonly fields: FieldDesc[],
    private readonly counters: TaskCounters,
  ) {
    this.client = new Redis(spec.url ?? defaultUrl, { maxRetriesPerRequest: 3, lazyConnect: false });
    this.client.on('error', () => {});
    this.pipeline = this.client.pipeline();
  }

  processElement(row: Row): void {
    const args: (string | number)[] = [];
    for (const f of this.fields) {
      const v = row[f.name];
      if (v !== null && v !== undefined) args.push(f.name, typeof v === 'number' ? v : String(v));
    }
    this.pipeline.hset(`${this.spec.keyPrefix}:${row.key}:${row.windowStart}`, ...args);
    this.queued++;
    this.counters.rowsWritten++;
    if (this.queued >= 512) this.flush();
  }

  processWatermark(): void {
    this.flush();
  }

  pending(): Promise<void> | null {
    if (this.failure) throw this.failure;
    return this.inflight;
  }

  async endOfInput(): Promise<void> {
    this.flush();
    while (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    await this.client.quit();
  }

  close(): void {
    this.client.disconnect();
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
        this.failure = new EngineError('SINK_IO', `redis sink ${this.spec.keyPrefix}: ${err.message}`, {
          cause: err,
          retryable: true,
        });
        if (this.inflight === tracked) this.inflight = null;
      },
    );
    const tracked = this.inflight;
  }
}

export function isLineSinkSpec(s: SinkSpec | FileSinkSpec | StdoutSinkSpec): s is FileSinkSpec | StdoutSinkSpec {
  return s.type === 'file' || s.type === 'stdout';
}
