import { type AbortedCheckpoint, CheckpointCoordinator } from '../core/checkpoint/coordinator.js';
import {
  checkpointId as asCheckpointId,
  epoch as asEpoch,
  jobId as asJobId,
  taskKey as asTaskKey,
} from '../core/checkpoint/ids.js';
import type { CheckpointStore } from '../core/checkpoint/store.js';
import type { CheckpointConfig, CompletedCheckpoint, DeclineReason } from '../core/checkpoint/types.js';
import { EngineError } from '../core/errors/index.js';
import type { Logger } from '../core/log/index.js';

/** One line of a job's checkpoint history, as the status shows it. */
export interface CheckpointRecord {
  id: number;
  /** ABORTED: ended by the job (finished, failing over, stopping) or subsumed by a newer one, not a failure */
  status: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'ABORTED';
  savepoint: boolean;
  triggeredAtMs: number;
  durationMs?: number;
  stateBytes?: number;
  /** max over the acknowledging tasks of their barrier alignment time, ms (0 until a task acknowledged) */
  alignmentMs: number;
  failure?: string;
}

export interface JobCheckpointingOptions {
  jobId: string;
  attempt: number;
  config: CheckpointConfig;
  /** task ids (`vertex-subtask`) of the sources, which receive the trigger */
  sourceTasks: string[];
  /** every task id of the job; all acknowledge */
  tasks: string[];
  store: CheckpointStore;
  /** completed checkpoints of earlier attempts (ids continue after the newest; old ones count towards `retained`) */
  restored?: CompletedCheckpoint[];
  /**
   * The least first checkpoint id: ids continue after the newest of `restored` and after this.
   * The JobManager passes one more than the highest id any earlier attempt triggered (ids are
   * never reused, so an id names one checkpoint of the job), or one more than the savepoint's id
   * for a job restored from another job's savepoint (its sinks' commits need ids above it). Default 1
   */
  firstCheckpointId?: number;
  /** counts and history of earlier attempts, carried on so the status counts and lists the job's checkpoints */
  prior?: { completed: number; failed: number; aborted: number; history?: CheckpointRecord[] };
  /**
   * Sends the trigger of checkpoint `id` to the TaskManagers running the sources; `haltSources`
   * (stop-with-savepoint) makes them read nothing more after its barrier.
   */
  triggerSources(id: number, timestampMs: number, flags: number, haltSources: boolean): Promise<void>;
  /** tells every TaskManager of the job that checkpoint `id` completed (sinks commit) */
  notifyComplete(id: number): Promise<void>;
  /** too many failed checkpoints: the job must fail (tolerableFailures exceeded) */
  onFailuresExceeded(reason: string): void;
  log: Logger;
  /** how often the timer ticks, ms. Default 100 */
  tickMs?: number;
}

const HISTORY = 20;

/** Abort reasons that are not failures of the checkpoint: the attempt ended, or a newer one won. */
const ENDED_BY_THE_JOB: ReadonlySet<string> = new Set(['SHUTDOWN', 'JOB_FAILOVER', 'TASK_NOT_RUNNING', 'SUBSUMED']);

/**
 * The JobManager's driver of one job attempt's checkpoints: it owns the pure
 * `CheckpointCoordinator` (core/checkpoint) and does what its decisions say: triggers sources on a
 * timer, writes completed metadata to the store, deletes checkpoints beyond `retained` and
 * aborted ones, and keeps the counts and history for the status. Asynchronous barrier
 * snapshotting, Carbone et al. 2015.
 */
export class JobCheckpointing {
  private readonly coordinator: CheckpointCoordinator;
  private timer: NodeJS.Timeout | undefined;
  private readonly history: CheckpointRecord[] = [];
  private readonly waiting = new Map<
    number,
    { resolve: (c: CompletedCheckpoint) => void; reject: (e: Error) => void }
  >();
  /** manual triggers waiting for the running checkpoint to end */
  private manualQueue: { resolve: (c: CompletedCheckpoint) => void; reject: (e: Error) => void }[] = [];
  /** a stop-with-savepoint was triggered: the sources halt at its barrier, no more checkpoints */
  private halting = false;
  /** checkpoints whose metadata write is in flight, by id */
  private readonly finalizing = new Map<number, Promise<void>>();
  /** stop() was called: the coordinator no longer tracks checkpoints */
  private stopped = false;

  /** true once a stop-with-savepoint reached the sources (they halt at its barrier) */
  get sourcesHalting(): boolean {
    return this.halting;
  }
  completed = 0;
  failed = 0;
  /** aborted because the job ended, failed over or stopped, or subsumed: not failures */
  aborted = 0;
  /** the highest checkpoint id this attempt triggered (0: none) */
  lastTriggeredId = 0;
  latest: CompletedCheckpoint | null = null;

  constructor(private readonly o: JobCheckpointingOptions) {
    this.coordinator = new CheckpointCoordinator({
      jobId: asJobId(o.jobId),
      epoch: asEpoch(o.attempt),
      config: o.config,
      sourceTasks: o.sourceTasks.map(asTaskKey),
      tasks: o.tasks.map(asTaskKey),
      startedAtMs: Date.now(),
      restored: o.restored,
      firstCheckpointId: asCheckpointId(
        Math.max(
          o.restored && o.restored.length > 0 ? o.restored[o.restored.length - 1].checkpointId + 1 : 1,
          o.firstCheckpointId ?? 1,
        ),
      ),
    });
    this.latest = o.restored && o.restored.length > 0 ? o.restored[o.restored.length - 1] : null;
    if (o.prior) {
      this.completed = o.prior.completed;
      this.failed = o.prior.failed;
      this.aborted = o.prior.aborted;
      for (const h of o.prior.history ?? []) this.record({ ...h });
    }
    for (const t of o.tasks) this.coordinator.taskRunning(asTaskKey(t));
  }

  start(): void {
    // often enough that a timeout or an interval is kept to within a quarter of it (10–100 ms)
    const { intervalMs, timeoutMs } = this.o.config;
    const tick = this.o.tickMs ?? Math.max(10, Math.min(100, Math.floor(Math.min(intervalMs, timeoutMs) / 4)));
    this.timer = setInterval(() => this.onTick(), tick);
    this.timer.unref();
  }

  /**
   * Stops the attempt's checkpointing; pending checkpoints are aborted and cleaned up, except one
   * whose metadata write is in flight: if that write lands, it is a complete, valid checkpoint
   * (every task acknowledged its state), kept for recovery. `settled()` waits for such writes.
   */
  stop(reason: 'JOB_FAILOVER' | 'SHUTDOWN'): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const q of this.manualQueue.splice(0)) q.reject(new EngineError('JOB_STATE', 'the job is ending'));
    for (const a of this.coordinator.shutdown(reason)) this.onAborted(a);
  }

  /** Resolves when no metadata write is in flight any more (after `stop`, before deleting the job's checkpoints). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.finalizing.values()]);
  }

  /** A task stopped running (finished, failed, canceled): checkpoints can no longer include it. */
  taskEnded(taskId: string): void {
    for (const a of this.coordinator.taskNotRunning(asTaskKey(taskId))) this.onAborted(a);
  }

  /**
   * Triggers a checkpoint by hand (`fluxo checkpoint`) and resolves when it completed. If one is
   * in progress, it is triggered as soon as that one ends (like Flink, one runs at a time).
   * @throws EngineError JOB_STATE when it cannot be taken (a task has ended, the job is ending) or is aborted.
   */
  triggerNow(): Promise<CompletedCheckpoint> {
    return new Promise((resolve, reject) => {
      this.manualQueue.push({ resolve, reject });
      this.onTick();
    });
  }

  /**
   * Triggers a savepoint (never subsumed, never deleted by retention; it may run beside a
   * checkpoint) and resolves when it completed AND every TaskManager was told, so sinks have
   * committed its output (or will commit it when restored). With `halt` the sources read nothing
   * more after its barrier (stop-with-savepoint) and no further checkpoint is triggered; the caller
   * then ends the job, or fails it over if the savepoint failed.
   * @throws EngineError JOB_STATE when it cannot be taken (a task has ended, the job is ending, a stop is under way) or is aborted.
   */
  triggerSavepoint(halt: boolean): Promise<CompletedCheckpoint> {
    if (this.halting) return Promise.reject(new EngineError('JOB_STATE', 'the job is stopping with a savepoint'));
    const r = this.coordinator.trigger(Date.now(), { savepoint: true });
    if (r.outcome === 'REFUSED')
      return Promise.reject(new EngineError('JOB_STATE', `cannot take a savepoint: ${r.reason}`));
    if (halt) this.halting = true;
    this.lastTriggeredId = Math.max(this.lastTriggeredId, r.checkpointId);
    this.record({
      id: r.checkpointId,
      status: 'IN_PROGRESS',
      savepoint: true,
      triggeredAtMs: r.timestampMs,
      alignmentMs: 0,
    });
    const done = new Promise<CompletedCheckpoint>((resolve, reject) => {
      this.waiting.set(r.checkpointId, { resolve, reject });
    });
    this.o.triggerSources(r.checkpointId, r.timestampMs, r.barrierFlags, halt).catch((err: Error) => {
      this.o.log.warn(
        { jobId: this.o.jobId, checkpointId: r.checkpointId, err: err.message },
        'cannot trigger savepoint',
      );
    });
    return done;
  }

  /**
   * A task acknowledged checkpoint `checkpointId` (state written). `alignmentMs` is its barrier
   * alignment time; the checkpoint's history entry keeps the maximum over its tasks. Default 0
   */
  onAck(
    taskId: string,
    attempt: number,
    checkpointId: number,
    parts: string[],
    stateBytes: number,
    alignmentMs = 0,
  ): void {
    const h = this.history.find((x) => x.id === checkpointId);
    if (h && h.status === 'IN_PROGRESS' && alignmentMs > h.alignmentMs) h.alignmentMs = alignmentMs;
    const r = this.coordinator.acknowledge(
      {
        epoch: asEpoch(attempt),
        taskKey: asTaskKey(taskId),
        checkpointId: asCheckpointId(checkpointId),
        state: { parts, stateBytes },
      },
      Date.now(),
    );
    if (r.outcome === 'COMPLETED') {
      const id = r.checkpoint.checkpointId;
      const f = this.finalize(r.checkpoint)
        .catch((err: Error) =>
          this.o.log.error(
            { jobId: this.o.jobId, checkpointId: id, err: err.message },
            'checkpoint finalization failed',
          ),
        )
        .finally(() => this.finalizing.delete(id));
      this.finalizing.set(id, f);
    } else if (r.outcome === 'DISCARDED') void this.deleteQuietly(checkpointId);
  }

  onDecline(taskId: string, attempt: number, checkpointId: number, reason: string, message: string): void {
    const r = this.coordinator.decline({
      epoch: asEpoch(attempt),
      taskKey: asTaskKey(taskId),
      checkpointId: asCheckpointId(checkpointId),
      reason: reason as DeclineReason,
      message,
    });
    if (r.outcome === 'ABORTED') {
      this.onAborted(r.aborted);
      if (r.failureCountExceeded) this.o.onFailuresExceeded(this.failureText(r.aborted));
    }
  }

  /** Counts, the latest completed checkpoint and recent history, for the status. */
  stats() {
    return {
      completed: this.completed,
      failed: this.failed,
      aborted: this.aborted,
      inProgress: this.history.filter((h) => h.status === 'IN_PROGRESS').length,
      latest: this.latest
        ? {
            id: this.latest.checkpointId,
            triggeredAtMs: this.latest.triggeredAtMs,
            durationMs: this.latest.completedAtMs - this.latest.triggeredAtMs,
            stateBytes: this.latest.stateBytes,
          }
        : null,
      history: [...this.history],
    };
  }

  private trigger(manual: boolean): number | string {
    const now = Date.now();
    const r = this.coordinator.trigger(now, { manual });
    if (r.outcome === 'REFUSED') return r.reason;
    this.lastTriggeredId = Math.max(this.lastTriggeredId, r.checkpointId);
    this.record({
      id: r.checkpointId,
      status: 'IN_PROGRESS',
      savepoint: r.savepoint,
      triggeredAtMs: r.timestampMs,
      alignmentMs: 0,
    });
    this.o.triggerSources(r.checkpointId, r.timestampMs, r.barrierFlags, false).catch((err: Error) => {
      this.o.log.warn(
        { jobId: this.o.jobId, checkpointId: r.checkpointId, err: err.message },
        'cannot trigger checkpoint',
      );
    });
    return r.checkpointId;
  }

  private onTick(): void {
    const now = Date.now();
    const t = this.coordinator.tick(now);
    for (const a of t.aborted) this.onAborted(a);
    if (t.failureCountExceeded && t.aborted.length > 0) {
      this.o.onFailuresExceeded(this.failureText(t.aborted[t.aborted.length - 1]));
      return;
    }
    if (this.halting) {
      for (const q of this.manualQueue.splice(0))
        q.reject(new EngineError('JOB_STATE', 'the job is stopping with a savepoint'));
      return;
    }
    if (this.manualQueue.length > 0) {
      const id = this.trigger(true);
      if (typeof id === 'number') {
        const queued = this.manualQueue;
        this.manualQueue = [];
        this.waiting.set(id, {
          resolve: (c) => {
            for (const q of queued) q.resolve(c);
          },
          reject: (e) => {
            for (const q of queued) q.reject(e);
          },
        });
      } else if (id !== 'ALREADY_IN_PROGRESS' && id !== 'TOO_SOON') {
        for (const q of this.manualQueue.splice(0))
          q.reject(new EngineError('JOB_STATE', `cannot take a checkpoint: ${id}`));
      }
      return;
    }
    if (this.coordinator.shouldTrigger(now).trigger) this.trigger(false);
  }

  private async finalize(c: CompletedCheckpoint): Promise<void> {
    try {
      await this.o.store.completeCheckpoint(c);
    } catch (err) {
      if (this.stopped) return; // aborted by stop() meanwhile; nothing was written
      const r = this.coordinator.completionFailed(c.checkpointId);
      this.onAborted(r.aborted, (err as Error).message);
      if (r.failureCountExceeded) this.o.onFailuresExceeded(this.failureText(r.aborted));
      return;
    }
    if (this.stopped) {
      // the attempt ended while the write was in flight: the checkpoint is complete and kept
      this.o.log.info(
        { jobId: this.o.jobId, checkpointId: c.checkpointId },
        'checkpoint completed as its attempt ended; kept for recovery',
      );
      this.waiting.get(c.checkpointId)?.resolve(c);
      this.waiting.delete(c.checkpointId);
      return;
    }
    const s = this.coordinator.completionStored(c.checkpointId, Date.now());
    this.completed++;
    this.latest = c;
    const h = this.history.find((x) => x.id === c.checkpointId);
    if (h) {
      h.status = 'COMPLETED';
      h.durationMs = c.completedAtMs - c.triggeredAtMs;
      h.stateBytes = c.stateBytes;
    }
    this.o.log.info(
      {
        jobId: this.o.jobId,
        checkpointId: c.checkpointId,
        durationMs: c.completedAtMs - c.triggeredAtMs,
        stateBytes: c.stateBytes,
      },
      'checkpoint completed',
    );
    const notified = this.o.notifyComplete(c.checkpointId).catch((err: Error) => {
      // a lost notice is covered: the next completed checkpoint commits everything before it,
      // and a restore from this one commits what it pre-committed
      this.o.log.warn(
        { jobId: this.o.jobId, checkpointId: c.checkpointId, err: err.message },
        'cannot notify checkpoint completion',
      );
    });
    // a savepoint's caller may stop the job next: the notice must be on its way to every
    // TaskManager first (each handles its calls in order, so sinks commit before they are canceled)
    if (c.savepoint) await notified;
    this.waiting.get(c.checkpointId)?.resolve(c);
    this.waiting.delete(c.checkpointId);
    for (const a of s.subsumed) this.onAborted(a);
    for (const id of s.toDelete) await this.deleteQuietly(id);
  }

  private onAborted(a: AbortedCheckpoint, detail?: string): void {
    // declined because a source had ended, a task was canceled or a later barrier came first:
    // the job's own course, like the reasons above; only a task error is a failure
    const declinedInCourse =
      a.reason === 'DECLINED' && a.declinedBy !== undefined && a.declinedBy.reason !== 'TASK_ERROR';
    const failure = !ENDED_BY_THE_JOB.has(a.reason) && !declinedInCourse;
    if (failure) this.failed++;
    else this.aborted++;
    const text = this.failureText(a) + (detail ? `: ${detail}` : '');
    const h = this.history.find((x) => x.id === a.checkpointId);
    if (h) {
      h.status = failure ? 'FAILED' : 'ABORTED';
      h.failure = text;
    }
    this.o.log.warn(
      { jobId: this.o.jobId, checkpointId: a.checkpointId, reason: text, counted: a.counted },
      'checkpoint aborted',
    );
    // a checkpoint whose metadata write is in flight may still complete: its finalize decides
    if (this.finalizing.has(a.checkpointId) && this.stopped) return;
    this.waiting
      .get(a.checkpointId)
      ?.reject(new EngineError('JOB_STATE', `checkpoint ${a.checkpointId} failed: ${text}`));
    this.waiting.delete(a.checkpointId);
    void this.deleteQuietly(a.checkpointId);
  }

  private failureText(a: AbortedCheckpoint): string {
    const by = a.declinedBy
      ? ` by ${a.declinedBy.taskKey} (${a.declinedBy.reason}${a.declinedBy.message ? `: ${a.declinedBy.message}` : ''})`
      : '';
    return `checkpoint ${a.checkpointId} ${a.reason}${by}`;
  }

  private async deleteQuietly(id: number): Promise<void> {
    try {
      await this.o.store.delete(asJobId(this.o.jobId), asCheckpointId(id));
    } catch (err) {
      this.o.log.warn(
        { jobId: this.o.jobId, checkpointId: id, err: (err as Error).message },
        'cannot delete checkpoint state',
      );
    }
  }

  private record(r: CheckpointRecord): void {
    this.history.push(r);
    if (this.history.length > HISTORY) this.history.shift();
  }
}
