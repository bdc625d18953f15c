/**
 * The Fluxo AWS CDK stack (deploy/aws), synthesized offline and checked with
 * aws-cdk-lib/assertions: the TaskManager Auto Scaling group, every security-group ingress rule,
 * the boot scripts (systemd units, the fluxo command lines, the advertised address from IMDSv2,
 * the web and cluster tokens and the optional TLS files from Secrets Manager, the scheduler), who
 * may read which secret, both Redis modes, and the stack outputs. Every value checked against the
 * settings comes from the props passed here.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { CfnSecurityGroup } from 'aws-cdk-lib/aws-ec2';
import { afterAll, describe, expect, it } from 'vitest';
import { FluxoStack, type FluxoStackProps } from '../../../deploy/aws/lib/fluxo-stack.js';
import { DEFAULTS } from '../../../deploy/aws/lib/settings.js';

const dir = mkdtempSync(join(tmpdir(), 'fluxo-aws-test-'));
const tarball = join(dir, 'fluxo-9.9.9.tgz');
writeFileSync(tarball, 'not really a tarball: only hashed and copied at synth');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CLIENT = '198.51.100.0/24';
const SYNTH_MS = 60_000; // a synth takes a second or two; two cores are shared

interface Synth {
  stack: FluxoStack;
  template: Template;
  json: {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    Outputs: Record<string, { Value: unknown }>;
  };
}
const synthesized = new Map<string, Synth>();
/** The stack synthesized with these props (once per distinct props: a synth takes seconds). */
function synth(props: Partial<FluxoStackProps> = {}): Synth {
  const key = JSON.stringify(props);
  let s = synthesized.get(key);
  if (!s) {
    s = synthOnce(props);
    synthesized.set(key, s);
  }
  return s;
}
function synthOnce(props: Partial<FluxoStackProps>): Synth {
  const app = new App();
  const stack = new FluxoStack(app, 'FluxoTest', { clientCidr: CLIENT, fluxoTarball: tarball, ...props });
  const template = Template.fromStack(stack);
  return { stack, template, json: template.toJSON() as Synth['json'] };
}

/**
 * CloudFormation text (Fn::Join / Fn::Base64 / Ref / Fn::GetAtt / Fn::Sub) flattened to a
 * string, with `${Ref}` and `${LogicalId.Attribute}` for the values filled in at deploy time.
 */
function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  const o = v as Record<string, unknown>;
  if (o['Fn::Base64'] !== undefined) return text(o['Fn::Base64']);
  if (o['Fn::Join'] !== undefined) {
    const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map(text).join(sep);
  }
  if (o.Ref !== undefined) return `\${${o.Ref as string}}`;
  if (o['Fn::GetAtt'] !== undefined) return `\${${(o['Fn::GetAtt'] as string[]).join('.')}}`;
  if (o['Fn::Sub'] !== undefined) return `{Sub ${text(o['Fn::Sub'])}}`;
  return JSON.stringify(v);
}
/** A token of the stack (an attribute, a ref, a string with tokens) as `text` renders it. */
const tok = (s: Synth, token: string): string => text(s.stack.resolve(token));
const logicalId = (s: Synth, c: { node: { defaultChild?: unknown } }): string =>
  s.stack.resolve(s.stack.getLogicalId(c.node.defaultChild as CfnSecurityGroup)) as string;

function resourcesOf(s: Synth, type: string): [string, Record<string, unknown>][] {
  return Object.entries(s.json.Resources)
    .filter(([, r]) => r.Type === type)
    .map(([id, r]) => [id, r.Properties]);
}
/** The boot script of the TaskManagers (their launch template's user data). */
function taskManagerUserData(s: Synth): string {
  const lts = resourcesOf(s, 'AWS::EC2::LaunchTemplate')
    .map(([, p]) => (p.LaunchTemplateData as { UserData?: unknown }).UserData)
    .filter((u) => u !== undefined);
  expect(lts).toHaveLength(1); // the instances' IMDSv2 launch templates carry no user data
  return text(lts[0]);
}
function instanceUserData(s: Synth, instance: { instanceId: string }): string {
  // by its Ref: the JobManager's logical id gets a hash of its user data (userDataCausesReplacement)
  const id = (s.stack.resolve(instance.instanceId) as { Ref: string }).Ref;
  return text(s.json.Resources[id].Properties.UserData);
}
/** The line of a systemd unit in a boot script that starts with `key=`. */
function unitLines(script: string, key: string): string[] {
  return script.split('\n').filter((l) => l.startsWith(`${key}=`));
}
/** The lines of the file a boot script writes at `path` (its quoted heredoc). */
function fileIn(script: string, path: string): string[] {
  const lines = script.split('\n');
  const start = lines.indexOf(`cat > ${path} <<'FLUXO_EOF'`);
  expect(start, path).toBeGreaterThanOrEqual(0);
  return lines.slice(start + 1, lines.indexOf('FLUXO_EOF', start));
}
/** What the fetch script of a boot script reads from Secrets Manager: `<secret id> > <file>`, in order. */
function fetchedSecrets(script: string): string[] {
  return fileIn(script, '/usr/local/sbin/fluxo-fetch-secrets').flatMap((l) => {
    const m =
      /aws secretsmanager get-secret-value --region \$\{AWS::Region\} --secret-id '([^']+)' .*> "\$tmp\/([\w.-]+)"/.exec(
        l,
      );
    return m ? [`${m[1]} > ${m[2]}`] : [];
  });
}
const jobManagerExecStart = (s: Synth): string =>
  unitLines(
    fileIn(instanceUserData(s, s.stack.jobManager), '/etc/systemd/system/fluxo-jobmanager.service').join('\n'),
    'ExecStart',
  )[0];
const taskManagerExecStart = (s: Synth): string =>
  unitLines(fileIn(taskManagerUserData(s), '/etc/systemd/system/fluxo-taskmanager.service').join('\n'), 'ExecStart')[0];

/** The secrets a role may read: the Resource of every secretsmanager statement of its policies, as `text` renders it. */
function secretsReadBy(s: Synth, role: { node: { defaultChild?: unknown } }): string[] {
  const roleId = logicalId(s, role);
  const out: string[] = [];
  for (const [, p] of resourcesOf(s, 'AWS::IAM::Policy')) {
    if (!JSON.stringify(p.Roles).includes(`"${roleId}"`)) continue;
    for (const st of (p.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] })
      .Statement) {
      const actions = ([] as string[]).concat(st.Action);
      if (!actions.some((a) => a.startsWith('secretsmanager:'))) continue;
      expect(actions.sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
      out.push(text(st.Resource));
    }
  }
  return out.sort();
}

/** Every ingress rule (inline or standalone) as `<group logical id> <port> <source>`. */
function ingressRules(s: Synth): string[] {
  const rules: string[] = [];
  const source = (r: Record<string, unknown>): string =>
    typeof r.CidrIp === 'string'
      ? r.CidrIp
      : r.CidrIpv6 !== undefined
        ? `v6 ${String(r.CidrIpv6)}`
        : `sg:${(r.SourceSecurityGroupId as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]}`;
  const port = (r: Record<string, unknown>): string =>
    `${r.IpProtocol as string}/${String(r.FromPort)}${r.ToPort === r.FromPort ? '' : `-${String(r.ToPort)}`}`;
  for (const [id, p] of resourcesOf(s, 'AWS::EC2::SecurityGroup'))
    for (const r of (p.SecurityGroupIngress as Record<string, unknown>[] | undefined) ?? [])
      rules.push(`${id} ${port(r)} ${source(r)}`);
  for (const [, p] of resourcesOf(s, 'AWS::EC2::SecurityGroupIngress'))
    rules.push(`${(p.GroupId as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]} ${port(p)} ${source(p)}`);
  return rules.sort();
}

/** JSON paths of every string equal to `value` in `node`. */
function pathsOf(node: unknown, value: string, path = ''): string[] {
  if (node === value) return [path];
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) => pathsOf(v, value, `${path}/${k}`));
}

/** Every setting away from its default (elasticache mode). */
const CUSTOM: Partial<FluxoStackProps> = {
  taskManagers: { min: 2, max: 9, desired: 5 },
  taskManagerInstanceType: 'c7g.xlarge',
  slotsPerTaskManager: 3,
  redisNodeType: 'cache.r7g.large',
};
/** Redis on EC2, with a key pair, another client CIDR. */
const EC2_SSH: Partial<FluxoStackProps> = {
  redisMode: 'ec2',
  redisInstanceType: 'r6i.large',
  keyPairName: 'ops-key',
  clientCidr: '203.0.113.7/32',
};

describe('FluxoStack: TaskManager Auto Scaling group', () => {
  it(
    'has the min/max/desired counts and instance type it was given, IMDSv2 required, one instance per TaskManager',
    () => {
      const s = synth(CUSTOM);
      s.template.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 1);
      s.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
        MinSize: '2',
        MaxSize: '9',
        DesiredCapacity: '5',
        LaunchTemplate: Match.objectLike({ LaunchTemplateId: Match.anyValue() }),
      });
      s.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
        LaunchTemplateData: Match.objectLike({
          InstanceType: 'c7g.xlarge',
          MetadataOptions: { HttpTokens: 'required' },
          SecurityGroupIds: [{ 'Fn::GetAtt': [logicalId(s, s.stack.taskManagerSg), 'GroupId'] }],
        }),
      });
    },
    SYNTH_MS,
  );

  it(
    'picks the ARM64 Amazon Linux image for a Graviton instance type',
    () => {
      const s = synth(CUSTOM); // c7g: Graviton
      const params = Object.keys((s.template.toJSON() as { Parameters: object }).Parameters);
      expect(params.some((p) => p.includes('arm64'))).toBe(true);
      expect(params.some((p) => p.includes('x8664'))).toBe(true); // the JobManager's t3.medium
    },
    SYNTH_MS,
  );
});

describe('FluxoStack: security groups', () => {
  it(
    'opens exactly the Fluxo ports, to the client CIDR and to each other, and no SSH without a key pair',
    () => {
      const s = synth();
      const jm = logicalId(s, s.stack.jobManagerSg);
      const tm = logicalId(s, s.stack.taskManagerSg);
      const redis = logicalId(s, s.stack.redisSg);
      expect(ingressRules(s)).toEqual(
        [
          `${jm} tcp/6123 sg:${tm}`,
          `${jm} tcp/6123 ${CLIENT}`,
          `${jm} tcp/8081 ${CLIENT}`,
          `${tm} tcp/6130 sg:${tm}`,
          `${tm} tcp/6130 sg:${jm}`, // the JobManager deploys tasks on the TaskManager's control port
          `${redis} tcp/6379 sg:${jm}`,
          `${redis} tcp/6379 sg:${tm}`,
        ].sort(),
      );
      s.template.resourceCountIs('AWS::EC2::SecurityGroup', 3);
    },
    SYNTH_MS,
  );

  it(
    'with a key pair: SSH from the client CIDR only, on every instance (the Redis one in ec2 mode), and the key on each',
    () => {
      const s = synth(EC2_SSH);
      const jm = logicalId(s, s.stack.jobManagerSg);
      const tm = logicalId(s, s.stack.taskManagerSg);
      const redis = logicalId(s, s.stack.redisSg);
      const ssh = ingressRules(s).filter((r) => r.includes(' tcp/22 '));
      expect(ssh).toEqual(
        [`${jm} tcp/22 203.0.113.7/32`, `${tm} tcp/22 203.0.113.7/32`, `${redis} tcp/22 203.0.113.7/32`].sort(),
      );
      expect(ingressRules(s).filter((r) => r.includes('/32') && !r.includes(' tcp/22 '))).toEqual(
        [`${jm} tcp/6123 203.0.113.7/32`, `${jm} tcp/8081 203.0.113.7/32`].sort(),
      );
      for (const [, p] of resourcesOf(s, 'AWS::EC2::Instance')) expect(p.KeyName).toBe('ops-key');
      s.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
        LaunchTemplateData: Match.objectLike({ KeyName: 'ops-key', UserData: Match.anyValue() }),
      });
    },
    SYNTH_MS,
  );

  it(
    'has 0.0.0.0/0 nowhere but in egress rules, in either Redis mode',
    () => {
      for (const [name, props] of Object.entries({ elasticache: {}, ec2: EC2_SSH })) {
        const s = synth(props);
        const paths = pathsOf(s.json, '0.0.0.0/0');
        expect(paths.length, name).toBeGreaterThan(0);
        for (const p of paths) {
          const [, , id] = p.split('/');
          const type = s.json.Resources[id]?.Type;
          // outbound only: security-group egress, and the public subnets' route to the internet gateway
          if (type === 'AWS::EC2::Route') expect(p, name).toMatch(/\/Properties\/DestinationCidrBlock$/);
          else expect(p, name).toMatch(/\/SecurityGroupEgress\/\d+\/CidrIp$/);
        }
        expect(ingressRules(s).join('\n'), name).not.toContain('0.0.0.0/0');
        expect(ingressRules(s).join('\n'), name).not.toContain('::/0');
      }
    },
    SYNTH_MS,
  );
});

describe('FluxoStack: boot scripts', () => {
  it(
    'TaskManagers: Node.js 20, Fluxo from the S3 asset, the advertised address from IMDSv2, a systemd unit with the fluxo command line',
    () => {
      const s = synth(CUSTOM);
      const ud = taskManagerUserData(s);
      const jmIp = tok(s, s.stack.jobManager.instancePrivateIp);
      expect(jmIp).toMatch(/^\$\{JobManager\w+\.PrivateIp\}$/);

      expect(ud).toContain('dnf install -y nodejs20');
      expect(ud).toMatch(/aws s3 cp '\{Sub s3:\/\/[^']+\.tgz\}' \/opt\/fluxo\/fluxo\.tgz/);
      expect(ud).toContain('npm install --global --prefix /opt/fluxo --omit=dev');

      // IMDSv2: a session token (PUT), then the private address with it, into the unit's environment
      const put = ud.indexOf(
        "-X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds:",
      );
      const get = ud.indexOf(
        '-H "X-aws-ec2-metadata-token: $imds_token" http://169.254.169.254/latest/meta-data/local-ipv4',
      );
      expect(put).toBeGreaterThan(0);
      expect(get).toBeGreaterThan(put);
      expect(ud).toContain('echo "FLUXO_ADVERTISE_HOST=$private_ip" > /etc/fluxo/taskmanager.env');

      expect(ud).toContain("cat > /etc/systemd/system/fluxo-taskmanager.service <<'FLUXO_EOF'");
      expect(unitLines(ud, 'ExecStart')).toContain(
        `ExecStart=/opt/fluxo/bin/fluxo taskmanager --jobmanager ${jmIp}:6123 --slots 3 --host 0.0.0.0 --advertise-host \${FLUXO_ADVERTISE_HOST} --data-port 6130 --cluster-token-file %d/cluster-token`,
      );
      expect(unitLines(ud, 'EnvironmentFile')).toEqual(['EnvironmentFile=/etc/fluxo/taskmanager.env']);
      expect(unitLines(ud, 'User')).toEqual(['User=fluxo']);
      expect(unitLines(ud, 'Restart')).toEqual(['Restart=always']);
      expect(ud).toContain(`Environment=REDIS_URL=${tok(s, s.stack.redisUrl)}`);
      expect(ud).toContain('systemctl enable --now fluxo-taskmanager.service');
    },
    SYNTH_MS,
  );

  it(
    'JobManager: the web and cluster tokens come from Secrets Manager before every start, never in the user data; the fluxo command line',
    () => {
      const s = synth();
      const ud = instanceUserData(s, s.stack.jobManager);
      const redisUrl = tok(s, s.stack.redisUrl);
      expect(ud).toContain("cat > /etc/systemd/system/fluxo-jobmanager.service <<'FLUXO_EOF'");
      expect(jobManagerExecStart(s)).toBe(
        `ExecStart=/opt/fluxo/bin/fluxo jobmanager --host 0.0.0.0 --rpc-port 6123 --web-host 0.0.0.0 --web-port 8081 --web-token-file %d/web-token --redis ${redisUrl} --scheduler ${DEFAULTS.scheduler} --resource-stabilization-timeout ${DEFAULTS.resourceStabilizationTimeoutMs} --cluster-token-file %d/cluster-token`,
      );
      // the tokens: fetched by the oneshot unit into root-only files, given to the unit as credentials
      expect(fetchedSecrets(ud)).toEqual([
        `${tok(s, s.stack.webTokenSecret.secretArn)} > web-token`,
        `${tok(s, s.stack.clusterTokenSecret.secretArn)} > cluster-token`,
      ]);
      expect(unitLines(ud, 'LoadCredential')).toEqual([
        'LoadCredential=web-token:/etc/fluxo/secrets/web-token',
        'LoadCredential=cluster-token:/etc/fluxo/secrets/cluster-token',
      ]);
      expect(unitLines(ud, 'Requires')).toEqual(['Requires=fluxo-secrets.service']);
      expect(unitLines(ud, 'After')).toContain('After=network-online.target fluxo-secrets.service');
      expect(ud).toContain('systemctl enable --now fluxo-jobmanager.service');
      // the values are generated by Secrets Manager, and no dynamic reference puts them in the user data
      expect(JSON.stringify(s.json)).not.toContain('{{resolve:secretsmanager');
      expect(ud).not.toMatch(/FLUXO_(WEB|CLUSTER)_TOKEN=/);
    },
    SYNTH_MS,
  );

  it(
    'every instance and the launch template require IMDSv2',
    () => {
      const s = synth(EC2_SSH);
      const lts = resourcesOf(s, 'AWS::EC2::LaunchTemplate');
      expect(lts.length).toBe(3); // JobManager, Redis, TaskManagers
      for (const [id, p] of lts)
        expect((p.LaunchTemplateData as { MetadataOptions?: unknown }).MetadataOptions, id).toEqual({
          HttpTokens: 'required',
        });
      for (const [id, p] of resourcesOf(s, 'AWS::EC2::Instance')) expect(p.LaunchTemplate, id).toBeDefined();
    },
    SYNTH_MS,
  );
});

/** TLS from a secret the user made, by name, with another server name; and another scheduler setting. */
const TLS: Partial<FluxoStackProps> = {
  tlsSecret: 'team-a/fluxo-tls',
  tlsServerName: 'nodes.fluxo.test',
  resourceStabilizationTimeoutMs: 45_000,
};
/** TLS from a secret given by its complete ARN; the default scheduler. */
const TLS_ARN: Partial<FluxoStackProps> = {
  tlsSecret: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:fluxo/tls-AbC123',
  scheduler: 'default',
};

describe('FluxoStack: the cluster token', () => {
  it(
    'is generated by Secrets Manager (printable ASCII, no spaces), besides the web token',
    () => {
      const s = synth();
      s.template.resourceCountIs('AWS::SecretsManager::Secret', 2);
      const id = logicalId(s, s.stack.clusterTokenSecret);
      const secret = s.json.Resources[id];
      expect(secret.Type).toBe('AWS::SecretsManager::Secret');
      expect(secret.Properties.GenerateSecretString).toMatchObject({
        ExcludePunctuation: true,
        IncludeSpace: false,
        PasswordLength: expect.any(Number),
      });
      expect(secret.Properties.SecretString).toBeUndefined();
      expect(logicalId(s, s.stack.webTokenSecret)).not.toBe(id);
    },
    SYNTH_MS,
  );

  it(
    'may be read by the TaskManager role (and nothing else of Secrets Manager), and by the JobManager role with the web token',
    () => {
      const s = synth();
      const web = tok(s, s.stack.webTokenSecret.secretArn);
      const cluster = tok(s, s.stack.clusterTokenSecret.secretArn);
      expect(secretsReadBy(s, s.stack.taskManagerRole)).toEqual([cluster]);
      expect(secretsReadBy(s, s.stack.jobManagerRole)).toEqual([web, cluster].sort());
      // no other role (the Redis instance's, in ec2 mode) reads a secret
      const e = synth(EC2_SSH);
      const policies = resourcesOf(e, 'AWS::IAM::Policy').filter(([, p]) =>
        JSON.stringify(p).includes('secretsmanager:'),
      );
      expect(policies.map(([, p]) => text((p.Roles as unknown[])[0])).sort()).toEqual(
        [logicalId(e, e.stack.jobManagerRole), logicalId(e, e.stack.taskManagerRole)].map((r) => `\${${r}}`).sort(),
      );
    },
    SYNTH_MS,
  );

  it(
    'is fetched into a root-only file on every TaskManager and given to its unit as a credential: --cluster-token-file',
    () => {
      const s = synth(CUSTOM);
      const ud = taskManagerUserData(s);
      const cluster = tok(s, s.stack.clusterTokenSecret.secretArn);
      expect(fetchedSecrets(ud)).toEqual([`${cluster} > cluster-token`]);
      expect(ud).not.toContain(tok(s, s.stack.webTokenSecret.secretArn));
      const fetch = fileIn(ud, '/usr/local/sbin/fluxo-fetch-secrets');
      expect(fetch).toContain('umask 077');
      expect(fetch).toContain('dir=/etc/fluxo/secrets');
      expect(fetch).toContain('install -d -m 0700 "$dir"');
      expect(ud).toContain('chmod 0700 /usr/local/sbin/fluxo-fetch-secrets');
      expect(fileIn(ud, '/etc/systemd/system/fluxo-secrets.service')).toEqual(
        expect.arrayContaining(['Type=oneshot', 'ExecStart=/usr/local/sbin/fluxo-fetch-secrets']),
      );
      const unit = fileIn(ud, '/etc/systemd/system/fluxo-taskmanager.service');
      expect(unit).toEqual(
        expect.arrayContaining([
          'Requires=fluxo-secrets.service',
          'After=network-online.target fluxo-secrets.service',
          'User=fluxo',
          'LoadCredential=cluster-token:/etc/fluxo/secrets/cluster-token',
        ]),
      );
      expect(unit.filter((l) => l.startsWith('LoadCredential='))).toHaveLength(1);
      expect(taskManagerExecStart(s)).toMatch(/ --cluster-token-file %d\/cluster-token$/);
      expect(jobManagerExecStart(s)).toContain(' --cluster-token-file %d/cluster-token');
      // fluxo-cli: the CLI for root on the instance, with the same token file
      expect(fileIn(ud, '/etc/fluxo/cli.env')).toEqual([
        `FLUXO_JOBMANAGER=${tok(s, s.stack.jobManager.instancePrivateIp)}:6123`,
        `REDIS_URL=${tok(s, s.stack.redisUrl)}`,
        'FLUXO_CLUSTER_TOKEN_FILE=/etc/fluxo/secrets/cluster-token',
      ]);
      expect(ud).toContain('chmod 0600 /etc/fluxo/cli.env');
      expect(JSON.stringify(s.json)).not.toContain('{{resolve:secretsmanager');
    },
    SYNTH_MS,
  );
});

describe('FluxoStack: the scheduler', () => {
  it(
    'passes the scheduler and, when reactive, the stabilization timeout given to the JobManager only',
    () => {
      const reactive = synth(TLS);
      expect(jobManagerExecStart(reactive)).toContain(
        ` --scheduler reactive --resource-stabilization-timeout ${TLS.resourceStabilizationTimeoutMs} `,
      );
      const byDefault = synth(TLS_ARN);
      expect(jobManagerExecStart(byDefault)).toContain(` --scheduler ${TLS_ARN.scheduler} `);
      expect(jobManagerExecStart(byDefault)).not.toContain('--resource-stabilization-timeout');
      for (const s of [reactive, byDefault]) expect(taskManagerExecStart(s)).not.toContain('--scheduler');
    },
    SYNTH_MS,
  );
});

describe('FluxoStack: TLS', () => {
  it(
    'without tlsSecret: no TLS flag, no TLS file, no third secret',
    () => {
      const s = synth();
      for (const line of [jobManagerExecStart(s), taskManagerExecStart(s)]) expect(line).not.toContain('--tls');
      expect(instanceUserData(s, s.stack.jobManager)).not.toContain('tls-');
      expect(taskManagerUserData(s)).not.toContain('tls-');
      expect(s.stack.tlsSecret).toBeUndefined();
    },
    SYNTH_MS,
  );

  it(
    'with tlsSecret: both units get the CA, the shared certificate and key as credentials, mutual TLS and the server name',
    () => {
      const s = synth(TLS);
      const flags = `--cluster-token-file %d/cluster-token --tls-ca %d/tls-ca --tls-cert %d/tls-cert --tls-key %d/tls-key --tls-client-auth --tls-server-name ${TLS.tlsServerName}`;
      expect(jobManagerExecStart(s)).toMatch(new RegExp(` ${flags.replaceAll('-', '\\-')}$`));
      expect(taskManagerExecStart(s)).toMatch(new RegExp(` ${flags.replaceAll('-', '\\-')}$`));
      const tlsCredentials = [
        'LoadCredential=tls-ca:/etc/fluxo/secrets/tls-ca',
        'LoadCredential=tls-cert:/etc/fluxo/secrets/tls-cert',
        'LoadCredential=tls-key:/etc/fluxo/secrets/tls-key',
      ];
      const jmUd = instanceUserData(s, s.stack.jobManager);
      const tmUd = taskManagerUserData(s);
      expect(unitLines(jmUd, 'LoadCredential')).toEqual(expect.arrayContaining(tlsCredentials));
      expect(unitLines(tmUd, 'LoadCredential')).toEqual([
        'LoadCredential=cluster-token:/etc/fluxo/secrets/cluster-token',
        ...tlsCredentials,
      ]);
      // the secret the user named is fetched (by its name) and split into the three files
      for (const ud of [jmUd, tmUd]) {
        expect(fetchedSecrets(ud)).toContain(`${TLS.tlsSecret} > tls.json`);
        // the files it replaces once every secret was read (the JobManager's web token first)
        expect(fileIn(ud, '/usr/local/sbin/fluxo-fetch-secrets').join('\n')).toMatch(
          /^ {4}for f in (web-token )?cluster-token tls-ca tls-cert tls-key; do mv /m,
        );
        expect(fileIn(ud, '/etc/fluxo/cli.env')).toEqual(
          expect.arrayContaining([
            'FLUXO_TLS_CA=/etc/fluxo/secrets/tls-ca',
            'FLUXO_TLS_CERT=/etc/fluxo/secrets/tls-cert',
            'FLUXO_TLS_KEY=/etc/fluxo/secrets/tls-key',
            `FLUXO_TLS_SERVER_NAME=${TLS.tlsServerName}`,
          ]),
        );
      }
    },
    SYNTH_MS,
  );

  it(
    'with tlsSecret: both roles may read that secret (a name matches its ARN suffix; a complete ARN is taken as is), the TaskManagers nothing more',
    () => {
      const s = synth(TLS);
      const byName = `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${TLS.tlsSecret}-??????`;
      const cluster = tok(s, s.stack.clusterTokenSecret.secretArn);
      expect(secretsReadBy(s, s.stack.taskManagerRole)).toEqual([cluster, byName].sort());
      expect(secretsReadBy(s, s.stack.jobManagerRole)).toEqual(
        [tok(s, s.stack.webTokenSecret.secretArn), cluster, byName].sort(),
      );
      const a = synth(TLS_ARN);
      const arn = TLS_ARN.tlsSecret as string;
      expect(secretsReadBy(a, a.stack.taskManagerRole)).toEqual(
        [tok(a, a.stack.clusterTokenSecret.secretArn), arn].sort(),
      );
      expect(secretsReadBy(a, a.stack.jobManagerRole)).toContain(arn);
      expect(fetchedSecrets(taskManagerUserData(a))).toContain(`${arn} > tls.json`);
      // the default server name when none is given
      expect(taskManagerExecStart(a)).toMatch(new RegExp(` --tls-server-name ${DEFAULTS.tlsServerName}$`));
      // only the secret's name or ARN is in the template: its value stays in Secrets Manager
      a.template.resourceCountIs('AWS::SecretsManager::Secret', 2);
    },
    SYNTH_MS,
  );
});

describe('FluxoStack: Redis', () => {
  it(
    'elasticache mode: a replication group of the given node type in the isolated subnets, behind the Redis security group; no Redis instance',
    () => {
      const s = synth(CUSTOM);
      s.template.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 1);
      s.template.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
        Engine: 'redis',
        CacheNodeType: 'cache.r7g.large',
        SecurityGroupIds: [{ 'Fn::GetAtt': [logicalId(s, s.stack.redisSg), 'GroupId'] }],
      });
      const isolated = s.stack.vpc.isolatedSubnets.map((n) => s.stack.resolve(n.subnetId));
      expect(isolated).toHaveLength(2);
      s.template.hasResourceProperties('AWS::ElastiCache::SubnetGroup', { SubnetIds: isolated });
      s.template.resourceCountIs('AWS::EC2::Instance', 1); // the JobManager only
      expect(s.stack.redisInstance).toBeUndefined();
      const id = s.stack.resolve(s.stack.getLogicalId(s.stack.redisReplicationGroup as never)) as string;
      expect(tok(s, s.stack.redisUrl)).toBe(`redis://\${${id}.PrimaryEndPoint.Address}:\${${id}.PrimaryEndPoint.Port}`);
      expect(instanceUserData(s, s.stack.jobManager)).toContain(`--redis ${tok(s, s.stack.redisUrl)}`);
    },
    SYNTH_MS,
  );

  it(
    'ec2 mode: a Redis instance of the given type that installs and starts redis on 6379; no ElastiCache',
    () => {
      const s = synth(EC2_SSH);
      s.template.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 0);
      s.template.resourceCountIs('AWS::ElastiCache::SubnetGroup', 0);
      s.template.resourceCountIs('AWS::EC2::Instance', 2);
      const redis = s.stack.redisInstance;
      if (!redis) throw new Error('no Redis instance');
      s.template.hasResourceProperties('AWS::EC2::Instance', {
        InstanceType: 'r6i.large',
        SecurityGroupIds: [{ 'Fn::GetAtt': [logicalId(s, s.stack.redisSg), 'GroupId'] }],
      });
      const ud = instanceUserData(s, redis);
      expect(ud).toContain('dnf install -y redis6');
      expect(ud).toContain("echo 'bind 0.0.0.0' >>");
      expect(ud).toContain("echo 'port 6379' >>");
      expect(ud).toContain("echo 'appendonly yes' >>");
      expect(ud).toContain('systemctl enable --now "$svc"');
      expect(tok(s, s.stack.redisUrl)).toBe(`redis://${tok(s, redis.instancePrivateIp)}:6379`);
      expect(taskManagerUserData(s)).toContain(`Environment=REDIS_URL=${tok(s, s.stack.redisUrl)}`);
    },
    SYNTH_MS,
  );
});

describe('FluxoStack: outputs', () => {
  it(
    'gives the web URL, the JobManager address (host:6123) and instance, the Auto Scaling group name, the token secret and Redis',
    () => {
      const s = synth();
      const jmPublic = tok(s, s.stack.jobManager.instancePublicIp);
      expect(jmPublic).toMatch(/^\$\{JobManager\w+\.PublicIp\}$/);
      const out = (name: string): string => text(s.json.Outputs[name]?.Value);
      expect(out('WebUrl')).toBe(`http://${jmPublic}:8081/`);
      expect(out('JobManagerAddress')).toBe(`${jmPublic}:6123`);
      expect(out('JobManagerPrivateAddress')).toBe(`${tok(s, s.stack.jobManager.instancePrivateIp)}:6123`);
      expect(out('JobManagerInstanceId')).toBe(tok(s, s.stack.jobManager.instanceId));
      expect(out('TaskManagerAsgName')).toBe(tok(s, s.stack.taskManagers.autoScalingGroupName));
      expect(out('TaskManagerAsgName')).toMatch(/^\$\{TaskManagers\w+\}$/);
      expect(out('WebTokenSecretArn')).toBe(tok(s, s.stack.webTokenSecret.secretArn));
      expect(out('ClusterTokenSecretArn')).toBe(tok(s, s.stack.clusterTokenSecret.secretArn));
      expect(out('RedisUrl')).toBe(tok(s, s.stack.redisUrl));
      expect(Object.keys(s.json.Outputs).sort()).toEqual(
        [
          'WebUrl',
          'JobManagerAddress',
          'JobManagerPrivateAddress',
          'JobManagerInstanceId',
          'TaskManagerAsgName',
          'WebTokenSecretArn',
          'ClusterTokenSecretArn',
          'RedisUrl',
        ].sort(),
      );
    },
    SYNTH_MS,
  );
});

describe('FluxoStack: settings', () => {
  it('refuses a missing or world-open client CIDR and bad counts, naming every problem', () => {
    const app = new App();
    expect(() => new FluxoStack(app, 'A', { clientCidr: '', fluxoTarball: tarball })).toThrow(/clientCidr: required/);
    expect(() => new FluxoStack(app, 'B', { clientCidr: '0.0.0.0/0', fluxoTarball: tarball })).toThrow(
      /clientCidr: '0\.0\.0\.0\/0' would open/,
    );
    let err: unknown;
    try {
      new FluxoStack(app, 'C', {
        clientCidr: '10.0.0.300/8',
        fluxoTarball: tarball,
        taskManagers: { min: 3, max: 2, desired: 2 },
        slotsPerTaskManager: 0,
      });
    } catch (e) {
      err = e;
    }
    expect((err as { problems: string[] }).problems).toEqual([
      "clientCidr: '10.0.0.300/8' has an octet above 255",
      'tmMin, tmDesired, tmMax (taskManagers.min/desired/max): need tmMin ≤ tmDesired ≤ tmMax, got tmMin 3, tmDesired 2, tmMax 2',
      'slotsPerTaskManager: 0 is not an integer ≥ 1',
    ]);
  });
});
