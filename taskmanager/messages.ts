import type { TaskDeploymentDescriptor, TaskLocation } from '../core/graph/types.js';
import type { TaskCounters } from '../core/runtime/transport.js';

/** Messages from the TaskManager's main thread to a slot worker. */
export type ToSlot =
  | { t: 'deploy'; reqId: number; descs: TaskDeploymentDescriptor[] }
  | { t: 'start'; jobId: string; attempt: number }
  | { t: 'cancel'; jobId: string; attempt: number }
  | { t: 'stopSources'; jobId: string; attempt: number }
  /** the cluster's settings, learnt when the TaskManager registers */
  | { t: 'cluster'; redisUrl: string; clusterId: string }
  | { t: 'checkpointComplete'; jobId: string; attempt: number; checkpointId: number }
  | {
      t: 'triggerCheckpoint';
      jobId: string;
      attempt: number;
      checkpointId: number;
      timestampMs: number;
      flags: number;
      /** stop-with-savepoint: the sources halt after this barrier */
      haltSources: boolean;
    }
  /** frames for tasks in this slot, in arrival order */
  | { t: 'frames'; items: { taskKey: string; frame: Uint8Array }[] }
  | { t: 'credits'; items: { taskKey: string; key: string; credits: number }[] };

/** Messages from a slot worker to the main thread. */
export type FromSlot =
  | { t: 'ready' }
  | { t: 'deployed'; reqId: number; error?: { code: string; message: string } }
  /** frames for tasks in other slots or TaskManagers, in send order (coalesced per event-loop turn) */
  | { t: 'frames'; items: { dest: TaskLocation; frame: Uint8Array }[] }
  | { t: 'credits'; items: { dest: TaskLocation; key: string; credits: number }[] }
  | {
      t: 'state';
      jobId: string;
      attempt: number;
      taskId: string;
      state: 'FINISHED' | 'FAILED' | 'CANCELED';
      errorCode: string;
      errorMessage: string;
      counters: TaskCounters;
    }
  | {
      t: 'ckptAck';
      jobId: string;
      attempt: number;
      taskId: string;
      checkpointId: number;
      parts: string[];
      stateBytes: number;
      /** barrier alignment time, ms */
      alignmentMs: number;
    }
  | {
      t: 'ckptDecline';
      jobId: string;
      attempt: number;
      taskId: string;
      checkpointId: number;
      reason: string;
      message: string;
    }
  | {
      t: 'metrics';
      tasks: { jobId: string; attempt: number; taskId: string; counters: TaskCounters }[];
      /** this worker's V8 heap in use, bytes */
      heapUsedBytes: number;
    };

export interface SlotWorkerData {
  taskmanagerId: string;
  slot: number;
  redisUrl: string;
  /** key namespace of the cluster's Redis (checkpoint state goes under it) */
  clusterId: string;
  config: { batchRecords: number; sourceBatchLines: number; channelCredits: number; bufferTimeoutMs: number };
  metricsIntervalMs: number;
}
