/**
 * Shapes of the JobManager's REST API, as written in docs/rest-api.md (the contract).
 * Times are ms since the epoch (`…Ms`), durations ms, sizes bytes.
 */

export type JobState = 'CREATED' | 'RUNNING' | 'FINISHED' | 'FAILED' | 'CANCELED' | 'RESTARTING';

export interface Overview {
  taskmanagers: number;
  slotsTotal: number;
  slotsFree: number;
  jobsRunning: number;
  /** jobs waiting for slots; absent from older JobManagers (the UI counts the jobs list) */
  jobsCreated?: number;
  jobsFinished: number;
  jobsFailed: number;
  jobsCanceled: number;
  version: string;
  chaos: boolean;
  auth: { token: boolean; reads: boolean };
}

export interface JobSummary {
  jobId: string;
  name: string;
  state: JobState;
  attempt: number;
  createdAtMs: number;
  startedAtMs?: number;
  endedAtMs?: number;
  durationMs: number;
  failure?: string;
  parallelism: number;
}

export interface VertexMetrics {
  recordsIn: number;
  recordsOut: number;
  recordsInPerSec: number;
  recordsOutPerSec: number;
  busyRatio: number;
  backpressuredRatio: number;
  watermarkMs: number | null;
  watermarkLagMs: number | null;
  /** rows a sink chained into this vertex wrote (absent from older JobManagers) */
  rowsWritten?: number;
}

export interface Vertex {
  id: string;
  name: string;
  parallelism: number;
  metrics?: VertexMetrics;
}

export interface Edge {
  source: string;
  target: string;
  partitioner: string;
  recordsPerSec: number;
}

export interface Task {
  taskId: string;
  vertex: string;
  subtask: number;
  taskmanagerId: string;
  state: string;
  error?: string;
  counters?: Record<string, number>;
}

export interface ExceptionEntry {
  timeMs: number;
  attempt: number;
  reason: string;
  restartDelayMs?: number;
}

export interface CheckpointEntry {
  id: number;
  status: 'COMPLETED' | 'FAILED' | 'IN_PROGRESS' | 'ABORTED';
  savepoint: boolean;
  triggeredAtMs: number;
  durationMs: number | null;
  stateBytes: number | null;
  alignmentMs: number | null;
}

export interface MinAvgMax {
  min: number;
  avg: number;
  max: number;
}

export interface Checkpoints {
  counts: { completed: number; failed: number; aborted: number; inProgress: number };
  latest: CheckpointEntry | null;
  history: CheckpointEntry[];
  summary: { durationMs: MinAvgMax; stateBytes: MinAvgMax; alignmentMs: MinAvgMax } | null;
  latestRestore: { checkpointId: number; attempt: number; restoredAtMs: number; fromSavepoint: boolean } | null;
}

export interface JobDetail {
  job: JobSummary;
  vertices: Vertex[];
  edges: Edge[];
  tasks: Task[];
  totals: Record<string, number>;
  outputs?: { results?: string; deadLetters?: string; late?: string };
  checkpoints?: unknown;
  exceptions: ExceptionEntry[];
  fromSavepoint: unknown;
  stoppedWithSavepoint: unknown;
  dashboard?: { redisKeyPrefix: string | null; alertsQueue: string | null; keyFields: string[] } | null;
}

export interface TaskManagerInfo {
  taskmanagerId: string;
  controlAddress: string;
  slotsTotal: number;
  slotsUsed: number;
  lastHeartbeatMs: number;
  state: string;
  rssBytes: number;
  heapUsedBytes?: number;
  pid: number;
  hostname: string;
}

export interface SensorRow {
  key: string;
  fields: Record<string, string>;
  windowStart: number;
  windowEnd: number;
  avg: number | null;
  min: number | null;
  max: number | null;
  count: number | null;
  freshnessMs: number;
}

export interface SeriesPoint {
  windowStart: number;
  windowEnd: number;
  avg: number | null;
  min: number | null;
  max: number | null;
  count: number | null;
}

export interface AlertEntry {
  sensor: string;
  ts: number;
  value: number;
  rule: string;
  detail: string;
}

export interface HeatmapCell {
  avg: number | null;
  windowStart: number;
  [level: string]: string | number | null;
}
