/**
 * `CheckpointStore` on Redis (ioredis v5). The caller owns the connection (connect, disconnect).
 *
 * Keys, with `P` the key prefix (`fluxo:{cluster}:` in a cluster, see `checkpointKeyPrefix`):
 * ```
 * P ckpt:{jobId}:index                    zset, member = score = id of each completed checkpoint
 * P ckpt:{jobId}:ids                      zset, ids that have (or had) any state: for janitors
 * P ckpt:{jobId}:{id}:meta                string, CompletedCheckpoint as JSON
 * P ckpt:{jobId}:{id}:keys                set, every state key written for this id
 * P ckpt:{jobId}:{id}:state:{epoch}:{taskKey}:{part}   string, the raw bytes of one part
 * ```
 * Order of operations, and what a crash between two steps leaves:
 * - `putTaskState`: one MULTI/EXEC of ZADD ids, SADD keys, SET state. All or nothing.
 *   `putTaskStates` (a task's parts of one checkpoint): the same in one MULTI/EXEC for all parts.
 *   Crash before `completeCheckpoint`: state without metadata, never listed; the coordinator of
 *   the next attempt aborts or reuses the id, and `delete(id)` (or a janitor walking `ids`
 *   for ids without metadata) removes it.
 * - `completeCheckpoint`: (1) EXISTS on every listed part, refusing (`INTERNAL`) if one is
 *   missing; (2) one MULTI/EXEC of SET meta + ZADD index. Crash between (1) and (2): nothing
 *   written, as if never completed. After (2) the checkpoint is complete with all its state.
 * - `delete`: (1) MULTI/EXEC of ZREM index + DEL meta: from here it is no longer a restore
 *   candidate; (2) SPOP batches of `keys` and UNLINK them until the set is empty; (3) ZREM ids.
 *   Crash after (1) or during (2): orphan state still reachable through `keys`/`ids`; calling
 *   `delete` again finishes. Metadata never points at deleted state.
 * Nothing relies on Redis persistence for more than the backend gives: with persistence off, a
 * Redis restart loses all checkpoints and a job restarts from scratch (sources from the start).
 */
import type { Redis } from 'ioredis';
import { EngineError, isEngineError } from '../errors/index.js';
import type { CheckpointId, JobId } from './ids.js';
import { type CheckpointStore, checkOneTask, type StateRef } from './store.js';
import { type CompletedCheckpoint, parseCompletedCheckpoint } from './types.js';

/** `fluxo:{clusterId}:` */
export function checkpointKeyPrefix(clusterId: string): string {
  return `fluxo:${clusterId}:`;
}

const DELETE_BATCH = 500;

export class RedisCheckpointStore implements CheckpointStore {
  private readonly redis: Redis;
  private readonly prefix: string;

  /**
   * @param opts.redis a connected (or lazily connecting) ioredis client, owned by the caller
   * @param opts.keyPrefix ends with `:`, e.g. `checkpointKeyPrefix(config.clusterId)`
   */
  constructor(opts: { redis: Redis; keyPrefix: string }) {
    if (!opts.keyPrefix.endsWith(':')) throw new EngineError('INTERNAL', 'checkpoint key prefix must end with ":"');
    this.redis = opts.redis;
    this.prefix = opts.keyPrefix;
  }

  async putTaskState(ref: StateRef, bytes: Uint8Array): Promise<void> {
    const key = this.stateKey(ref);
    await this.call('putTaskState', async () => {
      check(
        await this.redis
          .multi()
          .zadd(this.idsKey(ref.jobId), ref.checkpointId, String(ref.checkpointId))
          .sadd(this.ckptKey(ref.jobId, ref.checkpointId, 'keys'), key)
          .set(key, Buffer.from(bytes))
          .exec(),
      );
    });
  }

  async putTaskStates(parts: readonly { ref: StateRef; bytes: Uint8Array }[]): Promise<void> {
    const first = parts[0]?.ref;
    if (first === undefined) return;
    checkOneTask(parts.map((p) => p.ref));
    const keys = parts.map((p) => this.stateKey(p.ref));
    await this.call('putTaskStates', async () => {
      const tx = this.redis
        .multi()
        .zadd(this.idsKey(first.jobId), first.checkpointId, String(first.checkpointId))
        .sadd(this.ckptKey(first.jobId, first.checkpointId, 'keys'), ...keys);
      for (let i = 0; i < parts.length; i++) {
        const b = (parts[i] as { bytes: Uint8Array }).bytes;
        tx.set(keys[i] as string, Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      }
      check(await tx.exec());
    });
  }

  async getTaskState(ref: StateRef): Promise<Uint8Array | null> {
    const b = await this.call('getTaskState', () => this.redis.getBuffer(this.stateKey(ref)));
    return b === null ? null : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  async completeCheckpoint(c: CompletedCheckpoint): Promise<void> {
    const keys: string[] = [];
    for (const t of c.tasks) {
      for (const part of t.parts) keys.push(this.stateKey({ ...c, taskKey: t.taskKey, part }));
    }
    await this.call('completeCheckpoint', async () => {
      for (let i = 0; i < keys.length; i += DELETE_BATCH) {
        const batch = keys.slice(i, i + DELETE_BATCH);
        const n = await this.redis.exists(...batch);
        if (n !== batch.length)
          throw new EngineError('INTERNAL', `checkpoint ${c.checkpointId}: ${batch.length - n} state part(s) missing`, {
            ids: { jobId: c.jobId, checkpointId: c.checkpointId },
          });
      }
      check(
        await this.redis
          .multi()
          .set(this.ckptKey(c.jobId, c.checkpointId, 'meta'), JSON.stringify(c))
          .zadd(this.indexKey(c.jobId), c.checkpointId, String(c.checkpointId))
          .exec(),
      );
    });
  }

  async latestCompleted(jobId: JobId): Promise<CompletedCheckpoint | null> {
    const ids = await this.call('latestCompleted', () => this.redis.zrange(this.indexKey(jobId), -1, -1));
    if (ids.length === 0) return null;
    const all = await this.metas(jobId, ids);
    return all[0] ?? null;
  }

  async listCompleted(jobId: JobId): Promise<CompletedCheckpoint[]> {
    const ids = await this.call('listCompleted', () => this.redis.zrange(this.indexKey(jobId), 0, -1));
    return this.metas(jobId, ids);
  }

  async stateIds(jobId: JobId): Promise<CheckpointId[]> {
    const ids = await this.call('stateIds', () => this.redis.zrange(this.idsKey(jobId), 0, -1));
    return ids.map((id) => Number(id) as CheckpointId);
  }

  async delete(jobId: JobId, checkpointId: CheckpointId): Promise<void> {
    const setKey = this.ckptKey(jobId, checkpointId, 'keys');
    await this.call('delete', async () => {
      check(
        await this.redis
          .multi()
          .zrem(this.indexKey(jobId), String(checkpointId))
          .del(this.ckptKey(jobId, checkpointId, 'meta'))
          .exec(),
      );
      for (;;) {
        const batch = await this.redis.spop(setKey, DELETE_BATCH);
        if (batch.length === 0) break;
        await this.redis.unlink(...batch);
      }
      await this.redis.zrem(this.idsKey(jobId), String(checkpointId));
    });
  }

  private async metas(jobId: JobId, ids: string[]): Promise<CompletedCheckpoint[]> {
    if (ids.length === 0) return [];
    const keys = ids.map((id) => this.ckptKey(jobId, Number(id) as CheckpointId, 'meta'));
    const values = await this.call('listCompleted', () => this.redis.mget(...keys));
    const out: CompletedCheckpoint[] = [];
    for (const v of values) if (v !== null) out.push(parseCompletedCheckpoint(v));
    return out.sort((a, b) => a.checkpointId - b.checkpointId);
  }

  private indexKey(jobId: JobId): string {
    return `${this.prefix}ckpt:${jobId}:index`;
  }

  private idsKey(jobId: JobId): string {
    return `${this.prefix}ckpt:${jobId}:ids`;
  }

  private ckptKey(jobId: JobId, id: CheckpointId, what: 'meta' | 'keys'): string {
    return `${this.prefix}ckpt:${jobId}:${id}:${what}`;
  }

  private stateKey(r: StateRef): string {
    return `${this.prefix}ckpt:${r.jobId}:${r.checkpointId}:state:${r.epoch}:${r.taskKey}:${r.part}`;
  }

  /** Runs a Redis call; connection and command errors become `REDIS_UNAVAILABLE` (retryable). */
  private async call<T>(op: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (isEngineError(e)) throw e;
      throw new EngineError('REDIS_UNAVAILABLE', `checkpoint store ${op}: ${(e as Error).message}`, {
        retryable: true,
        cause: e,
      });
    }
  }
}

/** Throws the first error of a MULTI/EXEC reply (null reply = transaction discarded). */
function check(replies: [Error | null, unknown][] | null): void {
  if (replies === null) throw new Error('MULTI/EXEC aborted');
  for (const [err] of replies) if (err) throw err;
}
