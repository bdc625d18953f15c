/**
 * `fluxo scale --taskmanagers N`: sets the desired capacity of the TaskManagers' EC2 Auto Scaling
 * group (the one the deploy/aws CDK stack makes; its output `TaskManagerAsgName`). N is checked
 * against the group's min and max first; AWS errors become one-line messages.
 *
 * The AWS SDK (`@aws-sdk/client-auto-scaling`) is imported only when the command runs, so the
 * other commands never load it. Credentials and region come from the SDK's usual places
 * (AWS_PROFILE, AWS_ACCESS_KEY_ID…, ~/.aws/config, AWS_REGION) unless --region is given.
 */
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { type Command, InvalidArgumentError } from 'commander';
import { printable } from '../core/errors/index.js';
import type { TaskManagerInfo } from '../core/rpc/index.js';

/** Stable codes of ScaleError; branch on these, not on the message. */
export type ScaleErrorCode =
  /** no --asg and no env FLUXO_ASG */
  | 'ASG_NOT_SET'
  | 'ASG_NOT_FOUND'
  /** N outside the group's [min, max] */
  | 'OUT_OF_RANGE'
  | 'AWS_NO_REGION'
  | 'AWS_NO_CREDENTIALS'
  /** credentials found but refused: expired, unknown key, bad signature */
  | 'AWS_BAD_CREDENTIALS'
  | 'AWS_ACCESS_DENIED'
  | 'AWS_THROTTLED'
  /** another scaling activity holds the group */
  | 'AWS_BUSY'
  | 'AWS_UNREACHABLE'
  | 'AWS_ERROR'
  /** --wait gave up before the JobManager saw N TaskManagers */
  | 'WAIT_TIMEOUT';

/** An error of `fluxo scale`: a one-line `message` for the terminal and a stable `code`. */
export class ScaleError extends Error {
  readonly code: ScaleErrorCode;
  readonly retryable: boolean;
  constructor(code: ScaleErrorCode, message: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ScaleError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
  }
}

/** The sizes of an Auto Scaling group: counts of instances (one TaskManager each). */
export interface GroupCapacity {
  name: string;
  min: number;
  max: number;
  desired: number;
}

/**
 * Parses `--taskmanagers`: an integer ≥ 0 (a count of instances).
 * @throws InvalidArgumentError (commander prints it as a usage error)
 */
export function parseTaskManagerCount(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0 || n > 100_000)
    throw new InvalidArgumentError('--taskmanagers must be an integer ≥ 0');
  return n;
}

/**
 * Checks that `n` TaskManager instances fit the group.
 * @throws ScaleError OUT_OF_RANGE naming the group's min and max
 */
export function checkCapacity(group: GroupCapacity, n: number): void {
  if (n < group.min || n > group.max)
    throw new ScaleError(
      'OUT_OF_RANGE',
      `cannot scale ${group.name} to ${n} TaskManagers: the group allows ${group.min} to ${group.max} ` +
        `(min ${group.min}, max ${group.max}; change them with cdk deploy -c tmMin=… -c tmMax=…)`,
    );
}

/** `name: desired capacity 2 → 4 (min 1, max 8)`, the line the command prints. */
export function formatChange(group: GroupCapacity, to: number): string {
  const same = group.desired === to ? ', unchanged' : '';
  return `${group.name}: desired capacity ${group.desired} → ${to} (min ${group.min}, max ${group.max}${same})`;
}

/** An AWS message on one line, without control characters, at most 300 characters. */
function oneLine(msg: unknown): string {
  return printable(
    String(msg ?? '')
      .replace(/\s+/g, ' ')
      .trim(),
    300,
  );
}

/**
 * Turns an error of the AWS SDK (or of the network under it) into a ScaleError with a one-line
 * message saying what failed and what to do. A ScaleError passes through unchanged.
 * @param ctx.action the API call, e.g. `autoscaling:SetDesiredCapacity` (named on access denied)
 * @param ctx.asg the group's name; ctx.region the region when known
 */
export function toScaleError(err: unknown, ctx: { action: string; asg: string; region?: string }): ScaleError {
  if (err instanceof ScaleError) return err;
  const e = (err ?? {}) as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? '';
  const msg = oneLine(e.message);
  const where = ctx.region ? ` in ${ctx.region}` : '';
  const opts = { cause: err };
  if (/region is missing/i.test(msg))
    return new ScaleError(
      'AWS_NO_REGION',
      'no AWS region: pass --region, or set AWS_REGION (or a profile region)',
      opts,
    );
  if (name === 'CredentialsProviderError' || name === 'TokenProviderError' || /could not load credentials/i.test(msg))
    return new ScaleError(
      'AWS_NO_CREDENTIALS',
      `no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run \`aws configure\` / \`aws sso login\` (${msg || name})`,
      opts,
    );
  if (
    /^(ExpiredToken|ExpiredTokenException|InvalidClientTokenId|UnrecognizedClientException|SignatureDoesNotMatch|InvalidAccessKeyId|AuthFailure)$/.test(
      name,
    )
  )
    return new ScaleError('AWS_BAD_CREDENTIALS', `AWS refused the credentials (${name}): ${msg}`, opts);
  if (/^(AccessDenied|AccessDeniedException|UnauthorizedOperation)$/.test(name) || e.$metadata?.httpStatusCode === 403)
    return new ScaleError(
      'AWS_ACCESS_DENIED',
      `not allowed to call ${ctx.action} on ${ctx.asg}${where} (${name || 'HTTP 403'}): ${msg}`,
      opts,
    );
  if (/^(Throttling|ThrottlingException|RequestLimitExceeded|TooManyRequestsException|RequestThrottled)$/.test(name))
    return new ScaleError(
      'AWS_THROTTLED',
      `AWS throttled ${ctx.action}${where} (${name}); try again in a few seconds`,
      { ...opts, retryable: true },
    );
  if (name === 'ScalingActivityInProgressFault' || name === 'ResourceContentionFault')
    return new ScaleError(
      'AWS_BUSY',
      `${ctx.asg} is busy (${name}): another scaling activity is in progress; try again when it ends`,
      { ...opts, retryable: true },
    );
  if (name === 'ValidationError' && /not found/i.test(msg))
    return new ScaleError('ASG_NOT_FOUND', `no Auto Scaling group named ${ctx.asg}${where}`, opts);
  const code = e.code ?? '';
  if (
    /^(ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH)$/.test(code) ||
    name === 'TimeoutError'
  )
    return new ScaleError(
      'AWS_UNREACHABLE',
      `cannot reach the Auto Scaling API${where} (${code || name}); check the network and --region`,
      { ...opts, retryable: true },
    );
  return new ScaleError(
    'AWS_ERROR',
    `${ctx.action} failed${where}: ${name ? `${name}: ` : ''}${msg || 'unknown error'}`,
    opts,
  );
}

/** What the command needs from the outside; every field has a default (for tests). */
export interface ScaleDeps {
  /** default process.env: FLUXO_ASG, FLUXO_JOBMANAGER */
  env?: NodeJS.ProcessEnv;
  /** one line of output, default stdout */
  print?: (line: string) => void;
  /** default setTimeout */
  sleep?: (ms: number) => Promise<void>;
  /** default Date.now */
  now?: () => number;
  /** the JobManager client --wait polls; default the CLI's JobManagerClient */
  jobManagerClient?: (address: string) => Promise<{ listTaskManagers(): Promise<TaskManagerInfo[]>; close(): void }>;
}

/** Options of `fluxo scale`, as commander parses them. */
export interface ScaleOptions {
  /** the desired count of TaskManager instances */
  taskmanagers: number;
  /** Auto Scaling group name; default env FLUXO_ASG */
  asg?: string;
  /** AWS region; default the SDK's (AWS_REGION, profile) */
  region?: string;
  /** poll the JobManager until it lists `taskmanagers` ALIVE TaskManagers */
  wait?: boolean;
  /** JobManager address for --wait; default env FLUXO_JOBMANAGER, else 127.0.0.1:6123 */
  jobmanager?: string;
  /** --wait gives up after this many seconds; default 600 */
  timeout: number;
}

async function regionOf(client: AutoScalingClient): Promise<string | undefined> {
  try {
    return await client.config.region();
  } catch {
    return undefined;
  }
}

/**
 * Sets the group's desired capacity to `o.taskmanagers` after checking it against the group's
 * min and max; prints `name: desired capacity old → new (min, max)`. With `o.wait`, then polls
 * the JobManager every 5 s until it lists that many ALIVE TaskManagers.
 * @returns the group's sizes before the change and the new desired capacity
 * @throws ScaleError (ASG_NOT_SET, ASG_NOT_FOUND, OUT_OF_RANGE, AWS_*, WAIT_TIMEOUT), and the
 *   JobManager client's EngineError (JOBMANAGER_UNAVAILABLE) while waiting
 */
export async function scaleTaskManagers(
  o: ScaleOptions,
  deps: ScaleDeps = {},
): Promise<{ from: GroupCapacity; to: number }> {
  const env = deps.env ?? process.env;
  const print = deps.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const asg = (o.asg ?? env.FLUXO_ASG ?? '').trim();
  if (asg === '')
    throw new ScaleError(
      'ASG_NOT_SET',
      'no Auto Scaling group: pass --asg <name> or set FLUXO_ASG (the stack output TaskManagerAsgName)',
    );
  // Fluxo runs on Node.js 20: the SDK's multi-line "Node.js 22 will be required" notice is noise to
  // a CLI user, so it is off unless the user set the SDK's own switch
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { AutoScalingClient, DescribeAutoScalingGroupsCommand, SetDesiredCapacityCommand } = await import(
    '@aws-sdk/client-auto-scaling'
  );
  let client: AutoScalingClient | undefined;
  try {
    let action = 'autoscaling:DescribeAutoScalingGroups';
    let group: GroupCapacity;
    try {
      client = new AutoScalingClient(o.region ? { region: o.region } : {});
      const res = await client.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asg] }));
      const g = res.AutoScalingGroups?.find((x) => x.AutoScalingGroupName === asg);
      if (!g) {
        const region = o.region ?? (await regionOf(client));
        throw new ScaleError('ASG_NOT_FOUND', `no Auto Scaling group named ${asg}${region ? ` in ${region}` : ''}`);
      }
      group = { name: asg, min: g.MinSize ?? 0, max: g.MaxSize ?? 0, desired: g.DesiredCapacity ?? 0 };
      checkCapacity(group, o.taskmanagers);
      if (group.desired !== o.taskmanagers) {
        action = 'autoscaling:SetDesiredCapacity';
        await client.send(
          new SetDesiredCapacityCommand({
            AutoScalingGroupName: asg,
            DesiredCapacity: o.taskmanagers,
            HonorCooldown: false,
          }),
        );
      }
    } catch (err) {
      if (err instanceof ScaleError) throw err;
      throw toScaleError(err, { action, asg, region: o.region ?? (client && (await regionOf(client))) });
    }
    print(formatChange(group, o.taskmanagers));
    if (o.wait) await waitForTaskManagers(o, env, print, deps);
    return { from: group, to: o.taskmanagers };
  } finally {
    client?.destroy();
  }
}

/** Polls the JobManager every 5 s until it lists `o.taskmanagers` ALIVE TaskManagers, printing each change. */
async function waitForTaskManagers(
  o: ScaleOptions,
  env: NodeJS.ProcessEnv,
  print: (line: string) => void,
  deps: ScaleDeps,
): Promise<void> {
  const address = o.jobmanager ?? env.FLUXO_JOBMANAGER ?? '127.0.0.1:6123';
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = deps.now ?? Date.now;
  const connect =
    deps.jobManagerClient ??
    (async (a: string) => {
      const { JobManagerClient } = await import('./jm-client.js');
      return new JobManagerClient(a);
    });
  const jm = await connect(address);
  const deadline = now() + o.timeout * 1000;
  let last = -1;
  try {
    for (;;) {
      const alive = (await jm.listTaskManagers()).filter((t) => t.state === 'ALIVE').length;
      if (alive !== last) print(`TaskManagers alive at the JobManager ${address}: ${alive} of ${o.taskmanagers}`);
      last = alive;
      if (alive === o.taskmanagers) return;
      if (now() >= deadline)
        throw new ScaleError(
          'WAIT_TIMEOUT',
          `gave up after ${o.timeout} s: the JobManager at ${address} lists ${alive} ALIVE TaskManagers, not ${o.taskmanagers} ` +
            '(new instances take a minute or two to boot and install Fluxo)',
        );
      await sleep(5000);
    }
  } finally {
    jm.close();
  }
}

/**
 * Adds `fluxo scale` to `program`:
 * `fluxo scale --taskmanagers N [--asg NAME] [--region R] [--wait [--jobmanager H:P] [--timeout S]]`.
 * Errors are ScaleErrors, which the CLI prints as `fluxo: <message>` with exit code 1.
 * @returns the new subcommand
 */
export function registerScaleCommand(program: Command, deps: ScaleDeps = {}): Command {
  return program
    .command('scale')
    .description(
      "set the number of TaskManager instances: the desired capacity of the TaskManagers' EC2 Auto Scaling group " +
        '(deploy/aws); checked against the group min and max; AWS credentials and region as for the aws CLI',
    )
    .requiredOption('--taskmanagers <n>', 'TaskManager instances wanted', parseTaskManagerCount)
    .option('--asg <name>', 'Auto Scaling group name (env FLUXO_ASG; the stack output TaskManagerAsgName)')
    .option('--region <region>', 'AWS region (default: AWS_REGION or the profile region)')
    .option('--wait', 'then wait until the JobManager lists that many ALIVE TaskManagers')
    .option('--jobmanager <host:port>', 'JobManager RPC address for --wait (env FLUXO_JOBMANAGER)')
    .option(
      '--timeout <s>',
      '--wait gives up after this many seconds',
      (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('--timeout must be an integer ≥ 1 (seconds)');
        return n;
      },
      600,
    )
    .action(async (o: ScaleOptions) => {
      await scaleTaskManagers(o, deps);
    });
}
