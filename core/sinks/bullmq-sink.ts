/**
 * A sink that adds each row to a BullMQ queue, for alert delivery: a worker (e.g.
 * examples/alert-webhook-worker.mjs) takes the jobs and posts them on, with BullMQ's retries.
 *
 * Exactly-once delivery comes from the job id, not from two-phase commit: the id is derived
 * deterministically from the Fluxo job's name and the row's identity (for an alert: sensor,
 * event time and rule), and BullMQ does not add a job whose id exists already. Fluxo's output is
 * deterministic, so a replay after recovery (or a job resubmitted from a savepoint) produces the
 * same rows with the same ids, and their adds are no-ops: each alert is queued once, as soon as
 * it is produced (no wait for a checkpoint). Completed jobs are kept for `keepCompletedS`
 * (default 7 days) so their ids keep deduplicating; a replay reaching further back than that would
 * queue an alert again.
 *
 * Ids: `${jobName}|${v1}|${v2}|…` over `idFields` (default `sensor, ts, rule` for alert rows, else
 * `key, windowStart`, plus `update` for window results with allowed lateness, so each update is
 * queued), with `:` replaced by `_` (BullMQ reserves `:` in ids).
 */
import { Queue } from 'bullmq';
import { EngineError } from '../errors/index.js';
import type { BullMqSinkSpec, Row } from '../spec/types.js';
import { BatchedSink } from './batched-sink.js';

const BATCH = 256;

/** BullMQ (ioredis) connection options for a `redis://` or `rediss://` URL. */
export function bullConnection(redisUrl: string) {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    password: url.password ? decodeURIComponent(url.password) : undefined,
    username: url.username ? decodeURIComponent(url.username) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    tls: url.protocol === 'rediss:' ? {} : undefined,
  };
}
const ALERT_ID_FIELDS = ['sensor', 'ts', 'rule'];
const WINDOW_ID_FIELDS = ['key', 'windowStart'];
/** window results with allowed lateness: every version (`update` 0, 1, …) is its own job */
const WINDOW_UPDATE_ID_FIELDS = ['key', 'windowStart', 'update'];

/**
 * The BullMQ job id of `row`: deterministic, the same for the same row of the same Fluxo job.
 * @param idFields fields to use; default by the row's shape (see the module doc)
 */
export function bullJobId(jobName: string, row: Row, idFields?: string[]): string {
  const fields =
    idFields ?? ('rule' in row ? ALERT_ID_FIELDS : 'update' in row ? WINDOW_UPDATE_ID_FIELDS : WINDOW_ID_FIELDS);
  let id = jobName;
  for (const f of fields) id += `|${String(row[f] ?? '')}`;
  return id.replaceAll(':', '_');
}

/** Adds rows to a BullMQ queue in batches (`addBulk`), one job per row, idempotent by job id. */
export class BullMqSink extends BatchedSink<{ name: string; data: Row; opts: Record<string, unknown> }> {
  private readonly queue: Queue;
  private readonly jobOpts: Record<string, unknown>;

  /**
   * @param jobName the Fluxo job's name (ids must not change when a job is resubmitted)
   * @param defaultUrl the cluster's Redis, when the spec names none
   * @param opts.timeoutMs ms one batch may take (Redis unreachable: the task fails). Default 30000
   */
  constructor(
    private readonly spec: BullMqSinkSpec,
    private readonly jobName: string,
    defaultUrl: string,
    onRow: () => void,
    private readonly opts: { timeoutMs?: number } = {},
  ) {
    super(BATCH, onRow);
    this.queue = new Queue(spec.queue, {
      connection: { ...bullConnection(spec.url ?? defaultUrl), maxRetriesPerRequest: 3 },
    });
    this.queue.on('error', () => {});
    const keep = { age: spec.keepCompletedS ?? 604_800 };
    this.jobOpts = {
      attempts: spec.attempts ?? 5,
      backoff: { type: 'exponential', delay: spec.backoffMs ?? 1000 },
      removeOnComplete: keep,
      removeOnFail: keep,
    };
  }

  protected itemOf(row: Row) {
    return {
      name: 'alert',
      data: row,
      opts: { ...this.jobOpts, jobId: bullJobId(this.jobName, row, this.spec.idFields) },
    };
  }

  protected async writeBatch(jobs: { name: string; data: Row; opts: Record<string, unknown> }[]): Promise<void> {
    const ms = this.opts.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
    });
    try {
      await Promise.race([this.queue.addBulk(jobs), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  protected failureOf(err: unknown): EngineError {
    return new EngineError(
      'SINK_IO',
      `cannot add alerts to BullMQ queue ${this.spec.queue}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }

  protected async disconnect(): Promise<void> {
    await this.queue.close();
  }
}
