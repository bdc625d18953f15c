// Development only (not shipped): a fake JobManager web API following docs/rest-api.md, serving the
// built UI from dist/web, so the UI can be developed and looked at without a cluster.
//   npm run build:web && node web/dev/mock-server.mjs [--port 8090] [--sensors 10000] [--token secret] [--reads]
// Data: one running job "mock-iot" (source → window → sink) with a redis-sink dashboard over
// `--sensors` keys (house-<n>|room-<m>), one finished job, two TaskManagers; numbers move every second.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const PORT = Number(opt('port', 8090));
const SENSORS = Number(opt('sensors', 10_000));
const TOKEN = opt('token', undefined);
const READS = args.includes('--reads');
const ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));
const ROOMS = ['kitchen', 'living', 'bath', 'bed-1', 'bed-2'];
const WINDOW = 60_000;
const started = Date.now();
let checkpoints = [];
let attempt = 1;
const exceptions = [];

const sensors = Array.from({ length: SENSORS }, (_, i) => {
  const house = `house-${Math.floor(i / ROOMS.length)}`;
  const room = ROOMS[i % ROOMS.length];
  return { key: `${house}|${room}`, fields: { house, room }, base: 19 + ((i * 7919) % 400) / 100 };
});
const value = (s, t) => s.base + Math.sin(t / 600_000 + s.base) * 1.5;
const latestEnd = () => Math.floor(Date.now() / WINDOW) * WINDOW;
function point(s, ws) {
  const avg = value(s, ws);
  return { windowStart: ws, windowEnd: ws + WINDOW, avg, min: avg - 0.6, max: avg + 0.7, count: 6 };
}
function sensorRow(s) {
  const we = latestEnd();
  return { key: s.key, fields: s.fields, ...point(s, we - WINDOW), freshnessMs: Date.now() - we };
}

function job() {
  const now = Date.now();
  const r = 900 + Math.random() * 200;
  const running = {
    jobId: 'a1b2c3d4e5f6',
    name: 'mock-iot',
    state: 'RUNNING',
    attempt,
    createdAtMs: started,
    startedAtMs: started,
    durationMs: now - started,
    parallelism: 2,
  };
  const m = (busy, bp, wm) => ({
    recordsIn: Math.round(((now - started) * r) / 1000),
    recordsOut: Math.round(((now - started) * r) / 1000),
    recordsInPerSec: r,
    recordsOutPerSec: r,
    busyRatio: busy,
    backpressuredRatio: bp,
    watermarkMs: wm,
    watermarkLagMs: wm ? now - wm : null,
  });
  return {
    job: running,
    vertices: [
      { id: 'source', name: 'Source: generator', parallelism: 2, metrics: m(0.2, 0.5, now - 2000) },
      { id: 'window', name: 'Window(tumbling) → Aggregate', parallelism: 2, metrics: m(0.8, 0.1, now - 2500) },
      { id: 'sink', name: 'Sink: redis temps', parallelism: 2, metrics: m(0.4, 0, now - 2500) },
    ],
    edges: [
      { source: 'source', target: 'window', partitioner: 'hash', recordsPerSec: r },
      { source: 'window', target: 'sink', partitioner: 'forward', recordsPerSec: r / 60 },
    ],
    tasks: ['source', 'window', 'sink'].flatMap((v) =>
      [0, 1].map((i) => ({
        taskId: `${v}-${i}`,
        vertex: v,
        subtask: i,
        taskmanagerId: `tm-${i + 1}`,
        state: 'RUNNING',
      })),
    ),
    totals: {},
    outputs: { results: 'redis temps', deadLetters: '', late: '' },
    checkpoints: null,
    exceptions,
    fromSavepoint: null,
    stoppedWithSavepoint: null,
    dashboard: { redisKeyPrefix: 'temps', alertsQueue: 'alerts', keyFields: ['house', 'room'] },
  };
}
const finishedJob = {
  jobId: 'ffee00112233',
  name: 'old-batch',
  state: 'FINISHED',
  attempt: 1,
  createdAtMs: started - 600_000,
  startedAtMs: started - 600_000,
  endedAtMs: started - 500_000,
  durationMs: 100_000,
  parallelism: 1,
};

setInterval(() => {
  const id = checkpoints.length + 1;
  const dur = 40 + Math.random() * 80;
  checkpoints.push({
    id,
    status: 'COMPLETED',
    savepoint: false,
    triggeredAtMs: Date.now() - dur,
    durationMs: dur,
    stateBytes: 20_000 + Math.random() * 5000,
    alignmentMs: Math.random() * 10,
  });
  checkpoints = checkpoints.slice(-20);
}, 2000);

const stat = (xs) =>
  xs.length
    ? { min: Math.min(...xs), avg: xs.reduce((a, b) => a + b, 0) / xs.length, max: Math.max(...xs) }
    : { min: 0, avg: 0, max: 0 };
function ckpts() {
  const done = checkpoints.filter((c) => c.status === 'COMPLETED');
  return {
    counts: { completed: checkpoints.at(-1)?.id ?? 0, failed: 0, aborted: 0, inProgress: 0 },
    latest: checkpoints.at(-1) ?? null,
    history: checkpoints,
    summary: done.length
      ? {
          durationMs: stat(done.map((c) => c.durationMs)),
          stateBytes: stat(done.map((c) => c.stateBytes)),
          alignmentMs: stat(done.map((c) => c.alignmentMs)),
        }
      : null,
    latestRestore:
      attempt > 1
        ? {
            checkpointId: Math.max(1, checkpoints.length - 1),
            attempt,
            restoredAtMs: exceptions.at(-1).timeMs + 100,
            fromSavepoint: false,
          }
        : null,
  };
}
const overview = () => ({
  taskmanagers: 2,
  slotsTotal: 4,
  slotsFree: 2,
  jobsRunning: 1,
  jobsFinished: 1,
  jobsFailed: 0,
  jobsCanceled: 0,
  version: '0.1.0-mock',
  chaos: true,
  auth: { token: !!TOKEN, reads: READS },
});
const tms = () => ({
  taskmanagers: [1, 2].map((i) => ({
    taskmanagerId: `tm-${i}`,
    controlAddress: `127.0.0.1:${40000 + i}`,
    slotsTotal: 2,
    slotsUsed: 1,
    lastHeartbeatMs: Date.now() - Math.random() * 2000,
    state: 'ALIVE',
    rssBytes: 120e6 + i * 1e6,
    heapUsedBytes: 60e6,
    pid: 1000 + i,
    hostname: 'localhost',
  })),
});

function sortRows(rows, sort, order) {
  const k = sort === 'freshness' ? 'freshnessMs' : sort;
  const dir = order === 'desc' ? -1 : 1;
  return rows.sort((a, b) => (k === 'key' ? a.key.localeCompare(b.key, 'en', { numeric: true }) : a[k] - b[k]) * dir);
}

const MIME = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.map': 'application/json',
  '.png': 'image/png',
};

createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const p = url.pathname;
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const authed = () =>
    !TOKEN || req.headers.authorization === `Bearer ${TOKEN}` || url.searchParams.get('token') === TOKEN;
  const isApi = /^\/(overview|jobs|taskmanagers|events)/.test(p);
  if (isApi && (req.method !== 'GET' || READS) && !authed())
    return send(401, { code: 'UNAUTHORIZED', message: 'missing or wrong token' });
  if (p === '/events' || /^\/jobs\/[^/]+\/events$/.test(p)) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const tick = () => {
      if (p === '/events') {
        res.write(`event: overview\ndata: ${JSON.stringify(overview())}\n\n`);
        res.write(`event: jobs\ndata: ${JSON.stringify({ jobs: [job().job, finishedJob] })}\n\n`);
      } else {
        res.write(`event: job\ndata: ${JSON.stringify(job())}\n\n`);
        res.write(`event: checkpoints\ndata: ${JSON.stringify(ckpts())}\n\n`);
      }
    };
    tick();
    const t = setInterval(tick, 1000);
    req.on('close', () => clearInterval(t));
    return;
  }
  if (p === '/overview') return send(200, overview());
  if (p === '/jobs') return send(200, { jobs: [job().job, finishedJob] });
  if (p === '/taskmanagers') return send(200, tms());
  const kill = /^\/taskmanagers\/([^/]+)\/kill$/.exec(p);
  if (kill && req.method === 'POST') {
    attempt++;
    exceptions.push({
      timeMs: Date.now(),
      attempt: attempt - 1,
      reason: `TaskManager ${kill[1]} lost (SIGKILL by chaos)`,
      restartDelayMs: 100,
    });
    return send(202, { taskmanagerId: kill[1], pid: 1001 });
  }
  const m = /^\/jobs\/([^/]+)(\/.*)?$/.exec(p);
  if (m) {
    const sub = m[2] ?? '';
    if (!'a1b2c3d4e5f6'.startsWith(m[1])) return send(404, { code: 'JOB_NOT_FOUND', message: `no job ${m[1]}` });
    if (req.method === 'PATCH' && sub === '') return send(202, { jobId: 'a1b2c3d4e5f6', state: 'CANCELED' });
    if (req.method === 'POST' && sub === '/savepoints') return send(200, { savepointId: `sp-${Date.now()}` });
    if (sub === '') return send(200, job());
    if (sub === '/checkpoints') return send(200, ckpts());
    if (sub === '/exceptions') return send(200, { exceptions });
    if (sub === '/dashboard/sensors') {
      const q = url.searchParams;
      const term = (q.get('search') ?? '').toLowerCase();
      let rows = sensors.filter((s) => !term || s.key.toLowerCase().includes(term)).map(sensorRow);
      rows = sortRows(rows, q.get('sort') ?? 'key', q.get('order') ?? 'asc');
      const offset = Number(q.get('offset') ?? 0);
      const limit = Number(q.get('limit') ?? 50);
      return send(200, { total: rows.length, sensors: rows.slice(offset, offset + limit) });
    }
    if (sub === '/dashboard/series') {
      const s = sensors.find((x) => x.key === url.searchParams.get('key'));
      if (!s) return send(404, { code: 'NOT_FOUND', message: 'no such key' });
      const to = Number(url.searchParams.get('toMs') ?? latestEnd());
      const from = Number(url.searchParams.get('fromMs') ?? to - 24 * 3_600_000);
      const points = [];
      for (let ws = Math.ceil(from / WINDOW) * WINDOW; ws + WINDOW <= Math.min(to, latestEnd()); ws += WINDOW)
        points.push(point(s, ws));
      return send(200, { key: s.key, points });
    }
    if (sub === '/dashboard/alerts') {
      const alerts = Array.from({ length: 12 }, (_, i) => ({
        sensor: sensors[(i * 37) % SENSORS].key,
        ts: Date.now() - i * 45_000,
        value: 30 + i / 3,
        rule: 'spike',
        detail: 'jump above 5 °C within 1 min',
      }));
      return send(200, { alerts });
    }
    if (sub === '/dashboard/heatmap') {
      const we = latestEnd();
      return send(200, {
        levels: ['house', 'room'],
        cells: sensors.map((s) => ({ ...s.fields, avg: value(s, we - WINDOW), windowStart: we - WINDOW })),
      });
    }
    return send(404, { code: 'NOT_FOUND', message: `no route ${p}` });
  }
  const file = normalize(join(ROOT, p === '/' ? 'index.html' : p));
  if (!file.startsWith(ROOT) || !existsSync(file) || !statSync(file).isFile())
    return send(404, { code: 'NOT_FOUND', message: p });
  res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
  createReadStream(file).pipe(res);
}).listen(PORT, '127.0.0.1', () => {
  process.stdout.write(
    `mock JobManager web on http://127.0.0.1:${PORT}/ (${SENSORS} sensors${TOKEN ? ', token set' : ''})\n`,
  );
});
