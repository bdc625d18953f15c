/**
 * A cluster secured as docs/security.md describes: TLS on every gRPC channel, mutual TLS (every
 * caller shows a certificate signed by the cluster CA) and a cluster token, with real processes
 * on loopback and certificates made here with the openssl CLI (test/support/certs.ts).
 *
 * - a keyed job at parallelism 2 over two TaskManagers (so records cross the TLS data plane)
 *   runs to the end with the right windows, submitted by a CLI that takes its settings from env;
 * - the CLI without the token, with a wrong token, without a client certificate, or in plaintext
 *   is refused with one readable line (never a hang);
 * - a TaskManager with a wrong token exits at once, one whose certificate another CA signed never
 *   gets registered (its handshake fails);
 * - a stranger with a valid certificate but no token can neither deploy onto a TaskManager nor
 *   open a data stream to it;
 * - the REST API's mutations need the cluster token when it is the only token;
 * - with LOG_LEVEL=trace, the token appears in no process's output.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  channelCredentials,
  channelOptions,
  clientSecurityOptions,
  fluxoProto,
  type grpc,
  isAuthRefusal,
  loadRpcSecurity,
  unary,
} from '../../core/rpc/index.js';
import { expectRows, readRows, writeCaseSpec } from '../support/case-spec.js';
import { type CertFiles, hasOpenssl, makeCa, makeLeaf } from '../support/certs.js';
import {
  type CliResult,
  fatal,
  freePort,
  getJson,
  killAll,
  type ManagedProcess,
  type RestJob,
  type RestTaskManager,
  requireBuiltCli,
  runCli,
  startProcess,
  waitFor,
} from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const SANS = ['IP:127.0.0.1', 'DNS:localhost'];

let redis: TestRedis;
let dir: string;
let ca: CertFiles;
let jmCert: CertFiles;
let tmCert: CertFiles;
let cliCert: CertFiles;
let rogueCert: CertFiles;
let token: string;
let tokenFile: string;
let wrongTokenFile: string;
let jm: ManagedProcess;
let address: string;
let web: string;
const processes: ManagedProcess[] = [];
const clusterEnv = () => ({ REDIS_URL: redis.url, FLUXO_CLUSTER_ID: `security-${process.pid}`, LOG_LEVEL: 'trace' });

/** TLS flags of a cluster process (its certificate, the CA, mutual TLS) and the token file. */
const serverFlags = (cert: CertFiles, tokenPath = tokenFile) => [
  '--tls-ca',
  ca.cert,
  '--tls-cert',
  cert.cert,
  '--tls-key',
  cert.key,
  '--tls-client-auth',
  '--cluster-token-file',
  tokenPath,
];
/** The CLI's flags for this cluster. */
const cliFlags = (tokenPath = tokenFile) => [
  '--jobmanager',
  address,
  '--tls-ca',
  ca.cert,
  '--tls-cert',
  cliCert.cert,
  '--tls-key',
  cliCert.key,
  '--cluster-token-file',
  tokenPath,
];

const taskmanagers = async (): Promise<RestTaskManager[]> =>
  (await getJson<{ taskmanagers: RestTaskManager[] }>(`${web}/taskmanagers`)).taskmanagers;

function startTaskManager(id: string, cert: CertFiles, tokenPath = tokenFile): ManagedProcess {
  const tm = startProcess(
    id,
    [
      'taskmanager',
      '--jobmanager',
      address,
      '--slots',
      '1',
      '--data-port',
      '0',
      '--id',
      id,
      ...serverFlags(cert, tokenPath),
    ],
    clusterEnv(),
  );
  processes.push(tm);
  return tm;
}

async function waitRegistered(id: string, tm: ManagedProcess): Promise<void> {
  await waitFor(
    async () => {
      if (tm.exited) throw fatal(`TaskManager ${id} exited before registering\n${tm.describe()}`);
      return (await taskmanagers()).some((t) => t.taskmanagerId === id && t.state === 'ALIVE');
    },
    { timeoutMs: 20_000, message: () => `TaskManager ${id} did not register\n${tm.describe()}\n${jm.describe()}` },
  );
}

/** The one error line of a refused CLI call. */
function errorLine(r: CliResult): string {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('fluxo: '));
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0];
}

beforeAll(async () => {
  if (!hasOpenssl())
    throw new Error('this test makes its certificates with the openssl CLI: apt-get install -y openssl');
  requireBuiltCli();
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-security-'));
  ca = makeCa(dir, 'cluster-ca');
  jmCert = makeLeaf(dir, ca, 'jobmanager', SANS);
  tmCert = makeLeaf(dir, ca, 'taskmanager', SANS);
  cliCert = makeLeaf(dir, ca, 'cli', ['DNS:fluxo-cli']);
  const rogueCa = makeCa(dir, 'rogue-ca');
  rogueCert = makeLeaf(dir, rogueCa, 'rogue', SANS);
  token = randomBytes(32).toString('hex');
  tokenFile = path.join(dir, 'cluster-token');
  writeFileSync(tokenFile, `${token}\nsecond line ignored\n`, { mode: 0o600 });
  wrongTokenFile = path.join(dir, 'wrong-token');
  writeFileSync(wrongTokenFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });

  redis = await startRedis();
  const rpcPort = await freePort();
  const webPort = await freePort();
  address = `127.0.0.1:${rpcPort}`;
  web = `http://127.0.0.1:${webPort}`;
  jm = startProcess(
    'jobmanager',
    [
      'jobmanager',
      '--rpc-port',
      String(rpcPort),
      '--web-port',
      String(webPort),
      '--redis',
      redis.url,
      ...serverFlags(jmCert),
    ],
    clusterEnv(),
  );
  processes.push(jm);
  const line = await jm.waitForOutput(/fluxo jobmanager: rpc 127\.0\.0\.1:\d+ \(([^)]*)\)/, 20_000);
  expect(line[1]).toBe('TLS, client certificates required, cluster token');
  for (const id of ['tm-a', 'tm-b']) await waitRegistered(id, startTaskManager(id, tmCert));
});

afterAll(async () => {
  await killAll();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a cluster with TLS, mutual TLS and a cluster token', () => {
  it('runs a keyed job over two TaskManagers (TLS data plane) to the end with the right windows', async () => {
    // 6 sensors × 60 readings, one per second: 6 windows of 10 s per sensor
    const lines: string[] = [];
    const expected: {
      sensor_id: string;
      window_start_ms: number;
      window_end_ms: number;
      count: number;
      avg: number;
      min: number;
      max: number;
    }[] = [];
    const t0 = 1_700_000_000_000;
    for (let s = 0; s < 6; s++) {
      for (let w = 0; w < 6; w++) {
        const vals: number[] = [];
        for (let i = 0; i < 10; i++) vals.push(Math.round((18 + s + ((w * 7 + i * 3) % 11) / 10) * 10) / 10);
        for (let i = 0; i < 10; i++) lines.push(`s-${s},${t0 + (w * 10 + i) * 1000},${vals[i]}`);
        expected.push({
          sensor_id: `s-${s}`,
          window_start_ms: t0 + w * 10_000,
          window_end_ms: t0 + (w + 1) * 10_000,
          count: 10,
          avg: vals.reduce((a, b) => a + b, 0) / 10,
          min: Math.min(...vals),
          max: Math.max(...vals),
        });
      }
    }
    lines.sort((a, b) => Number(a.split(',')[1]) - Number(b.split(',')[1]));
    writeFileSync(path.join(dir, 'input.csv'), `${lines.join('\n')}\n`);
    const spec = writeCaseSpec({ name: 'secure-job', dir, parallelism: 2 });

    // the CLI takes its TLS settings and token file from the environment
    const sub = await runCli(['submit', spec, '--jobmanager', address], {
      env: {
        FLUXO_TLS_CA: ca.cert,
        FLUXO_TLS_CERT: cliCert.cert,
        FLUXO_TLS_KEY: cliCert.key,
        FLUXO_CLUSTER_TOKEN_FILE: tokenFile,
      },
    });
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = sub.stdout.trim();
    let last: RestJob | undefined;
    await waitFor(
      async () => {
        last = await getJson<RestJob>(`${web}/jobs/${jobId}`);
        if (['FAILED', 'CANCELED'].includes(last.job.state))
          throw fatal(`job ended ${last.job.state}: ${last.job.failure}`);
        return last.job.state === 'FINISHED';
      },
      { timeoutMs: 60_000, message: () => `job not FINISHED: ${JSON.stringify(last?.job)}` },
    );
    // its tasks ran on both TaskManagers: the keyed exchange crossed the TLS data plane
    expect(new Set(last?.tasks.map((t) => t.taskmanagerId))).toEqual(new Set(['tm-a', 'tm-b']));
    expectRows(readRows(path.join(dir, 'secure-job.jsonl')), expected, 'secure-job');

    // and `fluxo status` with flags instead of env
    const st = await runCli(['status', jobId, ...cliFlags()]);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toContain(`(${jobId}) FINISHED`);
  });

  it('refuses a CLI call without the token: UNAUTHENTICATED, one readable line', async () => {
    const flags = cliFlags().slice(0, -2); // no --cluster-token-file
    const r = await runCli(['list', ...flags]);
    expect(errorLine(r)).toBe(
      'fluxo: the JobManager refused the cluster token: none was sent (give it with --cluster-token-file or env FLUXO_CLUSTER_TOKEN)',
    );
    // nor can it submit, cancel or take a savepoint
    for (const args of [['cancel', 'abcd'], ['savepoint', 'abcd'], ['taskmanagers']]) {
      const x = await runCli([...args, ...flags]);
      expect(errorLine(x)).toMatch(/^fluxo: the JobManager refused the cluster token: none was sent/);
    }
  });

  it('refuses a CLI call with a wrong token (from the file or from FLUXO_CLUSTER_TOKEN)', async () => {
    const r = await runCli(['list', ...cliFlags(wrongTokenFile)]);
    expect(errorLine(r)).toBe("fluxo: the JobManager refused the cluster token: it is not this cluster's token");
    const e = await runCli(['list', ...cliFlags().slice(0, -2)], { env: { FLUXO_CLUSTER_TOKEN: 'not-the-token' } });
    expect(errorLine(e)).toBe("fluxo: the JobManager refused the cluster token: it is not this cluster's token");
    // the token itself works from the environment too
    const ok = await runCli(['list', ...cliFlags().slice(0, -2)], { env: { FLUXO_CLUSTER_TOKEN: token } });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('refuses a CLI without a client certificate (mutual TLS), with a hint', async () => {
    const r = await runCli(['list', '--jobmanager', address, '--tls-ca', ca.cert, '--cluster-token-file', tokenFile]);
    expect(errorLine(r)).toMatch(
      /^fluxo: cannot reach JobManager at 127\.0\.0\.1:\d+: .*certificate required.*requires a client certificate/,
    );
  });

  it('a plaintext CLI against the TLS JobManager fails fast with a clear error, not a hang', async () => {
    const r = await runCli(['list', '--jobmanager', address, '--cluster-token-file', tokenFile], { timeoutMs: 20_000 });
    expect(r.ms).toBeLessThan(8000);
    expect(errorLine(r)).toMatch(
      /^fluxo: cannot reach JobManager at 127\.0\.0\.1:\d+: .*is the server using TLS\? Then give its CA with --tls-ca/,
    );
  });

  it('a CLI that does not trust the JobManager (another CA) says so', async () => {
    const r = await runCli(['list', ...cliFlags().map((f) => (f === ca.cert ? rogueCert.cert : f))]);
    expect(errorLine(r)).toMatch(/not signed by the CA given with --tls-ca/);
  });

  it('a TaskManager with a wrong token cannot register: it exits at once saying why', async () => {
    const tm = startTaskManager('tm-wrong-token', tmCert, wrongTokenFile);
    await tm.waitForExit();
    expect(tm.exited?.code, tm.describe()).toBe(1);
    expect(tm.stderr).toContain("fluxo: the JobManager refused the cluster token: it is not this cluster's token");
    expect((await taskmanagers()).map((t) => t.taskmanagerId)).not.toContain('tm-wrong-token');
    // the JobManager logs the refusal, without the token
    // at once, or with the refusals held back in the same 10 s window
    await jm.waitForOutput(
      /refused calls (with a wrong cluster token|without the cluster token or with a wrong one)/,
      15_000,
    );
  });

  it('a TaskManager whose certificate does not name its advertised address refuses to start', async () => {
    const misnamed = makeLeaf(dir, ca, 'misnamed', ['DNS:other.host']);
    const tm = startTaskManager('tm-misnamed', misnamed);
    await tm.waitForExit();
    expect(tm.exited?.code, tm.describe()).toBe(1);
    expect(tm.stderr).toContain(
      `fluxo: --tls-cert ${misnamed.cert} is not valid for 127.0.0.1 (the address other processes dial: --host); it names DNS:other.host. Make a certificate with that name or IP in its subjectAltName, or use --tls-server-name`,
    );
    expect((await taskmanagers()).map((t) => t.taskmanagerId)).not.toContain('tm-misnamed');
  });

  it('a TLS file from the environment is named by flag and variable', async () => {
    const nope = path.join(dir, 'nope', 'alice.crt');
    const flags = cliFlags().filter((f, i, all) => f !== '--tls-cert' && all[i - 1] !== '--tls-cert');
    const r = await runCli(['list', ...flags], { env: { FLUXO_TLS_CERT: nope } });
    expect(errorLine(r)).toBe(`fluxo: cannot read --tls-cert (env FLUXO_TLS_CERT) ${nope}: no such file`);
  });

  it('a TaskManager whose certificate another CA signed is refused in the handshake and never listed', async () => {
    const tm = startTaskManager('tm-rogue', rogueCert);
    // it keeps retrying (as for a JobManager that is down), each time refused in the TLS handshake
    await tm.waitForOutput(/refused this process's client certificate.*jobmanager not reachable, retrying/, 15_000);
    // several attempts later, still not listed
    await waitFor(() => (tm.stderr.match(/jobmanager not reachable, retrying/g) ?? []).length >= 3, {
      timeoutMs: 15_000,
      message: () => `tm-rogue did not retry 3 times\n${tm.describe()}`,
    });
    expect((await taskmanagers()).map((t) => t.taskmanagerId)).not.toContain('tm-rogue');
    await tm.stop();
  });

  it('a stranger with a valid certificate but no token can neither deploy onto a TaskManager nor stream data to it', async () => {
    const tm = (await taskmanagers()).find((t) => t.taskmanagerId === 'tm-a');
    if (!tm) throw new Error('tm-a is not registered');
    const sec = loadRpcSecurity({ tlsCa: ca.cert, tlsCert: cliCert.cert, tlsKey: cliCert.key }, 'client', undefined);
    const opts = { ...channelOptions, ...clientSecurityOptions(sec) };
    const control = new (fluxoProto().TaskManagerService)(tm.controlAddress, channelCredentials(sec.tls), opts);
    const deploy = unary(control, 'deployTasks', { jobId: 'x', attempt: 1, tasksJson: '[]' }, 'TaskManager tm-a');
    await expect(deploy).rejects.toThrow('the TaskManager tm-a refused the cluster token: none was sent');
    await deploy.catch((e) => expect(isAuthRefusal(e)).toBe(true));
    control.close();

    const data = new (fluxoProto().DataPlaneService)(tm.controlAddress, channelCredentials(sec.tls), opts);
    const stream = (data as unknown as { exchange: () => grpc.ClientDuplexStream<object, object> }).exchange();
    const err = await new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    expect(isAuthRefusal(err)).toBe(true);
    expect(err.details).toMatch(/refused the cluster token/);
    data.close();

    // with the token, the same caller is let in: the call reaches the handler (a deployment of no tasks)
    const withToken = loadRpcSecurity({ tlsCa: ca.cert, tlsCert: cliCert.cert, tlsKey: cliCert.key }, 'client', token);
    const ok = new (fluxoProto().TaskManagerService)(tm.controlAddress, channelCredentials(withToken.tls), {
      ...channelOptions,
      ...clientSecurityOptions(withToken),
    });
    await expect(
      unary(ok, 'deployTasks', { jobId: 'x', attempt: 1, tasksJson: '[]' }, 'TaskManager tm-a'),
    ).resolves.toEqual({});
    ok.close();
  });

  it('REST mutations need the cluster token when it is the only token, on loopback too', async () => {
    const jobs = (await getJson<{ jobs: { jobId: string }[] }>(`${web}/jobs`)).jobs;
    const jobId = jobs[0]?.jobId;
    expect(jobId).toBeDefined();
    const cancel = (auth?: string) =>
      fetch(`${web}/jobs/${jobId}`, {
        method: 'PATCH',
        headers: auth ? { authorization: auth } : {},
        signal: AbortSignal.timeout(5000),
      });
    expect((await cancel()).status).toBe(401);
    expect((await cancel('Bearer wrong')).status).toBe(401);
    // the right token passes the check; the job has FINISHED, so the answer is 409, not 401
    const ok = await cancel(`Bearer ${token}`);
    expect(ok.status).toBe(409);
    expect(((await ok.json()) as { code: string }).code).toBe('JOB_NOT_RUNNING');
    // reads stay open (no --web-auth reads)
    expect((await fetch(`${web}/overview`)).status).toBe(200);
  });

  it('the token appears in no output of any process, even with LOG_LEVEL=trace', async () => {
    const r = await runCli(['list', ...cliFlags()], { env: { LOG_LEVEL: 'trace' } });
    expect(r.code, r.stderr).toBe(0);
    const bad = await runCli(['list', ...cliFlags(wrongTokenFile)], { env: { LOG_LEVEL: 'debug' } });
    expect(bad.code).toBe(1);
    for (const p of processes) {
      expect(p.stdout.length + p.stderr.length, p.name).toBeGreaterThan(0);
      expect(p.stdout.includes(token) || p.stderr.includes(token), `${p.name} printed the token`).toBe(false);
    }
    for (const x of [r, bad]) expect(x.stdout.includes(token) || x.stderr.includes(token)).toBe(false);
    expect(jm.stderr).toMatch(/"level":10|"level":20|"level":30/); // really logging at low levels
  });
});
