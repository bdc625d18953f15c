/**
 * `fluxo scale` (client/scale.ts) against a mocked AWS Auto Scaling API (aws-sdk-client-mock):
 * it reads the group's min/max, sets the desired capacity only when N fits, turns AWS errors into
 * one-line ScaleErrors, and waits for the JobManager with --wait. The commander wiring is tested
 * on a fresh Command, as client/main.ts adds it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  ScalingActivityInProgressFault,
  SetDesiredCapacityCommand,
} from '@aws-sdk/client-auto-scaling';
import { mockClient } from 'aws-sdk-client-mock';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  checkCapacity,
  formatChange,
  parseTaskManagerCount,
  registerScaleCommand,
  type ScaleDeps,
  ScaleError,
  toScaleError,
} from '../../../client/scale.js';
import type { TaskManagerInfo } from '../../../core/rpc/index.js';
import { REPO_ROOT } from '../../support/processes.js';

const aws = mockClient(AutoScalingClient);
afterAll(() => aws.restore());

/** A DescribeAutoScalingGroups answer for one group. */
function group(name: string, min: number, max: number, desired: number) {
  return {
    AutoScalingGroups: [{ AutoScalingGroupName: name, MinSize: min, MaxSize: max, DesiredCapacity: desired } as never],
  };
}
const awsError = (name: string, message: string, extra: object = {}): Error =>
  Object.assign(new Error(message), { name, $metadata: {}, ...extra });

interface Run {
  lines: string[];
  error?: unknown;
}
/** Runs `fluxo <args>` on a fresh program with only `scale` registered. */
async function run(args: string[], deps: ScaleDeps = {}): Promise<Run> {
  const lines: string[] = [];
  const program = new Command().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerScaleCommand(program, { env: {}, print: (l) => lines.push(l), ...deps });
  try {
    await program.parseAsync(args, { from: 'user' });
    return { lines };
  } catch (error) {
    return { lines, error };
  }
}
const setCalls = () => aws.commandCalls(SetDesiredCapacityCommand).map((c) => c.args[0].input);

beforeEach(() => {
  aws.reset();
});

describe('fluxo scale', () => {
  it('sets the desired capacity of the named group and prints old → new', async () => {
    aws
      .on(DescribeAutoScalingGroupsCommand, { AutoScalingGroupNames: ['fluxo-tms'] })
      .resolves(group('fluxo-tms', 1, 8, 2));
    aws.on(SetDesiredCapacityCommand).resolves({});
    const r = await run(['scale', '--taskmanagers', '5', '--asg', 'fluxo-tms', '--region', 'eu-west-1']);
    expect(r.error).toBeUndefined();
    expect(setCalls()).toEqual([{ AutoScalingGroupName: 'fluxo-tms', DesiredCapacity: 5, HonorCooldown: false }]);
    expect(r.lines).toEqual(['fluxo-tms: desired capacity 2 → 5 (min 1, max 8)']);
    // --region reaches the client
    const client = aws.commandCalls(SetDesiredCapacityCommand)[0].thisValue as AutoScalingClient;
    expect(await client.config.region()).toBe('eu-west-1');
  });

  it('takes the group from env FLUXO_ASG when --asg is not given', async () => {
    aws
      .on(DescribeAutoScalingGroupsCommand, { AutoScalingGroupNames: ['from-env'] })
      .resolves(group('from-env', 0, 3, 0));
    aws.on(SetDesiredCapacityCommand).resolves({});
    const r = await run(['scale', '--taskmanagers', '3'], { env: { FLUXO_ASG: 'from-env' } });
    expect(r.error).toBeUndefined();
    expect(setCalls()).toEqual([{ AutoScalingGroupName: 'from-env', DesiredCapacity: 3, HonorCooldown: false }]);
  });

  it('refuses N above the max or below the min, naming the limits, without calling SetDesiredCapacity', async () => {
    aws.on(DescribeAutoScalingGroupsCommand).resolves(group('g', 2, 6, 3));
    aws.on(SetDesiredCapacityCommand).resolves({});
    for (const n of ['7', '1']) {
      const r = await run(['scale', '--taskmanagers', n, '--asg', 'g']);
      expect(r.error).toBeInstanceOf(ScaleError);
      expect((r.error as ScaleError).code).toBe('OUT_OF_RANGE');
      expect((r.error as Error).message).toMatch(
        new RegExp(`cannot scale g to ${n} TaskManagers: the group allows 2 to 6`),
      );
      expect((r.error as Error).message).toContain('min 2, max 6');
    }
    expect(setCalls()).toEqual([]);
  });

  it('at the current desired capacity: says so and sets nothing', async () => {
    aws.on(DescribeAutoScalingGroupsCommand).resolves(group('g', 1, 4, 3));
    const r = await run(['scale', '--taskmanagers', '3', '--asg', 'g']);
    expect(r.error).toBeUndefined();
    expect(r.lines).toEqual(['g: desired capacity 3 → 3 (min 1, max 4, unchanged)']);
    expect(setCalls()).toEqual([]);
  });

  it('a group that does not exist: ASG_NOT_FOUND naming it and the region', async () => {
    aws.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    const r = await run(['scale', '--taskmanagers', '2', '--asg', 'nope', '--region', 'us-east-2']);
    expect((r.error as ScaleError).code).toBe('ASG_NOT_FOUND');
    expect((r.error as Error).message).toBe('no Auto Scaling group named nope in us-east-2');
  });

  it('no group at all: ASG_NOT_SET, without calling AWS', async () => {
    const r = await run(['scale', '--taskmanagers', '2']);
    expect((r.error as ScaleError).code).toBe('ASG_NOT_SET');
    expect((r.error as Error).message).toMatch(/pass --asg <name> or set FLUXO_ASG/);
    expect(aws.calls()).toHaveLength(0);
  });

  it.each([
    ['--taskmanagers', '-1'],
    ['--taskmanagers', 'four'],
    ['--taskmanagers', '2.5'],
  ])('refuses %s %s as a usage error', async (flag, value) => {
    const r = await run(['scale', flag, value, '--asg', 'g']);
    expect(r.error).toBeInstanceOf(CommanderError);
    expect((r.error as CommanderError).code).toBe('commander.invalidArgument');
    expect((r.error as Error).message).toContain('--taskmanagers must be an integer ≥ 0');
    expect(aws.calls()).toHaveLength(0);
  });

  it('needs --taskmanagers', async () => {
    const r = await run(['scale', '--asg', 'g']);
    expect((r.error as CommanderError).code).toBe('commander.missingMandatoryOptionValue');
  });
});

describe('fluxo scale: AWS errors become one-line messages', () => {
  const cases: [string, () => void, string, RegExp][] = [
    [
      'no credentials',
      () =>
        aws
          .on(DescribeAutoScalingGroupsCommand)
          .rejects(awsError('CredentialsProviderError', 'Could not load credentials from any providers')),
      'AWS_NO_CREDENTIALS',
      /^no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY, or run `aws configure`/,
    ],
    [
      'expired credentials',
      () =>
        aws
          .on(DescribeAutoScalingGroupsCommand)
          .rejects(awsError('ExpiredToken', 'The security token included in the request is expired')),
      'AWS_BAD_CREDENTIALS',
      /^AWS refused the credentials \(ExpiredToken\): The security token included in the request is expired$/,
    ],
    [
      'no region',
      () => aws.on(DescribeAutoScalingGroupsCommand).rejects(new Error('Region is missing')),
      'AWS_NO_REGION',
      /^no AWS region: pass --region, or set AWS_REGION/,
    ],
    [
      'throttling',
      () => {
        aws.on(DescribeAutoScalingGroupsCommand).resolves(group('g', 1, 5, 1));
        aws.on(SetDesiredCapacityCommand).rejects(awsError('Throttling', 'Rate exceeded'));
      },
      'AWS_THROTTLED',
      /^AWS throttled autoscaling:SetDesiredCapacity in eu-central-1 \(Throttling\); try again in a few seconds$/,
    ],
    [
      'a scaling activity in progress',
      () => {
        aws.on(DescribeAutoScalingGroupsCommand).resolves(group('g', 1, 5, 1));
        aws
          .on(SetDesiredCapacityCommand)
          .rejects(new ScalingActivityInProgressFault({ message: 'Scaling activity in progress', $metadata: {} }));
      },
      'AWS_BUSY',
      /^g is busy \(ScalingActivityInProgressFault\): another scaling activity is in progress/,
    ],
    [
      'access denied',
      () => {
        aws.on(DescribeAutoScalingGroupsCommand).resolves(group('g', 1, 5, 1));
        aws.on(SetDesiredCapacityCommand).rejects(
          awsError('AccessDenied', 'User: arn:aws:iam::1:user/u is not authorized\n  to perform this', {
            $metadata: { httpStatusCode: 403 },
          }),
        );
      },
      'AWS_ACCESS_DENIED',
      /^not allowed to call autoscaling:SetDesiredCapacity on g in eu-central-1 \(AccessDenied\): User: arn:aws:iam::1:user\/u is not authorized to perform this$/,
    ],
    [
      'group deleted between the calls',
      () => {
        aws.on(DescribeAutoScalingGroupsCommand).resolves(group('g', 1, 5, 1));
        aws.on(SetDesiredCapacityCommand).rejects(awsError('ValidationError', 'AutoScalingGroup name not found - g'));
      },
      'ASG_NOT_FOUND',
      /^no Auto Scaling group named g in eu-central-1$/,
    ],
    [
      'no network',
      () =>
        aws.on(DescribeAutoScalingGroupsCommand).rejects(
          Object.assign(new Error('getaddrinfo ENOTFOUND autoscaling.eu-central-1.amazonaws.com'), {
            code: 'ENOTFOUND',
          }),
        ),
      'AWS_UNREACHABLE',
      /^cannot reach the Auto Scaling API in eu-central-1 \(ENOTFOUND\)/,
    ],
    [
      'anything else',
      () => aws.on(DescribeAutoScalingGroupsCommand).rejects(awsError('InternalFailure', 'boom')),
      'AWS_ERROR',
      /^autoscaling:DescribeAutoScalingGroups failed in eu-central-1: InternalFailure: boom$/,
    ],
  ];
  it.each(cases)('%s', async (_what, setup, code, message) => {
    setup();
    const r = await run(['scale', '--taskmanagers', '2', '--asg', 'g', '--region', 'eu-central-1']);
    expect(r.error).toBeInstanceOf(ScaleError);
    const e = r.error as ScaleError;
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.message).not.toContain('\n');
    if (code !== 'AWS_THROTTLED' && code !== 'AWS_BUSY' && code !== 'AWS_ACCESS_DENIED' && code !== 'ASG_NOT_FOUND')
      expect(setCalls()).toEqual([]);
  });

  it('toScaleError passes a ScaleError through and says "unknown error" for an empty one', () => {
    const e = new ScaleError('OUT_OF_RANGE', 'x');
    expect(toScaleError(e, { action: 'a', asg: 'g' })).toBe(e);
    expect(toScaleError({}, { action: 'autoscaling:X', asg: 'g' }).message).toBe('autoscaling:X failed: unknown error');
  });
});

describe('fluxo scale --wait', () => {
  const tm = (state: string): TaskManagerInfo => ({
    taskmanagerId: 'x',
    controlAddress: '',
    slotsTotal: 2,
    slotsUsed: 0,
    lastHeartbeatMs: 0,
    state,
    rssBytes: 0,
    heapUsedBytes: 0,
    pid: 1,
    hostname: '',
  });

  it('polls the JobManager until it lists N ALIVE TaskManagers (LOST ones do not count), then closes it', async () => {
    aws.on(DescribeAutoScalingGroupsCommand).resolves(group('g', 1, 5, 1));
    aws.on(SetDesiredCapacityCommand).resolves({});
    const answers = [
      [tm('ALIVE')],
      [tm('ALIVE'), tm('LOST')],
      [tm('ALIVE'), tm('ALIVE')],
      [tm('ALIVE'), tm('ALIVE'), tm('ALIVE')],
    ];
    const addresses: string[] = [];
    let closed = 0;
    const sleeps: number[] = [];
    const r = await run(['scale', '--taskmanagers', '3', '--asg', 'g', '--wait'], {
      env: { FLUXO_JOBMANAGER: '10.0.0.5:6123' },
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      now: () => 0,
      jobManagerClient: async (a) => {
        addresses.push(a);
        return { listTaskManagers: async () => answers.shift() ?? [], close: () => closed++ };
      },
    });
    expect(r.error).toBeUndefined();
    expect(addresses).toEqual(['10.0.0.5:6123']);
    expect(r.lines).toEqual([
      'g: desired capacity 1 → 3 (min 1, max 5)',
      'TaskManagers alive at the JobManager 10.0.0.5:6123: 1 of 3',
      'TaskManagers alive at the JobManager 10.0.0.5:6123: 2 of 3',
      'TaskManagers alive at the JobManager 10.0.0.5:6123: 3 of 3',
    ]);
    expect(sleeps).toEqual([5000, 5000, 5000]);
    expect(closed).toBe(1);
  });

  it('gives up after --timeout seconds with WAIT_TIMEOUT', async () => {
    aws.on(DescribeAutoScalingGroupsCommand).resolves(group('g', 1, 5, 1));
    aws.on(SetDesiredCapacityCommand).resolves({});
    let t = 0;
    let closed = 0;
    const r = await run(
      ['scale', '--taskmanagers', '2', '--asg', 'g', '--wait', '--timeout', '30', '--jobmanager', 'jm:6123'],
      {
        sleep: async (ms) => {
          t += ms;
        },
        now: () => t,
        jobManagerClient: async () => ({ listTaskManagers: async () => [tm('ALIVE')], close: () => closed++ }),
      },
    );
    expect((r.error as ScaleError).code).toBe('WAIT_TIMEOUT');
    expect((r.error as Error).message).toMatch(
      /^gave up after 30 s: the JobManager at jm:6123 lists 1 ALIVE TaskManagers, not 2/,
    );
    expect(t).toBe(30_000);
    expect(closed).toBe(1);
  });
});

describe('fluxo scale: pure parts', () => {
  it('checkCapacity accepts min and max themselves', () => {
    const g = { name: 'g', min: 1, max: 3, desired: 2 };
    expect(() => checkCapacity(g, 1)).not.toThrow();
    expect(() => checkCapacity(g, 3)).not.toThrow();
    expect(() => checkCapacity(g, 0)).toThrow(/allows 1 to 3/);
    expect(formatChange(g, 3)).toBe('g: desired capacity 2 → 3 (min 1, max 3)');
  });

  it('parseTaskManagerCount takes integers ≥ 0 only', () => {
    expect(parseTaskManagerCount('0')).toBe(0);
    expect(parseTaskManagerCount('12')).toBe(12);
    for (const v of ['', ' ', '-2', '1e9', 'x', '1.5']) expect(() => parseTaskManagerCount(v), v).toThrow();
  });

  it('the AWS SDK is loaded only when the command runs (type-only static imports)', () => {
    const src = readFileSync(join(REPO_ROOT, 'client', 'scale.ts'), 'utf8');
    const staticImports = src.split('\n').filter((l) => /^import .*from '@aws-sdk\//.test(l));
    expect(staticImports.length).toBeGreaterThan(0);
    for (const l of staticImports) expect(l).toMatch(/^import type /);
    expect(src).toContain("await import(\n    '@aws-sdk/client-auto-scaling'\n  )");
  });
});
