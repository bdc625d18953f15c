/**
 * FluxoStack: a Fluxo cluster on EC2. One VPC (two AZs, public subnets for the instances,
 * isolated subnets for ElastiCache, no NAT gateway), Redis (ElastiCache or an EC2 instance), one
 * JobManager instance, and TaskManagers in an Auto Scaling group, each instance running one
 * `fluxo` process as a systemd unit installed from an `npm pack` tarball shipped as an S3 asset.
 *
 * Secrets (Secrets Manager; never in the user data, only their ARNs): the web token (JobManager
 * only) and the cluster token (JobManager and TaskManagers, every gRPC call carries it), both
 * generated; optionally a TLS secret the user made (`tlsSecret`: CA, one shared certificate and
 * key), turning on mutual TLS with `--tls-server-name` on every gRPC channel. Each role may read
 * only the secrets its instances fetch.
 *
 * Security groups, by port (nothing else is open; outbound is open for package installs):
 *   JobManager   6123 from TaskManagers and from clientCidr; 8081 from clientCidr
 *   TaskManager  6130 from TaskManagers (records) and from the JobManager (task deployment)
 *   Redis        6379 from the JobManager and TaskManagers
 *   SSH 22       from clientCidr to the instances, only when a key pair is set
 *
 * Synthesizes offline: no context lookups (the AMI is an SSM parameter resolved at deploy time,
 * the availability zones are Fn::GetAZs of an environment-agnostic stack).
 */
import { Annotations, CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { AutoScalingGroup, UpdatePolicy } from 'aws-cdk-lib/aws-autoscaling';
import {
  AmazonLinuxCpuType,
  BlockDeviceVolume,
  EbsDeviceVolumeType,
  type IKeyPair,
  type IMachineImage,
  Instance,
  InstanceArchitecture,
  InstanceType,
  IpAddresses,
  KeyPair,
  LaunchTemplate,
  MachineImage,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  UserData,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { CfnReplicationGroup, CfnSubnetGroup } from 'aws-cdk-lib/aws-elasticache';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { EC2_UNIQUE_IMDSV2_LAUNCH_TEMPLATE_NAME } from 'aws-cdk-lib/cx-api';
import type { Construct } from 'constructs';
import { type FluxoSettings, type FluxoSettingsInput, PORTS, resolveSettings } from './settings.js';
import { installFluxoCommands, jobManagerCommands, redisCommands, taskManagerCommands } from './user-data.js';

export interface FluxoStackProps extends StackProps, FluxoSettingsInput {}

/** Names of the stack outputs (`aws cloudformation describe-stacks` shows them; see deploy/README.md). */
export const OUTPUTS = {
  webUrl: 'WebUrl',
  jobManagerAddress: 'JobManagerAddress',
  jobManagerPrivateAddress: 'JobManagerPrivateAddress',
  jobManagerInstanceId: 'JobManagerInstanceId',
  asgName: 'TaskManagerAsgName',
  webTokenSecretArn: 'WebTokenSecretArn',
  clusterTokenSecretArn: 'ClusterTokenSecretArn',
  redisUrl: 'RedisUrl',
} as const;

export class FluxoStack extends Stack {
  /** the settings, defaults applied */
  readonly settings: FluxoSettings;
  readonly vpc: Vpc;
  readonly jobManager: Instance;
  readonly taskManagers: AutoScalingGroup;
  readonly jobManagerSg: SecurityGroup;
  readonly taskManagerSg: SecurityGroup;
  readonly redisSg: SecurityGroup;
  /** `redis://host:6379` as the processes use it (a token) */
  readonly redisUrl: string;
  /** the Redis instance in `ec2` mode */
  readonly redisInstance?: Instance;
  /** the ElastiCache replication group in `elasticache` mode */
  readonly redisReplicationGroup?: CfnReplicationGroup;
  readonly webTokenSecret: Secret;
  /** the cluster token, generated: read by the JobManager and every TaskManager */
  readonly clusterTokenSecret: Secret;
  /** the user's TLS secret (`tlsSecret`), when set */
  readonly tlsSecret?: ISecret;
  readonly jobManagerRole: Role;
  readonly taskManagerRole: Role;

  /** @throws SettingsError listing every invalid setting */
  constructor(scope: Construct, id: string, props: FluxoStackProps) {
    super(scope, id, props);
    // requireImdsv2 on an Instance makes a launch template; without this flag it has a fixed name,
    // and a second Fluxo stack in the same region would clash with the first
    this.node.setContext(EC2_UNIQUE_IMDSV2_LAUNCH_TEMPLATE_NAME, true);
    const s = resolveSettings(props);
    this.settings = s;
    const client = Peer.ipv4(s.clientCidr);

    this.vpc = new Vpc(this, 'Vpc', {
      ipAddresses: IpAddresses.cidr(s.vpcCidr),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [
        { name: 'public', subnetType: SubnetType.PUBLIC },
        { name: 'redis', subnetType: SubnetType.PRIVATE_ISOLATED },
      ],
    });

    const sg = (id: string, description: string, allowAllOutbound = true): SecurityGroup =>
      new SecurityGroup(this, id, { vpc: this.vpc, description, allowAllOutbound });
    this.jobManagerSg = sg('JobManagerSg', 'Fluxo JobManager: gRPC 6123, web 8081');
    this.taskManagerSg = sg('TaskManagerSg', 'Fluxo TaskManagers: data/control port 6130');
    this.redisSg = sg('RedisSg', 'Fluxo Redis: 6379 from the JobManager and TaskManagers', s.redisMode === 'ec2');

    const rpc = Port.tcp(PORTS.jobManagerRpc);
    this.jobManagerSg.addIngressRule(this.taskManagerSg, rpc, 'TaskManagers register and heartbeat');
    this.jobManagerSg.addIngressRule(client, rpc, 'fluxo CLI (submit, list, scale --wait)');
    this.jobManagerSg.addIngressRule(client, Port.tcp(PORTS.web), 'web UI, REST API, /metrics');
    const data = Port.tcp(PORTS.taskManagerData);
    this.taskManagerSg.addIngressRule(this.taskManagerSg, data, 'records between TaskManagers');
    this.taskManagerSg.addIngressRule(this.jobManagerSg, data, 'task deployment from the JobManager');
    const redisPort = Port.tcp(PORTS.redis);
    this.redisSg.addIngressRule(this.jobManagerSg, redisPort, 'JobManager: job records, checkpoints');
    this.redisSg.addIngressRule(this.taskManagerSg, redisPort, 'TaskManagers: state snapshots, streams');

    let keyPair: IKeyPair | undefined;
    if (s.keyPairName !== undefined) {
      keyPair = KeyPair.fromKeyPairName(this, 'KeyPair', s.keyPairName);
      const ssh = Port.tcp(PORTS.ssh);
      this.jobManagerSg.addIngressRule(client, ssh, 'SSH from the client CIDR');
      this.taskManagerSg.addIngressRule(client, ssh, 'SSH from the client CIDR');
      if (s.redisMode === 'ec2') this.redisSg.addIngressRule(client, ssh, 'SSH from the client CIDR');
    }

    const role = (id: string): Role => {
      const r = new Role(this, id, { assumedBy: new ServicePrincipal('ec2.amazonaws.com') });
      // SSM Session Manager: a shell without SSH, and `journalctl -u fluxo-*` from the console
      r.addManagedPolicy(ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'));
      return r;
    };
    const publicSubnets = { subnetType: SubnetType.PUBLIC };

    // --- Redis ---
    if (s.redisMode === 'elasticache') {
      const subnets = new CfnSubnetGroup(this, 'RedisSubnets', {
        description: 'Fluxo Redis',
        subnetIds: this.vpc.isolatedSubnets.map((n) => n.subnetId),
      });
      const rg = new CfnReplicationGroup(this, 'Redis', {
        replicationGroupDescription: 'Fluxo: job records, checkpoints, streams',
        engine: 'redis',
        engineVersion: '7.1',
        cacheNodeType: s.redisNodeType,
        numCacheClusters: 1,
        automaticFailoverEnabled: false,
        port: PORTS.redis,
        cacheSubnetGroupName: subnets.ref,
        securityGroupIds: [this.redisSg.securityGroupId],
        atRestEncryptionEnabled: true,
        transitEncryptionEnabled: false,
      });
      this.redisReplicationGroup = rg;
      this.redisUrl = `redis://${rg.attrPrimaryEndPointAddress}:${rg.attrPrimaryEndPointPort}`;
    } else {
      const type = new InstanceType(s.redisInstanceType);
      const ud = UserData.forLinux();
      ud.addCommands(...redisCommands());
      this.redisInstance = new Instance(this, 'RedisInstance', {
        vpc: this.vpc,
        vpcSubnets: publicSubnets, // for dnf; the security group admits only Fluxo
        instanceType: type,
        machineImage: amazonLinux(type),
        securityGroup: this.redisSg,
        role: role('RedisRole'),
        keyPair,
        userData: ud,
        requireImdsv2: true,
        blockDevices: [
          {
            deviceName: '/dev/xvda',
            volume: BlockDeviceVolume.ebs(20, { volumeType: EbsDeviceVolumeType.GP3, encrypted: true }),
          },
        ],
      });
      this.redisUrl = `redis://${this.redisInstance.instancePrivateIp}:${PORTS.redis}`;
    }

    // --- Fluxo itself, the tokens, TLS ---
    const tarball = new Asset(this, 'FluxoPackage', { path: s.fluxoTarball });
    this.webTokenSecret = new Secret(this, 'WebToken', {
      description: 'Fluxo web UI / REST API token (Authorization: Bearer <token>)',
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // printable ASCII without spaces, as a cluster token must be (docs/security.md)
    this.clusterTokenSecret = new Secret(this, 'ClusterToken', {
      description: 'Fluxo cluster token: every gRPC call of the cluster and the CLI carries it (--cluster-token-file)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    if (s.tlsSecret !== undefined)
      this.tlsSecret = s.tlsSecret.startsWith('arn:')
        ? Secret.fromSecretCompleteArn(this, 'TlsSecret', s.tlsSecret)
        : Secret.fromSecretNameV2(this, 'TlsSecret', s.tlsSecret);
    const tls = s.tlsSecret !== undefined ? { secretId: s.tlsSecret, serverName: s.tlsServerName } : undefined;
    const install = installFluxoCommands({ tarballS3Url: tarball.s3ObjectUrl, region: this.region });

    // --- JobManager ---
    const jmRole = role('JobManagerRole');
    this.jobManagerRole = jmRole;
    tarball.grantRead(jmRole);
    this.webTokenSecret.grantRead(jmRole);
    this.clusterTokenSecret.grantRead(jmRole);
    this.tlsSecret?.grantRead(jmRole);
    const jmType = new InstanceType(s.jobManagerInstanceType);
    const jmUserData = UserData.forLinux();
    jmUserData.addCommands(
      ...install,
      ...jobManagerCommands({
        redisUrl: this.redisUrl,
        region: this.region,
        secrets: {
          webTokenSecretArn: this.webTokenSecret.secretArn,
          clusterTokenSecretArn: this.clusterTokenSecret.secretArn,
          tls,
        },
        scheduler: s.scheduler,
        resourceStabilizationTimeoutMs: s.resourceStabilizationTimeoutMs,
      }),
    );
    this.jobManager = new Instance(this, 'JobManager', {
      vpc: this.vpc,
      vpcSubnets: publicSubnets,
      instanceType: jmType,
      machineImage: amazonLinux(jmType),
      securityGroup: this.jobManagerSg,
      role: jmRole,
      keyPair,
      userData: jmUserData,
      // a new tarball (or Redis) means a new JobManager: its state is in Redis, and user data only runs at first boot
      userDataCausesReplacement: true,
      requireImdsv2: true,
    });

    // --- TaskManagers ---
    const tmRole = role('TaskManagerRole');
    this.taskManagerRole = tmRole;
    tarball.grantRead(tmRole);
    // the cluster token (and TLS files), not the web token
    this.clusterTokenSecret.grantRead(tmRole);
    this.tlsSecret?.grantRead(tmRole);
    const tmType = new InstanceType(s.taskManagerInstanceType);
    const tmUserData = UserData.forLinux();
    tmUserData.addCommands(
      ...install,
      ...taskManagerCommands({
        jobManagerHost: this.jobManager.instancePrivateIp,
        slots: s.slotsPerTaskManager,
        redisUrl: this.redisUrl,
        region: this.region,
        secrets: { clusterTokenSecretArn: this.clusterTokenSecret.secretArn, tls },
      }),
    );
    const launchTemplate = new LaunchTemplate(this, 'TaskManagerLaunchTemplate', {
      instanceType: tmType,
      machineImage: amazonLinux(tmType),
      securityGroup: this.taskManagerSg,
      role: tmRole,
      keyPair,
      userData: tmUserData,
      requireImdsv2: true,
    });
    this.taskManagers = new AutoScalingGroup(this, 'TaskManagers', {
      vpc: this.vpc,
      vpcSubnets: publicSubnets,
      launchTemplate,
      minCapacity: s.taskManagers.min,
      maxCapacity: s.taskManagers.max,
      desiredCapacity: s.taskManagers.desired,
      // a new launch template version (new tarball, new JobManager) replaces TaskManagers one at a time
      updatePolicy: UpdatePolicy.rollingUpdate({ maxBatchSize: 1 }),
    });

    // Known and documented (deploy/README.md): a deploy that updates the group may set its desired
    // capacity back to taskManagers.desired, undoing a `fluxo scale`
    Annotations.of(this.taskManagers).acknowledgeWarning(
      '@aws-cdk/aws-autoscaling:desiredCapacitySet',
      'fluxo scale changes the desired capacity; deploy with -c tmDesired=<n> to keep it',
    );

    // --- Outputs ---
    const jmPublic = this.jobManager.instancePublicIp;
    new CfnOutput(this, OUTPUTS.webUrl, {
      description: 'Fluxo web UI and REST API (from the client CIDR)',
      value: `http://${jmPublic}:${PORTS.web}/`,
    });
    new CfnOutput(this, OUTPUTS.jobManagerAddress, {
      description: 'JobManager gRPC address for `fluxo --jobmanager` / FLUXO_JOBMANAGER (from the client CIDR)',
      value: `${jmPublic}:${PORTS.jobManagerRpc}`,
    });
    new CfnOutput(this, OUTPUTS.jobManagerPrivateAddress, {
      description: 'JobManager gRPC address inside the VPC',
      value: `${this.jobManager.instancePrivateIp}:${PORTS.jobManagerRpc}`,
    });
    new CfnOutput(this, OUTPUTS.jobManagerInstanceId, {
      description: 'JobManager instance, for `aws ssm start-session --target`',
      value: this.jobManager.instanceId,
    });
    new CfnOutput(this, OUTPUTS.asgName, {
      description: 'TaskManager Auto Scaling group, for `fluxo scale --asg` / FLUXO_ASG',
      value: this.taskManagers.autoScalingGroupName,
    });
    new CfnOutput(this, OUTPUTS.webTokenSecretArn, {
      description: 'Secrets Manager secret holding the web token (aws secretsmanager get-secret-value --secret-id …)',
      value: this.webTokenSecret.secretArn,
    });
    new CfnOutput(this, OUTPUTS.clusterTokenSecretArn, {
      description:
        'Secrets Manager secret holding the cluster token, for the CLI (--cluster-token-file / FLUXO_CLUSTER_TOKEN_FILE)',
      value: this.clusterTokenSecret.secretArn,
    });
    new CfnOutput(this, OUTPUTS.redisUrl, {
      description: 'Redis, reachable from the JobManager and TaskManagers only',
      value: this.redisUrl,
    });
  }
}

/** The latest Amazon Linux 2023 AMI for the instance type's CPU (an SSM parameter, resolved at deploy time). */
function amazonLinux(type: InstanceType): IMachineImage {
  return MachineImage.latestAmazonLinux2023({
    cpuType: type.architecture === InstanceArchitecture.ARM_64 ? AmazonLinuxCpuType.ARM_64 : AmazonLinuxCpuType.X86_64,
  });
}
