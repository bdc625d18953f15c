/**
 * Branded identifiers of the checkpoint protocol, so a job id can never be passed where a task
 * key is expected, nor an epoch where a checkpoint id is (STYLE.md §2; Bytewax's execution number
 * plays the role of our epoch).
 *
 * Each constructor validates its input and throws EngineError `PROTOCOL` for a value that could
 * not have come from a well-behaved peer (they are used on values read from gRPC or Redis).
 */
import { EngineError } from '../errors/index.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A job, e.g. `3f2a9c0d1e4b5a69` (hex from the JobManager). Only `[A-Za-z0-9._-]`, 1–128 chars. */
export type JobId = Brand<string, 'JobId'>;
/**
 * A checkpoint or savepoint of one job: an integer in [1, 2^53). Ids increase within a job attempt
 * and a new attempt continues after the ids it restored; a higher id is a later snapshot.
 */
export type CheckpointId = Brand<number, 'CheckpointId'>;
/**
 * The job attempt number (the JobManager numbers the first run 1, +1 per restart), used as a fencing epoch: an
 * acknowledgement, state write or sink commit carrying another epoch than the current one comes
 * from a zombie task of an earlier attempt and must have no effect.
 */
export type Epoch = Brand<number, 'Epoch'>;
/**
 * A subtask, independent of the attempt: `${vertexId}-${subtask}` (core/graph's `taskId`, not its
 * attempt-qualified `taskKey`), so that attempt e+1 finds the state attempt e wrote. Only
 * `[A-Za-z0-9._-]`, 1–128 chars (it is part of Redis keys, which use `:` as separator).
 */
export type TaskKey = Brand<string, 'TaskKey'>;

const NAME = /^[A-Za-z0-9._-]{1,128}$/;

/** @throws EngineError `PROTOCOL` unless `s` matches `[A-Za-z0-9._-]{1,128}` */
export function jobId(s: string): JobId {
  if (!NAME.test(s)) throw new EngineError('PROTOCOL', `invalid job id ${JSON.stringify(s.slice(0, 140))}`);
  return s as JobId;
}

/** @throws EngineError `PROTOCOL` unless `s` matches `[A-Za-z0-9._-]{1,128}` */
export function taskKey(s: string): TaskKey {
  if (!NAME.test(s)) throw new EngineError('PROTOCOL', `invalid task key ${JSON.stringify(s.slice(0, 140))}`);
  return s as TaskKey;
}

/** @throws EngineError `PROTOCOL` unless `n` is an integer in [1, 2^53) */
export function checkpointId(n: number): CheckpointId {
  if (!Number.isSafeInteger(n) || n < 1) throw new EngineError('PROTOCOL', `invalid checkpoint id ${n}`);
  return n as CheckpointId;
}

/** @throws EngineError `PROTOCOL` unless `n` is an integer in [0, 2^53) */
export function epoch(n: number): Epoch {
  if (!Number.isSafeInteger(n) || n < 0) throw new EngineError('PROTOCOL', `invalid epoch ${n}`);
  return n as Epoch;
}
