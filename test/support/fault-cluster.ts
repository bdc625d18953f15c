/**
 * The recovery tests' cluster: a private Redis, a temp folder, and a JobManager with three
 * TaskManager processes of one slot each (one spare), of which tm-1 runs with fault injection
 * `fault` (core/fault/inject.ts), firing once per cluster (`FLUXO_FAULTS_ONCE_DIR`).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, type TestCluster } from './processes.js';
import { startRedis, type TestRedis } from './redis.js';

export interface FaultCluster {
  redis: TestRedis;
  cluster: TestCluster;
  /** a fresh temp folder for the test's inputs and outputs, removed by `stop` */
  dir: string;
  /** where tm-1's fault leaves its marker file once it fired (`FLUXO_FAULTS_ONCE_DIR`) */
  onceDir: string;
  /** stops the processes and Redis, removes `dir`; safe after a partly failed start */
  stop(): Promise<void>;
}

/** `clusterId` names the cluster and its temp folder. @throws when a process does not start (everything started is stopped) */
export async function startFaultCluster(clusterId: string, fault: string): Promise<FaultCluster> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), `fluxo-${clusterId}-`));
  const onceDir = join(dir, 'once');
  mkdirSync(onceDir);
  let cluster: TestCluster | undefined;
  const stop = async () => {
    await cluster?.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    cluster = await startCluster({ redisUrl: redis.url, clusterId, taskmanagers: [] });
    await cluster.startTaskManager('tm-1', 1, { FLUXO_FAULTS: fault, FLUXO_FAULTS_ONCE_DIR: onceDir });
    await cluster.startTaskManager('tm-2', 1);
    await cluster.startTaskManager('tm-3', 1);
  } catch (err) {
    await stop();
    throw err;
  }
  return { redis, cluster, dir, onceDir, stop };
}
