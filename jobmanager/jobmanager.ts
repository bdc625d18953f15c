import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { jobId as asJobId } from '../core/checkpoint/ids.js';
import { checkpointKeyPrefix, RedisCheckpointStore } from '../core/checkpoint/redis-store.js';
import { type CompletedCheckpoint, keyGroupPart, splitPart } from '../core/checkpoint/types.js';
import type { ClusterConfig } from '../core/config/index.js';
import { redactUrl } from '../core/config/local-redis.js';
import { EngineError } from '../core/errors/index.js';
import { buildJobGraph, isKeyedVertex, outputPaths, slotsNeeded } from '../core/graph/build.js';
import { buildDeployment, type SlotRef } from '../core/graph/deploy.js';
import { type JobGraph, sinkEpoch, type TaskDeploymentDescriptor } from '../core/graph/types.js';
import type { Logger } from '../core/log/index.js';
import { type RestartStrategy, type RestartStrategyConfig, restartStrategy } from '../core/restart/strategies.js';
import {
  type AcknowledgeCheckpointRequest,
  type CancelJobRequest,
  channelCredentials,
  channelOptions,
  clientSecurityOptions,
  type DeclineCheckpointRequest,
  type DeleteSavepointRequest,
  fluxoProto,
  type GetJobRequest,
  grpc,
  type HeartbeatRequest,
  type HeartbeatResponse,
  handleUnary,
  type JobState,
  type JobSummary,
  type ListSavepointsRequest,
  type RegisterTaskManagerRequest,
  type ReportTaskStateRequest,
  type RpcSecurity,
  refusalMessage,
  type SavepointInfo,
  type SubmitJobRequest,
  serverCredentials,
  serverSecurityOptions,
  type TaskManagerInfo,
  type TriggerCheckpointRequest,
  type TriggerSavepointRequest,
  type TriggerSavepointResponse,
  throttleRefusals,
  unary,
} from '../core/rpc/index.js';
import type { TaskCounters } from '../core/runtime/transport.js';
import type { JobSpec } from '../core/spec/types.js';
import { keyGroupRange } from '../core/state/keygroups.js';
import { JobCheckpointing } from './checkpointing.js';
import { commitOrphanedSinkParts, orphanedSinkParts } from './orphaned-sinks.js';
import { RateTracker, type SubtaskRates } from './rates.js';
import {
  DEFAULT_RESOURCE_STABILIZATION_MS,
  reactiveShape,
  reactiveSpec,
  rescaleReason,
  type SchedulerKind,
  StabilizationTimer,
  targetParallelism,
} from './reactive.js';
import { JobStore } from './store.js';

/** Options of `fluxo jobmanager`. */
export interface JobManagerOptions {
  /** address to bind the RPC server to. Default 127.0.0.1 */
  host: string;
  /** RPC port; 0 = any free port. Default 6123 */
  rpcPort: number;
  config: Readonly<ClusterConfig>;
  log: Logger;
  /** how long a job waits for enough free slots before it fails with NO_RESOURCES. Default: config.slotWaitMs */
  slotWaitMs?: number;
  /**
   * TLS and cluster token (core/rpc/security.ts): the RPC server requires them of every caller
   * (CLI and TaskManagers), and the calls to TaskManagers carry them. Default `{}`: plaintext, open.
   */
  security?: RpcSecurity;
  /**
   * `reactive`: jobs with checkpoints rescale to the slots the cluster has (Flink's Reactive Mode;
   * rules in jobmanager/reactive.ts). Default `default`: every job runs at its spec's parallelism.
   */
  scheduler?: SchedulerKind;
  /**
   * Reactive mode: how long no TaskManager must have joined before running jobs scale up, ms
   * (Flink's `jobmanager.adaptive-scheduler.resource-stabilization-timeout`). Default 3000
   */
  resourceStabilizationMs?: number;
}

interface TaskManagerEntry {
  id: string;
  address: string;
  slots: number;
  /** slot index → job id using it */
  used: Map<number, string>;
  lastHeartbeatMs: number;
  rssBytes: number;
  /** V8 heap in use, all threads, bytes (0 until reported) */
  heapUsedBytes: number;
  pid: number;
  hostname: string;
  state: 'ALIVE' | 'LOST';
  client: grpc.Client;
  heartbeat?: grpc.ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>;
}

interface TaskEntry {
  desc: Pick<TaskDeploymentDescriptor, 'taskId' | 'vertexId' | 'subtask'>;
  taskmanagerId: string;
  state: string;
  counters?: TaskCounters;
  error?: string;
}

interface Job {
  jobId: string;
  spec: JobSpec;
  graph: JobGraph;
  state: JobState;
  attempt: number;
  createdAtMs: number;
  endedAtMs: number;
  failure: string;
  tasks: Map<string, TaskEntry>;
  waitingSince?: number;
  waitingFor?: string;
  /** a schedule() call is deploying this job */
  scheduling?: boolean;
  /** the attempt's checkpointing, when the spec asks for checkpoints */
  checkpoints?: JobCheckpointing;
  /** the last attempt's checkpoint stats, shown while the job restarts, and carried on */
  previousCheckpoints?: ReturnType<JobCheckpointing['stats']>;
  /** the highest checkpoint id any attempt triggered: the next attempt's ids continue after it */
  lastCheckpointId: number;
  /** jobs with checkpoints restart after failures under this strategy; others fail */
  restartStrategy?: RestartStrategy;
  /** failures and restarts, oldest first (the status's exceptions) */
  exceptions: { timeMs: number; attempt: number; reason: string; restartDelayMs?: number }[];
  /**
   * The savepoint (or retained checkpoint) of another job this job was submitted from: restored
   * until the job has completed a checkpoint of its own. Its id is `fromSavepoint`.
   */
  restoreFrom?: { checkpoint: CompletedCheckpoint; spec: JobSpec; id: string };
  /** added to the attempt for the sinks' fencing epoch (`sinkEpoch`); 0 unless restored from a savepoint */
  epochBase: number;
  /** the savepoint a stop-with-savepoint took, once the job ended with it */
  stoppedWithSavepoint?: string;
  /** when the job first reached RUNNING (ms since the epoch) */
  startedAtMs?: number;
  /** the checkpoint (or savepoint) the latest attempt restored, when it restored one */
  latestRestore?: LatestRestore;
  /** reactive mode: why the next attempt is deployed at another parallelism, and the slots it may take */
  rescale?: { cause: string; slots: number };
  /** `fluxo stop` (drain) was asked: the sources are ending their input */
  draining?: boolean;
}

/** What a job attempt restored from (REST `latestRestore`). */
export interface LatestRestore {
  checkpointId: number;
  attempt: number;
  restoredAtMs: number;
  /** true when it was the savepoint (or retained checkpoint) of another job the job was submitted from */
  fromSavepoint: boolean;
}

/**
 * A read-only snapshot of one job for the REST API and /metrics (jobmanager/rest.ts shapes it).
 * `rates(taskId)` gives the task's rates over its last heartbeat interval (zeros when unknown).
 */
export interface JobView {
  summary: JobSummary;
  startedAtMs?: number;
  spec: JobSpec;
  graph: JobGraph;
  details: ReturnType<JobManager['details']>;
  latestRestore: LatestRestore | null;
  rates(taskId: string): SubtaskRates;
}

/** `<job id>-<checkpoint id>`: how users name a savepoint (or a retained checkpoint). */
export function savepointIdOf(jobId: string, checkpointId: number): string {
  return `${jobId}-${checkpointId}`;
}

/**
 * Splits a savepoint id into the job id and checkpoint id.
 * @throws EngineError CHECKPOINT_NOT_FOUND when `id` is not `<job id>-<checkpoint id>`
 */
export function parseSavepointId(id: string): { jobId: string; checkpointId: number } {
  const m = /^([0-9a-f]{16})-([1-9]\d{0,15})$/.exec(id.trim());
  if (!m)
    throw new EngineError(
      'CHECKPOINT_NOT_FOUND',
      `${JSON.stringify(id)} is not a savepoint id: expected <job id>-<checkpoint id> as \`fluxo savepoints\` lists them`,
    );
  return { jobId: m[1], checkpointId: Number(m[2]) };
}

const TERMINAL: ReadonlySet<JobState> = new Set(['FINISHED', 'FAILED', 'CANCELED']);

/**
 * The JobManager: accepts jobs (dispatcher), keeps the TaskManager registry with heartbeats
 * (resource manager), deploys execution graphs onto slots (scheduler), and tracks job state,
 * which it writes to Redis on every transition.
 */
export class JobManager {
  private readonly server: grpc.Server;
  private readonly tms = new Map<string, TaskManagerEntry>();
  private readonly jobs = new Map<string, Job>();
  private readonly store: JobStore;
  private readonly checkpointRedis: Redis;
  private readonly checkpointStore: RedisCheckpointStore;
  /** per-task counter samples for rates (key `<job id>:<attempt>:<task id>`) */
  private readonly rates = new RateTracker();
  private monitor: NodeJS.Timeout | undefined;
  private port = 0;
  /** reactive mode: debounces TaskManagers joining before running jobs scale up */
  private readonly stabilization: StabilizationTimer | undefined;

  constructor(private readonly opts: JobManagerOptions) {
    this.server = new grpc.Server({
      ...channelOptions,
      ...serverSecurityOptions(
        opts.security,
        'JobManager',
        throttleRefusals((r) => opts.log.warn(r, refusalMessage(r))),
      ),
    });
    this.store = new JobStore(opts.config.redisUrl, opts.config.clusterId);
    this.checkpointRedis = new Redis(opts.config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.checkpointRedis.on('error', () => {});
    this.checkpointStore = new RedisCheckpointStore({
      redis: this.checkpointRedis,
      keyPrefix: checkpointKeyPrefix(opts.config.clusterId),
    });
    if (opts.scheduler === 'reactive')
      this.stabilization = new StabilizationTimer({
        delayMs: opts.resourceStabilizationMs ?? DEFAULT_RESOURCE_STABILIZATION_MS,
        onStable: (causes) => void this.scaleUp(causes.join(', ')),
      });
    if (this.stabilization)
      opts.log.info(
        {
          scheduler: 'reactive',
          resourceStabilizationMs: opts.resourceStabilizationMs ?? DEFAULT_RESOURCE_STABILIZATION_MS,
        },
        'reactive mode: jobs rescale to the slots available',
      );
  }

  get rpcPort(): number {
    return this.port;
  }

  /** Connects to Redis, loads known jobs, starts the RPC server. @throws EngineError REDIS_UNAVAILABLE */
  async start(): Promise<void> {
    await this.store.connect(this.opts.config.redisUrl);
    await this.recoverJobs();
    const proto = fluxoProto();
    this.server.addService(proto.JobManagerService.service, {
      registerTaskManager: handleUnary((req: RegisterTaskManagerRequest) => this.registerTaskManager(req)),
      heartbeat: (call: grpc.ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>) => this.onHeartbeatStream(call),
      reportTaskState: handleUnary((req: ReportTaskStateRequest) => this.onTaskState(req)),
      submitJob: handleUnary((req: SubmitJobRequest) => this.submit(req.specJson, req.fromSavepoint ?? '')),
      listJobs: handleUnary(async () => ({ jobs: [...this.jobs.values()].map((j) => this.summary(j)) })),
      getJob: handleUnary(async (req: GetJobRequest) => {
        const job = this.getJob(req.jobId);
        return { job: this.summary(job), detailsJson: JSON.stringify(this.details(job)) };
      }),
      cancelJob: handleUnary(async (req: CancelJobRequest) => {
        const job = this.getJob(req.jobId);
        if (!TERMINAL.has(job.state)) await this.endJob(job, 'CANCELED', '');
        return { state: job.state };
      }),
      stopJob: handleUnary(async (req: CancelJobRequest) => ({ state: await this.stopJob(req.jobId) })),
      triggerCheckpoint: handleUnary(async (req: TriggerCheckpointRequest) => {
        const job = this.getJob(req.jobId);
        if (!job.checkpoints || job.state !== 'RUNNING') {
          throw new EngineError(
            'JOB_STATE',
            job.spec.checkpoint
              ? `job ${job.jobId} is ${job.state}, not RUNNING`
              : `job ${job.jobId} has no checkpoint: block in its spec`,
          );
        }
        const c = await job.checkpoints.triggerNow();
        return {
          checkpointId: c.checkpointId,
          durationMs: c.completedAtMs - c.triggeredAtMs,
          stateBytes: c.stateBytes,
        };
      }),
      acknowledgeCheckpoint: handleUnary(async (req: AcknowledgeCheckpointRequest) => {
        const job = this.jobs.get(req.jobId);
        if (job?.attempt === req.attempt)
          job.checkpoints?.onAck(
            req.taskId,
            req.attempt,
            req.checkpointId,
            req.parts,
            req.stateBytes,
            req.alignmentMs ?? 0,
          );
        return {};
      }),
      declineCheckpoint: handleUnary(async (req: DeclineCheckpointRequest) => {
        const job = this.jobs.get(req.jobId);
        if (job?.attempt === req.attempt)
          job.checkpoints?.onDecline(req.taskId, req.attempt, req.checkpointId, req.reason, req.message);
        return {};
      }),
      triggerSavepoint: handleUnary((req: TriggerSavepointRequest) => this.triggerSavepoint(req.jobId, req.stop)),
      listSavepoints: handleUnary(async (req: ListSavepointsRequest) => ({
        savepoints: await this.listSavepoints(req.jobId || undefined),
      })),
      deleteSavepoint: handleUnary(async (req: DeleteSavepointRequest) => {
        await this.deleteSavepoint(req.savepointId);
        return {};
      }),
      listTaskManagers: handleUnary(async () => ({ taskmanagers: this.taskmanagers() })),
      shutdown: handleUnary(async () => ({})),
    });
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(
        `${this.opts.host}:${this.opts.rpcPort}`,
        serverCredentials(this.opts.security?.tls),
        (err, p) =>
          err
            ? reject(
                new EngineError('INTERNAL', `cannot listen on ${this.opts.host}:${this.opts.rpcPort}: ${err.message}`),
              )
            : resolve(p),
      );
    });
    this.monitor = setInterval(() => this.checkHeartbeats(), Math.min(500, this.opts.config.heartbeatIntervalMs));
    this.monitor.unref();
    this.opts.log.info(
      { host: this.opts.host, rpcPort: this.port, redis: redactUrl(this.opts.config.redisUrl) },
      'jobmanager listening',
    );
  }

  private stopping = false;

  /** Announces a planned shutdown: TaskManagers leaving from now on are not reported as lost. */
  prepareStop(): void {
    this.stopping = true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.monitor) clearInterval(this.monitor);
    this.stabilization?.cancel();
    for (const tm of this.tms.values()) {
      tm.heartbeat?.end();
      tm.client.close();
    }
    this.server.forceShutdown();
    await this.store.close();
    this.checkpointRedis.disconnect();
  }

  /**
   * Jobs found in Redis from an earlier JobManager: ended ones are listed; running ones are not
   * resumed yet: they are marked FAILED, keeping their checkpoints, and the failure names the
   * latest one to resubmit from.
   */
  private async recoverJobs(): Promise<void> {
    for (const id of await this.store.listIds()) {
      const rec = await this.store.load(id);
      if (!rec) continue;
      let spec: JobSpec;
      try {
        spec = JSON.parse(rec.specJson) as JobSpec;
      } catch {
        continue;
      }
      let graph: JobGraph;
      try {
        graph = buildJobGraph(spec);
      } catch {
        continue;
      }
      const job: Job = {
        jobId: rec.jobId,
        spec,
        graph,
        state: rec.state,
        attempt: rec.attempt,
        createdAtMs: rec.createdAtMs,
        endedAtMs: rec.endedAtMs,
        failure: rec.failure,
        tasks: new Map(),
        exceptions: [],
        epochBase: 0,
        lastCheckpointId: 0,
      };
      if (!TERMINAL.has(job.state)) {
        job.state = 'FAILED';
        // a new JobManager does not resume running jobs yet: their retained checkpoints do
        const latest = spec.checkpoint
          ? await this.checkpointStore.latestCompleted(asJobId(job.jobId)).catch(() => null)
          : null;
        job.failure = latest
          ? `the JobManager restarted while the job ran; resume it with fluxo submit <spec> --from-savepoint ${savepointIdOf(job.jobId, latest.checkpointId)}`
          : 'the JobManager restarted while the job ran, and it has no completed checkpoint to resume from';
        job.endedAtMs = Date.now();
        await this.store.save(this.record(job));
      }
      this.jobs.set(job.jobId, job);
    }
  }

  /** Read-only views for the status endpoints and the mini-cluster. */
  readonly status = {
    overview: () => ({
      taskmanagers: [...this.tms.values()].filter((t) => t.state === 'ALIVE').length,
      slotsTotal: [...this.tms.values()].filter((t) => t.state === 'ALIVE').reduce((a, t) => a + t.slots, 0),
      slotsFree: this.freeSlots().length,
      jobsRunning: [...this.jobs.values()].filter((j) => j.state === 'RUNNING').length,
      jobsFinished: [...this.jobs.values()].filter((j) => j.state === 'FINISHED').length,
      jobsFailed: [...this.jobs.values()].filter((j) => j.state === 'FAILED').length,
      jobsCanceled: [...this.jobs.values()].filter((j) => j.state === 'CANCELED').length,
    }),
    jobs: () => ({ jobs: [...this.jobs.values()].map((j) => this.summary(j)) }),
    job: (id: string) => {
      const job = this.getJob(id);
      return { job: this.summary(job), ...this.details(job) };
    },
    taskmanagers: () => ({ taskmanagers: this.taskmanagers() }),
    /** A snapshot of job `id` (a unique prefix of ≥ 4 characters works). @throws EngineError JOB_NOT_FOUND */
    jobView: (id: string): JobView => this.jobView(this.getJob(id)),
    /** Snapshots of every job, newest first. */
    jobViews: (): JobView[] =>
      [...this.jobs.values()].sort((a, b) => b.createdAtMs - a.createdAtMs).map((j) => this.jobView(j)),
    /** Every TaskManager the JobManager knows (ALIVE and LOST). */
    taskmanagerList: (): TaskManagerInfo[] => this.taskmanagers(),
  };

  private jobView(job: Job): JobView {
    const prefix = `${job.jobId}:${job.attempt}:`;
    return {
      summary: this.summary(job),
      startedAtMs: job.startedAtMs,
      spec: job.spec,
      graph: job.graph,
      details: this.details(job),
      latestRestore: job.latestRestore ?? null,
      rates: (taskId) => this.rates.rates(prefix + taskId, Date.now()),
    };
  }

  /**
   * Stops a running job with drain: its sources end their input, so every open window fires and
   * sinks flush; the job then ends FINISHED as its tasks finish.
   * An ended job is left as it is (its state is returned).
   * @throws EngineError JOB_STATE when the job has not started running yet.
   */
  async stopJob(jobId: string): Promise<JobState> {
    const job = this.getJob(jobId);
    if (TERMINAL.has(job.state)) return job.state;
    if (job.state !== 'RUNNING')
      throw new EngineError('JOB_STATE', `job ${job.jobId} is ${job.state}, not RUNNING yet`);
    const tmIds = new Set(
      [...job.tasks.values()].filter((t) => t.desc.vertexId === 'source').map((t) => t.taskmanagerId),
    );
    job.draining = true; // a reactive rescale would restart the sources
    await Promise.all(
      [...tmIds].map((id) =>
        unary(this.tmClient(id), 'stopSources', { jobId: job.jobId, attempt: job.attempt }, `TaskManager ${id}`),
      ),
    );
    this.opts.log.info({ jobId: job.jobId }, 'job stopping (drain)');
    return job.state;
  }

  /**
   * Takes a savepoint of a running job (`fluxo savepoint`), and with `stop` ends the job right
   * after it (`fluxo stop --savepoint`, Flink's stop-with-savepoint without drain): the sources
   * halt at the savepoint's barrier, so nothing is output after it; once it completed and the
   * sinks were told to commit, the tasks are canceled and the job ends FINISHED. If a stop's
   * savepoint fails, the halted job fails over to its latest checkpoint (under its restart strategy).
   * @throws EngineError JOB_NOT_FOUND; JOB_STATE when the job has no checkpoint: block, is not
   *   RUNNING, or the savepoint fails
   */
  async triggerSavepoint(jobId: string, stop: boolean): Promise<TriggerSavepointResponse> {
    const job = this.getJob(jobId);
    if (!job.checkpoints || job.state !== 'RUNNING') {
      throw new EngineError(
        'JOB_STATE',
        job.spec.checkpoint
          ? `job ${job.jobId} is ${job.state}, not RUNNING`
          : `job ${job.jobId} has no checkpoint: block in its spec, so it cannot take savepoints`,
      );
    }
    const attempt = job.attempt;
    const checkpoints = job.checkpoints;
    const wasHalting = checkpoints.sourcesHalting;
    let c: CompletedCheckpoint;
    try {
      c = await checkpoints.triggerSavepoint(stop);
    } catch (err) {
      // refused before any trigger went out: the job runs on untouched; after the trigger its
      // sources are halting, and only a failover gets them going again
      if (stop && !wasHalting && checkpoints.sourcesHalting && job.attempt === attempt && job.state === 'RUNNING') {
        await this.failJob(job, `stop with savepoint failed: ${(err as Error).message}`);
        throw new EngineError(
          'JOB_STATE',
          `${(err as Error).message}; the job was not stopped and fails over to its latest checkpoint`,
        );
      }
      throw err;
    }
    const info = this.savepointInfo(job, c);
    if (stop && job.attempt === attempt) {
      job.stoppedWithSavepoint = info.savepointId;
      this.opts.log.info({ jobId: job.jobId, savepoint: info.savepointId }, 'job stopped with savepoint');
      await this.endJob(job, 'FINISHED', '', { cancelTasks: true });
    }
    return { savepoint: info, state: job.state };
  }

  /**
   * Savepoints, and retained checkpoints of FAILED jobs (`retained: true`), of one job or of every
   * job this JobManager knows, oldest first: everything `submit --from-savepoint` and
   * `savepoints delete` take that outlives its job.
   */
  async listSavepoints(jobId?: string): Promise<SavepointInfo[]> {
    const jobs = jobId ? [this.getJob(jobId)] : [...this.jobs.values()];
    const out: SavepointInfo[] = [];
    for (const job of jobs) {
      if (!job.spec.checkpoint) continue;
      for (const c of await this.checkpointStore.listCompleted(asJobId(job.jobId)))
        if (c.savepoint || job.state === 'FAILED') out.push(this.savepointInfo(job, c));
    }
    return out.sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /**
   * Deletes a savepoint (or a retained checkpoint of a FAILED job): its metadata and state.
   * @throws EngineError CHECKPOINT_NOT_FOUND; JOB_STATE while a running job restored from it has
   *   no checkpoint of its own yet (it could not fail over any more)
   */
  async deleteSavepoint(savepointId: string): Promise<void> {
    const { job, checkpoint } = await this.findSavepoint(savepointId, { deletable: true });
    for (const other of this.jobs.values()) {
      if (TERMINAL.has(other.state) || other.restoreFrom?.id !== savepointId) continue;
      const own = await this.checkpointStore.latestCompleted(asJobId(other.jobId));
      if (!own)
        throw new EngineError(
          'JOB_STATE',
          `job ${other.jobId} (${other.spec.name}) was restored from ${savepointId} and has no checkpoint of its own yet: ` +
            'a failover would need it; delete it once that job has completed a checkpoint, or has ended',
        );
    }
    await this.checkpointStore.delete(asJobId(job.jobId), checkpoint.checkpointId);
    this.opts.log.info({ savepoint: savepointId }, 'savepoint deleted');
  }

  /**
   * The completed checkpoint `id` names, and the job that took it. To restore from: any savepoint
   * or completed checkpoint. To delete (`deletable`): a savepoint, or a checkpoint of a FAILED job.
   * @throws EngineError CHECKPOINT_NOT_FOUND
   */
  private async findSavepoint(
    id: string,
    o: { deletable: boolean },
  ): Promise<{ job: Job; checkpoint: CompletedCheckpoint }> {
    const { jobId, checkpointId } = parseSavepointId(id);
    const job = this.jobs.get(jobId);
    const all = job ? await this.checkpointStore.listCompleted(asJobId(jobId)) : [];
    const fits = (c: CompletedCheckpoint) => c.savepoint || !o.deletable || job?.state === 'FAILED';
    const checkpoint = all.find((c) => c.checkpointId === checkpointId && fits(c));
    if (!job || !checkpoint) {
      const have = all.filter(fits).map((c) => savepointIdOf(jobId, c.checkpointId));
      throw new EngineError(
        'CHECKPOINT_NOT_FOUND',
        !job
          ? `no savepoint ${id}: this cluster has no job ${jobId}`
          : `no savepoint or retained checkpoint ${id}` +
              (have.length > 0 ? ` (job ${jobId} has ${have.join(', ')})` : ''),
      );
    }
    return { job, checkpoint };
  }

  private savepointInfo(job: Job, c: CompletedCheckpoint): SavepointInfo {
    const windowVertex = job.graph.vertices.find((v) => v.id === 'window');
    return {
      savepointId: savepointIdOf(job.jobId, c.checkpointId),
      jobId: job.jobId,
      jobName: job.spec.name,
      checkpointId: c.checkpointId,
      createdAtMs: c.completedAtMs,
      durationMs: c.completedAtMs - c.triggeredAtMs,
      stateBytes: c.stateBytes,
      parallelism: windowVertex?.parallelism ?? job.spec.parallelism,
      retained: !c.savepoint,
    };
  }

  /** Cancels a job with a reason (e.g. the mini-cluster was interrupted). No-op for an ended job. */
  async cancelJob(jobId: string, reason: string): Promise<void> {
    const job = this.getJob(jobId);
    if (!TERMINAL.has(job.state)) await this.endJob(job, 'CANCELED', reason);
  }

  /** Deletes every key of this cluster's namespace from Redis (the mini-cluster's records after a run). */
  async forgetCluster(): Promise<void> {
    await this.store.deleteNamespace();
  }

  /**
   * Submits a validated spec (the mini-cluster and the REST API call this in-process).
   * @param fromSavepoint `<job id>-<checkpoint id>` to start from; '' (default) = none
   * @throws EngineError SPEC_INVALID, CHECKPOINT_NOT_FOUND, SAVEPOINT_INCOMPATIBLE, REDIS_UNAVAILABLE
   */
  submitJob(spec: JobSpec, fromSavepoint = ''): Promise<{ jobId: string }> {
    return this.submit(JSON.stringify(spec), fromSavepoint);
  }

  private getJob(jobId: string): Job {
    const exact = this.jobs.get(jobId);
    if (exact) return exact;
    const matches = jobId.length >= 4 ? [...this.jobs.values()].filter((j) => j.jobId.startsWith(jobId)) : [];
    if (matches.length > 1) {
      throw new EngineError(
        'JOB_NOT_FOUND',
        `job id prefix ${jobId} matches ${matches.length} jobs; give more of the id`,
      );
    }
    if (matches.length === 0)
      throw new EngineError(
        'JOB_NOT_FOUND',
        jobId.length < 4 ? `no job ${jobId} (give the job id, or at least its first 4 characters)` : `no job ${jobId}`,
      );
    return matches[0];
  }

  private record(job: Job) {
    return {
      jobId: job.jobId,
      name: job.spec.name,
      state: job.state,
      attempt: job.attempt,
      createdAtMs: job.createdAtMs,
      endedAtMs: job.endedAtMs,
      failure: job.failure,
      parallelism: job.spec.parallelism,
      specJson: JSON.stringify(job.spec),
    };
  }

  private summary(job: Job): JobSummary {
    return {
      jobId: job.jobId,
      name: job.spec.name,
      state: job.state,
      attempt: job.attempt,
      createdAtMs: job.createdAtMs,
      endedAtMs: job.endedAtMs,
      // the failure only while it describes the current state: why the job failed, restarts,
      // was canceled, or (CREATED) waits for slots; a recovered RUNNING or a FINISHED job's
      // earlier failures are in the exceptions
      failure:
        job.state === 'CREATED' && job.waitingFor
          ? job.waitingFor
          : job.state === 'RUNNING' || job.state === 'FINISHED'
            ? ''
            : job.failure,
      parallelism: job.spec.parallelism,
    };
  }

  /** Per-task state and counters plus job totals (the CLI's status and summary). */
  details(job: Job) {
    const tasks = [...job.tasks.values()].map((t) => ({
      taskId: t.desc.taskId,
      vertex: t.desc.vertexId,
      subtask: t.desc.subtask,
      taskmanagerId: t.taskmanagerId,
      state: t.state,
      error: t.error,
      counters: t.counters,
    }));
    const sum = (vertex: string, f: keyof TaskCounters): number =>
      tasks.filter((t) => t.vertex === vertex).reduce((a, t) => a + (t.counters ? (t.counters[f] as number) : 0), 0);
    // the first keyed stage sees the readings; the last one (a rollup, or the same) feeds the sink
    const keyed = job.graph.vertices.filter((v) => isKeyedVertex(v.id)).map((v) => v.id);
    const lastKeyed = keyed.at(-1) ?? 'window';
    const totals = {
      linesRead: sum('source', 'linesRead'),
      readingsIn: sum('source', 'recordsIn'),
      rejected: sum('source', 'rejected') + keyed.reduce((a, v) => a + sum(v, 'rejected'), 0),
      filtered: sum('source', 'filtered'),
      late: sum('window', 'late'),
      windowsEmitted: sum('window', 'windowsEmitted'),
      sensors: sum('window', 'keys'),
      resultsWritten: job.graph.vertices.some((v) => v.id === 'sink')
        ? sum('sink', 'rowsWritten')
        : sum(lastKeyed, 'rowsWritten'),
      deadLettersWritten: sum('deadletters', 'rowsWritten'),
      lateWritten: sum('late', 'rowsWritten'),
    };
    return {
      vertices: job.graph.vertices.map((v) => ({ id: v.id, name: v.name, parallelism: v.parallelism })),
      tasks,
      totals,
      outputs: outputPaths(job.spec),
      checkpoints: job.checkpoints?.stats() ?? job.previousCheckpoints ?? null,
      exceptions: job.exceptions,
      fromSavepoint: job.restoreFrom?.id ?? null,
      stoppedWithSavepoint: job.stoppedWithSavepoint ?? null,
    };
  }

  private taskmanagers(): TaskManagerInfo[] {
    return [...this.tms.values()].map((tm) => ({
      taskmanagerId: tm.id,
      controlAddress: tm.address,
      slotsTotal: tm.slots,
      slotsUsed: tm.used.size,
      lastHeartbeatMs: tm.lastHeartbeatMs,
      state: tm.state,
      rssBytes: tm.rssBytes,
      heapUsedBytes: tm.heapUsedBytes,
      pid: tm.pid,
      hostname: tm.hostname,
    }));
  }

  private async registerTaskManager(req: RegisterTaskManagerRequest) {
    const old = this.tms.get(req.taskmanagerId);
    if (old && old.state === 'ALIVE') await this.loseTaskManager(old, 'it registered again');
    const client = new (fluxoProto().TaskManagerService)(
      req.controlAddress,
      channelCredentials(this.opts.security?.tls),
      {
        ...channelOptions,
        ...clientSecurityOptions(this.opts.security),
      },
    );
    this.tms.set(req.taskmanagerId, {
      id: req.taskmanagerId,
      address: req.controlAddress,
      slots: req.slots.length,
      used: new Map(),
      lastHeartbeatMs: Date.now(),
      rssBytes: 0,
      heapUsedBytes: 0,
      pid: req.pid,
      hostname: req.hostname,
      state: 'ALIVE',
      client,
    });
    this.opts.log.info(
      { taskmanagerId: req.taskmanagerId, address: req.controlAddress, slots: req.slots.length },
      'taskmanager registered',
    );
    this.wakeWaiters();
    this.stabilization?.poke('TaskManagers joined');
    return {
      clusterId: this.opts.config.clusterId,
      heartbeatIntervalMs: this.opts.config.heartbeatIntervalMs,
      redisUrl: this.opts.config.redisUrl,
    };
  }

  private onHeartbeatStream(call: grpc.ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>): void {
    let tm: TaskManagerEntry | undefined;
    call.on('data', (hb: HeartbeatRequest) => {
      const entry = this.tms.get(hb.taskmanagerId);
      if (entry?.state !== 'ALIVE') {
        call.write({ known: false });
        return;
      }
      tm = entry;
      entry.heartbeat = call;
      entry.lastHeartbeatMs = Date.now();
      entry.rssBytes = hb.rssBytes;
      entry.heapUsedBytes = hb.heapUsedBytes;
      for (const t of hb.tasks) {
        const [jobId, attempt, taskId] = t.taskId.split(':');
        const job = this.jobs.get(jobId);
        const task = job && job.attempt === Number(attempt) ? job.tasks.get(taskId) : undefined;
        if (task && !TERMINAL.has(task.state as JobState)) {
          task.counters = JSON.parse(t.countersJson) as TaskCounters;
          this.rates.observe(t.taskId, task.counters, entry.lastHeartbeatMs);
        }
      }
      call.write({ known: true });
    });
    const broken = (why: string): void => {
      if (tm && tm.state === 'ALIVE' && tm.heartbeat === call) void this.loseTaskManager(tm, why);
    };
    call.on('error', (err) => broken(`heartbeat stream broke (${err.message})`));
    // grpc-js reports a peer whose connection dropped (a killed process) as 'cancelled' on the server side
    call.on('cancelled', () => broken('heartbeat stream closed (connection lost)'));
    call.on('end', () => {
      broken('heartbeat stream closed');
      call.end();
    });
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    for (const tm of this.tms.values()) {
      if (tm.state === 'ALIVE' && now - tm.lastHeartbeatMs > this.opts.config.heartbeatTimeoutMs) {
        void this.loseTaskManager(
          tm,
          `no heartbeat for ${now - tm.lastHeartbeatMs} ms (timeout ${this.opts.config.heartbeatTimeoutMs} ms)`,
        );
      }
    }
    for (const job of this.jobs.values()) {
      if (
        job.state === 'CREATED' &&
        job.waitingSince &&
        !this.isReactive(job) && // reactive jobs wait for slots as long as it takes (Flink's resource-wait-timeout -1)
        now - job.waitingSince > (this.opts.slotWaitMs ?? this.opts.config.slotWaitMs)
      ) {
        void this.endJob(job, 'FAILED', `NO_RESOURCES: ${job.waitingFor}`);
      }
    }
  }

  /** Marks a TaskManager lost and fails every job that had tasks on it (recovery comes with checkpoints). */
  private async loseTaskManager(tm: TaskManagerEntry, why: string): Promise<void> {
    if (tm.state === 'LOST') return;
    tm.state = 'LOST';
    (this.stopping ? this.opts.log.info.bind(this.opts.log) : this.opts.log.warn.bind(this.opts.log))(
      { taskmanagerId: tm.id, address: tm.address, reason: why },
      'taskmanager lost',
    );
    const jobs = new Set(tm.used.values());
    tm.used.clear();
    tm.client.close();
    if (this.stopping) return; // a planned shutdown ends its jobs itself
    for (const jobId of jobs) {
      const job = this.jobs.get(jobId);
      if (job && !TERMINAL.has(job.state))
        await this.failJob(job, `TASKMANAGER_LOST: TaskManager ${tm.id} (${tm.address}) lost: ${why}`);
    }
  }

  /**
   * Accepts a job: validates the spec's graph, records the job in Redis, schedules it.
   * @param fromSavepoint `<job id>-<checkpoint id>` of a savepoint or retained checkpoint to start
   *   from ('' = none): its state must fit the job (`savepointProblems`).
   * @throws EngineError SPEC_INVALID, CHECKPOINT_NOT_FOUND, SAVEPOINT_INCOMPATIBLE, REDIS_UNAVAILABLE
   */
  private async submit(specJson: string, fromSavepoint = ''): Promise<{ jobId: string }> {
    let spec: JobSpec;
    try {
      spec = JSON.parse(specJson) as JobSpec;
    } catch (err) {
      throw new EngineError('SPEC_INVALID', `job spec is not JSON: ${(err as Error).message}`);
    }
    // a redis sink without its own url writes to the cluster's Redis (the JobManager's --redis),
    // not to whatever REDIS_URL each TaskManager happens to have
    if (spec.sink.type === 'redis' && !spec.sink.url)
      spec = { ...spec, sink: { ...spec.sink, url: this.opts.config.redisUrl } };
    // the cluster's checkpoint defaults, for a spec without its own checkpoint: block
    if (!spec.checkpoint && this.opts.config.checkpoint)
      spec = { ...spec, checkpoint: { ...this.opts.config.checkpoint } };
    const graph = buildJobGraph(spec);
    let restoreFrom: Job['restoreFrom'];
    let epochBase = 0;
    if (fromSavepoint !== '') {
      const { checkpoint, job: old } = await this.findSavepoint(fromSavepoint, { deletable: false });
      const problems = savepointProblems(old.spec, old.graph, spec, graph);
      if (problems.length > 0)
        throw new EngineError(
          'SAVEPOINT_INCOMPATIBLE',
          `the state of ${fromSavepoint} (job ${old.spec.name}) does not fit this job`,
          { problems },
        );
      restoreFrom = { checkpoint, spec: old.spec, id: fromSavepoint };
      // the new job's sinks must fence every attempt of the old one (same files, same keys)
      epochBase = Math.max(checkpoint.epoch, old.attempt);
    }
    const jobId = randomBytes(8).toString('hex');
    const job: Job = {
      jobId,
      spec,
      graph,
      state: 'CREATED',
      attempt: 1,
      createdAtMs: Date.now(),
      endedAtMs: 0,
      failure: '',
      tasks: new Map(),
      exceptions: [],
      restoreFrom,
      epochBase,
      lastCheckpointId: 0,
      // throws SPEC_INVALID for a bad restart block, before anything is recorded
      restartStrategy: spec.checkpoint
        ? restartStrategy((spec.restart ?? { type: 'exponential-delay' }) as RestartStrategyConfig)
        : undefined,
    };
    // the record is written before the job exists here: a submit that cannot be recorded leaves nothing behind
    try {
      await this.store.save(this.record(job));
    } catch (err) {
      throw new EngineError(
        'REDIS_UNAVAILABLE',
        `cannot record the job in Redis at ${redactUrl(this.opts.config.redisUrl)}: ${(err as Error).message}; the job was not submitted`,
        { cause: err, retryable: true },
      );
    }
    this.jobs.set(jobId, job);
    this.opts.log.info(
      { jobId, name: spec.name, slots: slotsNeeded(graph), fromSavepoint: fromSavepoint || undefined },
      'job submitted',
    );
    if (this.opts.scheduler === 'reactive' && !spec.checkpoint)
      this.opts.log.warn(
        { jobId, parallelism: spec.parallelism },
        'job is not reactive: without a checkpoint: block a rescale would lose its state; it keeps its parallelism',
      );
    void this.schedule(job);
    return { jobId };
  }

  private wakeWaiters(): void {
    for (const job of this.jobs.values()) if (job.state === 'CREATED') void this.schedule(job);
  }

  /** Reactive mode applies to the job: the cluster runs `--scheduler reactive` and the job has checkpoints. */
  private isReactive(job: Job): boolean {
    return this.opts.scheduler === 'reactive' && job.spec.checkpoint !== undefined;
  }

  /** Slots the job holds now. */
  private heldSlots(job: Job): number {
    let n = 0;
    for (const tm of this.tms.values()) for (const jid of tm.used.values()) if (jid === job.jobId) n++;
    return n;
  }

  /**
   * Reactive mode, before a job is deployed: sets its spec and graph to the target parallelism for
   * `free` slots (at most `job.rescale.slots` when a scale-up reserved them), and adds an
   * exceptions entry (`rescale 3 → 2: TaskManagers left`) when an earlier attempt ran at another.
   * Synchronous, so the slots it counted are still free when schedule() reserves them.
   * @returns `deploy`; `wait` when too few slots are free (`waitingFor` says for what); else why
   *   the job cannot be deployed at that parallelism (it must fail)
   */
  private applyReactiveParallelism(job: Job, free: number): string {
    const budget = Math.min(free, job.rescale?.slots ?? free);
    const target = targetParallelism(reactiveShape(job.spec, job.graph), budget);
    if ('minSlots' in target) {
      job.waitingSince ??= Date.now();
      job.waitingFor = `waiting for slots: needs at least ${target.minSlots} (one per source split), ${free} free`;
      this.opts.log.info({ jobId: job.jobId, need: target.minSlots, free }, 'job waiting for slots');
      return 'wait';
    }
    const from = job.spec.parallelism;
    const to = target.parallelism;
    const lostTm = job.exceptions.at(-1)?.reason.startsWith('TASKMANAGER_LOST') === true;
    const cause =
      job.rescale?.cause ?? (to > from ? 'more slots free' : lostTm ? 'TaskManagers left' : 'fewer slots free');
    job.rescale = undefined;
    if (!reactiveShape(job.spec, job.graph).keyed) return 'deploy';
    try {
      const spec = reactiveSpec(job.spec, to);
      job.graph = buildJobGraph(spec);
      job.spec = spec;
    } catch (err) {
      return `reactive rescale to parallelism ${to}: ${(err as Error).message}`;
    }
    if (job.startedAtMs !== undefined && to !== from) {
      const reason = rescaleReason(from, to, cause);
      job.exceptions.push({ timeMs: Date.now(), attempt: job.attempt, reason });
      this.opts.log.info({ jobId: job.jobId, attempt: job.attempt, from, to, cause }, 'job rescaled');
    }
    return 'deploy';
  }

  /**
   * Reactive mode, once TaskManagers stopped joining (or another job freed slots) for the
   * stabilization timeout: every RUNNING job with checkpoints that can run at a higher
   * parallelism on the slots it holds plus the free ones is rescaled: canceled and redeployed as
   * attempt + 1 from its latest completed checkpoint. Oldest job first; each takes only slots no
   * earlier one took. A job being stopped (drain or stop-with-savepoint) is left alone.
   */
  private async scaleUp(cause: string): Promise<void> {
    let free = this.freeSlots().length;
    const jobs = [...this.jobs.values()]
      .filter((j) => j.state === 'RUNNING' && !j.scheduling && !j.draining && this.isReactive(j))
      .filter((j) => !j.checkpoints?.sourcesHalting)
      .sort((a, b) => a.createdAtMs - b.createdAtMs);
    for (const job of jobs) {
      const held = this.heldSlots(job);
      const target = targetParallelism(reactiveShape(job.spec, job.graph), held + free);
      if ('minSlots' in target || target.parallelism <= job.spec.parallelism) continue;
      free -= Math.max(0, target.slots - held);
      job.rescale = { cause, slots: target.slots };
      await this.failJob(job, rescaleReason(job.spec.parallelism, target.parallelism, cause), { rescale: true });
    }
  }

  private freeSlots(): SlotRef[] {
    const alive = [...this.tms.values()].filter((t) => t.state === 'ALIVE');
    const out: SlotRef[] = [];
    const max = Math.max(0, ...alive.map((t) => t.slots));
    // interleave TaskManagers so parallel subtasks spread over processes
    for (let s = 0; s < max; s++) {
      for (const tm of alive)
        if (s < tm.slots && !tm.used.has(s)) out.push({ taskmanagerId: tm.id, slot: s, dataAddress: tm.address });
    }
    return out;
  }

  /**
   * Deploys a CREATED job if enough slots are free, else leaves it waiting (it is retried when
   * slots are freed or TaskManagers register). Slots are chosen and reserved synchronously, so
   * jobs scheduled at the same time never get the same slot.
   */
  private async schedule(job: Job): Promise<void> {
    if (job.scheduling || job.state !== 'CREATED') return;
    job.scheduling = true;
    try {
      // a job with checkpoints restores the latest completed one (read before slots are chosen,
      // so choosing and reserving them stays synchronous)
      const restored = job.spec.checkpoint ? await this.checkpointStore.listCompleted(asJobId(job.jobId)) : [];
      // the job's own latest checkpoint, else the savepoint it was submitted from
      const latest = restored.length > 0 ? restored[restored.length - 1] : job.restoreFrom?.checkpoint;
      const foreign = restored.length === 0 ? job.restoreFrom?.spec : undefined;
      if (job.state !== 'CREATED') return;
      // reactive mode: the parallelism follows the free slots (jobmanager/reactive.ts)
      if (this.isReactive(job)) {
        const r = this.applyReactiveParallelism(job, this.freeSlots().length);
        if (r !== 'deploy') {
          if (r !== 'wait') await this.endJob(job, 'FAILED', r);
          return;
        }
      }
      const need = slotsNeeded(job.graph);
      const free = this.freeSlots();
      if (free.length < need) {
        job.waitingSince ??= Date.now();
        job.waitingFor = `waiting for slots: needs ${need}, ${free.length} free`;
        this.opts.log.info({ jobId: job.jobId, need, free: free.length }, 'job waiting for slots');
        return;
      }
      job.waitingSince = undefined;
      job.waitingFor = undefined;
      const slots = free.slice(0, need);
      const descs = buildDeployment(job.jobId, job.attempt, job.spec, job.graph, slots);
      for (const d of descs) {
        if (latest) d.restore = this.restoreFor(d, latest, foreign);
        if (job.epochBase > 0) d.epochBase = job.epochBase;
      }
      for (const s of slots) this.tms.get(s.taskmanagerId)?.used.set(s.slot, job.jobId);
      const byTm = new Map<string, TaskDeploymentDescriptor[]>();
      for (const d of descs) {
        const tmId = d.taskmanagerId;
        job.tasks.set(d.taskId, {
          desc: { taskId: d.taskId, vertexId: d.vertexId, subtask: d.subtask },
          taskmanagerId: tmId,
          state: 'DEPLOYING',
        });
        const list = byTm.get(tmId) ?? [];
        list.push(d);
        byTm.set(tmId, list);
      }
      // a lower parallelism than the checkpoint's or savepoint's (reactive scale-in, `submit
      // --from-savepoint --parallelism`): the vanished subtasks' redis sinks' pending output
      const orphans = latest ? orphanedSinkParts(latest, new Set(job.tasks.keys())) : [];
      if (latest && orphans.length > 0) {
        try {
          await commitOrphanedSinkParts({
            store: this.checkpointStore,
            checkpoint: latest,
            parts: orphans,
            graph: job.graph,
            jobId: job.jobId,
            epoch: sinkEpoch({ attempt: job.attempt, epochBase: job.epochBase }),
            claim: job.attempt <= 1,
            defaultRedisUrl: this.opts.config.redisUrl,
          });
        } catch (err) {
          await this.failJob(
            job,
            `scale-in: cannot write the pending output of ${orphans.map((x) => x.taskKey).join(', ')}: ${(err as Error).message}`,
          );
          return;
        }
        if (job.state !== 'CREATED') return;
      }
      try {
        await Promise.all(
          [...byTm].map(([tmId, list]) =>
            unary(
              this.tmClient(tmId),
              'deployTasks',
              { jobId: job.jobId, attempt: job.attempt, tasksJson: JSON.stringify(list) },
              `TaskManager ${tmId}`,
              30_000,
            ),
          ),
        );
        if (job.state !== 'CREATED') return;
        await Promise.all(
          [...byTm.keys()].map((tmId) =>
            unary(this.tmClient(tmId), 'startTasks', { jobId: job.jobId, attempt: job.attempt }, `TaskManager ${tmId}`),
          ),
        );
      } catch (err) {
        await this.endJob(job, 'FAILED', `deploy failed: ${(err as Error).message}`);
        return;
      }
      if (job.state !== 'CREATED') {
        // canceled or failed while its tasks were starting: make sure none of them keeps running
        await this.cancelTasks(job, new Set(byTm.keys()));
        return;
      }
      for (const t of job.tasks.values()) if (t.state === 'DEPLOYING') t.state = 'RUNNING';
      if (latest)
        job.latestRestore = {
          checkpointId: latest.checkpointId,
          attempt: job.attempt,
          restoredAtMs: Date.now(),
          fromSavepoint: restored.length === 0,
        };
      this.rates.forget(`${job.jobId}:${job.attempt - 1}:`);
      job.startedAtMs ??= Date.now();
      // the state turns RUNNING synchronously in transition(); the coordinator starts in the same
      // turn, so a savepoint or checkpoint request never sees a RUNNING job without one
      const saved = this.transition(job, 'RUNNING');
      if (job.spec.checkpoint && (job.state as JobState) === 'RUNNING') this.startCheckpointing(job, byTm, restored);
      await saved;
    } finally {
      job.scheduling = false;
    }
  }

  /**
   * A job failed (a task failed, its TaskManager was lost, too many checkpoints failed). A job
   * with checkpoints fails over if its restart strategy allows: all its tasks are canceled and
   * redeployed, after the strategy's delay, as attempt + 1 restoring the latest completed
   * checkpoint (one failover region: the keyed exchange connects every task). Otherwise it FAILS.
   * @param o.rescale a reactive rescale (jobmanager/reactive.ts), not a failure: restarts at once,
   *   not counted by the restart strategy; `job.rescale` says at what parallelism
   */
  private async failJob(job: Job, reason: string, o: { rescale?: boolean } = {}): Promise<void> {
    if (TERMINAL.has(job.state) || job.state === 'RESTARTING') return;
    const decision = o.rescale ? { restart: true as const, delayMs: 0 } : job.restartStrategy?.onFailure(Date.now());
    if (!decision?.restart) {
      const why = decision ? `${reason} (no restart: ${decision.reason})` : reason;
      job.exceptions.push({ timeMs: Date.now(), attempt: job.attempt, reason: why });
      await this.endJob(job, 'FAILED', why);
      return;
    }
    // a rescale's entry is written when the new attempt is deployed (schedule), with its parallelism
    if (!o.rescale)
      job.exceptions.push({ timeMs: Date.now(), attempt: job.attempt, reason, restartDelayMs: decision.delayMs });
    if (job.checkpoints) {
      job.checkpoints.stop('JOB_FAILOVER');
      job.lastCheckpointId = Math.max(job.lastCheckpointId, job.checkpoints.lastTriggeredId);
      job.previousCheckpoints = job.checkpoints.stats();
    }
    job.checkpoints = undefined;
    const tmIds = new Set([...job.tasks.values()].map((t) => t.taskmanagerId));
    this.releaseSlots(job);
    job.failure = reason;
    await this.transition(job, 'RESTARTING');
    await this.cancelTasks(job, tmIds);
    job.tasks.clear();
    if (o.rescale) this.opts.log.info({ jobId: job.jobId, attempt: job.attempt, reason }, 'job rescaling');
    else
      this.opts.log.warn(
        { jobId: job.jobId, attempt: job.attempt, reason, restartInMs: decision.delayMs },
        'job failing over',
      );
    const timer = setTimeout(() => {
      if (job.state !== 'RESTARTING') return;
      job.attempt++;
      void this.transition(job, 'CREATED').then(() => this.schedule(job));
    }, decision.delayMs);
    timer.unref();
    this.wakeWaiters();
  }

  /**
   * For each task of a new attempt, the parts of `from` it must load: a source its split's
   * position, a window subtask the key groups of its range (from whichever old task held them, so
   * a different parallelism works too), a sink its committer state.
   * @param foreignSpec the spec of the job that took `from`, when it is another job's savepoint:
   *   a sink then gets its committer state only if it writes to the same place as that job's sink
   *   of the same role (it goes on with that output); elsewhere it starts a fresh output.
   */
  private restoreFor(
    d: TaskDeploymentDescriptor,
    from: CompletedCheckpoint,
    foreignSpec?: JobSpec,
  ): TaskDeploymentDescriptor['restore'] {
    const owner = new Map<string, string>();
    for (const t of from.tasks) for (const p of t.parts) if (!p.startsWith('sink-')) owner.set(p, t.taskKey);
    const parts: { taskKey: string; part: string }[] = [];
    if (d.vertexId === 'source') {
      const p = splitPart('source', d.subtask);
      const k = owner.get(p);
      if (k) parts.push({ taskKey: k, part: p });
    }
    if (isKeyedVertex(d.vertexId)) {
      const range = keyGroupRange(d.subtask, d.parallelism, d.graph.maxParallelism);
      for (let kg = range.start; kg <= range.end; kg++) {
        const p = keyGroupPart(d.vertexId, kg);
        const k = owner.get(p);
        if (k) parts.push({ taskKey: k, part: p });
      }
    }
    const mine = from.tasks.find((t) => t.taskKey === d.taskId);
    for (const p of mine?.parts ?? []) {
      if (!p.startsWith('sink-')) continue;
      if (foreignSpec && !sameSinkTarget(p, foreignSpec, d.spec)) continue;
      parts.push({ taskKey: d.taskId, part: p });
    }
    return {
      jobId: from.jobId === d.jobId ? undefined : from.jobId,
      checkpointId: from.checkpointId,
      epoch: from.epoch,
      parts,
    };
  }

  private startCheckpointing(
    job: Job,
    byTm: Map<string, TaskDeploymentDescriptor[]>,
    restored: CompletedCheckpoint[],
  ): void {
    const cfg = job.spec.checkpoint;
    if (!cfg) return;
    const sourceTms = [...byTm].filter(([, list]) => list.some((d) => d.vertexId === 'source')).map(([tmId]) => tmId);
    job.checkpoints = new JobCheckpointing({
      jobId: job.jobId,
      attempt: job.attempt,
      config: cfg,
      sourceTasks: [...job.tasks.values()].filter((t) => t.desc.vertexId === 'source').map((t) => t.desc.taskId),
      tasks: [...job.tasks.keys()],
      store: this.checkpointStore,
      restored,
      // ids are never reused within a job; after another job's savepoint, its sinks' commits need ids above it
      firstCheckpointId: Math.max(job.lastCheckpointId, job.restoreFrom?.checkpoint.checkpointId ?? 0) + 1,
      prior: job.previousCheckpoints,
      triggerSources: async (checkpointId, timestampMs, flags, haltSources) => {
        await Promise.all(
          sourceTms.map((tmId) =>
            unary(
              this.tmClient(tmId),
              'triggerCheckpoint',
              { jobId: job.jobId, attempt: job.attempt, checkpointId, timestampMs, flags, haltSources },
              `TaskManager ${tmId}`,
            ),
          ),
        );
      },
      notifyComplete: async (checkpointId) => {
        await Promise.all(
          [...byTm.keys()].map((tmId) =>
            unary(
              this.tmClient(tmId),
              'notifyCheckpointComplete',
              { jobId: job.jobId, attempt: job.attempt, checkpointId },
              `TaskManager ${tmId}`,
            ),
          ),
        );
      },
      onFailuresExceeded: (reason) => {
        void this.failJob(
          job,
          `CHECKPOINT_FAILURES: more than ${cfg.tolerableFailures} failed checkpoints in a row; last: ${reason}`,
        );
      },
      log: this.opts.log,
    });
    job.checkpoints.start();
  }

  private tmClient(id: string): grpc.Client {
    const tm = this.tms.get(id);
    if (tm?.state !== 'ALIVE') throw new EngineError('TASKMANAGER_LOST', `TaskManager ${id} is gone`);
    return tm.client;
  }

  private async onTaskState(req: ReportTaskStateRequest): Promise<Record<string, never>> {
    const job = this.jobs.get(req.jobId);
    if (!job || job.attempt !== req.attempt) return {};
    const task = job.tasks.get(req.taskId);
    if (!task) return {};
    task.state = req.state;
    if (req.countersJson) {
      task.counters = JSON.parse(req.countersJson) as TaskCounters;
      this.rates.observe(`${job.jobId}:${job.attempt}:${req.taskId}`, task.counters, Date.now());
    }
    job.checkpoints?.taskEnded(req.taskId);
    if (req.state === 'FAILED') {
      task.error = `${req.errorCode}: ${req.errorMessage}`;
      if (!TERMINAL.has(job.state))
        await this.failJob(job, `task ${req.taskId} on ${req.taskmanagerId} failed: ${task.error}`);
    } else if (
      req.state === 'FINISHED' &&
      [...job.tasks.values()].every((t) => t.state === 'FINISHED') &&
      !TERMINAL.has(job.state)
    ) {
      await this.endJob(job, 'FINISHED', '');
    }
    return {};
  }

  /** Moves a job to `state` and records it in Redis. An ended job never changes state again. */
  private async transition(job: Job, state: JobState): Promise<void> {
    const from = job.state;
    if (TERMINAL.has(from)) return;
    job.state = state;
    this.opts.log.info({ jobId: job.jobId, from, to: state, failure: job.failure || undefined }, 'job state changed');
    try {
      await this.store.save(this.record(job));
    } catch (err) {
      this.opts.log.error({ err, jobId: job.jobId }, 'cannot write job record to redis');
    }
  }

  /**
   * Ends a job: cancels its remaining tasks, frees its slots, records the final state. A job that
   * ends FINISHED or CANCELED has its checkpoints deleted (savepoints stay); a FAILED job keeps
   * them, so it can be resubmitted from its latest one (`--from-savepoint <job>-<id>`), like
   * Flink's retained checkpoints.
   * @param o.cancelTasks cancel the tasks even for FINISHED (stop-with-savepoint: they still run)
   */
  private async endJob(job: Job, state: JobState, failure: string, o: { cancelTasks?: boolean } = {}): Promise<void> {
    if (TERMINAL.has(job.state)) return;
    job.checkpoints?.stop('SHUTDOWN');
    job.failure = failure;
    job.waitingFor = undefined;
    job.waitingSince = undefined;
    job.endedAtMs = Date.now();
    const tmIds = new Set([...job.tasks.values()].map((t) => t.taskmanagerId));
    this.releaseSlots(job);
    this.rates.forget(`${job.jobId}:`);
    await this.transition(job, state);
    if (state !== 'FINISHED' || o.cancelTasks) {
      for (const t of job.tasks.values()) if (!TERMINAL.has(t.state as JobState)) t.state = 'CANCELED';
      await this.cancelTasks(job, tmIds);
    }
    this.wakeWaiters();
    if (tmIds.size > 0) this.stabilization?.poke('slots freed');
    if (job.spec.checkpoint && state !== 'FAILED') {
      await job.checkpoints?.settled(); // a metadata write in flight lands first, then goes too
      await this.discardCheckpoints(job);
    }
  }

  /** Deletes an ended job's checkpoints, keeping its savepoints (best effort; logged). */
  private async discardCheckpoints(job: Job): Promise<void> {
    try {
      const id = asJobId(job.jobId);
      const savepoints = new Set(
        (await this.checkpointStore.listCompleted(id)).filter((c) => c.savepoint).map((c) => c.checkpointId),
      );
      // every id with state, not only the completed ones: a task of a failed-over attempt may
      // have written the state of an aborted checkpoint after the abort deleted it
      for (const c of await this.checkpointStore.stateIds(id))
        if (!savepoints.has(c)) await this.checkpointStore.delete(id, c);
    } catch (err) {
      this.opts.log.warn(
        { jobId: job.jobId, err: (err as Error).message },
        'cannot delete the checkpoints of an ended job',
      );
    }
  }

  /** Gives the job's slots back to the pool. */
  private releaseSlots(job: Job): void {
    for (const tm of this.tms.values()) for (const [slot, jid] of tm.used) if (jid === job.jobId) tm.used.delete(slot);
  }

  /** Asks every live TaskManager in `tmIds` to cancel the job's tasks (best effort; a lost one has none left). */
  private async cancelTasks(job: Job, tmIds: Set<string>): Promise<void> {
    await Promise.all(
      [...tmIds].map((id) => {
        const tm = this.tms.get(id);
        if (tm?.state !== 'ALIVE') return Promise.resolve();
        return unary(
          tm.client,
          'cancelJobTasks',
          { jobId: job.jobId, attempt: job.attempt },
          `TaskManager ${id}`,
        ).catch(() => {});
      }),
    );
  }
}

/**
 * Why the state of a savepoint taken by job `old` cannot be restored into job `next`, one line
 * per difference (empty = it can). Key groups move between subtasks freely, so the parallelism may
 * change; the number of key groups, the source's splits (its positions are byte offsets in those
 * files, or generator sequences) and the keyed state's shape (keyBy, window, aggregates, detect
 * rules, running aggregates) may not.
 * Flink refuses the same changes to keyed state and sources.
 */
export function savepointProblems(old: JobSpec, oldGraph: JobGraph, next: JobSpec, nextGraph: JobGraph): string[] {
  const p: string[] = [];
  const json = (v: unknown) => JSON.stringify(v) ?? 'none';
  if (!next.checkpoint) p.push('checkpoint: a job restored from a savepoint needs a checkpoint: block');
  if (old.maxParallelism !== next.maxParallelism)
    p.push(`maxParallelism: the savepoint has ${old.maxParallelism} key groups, the job ${next.maxParallelism}`);
  const splits = (g: JobGraph) => g.vertices.find((v) => v.id === 'source')?.parallelism ?? 0;
  if (splits(oldGraph) !== splits(nextGraph))
    p.push(
      `source: the savepoint has positions for ${splits(oldGraph)} input split(s), the job reads ${splits(nextGraph)}`,
    );
  if (old.source.type !== next.source.type)
    p.push(`source.type: the savepoint was taken reading ${old.source.type}, the job reads ${next.source.type}`);
  else if (
    old.source.type === 'file' &&
    next.source.type === 'file' &&
    json(old.source.paths) !== json(next.source.paths)
  )
    p.push(
      `source.paths: the savepoint's positions are offsets in ${old.source.paths.join(', ')}; the job reads ${next.source.paths.join(', ')}`,
    );
  // every keyed stage (rollups included), in order: its state is keyed and typed by these
  const step = (s: JobSpec, kind: 'keyBy' | 'window' | 'aggregate' | 'detect' | 'running') => {
    const all = s.steps.filter((x) => x.kind === kind);
    const body = (st: (typeof all)[number]) => {
      if (st.kind === 'keyBy') return st.fields;
      if (st.kind === 'window') return st.window;
      if (st.kind === 'detect') return st.detect;
      if (st.kind === 'running') return st.aggregates;
      return st.kind === 'aggregate' ? st.aggregates : undefined;
    };
    if (all.length === 0) return undefined;
    return all.length === 1 ? body(all[0]) : all.map(body);
  };
  for (const kind of ['keyBy', 'window', 'aggregate', 'detect', 'running'] as const) {
    const a = json(step(old, kind));
    const b = json(step(next, kind));
    if (a !== b) p.push(`steps.${kind}: the savepoint's keyed state was built with ${a}, the job has ${b}`);
  }
  return p;
}

/** The sink a `sink-<role>.committer` state part belongs to writes to the same place in both specs. */
function sameSinkTarget(part: string, a: JobSpec, b: JobSpec): boolean {
  const role = /^sink-([A-Za-z]+)\./.exec(part)?.[1];
  const pick = (s: JobSpec) => (role === 'deadLetter' ? s.deadLetter : role === 'late' ? s.lateData : s.sink);
  return JSON.stringify(pick(a)) === JSON.stringify(pick(b));
}
