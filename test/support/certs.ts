/**
 * Test certificates made with the `openssl` CLI (the same commands docs/security.md shows): a CA,
 * and leaf certificates signed by it for serverAuth + clientAuth with SANs, EC P-256 keys (fast to
 * make). Everything goes into `dir`; nothing is cached between runs.
 *
 * ```ts
 * const ca = makeCa(dir, 'cluster-ca');
 * const jm = makeLeaf(dir, ca, 'jobmanager', ['IP:127.0.0.1', 'DNS:localhost']);
 * // jm.cert, jm.key: PEM file paths; ca.cert: the CA file for --tls-ca
 * ```
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** True when the openssl CLI runs here. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `openssl req` arguments for a new unencrypted P-256 key. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? String(err)}`);
  }
}

export interface CertFiles {
  /** PEM certificate path */
  cert: string;
  /** PEM private key path (unencrypted) */
  key: string;
}

/** A self-signed CA `<name>.crt` / `<name>.key` in `dir`, valid 1 day. */
export function makeCa(dir: string, name: string): CertFiles {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(
    [
      'req',
      '-x509',
      ...NEW_EC_KEY,
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert, key };
}

/**
 * A certificate `<name>.crt` / `<name>.key` in `dir` signed by `ca`, for both server and client
 * use (one certificate per process serves its own gRPC server and its calls to the others).
 * @param sans subjectAltName entries, e.g. `['IP:127.0.0.1', 'DNS:localhost']`
 */
export function makeLeaf(dir: string, ca: CertFiles, name: string, sans: string[]): CertFiles {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=${sans.join(',')}`,
      '',
    ].join('\n'),
  );
  openssl(['req', '-new', ...NEW_EC_KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '1',
      '-extfile',
      ext,
    ],
    dir,
  );
  return { cert, key };
}
