/**
 * The settings of the Fluxo AWS stack (deploy/aws/lib/settings.ts): defaults, validation, and
 * reading them from CDK context (`-c key=value` strings or cdk.json values).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONTEXT_KEYS,
  cidrProblem,
  DEFAULTS,
  parseContextArgs,
  resolveSettings,
  SettingsError,
  settingsFromContext,
} from '../../../deploy/aws/lib/settings.js';
import { REPO_ROOT } from '../../support/processes.js';

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
      tlsSecret: undefined,
    });
    expect(s.scheduler).toBe('reactive'); // jobs follow the Auto Scaling group
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
      "clientCidr: '0.0.0.0/0' would open the JobManager's gRPC port and plain-HTTP web UI to every address; give your own network, e.g. 203.0.113.7/32",
      "vpcCidr: '10.0.0.0/8' must be a /16 to /24 (it holds four /26 or larger subnets)",
      'fluxoTarball: required, the path of the `npm pack` tarball of Fluxo',
      "redisMode: 'memcached' is not one of elasticache, ec2",
      "jobManagerInstanceType: 'big' is not an EC2 instance type like t3.medium",
      "redisNodeType: 't3.small' is not an ElastiCache node type like cache.t4g.small",
      'tmDesired (taskManagers.desired): 1.5 is not an integer ≥ 0',
      'tmMax (taskManagers.max): must be at least 1',
    ]);
  });

  it('names a bad TaskManager count by its context key (tmMin, tmDesired, tmMax) and setting', () => {
    const base = { clientCidr: '192.0.2.10/32', fluxoTarball: 't.tgz' };
    expect(problemsOf(() => resolveSettings({ ...base, taskManagers: { min: -1 } }))).toEqual([
      'tmMin (taskManagers.min): -1 is not an integer ≥ 0',
    ]);
  });

  it('the message of the error lists the problems, one a line', () => {
    expect(() => resolveSettings({ clientCidr: '', fluxoTarball: 't' })).toThrow(
      /^invalid Fluxo stack settings:\n {2}- clientCidr: required/,
    );
  });
});

describe('resolveSettings: scheduler and TLS', () => {
  const base = { clientCidr: '192.0.2.10/32', fluxoTarball: 't.tgz' };

  it('keeps the scheduler, stabilization timeout, TLS secret and server name given', () => {
    expect(
      resolveSettings({
        ...base,
        scheduler: 'default',
        resourceStabilizationTimeoutMs: 1234,
        tlsSecret: 'ops/fluxo-tls',
        tlsServerName: 'fluxo.internal',
      }),
    ).toMatchObject({
      scheduler: 'default',
      resourceStabilizationTimeoutMs: 1234,
      tlsSecret: 'ops/fluxo-tls',
      tlsServerName: 'fluxo.internal',
    });
  });

  it('takes a TLS secret by name or by complete ARN, with the default server name', () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:fluxo/tls-a1B2c3';
    expect(resolveSettings({ ...base, tlsSecret: arn })).toMatchObject({
      tlsSecret: arn,
      tlsServerName: DEFAULTS.tlsServerName,
    });
    expect(resolveSettings({ ...base, tlsSecret: '' }).tlsSecret).toBeUndefined();
  });

  it('lists every problem: scheduler, timeout, secret name or ARN, server name, a server name without a secret', () => {
    expect(
      problemsOf(() =>
        resolveSettings({
          ...base,
          scheduler: 'adaptive' as never,
          resourceStabilizationTimeoutMs: 0,
          tlsSecret: "fluxo's tls",
          tlsServerName: 'not a name',
        }),
      ),
    ).toEqual([
      "scheduler: 'adaptive' is not one of default, reactive",
      'resourceStabilizationTimeoutMs: 0 is not an integer ≥ 1',
      "tlsSecret: 'fluxo's tls' is neither a Secrets Manager secret name nor a complete secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)",
      "tlsServerName: 'not a name' is not a DNS name like fluxo.cluster",
    ]);
    // a partial ARN (no 6-character suffix) is refused: IAM could not name the secret exactly
    expect(
      problemsOf(() =>
        resolveSettings({ ...base, tlsSecret: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:fluxo' }),
      ),
    ).toEqual([expect.stringMatching(/^tlsSecret: .* is neither/)]);
    expect(problemsOf(() => resolveSettings({ ...base, tlsServerName: 'fluxo.internal' }))).toEqual([
      'tlsServerName: only used with tlsSecret (the secret holding the certificates); set both or neither',
    ]);
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
      scheduler: 'default',
      stabilizationTimeoutMs: '20000',
      tlsSecret: 'ops/fluxo-tls',
      tlsServerName: 'tm.fluxo.internal',
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
      scheduler: 'default',
      resourceStabilizationTimeoutMs: 20000,
      tlsSecret: 'ops/fluxo-tls',
      tlsServerName: 'tm.fluxo.internal',
    });
  });

  it('an empty value is no value (the default applies), a non-integer count is refused', () => {
    const input = settingsFromContext(
      (k) => ({ clientCidr: '192.0.2.1/32', keyPair: '', fluxoTarball: 'x.tgz' })[k],
      'd',
    );
    expect(resolveSettings(input)).toMatchObject({ keyPairName: undefined, fluxoTarball: 'x.tgz' });
    expect(
      problemsOf(() => settingsFromContext((k) => ({ tmMax: 'four', stabilizationTimeoutMs: '3s' })[k], 'd')),
    ).toEqual([
      "tmMax (context): 'four' is not an integer",
      "stabilizationTimeoutMs (context): '3s' is not an integer",
    ]);
  });
});

describe('deploy/README.md', () => {
  it('documents every context key in the settings table, and no other', () => {
    const readme = readFileSync(join(REPO_ROOT, 'deploy/README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('| Context key |'), readme.indexOf('### Step by step'));
    const documented = [...table.matchAll(/^\| ((?:`\w+`(?: \/ )?)+) \|/gm)].flatMap((m) =>
      [...m[1].matchAll(/`(\w+)`/g)].map((k) => k[1]),
    );
    expect(documented.sort()).toEqual([...Object.keys(CONTEXT_KEYS), 'stackName'].sort());
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
