/**
 * PEM loading for TLS (core/rpc/tls.ts): every unusable file is one error naming the flag and the
 * file, before anything listens. Certificates are made once with the openssl CLI in a temp folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelCredentials, checkOwnCertificateName, loadTls, serverCredentials } from '../../../core/rpc/tls.js';
import { type CertFiles, makeCa, makeLeaf } from '../../support/certs.js';

let dir: string;
let ca: CertFiles;
let leaf: CertFiles;
let other: CertFiles;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-tls-unit-'));
  ca = makeCa(dir, 'ca');
  leaf = makeLeaf(dir, ca, 'node', ['IP:127.0.0.1', 'DNS:localhost']);
  other = makeLeaf(dir, ca, 'other', ['DNS:other']);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The message of the error `fn` throws (and that it is an EngineError with a code). */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect((err as { code?: unknown }).code).toBeTypeOf('string');
    return (err as Error).message;
  }
  throw new Error('no error thrown');
}

describe('loadTls', () => {
  it('loads a server certificate, key and CA; keeps the subject and SANs for logs', () => {
    const m = loadTls({ caFile: ca.cert, certFile: leaf.cert, keyFile: leaf.key, requireClientCert: true }, 'server');
    expect(m.requireClientCert).toBe(true);
    expect(m.ca?.toString()).toContain('BEGIN CERTIFICATE');
    expect(m.certInfo?.subject).toBe('CN=node');
    expect(m.certInfo?.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(Date.parse(m.certInfo?.validTo ?? '')).toBeGreaterThan(Date.now());
    expect(() => serverCredentials(m)).not.toThrow();
    expect(() => channelCredentials(m)).not.toThrow();
  });

  it('a client needs nothing but may give a CA, and a certificate with its key for mutual TLS', () => {
    expect(loadTls({}, 'client').cert).toBeUndefined();
    expect(loadTls({ caFile: ca.cert }, 'client').ca).toBeDefined();
    expect(loadTls({ caFile: ca.cert, certFile: leaf.cert, keyFile: leaf.key }, 'client').key).toBeDefined();
  });

  it('a missing file names the flag and the file', () => {
    const f = path.join(dir, 'nope.pem');
    expect(errorOf(() => loadTls({ caFile: f }, 'client'))).toBe(`cannot read --tls-ca ${f}: no such file`);
    expect(errorOf(() => loadTls({ certFile: f, keyFile: leaf.key }, 'server'))).toBe(
      `cannot read --tls-cert ${f}: no such file`,
    );
    expect(errorOf(() => loadTls({ certFile: leaf.cert, keyFile: f }, 'server'))).toBe(
      `cannot read --tls-key ${f}: no such file`,
    );
  });

  it('a folder or an unreadable file says so', () => {
    const folder = path.join(dir, 'folder.pem');
    mkdirSync(folder, { recursive: true });
    expect(errorOf(() => loadTls({ caFile: folder }, 'client'))).toBe(`cannot read --tls-ca ${folder}: it is a folder`);
  });

  it('a file that is not PEM, or PEM without a certificate, is refused', () => {
    const der = path.join(dir, 'ca.der');
    execFileSync('openssl', ['x509', '-in', ca.cert, '-outform', 'DER', '-out', der]);
    expect(errorOf(() => loadTls({ caFile: der }, 'client'))).toBe(`--tls-ca ${der} is not a PEM file`);
    expect(errorOf(() => loadTls({ caFile: leaf.key }, 'client'))).toBe(
      `--tls-ca ${leaf.key} holds no PEM certificate (BEGIN CERTIFICATE)`,
    );
    const broken = path.join(dir, 'broken.crt');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    expect(errorOf(() => loadTls({ caFile: broken }, 'client'))).toMatch(
      new RegExp(`^--tls-ca ${broken.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: certificate 1 does not parse`),
    );
  });

  it('a key that is not the certificate’s, or no key at all in the key file, is refused', () => {
    expect(errorOf(() => loadTls({ certFile: leaf.cert, keyFile: other.key }, 'server'))).toBe(
      `--tls-key ${other.key} is not the key of the certificate in --tls-cert ${leaf.cert}`,
    );
    expect(errorOf(() => loadTls({ certFile: leaf.cert, keyFile: leaf.cert }, 'server'))).toMatch(
      /holds no usable private key/,
    );
  });

  it('an encrypted key is refused with how to decrypt it', () => {
    const enc = path.join(dir, 'encrypted.key');
    execFileSync('openssl', ['pkey', '-in', leaf.key, '-aes256', '-passout', 'pass:secret', '-out', enc]);
    expect(errorOf(() => loadTls({ certFile: leaf.cert, keyFile: enc }, 'server'))).toMatch(
      /^--tls-key .*encrypted\.key is encrypted: give an unencrypted key \(openssl pkey/,
    );
  });

  it('missing companions: cert without key, key without cert, server without cert, client auth without CA', () => {
    expect(errorOf(() => loadTls({ certFile: leaf.cert }, 'server'))).toBe('--tls-cert needs --tls-key');
    expect(errorOf(() => loadTls({ keyFile: leaf.key }, 'client'))).toBe('--tls-key needs --tls-cert');
    expect(errorOf(() => loadTls({ caFile: ca.cert }, 'server'))).toBe(
      'TLS on a server needs its certificate and key: --tls-cert and --tls-key (--tls-ca alone is not enough)',
    );
    expect(errorOf(() => loadTls({ certFile: leaf.cert, keyFile: leaf.key, requireClientCert: true }, 'server'))).toBe(
      '--tls-client-auth needs --tls-ca: the CA that signs the client certificates',
    );
  });
});

describe('checkOwnCertificateName', () => {
  const load = (c: CertFiles) => loadTls({ caFile: ca.cert, certFile: c.cert, keyFile: c.key }, 'server');

  it('passes a certificate naming the advertised IP or name, a wildcard address, or no TLS', () => {
    const m = load(leaf);
    expect(() => checkOwnCertificateName(m, '127.0.0.1', '--host')).not.toThrow();
    expect(() => checkOwnCertificateName(m, 'localhost', '--advertise-host')).not.toThrow();
    expect(() => checkOwnCertificateName(load(other), '0.0.0.0', '--host')).not.toThrow();
    expect(() => checkOwnCertificateName(load(other), '::', '--host')).not.toThrow();
    expect(() => checkOwnCertificateName(undefined, '127.0.0.1', '--host')).not.toThrow();
  });

  it('refuses a certificate that does not name the address the others dial, in one line', () => {
    expect(errorOf(() => checkOwnCertificateName(load(other), '127.0.0.1', '--advertise-host'))).toBe(
      `--tls-cert ${other.cert} is not valid for 127.0.0.1 (the address other processes dial: --advertise-host); it names DNS:other. Make a certificate with that name or IP in its subjectAltName, or use --tls-server-name`,
    );
    // an IP is matched against IP SANs only, as Node's TLS check does: DNS:localhost does not cover 127.0.0.2
    expect(errorOf(() => checkOwnCertificateName(load(leaf), '127.0.0.2', '--host'))).toMatch(
      /is not valid for 127\.0\.0\.2 .*it names IP:127\.0\.0\.1, DNS:localhost\./,
    );
  });

  it('checks --tls-server-name instead of the address when it is set', () => {
    expect(() => checkOwnCertificateName(load(other), 'other', '--tls-server-name')).not.toThrow();
    expect(errorOf(() => checkOwnCertificateName(load(leaf), 'fluxo.cluster', '--tls-server-name'))).toMatch(
      /is not valid for fluxo\.cluster \(the name other processes check: --tls-server-name\)/,
    );
  });
});
