/**
 * Cluster configuration: defaults, overridden by environment variables, validated once at start.
 * Constructors take the slice they need; nothing else reads `process.env` for these settings.
 * All durations are in ms.
 */
import { type CheckpointConfig, type CheckpointMode, checkpointConfigProblems } from '../checkpoint/types.js';

export interface ClusterConfig {
  /** Redis URL for job records (and checkpoints, later). Env `REDIS_URL`. Default redis://127.0.0.1:6379 */
  redisUrl: string;
  /** Key namespace: every key is `fluxo:{clusterId}:…`. Env `FLUXO_CLUSTER_ID`. Default `default` */
  clusterId: string;
  /** How often a TaskManager heartbeats. Env `FLUXO_HEARTBEAT_INTERVAL_MS`. Default 500 */
  heartbeatIntervalMs: number;
  /** A TaskManager silent for this long is marked lost. Env `FLUXO_HEARTBEAT_TIMEOUT_MS`. Default 5000 */
  heartbeatTimeoutMs: number;
  /** Records per data-plane batch before it is sent. Env `FLUXO_BATCH_RECORDS`. Default 2048 */
  batchRecords: number;
  /** Lines a source reads per poll (the watermark is emitted once per poll). Env `FLUXO_SOURCE_BATCH_LINES`. Default 4096 */
  sourceBatchLines: number;
  /** Frames a consumer can buffer per input channel (initial credit). Env `FLUXO_CHANNEL_CREDITS`. Default 8 */
  channelCredits: number;
  /** Max ms a partly filled batch waits before it is sent (Flink's buffer timeout). Env `FLUXO_BUFFER_TIMEOUT_MS`. Default 50 */
  bufferTimeoutMs: number;
  /**
   * How long a submitted job waits for enough free slots before it fails with NO_RESOURCES
   * (Flink's slot.request.timeout, 5 min). Env `FLUXO_SLOT_WAIT_MS`. Default 300000
   */
  slotWaitMs: number;
  /**
   * The cluster's default checkpoint settings, for jobs whose spec has no `checkpoint:` block (a
   * job's own block wins as a whole); null = such jobs take no checkpoints. Set by env
   * `FLUXO_CHECKPOINT_INTERVAL_MS` (or `fluxo jobmanager --checkpoint-interval`), with
   * `FLUXO_CHECKPOINT_TIMEOUT_MS` (60000), `FLUXO_CHECKPOINT_MIN_PAUSE_MS` (0),
   * `FLUXO_CHECKPOINT_RETAINED` (3), `FLUXO_CHECKPOINT_TOLERABLE_FAILURES` (0) and
   * `FLUXO_CHECKPOINT_MODE` (exactly-once | at-least-once), the spec's defaults. Default null
   */
  checkpoint: CheckpointConfig | null;
}

/** The cluster checkpoint defaults from env, or null without FLUXO_CHECKPOINT_INTERVAL_MS. */
function checkpointFromEnv(env: NodeJS.ProcessEnv, problems: string[]): CheckpointConfig | null {
  if (!env.FLUXO_CHECKPOINT_INTERVAL_MS) {
    for (const k of Object.keys(env).sort())
      if (k.startsWith('FLUXO_CHECKPOINT_') && env[k] !== '')
        problems.push(
          `${k} is set but FLUXO_CHECKPOINT_INTERVAL_MS is not: set the interval to give the cluster checkpoint defaults`,
        );
    return null;
  }
  const count = (name: string, def: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) {
      problems.push(`${name}: expected an integer >= 0, got "${raw}"`);
      return def;
    }
    return n;
  };
  const c: CheckpointConfig = {
    intervalMs: intFromEnv(env, 'FLUXO_CHECKPOINT_INTERVAL_MS', 1000, problems),
    timeoutMs: intFromEnv(env, 'FLUXO_CHECKPOINT_TIMEOUT_MS', 60_000, problems),
    minPauseMs: count('FLUXO_CHECKPOINT_MIN_PAUSE_MS', 0),
    retained: intFromEnv(env, 'FLUXO_CHECKPOINT_RETAINED', 3, problems),
    tolerableFailures: count('FLUXO_CHECKPOINT_TOLERABLE_FAILURES', 0),
    mode: (env.FLUXO_CHECKPOINT_MODE || 'exactly-once') as CheckpointMode,
  };
  const envName: Record<string, string> = {
    intervalMs: 'INTERVAL_MS',
    timeoutMs: 'TIMEOUT_MS',
    minPauseMs: 'MIN_PAUSE_MS',
    retained: 'RETAINED',
    tolerableFailures: 'TOLERABLE_FAILURES',
    mode: 'MODE',
  };
  for (const p of checkpointConfigProblems(c)) {
    const field = p.slice(0, p.indexOf(':'));
    problems.push(`FLUXO_CHECKPOINT_${envName[field] ?? field}${p.slice(field.length)}`);
  }
  return c;
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, def: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    problems.push(`${name}: expected a positive integer, got "${raw}"`);
    return def;
  }
  return n;
}

/**
 * Builds the frozen cluster config from defaults and env.
 * @throws Error listing every invalid variable.
 */
export function loadClusterConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<ClusterConfig> = {},
): Readonly<ClusterConfig> {
  const problems: string[] = [];
  const cfg: ClusterConfig = {
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    clusterId: env.FLUXO_CLUSTER_ID || 'default',
    heartbeatIntervalMs: intFromEnv(env, 'FLUXO_HEARTBEAT_INTERVAL_MS', 500, problems),
    heartbeatTimeoutMs: intFromEnv(env, 'FLUXO_HEARTBEAT_TIMEOUT_MS', 5000, problems),
    batchRecords: intFromEnv(env, 'FLUXO_BATCH_RECORDS', 2048, problems),
    sourceBatchLines: intFromEnv(env, 'FLUXO_SOURCE_BATCH_LINES', 4096, problems),
    channelCredits: intFromEnv(env, 'FLUXO_CHANNEL_CREDITS', 8, problems),
    bufferTimeoutMs: intFromEnv(env, 'FLUXO_BUFFER_TIMEOUT_MS', 50, problems),
    slotWaitMs: intFromEnv(env, 'FLUXO_SLOT_WAIT_MS', 300_000, problems),
    checkpoint: checkpointFromEnv(env, problems),
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  };
  if (!/^[A-Za-z0-9_.-]+$/.test(cfg.clusterId)) problems.push('FLUXO_CLUSTER_ID: only letters, digits, _ . - allowed');
  if (!/^rediss?:\/\/[^\s]+$/.test(cfg.redisUrl))
    problems.push('Redis URL: expected redis://host:port (or rediss://…)');
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
  if (env.LOG_LEVEL && !levels.includes(env.LOG_LEVEL))
    problems.push(`LOG_LEVEL: expected one of ${levels.join(', ')}`);
  if (problems.length > 0) throw new Error(`invalid configuration: ${problems.join('; ')}`);
  return Object.freeze(cfg);
}
