import { createServer, type Server } from 'node:http';
import type { Logger } from '../core/log/index.js';

/** Read-only JSON endpoints the JobManager serves on --web-port (the web page comes later). */
export interface StatusSource {
  overview(): unknown;
  jobs(): unknown;
  job(id: string): unknown;
  taskmanagers(): unknown;
}

/**
 * Serves GET /overview, /jobs, /jobs/:id and /taskmanagers as JSON on `host:port`.
 * Errors come back as JSON `{ code, message }`.
 */
export async function startStatusServer(host: string, port: number, src: StatusSource, log: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return send(405, { code: 'METHOD_NOT_ALLOWED', message: `${req.method} not allowed` });
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/overview' || path === '/') return send(200, src.overview());
      if (path === '/jobs') return send(200, src.jobs());
      if (path === '/taskmanagers') return send(200, src.taskmanagers());
      const m = /^\/jobs\/([^/]+)$/.exec(path);
      if (m) return send(200, src.job(decodeURIComponent(m[1])));
      return send(404, { code: 'NOT_FOUND', message: `no route ${path}` });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return send(e.code === 'JOB_NOT_FOUND' ? 404 : 500, {
        code: e.code ?? 'INTERNAL',
        message: e.message ?? String(err),
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  log.info({ host, webPort: port }, 'status endpoints listening');
  return server;
}
