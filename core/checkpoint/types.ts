/**
 * Shapes shared by the coordinator, the tasks and the store: checkpoint config, the state handle a
 * task acknowledges with, the metadata of a completed checkpoint, and the named failure reasons
 * (after Flink's `CheckpointFailureReason`).
 */
import { EngineError } from '../errors/index.js';
import { type CheckpointId, checkpointId, type Epoch, epoch, type JobId, jobId, type TaskKey, taskKey } from './ids.js';

/**
 * `exactly-once`: tasks align barriers (barrier flags 0) and sinks commit on completion.
 * `at-least-once`: no alignment (flags 1); after a restore, records between the barriers of one
 * checkpoint may be processed twice.
 */
export type CheckpointMode = 'exactly-once' | 'at-least-once';

/** Checkpoint settings of one job (the spec's `checkpoint:` block). All durations in ms. */
export interface CheckpointConfig {
  /** time between the triggers of two periodic checkpoints; > 0 */
  intervalMs: number;
  /** a checkpoint not complete this long after its trigger is aborted (`EXPIRED`); > 0 */
  timeoutMs: number;
  /** least time between the completion of one checkpoint and the periodic trigger of the next; >= 0 */
  minPauseMs: number;
  /** completed checkpoints kept (savepoints not counted, never deleted); >= 1 */
  retained: number;
  /** consecutive counted failures tolerated; one more and the job must fail over; >= 0 */
  tolerableFailures: number;
  mode: CheckpointMode;
}

/**
 * What a task acknowledges with: the state parts it wrote to the store for this checkpoint.
 * A part names one independently restorable piece: see `keyGroupPart` and `splitPart`.
 */
export interface TaskStateHandle {
  /** names of the parts written with `CheckpointStore.putTaskState`, no duplicates */
  parts: string[];
  /** total bytes written, for metrics */
  stateBytes: number;
}

/** One task's entry in a completed checkpoint. */
export interface TaskSnapshot extends TaskStateHandle {
  taskKey: TaskKey;
}

/**
 * Metadata of a completed checkpoint or savepoint. Every part it lists was written with the
 * checkpoint's `epoch`; state under another epoch in the same checkpoint id is garbage from a
 * zombie task. Effectively immutable once created: never mutate one you were given.
 */
export interface CompletedCheckpoint {
  jobId: JobId;
  checkpointId: CheckpointId;
  epoch: Epoch;
  savepoint: boolean;
  mode: CheckpointMode;
  /** ms since the epoch */
  triggeredAtMs: number;
  /** when the last acknowledgement arrived, ms since the epoch */
  completedAtMs: number;
  /** sorted by task key */
  tasks: TaskSnapshot[];
  /** sum of the tasks' `stateBytes` */
  stateBytes: number;
}

/**
 * Why a checkpoint did not complete or was not started.
 *
 * Refusals at trigger time (no task involved, never counted as failures):
 * - `SHUTDOWN`: the coordinator was stopped (job ending or failing over).
 * - `ALREADY_IN_PROGRESS`: a checkpoint is pending and at most one may run (savepoints exempt).
 * - `TOO_SOON`: less than `minPauseMs` since the last completion (periodic triggers only).
 * - `NOT_ALL_TASKS_RUNNING`: some task has not reported RUNNING (or stopped).
 *
 * Aborts of a triggered checkpoint:
 * - `EXPIRED` (counted): not complete within `timeoutMs`.
 * - `DECLINED` (counted if the task's reason is `TASK_ERROR`): a task declined.
 * - `FINALIZE_FAILED` (counted): writing the completed metadata to the store failed.
 * - `SUBSUMED`: a newer checkpoint completed first.
 * - `TASK_NOT_RUNNING`: a task it waits for stopped running.
 * - `JOB_FAILOVER`, `SHUTDOWN`: the attempt is ending.
 */
export type CheckpointFailureReason =
  | 'SHUTDOWN'
  | 'ALREADY_IN_PROGRESS'
  | 'TOO_SOON'
  | 'NOT_ALL_TASKS_RUNNING'
  | 'EXPIRED'
  | 'DECLINED'
  | 'FINALIZE_FAILED'
  | 'SUBSUMED'
  | 'TASK_NOT_RUNNING'
  | 'JOB_FAILOVER';

/**
 * Why a task declines a checkpoint:
 * - `TASK_ERROR`: its snapshot or state write failed (counts as a checkpoint failure);
 * - `SUBSUMED`: its aligner saw a newer barrier first;
 * - `CANCELED`: a cancellation barrier arrived (another task declined first);
 * - `NOT_READY`: the task is still restoring.
 */
export type DeclineReason = 'TASK_ERROR' | 'SUBSUMED' | 'CANCELED' | 'NOT_READY';

/** BARRIER frame flags (core/codec/frames.ts): 0 aligned exactly-once, 1 unaligned / at-least-once. */
export function barrierFlags(mode: CheckpointMode): 0 | 1 {
  return mode === 'exactly-once' ? 0 : 1;
}

/** The part name of key group `g` of operator `operator` (an operator id within the task's chain). */
export function keyGroupPart(operator: string, keyGroup: number): string {
  return part(`${operator}.kg-${keyGroup}`);
}

/** The part name of the position (and watermark) of source split `split`. */
export function splitPart(operator: string, split: number): string {
  return part(`${operator}.split-${split}`);
}

const PART = /^[A-Za-z0-9._-]{1,200}$/;

/** @throws EngineError `PROTOCOL` unless `name` matches `[A-Za-z0-9._-]{1,200}` */
export function part(name: string): string {
  if (!PART.test(name))
    throw new EngineError('PROTOCOL', `invalid state part name ${JSON.stringify(name.slice(0, 210))}`);
  return name;
}

/**
 * Checks the problems of a config; an empty list means valid. Each problem reads `field: message`.
 */
export function checkpointConfigProblems(c: CheckpointConfig): string[] {
  const p: string[] = [];
  const pos = (name: keyof CheckpointConfig, v: number, min: number) => {
    if (!Number.isFinite(v) || v < min) p.push(`${name}: must be a number >= ${min}, got ${v}`);
  };
  pos('intervalMs', c.intervalMs, 1);
  pos('timeoutMs', c.timeoutMs, 1);
  pos('minPauseMs', c.minPauseMs, 0);
  if (!Number.isInteger(c.retained) || c.retained < 1) p.push(`retained: must be an integer >= 1, got ${c.retained}`);
  if (!Number.isInteger(c.tolerableFailures) || c.tolerableFailures < 0)
    p.push(`tolerableFailures: must be an integer >= 0, got ${c.tolerableFailures}`);
  if (c.mode !== 'exactly-once' && c.mode !== 'at-least-once')
    p.push(`mode: must be exactly-once or at-least-once, got ${String(c.mode)}`);
  return p;
}

/**
 * Parses metadata stored as JSON (by a store), re-branding ids.
 * @throws EngineError `PROTOCOL` for anything that is not a well-formed CompletedCheckpoint
 */
export function parseCompletedCheckpoint(json: string): CompletedCheckpoint {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new EngineError('PROTOCOL', 'checkpoint metadata is not JSON', { cause: e });
  }
  const o = v as Record<string, unknown>;
  const bad = (what: string): never => {
    throw new EngineError('PROTOCOL', `checkpoint metadata: ${what}`);
  };
  if (typeof o !== 'object' || o === null) bad('not an object');
  const num = (k: string) => (typeof o[k] === 'number' ? (o[k] as number) : bad(`${k} is not a number`));
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : bad(`${k} is not a string`));
  if (typeof o.savepoint !== 'boolean') bad('savepoint is not a boolean');
  const mode = str('mode');
  if (mode !== 'exactly-once' && mode !== 'at-least-once') bad(`unknown mode ${mode}`);
  if (!Array.isArray(o.tasks)) bad('tasks is not an array');
  const tasks = (o.tasks as unknown[]).map((t): TaskSnapshot => {
    const r = t as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || typeof r.taskKey !== 'string' || typeof r.stateBytes !== 'number')
      return bad('malformed task entry');
    if (!Array.isArray(r.parts) || !r.parts.every((x) => typeof x === 'string')) return bad('malformed parts');
    return { taskKey: taskKey(r.taskKey), parts: (r.parts as string[]).map(part), stateBytes: r.stateBytes };
  });
  return {
    jobId: jobId(str('jobId')),
    checkpointId: checkpointId(num('checkpointId')),
    epoch: epoch(num('epoch')),
    savepoint: o.savepoint as boolean,
    mode: mode as CheckpointMode,
    triggeredAtMs: num('triggeredAtMs'),
    completedAtMs: num('completedAtMs'),
    tasks,
    stateBytes: num('stateBytes'),
  };
}
