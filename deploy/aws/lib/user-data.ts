/**
 * The boot scripts (EC2 user data) of the Fluxo instances, as lists of shell lines. Pure: values
 * that CloudFormation fills in at deploy time (the JobManager's private IP, the Redis endpoint,
 * the tarball's S3 location, the secret's ARN) arrive as CDK token strings and are resolved in
 * the synthesized template.
 *
 * Layout on an instance (Amazon Linux 2023):
 *   /opt/fluxo/fluxo.tgz              the npm pack tarball, copied from the S3 asset
 *   /opt/fluxo/bin/fluxo              the CLI, installed from it (npm --global --prefix /opt/fluxo)
 *   /etc/fluxo/                       settings: taskmanager.env (advertised address), web-token
 *   /var/lib/fluxo                    working folder of the `fluxo` system user (file sinks write here)
 *   fluxo-jobmanager.service / fluxo-taskmanager.service / redis   systemd units
 *
 * No secret is ever part of these scripts: the JobManager's web token is read from Secrets
 * Manager at service start (ExecStartPre) into /etc/fluxo/web-token (mode 0640, group fluxo).
 */
import { PORTS } from './settings.js';

export const FLUXO_BIN = '/opt/fluxo/bin/fluxo';
export const WEB_TOKEN_FILE = '/etc/fluxo/web-token';
export const TASKMANAGER_ENV_FILE = '/etc/fluxo/taskmanager.env';
export const FETCH_TOKEN_SCRIPT = '/usr/local/sbin/fluxo-fetch-web-token';
const IMDS = 'http://169.254.169.254/latest';

/**
 * Installs Node.js 20 (Amazon Linux 2023's `nodejs20` packages; `node` and `npm` are pointed at
 * them), creates the `fluxo` system user, and installs Fluxo from the tarball in S3.
 * @param o.tarballS3Url `s3://bucket/key` of the tarball (a token is fine)
 * @param o.region the region of the bucket (a token is fine)
 */
export function installFluxoCommands(o: { tarballS3Url: string; region: string }): string[] {
  return [
    'set -euo pipefail',
    'dnf install -y nodejs20 nodejs20-npm',
    'ln -sf "$(command -v node-20)" /usr/local/bin/node',
    'ln -sf "$(command -v npm-20)" /usr/local/bin/npm',
    "node --version | grep -q '^v20\\.' || { echo 'fluxo setup: node is not Node.js 20' >&2; exit 1; }",
    'id fluxo >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/fluxo --shell /sbin/nologin fluxo',
    'install -d -m 0755 /opt/fluxo /etc/fluxo',
    `aws s3 cp '${o.tarballS3Url}' /opt/fluxo/fluxo.tgz --region ${o.region} --only-show-errors`,
    'npm install --global --prefix /opt/fluxo --omit=dev --no-audit --no-fund /opt/fluxo/fluxo.tgz',
    `${FLUXO_BIN} --version`,
  ];
}

/** Shell lines that write a file with a quoted heredoc (no shell expansion inside), then set its mode. */
function writeFile(path: string, mode: string, lines: string[]): string[] {
  return [`cat > ${path} <<'FLUXO_EOF'`, ...lines, 'FLUXO_EOF', `chmod ${mode} ${path}`];
}

/** A systemd unit running `fluxo …` as the `fluxo` user, restarted whenever it exits. */
function unit(o: { description: string; environment: string[]; execStartPre?: string; execStart: string }): string[] {
  return [
    '[Unit]',
    `Description=${o.description}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'User=fluxo',
    'Group=fluxo',
    'WorkingDirectory=/var/lib/fluxo',
    'Environment=NODE_ENV=production',
    'Environment=LOG_LEVEL=info',
    ...o.environment,
    ...(o.execStartPre ? [`ExecStartPre=${o.execStartPre}`] : []),
    `ExecStart=${o.execStart}`,
    'Restart=always',
    'RestartSec=5',
    'LimitNOFILE=65536',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ];
}

function enable(service: string): string[] {
  return ['systemctl daemon-reload', `systemctl enable --now ${service}`];
}

/**
 * The JobManager's `fluxo jobmanager` command line: gRPC on 0.0.0.0:6123, web on 0.0.0.0:8081 with
 * the token from WEB_TOKEN_FILE, job state in `redisUrl`.
 */
export function jobManagerCommand(redisUrl: string): string {
  return [
    `${FLUXO_BIN} jobmanager`,
    '--host 0.0.0.0',
    `--rpc-port ${PORTS.jobManagerRpc}`,
    '--web-host 0.0.0.0',
    `--web-port ${PORTS.web}`,
    `--web-token-file ${WEB_TOKEN_FILE}`,
    `--redis ${redisUrl}`,
  ].join(' ');
}

/**
 * The JobManager's boot script after installFluxoCommands: a root-only helper that reads the web
 * token from Secrets Manager into WEB_TOKEN_FILE (run by systemd before every start, so a rotated
 * token is picked up by a restart), and the `fluxo-jobmanager` unit.
 * @param o.webTokenSecretArn the secret's ARN (a token; the secret's value never appears here)
 */
export function jobManagerCommands(o: { redisUrl: string; webTokenSecretArn: string; region: string }): string[] {
  return [
    ...writeFile(FETCH_TOKEN_SCRIPT, '0700', [
      '#!/bin/bash',
      '# Reads the Fluxo web token from Secrets Manager into a file only root and the fluxo group can read.',
      'set -euo pipefail',
      'umask 077',
      `tmp=$(mktemp ${WEB_TOKEN_FILE}.XXXXXX)`,
      `aws secretsmanager get-secret-value --region ${o.region} --secret-id '${o.webTokenSecretArn}' --query SecretString --output text > "$tmp"`,
      'chown root:fluxo "$tmp"',
      'chmod 0640 "$tmp"',
      `mv -f "$tmp" ${WEB_TOKEN_FILE}`,
    ]),
    ...writeFile(
      '/etc/systemd/system/fluxo-jobmanager.service',
      '0644',
      unit({
        description: 'Fluxo JobManager',
        environment: [`Environment=REDIS_URL=${o.redisUrl}`],
        // `+`: as root, to write the file the fluxo user then reads
        execStartPre: `+${FETCH_TOKEN_SCRIPT}`,
        execStart: jobManagerCommand(o.redisUrl),
      }),
    ),
    ...enable('fluxo-jobmanager.service'),
  ];
}

/**
 * The TaskManager's `fluxo taskmanager` command line. `--advertise-host` is systemd's
 * `${FLUXO_ADVERTISE_HOST}`, set from the instance metadata in TASKMANAGER_ENV_FILE.
 * @param jobManagerHost the JobManager's private IP (a token)
 */
export function taskManagerCommand(o: { jobManagerHost: string; slots: number }): string {
  return [
    `${FLUXO_BIN} taskmanager`,
    `--jobmanager ${o.jobManagerHost}:${PORTS.jobManagerRpc}`,
    `--slots ${o.slots}`,
    '--host 0.0.0.0',
    // systemd expands ${FLUXO_ADVERTISE_HOST} from the EnvironmentFile, not JavaScript
    `--advertise-host \${FLUXO_ADVERTISE_HOST}`,
    `--data-port ${PORTS.taskManagerData}`,
  ].join(' ');
}

/**
 * The TaskManager's boot script after installFluxoCommands: reads the instance's private IPv4
 * address from the instance metadata service (IMDSv2: a session token first) into
 * TASKMANAGER_ENV_FILE, then writes and starts the `fluxo-taskmanager` unit.
 */
export function taskManagerCommands(o: { jobManagerHost: string; slots: number; redisUrl: string }): string[] {
  return [
    `imds_token=$(curl -sS --fail -X PUT ${IMDS}/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')`,
    `private_ip=$(curl -sS --fail -H "X-aws-ec2-metadata-token: $imds_token" ${IMDS}/meta-data/local-ipv4)`,
    `echo "FLUXO_ADVERTISE_HOST=$private_ip" > ${TASKMANAGER_ENV_FILE}`,
    ...writeFile(
      '/etc/systemd/system/fluxo-taskmanager.service',
      '0644',
      unit({
        description: 'Fluxo TaskManager',
        environment: [`Environment=REDIS_URL=${o.redisUrl}`, `EnvironmentFile=${TASKMANAGER_ENV_FILE}`],
        execStart: taskManagerCommand(o),
      }),
    ),
    ...enable('fluxo-taskmanager.service'),
  ];
}

/**
 * The boot script of the Redis instance (`ec2` mode): Amazon Linux 2023's `redis6` package (or
 * `valkey` where that replaced it), listening on every address of the instance (the security group
 * admits only the JobManager and TaskManagers), append-only file on, never evicting keys.
 */
export function redisCommands(): string[] {
  return [
    'set -euo pipefail',
    'if dnf install -y redis6; then svc=redis6; conf=/etc/redis6/redis6.conf;',
    'else dnf install -y valkey; svc=valkey; conf=/etc/valkey/valkey.conf; fi',
    // later lines of a redis.conf override earlier ones
    ...[
      'bind 0.0.0.0',
      'protected-mode no',
      `port ${PORTS.redis}`,
      'appendonly yes',
      'maxmemory-policy noeviction',
    ].map((l) => `echo '${l}' >> "$conf"`),
    'systemctl enable --now "$svc"',
  ];
}
