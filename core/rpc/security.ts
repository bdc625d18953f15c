/**
 * One process's RPC security (TLS material and cluster token) and the gRPC server and client
 * options that apply it. Every channel of the cluster is built from these: CLI → JobManager,
 * TaskManager → JobManager, JobManager → TaskManager and TaskManager ↔ TaskManager (data plane).
 * Without TLS and token everything stays plaintext and open, as on a loopback dev cluster.
 */
import type * as grpc from '@grpc/grpc-js';
import { EngineError } from '../errors/index.js';
import { type AuthRefusal, authInterceptor, readClusterToken, tokenInterceptor } from './auth.js';
import { loadTls, type TlsMaterial } from './tls.js';

/** The security flags of a `fluxo` command (each also settable from the environment, see client/main.ts). */
export interface SecurityFlags {
  /** `--tls-ca <file>` */
  tlsCa?: string;
  /** `--tls-cert <file>` */
  tlsCert?: string;
  /** `--tls-key <file>` */
  tlsKey?: string;
  /** `--tls-client-auth`: servers require client certificates (mutual TLS) */
  tlsClientAuth?: boolean;
  /** `--tls`: clients use TLS with Node's public roots even without `--tls-ca` */
  tls?: boolean;
  /** `--tls-server-name <name>`: the name checked in server certificates instead of the dialled host */
  tlsServerName?: string;
  /** `--cluster-token-file <file>` */
  clusterTokenFile?: string;
  /**
   * The environment variables the file options came from, when they did (commander's option
   * value source), so errors name both: `cannot read --tls-cert (env FLUXO_TLS_CERT) /x.crt`
   */
  envNames?: { tlsCa?: string; tlsCert?: string; tlsKey?: string };
}

/** What one process uses on its RPC channels; `{}` = plaintext, no token. */
export interface RpcSecurity {
  /** TLS on every channel this process serves and dials; undefined = plaintext */
  tls?: TlsMaterial;
  /** the cluster token sent on every call and required on every call served; undefined = none */
  token?: string;
}

/**
 * Loads a process's security from its flags: reads the PEM files and the token file.
 * TLS is on for a server (`role` server: JobManager, TaskManager) when any `--tls-*` file or
 * `--tls-client-auth` is given, and then needs a certificate and key; for a client (the CLI)
 * when `--tls`, `--tls-ca` or `--tls-cert` is given.
 * @param envToken the value of env FLUXO_CLUSTER_TOKEN (used when no token file is given)
 * @throws EngineError SECURITY_CONFIG_CODE naming the option and file at fault
 */
export function loadRpcSecurity(
  flags: SecurityFlags,
  role: 'server' | 'client',
  envToken: string | undefined,
): RpcSecurity {
  const wantsTls =
    flags.tlsCa !== undefined ||
    flags.tlsCert !== undefined ||
    flags.tlsKey !== undefined ||
    (role === 'server' ? flags.tlsClientAuth === true : flags.tls === true);
  const sec: RpcSecurity = {};
  if (wantsTls)
    sec.tls = loadTls(
      {
        caFile: flags.tlsCa,
        certFile: flags.tlsCert,
        keyFile: flags.tlsKey,
        requireClientCert: role === 'server' && flags.tlsClientAuth === true,
        serverName: flags.tlsServerName,
        envNames: {
          caFile: flags.envNames?.tlsCa,
          certFile: flags.envNames?.tlsCert,
          keyFile: flags.envNames?.tlsKey,
        },
      },
      role,
    );
  const token = readClusterToken(flags.clusterTokenFile, envToken);
  if (token !== undefined) sec.token = token;
  return sec;
}

/**
 * gRPC server options that check the cluster token on every call (merge them over the base
 * channel options). No token: no interceptor.
 * @param who the serving process, named in refusals (`JobManager`, `TaskManager tm-1`)
 * @param onRefused called for each refused call (log it; it never carries the token)
 */
export function serverSecurityOptions(
  sec: RpcSecurity | undefined,
  who: string,
  onRefused?: (r: AuthRefusal) => void,
): grpc.ServerOptions {
  return sec?.token ? { interceptors: [authInterceptor(sec.token, who, onRefused)] } : {};
}

/**
 * gRPC client options that send the cluster token on every call and, with `tls.serverName`,
 * check server certificates for that name (merge them over the base channel options).
 */
export function clientSecurityOptions(sec: RpcSecurity | undefined): grpc.ClientOptions {
  const o: grpc.ClientOptions = {};
  if (sec?.token) o.interceptors = [tokenInterceptor(sec.token)];
  if (sec?.tls?.serverName) o['grpc.ssl_target_name_override'] = sec.tls.serverName;
  return o;
}

/** A short description for startup lines and logs, e.g. `TLS, client certificates required, cluster token`; never the token. */
export function describeSecurity(sec: RpcSecurity | undefined): string {
  const parts: string[] = [];
  if (sec?.tls) parts.push(sec.tls.requireClientCert ? 'TLS, client certificates required' : 'TLS');
  else parts.push('plaintext');
  if (sec?.token) parts.push('cluster token');
  return parts.join(', ');
}

/** True for 127.0.0.0/8, ::1 and localhost. */
function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * A warning for a cluster token that would cross a network in plaintext (token, no TLS, and one
 * of `hosts` is not a loopback address), or undefined. The token still works; anyone on the path
 * can read it.
 * @param hosts the addresses this process binds or dials (hosts only, no ports)
 */
export function plaintextTokenWarning(sec: RpcSecurity, hosts: string[]): string | undefined {
  if (!sec.token || sec.tls || hosts.every(isLoopbackHost)) return undefined;
  return 'the cluster token is sent without TLS on a non-loopback address: anyone on the network path can read it; add --tls-cert/--tls-key/--tls-ca (docs/security.md)';
}

/**
 * The error of a call that could not reach its server, made readable (no OpenSSL error-stack
 * noise, no timestamps) and with a hint when the likely cause is a TLS mismatch: a plaintext
 * client against a TLS server, a TLS client against a plaintext server, a server certificate that
 * fails the check (another CA, or a name not in its SANs), or a client certificate the server
 * wants or refused (mutual TLS). Errors of any other kind come back unchanged.
 */
export function explainTransportError(err: unknown, sec: RpcSecurity | undefined): unknown {
  if (!(err instanceof EngineError) || err.code !== 'JOBMANAGER_UNAVAILABLE') return err;
  const m = err.message
    .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)\.?\s*$/, '')
    .replace(/[0-9A-F]{8,}:error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):[\s\S]*$/, 'TLS error: $1')
    .replace(/Error \[ERR_[A-Z_]+\]: /, '')
    .trim()
    .replace(/\.$/, '');
  let hint: string | undefined;
  if (/wrong version number|packet length too long|http request/i.test(m))
    hint = `the server does not speak TLS: drop --tls/--tls-ca/--tls-cert here, or start it with --tls-cert and --tls-key`;
  else if (/self[- ]signed|unable to (get|verify)|certificate verify failed|unknown ca/i.test(m) && !/alert/i.test(m))
    hint = sec?.tls?.ca
      ? `the server's certificate is not signed by the CA given with --tls-ca`
      : `the server's certificate is not signed by a CA Node trusts (--tls uses the public CAs; give the cluster CA with --tls-ca)`;
  else if (/altnames|does not match certificate/i.test(m))
    hint = `the server's certificate does not name the address dialled: add it to the certificate's subjectAltName, or set --tls-server-name`;
  else if (/alert certificate required/i.test(m))
    hint = `the server requires a client certificate (mutual TLS): give one signed by the cluster CA with --tls-cert and --tls-key`;
  else if (/alert (bad certificate|unknown ca|certificate unknown|decrypt error)/i.test(m))
    hint = `the server refused this process's client certificate: it must be signed by the cluster CA`;
  else if (sec?.tls && /Failed to connect|ECONNRESET/i.test(m))
    hint = `the connection closed during the TLS handshake: the server may have refused this process's client certificate (mutual TLS: it must be signed by the cluster CA)`;
  // grpc-js's message when the connection closes before HTTP/2 starts: a TLS server drops a plaintext hello
  else if (!sec?.tls && /^.*: Failed to connect$/.test(m))
    hint = `the connection closed at once: is the server using TLS? Then give its CA with --tls-ca (or env FLUXO_TLS_CA)`;
  if (!hint && m === err.message) return err;
  return new EngineError(err.code, hint ? `${m}; ${hint}` : m, { retryable: err.retryable, cause: err.cause ?? err });
}
