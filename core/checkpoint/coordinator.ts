/**
 * The checkpoint coordinator of one job attempt: a pure state machine, after Flink's
 * `CheckpointCoordinator` + `PendingCheckpoint` + `CheckpointFailureManager` and the asynchronous
 * barrier snapshotting of Carbone et al. 2015 ("Lightweight Asynchronous Snapshots for Distributed
 * Dataflows").
 *
 * It owns no timer, store or RPC. The JobManager gathers facts (the time, task states, acks,
 * store results), asks for a decision, and acts on the named outcome. Every method takes the
 * current time as `nowMs` (ms since the epoch, from an injected clock), so the same calls always
 * give the same decisions.
 *
 * Life of checkpoint n (the caller's part in brackets):
 * ```
 * shouldTrigger ─► trigger ─► [send trigger to tasksToTrigger] ─► acknowledge × tasks
 *   ─► COMPLETED (metadata) ─► [store.completeCheckpoint] ─► completionStored
 *   ─► [notify tasks/sinks to commit n; store.delete(each toDelete)]
 * aborted at any point before completionStored ─► [send abort to tasks; store.delete(n)]
 * ```
 * At most one checkpoint runs at a time (Flink's default `maxConcurrentCheckpoints` 1);
 * savepoints, like Flink's forced checkpoints, ignore that limit and `minPauseMs`.
 */
import { EngineError } from '../errors/index.js';
import type { CheckpointId, Epoch, JobId, TaskKey } from './ids.js';
import {
  barrierFlags,
  type CheckpointConfig,
  type CheckpointFailureReason,
  type CompletedCheckpoint,
  checkpointConfigProblems,
  type DeclineReason,
  type TaskStateHandle,
} from './types.js';

/** How many finished (completed or aborted) checkpoint ids are remembered to classify late messages. */
export const RECENT_CHECKPOINTS_REMEMBERED = 64;

export interface CoordinatorOptions {
  jobId: JobId;
  /** this attempt's fencing epoch; messages carrying another are `UNKNOWN` */
  epoch: Epoch;
  config: CheckpointConfig;
  /** the tasks that receive the trigger (the sources); non-empty subset of `tasks` */
  sourceTasks: TaskKey[];
  /** every task of the job; all must acknowledge */
  tasks: TaskKey[];
  /**
   * The first id to use: greater than every id an earlier attempt triggered if known (the
   * JobManager should persist the highest), else `latestCompleted + 1`. Ids reused across
   * attempts are safe because stored state is keyed by epoch too. Default 1.
   */
  firstCheckpointId?: CheckpointId;
  /** completed checkpoints and savepoints restored from the store (any order); savepoints are ignored */
  restored?: CompletedCheckpoint[];
  /** when the attempt started, ms; the first periodic checkpoint is due `intervalMs` later */
  startedAtMs: number;
}

/** An aborted checkpoint. The caller tells the tasks to abort it and calls `store.delete(checkpointId)`. */
export interface AbortedCheckpoint {
  checkpointId: CheckpointId;
  savepoint: boolean;
  reason: CheckpointFailureReason;
  /** for `DECLINED`: the task and its reason */
  declinedBy?: { taskKey: TaskKey; reason: DeclineReason; message?: string };
  /** whether this abort counted towards `tolerableFailures` */
  counted: boolean;
}

export type ShouldTrigger =
  | { trigger: true; reason: 'DUE' }
  | {
      trigger: false;
      reason: 'NOT_DUE' | 'TOO_SOON' | 'ALREADY_IN_PROGRESS' | 'NOT_ALL_TASKS_RUNNING' | 'SHUTDOWN';
      /** earliest time worth asking again, ms; absent when it depends on an event, not time */
      dueAtMs?: number;
    };

export type TriggerResult =
  | {
      outcome: 'TRIGGERED';
      checkpointId: CheckpointId;
      savepoint: boolean;
      /** for the BARRIER frame, ms */
      timestampMs: number;
      /** BARRIER frame flags: 0 aligned (exactly-once), 1 unaligned (at-least-once) */
      barrierFlags: 0 | 1;
      /** tasks to send the trigger to (the sources) */
      tasksToTrigger: TaskKey[];
      /** tasks whose acknowledgement completes the checkpoint */
      tasksToAck: TaskKey[];
    }
  | { outcome: 'REFUSED'; reason: 'SHUTDOWN' | 'ALREADY_IN_PROGRESS' | 'TOO_SOON' | 'NOT_ALL_TASKS_RUNNING' };

/** An acknowledgement from a task: its state for `checkpointId` is written to the store. */
export interface TaskAck {
  epoch: Epoch;
  taskKey: TaskKey;
  checkpointId: CheckpointId;
  state: TaskStateHandle;
}

export interface TaskDecline {
  epoch: Epoch;
  taskKey: TaskKey;
  checkpointId: CheckpointId;
  reason: DeclineReason;
  message?: string;
}

/**
 * Why a message is `UNKNOWN`: `WRONG_EPOCH` (a zombie of another attempt), `NOT_A_TASK` (task key
 * not in this job), `NEVER_TRIGGERED` (id not issued by this attempt) or `FORGOTTEN` (older than
 * the remembered ids).
 */
export type UnknownWhy = 'WRONG_EPOCH' | 'NOT_A_TASK' | 'NEVER_TRIGGERED' | 'FORGOTTEN';

/**
 * - `ACKNOWLEDGED`: recorded; `remaining` tasks still to ack.
 * - `COMPLETED`: that was the last ack; persist `checkpoint` with `store.completeCheckpoint`, then
 *   call `completionStored` (or `completionFailed`).
 * - `DUPLICATE`: this task already acknowledged this checkpoint; ignore (do not discard state).
 * - `UNKNOWN`: see `why`; ignore (never delete state on its account: the id may be reused).
 * - `DISCARDED`: the checkpoint was aborted (a late ack); call `store.delete(checkpointId)` again,
 *   since this task's write may have landed after the first cleanup.
 */
export type AckOutcome =
  | { outcome: 'ACKNOWLEDGED'; checkpointId: CheckpointId; remaining: number }
  | { outcome: 'COMPLETED'; checkpoint: CompletedCheckpoint }
  | { outcome: 'DUPLICATE'; checkpointId: CheckpointId }
  | { outcome: 'UNKNOWN'; checkpointId: CheckpointId; why: UnknownWhy }
  | { outcome: 'DISCARDED'; checkpointId: CheckpointId };

/** `ABORTED`: the decline aborted the checkpoint; `DISCARDED`: it was no longer pending. */
export type DeclineOutcome =
  | { outcome: 'ABORTED'; aborted: AbortedCheckpoint; failureCountExceeded: boolean }
  | { outcome: 'UNKNOWN'; checkpointId: CheckpointId; why: UnknownWhy }
  | { outcome: 'DISCARDED'; checkpointId: CheckpointId };

/** Result of `completionStored`: act in this order (commit, then delete). */
export interface StoredResult {
  checkpoint: CompletedCheckpoint;
  /** tasks to notify that the checkpoint completed (sinks commit) */
  notifyTasks: TaskKey[];
  /** older pending checkpoints aborted as `SUBSUMED` (savepoints are never subsumed) */
  subsumed: AbortedCheckpoint[];
  /** completed checkpoints beyond `retained`, oldest first: `store.delete` each (never a savepoint) */
  toDelete: CheckpointId[];
}

/** Aborts from `tick`, plus the earliest future deadline (ms) to tick at, or null with nothing pending. */
export interface TickResult {
  aborted: AbortedCheckpoint[];
  failureCountExceeded: boolean;
  nextDeadlineMs: number | null;
}

interface Pending {
  id: CheckpointId;
  savepoint: boolean;
  triggeredAtMs: number;
  deadlineMs: number;
  waiting: Set<TaskKey>;
  acked: Map<TaskKey, TaskStateHandle>;
  /** all acked, metadata handed out, awaiting the store's answer */
  finalizing: CompletedCheckpoint | null;
}

const COUNTED: ReadonlySet<CheckpointFailureReason> = new Set(['EXPIRED', 'DECLINED', 'FINALIZE_FAILED']);

export class CheckpointCoordinator {
  readonly jobId: JobId;
  readonly epoch: Epoch;
  readonly config: Readonly<CheckpointConfig>;
  private readonly tasks: readonly TaskKey[];
  private readonly taskSet: ReadonlySet<TaskKey>;
  private readonly sources: readonly TaskKey[];
  private readonly firstId: number;
  private nextId: number;
  private readonly pending = new Map<CheckpointId, Pending>();
  /** completed non-savepoint checkpoints, ascending id */
  private retainedList: CheckpointId[] = [];
  private readonly recent = new Map<CheckpointId, 'COMPLETED' | 'ABORTED'>();
  private readonly running = new Set<TaskKey>();
  private lastPeriodicTriggerMs: number;
  private lastCompletionMs = Number.NEGATIVE_INFINITY;
  private latestCompletedId = 0;
  private consecutiveFailures = 0;
  private stopped = false;

  /**
   * @throws EngineError `SPEC_INVALID` (with `problems`) for an invalid config, `INTERNAL` when
   *   `sourceTasks` is empty or not a subset of `tasks`, or `tasks` has duplicates
   */
  constructor(opts: CoordinatorOptions) {
    const problems = checkpointConfigProblems(opts.config);
    if (problems.length > 0)
      throw new EngineError('SPEC_INVALID', `invalid checkpoint config: ${problems.join('; ')}`, { problems });
    this.jobId = opts.jobId;
    this.epoch = opts.epoch;
    this.config = Object.freeze({ ...opts.config });
    this.tasks = [...opts.tasks].sort();
    this.taskSet = new Set(this.tasks);
    if (this.taskSet.size !== this.tasks.length) throw new EngineError('INTERNAL', 'duplicate task keys');
    if (opts.sourceTasks.length === 0 || opts.sourceTasks.some((t) => !this.taskSet.has(t)))
      throw new EngineError('INTERNAL', 'sourceTasks must be a non-empty subset of tasks');
    this.sources = [...opts.sourceTasks].sort();
    const restored = (opts.restored ?? []).filter((c) => !c.savepoint).sort((a, b) => a.checkpointId - b.checkpointId);
    this.retainedList = restored.map((c) => c.checkpointId);
    const restoredMax = Math.max(0, ...(opts.restored ?? []).map((c) => c.checkpointId));
    this.latestCompletedId = restoredMax;
    this.firstId = Math.max(opts.firstCheckpointId ?? 1, restoredMax + 1);
    this.nextId = this.firstId;
    this.lastPeriodicTriggerMs = opts.startedAtMs;
  }

  /** Consecutive counted failures exceed `tolerableFailures`: the job must fail over. */
  get failureCountExceeded(): boolean {
    return this.consecutiveFailures > this.config.tolerableFailures;
  }

  /** Counted failures since the last completed checkpoint. */
  get failureCount(): number {
    return this.consecutiveFailures;
  }

  /** Ids of pending checkpoints (including ones awaiting their metadata write), ascending. */
  get pendingIds(): CheckpointId[] {
    return [...this.pending.keys()].sort((a, b) => a - b);
  }

  /** The task reported RUNNING (after deploy and restore). Unknown keys are ignored. */
  taskRunning(task: TaskKey): void {
    if (this.taskSet.has(task)) this.running.add(task);
  }

  /**
   * The task stopped running (finished, failed or canceled). Pending checkpoints still waiting for
   * its ack are aborted with `TASK_NOT_RUNNING` (not counted).
   */
  taskNotRunning(task: TaskKey): AbortedCheckpoint[] {
    this.running.delete(task);
    const out: AbortedCheckpoint[] = [];
    for (const p of this.pendingAscending()) {
      if (p.finalizing === null && p.waiting.has(task)) out.push(this.abort(p, 'TASK_NOT_RUNNING'));
    }
    return out;
  }

  /**
   * Whether a periodic checkpoint should be triggered now. Due `intervalMs` after the previous
   * periodic trigger (or the attempt start) and at least `minPauseMs` after the last completion.
   */
  shouldTrigger(nowMs: number): ShouldTrigger {
    if (this.stopped) return { trigger: false, reason: 'SHUTDOWN' };
    if (this.hasPendingCheckpoint()) return { trigger: false, reason: 'ALREADY_IN_PROGRESS' };
    if (!this.allRunning()) return { trigger: false, reason: 'NOT_ALL_TASKS_RUNNING' };
    const dueAtMs = this.lastPeriodicTriggerMs + this.config.intervalMs;
    if (nowMs < dueAtMs) return { trigger: false, reason: 'NOT_DUE', dueAtMs };
    const pauseEndMs = this.lastCompletionMs + this.config.minPauseMs;
    if (nowMs < pauseEndMs) return { trigger: false, reason: 'TOO_SOON', dueAtMs: pauseEndMs };
    return { trigger: true, reason: 'DUE' };
  }

  /**
   * Starts a checkpoint. Periodic (neither option): refused while a checkpoint is pending or
   * within `minPauseMs` of the last completion. `manual` (a user's `fluxo checkpoint`) skips the
   * pause; `savepoint` skips both limits, is never subsumed and never deleted by retention.
   * Refusals count as no failure.
   */
  trigger(nowMs: number, opts: { manual?: boolean; savepoint?: boolean } = {}): TriggerResult {
    const savepoint = opts.savepoint === true;
    const periodic = !savepoint && opts.manual !== true;
    if (this.stopped) return { outcome: 'REFUSED', reason: 'SHUTDOWN' };
    if (!this.allRunning()) return { outcome: 'REFUSED', reason: 'NOT_ALL_TASKS_RUNNING' };
    if (!savepoint && this.hasPendingCheckpoint()) return { outcome: 'REFUSED', reason: 'ALREADY_IN_PROGRESS' };
    if (periodic && nowMs < this.lastCompletionMs + this.config.minPauseMs)
      return { outcome: 'REFUSED', reason: 'TOO_SOON' };
    const id = this.nextId++ as CheckpointId;
    if (periodic) this.lastPeriodicTriggerMs = nowMs;
    this.pending.set(id, {
      id,
      savepoint,
      triggeredAtMs: nowMs,
      deadlineMs: nowMs + this.config.timeoutMs,
      waiting: new Set(this.tasks),
      acked: new Map(),
      finalizing: null,
    });
    return {
      outcome: 'TRIGGERED',
      checkpointId: id,
      savepoint,
      timestampMs: nowMs,
      barrierFlags: barrierFlags(this.config.mode),
      tasksToTrigger: [...this.sources],
      tasksToAck: [...this.tasks],
    };
  }

  /** Records a task's acknowledgement. Never throws: odd acks are ordinary traffic (see AckOutcome). */
  acknowledge(ack: TaskAck, nowMs: number): AckOutcome {
    const id = ack.checkpointId;
    const unknown = this.unknownWhy(ack.epoch, ack.taskKey, id);
    if (unknown !== null) return { outcome: 'UNKNOWN', checkpointId: id, why: unknown };
    const p = this.pending.get(id);
    if (p === undefined) {
      const was = this.recent.get(id);
      if (was === 'COMPLETED') return { outcome: 'DUPLICATE', checkpointId: id };
      if (was === 'ABORTED') return { outcome: 'DISCARDED', checkpointId: id };
      return { outcome: 'UNKNOWN', checkpointId: id, why: 'FORGOTTEN' };
    }
    if (!p.waiting.has(ack.taskKey)) return { outcome: 'DUPLICATE', checkpointId: id };
    p.waiting.delete(ack.taskKey);
    p.acked.set(ack.taskKey, { parts: [...ack.state.parts], stateBytes: ack.state.stateBytes });
    if (p.waiting.size > 0) return { outcome: 'ACKNOWLEDGED', checkpointId: id, remaining: p.waiting.size };
    const tasks = this.tasks.map((t) => {
      const h = p.acked.get(t) as TaskStateHandle;
      return { taskKey: t, parts: h.parts, stateBytes: h.stateBytes };
    });
    p.finalizing = {
      jobId: this.jobId,
      checkpointId: id,
      epoch: this.epoch,
      savepoint: p.savepoint,
      mode: this.config.mode,
      triggeredAtMs: p.triggeredAtMs,
      completedAtMs: nowMs,
      tasks,
      stateBytes: tasks.reduce((s, t) => s + t.stateBytes, 0),
    };
    return { outcome: 'COMPLETED', checkpoint: p.finalizing };
  }

  /** A task declined: the checkpoint is aborted with `DECLINED` (counted only for `TASK_ERROR`). */
  decline(d: TaskDecline): DeclineOutcome {
    const id = d.checkpointId;
    const unknown = this.unknownWhy(d.epoch, d.taskKey, id);
    if (unknown !== null) return { outcome: 'UNKNOWN', checkpointId: id, why: unknown };
    const p = this.pending.get(id);
    if (p === undefined || p.finalizing !== null) {
      if (p === undefined && !this.recent.has(id)) return { outcome: 'UNKNOWN', checkpointId: id, why: 'FORGOTTEN' };
      return { outcome: 'DISCARDED', checkpointId: id };
    }
    const aborted = this.abort(p, 'DECLINED', {
      taskKey: d.taskKey,
      reason: d.reason,
      ...(d.message === undefined ? {} : { message: d.message }),
    });
    return { outcome: 'ABORTED', aborted, failureCountExceeded: this.failureCountExceeded };
  }

  /**
   * The metadata of `checkpointId` (from a `COMPLETED` outcome) is durably in the store. The
   * checkpoint is now complete: the failure count resets, older pending checkpoints are subsumed
   * and completed checkpoints beyond `retained` are returned for deletion.
   * @throws EngineError `INTERNAL` if `checkpointId` is not awaiting its metadata write
   */
  completionStored(checkpointId: CheckpointId, nowMs: number): StoredResult {
    const p = this.pending.get(checkpointId);
    if (p === undefined || p.finalizing === null)
      throw new EngineError('INTERNAL', `checkpoint ${checkpointId} is not awaiting its metadata write`, {
        ids: { jobId: this.jobId, checkpointId },
      });
    const checkpoint = p.finalizing;
    this.pending.delete(checkpointId);
    this.remember(checkpointId, 'COMPLETED');
    this.consecutiveFailures = 0;
    this.lastCompletionMs = nowMs;
    this.latestCompletedId = Math.max(this.latestCompletedId, checkpointId);
    const subsumed: AbortedCheckpoint[] = [];
    for (const q of this.pendingAscending()) {
      if (q.id < checkpointId && !q.savepoint) subsumed.push(this.abort(q, 'SUBSUMED'));
    }
    let toDelete: CheckpointId[] = [];
    if (!checkpoint.savepoint) {
      this.retainedList.push(checkpointId);
      this.retainedList.sort((a, b) => a - b);
      const excess = this.retainedList.length - this.config.retained;
      if (excess > 0) toDelete = this.retainedList.splice(0, excess);
    }
    return { checkpoint, notifyTasks: [...this.tasks], subsumed, toDelete };
  }

  /**
   * Writing the metadata of `checkpointId` failed: it is aborted with `FINALIZE_FAILED` (counted).
   * The caller must not have notified tasks of it; it deletes the partial state like any abort.
   * @throws EngineError `INTERNAL` if `checkpointId` is not awaiting its metadata write
   */
  completionFailed(checkpointId: CheckpointId): { aborted: AbortedCheckpoint; failureCountExceeded: boolean } {
    const p = this.pending.get(checkpointId);
    if (p === undefined || p.finalizing === null)
      throw new EngineError('INTERNAL', `checkpoint ${checkpointId} is not awaiting its metadata write`, {
        ids: { jobId: this.jobId, checkpointId },
      });
    const aborted = this.abort(p, 'FINALIZE_FAILED');
    return { aborted, failureCountExceeded: this.failureCountExceeded };
  }

  /**
   * Aborts, with `EXPIRED` (counted), every pending checkpoint whose deadline (`triggeredAtMs +
   * timeoutMs`) is at or before `nowMs`. Checkpoints awaiting their metadata write do not expire:
   * the caller bounds the store call and reports `completionFailed`.
   */
  tick(nowMs: number): TickResult {
    const aborted: AbortedCheckpoint[] = [];
    let next: number | null = null;
    for (const p of this.pendingAscending()) {
      if (p.finalizing !== null) continue;
      if (p.deadlineMs <= nowMs) aborted.push(this.abort(p, 'EXPIRED'));
      else next = next === null ? p.deadlineMs : Math.min(next, p.deadlineMs);
    }
    return { aborted, failureCountExceeded: this.failureCountExceeded, nextDeadlineMs: next };
  }

  /**
   * Ends this coordinator: every pending checkpoint is aborted (not counted) and later triggers
   * are refused with `SHUTDOWN`. `JOB_FAILOVER` before a restart, `SHUTDOWN` when the job ends.
   * A checkpoint awaiting its metadata write is aborted too; if the write lands anyway it is a
   * valid checkpoint that recovery may use (sinks then commit it on restore).
   */
  shutdown(reason: 'JOB_FAILOVER' | 'SHUTDOWN'): AbortedCheckpoint[] {
    this.stopped = true;
    return this.pendingAscending().map((p) => this.abort(p, reason));
  }

  private hasPendingCheckpoint(): boolean {
    for (const p of this.pending.values()) if (!p.savepoint) return true;
    return false;
  }

  private allRunning(): boolean {
    return this.running.size === this.tasks.length;
  }

  private pendingAscending(): Pending[] {
    return [...this.pending.values()].sort((a, b) => a.id - b.id);
  }

  private unknownWhy(e: Epoch, task: TaskKey, id: CheckpointId): UnknownWhy | null {
    if (e !== this.epoch) return 'WRONG_EPOCH';
    if (!this.taskSet.has(task)) return 'NOT_A_TASK';
    if (!Number.isSafeInteger(id) || id < this.firstId || id >= this.nextId) return 'NEVER_TRIGGERED';
    return null;
  }

  private remember(id: CheckpointId, what: 'COMPLETED' | 'ABORTED'): void {
    this.recent.set(id, what);
    while (this.recent.size > RECENT_CHECKPOINTS_REMEMBERED) {
      const oldest = this.recent.keys().next().value as CheckpointId;
      this.recent.delete(oldest);
    }
  }

  private abort(p: Pending, reason: CheckpointFailureReason, declinedBy?: AbortedCheckpoint['declinedBy']) {
    this.pending.delete(p.id);
    this.remember(p.id, 'ABORTED');
    // Like Flink's CheckpointFailureManager: savepoint failures and failures of checkpoints older
    // than the latest completed one do not count; a decline counts only for a task error.
    const counted =
      COUNTED.has(reason) &&
      !p.savepoint &&
      p.id > this.latestCompletedId &&
      (reason !== 'DECLINED' || declinedBy?.reason === 'TASK_ERROR');
    if (counted) this.consecutiveFailures++;
    const out: AbortedCheckpoint = { checkpointId: p.id, savepoint: p.savepoint, reason, counted };
    if (declinedBy !== undefined) out.declinedBy = declinedBy;
    return out;
  }
}
