/**
 * The settings of the Fluxo AWS stack (deploy/aws/lib/settings.ts): defaults, validation, and
 * reading them from CDK context (`-c key=value` strings or cdk.json values).
 */
import { describe, expect, it } from 'vitest';
import {
  cidrProblem,
  DEFAULTS,
  parseContextArgs,
  resolveSettings,
  SettingsError,
  settingsFromContext,
} from '../../../deploy/aws/lib/settings.js';

const problemsOf = (f: () => unknown): string[] => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SettingsError);
    return (e as SettingsError).problems;
  }
  throw new Error('did not throw');
};

describe('resolveSettings', () => {
  it('applies the defaults to what is not given', () => {
    const s = resolveSettings({ clientCidr: '192.0.2.10/32', fluxoTarball: '/x/fluxo.tgz' });
    expect(s).toEqual({
      ...DEFAULTS,
      clientCidr: '192.0.2.10/32',
      fluxoTarball: '/x/fluxo.tgz',
      keyPairName: undefined,
    });
  });

  it('keeps what is given; a partial count object keeps the other defaults', () => {
    const s = resolveSettings({
      clientCidr: '192.0.2.0/24',
      fluxoTarball: 't.tgz',
      redisMode: 'ec2',
      taskManagers: { max: 12 },
      slotsPerTaskManager: 8,
      keyPairName: 'k',
    });
    expect(s.taskManagers).toEqual({ min: DEFAULTS.taskManagers.min, desired: DEFAULTS.taskManagers.desired, max: 12 });
    expect(s.redisMode).toBe('ec2');
    expect(s.slotsPerTaskManager).toBe(8);
    expect(s.keyPairName).toBe('k');
  });

  it('lists every problem at once', () => {
    expect(
      problemsOf(() =>
        resolveSettings({
          clientCidr: '0.0.0.0/0',
          fluxoTarball: '',
          redisMode: 'memcached' as never,
          jobManagerInstanceType: 'big',
          redisNodeType: 't3.small',
          taskManagers: { min: 1, max: 0, desired: 1.5 },
          vpcCidr: '10.0.0.0/8',
        }),
      ),
    ).toEqual([
      "clientCidr: '0.0.0.0/0' would open the JobManager's gRPC port (no authentication) to every address; give your own network, e.g. 203.0.113.7/32",
      "vpcCidr: '10.0.0.0/8' must be a /16 to /24 (it holds four /26 or larger subnets)",
      'fluxoTarball: required, the path of the `npm pack` tarball of Fluxo',
      "redisMode: 'memcached' is not one of elasticache, ec2",
      "jobManagerInstanceType: 'big' is not an EC2 instance type like t3.medium",
      "redisNodeType: 't3.small' is not an ElastiCache node type like cache.t4g.small",
      'taskManagers.desired: 1.5 is not an integer ≥ 0',
      'taskManagers.max: must be at least 1',
    ]);
  });

  it('the message of the error lists the problems, one a line', () => {
    expect(() => resolveSettings({ clientCidr: '', fluxoTarball: 't' })).toThrow(
      /^invalid Fluxo stack settings:\n {2}- clientCidr: required/,
    );
  });
});

describe('cidrProblem', () => {
  it('accepts IPv4 CIDRs and explains the rest', () => {
    expect(cidrProblem('203.0.113.7/32')).toBeUndefined();
    expect(cidrProblem('10.0.0.0/8')).toBeUndefined();
    expect(cidrProblem('203.0.113.7')).toMatch(/not an IPv4 CIDR/);
    expect(cidrProblem('2001:db8::/32')).toMatch(/not an IPv4 CIDR/);
    expect(cidrProblem('256.0.0.0/8')).toMatch(/octet above 255/);
    expect(cidrProblem('10.0.0.0/33')).toMatch(/prefix length above 32/);
  });
});

describe('settingsFromContext', () => {
  it('reads -c strings and cdk.json values; numbers are parsed; the default tarball applies', () => {
    const ctx: Record<string, unknown> = {
      clientCidr: ' 198.51.100.7/32 ',
      redisMode: 'ec2',
      jmInstanceType: 'm6i.large',
      tmInstanceType: 'c6i.2xlarge',
      tmMin: '0',
      tmMax: 10, // cdk.json: a number
      tmDesired: '3',
      slotsPerTm: '8',
      keyPair: 'ops',
      vpcCidr: '10.9.0.0/16',
    };
    const input = settingsFromContext((k) => ctx[k], '/default/fluxo.tgz');
    expect(resolveSettings(input)).toMatchObject({
      clientCidr: '198.51.100.7/32',
      fluxoTarball: '/default/fluxo.tgz',
      redisMode: 'ec2',
      jobManagerInstanceType: 'm6i.large',
      taskManagerInstanceType: 'c6i.2xlarge',
      taskManagers: { min: 0, max: 10, desired: 3 },
      slotsPerTaskManager: 8,
      keyPairName: 'ops',
      vpcCidr: '10.9.0.0/16',
    });
  });

  it('an empty value is no value (the default applies), a non-integer count is refused', () => {
    const input = settingsFromContext(
      (k) => ({ clientCidr: '192.0.2.1/32', keyPair: '', fluxoTarball: 'x.tgz' })[k],
      'd',
    );
    expect(resolveSettings(input)).toMatchObject({ keyPairName: undefined, fluxoTarball: 'x.tgz' });
    expect(problemsOf(() => settingsFromContext((k) => ({ tmMax: 'four' })[k], 'd'))).toEqual([
      "tmMax (context): 'four' is not an integer",
    ]);
  });
});

describe('parseContextArgs', () => {
  it('takes -c k=v, --context k=v and --context=k=v; a value may contain =', () => {
    expect(parseContextArgs(['-c', 'clientCidr=1.2.3.4/32', '--context', 'tmMax=5', '--context=x=a=b'])).toEqual({
      clientCidr: '1.2.3.4/32',
      tmMax: '5',
      x: 'a=b',
    });
  });

  it('refuses anything else, naming it', () => {
    expect(() => parseContextArgs(['--profile', 'p'])).toThrow("unknown argument '--profile'");
    expect(() => parseContextArgs(['-c', 'novalue'])).toThrow("'-c novalue' is not key=value");
    expect(() => parseContextArgs(['-c'])).toThrow('is not key=value');
  });
});
