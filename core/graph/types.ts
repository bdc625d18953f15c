import type {
  AggregateSpec,
  DetectSpec,
  FieldType,
  JobSpec,
  RedisStreamSinkSpec,
  SinkSpec,
  WindowSpec,
} from '../spec/types.js';

/** How records of an edge are distributed over the consumer's subtasks (Flink's partitioners). */
export type Partitioner = 'forward' | 'hash' | 'rebalance' | 'global';

/** Which output of the producer an edge carries: the main stream or a side output. */
export type OutputTag = 'main' | 'deadLetter' | 'late';

export interface FieldDesc {
  name: string;
  type: FieldType;
}

/** One operator inside a vertex's chain, in order. Chained operators pass rows by reference. */
export type OperatorDesc =
  | { kind: 'source' }
  | { kind: 'filter'; expr: string; stepIndex: number }
  | { kind: 'map'; fields: Record<string, string>; stepIndex: number }
  | { kind: 'window'; window: WindowSpec; aggregates: AggregateSpec[]; keyFields: string[] }
  | { kind: 'detect'; detect: DetectSpec; keyFields: string[] }
  | { kind: 'running'; aggregates: AggregateSpec[]; keyFields: string[] }
  | {
      kind: 'sink';
      sink: SinkSpec | RedisStreamSinkSpec;
      role: OutputTag;
      fields: FieldDesc[];
      /**
       * The fields that name a row for an upserting sink: a redis sink writes the hash
       * `<keyPrefix>:<v1>:<v2>…` of their values. Default `['key', 'windowStart']` (window
       * results); `['key']` for running aggregates (one hash per key).
       */
      upsertKey?: string[];
    };

/** A vertex of the job graph: a chain of operators run as one task per subtask. */
export interface JobVertex {
  id: string;
  name: string;
  parallelism: number;
  operators: OperatorDesc[];
}

/** A data exchange between two vertices. `schema` is the projection of the row the edge carries. */
export interface JobEdge {
  id: number;
  source: string;
  target: string;
  output: OutputTag;
  partitioner: Partitioner;
  /** for `hash`: the key fields (key group = murmur3(key) mod maxParallelism) */
  keyFields: string[];
  schema: FieldDesc[];
}

/** The logical plan of a job (Flink's JobGraph, with chaining already applied). */
export interface JobGraph {
  name: string;
  maxParallelism: number;
  vertices: JobVertex[];
  edges: JobEdge[];
}

/** Where a deployed task lives, so producers can reach it. */
export interface TaskLocation {
  /** unique per job attempt: `${jobId}:${attempt}:${taskId}` */
  taskKey: string;
  taskmanagerId: string;
  dataAddress: string;
  slot: number;
}

export interface InputEdgeDesc {
  edgeId: number;
  /** index of this edge's first channel in the task's input gate; channel = base + producer subtask */
  channelBase: number;
  producers: TaskLocation[];
}

export interface OutputEdgeDesc {
  edgeId: number;
  /** consumer subtask i is consumers[i] */
  consumers: TaskLocation[];
  /** the input channel index this task occupies at every consumer of the edge */
  consumerChannel: number;
}

/** What a TaskManager needs to run one subtask (Flink's TaskDeploymentDescriptor). Sent as JSON. */
export interface TaskDeploymentDescriptor {
  jobId: string;
  attempt: number;
  /** `${vertexId}-${subtask}` */
  taskId: string;
  taskKey: string;
  vertexId: string;
  subtask: number;
  parallelism: number;
  /** the TaskManager and slot the task is deployed to */
  taskmanagerId: string;
  slot: number;
  spec: JobSpec;
  graph: JobGraph;
  inputs: InputEdgeDesc[];
  outputs: OutputEdgeDesc[];
  /**
   * State to restore before the task starts (a failover, or a job submitted from a savepoint):
   * the completed checkpoint and, for each part this task needs, which task of that checkpoint wrote it.
   */
  restore?: TaskRestore;
  /**
   * Added to `attempt` to give the sinks' fencing epoch (`sinkEpoch`). 0 for a fresh job; for a
   * job submitted from a savepoint, the last attempt of the job that took it, so the new job's
   * sinks fence that job's zombies and their output (same files, same keys). Default 0.
   */
  epochBase?: number;
}

/**
 * The fencing epoch of the task's transactional sinks: `attempt + epochBase`. It grows with every
 * restart, and across a restore from a savepoint of another job.
 */
export function sinkEpoch(desc: Pick<TaskDeploymentDescriptor, 'attempt' | 'epochBase'>): number {
  return desc.attempt + (desc.epochBase ?? 0);
}

export interface TaskRestore {
  /** the job whose checkpoint this is, when not the task's own job (a restore from a savepoint) */
  jobId?: string;
  checkpointId: number;
  /** the attempt that wrote the checkpoint's state */
  epoch: number;
  parts: { taskKey: string; part: string }[];
}

export function taskKeyOf(jobId: string, attempt: number, taskId: string): string {
  return `${jobId}:${attempt}:${taskId}`;
}
