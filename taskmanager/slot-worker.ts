import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { checkpointKeyPrefix, RedisCheckpointStore } from '../core/checkpoint/redis-store.js';
import type { TaskLocation } from '../core/graph/types.js';
import { createLogger } from '../core/log/index.js';
import { Task, type TaskCheckpointEnv } from '../core/runtime/task.js';
import type { Transport } from '../core/runtime/transport.js';
import type { FromSlot, SlotWorkerData, ToSlot } from './messages.js';

/**
 * One task slot: a worker thread (its own core) running the subtasks deployed into it. Frames to
 * a task in this slot are handed over directly; frames to other slots go to the TaskManager's main
 * thread, which routes them to the right worker (local channel) or over gRPC (remote).
 */
const data = workerData as SlotWorkerData;
const port = parentPort;
if (!port) throw new Error('slot-worker must run as a worker thread');
const log = createLogger('taskmanager', { taskmanagerId: data.taskmanagerId, slot: data.slot });
const tasks = new Map<string, Task>();

function post(msg: FromSlot, transfer?: ArrayBuffer[]): void {
  (port as NonNullable<typeof port>).postMessage(msg, transfer);
}

/** Makes `frame` own a whole ArrayBuffer so it can be transferred without copying twice. */
function owned(frame: Uint8Array): Uint8Array {
  if (frame.byteOffset === 0 && frame.byteLength === frame.buffer.byteLength && frame.buffer instanceof ArrayBuffer)
    return frame;
  return frame.slice();
}

const isLocal = (loc: TaskLocation): boolean => loc.taskmanagerId === data.taskmanagerId && loc.slot === data.slot;

// Frames and credits for other slots are coalesced per event-loop turn into one message each
// (postMessage has a fixed cost per call); order per channel is kept.
let outFrames: { dest: TaskLocation; frame: Uint8Array }[] = [];
let outTransfer: ArrayBuffer[] = [];
let outCredits: { dest: TaskLocation; key: string; credits: number }[] = [];
let flushScheduled = false;
function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    if (outFrames.length > 0) {
      post({ t: 'frames', items: outFrames }, outTransfer);
      outFrames = [];
      outTransfer = [];
    }
    if (outCredits.length > 0) {
      post({ t: 'credits', items: outCredits });
      outCredits = [];
    }
  });
}

const transport: Transport = {
  isLocal,
  sendFrame(consumer, frame) {
    if (isLocal(consumer)) {
      const t = tasks.get(consumer.taskKey);
      if (t) setImmediate(() => t.onFrame(frame));
      return;
    }
    if (!(frame instanceof Uint8Array))
      throw new Error(`local batch for ${consumer.taskKey}, which is in another slot`);
    const f = owned(frame);
    outFrames.push({ dest: consumer, frame: f });
    outTransfer.push(f.buffer as ArrayBuffer);
    scheduleFlush();
  },
  sendCredit(producer, key, credits) {
    if (isLocal(producer)) {
      const t = tasks.get(producer.taskKey);
      if (t) setImmediate(() => t.onCredit(key, credits));
      return;
    }
    outCredits.push({ dest: producer, key, credits });
    scheduleFlush();
  },
};

// Checkpoint state goes to the cluster's Redis from this thread (a TaskManager writes its own
// state, as in Flink); the connection opens on the first checkpoint.
let cluster = { redisUrl: data.redisUrl, clusterId: data.clusterId };
let checkpointStore: RedisCheckpointStore | undefined;
const checkpoints: TaskCheckpointEnv = {
  get store() {
    if (!checkpointStore) {
      const redis = new Redis(cluster.redisUrl, { maxRetriesPerRequest: 3 });
      redis.on('error', (err) => log.warn({ err: err.message }, 'checkpoint store connection error'));
      checkpointStore = new RedisCheckpointStore({ redis, keyPrefix: checkpointKeyPrefix(cluster.clusterId) });
    }
    return checkpointStore;
  },
  ack(task, checkpointId, parts, stateBytes, alignmentMs) {
    const d = task.desc;
    post({
      t: 'ckptAck',
      jobId: d.jobId,
      attempt: d.attempt,
      taskId: d.taskId,
      checkpointId,
      parts,
      stateBytes,
      alignmentMs,
    });
  },
  decline(task, checkpointId, reason, message) {
    const d = task.desc;
    post({ t: 'ckptDecline', jobId: d.jobId, attempt: d.attempt, taskId: d.taskId, checkpointId, reason, message });
  },
};

function errorInfo(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'TASK_FAILED',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

port.on('message', (msg: ToSlot) => {
  switch (msg.t) {
    case 'deploy': {
      const created: Task[] = [];
      try {
        for (const d of msg.descs) {
          const task = new Task(d, {
            checkpoints: d.spec.checkpoint ? checkpoints : undefined,
            transport,
            config: data.config,
            log: log.child({ jobId: d.jobId, taskId: d.taskId }),
            redisUrl: cluster.redisUrl,
          });
          created.push(task);
        }
      } catch (err) {
        for (const t of created) t.cancel();
        post({ t: 'deployed', reqId: msg.reqId, error: errorInfo(err) });
        return;
      }
      for (const task of created) {
        const d = task.desc;
        tasks.set(d.taskKey, task);
        task.done.then(
          () => {
            post({
              t: 'state',
              jobId: d.jobId,
              attempt: d.attempt,
              taskId: d.taskId,
              state: task.wasCancelled ? 'CANCELED' : 'FINISHED',
              errorCode: '',
              errorMessage: '',
              counters: task.liveCounters(),
            });
            tasks.delete(d.taskKey);
          },
          (err) => {
            const info = errorInfo(err);
            log.error({ jobId: d.jobId, taskId: d.taskId, err }, 'task failed');
            post({
              t: 'state',
              jobId: d.jobId,
              attempt: d.attempt,
              taskId: d.taskId,
              state: 'FAILED',
              errorCode: info.code,
              errorMessage: info.message,
              counters: task.liveCounters(),
            });
            tasks.delete(d.taskKey);
          },
        );
      }
      // restore state (a failover) before saying the tasks are deployed: they start only after
      Promise.all(created.map((t) => t.restoreState())).then(
        () => post({ t: 'deployed', reqId: msg.reqId }),
        (err) => {
          for (const t of created) {
            t.cancel();
            tasks.delete(t.desc.taskKey);
          }
          post({ t: 'deployed', reqId: msg.reqId, error: errorInfo(err) });
        },
      );
      return;
    }
    case 'start':
      for (const t of tasks.values()) if (t.desc.jobId === msg.jobId && t.desc.attempt === msg.attempt) t.start();
      return;
    case 'cancel':
      for (const [k, t] of tasks) {
        if ((msg.jobId === '*' || t.desc.jobId === msg.jobId) && t.desc.attempt <= msg.attempt) {
          t.cancel();
          tasks.delete(k);
        }
      }
      return;
    case 'cluster':
      cluster = { redisUrl: msg.redisUrl, clusterId: msg.clusterId };
      checkpointStore = undefined;
      return;
    case 'checkpointComplete':
      for (const t of tasks.values()) {
        if (t.desc.jobId === msg.jobId && t.desc.attempt === msg.attempt) t.notifyCheckpointComplete(msg.checkpointId);
      }
      return;
    case 'triggerCheckpoint':
      for (const t of tasks.values()) {
        if (t.desc.jobId !== msg.jobId || t.desc.attempt !== msg.attempt || !t.isSource) continue;
        if (!t.triggerCheckpoint(msg.checkpointId, msg.timestampMs, msg.flags, msg.haltSources)) {
          checkpoints.decline(t, msg.checkpointId, 'NOT_READY', 'the source has ended');
        }
      }
      return;
    case 'stopSources':
      for (const t of tasks.values()) if (t.desc.jobId === msg.jobId && t.desc.attempt === msg.attempt) t.stopSource();
      return;
    case 'frames':
      for (const it of msg.items) tasks.get(it.taskKey)?.onFrame(it.frame);
      return;
    case 'credits':
      for (const it of msg.items) tasks.get(it.taskKey)?.onCredit(it.key, it.credits);
      return;
    default:
      log.error({ message: (msg as { t?: unknown }).t }, 'unknown message from the taskmanager main thread');
  }
});

// also without tasks: the heap of an idle slot counts towards the TaskManager's memory
setInterval(() => {
  post({
    t: 'metrics',
    tasks: [...tasks.values()].map((t) => ({
      jobId: t.desc.jobId,
      attempt: t.desc.attempt,
      taskId: t.desc.taskId,
      counters: t.liveCounters(),
    })),
    heapUsedBytes: getHeapStatistics().used_heap_size,
  });
}, data.metricsIntervalMs).unref();

post({ t: 'ready' });
