/**
 * The REST API and the cluster token (jobmanager/web.ts, docs/security.md): the cluster token is
 * accepted wherever the web token is, and when it is the only token, mutations need it even on
 * loopback. In-process on loopback against a stub JobManager; POST /jobs with a body that is not
 * a spec answers 400 once past the token check, so 400 means "let in" and 401 "refused".
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../../core/log/index.js';
import type { JobManager } from '../../../jobmanager/jobmanager.js';
import { checkWebAuth, startWebServer, type WebServer } from '../../../jobmanager/web.js';

const stubJm = {
  status: {
    overview: () => ({ taskmanagers: 0, slotsTotal: 0, slotsFree: 0, jobsRunning: 0 }),
    jobViews: () => [],
    taskmanagers: () => ({ taskmanagers: [] }),
  },
} as unknown as JobManager;
const log = { info() {}, warn() {}, error() {} } as unknown as Logger;

const servers: WebServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(o: { token?: string; clusterToken?: string; authReads?: boolean }): Promise<string> {
  const s = await startWebServer({
    host: '127.0.0.1',
    port: 0,
    jm: stubJm,
    log,
    redisUrl: 'redis://127.0.0.1:1',
    ...o,
  });
  servers.push(s);
  return `http://127.0.0.1:${s.port}`;
}

/** POST /jobs with a body that is not a job spec: the status only. */
async function submit(web: string, token?: string): Promise<number> {
  const res = await fetch(`${web}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/yaml', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: 'name: [unclosed',
  });
  await res.text();
  return res.status;
}

describe('REST API with a cluster token', () => {
  it('only a cluster token: mutations need it, on loopback too', async () => {
    const web = await start({ clusterToken: 'cluster-secret' });
    expect(await submit(web)).toBe(401);
    expect(await submit(web, 'wrong')).toBe(401);
    expect(await submit(web, 'cluster-secret')).toBe(400);
    // reads stay open, and the overview says a token is set
    const overview = (await (await fetch(`${web}/overview`)).json()) as { auth: { token: boolean } };
    expect(overview.auth.token).toBe(true);
  });

  it('a web token and a cluster token: either one passes', async () => {
    const web = await start({ token: 'web-secret', clusterToken: 'cluster-secret' });
    expect(await submit(web, 'web-secret')).toBe(400);
    expect(await submit(web, 'cluster-secret')).toBe(400);
    expect(await submit(web, 'neither')).toBe(401);
    expect(await submit(web)).toBe(401);
  });

  it('no token at all on loopback: mutations stay open, as before', async () => {
    const web = await start({});
    expect(await submit(web)).toBe(400);
  });

  it('--web-auth reads with only a cluster token: allowed, and reads need it', async () => {
    expect(() => checkWebAuth({ clusterToken: 'cluster-secret', authReads: true })).not.toThrow();
    expect(() => checkWebAuth({ authReads: true })).toThrow(/--web-auth reads needs a token/);
    const web = await start({ clusterToken: 'cluster-secret', authReads: true });
    expect((await fetch(`${web}/jobs`)).status).toBe(401);
    expect((await fetch(`${web}/jobs`, { headers: { authorization: 'Bearer cluster-secret' } })).status).toBe(200);
  });
});
