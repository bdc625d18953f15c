/**
 * The settings of the Fluxo AWS stack: their defaults, their validation, and how they are read
 * from CDK context (`cdk deploy -c clientCidr=203.0.113.7/32 -c tmMax=8`, or the `context` of
 * deploy/aws/cdk.json). Pure code: no AWS calls, no file reads.
 */

/** Where Redis runs: Amazon ElastiCache (managed), or `redis-server` on an EC2 instance of its own. */
export type RedisMode = 'elasticache' | 'ec2';
export const REDIS_MODES: readonly RedisMode[] = ['elasticache', 'ec2'];

/**
 * The JobManager's `--scheduler`: `reactive` rescales running jobs (those with checkpoints) to the
 * slots the TaskManagers offer, so a job follows the Auto Scaling group; `default` keeps the
 * parallelism a job was submitted with (deploy/README.md "Reactive mode").
 */
export type Scheduler = 'default' | 'reactive';
export const SCHEDULERS: readonly Scheduler[] = ['default', 'reactive'];

/** The ports Fluxo listens on, as the systemd units pass them. */
export const PORTS = {
  /** JobManager gRPC (`--rpc-port`): TaskManagers register here, the CLI submits here */
  jobManagerRpc: 6123,
  /** JobManager web UI, REST API and /metrics (`--web-port`) */
  web: 8081,
  /** TaskManager data/control port (`--data-port`): records between TaskManagers, task deployment from the JobManager */
  taskManagerData: 6130,
  redis: 6379,
  ssh: 22,
} as const;

/** TaskManager Auto Scaling group sizes: counts of instances, each running one TaskManager. */
export interface TaskManagerCounts {
  min: number;
  max: number;
  desired: number;
}

/** What the stack can be told. Only `clientCidr` and `fluxoTarball` have no default. */
export interface FluxoSettingsInput {
  /**
   * IPv4 CIDR allowed to reach the JobManager's gRPC (6123) and web (8081) ports, and SSH when a
   * key pair is set, e.g. `203.0.113.7/32`. Required; a /0 is refused: the web UI is plain HTTP,
   * and without `tlsSecret` so is gRPC (its cluster token would cross the internet readable).
   */
  clientCidr: string;
  /** Path of the `npm pack` tarball of Fluxo that the instances install (uploaded as an S3 asset). */
  fluxoTarball: string;
  /** Default `elasticache`. */
  redisMode?: RedisMode;
  /** Default `t3.medium`. */
  jobManagerInstanceType?: string;
  /** Default `c6i.large` (2 vCPUs: one per slot with the default 2 slots). */
  taskManagerInstanceType?: string;
  /** Redis instance type in `ec2` mode. Default `t3.small`. */
  redisInstanceType?: string;
  /** ElastiCache node type in `elasticache` mode. Default `cache.t4g.small`. */
  redisNodeType?: string;
  /** Default min 1, max 4, desired 2; each count is a number of instances, min ≤ desired ≤ max. */
  taskManagers?: Partial<TaskManagerCounts>;
  /** `--slots` of each TaskManager; default 2 (use the instance type's vCPU count). */
  slotsPerTaskManager?: number;
  /** EC2 key pair for SSH; default none, and then port 22 stays closed (use SSM Session Manager). */
  keyPairName?: string;
  /** The VPC's IPv4 range; default `10.42.0.0/16`. */
  vpcCidr?: string;
  /** The JobManager's `--scheduler`; default `reactive` (jobs follow the Auto Scaling group). */
  scheduler?: Scheduler;
  /**
   * `--resource-stabilization-timeout` in ms (reactive scheduler only): how long no TaskManager
   * must have joined before jobs scale up. Default 30000: instances of one scale-out finish booting
   * (Node.js and Fluxo installs) some seconds apart, and each straggler after the timeout would
   * cost one more rescale.
   */
  resourceStabilizationTimeoutMs?: number;
  /**
   * TLS for gRPC: the name (or complete ARN) of a Secrets Manager secret, created by you, whose
   * value is JSON `{"ca": "<PEM>", "cert": "<PEM>", "key": "<PEM>"}`: the cluster CA and one
   * certificate and unencrypted key shared by the JobManager and every TaskManager, whose
   * subjectAltName holds `DNS:<tlsServerName>`. Default none: gRPC inside the VPC is plaintext
   * (but needs the cluster token).
   */
  tlsSecret?: string;
  /** The name in the shared certificate, checked instead of addresses (`--tls-server-name`); default `fluxo.cluster`. Only with `tlsSecret`. */
  tlsServerName?: string;
}

/** Every setting with its default applied. */
export type FluxoSettings = Required<Omit<FluxoSettingsInput, 'keyPairName' | 'taskManagers' | 'tlsSecret'>> & {
  keyPairName?: string;
  tlsSecret?: string;
  taskManagers: TaskManagerCounts;
};

export const DEFAULTS = {
  redisMode: 'elasticache' as RedisMode,
  jobManagerInstanceType: 't3.medium',
  taskManagerInstanceType: 'c6i.large',
  redisInstanceType: 't3.small',
  redisNodeType: 'cache.t4g.small',
  taskManagers: { min: 1, max: 4, desired: 2 } as TaskManagerCounts,
  slotsPerTaskManager: 2,
  vpcCidr: '10.42.0.0/16',
  scheduler: 'reactive' as Scheduler,
  resourceStabilizationTimeoutMs: 30_000,
  tlsServerName: 'fluxo.cluster',
};

/** Thrown for invalid settings; `problems` lists every one, `name: what is wrong`. */
export class SettingsError extends Error {
  readonly code = 'SETTINGS_INVALID';
  constructor(readonly problems: string[]) {
    super(`invalid Fluxo stack settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'SettingsError';
  }
}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** Why `cidr` is not a usable IPv4 CIDR (`a.b.c.d/n`, octets ≤ 255, 0 ≤ n ≤ 32), or undefined when it is. */
export function cidrProblem(cidr: string): string | undefined {
  const m = IPV4_CIDR.exec(cidr);
  if (!m) return `'${cidr}' is not an IPv4 CIDR like 203.0.113.7/32`;
  if (m.slice(1, 5).some((o) => Number(o) > 255)) return `'${cidr}' has an octet above 255`;
  if (Number(m[5]) > 32) return `'${cidr}' has a prefix length above 32`;
  return undefined;
}

const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
/** A Secrets Manager secret name (the characters it allows). */
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
/** A complete secret ARN: its name ends in `-` and the 6 characters Secrets Manager appends. */
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;
/** A DNS name: labels of letters, digits and inner hyphens, dot-separated. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * Applies the defaults and validates every setting.
 * @throws SettingsError listing every problem (not just the first)
 */
/** How a problem names each TaskManager count: its context key, then its setting. */
const TM_COUNT_KEYS: Record<keyof TaskManagerCounts, string> = {
  min: 'tmMin (taskManagers.min)',
  max: 'tmMax (taskManagers.max)',
  desired: 'tmDesired (taskManagers.desired)',
};

export function resolveSettings(input: FluxoSettingsInput): FluxoSettings {
  const problems: string[] = [];
  const s: FluxoSettings = {
    clientCidr: input.clientCidr,
    fluxoTarball: input.fluxoTarball,
    redisMode: input.redisMode ?? DEFAULTS.redisMode,
    jobManagerInstanceType: input.jobManagerInstanceType ?? DEFAULTS.jobManagerInstanceType,
    taskManagerInstanceType: input.taskManagerInstanceType ?? DEFAULTS.taskManagerInstanceType,
    redisInstanceType: input.redisInstanceType ?? DEFAULTS.redisInstanceType,
    redisNodeType: input.redisNodeType ?? DEFAULTS.redisNodeType,
    taskManagers: { ...DEFAULTS.taskManagers, ...input.taskManagers },
    slotsPerTaskManager: input.slotsPerTaskManager ?? DEFAULTS.slotsPerTaskManager,
    keyPairName: input.keyPairName === '' ? undefined : input.keyPairName,
    vpcCidr: input.vpcCidr ?? DEFAULTS.vpcCidr,
    scheduler: input.scheduler ?? DEFAULTS.scheduler,
    resourceStabilizationTimeoutMs: input.resourceStabilizationTimeoutMs ?? DEFAULTS.resourceStabilizationTimeoutMs,
    tlsSecret: input.tlsSecret === '' ? undefined : input.tlsSecret,
    tlsServerName: input.tlsServerName ?? DEFAULTS.tlsServerName,
  };

  if (typeof s.clientCidr !== 'string' || s.clientCidr === '') {
    problems.push('clientCidr: required, the IPv4 CIDR allowed to reach the JobManager, e.g. 203.0.113.7/32');
  } else {
    const p = cidrProblem(s.clientCidr);
    if (p) problems.push(`clientCidr: ${p}`);
    else if (s.clientCidr.endsWith('/0'))
      problems.push(
        `clientCidr: '${s.clientCidr}' would open the JobManager's gRPC port and plain-HTTP web UI to every address; give your own network, e.g. 203.0.113.7/32`,
      );
  }
  const vpc = cidrProblem(s.vpcCidr);
  if (vpc) problems.push(`vpcCidr: ${vpc}`);
  else if (Number(s.vpcCidr.split('/')[1]) > 24 || Number(s.vpcCidr.split('/')[1]) < 16)
    problems.push(`vpcCidr: '${s.vpcCidr}' must be a /16 to /24 (it holds four /26 or larger subnets)`);
  if (typeof s.fluxoTarball !== 'string' || s.fluxoTarball === '')
    problems.push('fluxoTarball: required, the path of the `npm pack` tarball of Fluxo');
  if (!REDIS_MODES.includes(s.redisMode))
    problems.push(`redisMode: '${String(s.redisMode)}' is not one of ${REDIS_MODES.join(', ')}`);
  for (const key of ['jobManagerInstanceType', 'taskManagerInstanceType', 'redisInstanceType'] as const)
    if (!INSTANCE_TYPE.test(s[key])) problems.push(`${key}: '${s[key]}' is not an EC2 instance type like t3.medium`);
  if (!/^cache\.[a-z0-9-]+\.[a-z0-9]+$/.test(s.redisNodeType))
    problems.push(`redisNodeType: '${s.redisNodeType}' is not an ElastiCache node type like cache.t4g.small`);

  // labelled by context key (`-c tmMax=…`), then the setting (FluxoStack's props) in parentheses
  const { min, max, desired } = s.taskManagers;
  for (const [k, v] of Object.entries({ min, max, desired }))
    if (!Number.isInteger(v) || v < 0)
      problems.push(`${TM_COUNT_KEYS[k as keyof TaskManagerCounts]}: ${String(v)} is not an integer ≥ 0`);
  if (Number.isInteger(max) && max < 1) problems.push(`${TM_COUNT_KEYS.max}: must be at least 1`);
  if ([min, max, desired].every(Number.isInteger) && !(min <= desired && desired <= max))
    problems.push(
      `tmMin, tmDesired, tmMax (taskManagers.min/desired/max): need tmMin ≤ tmDesired ≤ tmMax, got tmMin ${min}, tmDesired ${desired}, tmMax ${max}`,
    );
  if (!Number.isInteger(s.slotsPerTaskManager) || s.slotsPerTaskManager < 1)
    problems.push(`slotsPerTaskManager: ${String(s.slotsPerTaskManager)} is not an integer ≥ 1`);
  if (s.keyPairName !== undefined && !/^[\x20-\x7e]{1,255}$/.test(s.keyPairName))
    problems.push('keyPairName: must be 1 to 255 printable ASCII characters');
  if (!SCHEDULERS.includes(s.scheduler))
    problems.push(`scheduler: '${String(s.scheduler)}' is not one of ${SCHEDULERS.join(', ')}`);
  if (!Number.isInteger(s.resourceStabilizationTimeoutMs) || s.resourceStabilizationTimeoutMs < 1)
    problems.push(`resourceStabilizationTimeoutMs: ${String(s.resourceStabilizationTimeoutMs)} is not an integer ≥ 1`);
  if (s.tlsSecret !== undefined) {
    if (s.tlsSecret.startsWith('arn:') ? !SECRET_ARN.test(s.tlsSecret) : !SECRET_NAME.test(s.tlsSecret))
      problems.push(
        `tlsSecret: '${s.tlsSecret}' is neither a Secrets Manager secret name nor a complete secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)`,
      );
    if (!DNS_NAME.test(s.tlsServerName))
      problems.push(`tlsServerName: '${s.tlsServerName}' is not a DNS name like fluxo.cluster`);
  } else if (input.tlsServerName !== undefined)
    problems.push('tlsServerName: only used with tlsSecret (the secret holding the certificates); set both or neither');

  if (problems.length > 0) throw new SettingsError(problems);
  return s;
}

/**
 * The CDK context keys, as given with `-c key=value` or in cdk.json's `context`, and the
 * setting each one sets. Values from `-c` arrive as strings; numbers are parsed here.
 */
export const CONTEXT_KEYS = {
  clientCidr: 'clientCidr',
  fluxoTarball: 'fluxoTarball',
  redisMode: 'redisMode',
  jmInstanceType: 'jobManagerInstanceType',
  tmInstanceType: 'taskManagerInstanceType',
  redisInstanceType: 'redisInstanceType',
  redisNodeType: 'redisNodeType',
  tmMin: 'taskManagers.min',
  tmMax: 'taskManagers.max',
  tmDesired: 'taskManagers.desired',
  slotsPerTm: 'slotsPerTaskManager',
  keyPair: 'keyPairName',
  vpcCidr: 'vpcCidr',
  scheduler: 'scheduler',
  stabilizationTimeoutMs: 'resourceStabilizationTimeoutMs',
  tlsSecret: 'tlsSecret',
  tlsServerName: 'tlsServerName',
} as const;

/**
 * Reads the settings from CDK context (see CONTEXT_KEYS).
 * @param get returns a context value (string from `-c`, or JSON from cdk.json) or undefined
 * @param defaultTarball used when the `fluxoTarball` context is absent
 * @throws SettingsError for a count that is not a number (the rest is checked by resolveSettings)
 */
export function settingsFromContext(get: (key: string) => unknown, defaultTarball: string): FluxoSettingsInput {
  const problems: string[] = [];
  const str = (key: string): string | undefined => {
    const v = get(key);
    const t = v === undefined || v === null ? '' : String(v).trim();
    return t === '' ? undefined : t;
  };
  const int = (key: string): number | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) problems.push(`${key} (context): '${v}' is not an integer`);
    return n;
  };
  const counts: Partial<TaskManagerCounts> = {};
  const min = int('tmMin');
  const max = int('tmMax');
  const desired = int('tmDesired');
  if (min !== undefined) counts.min = min;
  if (max !== undefined) counts.max = max;
  if (desired !== undefined) counts.desired = desired;
  const input: FluxoSettingsInput = {
    clientCidr: str('clientCidr') ?? '',
    fluxoTarball: str('fluxoTarball') ?? defaultTarball,
    redisMode: str('redisMode') as RedisMode | undefined,
    jobManagerInstanceType: str('jmInstanceType'),
    taskManagerInstanceType: str('tmInstanceType'),
    redisInstanceType: str('redisInstanceType'),
    redisNodeType: str('redisNodeType'),
    taskManagers: counts,
    slotsPerTaskManager: int('slotsPerTm'),
    keyPairName: str('keyPair'),
    vpcCidr: str('vpcCidr'),
    scheduler: str('scheduler') as Scheduler | undefined,
    resourceStabilizationTimeoutMs: int('stabilizationTimeoutMs'),
    tlsSecret: str('tlsSecret'),
    tlsServerName: str('tlsServerName'),
  };
  if (problems.length > 0) throw new SettingsError(problems);
  return input;
}

/**
 * `-c k=v`, `--context k=v` and `--context=k=v` arguments, as the CDK CLI takes them, for running
 * the app directly (bin/fluxo-aws.ts). Values stay strings.
 * @throws Error naming an argument that is not one of these or not `key=value`
 */
export function parseContextArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let kv: string | undefined;
    if (a === '-c' || a === '--context') kv = argv[++i];
    else if (a.startsWith('--context=')) kv = a.slice('--context='.length);
    else throw new Error(`unknown argument '${a}': give settings as -c key=value`);
    const eq = kv?.indexOf('=') ?? -1;
    if (kv === undefined || eq <= 0) throw new Error(`'${a} ${kv ?? ''}' is not key=value`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}
