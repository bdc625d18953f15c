import {
  channelOptions,
  fluxoProto,
  type GetJobResponse,
  grpc,
  type JobSummary,
  type ListJobsResponse,
  type ListTaskManagersResponse,
  type SubmitJobResponse,
  type TaskManagerInfo,
  type TriggerCheckpointResponse,
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
  /** null when the job takes no checkpoints */
  checkpoints: {
    completed: number;
    failed: number;
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

  async submit(spec: JobSpec): Promise<SubmitJobResponse> {
    return unary(this.client, 'submitJob', { specJson: JSON.stringify(spec) }, this.target);
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
