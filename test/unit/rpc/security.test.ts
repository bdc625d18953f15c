/**
 * A process's RPC security (core/rpc/security.ts): which flags turn TLS on, the client and server
 * options that carry and check the token, the startup description, the plaintext-token warning,
 * and the readable errors for TLS mismatches (the messages are the ones grpc-js really gives).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../../../core/errors/index.js';
import {
  clientSecurityOptions,
  describeSecurity,
  explainTransportError,
  loadRpcSecurity,
  plaintextTokenWarning,
  serverSecurityOptions,
} from '../../../core/rpc/security.js';
import { type CertFiles, makeCa, makeLeaf } from '../../support/certs.js';

let dir: string;
let ca: CertFiles;
let leaf: CertFiles;
let tokenFile: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-security-unit-'));
  ca = makeCa(dir, 'ca');
  leaf = makeLeaf(dir, ca, 'node', ['IP:127.0.0.1']);
  tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, 'file-token\n');
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('loadRpcSecurity', () => {
  it('no flags: plaintext, no token (a loopback dev cluster stays zero-config)', () => {
    expect(loadRpcSecurity({}, 'server', undefined)).toEqual({});
    expect(loadRpcSecurity({}, 'client', undefined)).toEqual({});
  });

  it('a client turns TLS on with --tls, --tls-ca or --tls-cert', () => {
    expect(loadRpcSecurity({ tls: true }, 'client', undefined).tls?.ca).toBeUndefined();
    expect(loadRpcSecurity({ tlsCa: ca.cert }, 'client', undefined).tls?.ca).toBeDefined();
    const m = loadRpcSecurity({ tlsCert: leaf.cert, tlsKey: leaf.key, tlsServerName: 'jm.internal' }, 'client', 't');
    expect(m.tls?.cert).toBeDefined();
    expect(m.tls?.serverName).toBe('jm.internal');
    expect(m.token).toBe('t');
  });

  it('a server with TLS flags needs its certificate; --tls-client-auth only for servers', () => {
    expect(() => loadRpcSecurity({ tlsCa: ca.cert }, 'server', undefined)).toThrow(/needs its certificate and key/);
    expect(() => loadRpcSecurity({ tlsClientAuth: true }, 'server', undefined)).toThrow(/needs its certificate/);
    const s = loadRpcSecurity(
      { tlsCa: ca.cert, tlsCert: leaf.cert, tlsKey: leaf.key, tlsClientAuth: true },
      'server',
      undefined,
    );
    expect(s.tls?.requireClientCert).toBe(true);
    const c = loadRpcSecurity({ tlsCa: ca.cert, tlsClientAuth: true }, 'client', undefined);
    expect(c.tls?.requireClientCert).toBe(false);
  });

  it('a file from the environment is named by flag and variable in errors', () => {
    const f = path.join(dir, 'nope.crt');
    expect(() =>
      loadRpcSecurity({ tlsCert: f, tlsKey: leaf.key, envNames: { tlsCert: 'FLUXO_TLS_CERT' } }, 'client', undefined),
    ).toThrow(`cannot read --tls-cert (env FLUXO_TLS_CERT) ${f}: no such file`);
    expect(() => loadRpcSecurity({ tlsCa: f, envNames: {} }, 'client', undefined)).toThrow(
      `cannot read --tls-ca ${f}: no such file`,
    );
  });

  it('the token file wins over FLUXO_CLUSTER_TOKEN', () => {
    expect(loadRpcSecurity({ clusterTokenFile: tokenFile }, 'client', 'env-token').token).toBe('file-token');
    expect(loadRpcSecurity({}, 'client', 'env-token').token).toBe('env-token');
  });
});

describe('server and client options', () => {
  it('no token: no interceptors, so nothing changes on an open cluster', () => {
    expect(serverSecurityOptions({}, 'JobManager')).toEqual({});
    expect(serverSecurityOptions(undefined, 'JobManager')).toEqual({});
    expect(clientSecurityOptions({})).toEqual({});
  });

  it('a token: one interceptor each side; a server name: the target name override', () => {
    expect(serverSecurityOptions({ token: 't' }, 'JobManager').interceptors).toHaveLength(1);
    const c = clientSecurityOptions({ token: 't', tls: { requireClientCert: false, serverName: 'jm.internal' } });
    expect(c.interceptors).toHaveLength(1);
    expect(c['grpc.ssl_target_name_override']).toBe('jm.internal');
  });
});

describe('describeSecurity and plaintextTokenWarning', () => {
  it('describes what is on, never the token', () => {
    expect(describeSecurity({})).toBe('plaintext');
    expect(describeSecurity({ token: 'abc' })).toBe('plaintext, cluster token');
    expect(describeSecurity({ tls: { requireClientCert: false } })).toBe('TLS');
    expect(describeSecurity({ tls: { requireClientCert: true }, token: 'abc' })).toBe(
      'TLS, client certificates required, cluster token',
    );
  });

  it('warns about a token without TLS only off loopback', () => {
    expect(plaintextTokenWarning({ token: 't' }, ['127.0.0.1', 'localhost', '::1'])).toBeUndefined();
    expect(plaintextTokenWarning({}, ['10.0.0.5'])).toBeUndefined();
    expect(plaintextTokenWarning({ token: 't', tls: { requireClientCert: false } }, ['10.0.0.5'])).toBeUndefined();
    expect(plaintextTokenWarning({ token: 't' }, ['127.0.0.1', '10.0.0.5'])).toMatch(/without TLS on a non-loopback/);
    expect(plaintextTokenWarning({ token: 't' }, ['0.0.0.0'])).toMatch(/without TLS/);
  });
});

describe('explainTransportError', () => {
  const down = (why: string) =>
    new EngineError('JOBMANAGER_UNAVAILABLE', `cannot reach JobManager at 10.0.0.5:6123: ${why}`, { retryable: true });
  const tls = { tls: { requireClientCert: false } };
  const explain = (why: string, sec = {}) => (explainTransportError(down(why), sec) as Error).message;

  it('a plaintext client against a TLS server: asks whether it uses TLS', () => {
    expect(explain('Failed to connect (2026-11-29T17:59:09.404Z).')).toBe(
      'cannot reach JobManager at 10.0.0.5:6123: Failed to connect; the connection closed at once: is the server using TLS? Then give its CA with --tls-ca (or env FLUXO_TLS_CA)',
    );
  });

  it('a TLS client against a plaintext server: says the server does not speak TLS, without the OpenSSL stack', () => {
    expect(
      explain(
        '809C6776957F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n (2026-11-29T17:59:09.404Z).',
        tls,
      ),
    ).toBe(
      'cannot reach JobManager at 10.0.0.5:6123: TLS error: wrong version number; the server does not speak TLS: drop --tls/--tls-ca/--tls-cert here, or start it with --tls-cert and --tls-key',
    );
  });

  it('certificate problems: another CA, a name not in the SANs, a client certificate missing or refused', () => {
    const withCa = { tls: { requireClientCert: false, ca: Buffer.from('ca') } };
    expect(explain('self-signed certificate in certificate chain.', withCa)).toMatch(
      /: self-signed certificate in certificate chain; the server's certificate is not signed by the CA given with --tls-ca$/,
    );
    // `--tls` alone (public CAs): no word of a --tls-ca the user never gave
    expect(explain('unable to get local issuer certificate.', tls)).toMatch(
      /; the server's certificate is not signed by a CA Node trusts \(--tls uses the public CAs; give the cluster CA with --tls-ca\)$/,
    );
    expect(
      explain(
        "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: IP: 10.0.0.5 is not in the cert's list: .",
        tls,
      ),
    ).toMatch(
      /^cannot reach JobManager at 10\.0\.0\.5:6123: Hostname\/IP does not match .*subjectAltName, or set --tls-server-name$/,
    );
    expect(
      explain(
        '80AC9135A57F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n (2026-11-29T17:59:09.366Z).',
        tls,
      ),
    ).toBe(
      'cannot reach JobManager at 10.0.0.5:6123: TLS error: tlsv13 alert certificate required; the server requires a client certificate (mutual TLS): give one signed by the cluster CA with --tls-cert and --tls-key',
    );
    expect(explain('Failed to connect (2026-11-29T17:59:09.404Z).', tls)).toMatch(
      /the server may have refused this process's client certificate/,
    );
  });

  it('leaves other errors alone: a refused port, a dropped plaintext connection, another code, a non-error', () => {
    const refused = down('connect ECONNREFUSED 10.0.0.5:6123');
    expect(explainTransportError(refused, {})).toBe(refused);
    // a plaintext cluster whose JobManager goes away mid-call is not a TLS question
    const dropped = down('Connection dropped');
    expect(explainTransportError(dropped, {})).toBe(dropped);
    const other = new EngineError('JOB_NOT_FOUND', 'no job x');
    expect(explainTransportError(other, {})).toBe(other);
    expect(explainTransportError('x', {})).toBe('x');
  });
});
