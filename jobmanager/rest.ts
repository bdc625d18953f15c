/**
 * The JSON shapes of the REST API (docs/rest-api.md), built from JobManager snapshots
 * (`JobView`). Pure: the caller passes the clock.
 */
import type { JobSpec } from '../core/spec/types.js';
import type { CheckpointRecord } from './checkpointing.js';
import type { JobView } from './jobmanager.js';
import { vertexRates, vertexWatermark } from './rates.js';

/** `JobSummary` of the contract: the job record plus `startedAtMs?` and `durationMs`; `endedAtMs`/`failure` only when set. */
export function jobSummaryJson(v: JobView, nowMs: number) {
  const s = v.summary;
  const start = v.startedAtMs ?? s.createdAtMs;
  const end = s.endedAtMs > 0 ? s.endedAtMs : nowMs;
  return {
    jobId: s.jobId,
    name: s.name,
    state: s.state,
    attempt: s.attempt,
    createdAtMs: s.createdAtMs,
    ...(v.startedAtMs !== undefined ? { startedAtMs: v.startedAtMs } : {}),
    ...(s.endedAtMs > 0 ? { endedAtMs: s.endedAtMs } : {}),
    durationMs: Math.max(0, end - start),
    ...(s.failure ? { failure: s.failure } : {}),
    parallelism: s.parallelism,
  };
}

/** True when the job's source never ends by itself (a followed file, an unbounded stream). */
export function isUnbounded(spec: JobSpec): boolean {
  const s = spec.source;
  return (s.type === 'file' && s.follow === true) || (s.type === 'redis-stream' && !s.bounded);
}

type Task = JobView['details']['tasks'][number];

/** Metrics of one subtask: its counters and its rates over the last heartbeat interval (0 unless RUNNING). */
function subtaskMetrics(v: JobView, t: Task) {
  const c = t.counters;
  const r = t.state === 'RUNNING' ? v.rates(t.taskId) : undefined;
  const wm = c?.watermark;
  return {
    recordsIn: c?.recordsIn ?? 0,
    recordsOut: c?.recordsOut ?? 0,
    rowsWritten: c?.rowsWritten ?? 0,
    recordsInPerSec: r?.recordsInPerSec ?? 0,
    recordsOutPerSec: r?.recordsOutPerSec ?? 0,
    busyRatio: r?.busyRatio ?? 0,
    backpressuredRatio: r?.backpressuredRatio ?? 0,
    watermarkMs: typeof wm === 'number' && Number.isFinite(wm) ? wm : null,
    recordsOutPerSecByEdge: r?.recordsOutPerSecByEdge ?? {},
    recordsOutByEdge: c?.recordsOutByEdge ?? {},
  };
}

/** Per-vertex aggregates: counts (also `rowsWritten`, rows its sink operators wrote) and rates summed, ratios averaged, watermark = min over subtasks. */
export function vertexMetrics(v: JobView, vertexId: string, nowMs: number) {
  const subs = v.details.tasks.filter((t) => t.vertex === vertexId).map((t) => subtaskMetrics(v, t));
  const r = vertexRates(
    subs.map((s) => ({
      recordsInPerSec: s.recordsInPerSec,
      recordsOutPerSec: s.recordsOutPerSec,
      busyRatio: s.busyRatio,
      backpressuredRatio: s.backpressuredRatio,
      recordsOutPerSecByEdge: s.recordsOutPerSecByEdge,
    })),
  );
  const watermarkMs = vertexWatermark(subs.map((s) => s.watermarkMs));
  const live = v.summary.state === 'RUNNING' && isUnbounded(v.spec);
  const outByEdge: Record<string, number> = {};
  for (const s of subs) for (const [e, n] of Object.entries(s.recordsOutByEdge)) outByEdge[e] = (outByEdge[e] ?? 0) + n;
  return {
    metrics: {
      recordsIn: subs.reduce((a, s) => a + s.recordsIn, 0),
      recordsOut: subs.reduce((a, s) => a + s.recordsOut, 0),
      // rows its sink operators wrote (a chained redis/bullmq sink, or a sink vertex)
      rowsWritten: subs.reduce((a, s) => a + s.rowsWritten, 0),
      recordsInPerSec: r.recordsInPerSec,
      recordsOutPerSec: r.recordsOutPerSec,
      busyRatio: r.busyRatio,
      backpressuredRatio: r.backpressuredRatio,
      watermarkMs,
      watermarkLagMs: live && watermarkMs !== null ? Math.max(0, nowMs - watermarkMs) : null,
    },
    recordsOutPerSecByEdge: r.recordsOutPerSecByEdge,
    recordsOutByEdge: outByEdge,
  };
}

/** The key fields of the rows the main sink gets (the last keyBy), e.g. ['house', 'room']. */
export function sinkKeyFields(spec: JobSpec): string[] {
  const kb = spec.steps.filter((s) => s.kind === 'keyBy');
  const last = kb.at(-1);
  return last && last.kind === 'keyBy' ? last.fields : [];
}

/** What the dashboard can show for a job: its redis sink's key prefix, its alert queue, its key fields. */
export function dashboardInfo(spec: JobSpec) {
  return {
    redisKeyPrefix: spec.sink.type === 'redis' ? spec.sink.keyPrefix : null,
    alertsQueue: spec.sink.type === 'bullmq' ? spec.sink.queue : null,
    keyFields: sinkKeyFields(spec),
  };
}

/** GET /jobs/:id. */
export function jobDetailJson(v: JobView, nowMs: number) {
  const d = v.details;
  const perVertex = new Map(v.graph.vertices.map((x) => [x.id, vertexMetrics(v, x.id, nowMs)]));
  return {
    job: jobSummaryJson(v, nowMs),
    vertices: v.graph.vertices.map((x) => ({
      id: x.id,
      name: x.name,
      parallelism: x.parallelism,
      metrics: perVertex.get(x.id)?.metrics,
    })),
    edges: v.graph.edges.map((e) => ({
      id: e.id,
      source: e.source,
      target: e.target,
      output: e.output,
      partitioner: e.partitioner,
      recordsPerSec: perVertex.get(e.source)?.recordsOutPerSecByEdge[String(e.id)] ?? 0,
      records: perVertex.get(e.source)?.recordsOutByEdge[String(e.id)] ?? 0,
    })),
    tasks: d.tasks,
    totals: d.totals,
    outputs: { results: d.outputs.results, deadLetters: d.outputs.deadLetters, late: d.outputs.late },
    checkpoints: d.checkpoints,
    exceptions: d.exceptions,
    fromSavepoint: d.fromSavepoint,
    stoppedWithSavepoint: d.stoppedWithSavepoint,
    dashboard: dashboardInfo(v.spec),
  };
}

/** GET /jobs/:id/vertices/:vid; null when the job has no such vertex. */
export function vertexDetailJson(v: JobView, vertexId: string) {
  const vertex = v.graph.vertices.find((x) => x.id === vertexId);
  if (!vertex) return null;
  const subtasks = v.details.tasks
    .filter((t) => t.vertex === vertexId)
    .sort((a, b) => a.subtask - b.subtask)
    .map((t) => {
      const m = subtaskMetrics(v, t);
      return {
        subtask: t.subtask,
        taskId: t.taskId,
        taskmanagerId: t.taskmanagerId,
        state: t.state,
        ...(t.error ? { error: t.error } : {}),
        recordsIn: m.recordsIn,
        recordsOut: m.recordsOut,
        rowsWritten: m.rowsWritten,
        recordsInPerSec: m.recordsInPerSec,
        recordsOutPerSec: m.recordsOutPerSec,
        busyRatio: m.busyRatio,
        backpressuredRatio: m.backpressuredRatio,
        watermarkMs: m.watermarkMs,
      };
    });
  return { id: vertex.id, name: vertex.name, parallelism: vertex.parallelism, subtasks };
}

/** One `CheckpointEntry`: durationMs so far while IN_PROGRESS, null for a failed/aborted one; stateBytes only when COMPLETED. */
export function checkpointEntry(h: CheckpointRecord, nowMs: number) {
  return {
    id: h.id,
    status: h.status,
    savepoint: h.savepoint,
    triggeredAtMs: h.triggeredAtMs,
    durationMs:
      h.status === 'COMPLETED'
        ? (h.durationMs ?? null)
        : h.status === 'IN_PROGRESS'
          ? Math.max(0, nowMs - h.triggeredAtMs)
          : null,
    stateBytes: h.status === 'COMPLETED' ? (h.stateBytes ?? null) : null,
    alignmentMs: h.alignmentMs ?? 0,
    ...(h.failure ? { failure: h.failure } : {}),
  };
}

/** min / avg / max of `xs`, or null when empty. */
export function minAvgMax(xs: readonly number[]): { min: number; avg: number; max: number } | null {
  if (xs.length === 0) return null;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
  }
  return { min, avg: sum / xs.length, max };
}

/** GET /jobs/:id/checkpoints. History newest first (the last 20 the JobManager keeps); summary over its COMPLETED entries. */
export function checkpointsJson(v: JobView, nowMs: number) {
  const s = v.details.checkpoints;
  const history = (s?.history ?? []).map((h) => checkpointEntry(h as CheckpointRecord, nowMs)).reverse();
  const done = history.filter((h) => h.status === 'COMPLETED');
  const latestHist = done[0];
  const latest =
    latestHist ??
    (s?.latest
      ? {
          id: s.latest.id,
          status: 'COMPLETED' as const,
          savepoint: false,
          triggeredAtMs: s.latest.triggeredAtMs,
          durationMs: s.latest.durationMs,
          stateBytes: s.latest.stateBytes,
          alignmentMs: null,
        }
      : null);
  const durations = minAvgMax(done.flatMap((h) => (h.durationMs === null ? [] : [h.durationMs])));
  return {
    counts: {
      completed: s?.completed ?? 0,
      failed: s?.failed ?? 0,
      aborted: s?.aborted ?? 0,
      inProgress: s?.inProgress ?? 0,
    },
    latest,
    history,
    summary: durations
      ? {
          durationMs: durations,
          stateBytes: minAvgMax(done.flatMap((h) => (h.stateBytes === null ? [] : [h.stateBytes]))),
          alignmentMs: minAvgMax(done.map((h) => h.alignmentMs)),
        }
      : null,
    latestRestore: v.latestRestore,
  };
}
