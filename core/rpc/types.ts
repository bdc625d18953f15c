/**
 * TypeScript shapes of the messages in proto/fluxo.proto, as @grpc/proto-loader delivers them
 * (camelCase fields, uint64 as number). Kept in this one place; update together with the proto.
 */
export interface SlotAddress {
  index: number;
  dataAddress: string;
}
export interface RegisterTaskManagerRequest {
  taskmanagerId: string;
  controlAddress: string;
  slots: SlotAddress[];
  pid: number;
  hostname: string;
}
export interface RegisterTaskManagerResponse {
  clusterId: string;
  heartbeatIntervalMs: number;
}
export interface TaskMetrics {
  taskId: string;
  countersJson: string;
}
export interface HeartbeatRequest {
  taskmanagerId: string;
  sentAtMs: number;
  rssBytes: number;
  tasks: TaskMetrics[];
  /** V8 heap in use of the main thread and every slot worker, bytes (0 from a TaskManager that does not report it) */
  heapUsedBytes: number;
}
export interface HeartbeatResponse {
  known: boolean;
}
export type TaskState = 'DEPLOYING' | 'RUNNING' | 'FINISHED' | 'FAILED' | 'CANCELED';
export interface ReportTaskStateRequest {
  taskmanagerId: string;
  jobId: string;
  attempt: number;
  taskId: string;
  state: TaskState;
  errorCode: string;
  errorMessage: string;
  countersJson: string;
}
export type JobState = 'CREATED' | 'RUNNING' | 'RESTARTING' | 'FINISHED' | 'FAILED' | 'CANCELED';
export interface JobSummary {
  jobId: string;
  name: string;
  state: JobState;
  attempt: number;
  createdAtMs: number;
  endedAtMs: number;
  failure: string;
  parallelism: number;
}
export interface SubmitJobRequest {
  specJson: string;
  /** `<job id>-<checkpoint id>` of a savepoint or retained checkpoint; '' = none */
  fromSavepoint: string;
}
export interface SubmitJobResponse {
  jobId: string;
}
export interface ListJobsResponse {
  jobs: JobSummary[];
}
export interface GetJobRequest {
  jobId: string;
}
export interface GetJobResponse {
  job: JobSummary;
  detailsJson: string;
}
export interface CancelJobRequest {
  jobId: string;
}
export interface CancelJobResponse {
  state: string;
}
export interface StopJobRequest {
  jobId: string;
}
export interface TaskManagerInfo {
  taskmanagerId: string;
  controlAddress: string;
  slotsTotal: number;
  slotsUsed: number;
  lastHeartbeatMs: number;
  state: string;
  rssBytes: number;
  pid: number;
  hostname: string;
  /** last reported V8 heap in use (all threads), bytes; 0 until reported */
  heapUsedBytes: number;
}
export interface ListTaskManagersResponse {
  taskmanagers: TaskManagerInfo[];
}
export interface DeployTasksRequest {
  jobId: string;
  attempt: number;
  tasksJson: string;
}
export interface StartTasksRequest {
  jobId: string;
  attempt: number;
}
export interface CancelJobTasksRequest {
  jobId: string;
  attempt: number;
}
export interface DataFrame {
  targetTask: string;
  frame: Buffer;
}
export interface DataBatch {
  frames: DataFrame[];
}
export interface Credit {
  producerTask: string;
  outputChannel: string;
  credits: number;
}
export interface CreditBatch {
  credits: Credit[];
}
export interface TriggerCheckpointRequest {
  jobId: string;
}
export interface TriggerCheckpointResponse {
  checkpointId: number;
  durationMs: number;
  stateBytes: number;
}
export interface TriggerSavepointRequest {
  jobId: string;
  /** stop the job once the savepoint completed */
  stop: boolean;
}
export interface SavepointInfo {
  /** `<job id>-<checkpoint id>` */
  savepointId: string;
  jobId: string;
  jobName: string;
  checkpointId: number;
  /** ms since the epoch */
  createdAtMs: number;
  durationMs: number;
  stateBytes: number;
  /** the job's parallelism when it was taken */
  parallelism: number;
  /** a retained checkpoint of a FAILED job (restorable and deletable like a savepoint), not a savepoint */
  retained: boolean;
}
export interface TriggerSavepointResponse {
  savepoint: SavepointInfo;
  /** the job's state after the call (FINISHED after a stop) */
  state: JobState;
}
export interface ListSavepointsRequest {
  /** '' = every job's */
  jobId: string;
}
export interface ListSavepointsResponse {
  savepoints: SavepointInfo[];
}
export interface DeleteSavepointRequest {
  savepointId: string;
}
export interface AcknowledgeCheckpointRequest {
  taskmanagerId: string;
  jobId: string;
  attempt: number;
  taskId: string;
  checkpointId: number;
  parts: string[];
  stateBytes: number;
  /** the task's barrier alignment time, ms (absent from older TaskManagers: 0) */
  alignmentMs?: number;
}
export interface DeclineCheckpointRequest {
  taskmanagerId: string;
  jobId: string;
  attempt: number;
  taskId: string;
  checkpointId: number;
  reason: string;
  message: string;
}
export interface TriggerTaskCheckpointRequest {
  jobId: string;
  attempt: number;
  checkpointId: number;
  timestampMs: number;
  flags: number;
  /** stop-with-savepoint: sources read nothing more after this barrier */
  haltSources: boolean;
}
export interface NotifyCheckpointCompleteRequest {
  jobId: string;
  attempt: number;
  checkpointId: number;
}
