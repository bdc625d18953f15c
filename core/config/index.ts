/**
 * Cluster configuration: defaults, overridden by environment variables, validated once at start.
 * Constructors take the slice they need; nothing else reads `process.env` for these settings.
 * All durations are in ms.
 */
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
