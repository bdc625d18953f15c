import { readFileSync } from 'node:fs';
import { loadClusterConfig } from '../core/config/index.js';
import { EngineError } from '../core/errors/index.js';
import { createLogger } from '../core/log/index.js';
import { describeSecurity, loadRpcSecurity, plaintextTokenWarning, type SecurityFlags } from '../core/rpc/security.js';
import { checkOwnCertificateName } from '../core/rpc/tls.js';

// Each process loads only its own side: a TaskManager never loads the JobManager's web server
// (fastify, prom-client, the dashboard's BullMQ), and the JobManager never loads the task runtime.

/** `fluxo jobmanager`: runs until SIGINT/SIGTERM. */
export async function runJobManagerProcess(o: {
  host: string;
  rpcPort: number;
  webPort: number;
  /** address the web server binds; default 127.0.0.1 */
  webHost?: string;
  /** file holding the web access token (first line); else env FLUXO_WEB_TOKEN; else none */
  webTokenFile?: string;
  /** `reads`: every API GET needs the token too; default `mutations` */
  webAuth?: 'mutations' | 'reads';
  /** allow POST /taskmanagers/:id/kill */
  chaos?: boolean;
  redis: string;
  /**
   * TLS and cluster token of the RPC server and of the calls to TaskManagers (docs/security.md);
   * the cluster token also opens the REST API's mutations. Default none: plaintext, open
   */
  security?: SecurityFlags;
  /** cluster default checkpoint interval, ms; overrides env FLUXO_CHECKPOINT_INTERVAL_MS */
  checkpointInterval?: number;
  /** `reactive`: jobs rescale to the available slots (jobmanager/reactive.ts). Default `default` */
  scheduler?: 'default' | 'reactive';
  /** reactive mode: ms without a TaskManager joining before jobs scale up. Default 3000 */
  resourceStabilizationTimeout?: number;
}): Promise<void> {
  const env = { ...process.env };
  if (o.checkpointInterval !== undefined) env.FLUXO_CHECKPOINT_INTERVAL_MS = String(o.checkpointInterval);
  const config = loadClusterConfig(env, { redisUrl: o.redis });
  const log = createLogger('jobmanager');
  const { JobManager } = await import('../jobmanager/jobmanager.js');
  const { checkWebAuth, startWebServer } = await import('../jobmanager/web.js');
  const token = readWebToken(o.webTokenFile);
  const security = loadRpcSecurity(o.security ?? {}, 'server', process.env.FLUXO_CLUSTER_TOKEN);
  // the bind address need not be the name the others dial (they may use a DNS name for it), so
  // a certificate not naming it is only a warning here; a TaskManager's advertised host is refused
  try {
    const serverName = o.security?.tlsServerName;
    checkOwnCertificateName(security.tls, serverName ?? o.host, serverName ? '--tls-server-name' : '--host');
  } catch (err) {
    log.warn({ host: o.host }, (err as Error).message);
  }
  // refused before anything starts, rather than silently serving reads to everyone
  if (o.webPort > 0) checkWebAuth({ token, clusterToken: security.token, authReads: o.webAuth === 'reads' });
  const jm = new JobManager({
    host: o.host,
    rpcPort: o.rpcPort,
    config,
    log,
    security,
    scheduler: o.scheduler,
    resourceStabilizationMs: o.resourceStabilizationTimeout,
  });
  await jm.start();
  const webHost = o.webHost ?? '127.0.0.1';
  const web =
    o.webPort > 0
      ? await startWebServer({
          host: webHost,
          port: o.webPort,
          jm,
          log,
          redisUrl: config.redisUrl,
          token,
          clusterToken: security.token,
          authReads: o.webAuth === 'reads',
          chaos: o.chaos === true,
        })
      : undefined;
  const warning = plaintextTokenWarning(security, [o.host]);
  if (warning) log.warn({ host: o.host }, warning);
  const secured = security.tls || security.token ? ` (${describeSecurity(security)})` : '';
  process.stderr.write(
    `fluxo jobmanager: rpc ${o.host}:${jm.rpcPort}${secured}${web ? `, web http://${webHost}:${web.port}/` : ''}\n`,
  );
  const stop = async (): Promise<void> => {
    await web?.close().catch(() => {});
    await jm.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/**
 * The web access token: the first line of `file`, else env FLUXO_WEB_TOKEN, else undefined.
 * @throws Error when the file cannot be read or is empty (the message never contains the token)
 */
function readWebToken(file: string | undefined): string | undefined {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read --web-token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const t = text.split(/\r?\n/)[0].trim();
    if (t === '') throw new Error(`--web-token-file ${file} is empty`);
    return t;
  }
  const env = process.env.FLUXO_WEB_TOKEN?.trim();
  return env ? env : undefined;
}

/** Options of `fluxo taskmanager` (the CLI flags of the same names). */
export interface TaskManagerProcessOptions {
  /** the JobManager's RPC address, host:port */
  jobmanager: string;
  slots: number;
  /** bind address of the TaskManager's gRPC server */
  host: string;
  /** address other processes use to reach it; default `host` */
  advertiseHost?: string;
  /** its gRPC port; 0 picks a free one */
  dataPort: number;
  /** default: random */
  id?: string;
  /** TLS and cluster token of its gRPC server and of its calls (docs/security.md). Default none: plaintext, open */
  security?: SecurityFlags;
}

/** `fluxo taskmanager`: registers with the JobManager and runs until SIGINT/SIGTERM. */
export async function runTaskManagerProcess(o: TaskManagerProcessOptions): Promise<void> {
  const config = loadClusterConfig();
  const log = createLogger('taskmanager');
  const security = loadRpcSecurity(o.security ?? {}, 'server', process.env.FLUXO_CLUSTER_TOKEN);
  // the JobManager and the other TaskManagers dial the advertised host: a certificate not naming
  // it would register fine and fail every deployment (ERR_TLS_CERT_ALTNAME_INVALID)
  const serverName = o.security?.tlsServerName;
  checkOwnCertificateName(
    security.tls,
    serverName ?? o.advertiseHost ?? o.host,
    serverName ? '--tls-server-name' : o.advertiseHost !== undefined ? '--advertise-host' : '--host',
  );
  const warning = plaintextTokenWarning(security, [o.advertiseHost ?? o.host, o.jobmanager.replace(/:\d+$/, '')]);
  if (warning) log.warn({ host: o.host, jobmanager: o.jobmanager }, warning);
  const { TaskManager } = await import('../taskmanager/taskmanager.js');
  if (o.slots < 1) throw new Error('--slots must be at least 1');
  const tm = new TaskManager({
    jobmanager: o.jobmanager,
    slots: o.slots,
    host: o.host,
    advertiseHost: o.advertiseHost,
    dataPort: o.dataPort,
    id: o.id,
    security,
    config,
    log,
  });
  const stop = async (): Promise<void> => {
    await tm.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  try {
    await tm.start();
  } catch (err) {
    // gave up reaching the JobManager: EX_UNAVAILABLE, as when it loses a JobManager later
    if (!(err instanceof EngineError) || err.code !== 'JOBMANAGER_UNAVAILABLE') throw err;
    log.fatal({ err }, 'giving up on the jobmanager');
    process.stderr.write(`fluxo taskmanager: ${err.message}\n`);
    process.exit(69);
  }
}
