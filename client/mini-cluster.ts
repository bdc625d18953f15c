import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadClusterConfig } from '../core/config/index.js';
import { ensureRedis, redactUrl } from '../core/config/local-redis.js';
import { EngineError } from '../core/errors/index.js';
import { buildJobGraph, slotsNeeded } from '../core/graph/build.js';
import { createLogger } from '../core/log/index.js';
import type { JobSpec } from '../core/spec/types.js';
import { JobManager } from '../jobmanager/jobmanager.js';
import type { JobDetails } from './jm-client.js';
import { summaryLines } from './print.js';

export interface MiniClusterOptions {
  /** TaskManager child processes. Default 2 */
  taskmanagers: number;
  /** slots per TaskManager. Default 1 */
  slots: number;
  /** write the summary as JSON here (benchmarks, scripts) */
  summaryJson?: string;
  /** give up after this many ms; 0 = never */
  timeoutMs: number;
  /**
   * Extra TaskManagers kept beyond `taskmanagers`; with spares, a TaskManager that dies (e.g.
   * `fluxo chaos kill-taskmanager`) is replaced by a new one, so a job can survive repeated kills.
   * Default 0 (a death is reported, and a job without checkpoints fails).
   */
  spares?: number;
}

const TERMINAL = new Set(['FINISHED', 'FAILED', 'CANCELED']);

/**
 * `fluxo run`: a JobManager in this process plus N TaskManager child processes on loopback,
 * Redis from REDIS_URL (or a private redis-server when none answers and one is installed).
 * Runs the job to its end, prints a summary to stderr and returns the exit code: 0 when the job
 * FINISHED, 1 when it failed or was canceled, 130/143 when SIGINT/SIGTERM interrupted it (the job
 * is canceled, every process stopped). Child logs go to stderr at LOG_LEVEL (default `fatal` here:
 * the summary carries the failure reason; LOG_LEVEL=info shows the processes' logs). The run's
 * job records are deleted from Redis afterwards unless FLUXO_CLUSTER_ID was set.
 */
export async function runMiniCluster(spec: JobSpec, o: MiniClusterOptions): Promise<number> {
  if (o.taskmanagers < 1 || o.slots < 1)
    throw new EngineError('NO_RESOURCES', '--taskmanagers and --slots must be at least 1');
  const need = slotsNeeded(buildJobGraph(spec));
  if (need > o.taskmanagers * o.slots) {
    throw new EngineError(
      'NO_RESOURCES',
      `${spec.name} needs ${need} slots (its largest parallelism) and the mini-cluster has ${o.taskmanagers * o.slots}; raise --taskmanagers or --slots, or lower --parallelism`,
    );
  }
  const logLevel = process.env.LOG_LEVEL ?? 'fatal';
  process.env.LOG_LEVEL = logLevel;
  const say = (msg: string): void => void process.stderr.write(`${msg}\n`);
  const base = loadClusterConfig();
  const redis = await ensureRedis(base.redisUrl, say);
  const keepRecords = Boolean(process.env.FLUXO_CLUSTER_ID);
  const clusterId = process.env.FLUXO_CLUSTER_ID || `run-${randomBytes(4).toString('hex')}`;
  const config = loadClusterConfig(process.env, { redisUrl: redis.url, clusterId });
  const log = createLogger('jobmanager');
  const jm = new JobManager({ host: '127.0.0.1', rpcPort: 0, config, log, slotWaitMs: 30_000 });
  const children: ChildProcess[] = [];
  let exitWatch: ((why: string) => void) | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      jm.prepareStop();
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      const exited = Promise.all(
        children.map((c) =>
          c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined,
        ),
      );
      const timer = setTimeout(() => {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, 5000);
      await exited;
      clearTimeout(timer);
      if (!keepRecords) await jm.forgetCluster().catch(() => {});
      await jm.stop().catch(() => {});
      await redis.stop();
    })();
    return cleaning;
  };
  let jobId: string | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = signal;
    jm.prepareStop();
    if (jobId) {
      say(`fluxo run: ${signal}: cancelling job ${jobId} and stopping the mini-cluster`);
      void jm.cancelJob(jobId, `interrupted by ${signal}`);
    } else {
      say(`fluxo run: ${signal}: stopping the mini-cluster`);
      void cleanup().then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  try {
    await jm.start();
    const cli = fileURLToPath(new URL('./main.js', import.meta.url));
    const spares = o.spares ?? 0;
    let nextTm = 1;
    const startTaskManager = (): void => {
      const id = `tm-${nextTm++}`;
      const child = spawn(
        process.execPath,
        [
          cli,
          'taskmanager',
          '--jobmanager',
          `127.0.0.1:${jm.rpcPort}`,
          '--slots',
          String(o.slots),
          '--data-port',
          '0',
          '--id',
          id,
        ],
        {
          env: { ...process.env, REDIS_URL: redis.url, FLUXO_CLUSTER_ID: clusterId, LOG_LEVEL: logLevel },
          stdio: ['ignore', 'inherit', 'inherit'],
        },
      );
      child.once('exit', (code, signal) => {
        const why = `TaskManager ${id} exited (${signal ?? `code ${code}`})`;
        if (cleaning) return;
        if (spares > 0) {
          say(`fluxo run: ${why}; starting a replacement`);
          startTaskManager();
          return;
        }
        exitWatch?.(why);
      });
      children.push(child);
    };
    for (let i = 0; i < o.taskmanagers + spares; i++) startTaskManager();
    say(
      `fluxo run: ${spec.name} on 1 JobManager (127.0.0.1:${jm.rpcPort}) + ${o.taskmanagers + spares} TaskManager process${o.taskmanagers + spares > 1 ? 'es' : ''} × ${o.slots} slot${o.slots > 1 ? 's' : ''}${spares > 0 ? ` (${spares} spare, killed ones replaced)` : ''}, parallelism ${spec.parallelism}, Redis ${redactUrl(redis.url)}`,
    );
    await waitFor(
      () => (jm.status.overview() as { taskmanagers: number }).taskmanagers >= o.taskmanagers + spares,
      30_000,
      'TaskManagers did not register within 30 s',
      (fail) => (exitWatch = fail),
    );
    jobId = (await jm.submitJob(spec)).jobId;
    say(`fluxo run: submitted job ${jobId}`);
    const started = Date.now();
    let details = jm.status.job(jobId) as JobDetails;
    exitWatch = undefined;
    while (!TERMINAL.has(details.job.state)) {
      if (o.timeoutMs > 0 && Date.now() - started > o.timeoutMs) {
        await jm.cancelJob(jobId, `did not end within --timeout ${o.timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 100));
      details = jm.status.job(jobId) as JobDetails;
    }
    say(summaryLines(details).join('\n'));
    if (o.summaryJson)
      writeFileSync(o.summaryJson, `${JSON.stringify({ ...details, wallMs: Date.now() - started }, null, 2)}\n`);
    if (interrupted) return interrupted === 'SIGINT' ? 130 : 143;
    return details.job.state === 'FINISHED' ? 0 : 1;
  } finally {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(sig, onSignal);
    await cleanup();
  }
}

async function waitFor(
  cond: () => boolean,
  timeoutMs: number,
  message: string,
  onFail: (fail: (why: string) => void) => void,
): Promise<void> {
  let failure: string | undefined;
  onFail((why) => {
    failure = why;
  });
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (failure) throw new EngineError('TASKMANAGER_LOST', failure);
    if (Date.now() > deadline) throw new EngineError('NO_RESOURCES', message);
    await new Promise((r) => setTimeout(r, 50));
  }
}
