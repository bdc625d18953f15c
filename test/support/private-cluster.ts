/**
 * A test cluster with resources of its own: a private Redis, a temp folder and a JobManager with
 * its TaskManagers (`startCluster`), stopped and removed together by `stop`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, type TestCluster } from './processes.js';
import { startRedis, type TestRedis } from './redis.js';

export interface PrivateCluster {
  redis: TestRedis;
  cluster: TestCluster;
  /** a fresh temp folder `fluxo-<clusterId>-*` for the test's inputs and outputs, removed by `stop` */
  dir: string;
  /** stops the processes and Redis, removes `dir`; safe after a partly failed start */
  stop(): Promise<void>;
}

/**
 * Starts Redis, makes the temp folder, runs `prepare` on it, starts the cluster with `cluster`'s
 * options (Redis and `clusterId` filled in), then runs `afterStart` (e.g. more TaskManagers).
 * @throws when a step fails; everything started so far is stopped and the folder removed first
 */
export async function startPrivateCluster(
  clusterId: string,
  o: {
    cluster: Omit<Parameters<typeof startCluster>[0], 'redisUrl' | 'clusterId'>;
    prepare?: (dir: string) => void;
    afterStart?: (cluster: TestCluster, dir: string) => Promise<void>;
  },
): Promise<PrivateCluster> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), `fluxo-${clusterId}-`));
  let cluster: TestCluster | undefined;
  const stop = async () => {
    await cluster?.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    o.prepare?.(dir);
    cluster = await startCluster({ ...o.cluster, redisUrl: redis.url, clusterId });
    await o.afterStart?.(cluster, dir);
  } catch (err) {
    await stop();
    throw err;
  }
  return { redis, cluster, dir, stop };
}
