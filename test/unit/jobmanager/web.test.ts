/**
 * The JobManager's web server (jobmanager/web.ts) in-process on loopback against a stub
 * JobManager: routing (405 for a known path with another method, JSON 404 for unknown paths,
 * the UI only at / and its files), token rules (case-insensitive Bearer, WWW-Authenticate,
 * --web-auth reads without a token, the non-loopback warning), 409 JOB_NOT_RUNNING for ended
 * jobs, and rowsWritten of a vertex with a chained sink in REST and /metrics.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildJobGraph } from '../../../core/graph/build.js';
import type { Logger } from '../../../core/log/index.js';
import { newCounters } from '../../../core/runtime/transport.js';
import { parseJobSpec } from '../../../core/spec/schema.js';
import type { JobManager, JobView } from '../../../jobmanager/jobmanager.js';
import { bearerToken, startWebServer, type WebServer } from '../../../jobmanager/web.js';

const spec = parseJobSpec(
  {
    name: 'web-unit',
    parallelism: 2,
    source: { type: 'generator', sensors: 5, count: 100, ratePerSec: 100, seed: 1 },
    steps: [{ keyBy: 'sensorId' }, { window: { type: 'tumbling', sizeMs: 1000 } }, { aggregate: { n: 'count()' } }],
    sink: { type: 'redis', keyPrefix: 'temps' },
  },
  { baseDir: '/tmp' },
);
const graph = buildJobGraph(spec);

type State = JobView['summary']['state'];
const jobs = new Map<string, State>([
  ['aaaa000000000001', 'RUNNING'],
  ['bbbb000000000002', 'FINISHED'],
  ['cccc000000000003', 'FAILED'],
  ['dddd000000000004', 'CANCELED'],
]);
const calls: string[] = [];

function view(jobId: string): JobView {
  const state = jobs.get(jobId);
  if (!state) throw Object.assign(new Error(`no job ${jobId}`), { code: 'JOB_NOT_FOUND' });
  const counters = (rows: number) => ({ ...newCounters(), recordsIn: 10, recordsOut: 0, rowsWritten: rows });
  return {
    summary: {
      jobId,
      name: 'web-unit',
      state,
      attempt: 1,
      createdAtMs: 1000,
      endedAtMs: 0,
      failure: '',
      parallelism: 2,
    },
    startedAtMs: 1000,
    spec,
    graph,
    details: {
      vertices: [],
      tasks: [
        {
          taskId: 'window-0',
          vertex: 'window',
          subtask: 0,
          taskmanagerId: 'tm-1',
          state: 'RUNNING',
          counters: counters(7),
        },
        {
          taskId: 'window-1',
          vertex: 'window',
          subtask: 1,
          taskmanagerId: 'tm-1',
          state: 'RUNNING',
          counters: counters(5),
        },
      ],
      totals: {},
      outputs: { results: 'redis', deadLetters: 'x', late: 'y' },
      checkpoints: null,
      exceptions: [],
      fromSavepoint: null,
      stoppedWithSavepoint: null,
    } as unknown as JobView['details'],
    latestRestore: null,
    rates: () => ({
      recordsInPerSec: 0,
      recordsOutPerSec: 0,
      busyRatio: 0,
      backpressuredRatio: 0,
      recordsOutPerSecByEdge: {},
    }),
  } as JobView;
}

const stubJm = {
  status: {
    overview: () => ({ taskmanagers: 0, slotsTotal: 0, slotsFree: 0, jobsRunning: 1 }),
    jobViews: () => [...jobs.keys()].map(view),
    jobView: (id: string) => view(id),
    taskmanagerList: () => [
      {
        taskmanagerId: 'tm-1',
        controlAddress: '127.0.0.1:1',
        state: 'ALIVE',
        hostname: 'elsewhere',
        pid: 1,
        slotsTotal: 1,
        slotsUsed: 0,
        lastHeartbeatMs: 0,
        rssBytes: 1,
        heapUsedBytes: 0,
      },
    ],
    taskmanagers: () => ({ taskmanagers: [] }),
  },
  cancelJob: async (id: string) => {
    calls.push(`cancel ${id}`);
  },
  stopJob: async (id: string) => {
    calls.push(`stop ${id}`);
    return 'RUNNING';
  },
  triggerSavepoint: async (id: string) => {
    calls.push(`savepoint ${id}`);
    return { savepoint: { savepointId: `${id}-1` }, state: 'RUNNING' };
  },
} as unknown as JobManager;

const warnings: string[] = [];
const log = {
  info() {},
  error() {},
  warn: (_o: unknown, msg: string) => warnings.push(msg),
} as unknown as Logger;

let uiDir: string;
const servers: WebServer[] = [];
beforeAll(() => {
  uiDir = mkdtempSync(path.join(tmpdir(), 'fluxo-web-ui-'));
  writeFileSync(path.join(uiDir, 'index.html'), '<!doctype html><title>fluxo ui</title>');
  mkdirSync(path.join(uiDir, 'assets'));
  writeFileSync(path.join(uiDir, 'assets', 'app.js'), 'console.log(1)');
});
afterAll(() => rmSync(uiDir, { recursive: true, force: true }));
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  warnings.length = 0;
  calls.length = 0;
});

async function start(o: { token?: string; authReads?: boolean; host?: string } = {}): Promise<string> {
  const s = await startWebServer({
    host: o.host ?? '127.0.0.1',
    port: 0,
    jm: stubJm,
    log,
    redisUrl: 'redis://127.0.0.1:1',
    token: o.token,
    authReads: o.authReads,
    uiDir,
  });
  servers.push(s);
  return `http://127.0.0.1:${s.port}`;
}

async function call(method: string, url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method, headers });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // html
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** A GET with the path sent as written (fetch would normalise `..`). */
function rawGet(base: string, p: string): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: p, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('web server routing', () => {
  it('a known path with the wrong method is 405 METHOD_NOT_ALLOWED with Allow', async () => {
    const web = await start();
    for (const [method, p, allow] of [
      ['GET', '/jobs/aaaa000000000001/stop', 'POST'],
      ['GET', '/jobs/aaaa000000000001/savepoints', 'POST'],
      ['GET', '/taskmanagers/tm-1/kill', 'POST'],
      ['POST', '/overview', 'GET'],
      ['DELETE', '/jobs/aaaa000000000001', 'PATCH'],
    ]) {
      const r = await call(method, `${web}${p}`);
      expect(r.status, `${method} ${p}`).toBe(405);
      expect(r.json.code).toBe('METHOD_NOT_ALLOWED');
      expect(r.headers.get('allow')).toContain(allow);
    }
  });

  it('serves the UI only at / and /index.html and its files; other unknown paths are a JSON 404', async () => {
    const web = await start();
    for (const p of ['/', '/index.html']) {
      const r = await call('GET', `${web}${p}`);
      expect(r.status).toBe(200);
      expect(r.text).toContain('fluxo ui');
    }
    expect((await call('GET', `${web}/assets/app.js`)).status).toBe(200);
    for (const p of ['/jobz', '/api/jobs', '/assets/nope.js', '/jobs/aaaa000000000001/nope']) {
      const r = await call('GET', `${web}${p}`);
      expect(r.status, p).toBe(404);
      expect(r.json.code, p).toBe('NOT_FOUND');
    }
    for (const p of ['/jobs/', '/jobs//checkpoints']) {
      const empty = await call('GET', `${web}${p}`);
      expect(empty.status, p).toBe(404);
      expect(empty.json).toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/no job id/) });
    }
  });

  it('a path traversal is refused with a 4xx that is not BAD_REQUEST "Forbidden"', async () => {
    const web = await start();
    for (const p of [
      '/../package.json',
      '/assets/../../package.json',
      '/%2e%2e/package.json',
      '/..%2f..%2fetc/passwd',
    ]) {
      const r = await rawGet(web, p);
      expect([403, 404], `${p}: ${r.status} ${r.body}`).toContain(r.status);
      const j = JSON.parse(r.body) as { code: string; message: string };
      expect(['FORBIDDEN', 'NOT_FOUND']).toContain(j.code);
      expect(j.message).not.toBe('Forbidden');
    }
  });
});

describe('web server tokens', () => {
  it('accepts the Bearer scheme in any case; 401 carries WWW-Authenticate', async () => {
    const web = await start({ token: 's3cr3t', authReads: true });
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const r = await call('GET', `${web}/overview`, { authorization: `${scheme} s3cr3t` });
      expect(r.status, scheme).toBe(200);
    }
    const tries: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic s3cr3t' }];
    for (const headers of tries) {
      const r = await call('GET', `${web}/overview`, headers);
      expect(r.status).toBe(401);
      expect(r.json.code).toBe('UNAUTHORIZED');
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="fluxo"');
    }
    const m = await call('PATCH', `${web}/jobs/aaaa000000000001`);
    expect(m.status).toBe(401);
    expect(m.headers.get('www-authenticate')).toBe('Bearer realm="fluxo"');
    expect(bearerToken('  bEaReR   tok ')).toBe('tok');
    expect(bearerToken('Bearer')).toBeUndefined();
  });

  it('--web-auth reads without a token refuses to start', async () => {
    await expect(start({ authReads: true })).rejects.toThrow(
      '--web-auth reads needs a token: --web-token-file or FLUXO_WEB_TOKEN',
    );
  });

  it('warns at startup on a non-loopback address without a token, not with one or on loopback', async () => {
    await start({ host: '0.0.0.0' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/0\.0\.0\.0.*403 TOKEN_REQUIRED/);
    warnings.length = 0;
    await start({ host: '0.0.0.0', token: 't' });
    await start();
    expect(warnings).toEqual([]);
  });
});

describe('web server mutations of ended jobs', () => {
  it('cancel, stop and savepoint of a FINISHED/FAILED/CANCELED job are 409 JOB_NOT_RUNNING naming the state', async () => {
    const web = await start();
    for (const [id, state] of [
      ['bbbb000000000002', 'FINISHED'],
      ['cccc000000000003', 'FAILED'],
      ['dddd000000000004', 'CANCELED'],
    ]) {
      for (const [method, p] of [
        ['PATCH', `/jobs/${id}`],
        ['POST', `/jobs/${id}/stop`],
        ['POST', `/jobs/${id}/savepoints`],
      ]) {
        const r = await call(method, `${web}${p}`);
        expect(r.status, `${method} ${p}`).toBe(409);
        expect(r.json.code).toBe('JOB_NOT_RUNNING');
        expect(r.json.message).toContain(state);
      }
    }
    expect(calls).toEqual([]);
    // a running job is still canceled and stopped
    expect((await call('POST', `${web}/jobs/aaaa000000000001/stop`)).status).toBe(200);
    expect((await call('PATCH', `${web}/jobs/aaaa000000000001`)).status).toBe(202);
    expect(calls).toEqual(['stop aaaa000000000001', 'cancel aaaa000000000001']);
  });
});

describe('rowsWritten of a vertex with a chained sink', () => {
  it('is in GET /jobs/:id, the vertex detail and /metrics; the vertex name says its sink', async () => {
    const web = await start();
    const job = (await call('GET', `${web}/jobs/aaaa000000000001`)).json as {
      vertices: { id: string; name: string; metrics: { rowsWritten: number; recordsOut: number } }[];
    };
    const win = job.vertices.find((v) => v.id === 'window');
    expect(win?.name).toBe('Window(tumbling) → Aggregate → Sink: redis');
    expect(win?.metrics.recordsOut).toBe(0);
    expect(win?.metrics.rowsWritten).toBe(12);
    expect(job.vertices.find((v) => v.id === 'source')?.metrics.rowsWritten).toBe(0);
    const vtx = (await call('GET', `${web}/jobs/aaaa000000000001/vertices/window`)).json as {
      subtasks: { subtask: number; rowsWritten: number }[];
    };
    expect(vtx.subtasks.map((s) => s.rowsWritten)).toEqual([7, 5]);
    const prom = await (await fetch(`${web}/metrics`)).text();
    expect(prom).toMatch(/^# TYPE fluxo_vertex_rows_written_total counter$/m);
    expect(prom).toMatch(
      /^fluxo_vertex_rows_written_total\{job_id="aaaa000000000001",job_name="web-unit",vertex="window"\} 12$/m,
    );
  });
});
