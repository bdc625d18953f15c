import {
  channelCredentials,
  channelOptions,
  clientSecurityOptions,
  explainTransportError,
  fluxoProto,
  type GetJobResponse,
  type grpc,
  type JobSummary,
  type ListJobsResponse,
  type ListSavepointsResponse,
  type ListTaskManagersResponse,
  type RpcSecurity,
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

/**
 * The CLI's one gRPC client. Errors are EngineErrors; an unreachable JobManager is
 * JOBMANAGER_UNAVAILABLE (with a hint when TLS settings do not fit the JobManager's), a refused
 * cluster token an error whose gRPC status is UNAUTHENTICATED (`isAuthRefusal`), its message
 * `the JobManager refused the cluster token: ...`.
 */
export class JobManagerClient {
  private readonly client: grpc.Client;
  private readonly target: string;

  /**
   * @param address `host:port` of the JobManager's RPC server
   * @param security TLS and cluster token (`loadRpcSecurity`); default `{}`: plaintext, no token
   */
  constructor(
    address: string,
    private readonly security: RpcSecurity = {},
  ) {
    this.target = `JobManager at ${address}`;
    this.client = new (fluxoProto().JobManagerService)(address, channelCredentials(security.tls), {
      ...channelOptions,
      ...clientSecurityOptions(security),
    });
  }

  /** One unary call; transport errors explained (TLS hints). */
  private async call<Res>(method: string, req: object, deadlineMs?: number): Promise<Res> {
    try {
      return await unary<object, Res>(this.client, method, req, this.target, deadlineMs);
    } catch (err) {
      throw explainTransportError(err, this.security);
    }
  }

  /** @param fromSavepoint `<job id>-<checkpoint id>` to restore from; default none */
  async submit(spec: JobSpec, fromSavepoint = ''): Promise<SubmitJobResponse> {
    return this.call('submitJob', { specJson: JSON.stringify(spec), fromSavepoint });
  }

  /** Takes a savepoint and waits until it completed; with `stop` the job ends right after it. */
  async savepoint(jobId: string, stop: boolean): Promise<TriggerSavepointResponse> {
    return this.call('triggerSavepoint', { jobId, stop }, 120_000);
  }

  /** @param jobId '' = every job's */
  async listSavepoints(jobId = ''): Promise<SavepointInfo[]> {
    return (await this.call<ListSavepointsResponse>('listSavepoints', { jobId })).savepoints;
  }

  async deleteSavepoint(savepointId: string): Promise<void> {
    await this.call('deleteSavepoint', { savepointId });
  }

  async listJobs(): Promise<JobSummary[]> {
    return (await this.call<ListJobsResponse>('listJobs', {})).jobs;
  }

  async getJob(jobId: string): Promise<JobDetails> {
    const res = await this.call<GetJobResponse>('getJob', { jobId });
    return { job: res.job, ...(JSON.parse(res.detailsJson) as Omit<JobDetails, 'job'>) };
  }

  async cancel(jobId: string): Promise<string> {
    return (await this.call<{ state: string }>('cancelJob', { jobId })).state;
  }

  /** Triggers a checkpoint and waits until it completed (or failed: rejects). */
  async checkpoint(jobId: string): Promise<TriggerCheckpointResponse> {
    return this.call('triggerCheckpoint', { jobId }, 120_000);
  }

  async stop(jobId: string): Promise<string> {
    return (await this.call<{ state: string }>('stopJob', { jobId })).state;
  }

  async listTaskManagers(): Promise<TaskManagerInfo[]> {
    return (await this.call<ListTaskManagersResponse>('listTaskManagers', {})).taskmanagers;
  }

  close(): void {
    this.client.close();
  }
}
