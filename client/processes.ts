import { loadClusterConfig } from '../core/config/index.js';
import { createLogger } from '../core/log/index.js';
import { JobManager } from '../jobmanager/jobmanager.js';
import { startStatusServer } from '../jobmanager/web.js';
import { TaskManager } from '../taskmanager/taskmanager.js';

/** `fluxo jobmanager`: runs until SIGINT/SIGTERM. */
export async function runJobManagerProcess(o: {
  host: string;
  rpcPort: number;
  webPort: number;
  redis: string;
  /** cluster default checkpoint interval, ms; overrides env FLUXO_CHECKPOINT_INTERVAL_MS */
  checkpointInterval?: number;
}): Promise<void> {
  const env = { ...process.env };
  if (o.checkpointInterval !== undefined) env.FLUXO_CHECKPOINT_INTERVAL_MS = String(o.checkpointInterval);
  const config = loadClusterConfig(env, { redisUrl: o.redis });
  const log = createLogger('jobmanager');
  const jm = new JobManager({ host: o.host, rpcPort: o.rpcPort, config, log });
  await jm.start();
  const web = o.webPort > 0 ? await startStatusServer(o.host, o.webPort, jm.status, log) : undefined;
  process.stderr.write(
    `fluxo jobmanager: rpc ${o.host}:${jm.rpcPort}${web ? `, status http://${o.host}:${o.webPort}/overview` : ''}\n`,
  );
  const stop = async (): Promise<void> => {
    web?.close();
    await jm.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** `fluxo taskmanager`: registers with the JobManager and runs until SIGINT/SIGTERM. */
export async function runTaskManagerProcess(o: {
  jobmanager: string;
  slots: number;
  host: string;
  advertiseHost?: string;
  dataPort: number;
  id?: string;
}): Promise<void> {
  const config = loadClusterConfig();
  const log = createLogger('taskmanager');
  if (o.slots < 1) throw new Error('--slots must be at least 1');
  const tm = new TaskManager({
    jobmanager: o.jobmanager,
    slots: o.slots,
    host: o.host,
    advertiseHost: o.advertiseHost,
    dataPort: o.dataPort,
    id: o.id,
    config,
    log,
  });
  const stop = async (): Promise<void> => {
    await tm.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  await tm.start();
}
