import { buildJobGraph } from '../graph/build.js';
import { buildDeployment } from '../graph/deploy.js';
import type { TaskLocation } from '../graph/types.js';
import { createLogger } from '../log/index.js';
import type { JobSpec } from '../spec/types.js';
import { Task } from './task.js';
import type { ChannelMessage, TaskCounters, Transport } from './transport.js';

export interface LocalRunResult {
  counters: Record<string, TaskCounters>;
}

/**
 * Runs a whole job in this thread: the same tasks, operators, codec and credit-based channels as
 * the cluster, with a transport that hands frames from task to task through the event loop. For
 * tests and quick experiments; it needs no Redis unless the job has a redis sink.
 * @param opts.parallelism overrides the spec's parallelism
 * @param opts.localBatches hand records over as objects instead of encoded frames (default false:
 *   every record goes through the binary codec, as between slots)
 */
export async function runJobLocally(
  spec: JobSpec,
  opts: {
    parallelism?: number;
    redisUrl?: string;
    batchRecords?: number;
    channelCredits?: number;
    localBatches?: boolean;
  } = {},
): Promise<LocalRunResult> {
  const s: JobSpec = opts.parallelism ? { ...spec, parallelism: opts.parallelism } : spec;
  const graph = buildJobGraph(s);
  const maxP = Math.max(...graph.vertices.map((v) => v.parallelism));
  const slots = Array.from({ length: maxP }, (_, i) => ({ taskmanagerId: 'local', slot: i, dataAddress: 'local' }));
  const descs = buildDeployment('local', 1, s, graph, slots);
  const tasks = new Map<string, Task>();
  const transport: Transport = {
    isLocal: () => opts.localBatches ?? false,
    sendFrame(consumer: TaskLocation, frame: ChannelMessage) {
      const t = tasks.get(consumer.taskKey);
      setImmediate(() => t?.onFrame(frame));
    },
    sendCredit(producer: TaskLocation, key: string, credits: number) {
      const t = tasks.get(producer.taskKey);
      setImmediate(() => t?.onCredit(key, credits));
    },
  };
  const log = createLogger('local');
  const config = {
    batchRecords: opts.batchRecords ?? 256,
    channelCredits: opts.channelCredits ?? 4,
    bufferTimeoutMs: 20,
  };
  for (const d of descs)
    tasks.set(d.taskKey, new Task(d, { transport, config, log, redisUrl: opts.redisUrl ?? 'redis://127.0.0.1:6379' }));
  await Promise.all([...tasks.values()].map((t) => t.restoreState()));
  for (const t of tasks.values()) t.start();
  try {
    await Promise.all([...tasks.values()].map((t) => t.done));
  } catch (err) {
    for (const t of tasks.values()) t.cancel();
    throw err;
  }
  return { counters: Object.fromEntries([...tasks.values()].map((t) => [t.desc.taskId, t.counters])) };
}
