/**
 * The script fluxo-secrets.service runs on the AWS instances (deploy/aws/lib/user-data.ts,
 * fetchSecretsScript), run here with bash against a fake `aws` command: it writes each secret to
 * a root-only file (folder 0700, files 0600), splits the TLS secret's JSON into the CA,
 * certificate and key, replaces files only once every secret was read, keeps an earlier fetch
 * when Secrets Manager cannot be reached, and never prints a secret.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchSecretsScript, type InstanceSecrets } from '../../../deploy/aws/lib/user-data.js';

const CLUSTER_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ClusterToken-AbCdEf';
const WEB_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:WebToken-GhIjKl';
const TLS_ID = 'team-a/fluxo-tls';
const CLUSTER_TOKEN = 'c1usterT0kenValue';
const WEB_TOKEN = 'w3bT0kenValue';
const PEM = (what: string): string => `-----BEGIN ${what}-----\nAAAA${what.length}\n-----END ${what}-----\n`;
const TLS_VALUE = { ca: PEM('CERTIFICATE'), cert: PEM('CERTIFICATE'), key: PEM('PRIVATE KEY') };

let root: string;
let dir: string;
let secretsFolder: string;
let bin: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'fluxo-fetch-secrets-'));
  dir = join(root, 'etc-fluxo-secrets');
  secretsFolder = join(root, 'secrets-manager');
  bin = join(root, 'bin');
  mkdirSync(secretsFolder);
  mkdirSync(bin);
  // the fake aws CLI: prints the stored SecretString (with --output text's newline), or fails as aws does
  writeFileSync(
    join(bin, 'aws'),
    [
      '#!/bin/sh',
      'echo "$*" >> "$FAKE_SM/calls"',
      'while [ $# -gt 0 ]; do [ "$1" = --secret-id ] && id=$2; shift; done',
      'f="$FAKE_SM/$(printf %s "$id" | tr / _)"',
      '[ -f "$f" ] || { echo "An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation" >&2; exit 254; }',
      'cat "$f"; echo',
    ].join('\n'),
  );
  chmodSync(join(bin, 'aws'), 0o755);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Stores a secret in the fake Secrets Manager. */
function store(id: string, value: string): void {
  writeFileSync(join(secretsFolder, id.replaceAll('/', '_')), value);
}
function run(secrets: InstanceSecrets): { code: number | null; stdout: string; stderr: string } {
  const script = join(root, 'fetch.sh');
  writeFileSync(
    script,
    `${fetchSecretsScript({ region: 'eu-west-1', secrets, dir, node: process.execPath, retryDelaysS: [] }).join('\n')}\n`,
  );
  const r = spawnSync('bash', [script], {
    encoding: 'utf8',
    env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, FAKE_SM: secretsFolder },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const mode = (p: string): number => statSync(p).mode & 0o777;
const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
const JM_TLS: InstanceSecrets = {
  webTokenSecretArn: WEB_ARN,
  clusterTokenSecretArn: CLUSTER_ARN,
  tls: { secretId: TLS_ID, serverName: 'fluxo.cluster' },
};

describe('fluxo-fetch-secrets (the boot script that reads the secrets)', () => {
  it('writes the tokens to files only their owner can read, in a folder only its owner can enter', () => {
    store(CLUSTER_ARN, CLUSTER_TOKEN);
    store(WEB_ARN, WEB_TOKEN);
    const r = run({ webTokenSecretArn: WEB_ARN, clusterTokenSecretArn: CLUSTER_ARN });
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(mode(dir)).toBe(0o700);
    expect(read('cluster-token').trim()).toBe(CLUSTER_TOKEN);
    expect(read('web-token').trim()).toBe(WEB_TOKEN);
    for (const f of ['cluster-token', 'web-token']) expect(mode(join(dir, f)), f).toBe(0o600);
    const calls = readFileSync(join(secretsFolder, 'calls'), 'utf8');
    expect(calls).toContain(`--region eu-west-1 --secret-id ${CLUSTER_ARN} --query SecretString --output text`);
  });

  it("a TaskManager's script reads the cluster token only", () => {
    store(CLUSTER_ARN, CLUSTER_TOKEN);
    store(WEB_ARN, WEB_TOKEN);
    expect(run({ clusterTokenSecretArn: CLUSTER_ARN }).code).toBe(0);
    expect(existsSync(join(dir, 'cluster-token'))).toBe(true);
    expect(existsSync(join(dir, 'web-token'))).toBe(false);
    expect(readFileSync(join(secretsFolder, 'calls'), 'utf8')).not.toContain(WEB_ARN);
  });

  it('splits the TLS secret into the CA, certificate and key (0600 each), keeping no JSON copy', () => {
    store(CLUSTER_ARN, CLUSTER_TOKEN);
    store(WEB_ARN, WEB_TOKEN);
    store(TLS_ID, JSON.stringify(TLS_VALUE));
    const r = run(JM_TLS);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(read('tls-ca')).toBe(TLS_VALUE.ca);
    expect(read('tls-cert')).toBe(TLS_VALUE.cert);
    expect(read('tls-key')).toBe(TLS_VALUE.key);
    for (const f of ['tls-ca', 'tls-cert', 'tls-key']) expect(mode(join(dir, f)), f).toBe(0o600);
    expect(spawnSync('ls', ['-A', dir], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort()).toEqual(
      ['cluster-token', 'tls-ca', 'tls-cert', 'tls-key', 'web-token'].sort(),
    );
  });

  it('refuses a TLS secret that is not JSON with three PEM strings, naming the missing part but no value', () => {
    store(CLUSTER_ARN, CLUSTER_TOKEN);
    store(WEB_ARN, WEB_TOKEN);
    store(TLS_ID, JSON.stringify({ ca: TLS_VALUE.ca, cert: TLS_VALUE.cert, key: 'not a key' }));
    const r = run(JM_TLS);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('key is missing or not PEM');
    expect(r.stderr).not.toContain(CLUSTER_TOKEN);
    expect(r.stderr).not.toContain('AAAA');
    // nothing replaced: all or nothing
    expect(existsSync(join(dir, 'cluster-token'))).toBe(false);
  });

  it('keeps the files of an earlier fetch when Secrets Manager cannot be read, and fails without them', () => {
    const secrets = { webTokenSecretArn: WEB_ARN, clusterTokenSecretArn: CLUSTER_ARN };
    store(CLUSTER_ARN, CLUSTER_TOKEN); // the web token's secret cannot be read
    const first = run(secrets);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('there is no earlier');
    expect(existsSync(join(dir, 'cluster-token'))).toBe(false);

    store(WEB_ARN, WEB_TOKEN);
    expect(run(secrets).code).toBe(0);
    rmSync(join(secretsFolder, WEB_ARN.replaceAll('/', '_')));
    store(CLUSTER_ARN, 'a-newer-token');
    const outage = run(secrets);
    expect(outage.code).toBe(0);
    expect(outage.stderr).toContain('keeping those of an earlier fetch');
    expect(read('cluster-token').trim()).toBe(CLUSTER_TOKEN);
    expect(read('web-token').trim()).toBe(WEB_TOKEN);
  });
});
