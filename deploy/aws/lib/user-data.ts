/**
 * The boot scripts (EC2 user data) of the Fluxo instances, as lists of shell lines. Pure: values
 * that CloudFormation fills in at deploy time (the JobManager's private IP, the Redis endpoint,
 * the tarball's S3 location, the secrets' ARNs) arrive as CDK token strings and are resolved in
 * the synthesized template.
 *
 * Layout on an instance (Amazon Linux 2023, systemd 252):
 *   /opt/fluxo/fluxo.tgz              the npm pack tarball, copied from the S3 asset
 *   /opt/fluxo/bin/fluxo              the CLI, installed from it (npm --global --prefix /opt/fluxo)
 *   /etc/fluxo/taskmanager.env        the TaskManager's advertised address (from IMDSv2)
 *   /etc/fluxo/secrets/               root only (0700, files 0600): web-token (JobManager),
 *                                     cluster-token, and with TLS tls-ca, tls-cert, tls-key
 *   /etc/fluxo/cli.env, /usr/local/sbin/fluxo-cli   root only: `fluxo` with this instance's token and TLS files
 *   /var/lib/fluxo                    working folder of the `fluxo` system user (file sinks write here)
 *   fluxo-secrets.service             oneshot, run before every start of the Fluxo unit: fetches the secrets
 *   fluxo-jobmanager.service / fluxo-taskmanager.service / redis   systemd units
 *
 * No secret is ever part of these scripts, only the secrets' ARNs (or the TLS secret's name). The
 * values are read from Secrets Manager by fluxo-secrets.service into /etc/fluxo/secrets, which
 * only root can read; the Fluxo unit, running as the `fluxo` user, gets them as systemd
 * credentials (`LoadCredential=`, read by systemd as root into the unit's private
 * `$CREDENTIALS_DIRECTORY`, systemd's `%d`) and names those files in its flags.
 */
import { PORTS, type Scheduler } from './settings.js';

export const FLUXO_BIN = '/opt/fluxo/bin/fluxo';
export const TASKMANAGER_ENV_FILE = '/etc/fluxo/taskmanager.env';
/** Where fluxo-secrets.service puts the secrets: root only. */
export const SECRETS_DIR = '/etc/fluxo/secrets';
export const FETCH_SECRETS_SCRIPT = '/usr/local/sbin/fluxo-fetch-secrets';
export const SECRETS_UNIT = 'fluxo-secrets.service';
/** Environment of `fluxo-cli` (root only): FLUXO_JOBMANAGER, the token file, the TLS files. */
export const CLI_ENV_FILE = '/etc/fluxo/cli.env';
/** `sudo /usr/local/sbin/fluxo-cli <command>`: the fluxo CLI with this instance's token and TLS files. */
export const CLI_WRAPPER = '/usr/local/sbin/fluxo-cli';
/** The credential names: files of SECRETS_DIR, and of the unit's credentials directory (`%d/<name>`). */
export const CREDENTIALS = {
  webToken: 'web-token',
  clusterToken: 'cluster-token',
  tlsCa: 'tls-ca',
  tlsCert: 'tls-cert',
  tlsKey: 'tls-key',
} as const;
const IMDS = 'http://169.254.169.254/latest';

/** The secrets one instance fetches: ARNs (or the TLS secret's name), never values. */
export interface InstanceSecrets {
  /** the web token's secret (JobManager only) */
  webTokenSecretArn?: string;
  /** the cluster token's secret (every Fluxo instance) */
  clusterTokenSecretArn: string;
  /** TLS: the secret holding `{"ca", "cert", "key"}` PEM strings, and the name its certificate is for */
  tls?: { secretId: string; serverName: string };
}

/** The credential files an instance's secrets give (names in SECRETS_DIR). */
export function credentialNames(secrets: InstanceSecrets): string[] {
  return [
    ...(secrets.webTokenSecretArn !== undefined ? [CREDENTIALS.webToken] : []),
    CREDENTIALS.clusterToken,
    ...(secrets.tls ? [CREDENTIALS.tlsCa, CREDENTIALS.tlsCert, CREDENTIALS.tlsKey] : []),
  ];
}

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

/**
 * A systemd unit running `fluxo …` as the `fluxo` user, restarted whenever it exits. Every start
 * (and restart) first runs SECRETS_UNIT (`Requires=` + `After=`; a oneshot is inactive once done,
 * so each start runs it again), then systemd loads `credentials` from SECRETS_DIR into the unit's
 * credentials directory, readable by the `fluxo` user only.
 */
function unit(o: { description: string; environment: string[]; credentials: string[]; execStart: string }): string[] {
  return [
    '[Unit]',
    `Description=${o.description}`,
    'Wants=network-online.target',
    `Requires=${SECRETS_UNIT}`,
    `After=network-online.target ${SECRETS_UNIT}`,
    '',
    '[Service]',
    'User=fluxo',
    'Group=fluxo',
    'WorkingDirectory=/var/lib/fluxo',
    'Environment=NODE_ENV=production',
    'Environment=LOG_LEVEL=info',
    ...o.environment,
    ...o.credentials.map((c) => `LoadCredential=${c}:${SECRETS_DIR}/${c}`),
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
 * Splits the TLS secret's JSON (`{"ca", "cert", "key"}`, PEM strings) into tls-ca, tls-cert and
 * tls-key (mode 0600) in a folder. Node.js, because it is installed anyway; no `'` inside, as it
 * sits in a single-quoted shell word.
 */
const SPLIT_TLS_JS = [
  'const fs = require("node:fs");',
  'const [file, dir] = process.argv.slice(1);',
  'let v;',
  'try { v = JSON.parse(fs.readFileSync(file, "utf8")); } catch { v = undefined; }',
  'for (const k of ["ca", "cert", "key"]) {',
  'if (typeof v?.[k] !== "string" || !v[k].includes("-----BEGIN ")) {',
  'console.error("fluxo-fetch-secrets: the TLS secret must be a JSON object with ca, cert and key, each a PEM string; " + k + " is missing or not PEM");',
  'process.exit(1);',
  '}',
  'fs.writeFileSync(dir + "/tls-" + k, v[k], { mode: 0o600 });',
  '}',
].join(' ');

/**
 * The script fluxo-secrets.service runs (as root): reads the instance's secrets from Secrets
 * Manager into `o.dir` (0700; files 0600, root's), each file replaced by a rename once every
 * secret has been read. It tries 5 times over about a minute (5, 10, 20, 30 s apart); if every
 * try fails and the files of an earlier fetch are all there, it keeps those (a restart during a
 * Secrets Manager outage still starts) and says so on stderr; otherwise it exits 1.
 * @param o.region region of the secrets (a token is fine)
 * @param o.dir default SECRETS_DIR (tests use a temporary folder)
 * @param o.node the node binary that splits the TLS secret; default /usr/local/bin/node
 * @param o.retryDelaysS seconds between tries; default [5, 10, 20, 30]
 */
export function fetchSecretsScript(o: {
  region: string;
  secrets: InstanceSecrets;
  dir?: string;
  node?: string;
  retryDelaysS?: number[];
}): string[] {
  const dir = o.dir ?? SECRETS_DIR;
  const get = (id: string, file: string): string =>
    `aws secretsmanager get-secret-value --region ${o.region} --secret-id '${id}' --query SecretString --output text > "$tmp/${file}"`;
  const steps = [
    ...(o.secrets.webTokenSecretArn !== undefined ? [get(o.secrets.webTokenSecretArn, CREDENTIALS.webToken)] : []),
    get(o.secrets.clusterTokenSecretArn, CREDENTIALS.clusterToken),
    ...(o.secrets.tls
      ? [
          get(o.secrets.tls.secretId, 'tls.json'),
          `${o.node ?? '/usr/local/bin/node'} -e '${SPLIT_TLS_JS}' "$tmp/tls.json" "$tmp"`,
          'rm -f "$tmp/tls.json"',
        ]
      : []),
  ];
  const names = credentialNames(o.secrets);
  return [
    '#!/bin/bash',
    "# Reads this instance's Fluxo secrets from AWS Secrets Manager into files only root can read;",
    '# the Fluxo unit gets them as systemd credentials (LoadCredential=). Never prints a secret.',
    'set -uo pipefail',
    'umask 077',
    `dir=${dir}`,
    'install -d -m 0700 "$dir"',
    'tmp=$(mktemp -d "$dir/.fetch.XXXXXX") || exit 1',
    'trap \'rm -rf "$tmp"\' EXIT',
    // no `set -e`: it does not apply inside a function called as an `if` condition
    'fetch() {',
    ...steps.map((step, i) => `  ${step}${i < steps.length - 1 ? ' &&' : ''}`),
    '}',
    `for delay in ${[...(o.retryDelaysS ?? [5, 10, 20, 30]), 0].join(' ')}; do`,
    '  if fetch; then',
    `    for f in ${names.join(' ')}; do mv -f "$tmp/$f" "$dir/$f" || exit 1; done`,
    '    exit 0',
    '  fi',
    '  [ "$delay" = 0 ] && break',
    '  echo "fluxo-fetch-secrets: reading the secrets from Secrets Manager failed; trying again in $delay s" >&2',
    '  sleep "$delay"',
    'done',
    `for f in ${names.join(' ')}; do`,
    '  [ -s "$dir/$f" ] || { echo "fluxo-fetch-secrets: cannot read the secrets from Secrets Manager, and there is no earlier $dir/$f" >&2; exit 1; }',
    'done',
    'echo "fluxo-fetch-secrets: cannot read the secrets from Secrets Manager; keeping those of an earlier fetch" >&2',
    'exit 0',
  ];
}

/**
 * Shell lines that install the fetch script, fluxo-secrets.service (a oneshot that runs it), and
 * `fluxo-cli`: `fluxo` for root with the token and TLS files of this instance, talking to
 * `jobManager` (host:port), e.g. `sudo /usr/local/sbin/fluxo-cli status <job>`.
 */
function secretsCommands(o: {
  region: string;
  secrets: InstanceSecrets;
  jobManager: string;
  redisUrl: string;
}): string[] {
  const tls = o.secrets.tls;
  return [
    ...writeFile(FETCH_SECRETS_SCRIPT, '0700', fetchSecretsScript({ region: o.region, secrets: o.secrets })),
    ...writeFile(`/etc/systemd/system/${SECRETS_UNIT}`, '0644', [
      '[Unit]',
      'Description=Fluxo: read the secrets from AWS Secrets Manager (before every start of a Fluxo unit)',
      'Wants=network-online.target',
      'After=network-online.target',
      '',
      '[Service]',
      'Type=oneshot',
      `ExecStart=${FETCH_SECRETS_SCRIPT}`,
      'TimeoutStartSec=5min',
    ]),
    ...writeFile(CLI_ENV_FILE, '0600', [
      `FLUXO_JOBMANAGER=${o.jobManager}`,
      `REDIS_URL=${o.redisUrl}`,
      `FLUXO_CLUSTER_TOKEN_FILE=${SECRETS_DIR}/${CREDENTIALS.clusterToken}`,
      ...(tls
        ? [
            `FLUXO_TLS_CA=${SECRETS_DIR}/${CREDENTIALS.tlsCa}`,
            // the shared certificate carries clientAuth: it is the CLI's client certificate too
            `FLUXO_TLS_CERT=${SECRETS_DIR}/${CREDENTIALS.tlsCert}`,
            `FLUXO_TLS_KEY=${SECRETS_DIR}/${CREDENTIALS.tlsKey}`,
            `FLUXO_TLS_SERVER_NAME=${tls.serverName}`,
          ]
        : []),
    ]),
    ...writeFile(CLI_WRAPPER, '0700', [
      '#!/bin/bash',
      `# fluxo for root, with this instance's cluster token (and TLS files): sudo ${CLI_WRAPPER} status <job>`,
      'set -a',
      `. ${CLI_ENV_FILE}`,
      'set +a',
      `exec ${FLUXO_BIN} "$@"`,
    ]),
  ];
}

/** `--cluster-token-file` and, with TLS, the TLS flags, naming the unit's credential files (`%d/<name>`). */
function securityFlags(secrets: InstanceSecrets): string[] {
  const cred = (name: string): string => `%d/${name}`;
  return [
    `--cluster-token-file ${cred(CREDENTIALS.clusterToken)}`,
    ...(secrets.tls
      ? [
          `--tls-ca ${cred(CREDENTIALS.tlsCa)}`,
          `--tls-cert ${cred(CREDENTIALS.tlsCert)}`,
          `--tls-key ${cred(CREDENTIALS.tlsKey)}`,
          '--tls-client-auth',
          `--tls-server-name ${secrets.tls.serverName}`,
        ]
      : []),
  ];
}

/** The JobManager's scheduler settings, as its flags. */
export interface SchedulerSettings {
  scheduler: Scheduler;
  /** `--resource-stabilization-timeout` (ms), passed with the reactive scheduler only */
  resourceStabilizationTimeoutMs: number;
}

/**
 * The JobManager's `fluxo jobmanager` command line: gRPC on 0.0.0.0:6123, web on 0.0.0.0:8081
 * with the web token, job state in `redisUrl`, the cluster token (and TLS files) from the unit's
 * credentials, and the scheduler.
 */
export function jobManagerCommand(o: { redisUrl: string; secrets: InstanceSecrets } & SchedulerSettings): string {
  return [
    `${FLUXO_BIN} jobmanager`,
    '--host 0.0.0.0',
    `--rpc-port ${PORTS.jobManagerRpc}`,
    '--web-host 0.0.0.0',
    `--web-port ${PORTS.web}`,
    `--web-token-file %d/${CREDENTIALS.webToken}`,
    `--redis ${o.redisUrl}`,
    `--scheduler ${o.scheduler}`,
    ...(o.scheduler === 'reactive' ? [`--resource-stabilization-timeout ${o.resourceStabilizationTimeoutMs}`] : []),
    ...securityFlags(o.secrets),
  ].join(' ');
}

/**
 * The JobManager's boot script after installFluxoCommands: the secrets' fetch script and unit,
 * `fluxo-cli`, and the `fluxo-jobmanager` unit.
 * @param o.secrets its web token, cluster token and (optional) TLS secret: ARNs, never values
 */
export function jobManagerCommands(
  o: { redisUrl: string; region: string; secrets: InstanceSecrets & { webTokenSecretArn: string } } & SchedulerSettings,
): string[] {
  return [
    ...secretsCommands({
      region: o.region,
      secrets: o.secrets,
      jobManager: `127.0.0.1:${PORTS.jobManagerRpc}`,
      redisUrl: o.redisUrl,
    }),
    ...writeFile(
      '/etc/systemd/system/fluxo-jobmanager.service',
      '0644',
      unit({
        description: 'Fluxo JobManager',
        environment: [`Environment=REDIS_URL=${o.redisUrl}`],
        credentials: credentialNames(o.secrets),
        execStart: jobManagerCommand(o),
      }),
    ),
    ...enable('fluxo-jobmanager.service'),
  ];
}

/**
 * The TaskManager's `fluxo taskmanager` command line. `--advertise-host` is systemd's
 * `${FLUXO_ADVERTISE_HOST}`, set from the instance metadata in TASKMANAGER_ENV_FILE; the cluster
 * token (and TLS files) come from the unit's credentials.
 * @param o.jobManagerHost the JobManager's private IP (a token)
 */
export function taskManagerCommand(o: { jobManagerHost: string; slots: number; secrets: InstanceSecrets }): string {
  return [
    `${FLUXO_BIN} taskmanager`,
    `--jobmanager ${o.jobManagerHost}:${PORTS.jobManagerRpc}`,
    `--slots ${o.slots}`,
    '--host 0.0.0.0',
    // systemd expands ${FLUXO_ADVERTISE_HOST} from the EnvironmentFile, not JavaScript
    `--advertise-host \${FLUXO_ADVERTISE_HOST}`,
    `--data-port ${PORTS.taskManagerData}`,
    ...securityFlags(o.secrets),
  ].join(' ');
}

/**
 * The TaskManager's boot script after installFluxoCommands: reads the instance's private IPv4
 * address from the instance metadata service (IMDSv2: a session token first) into
 * TASKMANAGER_ENV_FILE, installs the secrets' fetch script and unit and `fluxo-cli`, then writes
 * and starts the `fluxo-taskmanager` unit.
 * @param o.secrets the cluster token and (optional) TLS secret: ARNs, never values; no web token
 */
export function taskManagerCommands(o: {
  jobManagerHost: string;
  slots: number;
  redisUrl: string;
  region: string;
  secrets: InstanceSecrets;
}): string[] {
  const secrets: InstanceSecrets = { clusterTokenSecretArn: o.secrets.clusterTokenSecretArn, tls: o.secrets.tls };
  return [
    `imds_token=$(curl -sS --fail -X PUT ${IMDS}/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')`,
    `private_ip=$(curl -sS --fail -H "X-aws-ec2-metadata-token: $imds_token" ${IMDS}/meta-data/local-ipv4)`,
    `echo "FLUXO_ADVERTISE_HOST=$private_ip" > ${TASKMANAGER_ENV_FILE}`,
    ...secretsCommands({
      region: o.region,
      secrets,
      jobManager: `${o.jobManagerHost}:${PORTS.jobManagerRpc}`,
      redisUrl: o.redisUrl,
    }),
    ...writeFile(
      '/etc/systemd/system/fluxo-taskmanager.service',
      '0644',
      unit({
        description: 'Fluxo TaskManager',
        environment: [`Environment=REDIS_URL=${o.redisUrl}`, `EnvironmentFile=${TASKMANAGER_ENV_FILE}`],
        credentials: credentialNames(secrets),
        execStart: taskManagerCommand({ ...o, secrets }),
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
