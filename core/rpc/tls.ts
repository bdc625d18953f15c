/**
 * TLS for every gRPC channel of a cluster (control plane and data plane), in one place: PEM
 * loading with readable errors, server credentials (optionally requiring client certificates:
 * mutual TLS) and channel credentials. docs/security.md explains the certificates to make.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { EngineError, type ErrorCode } from '../errors/index.js';

/**
 * The code of a TLS or token setting that cannot be used (a missing, unreadable or non-PEM file,
 * a key that does not fit its certificate, a missing companion option).
 */
export const SECURITY_CONFIG_CODE: ErrorCode = 'CONFIG_INVALID';

/** PEM file paths and switches of one process's TLS (the `--tls-*` flags). */
export interface TlsOptions {
  /**
   * CA certificate(s), PEM: what a peer's certificate must be signed by (the server's for a
   * client; the clients' for a server with `requireClientCert`). Default: Node's built-in public
   * roots for clients; a server that requires client certificates needs it.
   */
  caFile?: string;
  /** this process's certificate (chain), PEM; servers need it, clients only for mutual TLS */
  certFile?: string;
  /** the private key of `certFile`, PEM, unencrypted */
  keyFile?: string;
  /** servers: refuse clients without a certificate signed by `caFile` (mutual TLS). Default false */
  requireClientCert?: boolean;
  /**
   * clients: the name checked against the server certificate instead of the host of the address
   * dialled (`grpc.ssl_target_name_override`). Default: none (the address's host is checked).
   */
  serverName?: string;
  /**
   * For errors: the environment variable each file came from, when it did, so a message names
   * both (`--tls-cert (env FLUXO_TLS_CERT)`). Default: the flag alone.
   */
  envNames?: { caFile?: string; certFile?: string; keyFile?: string };
}

/** Loaded TLS material: what {@link serverCredentials} and {@link channelCredentials} take. */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  requireClientCert: boolean;
  serverName?: string;
  /** for logs and errors: the subject and the end of validity of `cert` (ISO 8601), never key bytes */
  certInfo?: { subject: string; validTo: string; subjectAltName: string };
  /** the parsed leaf certificate of `cert`, for {@link checkOwnCertificateName} */
  leaf?: X509Certificate;
  /** the flag and file of `cert` for messages, e.g. `--tls-cert /etc/fluxo/tm.crt` */
  certLabel?: string;
}

/** Reads a file for option `flag`. @throws EngineError naming the flag and the file */
function readPem(flag: string, file: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a folder'
            : (code ?? 'unreadable');
    throw new EngineError(SECURITY_CONFIG_CODE, `cannot read ${flag} ${file}: ${why}`, { cause: err });
  }
  if (!buf.includes('-----BEGIN ')) throw new EngineError(SECURITY_CONFIG_CODE, `${flag} ${file} is not a PEM file`);
  return buf;
}

/** The certificates of a PEM bundle, each parsed. @throws EngineError when there is none or one does not parse */
function parseCerts(flag: string, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0)
    throw new EngineError(SECURITY_CONFIG_CODE, `${flag} ${file} holds no PEM certificate (BEGIN CERTIFICATE)`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new EngineError(
        SECURITY_CONFIG_CODE,
        `${flag} ${file}: certificate ${i + 1} does not parse: ${(err as Error).message}`,
        { cause: err },
      );
    }
  });
}

/**
 * Reads and checks the PEM files of `o`: every certificate parses, the key parses (unencrypted)
 * and belongs to the certificate, and the certificate has not expired.
 * @param role `server` (a JobManager or TaskManager: needs a certificate and key) or `client`
 *   (the CLI: a CA, optionally a certificate and key for mutual TLS)
 * @throws EngineError {@link SECURITY_CONFIG_CODE} naming the flag and file: missing, unreadable,
 *   not PEM, key not matching, expired, or a companion option missing (cert without key, ...)
 */
export function loadTls(o: TlsOptions, role: 'server' | 'client'): TlsMaterial {
  if ((o.certFile === undefined) !== (o.keyFile === undefined))
    throw new EngineError(
      SECURITY_CONFIG_CODE,
      o.certFile === undefined ? '--tls-key needs --tls-cert' : '--tls-cert needs --tls-key',
    );
  if (role === 'server' && o.certFile === undefined)
    throw new EngineError(
      SECURITY_CONFIG_CODE,
      `TLS on a server needs its certificate and key: --tls-cert and --tls-key${o.caFile ? ' (--tls-ca alone is not enough)' : ''}`,
    );
  if (o.requireClientCert && o.caFile === undefined)
    throw new EngineError(
      SECURITY_CONFIG_CODE,
      '--tls-client-auth needs --tls-ca: the CA that signs the client certificates',
    );
  const m: TlsMaterial = { requireClientCert: o.requireClientCert === true, serverName: o.serverName };
  const label = (flag: string, env: string | undefined): string => (env ? `${flag} (env ${env})` : flag);
  const caFlag = label('--tls-ca', o.envNames?.caFile);
  const certFlag = label('--tls-cert', o.envNames?.certFile);
  const keyFlag = label('--tls-key', o.envNames?.keyFile);
  if (o.caFile !== undefined) {
    m.ca = readPem(caFlag, o.caFile);
    parseCerts(caFlag, o.caFile, m.ca);
  }
  if (o.certFile !== undefined && o.keyFile !== undefined) {
    m.cert = readPem(certFlag, o.certFile);
    const [leaf] = parseCerts(certFlag, o.certFile, m.cert);
    m.key = readPem(keyFlag, o.keyFile);
    let key: KeyObject;
    try {
      key = createPrivateKey(m.key);
    } catch (err) {
      const msg = (err as Error).message;
      throw new EngineError(
        SECURITY_CONFIG_CODE,
        /passphrase|encrypt/i.test(msg) || m.key.includes('ENCRYPTED')
          ? `${keyFlag} ${o.keyFile} is encrypted: give an unencrypted key (openssl pkey -in <key> -out <plain key>) and protect it with file permissions`
          : `${keyFlag} ${o.keyFile} holds no usable private key: ${msg}`,
        { cause: err },
      );
    }
    if (!leaf.checkPrivateKey(key))
      throw new EngineError(
        SECURITY_CONFIG_CODE,
        `${keyFlag} ${o.keyFile} is not the key of the certificate in ${certFlag} ${o.certFile}`,
      );
    if (Date.parse(leaf.validTo) < Date.now())
      throw new EngineError(SECURITY_CONFIG_CODE, `${certFlag} ${o.certFile} expired on ${leaf.validTo}`);
    m.leaf = leaf;
    m.certLabel = `${certFlag} ${o.certFile}`;
    m.certInfo = {
      subject: leaf.subject.replace(/\n/g, ', '),
      validTo: new Date(leaf.validTo).toISOString(),
      subjectAltName: leaf.subjectAltName ?? '',
    };
  }
  return m;
}

/**
 * Checks that this process's own certificate names the host others dial it by, so a process
 * whose certificate would fail every peer's check refuses to start instead of registering and
 * failing the first call made to it (`ERR_TLS_CERT_ALTNAME_INVALID`). An IP is matched against
 * the `IP:` SANs (as Node's TLS check does), a name against the `DNS:` SANs (wildcards allowed;
 * the CN only when there is no DNS SAN, as Node does).
 * @param name the name peers check: `--tls-server-name` when set, else the advertised host;
 *   a wildcard address (0.0.0.0, ::) or an empty name skips the check
 * @param origin the flag `name` came from, for the message (`--advertise-host`, `--host`, `--tls-server-name`)
 * @throws EngineError {@link SECURITY_CONFIG_CODE}, one line naming the flag, the file, the name
 *   and the names the certificate holds
 */
export function checkOwnCertificateName(tls: TlsMaterial | undefined, name: string, origin: string): void {
  const leaf = tls?.leaf;
  const host = name.replace(/^\[|\]$/g, '');
  if (!leaf || host === '' || host === '0.0.0.0' || host === '::') return;
  const ok = isIP(host) ? leaf.checkIP(host) !== undefined : leaf.checkHost(host) !== undefined;
  if (ok) return;
  const sans = (leaf.subjectAltName ?? '').replace(/IP Address:/g, 'IP:');
  const names = sans !== '' ? sans : `no subjectAltName (subject ${leaf.subject.replace(/\n/g, ', ')})`;
  const what = origin === '--tls-server-name' ? 'the name other processes check' : 'the address other processes dial';
  throw new EngineError(
    SECURITY_CONFIG_CODE,
    `${tls?.certLabel ?? '--tls-cert'} is not valid for ${host} (${what}: ${origin}); it names ${names}. Make a certificate with that name or IP in its subjectAltName, or use --tls-server-name`,
  );
}

/**
 * Server credentials: TLS with `tls.cert`/`tls.key` (and, with `requireClientCert`, client
 * certificates checked against `tls.ca`), or plaintext when `tls` is undefined.
 */
export function serverCredentials(tls?: TlsMaterial): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  if (!tls.cert || !tls.key)
    throw new EngineError(SECURITY_CONFIG_CODE, 'TLS on a server needs its certificate and key');
  return grpc.ServerCredentials.createSsl(
    tls.ca ?? null,
    [{ cert_chain: tls.cert, private_key: tls.key }],
    tls.requireClientCert,
  );
}

/**
 * Channel credentials: TLS checking the server against `tls.ca` (Node's public roots when
 * absent), presenting `tls.cert` when set (mutual TLS), or plaintext when `tls` is undefined.
 */
export function channelCredentials(tls?: TlsMaterial): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  quietIpServerNameWarning();
  return grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
}

let quieted = false;

/**
 * grpc-js sets the TLS server name (SNI) to the host dialled, and Node warns once per process
 * (DEP0123) when that host is an IP address, which is how clusters usually address each other.
 * The certificate check is not affected (it matches IP SANs), so only this one warning is dropped;
 * every other warning still prints.
 */
function quietIpServerNameWarning(): void {
  if (quieted) return;
  quieted = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: unknown }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
