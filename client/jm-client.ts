import {
  channelOptions,
  fluxoProto,
  type GetJobResponse,
  grpc,
  type JobSummary,
  type ListJobsResponse,
  type ListSavepointsResponse,
  type ListTaskManagersResponse,
  type SavepointInfo,
  type SubmitJobResponse,
  type TaskManagerInfo,
  type TriggerCheckpointResponse,
  type TriggerSavepointResponse,
  unary,
} from '../core/rpc/index.js';
import type { JobSpec } from '../core/spec/types.js';

/** Job details as the JobManager reports them (see JobManager.details). */
export interface JobDetails {
  job: JobSummary;
  vertices: { id: string; name: string; parallelism: number }[];
  tasks: {
    taskId: string;
    vertex: string;
    subtask: number;
    taskmanagerId: string;
    state: string;
    error?: string;
    counters?: Record<string, number>;
  }[];
  totals: Record<string, number>;
  outputs: { results: string; deadLetters: string; late: string };
  /** the savepoint the job was submitted from, or null */
  fromSavepoint: string | null;
  /** the savepoint `fluxo stop --savepoint` ended the job with, or null */
  stoppedWithSavepoint: string | null;
  /** failures and restarts of the job, oldest first; absent from older JobManagers */
  exceptions?: {
    /** ms since the epoch */
    timeMs: number;
    /** the attempt that failed */
    attempt: number;
    reason: string;
    /** ms until the next attempt started; absent when the job did not restart */
    restartDelayMs?: number;
  }[];
  /** null when the job takes no checkpoints (or is between attempts) */
  checkpoints: {
    completed: number;
    failed: number;
    /** checkpoints aborted because the job ended, stopped or failed over, or subsumed (not failures); absent from older JobManagers */
    aborted?: number;
    inProgress: number;
    latest: { id: number; triggeredAtMs: number; durationMs: number; stateBytes: number } | null;
    history: {
      id: number;
      status: string;
      savepoint: boolean;
      triggeredAtMs: number;
      durationMs?: number;
      stateBytes?: number;
      failure?: string;
    }[];
  } | null;
}

/** The CLI's one gRPC client. Errors are EngineErrors; an unreachable JobManager is JOBMANAGER_UNAVAILABLE. */
export class JobManagerClient {
  private readonly client: grpc.Client;
  private readonly target: string;

  constructor(address: string) {
    this.target = `JobManager at ${address}`;
    this.client = new (fluxoProto().JobManagerService)(address, grpc.credentials.createInsecure(), channelOptions);
  }

  /** @param fromSavepoint `<job id>-<checkpoint id>` to restore from; default none */
  async submit(spec: JobSpec, fromSavepoint = ''): Promise<SubmitJobResponse> {
    return unary(this.client, 'submitJob', { specJson: JSON.stringify(spec), fromSavepoint }, this.target);
  }

  /** Takes a savepoint and waits until it completed; with `stop` the job ends right after it. */
  async savepoint(jobId: string, stop: boolean): Promise<TriggerSavepointResponse> {
    return unary(this.client, 'triggerSavepoint', { jobId, stop }, this.target, 120_000);
  }

  /** @param jobId '' = every job's */
  async listSavepoints(jobId = ''): Promise<SavepointInfo[]> {
    return (await unary<object, ListSavepointsResponse>(this.client, 'listSavepoints', { jobId }, this.target))
      .savepoints;
  }

  async deleteSavepoint(savepointId: string): Promise<void> {
    await unary(this.client, 'deleteSavepoint', { savepointId }, this.target);
  }

  async listJobs(): Promise<JobSummary[]> {
    return (await unary<object, ListJobsResponse>(this.client, 'listJobs', {}, this.target)).jobs;
  }

  async getJob(jobId: string): Promise<JobDetails> {
    const res = await unary<object, GetJobResponse>(this.client, 'getJob', { jobId }, this.target);
    return { job: res.job, ...(JSON.parse(res.detailsJson) as Omit<JobDetails, 'job'>) };
  }

  async cancel(jobId: string): Promise<string> {
    return (await unary<object, { state: string }>(this.client, 'cancelJob', { jobId }, this.target)).state;
  }

  /** Triggers a checkpoint and waits until it completed (or failed: rejects). */
  async checkpoint(jobId: string): Promise<TriggerCheckpointResponse> {
    return unary(this.client, 'triggerCheckpoint', { jobId }, this.target, 120_000);
  }

  async stop(jobId: string): Promise<string> {
    return (await unary<object, { state: string }>(this.client, 'stopJob', { jobId }, this.target)).state;
  }

  async listTaskManagers(): Promise<TaskManagerInfo[]> {
    return (await unary<object, ListTaskManagersResponse>(this.client, 'listTaskManagers', {}, this.target))
      .taskmanagers;
  }

  close(): void {
    this.client.close();
  }
}
