/**
 * The JobManager's REST API (docs/rest-api.md) against real processes: a JobManager and two
 * TaskManagers with a private Redis. Values are checked against what the test knows
 * independently (lines it wrote, jobs it submitted, processes it killed); /metrics against REST.
 * A second part starts JobManagers with a token (`--web-auth reads`, `--chaos`) and on a
 * non-loopback address to check the security rules.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  killAll,
  type ManagedProcess,
  startCluster,
  startProcess,
  type TestCluster,
  waitFor,
} from '../support/processes.js';
import { startRedis, type TestRedis, uniquePrefix } from '../support/redis.js';

let redis: TestRedis;
let cluster: TestCluster;
let dir: string;

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-rest-'));
  cluster = await startCluster({
    redisUrl: redis.url,
    clusterId: `rest-${process.pid}`,
    taskmanagers: [
      { id: 'tm-a', slots: 2 },
      { id: 'tm-b', slots: 2 },
    ],
    // a killed TaskManager is noticed by its broken heartbeat stream; the timeout is the fallback
    jmEnv: { FLUXO_HEARTBEAT_TIMEOUT_MS: '3000' },
  });
});

afterAll(async () => {
  await cluster?.stop();
  await killAll();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function call(
  method: string,
  url: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method, body, headers, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: res.status, json };
}
const get = (p: string) => call('GET', `${cluster.web}${p}`);

/** Prometheus text → `name{labels}` → value (labels as written). */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    expect(m, `not a Prometheus sample line: ${line}`).not.toBeNull();
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}
function promValue(samples: Map<string, number>, name: string, labels: Record<string, string>): number | undefined {
  for (const [k, v] of samples) {
    if (!k.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([l, x]) => k.includes(`${l}="${x}"`))) return v;
  }
  return undefined;
}

/** Reads Server-Sent Events from `url` until `n` arrived; returns them parsed. */
async function readEvents(url: string, n: number): Promise<{ event: string; data: unknown }[]> {
  const ac = new AbortController();
  const res = await fetch(url, { signal: ac.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let buf = '';
  const out: { event: string; data: unknown }[] = [];
  const timer = setTimeout(() => ac.abort(), 10_000);
  try {
    while (out.length < n) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i = buf.indexOf('\n\n');
      while (i >= 0 && out.length < n) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1] ?? 'null';
        out.push({ event, data: JSON.parse(data) });
        i = buf.indexOf('\n\n');
      }
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return out;
}

const generatorSpec = (name: string, keyPrefix: string) =>
  JSON.stringify({
    name,
    parallelism: 2,
    checkpoint: { intervalMs: 200 },
    restart: { type: 'fixed-delay', attempts: 5, delayMs: 200 },
    source: { type: 'generator', sensors: 50, count: 1_000_000_000, ratePerSec: 1000, seed: 7 },
    steps: [
      { keyBy: 'sensorId' },
      { window: { type: 'tumbling', sizeMs: 1000 } },
      { aggregate: { count: 'count()', avg: 'avg(temperature)', min: 'min(temperature)', max: 'max(temperature)' } },
    ],
    sink: { type: 'redis', keyPrefix },
  });

type Vertex = {
  id: string;
  name: string;
  parallelism: number;
  metrics: Record<string, number | null>;
};

describe('REST API: reads, metrics, SSE and mutations on a running cluster', () => {
  it('GET /overview has the cluster counts, version, chaos and auth', async () => {
    const r = await get('/overview');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      taskmanagers: 2,
      slotsTotal: 4,
      slotsFree: 4,
      jobsRunning: 0,
      version: '0.1.0',
      chaos: false,
      auth: { token: false, reads: false },
    });
  });

  it('GET / serves the UI (or the not-built page) and /taskmanagers/:id one TaskManager', async () => {
    const res = await fetch(`${cluster.web}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const tm = await get('/taskmanagers/tm-a');
    expect(tm.status).toBe(200);
    expect(tm.json).toMatchObject({
      taskmanagerId: 'tm-a',
      slotsTotal: 2,
      state: 'ALIVE',
      pid: cluster.tms.get('tm-a')?.pid,
    });
    expect((await get('/taskmanagers/nope')).status).toBe(404);
  });

  it('a bounded job: vertex and subtask record counts equal the lines written; /metrics agrees', async () => {
    const N = 3000;
    const input = path.join(dir, 'readings.csv');
    const t0 = Date.UTC(2024, 0, 1);
    const lines = ['ts,sensor,temperature'];
    for (let i = 0; i < N; i++) lines.push(`${t0 + i * 1000},s${i % 17},${(20 + (i % 50) / 10).toFixed(1)}`);
    writeFileSync(input, `${lines.join('\n')}\n`);
    const yaml = [
      'name: rest-bounded',
      'parallelism: 2',
      'source:',
      '  type: file',
      `  path: ${input}`,
      '  header: true',
      '  columns: [ts:int, sensor, temperature:double]',
      '  eventTime: { field: ts, unit: ms }',
      '  watermark: { outOfOrdernessMs: 0 }',
      'steps:',
      '  - keyBy: sensor',
      '  - window: { type: tumbling, sizeMs: 60000 }',
      '  - aggregate: { n: "count()" }',
      `sink: { type: file, path: ${path.join(dir, 'bounded.jsonl')} }`,
    ].join('\n');
    const sub = await call('POST', `${cluster.web}/jobs`, yaml, { 'content-type': 'application/yaml' });
    expect(sub.status, JSON.stringify(sub.json)).toBe(201);
    const jobId = sub.json.jobId as string;
    await cluster.waitForState(jobId, 'FINISHED', 60_000);

    const job = (await get(`/jobs/${jobId}`)).json as {
      job: Record<string, unknown>;
      vertices: Vertex[];
      edges: { source: string; target: string; partitioner: string; recordsPerSec: number }[];
      tasks: unknown[];
      totals: Record<string, number>;
      dashboard: unknown;
      checkpoints: unknown;
      exceptions: unknown[];
    };
    expect(job.job).toMatchObject({ jobId, name: 'rest-bounded', state: 'FINISHED', attempt: 1, parallelism: 2 });
    expect(job.job.endedAtMs as number).toBeGreaterThanOrEqual(job.job.startedAtMs as number);
    expect(job.job.durationMs).toBe((job.job.endedAtMs as number) - (job.job.startedAtMs as number));
    const source = job.vertices.find((v) => v.id === 'source') as Vertex;
    const window = job.vertices.find((v) => v.id === 'window') as Vertex;
    expect(source.metrics.recordsIn).toBe(N);
    expect(window.metrics.recordsIn).toBe(N);
    expect(window.parallelism).toBe(2);
    // a finished job: nothing flows, no lag
    expect(source.metrics.recordsInPerSec).toBe(0);
    expect(window.metrics.watermarkLagMs).toBeNull();
    expect(job.edges).toContainEqual(
      expect.objectContaining({ source: 'source', target: 'window', partitioner: 'hash', recordsPerSec: 0 }),
    );
    expect(job.totals.readingsIn).toBe(N);
    expect(job.dashboard).toEqual({ redisKeyPrefix: null, alertsQueue: null, keyFields: ['sensor'] });
    expect(job.exceptions).toEqual([]);

    const vtx = (await get(`/jobs/${jobId}/vertices/window`)).json as {
      subtasks: { subtask: number; taskId: string; taskmanagerId: string; state: string; recordsIn: number }[];
    };
    expect(vtx.subtasks.map((s) => s.subtask)).toEqual([0, 1]);
    expect(vtx.subtasks.reduce((a, s) => a + s.recordsIn, 0)).toBe(N);
    for (const s of vtx.subtasks) {
      expect(s.state).toBe('FINISHED');
      expect(['tm-a', 'tm-b']).toContain(s.taskmanagerId);
    }
    expect((await get(`/jobs/${jobId}/vertices/nope`)).status).toBe(404);
    // the file sink is its own vertex: its rows written are the job's results written
    const sinkV = job.vertices.find((v) => v.id === 'sink') as Vertex;
    expect(sinkV.name).toBe('Sink: file');
    expect(sinkV.metrics.rowsWritten).toBe(job.totals.resultsWritten);
    expect(sinkV.metrics.rowsWritten).toBeGreaterThan(0);
    expect(window.metrics.rowsWritten).toBe(0);

    // a job id prefix works; the job is in GET /jobs with the summary fields
    expect(((await get(`/jobs/${jobId.slice(0, 6)}`)).json.job as { jobId: string }).jobId).toBe(jobId);
    const list = (await get('/jobs')).json.jobs as { jobId: string; state: string }[];
    expect(list.find((j) => j.jobId === jobId)?.state).toBe('FINISHED');

    const prom = await fetch(`${cluster.web}/metrics`);
    expect(prom.headers.get('content-type')).toContain('text/plain');
    const samples = parseProm(await prom.text());
    for (const v of job.vertices) {
      expect(promValue(samples, 'fluxo_vertex_records_in_total', { job_id: jobId, vertex: v.id })).toBe(
        v.metrics.recordsIn,
      );
      expect(promValue(samples, 'fluxo_vertex_records_out_total', { job_id: jobId, vertex: v.id })).toBe(
        v.metrics.recordsOut,
      );
      expect(promValue(samples, 'fluxo_vertex_rows_written_total', { job_id: jobId, vertex: v.id })).toBe(
        v.metrics.rowsWritten,
      );
    }
    expect(promValue(samples, 'fluxo_job_state', { job_id: jobId, state: 'FINISHED' })).toBe(1);
    expect(promValue(samples, 'fluxo_job_state', { job_id: jobId, state: 'RUNNING' })).toBe(0);
    expect(promValue(samples, 'fluxo_taskmanagers', { state: 'ALIVE' })).toBe(2);
    expect(promValue(samples, 'fluxo_taskmanager_slots', { taskmanager_id: 'tm-a', kind: 'total' })).toBe(2);
    expect([...samples.keys()].some((k) => k.startsWith('fluxo_jobmanager_process_cpu'))).toBe(true);
    // V8 heap of each TaskManager (main thread + slot workers), from its heartbeats: above 0 and
    // below the same heartbeat's RSS (used heap pages are resident)
    for (const id of ['tm-a', 'tm-b']) {
      const [heap, rss] = await waitFor(
        async () => {
          const m = parseProm(await (await fetch(`${cluster.web}/metrics`)).text());
          const h = promValue(m, 'fluxo_taskmanager_heap_used_bytes', { taskmanager_id: id });
          return h === undefined ? undefined : [h, promValue(m, 'fluxo_taskmanager_rss_bytes', { taskmanager_id: id })];
        },
        { timeoutMs: 10_000, message: `no heap gauge for ${id}` },
      );
      expect(heap).toBeGreaterThan(0);
      expect(heap).toBeLessThan(rss as number);
    }
  });

  it('POST /jobs with a bad spec is 400 SPEC_INVALID listing every problem; unknown ids are 404; other methods 405', async () => {
    const bad = await call(
      'POST',
      `${cluster.web}/jobs`,
      JSON.stringify({ name: 'bad', parallelism: 0, source: { type: 'file' }, steps: 'x' }),
      { 'content-type': 'application/json' },
    );
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe('SPEC_INVALID');
    const problems = bad.json.problems as string[];
    expect(problems.length).toBeGreaterThanOrEqual(3);
    expect(problems.join('\n')).toMatch(/parallelism/);
    expect(problems.join('\n')).toMatch(/steps/);
    expect(problems.join('\n')).toMatch(/sink/);
    const yamlErr = await call('POST', `${cluster.web}/jobs`, 'name: [unclosed', { 'content-type': 'text/plain' });
    expect(yamlErr.status).toBe(400);
    expect(yamlErr.json.code).toBe('SPEC_INVALID');

    const missing = await get('/jobs/zzzzzz/checkpoints');
    expect(missing.status).toBe(404);
    expect(missing.json.code).toBe('JOB_NOT_FOUND');
    expect((await call('DELETE', `${cluster.web}/jobs/zzzzzz`)).status).toBe(405);
    // a known route with another method is 405 too, whatever the id
    for (const p of ['/jobs/zzzzzz/stop', '/jobs/zzzzzz/savepoints', '/taskmanagers/tm-a/kill']) {
      const r = await get(p);
      expect(r.status, p).toBe(405);
      expect(r.json.code).toBe('METHOD_NOT_ALLOWED');
    }
    // the UI routes by hash: unknown paths are a JSON 404, not its index.html
    for (const p of ['/jobz', '/api/jobs', '/jobs/']) {
      const r = await get(p);
      expect(r.status, p).toBe(404);
      expect(r.json.code, p).toBe('NOT_FOUND');
    }
    const kill = await call('POST', `${cluster.web}/taskmanagers/tm-a/kill`);
    expect(kill.status).toBe(403);
    expect(kill.json.code).toBe('CHAOS_DISABLED');
  });

  it('PATCH /jobs/:id cancels a running job', async () => {
    const sub = await call('POST', `${cluster.web}/jobs`, generatorSpec('rest-cancel', `${uniquePrefix('c')}r`), {
      'content-type': 'application/json',
    });
    expect(sub.status).toBe(201);
    const jobId = sub.json.jobId as string;
    await cluster.waitForState(jobId, 'RUNNING', 30_000);
    const r = await call('PATCH', `${cluster.web}/jobs/${jobId}?mode=cancel`);
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ jobId, state: 'CANCELED' });
    expect((await cluster.job(jobId)).job.state).toBe('CANCELED');
    // a savepoint, cancel or stop of an ended job is a state conflict
    for (const [method, p] of [
      ['POST', `/jobs/${jobId}/savepoints`],
      ['PATCH', `/jobs/${jobId}`],
      ['POST', `/jobs/${jobId}/stop`],
    ]) {
      const again = await call(method, `${cluster.web}${p}`);
      expect(again.status, `${method} ${p}`).toBe(409);
      expect(again.json.code).toBe('JOB_NOT_RUNNING');
      expect(again.json.message).toContain('CANCELED');
    }
    expect((await cluster.job(jobId)).job.state).toBe('CANCELED');
  });

  it('a running job: rates, checkpoints, dashboard, SSE; a killed TaskManager shows as an exception and a restore; savepoint and stop', async () => {
    const keyPrefix = `${uniquePrefix('g')}temps`;
    const sub = await call('POST', `${cluster.web}/jobs`, generatorSpec('rest-live', keyPrefix), {
      'content-type': 'application/json',
    });
    expect(sub.status).toBe(201);
    const jobId = sub.json.jobId as string;
    await cluster.waitForState(jobId, 'RUNNING', 30_000);

    // rates appear after two heartbeats
    const live = await waitFor(
      async () => {
        const j = (await get(`/jobs/${jobId}`)).json as { vertices: Vertex[]; edges: Record<string, unknown>[] };
        const src = j.vertices.find((v) => v.id === 'source');
        return src && (src.metrics.recordsOutPerSec as number) > 0 ? j : undefined;
      },
      { timeoutMs: 20_000, message: 'no records-out rate on the source' },
    );
    for (const v of live.vertices) {
      for (const k of ['busyRatio', 'backpressuredRatio'] as const) {
        expect(v.metrics[k]).toBeGreaterThanOrEqual(0);
        expect(v.metrics[k]).toBeLessThanOrEqual(1);
      }
    }
    const win = live.vertices.find((v) => v.id === 'window') as Vertex;
    expect(win.name).toBe('Window(tumbling) → Aggregate → Sink: redis');
    expect(win.metrics.watermarkMs).toEqual(expect.any(Number));
    expect(win.metrics.watermarkLagMs).toBeNull(); // a generator is bounded
    const srcEdge = live.edges.find((e) => e.source === 'source' && e.target === 'window');
    expect(srcEdge?.recordsPerSec as number).toBeGreaterThan(0);

    const cps = await waitFor(
      async () => {
        const c = (await get(`/jobs/${jobId}/checkpoints`)).json as {
          counts: Record<string, number>;
          history: { id: number; status: string; alignmentMs: number; durationMs: number | null }[];
          latest: { id: number; status: string } | null;
          summary: Record<string, { min: number; avg: number; max: number } | null> | null;
          latestRestore: unknown;
        };
        return c.counts.completed >= 2 ? c : undefined;
      },
      { timeoutMs: 30_000, message: 'no completed checkpoints' },
    );
    expect(cps.latest?.status).toBe('COMPLETED');
    const ids = cps.history.map((h) => h.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a)); // newest first
    for (const h of cps.history.filter((x) => x.status === 'COMPLETED')) {
      expect(h.durationMs).toBeGreaterThanOrEqual(0);
      expect(h.alignmentMs).toBeGreaterThanOrEqual(0);
    }
    const sum = cps.summary as Record<string, { min: number; avg: number; max: number }>;
    expect(sum.durationMs.min).toBeLessThanOrEqual(sum.durationMs.max);
    expect(sum.stateBytes.max).toBeGreaterThan(0);
    expect(sum.alignmentMs.min).toBeGreaterThanOrEqual(0);
    expect(cps.latestRestore).toBeNull();

    const sensors = await waitFor(
      async () => {
        const s = (await get(`/jobs/${jobId}/dashboard/sensors?limit=5&sort=avg&order=desc`)).json as {
          total: number;
          sensors: { key: string; avg: number; count: number; fields: Record<string, string> }[];
        };
        return s.total === 50 ? s : undefined;
      },
      { timeoutMs: 20_000, message: 'dashboard sensors missing' },
    );
    expect(sensors.sensors).toHaveLength(5);
    expect(sensors.sensors[0].avg).toBeGreaterThanOrEqual(sensors.sensors[4].avg);
    expect(sensors.sensors[0].fields).toEqual({ sensorId: sensors.sensors[0].key });
    // the chained redis sink's rows count on the window vertex (which emits nothing downstream)
    const withRows = (await get(`/jobs/${jobId}`)).json as { vertices: Vertex[] };
    const winRows = withRows.vertices.find((v) => v.id === 'window') as Vertex;
    expect(winRows.metrics.rowsWritten).toBeGreaterThan(0);
    const winSubs = (await get(`/jobs/${jobId}/vertices/window`)).json.subtasks as { rowsWritten: number }[];
    expect(winSubs).toHaveLength(2);
    for (const sub of winSubs) expect(sub.rowsWritten).toEqual(expect.any(Number));
    const series = (await get(`/jobs/${jobId}/dashboard/series?key=${sensors.sensors[0].key}`)).json as {
      points: { windowStart: number }[];
    };
    expect(series.points.length).toBeGreaterThan(0);
    expect((await get(`/jobs/${jobId}/dashboard/alerts`)).status).toBe(404); // no bullmq sink

    const events = await readEvents(`${cluster.web}/jobs/${jobId}/events`, 2);
    expect(events.map((e) => e.event)).toEqual(['job', 'checkpoints']);
    expect((events[0].data as { job: { jobId: string } }).job.jobId).toBe(jobId);
    expect((events[1].data as { counts: { completed: number } }).counts.completed).toBeGreaterThanOrEqual(2);
    const global = await readEvents(`${cluster.web}/events`, 2);
    expect(global.map((e) => e.event)).toEqual(['overview', 'jobs']);

    // SIGKILL a TaskManager: the job fails over, the exception is listed and the restore recorded
    const victim = cluster.tms.get('tm-b') as ManagedProcess;
    victim.signal('SIGKILL');
    const restored = await waitFor(
      async () => {
        const j = (await get(`/jobs/${jobId}`)).json as { job: { state: string; attempt: number } };
        return j.job.attempt >= 2 && j.job.state === 'RUNNING' ? j : undefined;
      },
      { timeoutMs: 40_000, message: 'the job did not fail over' },
    );
    expect(restored.job.attempt).toBeGreaterThanOrEqual(2);
    // back to RUNNING: the lost TaskManager is history (the exceptions), not the job's failure
    expect(restored.job).not.toHaveProperty('failure');
    const listed = ((await get('/jobs')).json.jobs as { jobId: string }[]).find((j) => j.jobId === jobId);
    expect(listed).not.toHaveProperty('failure');
    const ex = (await get(`/jobs/${jobId}/exceptions`)).json.exceptions as {
      timeMs: number;
      attempt: number;
      reason: string;
      restartDelayMs?: number;
    }[];
    expect(ex.length).toBeGreaterThanOrEqual(1);
    expect(ex[0].attempt).toBe(1);
    expect(ex[0].reason).toMatch(/tm-b/);
    expect(ex[0].restartDelayMs).toBe(200);
    const after = (await get(`/jobs/${jobId}/checkpoints`)).json as {
      latestRestore: { checkpointId: number; attempt: number; fromSavepoint: boolean } | null;
    };
    expect(after.latestRestore).toMatchObject({ attempt: restored.job.attempt, fromSavepoint: false });
    const tms = (await get('/taskmanagers')).json.taskmanagers as { taskmanagerId: string; state: string }[];
    expect(tms.find((t) => t.taskmanagerId === 'tm-b')?.state).toBe('LOST');

    const sp = await call('POST', `${cluster.web}/jobs/${jobId}/savepoints`);
    expect(sp.status, JSON.stringify(sp.json)).toBe(200);
    expect(sp.json.savepointId).toMatch(new RegExp(`^${jobId}-\\d+$`));

    const stop = await call('POST', `${cluster.web}/jobs/${jobId}/stop`, JSON.stringify({ savepoint: true }), {
      'content-type': 'application/json',
    });
    expect(stop.status, JSON.stringify(stop.json)).toBe(200);
    expect(stop.json).toMatchObject({ jobId, state: 'FINISHED' });
    expect(stop.json.savepointId).toMatch(new RegExp(`^${jobId}-\\d+$`));
    expect((await get(`/jobs/${jobId}`)).json.stoppedWithSavepoint).toBe(stop.json.savepointId);
  });
});

describe('REST API security', () => {
  const procs: ManagedProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
  });

  async function startJm(args: string[], env: Record<string, string>): Promise<{ web: string; rpc: number }> {
    const rpc = await freePort();
    const web = await freePort();
    const jm = startProcess(
      'jm-sec',
      ['jobmanager', '--rpc-port', String(rpc), '--web-port', String(web), '--redis', redis.url, ...args],
      { REDIS_URL: redis.url, FLUXO_CLUSTER_ID: `sec-${rpc}`, ...env },
    );
    procs.push(jm);
    await jm.waitForOutput(/fluxo jobmanager: rpc/, 20_000);
    expect(jm.describe()).not.toContain('s3cr3t-token');
    return { web: `http://127.0.0.1:${web}`, rpc };
  }

  it('with a token and --web-auth reads: 401 without or with a wrong token, the UI stays public, SSE takes ?token=; --chaos kills a TaskManager', async () => {
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, 's3cr3t-token\n');
    const { web, rpc } = await startJm(['--web-token-file', tokenFile, '--web-auth', 'reads', '--chaos'], {
      FLUXO_WEB_TOKEN: '',
    });
    const auth = { authorization: 'Bearer s3cr3t-token' };
    const anon = await call('GET', `${web}/overview`);
    expect(anon.status).toBe(401);
    expect(anon.json.code).toBe('UNAUTHORIZED');
    expect((await call('GET', `${web}/overview`, undefined, { authorization: 'Bearer nope' })).status).toBe(401);
    const ok = await call('GET', `${web}/overview`, undefined, auth);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ chaos: true, auth: { token: true, reads: true } });
    expect((await fetch(`${web}/`)).status).toBe(200);
    expect((await call('GET', `${web}/metrics`)).status).toBe(401);
    const ev = await readEvents(`${web}/events?token=s3cr3t-token`, 1);
    expect(ev[0].event).toBe('overview');
    // a mutation never takes the query token
    const qTok = await call('POST', `${web}/jobs?token=s3cr3t-token`, 'name: x', { 'content-type': 'text/plain' });
    expect(qTok.status).toBe(401);
    expect((await call('POST', `${web}/jobs`, 'name: x', { 'content-type': 'text/plain', ...auth })).status).toBe(400);

    const tm = startProcess(
      'tm-sec',
      ['taskmanager', '--jobmanager', `127.0.0.1:${rpc}`, '--slots', '1', '--id', 'tm-s'],
      {
        REDIS_URL: redis.url,
      },
    );
    procs.push(tm);
    await waitFor(
      async () => {
        const r = await call('GET', `${web}/taskmanagers`, undefined, auth);
        return (r.json.taskmanagers as { state: string }[] | undefined)?.some((t) => t.state === 'ALIVE');
      },
      { timeoutMs: 20_000, message: 'tm-s did not register' },
    );
    expect((await call('POST', `${web}/taskmanagers/tm-s/kill`)).status).toBe(401);
    const kill = await call('POST', `${web}/taskmanagers/tm-s/kill`, undefined, auth);
    expect(kill.status).toBe(202);
    expect(kill.json).toEqual({ taskmanagerId: 'tm-s', pid: tm.pid });
    await tm.waitForExit();
    expect(tm.exited?.signal).toBe('SIGKILL');
  });

  it('--web-auth reads without a token refuses to start', async () => {
    const rpc = await freePort();
    const jm = startProcess(
      'jm-noauth',
      ['jobmanager', '--rpc-port', String(rpc), '--web-port', String(await freePort()), '--web-auth', 'reads'],
      { REDIS_URL: redis.url, FLUXO_CLUSTER_ID: `noauth-${rpc}`, FLUXO_WEB_TOKEN: '' },
    );
    procs.push(jm);
    await jm.waitForExit();
    expect(jm.exited?.code).toBe(1);
    expect(jm.describe()).toContain('--web-auth reads needs a token: --web-token-file or FLUXO_WEB_TOKEN');
  });

  it('without a token on a non-loopback address, mutations are 403 TOKEN_REQUIRED (reads work), and a startup warning says so', async () => {
    const { web } = await startJm(['--web-host', '0.0.0.0'], { FLUXO_WEB_TOKEN: '' });
    const jm = procs.at(-1) as ManagedProcess;
    await jm.waitForOutput(/mutations are refused \(403 TOKEN_REQUIRED\)/, 5000);
    const r = await call('POST', `${web}/jobs`, 'name: x', { 'content-type': 'text/plain' });
    expect(r.status).toBe(403);
    expect(r.json.code).toBe('TOKEN_REQUIRED');
    const o = await call('GET', `${web}/overview`);
    expect(o.status).toBe(200);
    expect(o.json.auth).toEqual({ token: false, reads: false });
  });
});
