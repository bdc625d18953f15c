/**
 * Where checkpoint state and metadata live. The interface states the guarantees the protocol
 * needs (Arroyo's `arroyo-state-protocol` store, Flink's `CompletedCheckpointStore` +
 * `CheckpointStorage`); `InMemoryCheckpointStore` implements them for tests and
 * `RedisCheckpointStore` (redis-store.ts) for clusters.
 *
 * State is addressed by `StateRef`: job, checkpoint id, the writer's epoch, task and part. The
 * epoch is part of the address so that a zombie task of an earlier attempt writing late under a
 * reused checkpoint id can never overwrite state of the current attempt; completed metadata lists
 * only parts of its own epoch.
 */
import { EngineError } from '../errors/index.js';
import type { CheckpointId, Epoch, JobId, TaskKey } from './ids.js';
import type { CompletedCheckpoint } from './types.js';

/** The address of one state part (see `keyGroupPart` / `splitPart` in types.ts). */
export interface StateRef {
  jobId: JobId;
  checkpointId: CheckpointId;
  epoch: Epoch;
  taskKey: TaskKey;
  part: string;
}

export interface CheckpointStore {
  /**
   * Writes one state part. Idempotent: writing the same ref again replaces the bytes (a retried
   * write is harmless). Durable once resolved (as durable as the backend). The bytes are copied;
   * the caller may reuse its buffer.
   * @throws EngineError `REDIS_UNAVAILABLE` (retryable) when the backend cannot be reached
   */
  putTaskState(ref: StateRef, bytes: Uint8Array): Promise<void>;

  /**
   * Writes the state parts of one task for one checkpoint (same job, checkpoint, epoch and task
   * in every ref) in one round trip, all or nothing, idempotent and durable like `putTaskState`.
   * A checkpoint writes a task's key groups (up to maxParallelism, 128 by default) at once: one
   * write each would cost a round trip and a transaction per group. Unlike `putTaskState`, the
   * bytes are not copied: leave them unchanged until the promise settles.
   * @throws EngineError `REDIS_UNAVAILABLE`; `INTERNAL` when the refs are not of one task and checkpoint
   */
  putTaskStates(parts: readonly { ref: StateRef; bytes: Uint8Array }[]): Promise<void>;

  /** The bytes of one part, or null if absent. @throws EngineError `REDIS_UNAVAILABLE` */
  getTaskState(ref: StateRef): Promise<Uint8Array | null>;

  /**
   * Makes a checkpoint complete, atomically: after it resolves `latestCompleted` and
   * `listCompleted` include it; if it rejects or the process dies mid-call, either they include
   * it with all its state or they do not include it. Call only after every part it lists was
   * written (`putTaskState` resolved). Idempotent for the same metadata.
   * @throws EngineError `INTERNAL` when a listed part is missing (nothing is written),
   *   `REDIS_UNAVAILABLE`
   */
  completeCheckpoint(checkpoint: CompletedCheckpoint): Promise<void>;

  /** The completed checkpoint or savepoint of `jobId` with the highest id, or null. */
  latestCompleted(jobId: JobId): Promise<CompletedCheckpoint | null>;

  /** Every completed checkpoint and savepoint of `jobId`, ascending id. */
  listCompleted(jobId: JobId): Promise<CompletedCheckpoint[]>;

  /**
   * Deletes a checkpoint: first its metadata (so it is never listed while its state is partly
   * gone), then all its state, of every epoch. Idempotent, and safe to call for a checkpoint that
   * never completed (to clean an aborted one). A write racing with it may survive; calling it
   * again removes that.
   */
  delete(jobId: JobId, checkpointId: CheckpointId): Promise<void>;

  /**
   * Every checkpoint id of `jobId` with state or metadata stored, completed or not, ascending:
   * also the ids of aborted checkpoints whose state a task of an old attempt wrote after the
   * abort deleted it. What a job's final cleanup must `delete`.
   * @throws EngineError `REDIS_UNAVAILABLE`
   */
  stateIds(jobId: JobId): Promise<CheckpointId[]>;
}

/**
 * Checks that `refs` are parts of one task's state in one checkpoint (`putTaskStates`).
 * @throws EngineError `INTERNAL` otherwise
 */
export function checkOneTask(refs: readonly StateRef[]): void {
  const a = refs[0];
  if (a === undefined) return;
  for (const r of refs)
    if (r.jobId !== a.jobId || r.checkpointId !== a.checkpointId || r.epoch !== a.epoch || r.taskKey !== a.taskKey)
      throw new EngineError(
        'INTERNAL',
        `putTaskStates: parts of ${a.taskKey} in checkpoint ${a.checkpointId} and of ${r.taskKey} in ${r.checkpointId} mixed`,
      );
}

/** Map key of a state part; ids are validated to exclude `:`. */
export function stateRefKey(r: StateRef): string {
  return `${r.jobId}:${r.checkpointId}:${r.epoch}:${r.taskKey}:${r.part}`;
}

/** A CheckpointStore in process memory, for unit tests. Same guarantees, no durability. */
export class InMemoryCheckpointStore implements CheckpointStore {
  private readonly state = new Map<string, Uint8Array>();
  private readonly completed = new Map<string, CompletedCheckpoint>();

  async putTaskState(ref: StateRef, bytes: Uint8Array): Promise<void> {
    this.state.set(stateRefKey(ref), Uint8Array.from(bytes));
  }

  async putTaskStates(parts: readonly { ref: StateRef; bytes: Uint8Array }[]): Promise<void> {
    checkOneTask(parts.map((p) => p.ref));
    for (const p of parts) this.state.set(stateRefKey(p.ref), Uint8Array.from(p.bytes));
  }

  async getTaskState(ref: StateRef): Promise<Uint8Array | null> {
    const b = this.state.get(stateRefKey(ref));
    return b === undefined ? null : Uint8Array.from(b);
  }

  async completeCheckpoint(c: CompletedCheckpoint): Promise<void> {
    for (const t of c.tasks) {
      for (const part of t.parts) {
        const ref = { jobId: c.jobId, checkpointId: c.checkpointId, epoch: c.epoch, taskKey: t.taskKey, part };
        if (!this.state.has(stateRefKey(ref)))
          throw new EngineError(
            'INTERNAL',
            `checkpoint ${c.checkpointId}: state part ${t.taskKey}/${part} is missing`,
            {
              ids: { jobId: c.jobId, checkpointId: c.checkpointId },
            },
          );
      }
    }
    this.completed.set(`${c.jobId}:${c.checkpointId}`, structuredClone(c));
  }

  async latestCompleted(jobId: JobId): Promise<CompletedCheckpoint | null> {
    const all = await this.listCompleted(jobId);
    return all.length === 0 ? null : all[all.length - 1];
  }

  async listCompleted(jobId: JobId): Promise<CompletedCheckpoint[]> {
    return [...this.completed.values()]
      .filter((c) => c.jobId === jobId)
      .sort((a, b) => a.checkpointId - b.checkpointId)
      .map((c) => structuredClone(c));
  }

  async stateIds(jobId: JobId): Promise<CheckpointId[]> {
    const ids = new Set<number>();
    for (const k of this.state.keys()) {
      const [job, id] = k.split(':');
      if (job === jobId) ids.add(Number(id));
    }
    for (const c of this.completed.values()) if (c.jobId === jobId) ids.add(c.checkpointId);
    return [...ids].sort((a, b) => a - b) as CheckpointId[];
  }

  async delete(jobId: JobId, checkpointId: CheckpointId): Promise<void> {
    this.completed.delete(`${jobId}:${checkpointId}`);
    const prefix = `${jobId}:${checkpointId}:`;
    for (const k of [...this.state.keys()]) if (k.startsWith(prefix)) this.state.delete(k);
  }

  /** Number of stored state parts (for tests that check cleanup). */
  get statePartCount(): number {
    return this.state.size;
  }
}
