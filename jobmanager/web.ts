/**
 * The JobManager's HTTP server (fastify): the REST API of docs/rest-api.md, Server-Sent Events,
 * Prometheus /metrics, and the web UI's static files from `dist/web`.
 *
 * Security: with an access token, every mutation (POST, PATCH) needs `Authorization: Bearer
 * <token>` (401 UNAUTHORIZED otherwise, with `WWW-Authenticate: Bearer realm="fluxo"`; the
 * scheme is case-insensitive), and with `authReads` every API GET too (the bearer header, or
 * `?token=` for EventSource). The token is compared in constant time and never logged. Without
 * a token, mutations are refused (403 TOKEN_REQUIRED) unless the server binds a loopback address
 * (a warning says so at startup); `authReads` without a token is refused at startup. The UI's
 * static files are always public (the UI asks for the token).
 *
 * The cluster token (`--cluster-token-file` / FLUXO_CLUSTER_TOKEN, docs/security.md) is accepted
 * wherever the web token is: with either configured, a request presenting either one passes.
 * So with only a cluster token, REST mutations need the cluster token, on loopback too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { EngineError } from '../core/errors/index.js';
import type { Logger } from '../core/log/index.js';
import { tokenMatches } from '../core/rpc/auth.js';
import { applySets, parseSpecText } from '../core/spec/load.js';
import { parseJobSpec } from '../core/spec/schema.js';
import { Dashboard, type SensorSort } from './dashboard.js';
import { HttpError } from './http-error.js';
import type { JobManager } from './jobmanager.js';
import { createMetricsRegistry } from './metrics.js';
import { checkpointsJson, jobDetailJson, jobSummaryJson, vertexDetailJson } from './rest.js';

/** Options of the JobManager's web server. */
export interface WebServerOptions {
  /** address to bind. Default (CLI) 127.0.0.1; a non-loopback address needs a token for mutations */
  host: string;
  /** port; 0 = any free port (see `WebServer.port`) */
  port: number;
  jm: JobManager;
  log: Logger;
  /** the cluster's Redis URL: dashboard reads of sinks without their own url */
  redisUrl: string;
  /** access token (`--web-token-file` / FLUXO_WEB_TOKEN); undefined or '' = none */
  token?: string;
  /** the cluster token, accepted like `token` (and required like it when `token` is unset); undefined or '' = none */
  clusterToken?: string;
  /** `--web-auth reads`: GETs of the API need the token too. Default false (only mutations) */
  authReads?: boolean;
  /** `--chaos`: POST /taskmanagers/:id/kill is allowed. Default false */
  chaos?: boolean;
  /** folder of the built UI. Default `dist/web` (../web from the compiled module) */
  uiDir?: string;
  /** SSE push interval, ms. Default 1000 */
  eventIntervalMs?: number;
}

export interface WebServer {
  /** the bound port */
  readonly port: number;
  close(): Promise<void>;
}

/** HTTP status of an EngineError code (docs/rest-api.md): 400 bad input, 401 no or wrong token, 404 unknown, 409 wrong state, 503 Redis down, 500 else. */
export function httpStatusOf(code: string): number {
  switch (code) {
    case 'SPEC_INVALID':
    case 'SPEC_NOT_FOUND':
    case 'SAVEPOINT_INCOMPATIBLE':
    case 'EXPR_INVALID':
    case 'CONFIG_INVALID':
      return 400;
    case 'UNAUTHENTICATED':
      return 401;
    case 'JOB_NOT_FOUND':
    case 'CHECKPOINT_NOT_FOUND':
      return 404;
    case 'JOB_STATE':
    case 'TASKMANAGER_LOST':
    case 'NO_RESOURCES':
      return 409;
    case 'REDIS_UNAVAILABLE':
      return 503;
    default:
      return 500;
  }
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Constant-time comparison of a presented token with the configured one (SHA-256 hashes; the cluster token uses the same). */
export { tokenMatches };

const API = /^\/(overview|jobs|taskmanagers|events|metrics)(\/|$|\?)/;

/** Job states in which a job has ended: cancel, stop and savepoints answer 409 JOB_NOT_RUNNING. */
const ENDED: ReadonlySet<string> = new Set(['FINISHED', 'FAILED', 'CANCELED']);

/** The header of every 401 answer (RFC 6750). */
export const WWW_AUTHENTICATE = 'Bearer realm="fluxo"';

/** The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive (RFC 7235). */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^bearer[ \t]+(\S.*)$/i.exec(header?.trim() ?? '');
  return m ? m[1].trim() : undefined;
}

/**
 * Checks the web options before anything starts: `--web-auth reads` needs a token (the web
 * token or the cluster token).
 * @throws Error naming the missing option
 */
export function checkWebAuth(o: { token?: string; clusterToken?: string; authReads?: boolean }): void {
  if (o.authReads === true && !o.token && !o.clusterToken)
    throw new Error('--web-auth reads needs a token: --web-token-file or FLUXO_WEB_TOKEN (or a cluster token)');
}

/** The error code of a framework/plugin error with HTTP status `status` (e.g. @fastify/static's 403 on a path traversal). */
export function codeOfStatus(status: number): string {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    default:
      return status < 500 ? 'BAD_REQUEST' : 'INTERNAL';
  }
}

/** A route pattern (`/jobs/:id/stop`) as a regular expression over request paths. */
function routeRegExp(url: string): RegExp {
  const parts = url
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('/')}$`);
}

function bad(message: string): HttpError {
  return new HttpError('BAD_REQUEST', 400, message);
}

function intParam(v: unknown, name: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw bad(`${name} must be an integer from ${min} to ${max}`);
  return n;
}

function version(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'fluxo' && p.version) return p.version;
    } catch {
      // try the next
    }
  }
  return '0.0.0';
}

const NOT_BUILT = `<!doctype html><html><head><meta charset="utf-8"><title>Fluxo</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>Fluxo JobManager</h1>
<p>The web UI is not built (no <code>dist/web</code>). Build it with <code>npm run build</code>.</p>
<p>The JSON API works: <a href="/overview">/overview</a>, <a href="/jobs">/jobs</a>,
<a href="/taskmanagers">/taskmanagers</a>, <a href="/metrics">/metrics</a>.</p>
</body></html>`;

/**
 * Starts the web server on `host:port`.
 * @throws EngineError INTERNAL when it cannot listen; Error when `authReads` has no token
 */
export async function startWebServer(o: WebServerOptions): Promise<WebServer> {
  const { jm } = o;
  checkWebAuth(o);
  // the tokens a request may present: the web token and the cluster token (either one passes)
  const tokens = [o.token, o.clusterToken].filter((t): t is string => typeof t === 'string' && t !== '');
  const token = tokens.length > 0 ? tokens : undefined;
  const authReads = o.authReads === true && token !== undefined;
  const loopback = isLoopback(o.host);
  const uiDir = o.uiDir ?? fileURLToPath(new URL('../web', import.meta.url));
  const uiBuilt = existsSync(`${uiDir}/index.html`);
  const dashboard = new Dashboard({ redisUrl: o.redisUrl });
  const registry = createMetricsRegistry(jm.status);
  const ver = version();
  const intervalMs = o.eventIntervalMs ?? 1000;
  const streams = new Set<() => void>();

  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });

  // every route (not the static plugin's wildcard), for 405 on a known path with another method
  const routes: { method: string; re: RegExp }[] = [];
  app.addHook('onRoute', (r) => {
    if (r.url.includes('*')) return;
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ method: m, re: routeRegExp(r.url) });
  });
  const allowedMethods = (path: string): string[] => [
    ...new Set(routes.filter((r) => r.re.test(path)).map((r) => r.method)),
  ];

  // bodies arrive as text: POST /jobs parses YAML or JSON itself (with line numbers); others JSON
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  const overview = () => ({
    ...jm.status.overview(),
    version: ver,
    chaos: o.chaos === true,
    auth: { token: token !== undefined, reads: authReads },
  });
  const jobs = () => ({ jobs: jm.status.jobViews().map((v) => jobSummaryJson(v, Date.now())) });
  const job = (id: string) => jobDetailJson(jm.status.jobView(id), Date.now());
  const checkpoints = (id: string) => checkpointsJson(jm.status.jobView(id), Date.now());

  app.addHook('onRequest', async (req: FastifyRequest) => {
    const path = req.url.split('?')[0];
    const mutation = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS';
    if (!mutation && !(authReads && API.test(path))) return;
    const bearer = bearerToken(req.headers.authorization);
    if (token === undefined) {
      if (mutation && !loopback)
        throw new HttpError(
          'TOKEN_REQUIRED',
          403,
          `mutations need an access token when the JobManager listens on ${o.host} (not loopback): start it with --web-token-file or FLUXO_WEB_TOKEN`,
        );
      return;
    }
    const q = (req.query ?? {}) as Record<string, unknown>;
    const presented = bearer ?? (!mutation && typeof q.token === 'string' ? q.token : undefined);
    // every token is compared (constant time each), so timing does not tell which one matched
    if (!token.map((t) => tokenMatches(presented, t)).some(Boolean))
      throw new HttpError(
        'UNAUTHORIZED',
        401,
        presented === undefined ? 'this request needs Authorization: Bearer <token>' : 'wrong token',
      );
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    const engine = err instanceof EngineError;
    const http = err instanceof HttpError;
    const status = http ? err.status : engine ? httpStatusOf(err.code) : (err.statusCode ?? 500);
    const code = engine || http ? (err.code as string) : codeOfStatus(status);
    if (status >= 500) o.log.error({ err, code }, 'web request failed');
    let message = err.message;
    // @fastify/static refuses a path outside the UI folder with a bare "Forbidden"
    if (!engine && !http && status === 403) message = `${req.url.split('?')[0]} is outside the web UI's files`;
    const body: Record<string, unknown> = { code, message };
    if (engine && err.problems.length > 0) body.problems = err.problems;
    if (status === 401) void reply.header('www-authenticate', WWW_AUTHENTICATE);
    void reply.code(status).type('application/json').send(body);
  });

  // `/jobs/` and the like match `/jobs/:id` with an empty id: no such thing
  app.addHook('preHandler', async (req: FastifyRequest) => {
    const params = (req.params ?? {}) as Record<string, unknown>;
    if (!Object.entries(params).some(([k, v]) => k !== '*' && v === '')) return; // '*': the UI's files
    const path = req.url.split('?')[0];
    throw new HttpError('NOT_FOUND', 404, emptyIdMessage(path));
  });
  const emptyIdMessage = (path: string): string =>
    path.startsWith('/jobs/')
      ? `no job id in ${path}: GET /jobs lists the jobs, GET /jobs/<id> shows one`
      : path.startsWith('/taskmanagers/')
        ? `no TaskManager id in ${path}: GET /taskmanagers lists them`
        : `an id is missing in ${path}`;

  // The UI routes by hash (/#/jobs/…): only `/`, `/index.html` and its files are served; any
  // other unknown path is a JSON 404, a known path with another method a 405 (with Allow)
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0];
    const allowed = allowedMethods(path);
    if (allowed.length > 0 && !allowed.includes(req.method))
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send({
          code: 'METHOD_NOT_ALLOWED',
          message: `${req.method} ${path} is not allowed (use ${allowed.join(' or ')})`,
        });
    const message = /\/(\/|$)/.test(path.slice(1)) ? emptyIdMessage(path) : `no route ${path}`;
    return reply.code(404).send({ code: 'NOT_FOUND', message });
  });

  if (uiBuilt) await app.register(fastifyStatic, { root: uiDir, prefix: '/', index: ['index.html'] });
  else app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(NOT_BUILT));

  // ---- reads
  app.get('/overview', async () => overview());
  app.get('/jobs', async () => jobs());
  app.get<{ Params: { id: string } }>('/jobs/:id', async (req) => job(req.params.id));
  app.get<{ Params: { id: string } }>('/jobs/:id/checkpoints', async (req) => checkpoints(req.params.id));
  app.get<{ Params: { id: string } }>('/jobs/:id/exceptions', async (req) => ({
    exceptions: jm.status.jobView(req.params.id).details.exceptions,
  }));
  app.get<{ Params: { id: string; vid: string } }>('/jobs/:id/vertices/:vid', async (req) => {
    const v = vertexDetailJson(jm.status.jobView(req.params.id), req.params.vid);
    if (!v) throw new HttpError('NOT_FOUND', 404, `job ${req.params.id} has no vertex ${req.params.vid}`);
    return v;
  });
  app.get('/taskmanagers', async () => jm.status.taskmanagers());
  app.get<{ Params: { id: string } }>('/taskmanagers/:id', async (req) => {
    const tm = jm.status.taskmanagerList().find((t) => t.taskmanagerId === req.params.id);
    if (!tm) throw new HttpError('TASKMANAGER_NOT_FOUND', 404, `no TaskManager ${req.params.id}`);
    return tm;
  });

  // ---- dashboard
  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>(
    '/jobs/:id/dashboard/sensors',
    async (req) => {
      const q = req.query;
      const sort = (q.sort ?? 'key') as SensorSort;
      if (!['key', 'avg', 'max', 'min', 'freshness'].includes(sort))
        throw bad('sort must be key|avg|max|min|freshness');
      if (q.order !== undefined && q.order !== 'asc' && q.order !== 'desc') throw bad('order must be asc|desc');
      return dashboard.sensors(jm.status.jobView(req.params.id).spec, {
        search: q.search,
        sort,
        order: q.order as 'asc' | 'desc' | undefined,
        offset: intParam(q.offset, 'offset', 0),
        limit: intParam(q.limit, 'limit', 50, 0, 10_000),
      });
    },
  );
  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>(
    '/jobs/:id/dashboard/series',
    async (req) => {
      const q = req.query;
      if (!q.key) throw bad('key is required');
      const from = q.fromMs === undefined ? undefined : intParam(q.fromMs, 'fromMs', 0, Number.MIN_SAFE_INTEGER);
      const to = q.toMs === undefined ? undefined : intParam(q.toMs, 'toMs', 0, Number.MIN_SAFE_INTEGER);
      return dashboard.series(jm.status.jobView(req.params.id).spec, q.key, from, to);
    },
  );
  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>(
    '/jobs/:id/dashboard/alerts',
    async (req) =>
      dashboard.alerts(jm.status.jobView(req.params.id).spec, intParam(req.query.limit, 'limit', 100, 1, 10_000)),
  );
  app.get<{ Params: { id: string } }>('/jobs/:id/dashboard/heatmap', async (req) =>
    dashboard.heatmap(jm.status.jobView(req.params.id).spec),
  );

  // ---- metrics
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  // ---- mutations
  app.post<{ Querystring: Record<string, string | undefined> }>('/jobs', async (req, reply) => {
    const body = req.body;
    if (typeof body !== 'string' || body.trim() === '')
      throw new EngineError('SPEC_INVALID', 'the request has no job spec', {
        problems: ['the request body is empty: send a job spec (YAML or JSON)'],
      });
    const sets: string[] = [];
    if (req.query.parallelism !== undefined)
      sets.push(`parallelism=${intParam(req.query.parallelism, 'parallelism', 1, 1, 100_000)}`);
    const raw = applySets(parseSpecText(body, 'job spec'), sets);
    const spec = parseJobSpec(raw, { baseDir: process.cwd(), outputBaseDir: process.cwd() });
    const { jobId } = await jm.submitJob(spec, req.query.fromSavepoint ?? '');
    return reply.code(201).send({ jobId });
  });
  /** The job `id` names, unless it has ended. @throws EngineError JOB_NOT_FOUND; HttpError 409 JOB_NOT_RUNNING */
  const runningJobId = (id: string, what: string): string => {
    const { jobId, state } = jm.status.jobView(id).summary;
    if (ENDED.has(state)) throw new HttpError('JOB_NOT_RUNNING', 409, `cannot ${what} job ${jobId}: it is ${state}`);
    return jobId;
  };
  app.patch<{ Params: { id: string }; Querystring: { mode?: string } }>('/jobs/:id', async (req, reply) => {
    if (req.query.mode !== undefined && req.query.mode !== 'cancel') throw bad('mode must be cancel');
    const jobId = runningJobId(req.params.id, 'cancel');
    await jm.cancelJob(jobId, '');
    return reply.code(202).send({ jobId, state: jm.status.jobView(jobId).summary.state });
  });
  app.post<{ Params: { id: string } }>('/jobs/:id/savepoints', async (req) => {
    const r = await jm.triggerSavepoint(runningJobId(req.params.id, 'take a savepoint of'), false);
    return { savepointId: r.savepoint?.savepointId };
  });
  app.post<{ Params: { id: string } }>('/jobs/:id/stop', async (req) => {
    let savepoint = false;
    if (typeof req.body === 'string' && req.body.trim() !== '') {
      let b: unknown;
      try {
        b = JSON.parse(req.body);
      } catch {
        throw bad('the body must be JSON: { "savepoint": true|false }');
      }
      const sp = (b as { savepoint?: unknown } | null)?.savepoint;
      if (sp !== undefined && typeof sp !== 'boolean') throw bad('savepoint must be true or false');
      savepoint = sp === true;
    }
    const jobId = runningJobId(req.params.id, 'stop');
    if (savepoint) {
      const r = await jm.triggerSavepoint(jobId, true);
      return { jobId, state: r.state, savepointId: r.savepoint?.savepointId };
    }
    return { jobId, state: await jm.stopJob(jobId) };
  });
  app.post<{ Params: { id: string } }>('/taskmanagers/:id/kill', async (req, reply) => {
    if (o.chaos !== true)
      throw new HttpError('CHAOS_DISABLED', 403, 'killing TaskManagers needs a JobManager started with --chaos');
    const tm = jm.status.taskmanagerList().find((t) => t.taskmanagerId === req.params.id);
    if (!tm) throw new HttpError('TASKMANAGER_NOT_FOUND', 404, `no TaskManager ${req.params.id}`);
    if (tm.state !== 'ALIVE')
      throw new EngineError('TASKMANAGER_LOST', `TaskManager ${tm.taskmanagerId} is ${tm.state}`);
    if (tm.hostname !== hostname() || !(tm.pid > 0))
      throw new HttpError(
        'NOT_LOCAL',
        409,
        `TaskManager ${tm.taskmanagerId} runs on ${tm.hostname}, not on the JobManager's host (${hostname()}); kill it there`,
      );
    try {
      process.kill(tm.pid, 'SIGKILL');
    } catch (err) {
      throw new EngineError(
        'INTERNAL',
        `cannot kill TaskManager ${tm.taskmanagerId} (pid ${tm.pid}): ${(err as Error).message}`,
      );
    }
    o.log.warn({ taskmanagerId: tm.taskmanagerId, pid: tm.pid }, 'taskmanager killed (chaos, web request)');
    return reply.code(202).send({ taskmanagerId: tm.taskmanagerId, pid: tm.pid });
  });

  // ---- Server-Sent Events
  const sse = (req: FastifyRequest, reply: FastifyReply, events: () => [string, unknown][]): void => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const push = (): void => {
      let out = '';
      try {
        for (const [event, data] of events()) out += `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
      } catch (err) {
        const e = err as { code?: string; message?: string };
        out = `event: error\ndata: ${JSON.stringify({ code: e.code ?? 'INTERNAL', message: e.message ?? String(err) })}\n\n`;
      }
      res.write(out);
    };
    push();
    const timer = setInterval(push, intervalMs);
    const end = (): void => {
      clearInterval(timer);
      streams.delete(end);
      res.end();
    };
    streams.add(end);
    req.raw.on('close', end);
  };
  app.get('/events', async (req, reply) =>
    sse(req, reply, () => [
      ['overview', overview()],
      ['jobs', jobs()],
    ]),
  );
  app.get<{ Params: { id: string } }>('/jobs/:id/events', async (req, reply) => {
    const { jobId } = jm.status.jobView(req.params.id).summary; // 404 before the stream starts
    sse(req, reply, () => [
      ['job', job(jobId)],
      ['checkpoints', checkpoints(jobId)],
    ]);
  });

  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (err) {
    await dashboard.close();
    throw new EngineError('INTERNAL', `cannot listen on ${o.host}:${o.port}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  if (token === undefined && !loopback)
    o.log.warn(
      { host: o.host, webPort: port },
      `web server on ${o.host} (not loopback) without an access token: mutations are refused (403 TOKEN_REQUIRED) until a token is set with --web-token-file or FLUXO_WEB_TOKEN`,
    );
  o.log.info(
    { host: o.host, webPort: port, ui: uiBuilt, token: token !== undefined, authReads, chaos: o.chaos === true },
    'web server listening',
  );
  return {
    port,
    async close() {
      for (const end of [...streams]) end();
      await app.close();
      await dashboard.close();
    },
  };
}
