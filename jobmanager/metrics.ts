/**
 * GET /metrics: the JobManager's Prometheus metrics (docs/rest-api.md). Every value is read from
 * JobManager snapshots at scrape time (prom-client `collect`), in a registry of its own, so two
 * JobManagers in one process (tests) never share or clash.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { TaskManagerInfo } from '../core/rpc/index.js';
import type { JobView } from './jobmanager.js';
import { checkpointsJson, vertexMetrics } from './rest.js';

/** What the metrics read at each scrape. */
export interface MetricsSource {
  jobViews(): JobView[];
  taskmanagerList(): TaskManagerInfo[];
}

const JOB_STATES = ['CREATED', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELED', 'RESTARTING'] as const;

/**
 * Builds the registry: `fluxo_job_*`, `fluxo_vertex_*`, `fluxo_checkpoint*`, `fluxo_taskmanager*`
 * and Node's default process metrics prefixed `fluxo_jobmanager_`. `registry.metrics()` gives
 * the text format (content type `registry.contentType`).
 */
export function createMetricsRegistry(src: MetricsSource): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fluxo_jobmanager_' });
  const jobLabels = ['job_id', 'job_name'] as const;
  const vLabels = ['job_id', 'job_name', 'vertex'] as const;
  const reg = [registry];
  const now = () => Date.now();

  /** jobs, vertex metrics and checkpoint counts of one scrape (the collect callbacks run one after another) */
  let scrape: { atMs: number; views: JobView[] } | undefined;
  const views = (): JobView[] => {
    const t = now();
    if (!scrape || t - scrape.atMs > 200) scrape = { atMs: t, views: src.jobViews() };
    return scrape.views;
  };
  const forVertices = (f: (v: JobView, vertex: string, m: ReturnType<typeof vertexMetrics>['metrics']) => void) => {
    for (const v of views()) for (const x of v.graph.vertices) f(v, x.id, vertexMetrics(v, x.id, now()).metrics);
  };
  const jl = (v: JobView) => ({ job_id: v.summary.jobId, job_name: v.summary.name });

  new Gauge({
    name: 'fluxo_job_state',
    help: 'Job state: 1 for the state the job is in, 0 for the others',
    labelNames: [...jobLabels, 'state'],
    registers: reg,
    collect() {
      this.reset();
      for (const v of views())
        for (const s of JOB_STATES) this.set({ ...jl(v), state: s }, v.summary.state === s ? 1 : 0);
    },
  });
  new Counter({
    name: 'fluxo_job_restarts_total',
    help: 'Restarts (failovers) of the job: its attempt − 1',
    labelNames: jobLabels,
    registers: reg,
    collect() {
      this.reset();
      for (const v of views()) this.inc(jl(v), Math.max(0, v.summary.attempt - 1));
    },
  });
  const vertexCounter = (
    name: string,
    help: string,
    pick: (m: ReturnType<typeof vertexMetrics>['metrics']) => number,
  ) =>
    new Counter({
      name,
      help,
      labelNames: vLabels,
      registers: reg,
      collect() {
        this.reset();
        forVertices((v, vertex, m) => this.inc({ ...jl(v), vertex }, pick(m)));
      },
    });
  const vertexGauge = (
    name: string,
    help: string,
    pick: (m: ReturnType<typeof vertexMetrics>['metrics']) => number | null,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: vLabels,
      registers: reg,
      collect() {
        this.reset();
        forVertices((v, vertex, m) => {
          const x = pick(m);
          if (x !== null) this.set({ ...jl(v), vertex }, x);
        });
      },
    });
  vertexCounter('fluxo_vertex_records_in_total', 'Records the vertex took in (current attempt)', (m) => m.recordsIn);
  vertexCounter('fluxo_vertex_records_out_total', 'Records the vertex emitted (current attempt)', (m) => m.recordsOut);
  vertexCounter(
    'fluxo_vertex_rows_written_total',
    "Rows the vertex's sink operators wrote, also a sink chained to a keyed vertex (current attempt)",
    (m) => m.rowsWritten,
  );
  vertexGauge(
    'fluxo_vertex_records_in_per_second',
    'Records in per second over the last heartbeat interval',
    (m) => m.recordsInPerSec,
  );
  vertexGauge(
    'fluxo_vertex_records_out_per_second',
    'Records out per second over the last heartbeat interval',
    (m) => m.recordsOutPerSec,
  );
  vertexGauge(
    'fluxo_vertex_busy_ratio',
    'Share of time the subtasks spent processing (mean, 0..1)',
    (m) => m.busyRatio,
  );
  vertexGauge(
    'fluxo_vertex_backpressured_ratio',
    'Share of time the subtasks waited for downstream capacity (mean, 0..1)',
    (m) => m.backpressuredRatio,
  );
  vertexGauge(
    'fluxo_vertex_watermark_ms',
    'The vertex watermark (min over subtasks), ms since the epoch',
    (m) => m.watermarkMs,
  );

  new Counter({
    name: 'fluxo_checkpoints_total',
    help: 'Checkpoints of the job by final status (completed, failed, aborted)',
    labelNames: [...jobLabels, 'status'],
    registers: reg,
    collect() {
      this.reset();
      for (const v of views()) {
        const c = checkpointsJson(v, now()).counts;
        this.inc({ ...jl(v), status: 'completed' }, c.completed);
        this.inc({ ...jl(v), status: 'failed' }, c.failed);
        this.inc({ ...jl(v), status: 'aborted' }, c.aborted);
      }
    },
  });
  const observed = new Set<string>();
  new Histogram({
    name: 'fluxo_checkpoint_duration_ms',
    help: 'Duration of completed checkpoints, ms (trigger to completion)',
    labelNames: jobLabels,
    buckets: [10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000],
    registers: reg,
    collect() {
      for (const v of views())
        for (const h of v.details.checkpoints?.history ?? []) {
          const id = `${v.summary.jobId}:${h.id}`;
          if (h.status !== 'COMPLETED' || h.durationMs === undefined || observed.has(id)) continue;
          observed.add(id);
          this.observe(jl(v), h.durationMs);
        }
    },
  });
  new Gauge({
    name: 'fluxo_checkpoint_state_bytes',
    help: 'State size of the latest completed checkpoint, bytes',
    labelNames: jobLabels,
    registers: reg,
    collect() {
      this.reset();
      for (const v of views()) {
        const l = v.details.checkpoints?.latest;
        if (l) this.set(jl(v), l.stateBytes);
      }
    },
  });

  new Gauge({
    name: 'fluxo_taskmanager_slots',
    help: 'Slots of each TaskManager (kind=total|used)',
    labelNames: ['taskmanager_id', 'kind'],
    registers: reg,
    collect() {
      this.reset();
      for (const t of src.taskmanagerList()) {
        if (t.state !== 'ALIVE') continue;
        this.set({ taskmanager_id: t.taskmanagerId, kind: 'total' }, t.slotsTotal);
        this.set({ taskmanager_id: t.taskmanagerId, kind: 'used' }, t.slotsUsed);
      }
    },
  });
  new Gauge({
    name: 'fluxo_taskmanager_rss_bytes',
    help: 'Resident set size of each live TaskManager process (worker threads included), bytes',
    labelNames: ['taskmanager_id'],
    registers: reg,
    collect() {
      this.reset();
      for (const t of src.taskmanagerList())
        if (t.state === 'ALIVE') this.set({ taskmanager_id: t.taskmanagerId }, t.rssBytes);
    },
  });
  new Gauge({
    name: 'fluxo_taskmanager_heap_used_bytes',
    help: 'V8 heap used by each live TaskManager, its main thread and slot workers together, bytes (only TaskManagers that have reported it)',
    labelNames: ['taskmanager_id'],
    registers: reg,
    collect() {
      this.reset();
      for (const t of src.taskmanagerList())
        if (t.state === 'ALIVE' && t.heapUsedBytes > 0) this.set({ taskmanager_id: t.taskmanagerId }, t.heapUsedBytes);
    },
  });
  new Gauge({
    name: 'fluxo_taskmanagers',
    help: 'TaskManagers the JobManager knows, by state (ALIVE, LOST)',
    labelNames: ['state'],
    registers: reg,
    collect() {
      this.reset();
      const all = src.taskmanagerList();
      for (const s of ['ALIVE', 'LOST']) this.set({ state: s }, all.filter((t) => t.state === s).length);
    },
  });
  return registry;
}
