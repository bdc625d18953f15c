/**
 * Scale-in and the pending output of parallel transactional sinks.
 *
 * A redis sink (exactly-once) is chained to the last keyed vertex, one sink per subtask, and keeps
 * every transaction it has not yet seen written in its checkpoint state (`sink-main.redis`,
 * core/sinks/redis-write-ahead.ts): a restored subtask's `begin` writes them, so output of a
 * completed checkpoint whose commit never ran (notice lost, task canceled first) is not lost.
 * That state is restored to the task with the same id. When a job restores its checkpoint at a
 * lower parallelism (reactive scale-down), subtasks `p'..p-1` no longer exist and nobody would
 * write their pending transactions: rows of windows that fired before the checkpoint would be
 * missing for good (the replay starts after them).
 *
 * So before the new attempt is deployed, the JobManager writes them itself, as the vanished
 * subtask's `begin` would have: one fenced script per orphaned part, under the new attempt's
 * fencing epoch. That also fences the old attempt's zombies; the new attempt's sinks begin with
 * the same epoch, which the fence allows. Writing a transaction that was in fact already written
 * sets every field to the value it has (idempotent). File and stdout sinks are single vertices
 * (subtask 0 always exists); bullmq and redis-stream outputs are not transactional.
 */
import { Redis } from 'ioredis';
import {
  checkpointId as asCheckpointId,
  epoch as asEpoch,
  jobId as asJobId,
  taskKey as asTaskKey,
} from '../core/checkpoint/ids.js';
import type { CheckpointStore } from '../core/checkpoint/store.js';
import type { CompletedCheckpoint } from '../core/checkpoint/types.js';
import { EngineError } from '../core/errors/index.js';
import type { JobGraph } from '../core/graph/types.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, RedisWriteAhead } from '../core/sinks/redis-write-ahead.js';

/** A sink state part of `checkpoint` whose task does not exist in the new attempt. */
export interface OrphanedPart {
  /** the old task's id, e.g. `window-2` */
  taskKey: string;
  /** e.g. `sink-main.redis` */
  part: string;
}

/** The vertex id of a task id: `window-2` → `window`, `window-2-0` → `window-2`. */
export function vertexOfTask(taskId: string): string {
  return taskId.replace(/-\d+$/, '');
}

/**
 * The `sink-*.redis` parts of `checkpoint` written by tasks that are not in `taskIds` (the task
 * ids of the new attempt), in checkpoint order. Empty unless the parallelism of a vertex with a
 * chained redis sink went down.
 */
export function orphanedSinkParts(checkpoint: CompletedCheckpoint, taskIds: ReadonlySet<string>): OrphanedPart[] {
  const out: OrphanedPart[] = [];
  for (const t of checkpoint.tasks) {
    if (taskIds.has(t.taskKey)) continue;
    for (const p of t.parts)
      if (p.startsWith('sink-') && p.endsWith('.redis')) out.push({ taskKey: t.taskKey, part: p });
  }
  return out;
}

/**
 * Writes the pending transactions of each orphaned redis sink part (module comment), one after
 * the other, and resolves when Redis confirmed them all.
 * @param o.graph the job graph the checkpoint was taken with (names each sink's key prefix and fields)
 * @param o.epoch the new attempt's fencing epoch (`sinkEpoch`)
 * @param o.claim take the prefix over from another job, as the sinks of a job's first attempt do
 *   (a job submitted from another job's savepoint): true when the new attempt is the job's first
 * @param o.defaultRedisUrl for a sink without its own `url`
 * @throws EngineError `PROTOCOL` when a part is missing or is not a redis sink state; `SINK_IO`
 *   (fenced) or `REDIS_UNAVAILABLE` from the write, as the sink itself would throw
 */
export async function commitOrphanedSinkParts(o: {
  store: CheckpointStore;
  checkpoint: CompletedCheckpoint;
  parts: readonly OrphanedPart[];
  graph: JobGraph;
  jobId: string;
  epoch: number;
  claim: boolean;
  defaultRedisUrl: string;
}): Promise<void> {
  const clients = new Map<string, Redis>();
  try {
    for (const { taskKey, part } of o.parts) {
      const role = /^sink-([A-Za-z]+)\.redis$/.exec(part)?.[1];
      const vertex = o.graph.vertices.find((v) => v.id === vertexOfTask(taskKey));
      const op = vertex?.operators.find((x) => x.kind === 'sink' && x.role === role);
      if (op?.kind !== 'sink' || op.sink.type !== 'redis')
        throw new EngineError(
          'PROTOCOL',
          `checkpoint ${o.checkpoint.checkpointId}: ${taskKey}/${part} is not the state of a redis sink of the job`,
        );
      const bytes = await o.store.getTaskState({
        jobId: asJobId(o.checkpoint.jobId),
        checkpointId: asCheckpointId(o.checkpoint.checkpointId),
        epoch: asEpoch(o.checkpoint.epoch),
        taskKey: asTaskKey(taskKey),
        part,
      });
      if (!bytes)
        throw new EngineError('PROTOCOL', `checkpoint ${o.checkpoint.checkpointId} has no state ${taskKey}/${part}`);
      const url = op.sink.url ?? o.defaultRedisUrl;
      let client = clients.get(url);
      if (!client) {
        client = new Redis(url, { maxRetriesPerRequest: 3, commandTimeout: DEFAULT_COMMAND_TIMEOUT_MS });
        client.on('error', () => {});
        clients.set(url, client);
      }
      const wal = new RedisWriteAhead(client, {
        keyPrefix: op.sink.keyPrefix,
        label: `${role} output of ${taskKey} (scaled in)`,
        jobId: o.jobId,
        epoch: o.epoch,
        claim: o.claim,
        fields: op.fields.map((f) => f.name),
      });
      wal.begin(bytes);
      await wal.settled();
      wal.check();
    }
  } finally {
    for (const c of clients.values()) c.disconnect();
  }
}
