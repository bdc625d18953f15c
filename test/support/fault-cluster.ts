/**
 * The recovery tests' cluster: a private Redis, a temp folder, and a JobManager with three
 * TaskManager processes of one slot each (one spare), of which tm-1 runs with fault injection
 * `fault` (core/fault/inject.ts), firing once per cluster (`FLUXO_FAULTS_ONCE_DIR`).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type PrivateCluster, startPrivateCluster } from './private-cluster.js';

export interface FaultCluster extends PrivateCluster {
  /** where tm-1's fault leaves its marker file once it fired (`FLUXO_FAULTS_ONCE_DIR`) */
  onceDir: string;
}

/** `clusterId` names the cluster and its temp folder. @throws when a process does not start (everything started is stopped) */
export async function startFaultCluster(clusterId: string, fault: string): Promise<FaultCluster> {
  const pc = await startPrivateCluster(clusterId, {
    cluster: { taskmanagers: [] },
    prepare: (dir) => mkdirSync(join(dir, 'once')),
    afterStart: async (cluster, dir) => {
      await cluster.startTaskManager('tm-1', 1, { FLUXO_FAULTS: fault, FLUXO_FAULTS_ONCE_DIR: join(dir, 'once') });
      await cluster.startTaskManager('tm-2', 1);
      await cluster.startTaskManager('tm-3', 1);
    },
  });
  return { ...pc, onceDir: join(pc.dir, 'once') };
}
