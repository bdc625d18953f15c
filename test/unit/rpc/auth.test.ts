/**
 * The cluster token (core/rpc/auth.ts): reading it (file first line over env), comparing it in
 * constant time, finding it in metadata, and throttling the log of refusals.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../../../core/errors/index.js';
import {
  type AuthRefusal,
  bearerOf,
  isAuthRefusal,
  readClusterToken,
  throttleRefusals,
  tokenMatches,
} from '../../../core/rpc/auth.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-token-unit-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('tokenMatches', () => {
  it('is true only for the same token', () => {
    expect(tokenMatches('s3cret-token', 's3cret-token')).toBe(true);
    expect(tokenMatches('s3cret-tokem', 's3cret-token')).toBe(false);
    expect(tokenMatches('s3cret', 's3cret-token')).toBe(false); // a prefix
    expect(tokenMatches('s3cret-token-and-more', 's3cret-token')).toBe(false); // longer
    expect(tokenMatches('', 's3cret-token')).toBe(false);
    expect(tokenMatches(undefined, 's3cret-token')).toBe(false);
  });
});

describe('readClusterToken', () => {
  it('the first line of the file wins over the environment, trimmed (CRLF too)', () => {
    const f = file('token', '  abc123-def  \r\nsecond line\n');
    expect(readClusterToken(f, 'from-env')).toBe('abc123-def');
  });

  it('without a file: FLUXO_CLUSTER_TOKEN, trimmed; neither: no token', () => {
    expect(readClusterToken(undefined, ' env-token\n')).toBe('env-token');
    expect(readClusterToken(undefined, '')).toBeUndefined();
    expect(readClusterToken(undefined, undefined)).toBeUndefined();
    expect(readClusterToken('', 'env-token')).toBe('env-token');
  });

  it('a missing file or an empty first line is an error naming the file', () => {
    const missing = path.join(dir, 'missing');
    expect(() => readClusterToken(missing, 'x')).toThrow(`cannot read --cluster-token-file ${missing}: no such file`);
    const empty = file('empty', '\nsecret-on-line-2\n');
    expect(() => readClusterToken(empty, undefined)).toThrow(`--cluster-token-file ${empty}: the first line is empty`);
  });

  it('a token gRPC metadata cannot carry is refused, without quoting it', () => {
    const f = file('spaces', 'two words\n');
    let msg = '';
    try {
      readClusterToken(f, undefined);
    } catch (err) {
      msg = (err as EngineError).message;
    }
    expect(msg).toBe(
      `--cluster-token-file ${f}: the cluster token may hold only printable ASCII without spaces (e.g. from \`openssl rand -hex 32\`)`,
    );
    expect(msg).not.toContain('two words');
    expect(() => readClusterToken(undefined, 'jeton-été')).toThrow(/^FLUXO_CLUSTER_TOKEN: the cluster token may hold/);
  });
});

describe('bearerOf', () => {
  const md = (v?: string) => {
    const m = new grpc.Metadata();
    if (v !== undefined) m.set('authorization', v);
    return m;
  };
  it('reads `Bearer <token>`, the scheme in any case', () => {
    expect(bearerOf(md('Bearer abc'))).toBe('abc');
    expect(bearerOf(md('bearer   abc  '))).toBe('abc');
    expect(bearerOf(md('BEARER abc'))).toBe('abc');
  });
  it('nothing for no header, another scheme or an empty token', () => {
    expect(bearerOf(md())).toBeUndefined();
    expect(bearerOf(md('Basic abc'))).toBeUndefined();
    expect(bearerOf(md('Bearer'))).toBeUndefined();
    expect(bearerOf(md('abc'))).toBeUndefined();
  });
});

describe('isAuthRefusal', () => {
  it('recognises UNAUTHENTICATED, raw or as the cause of an EngineError', () => {
    const raw = Object.assign(new Error('x'), { code: grpc.status.UNAUTHENTICATED });
    expect(isAuthRefusal(raw)).toBe(true);
    expect(isAuthRefusal(new EngineError('UNAUTHENTICATED', 'refused', { cause: raw }))).toBe(true);
    expect(isAuthRefusal(new EngineError('JOBMANAGER_UNAVAILABLE', 'down'))).toBe(false);
    expect(isAuthRefusal(Object.assign(new Error('x'), { code: grpc.status.UNAVAILABLE }))).toBe(false);
    expect(isAuthRefusal(undefined)).toBe(false);
  });
});

describe('throttleRefusals', () => {
  it('passes the first refusal, then at most one per interval with the count held back', () => {
    let now = 1000;
    const seen: (AuthRefusal & { refusedCalls: number })[] = [];
    const onRefused = throttleRefusals(
      (r) => seen.push(r),
      10_000,
      () => now,
    );
    const r: AuthRefusal = { method: '/fluxo.v1.JobManagerService/ListJobs', peer: '10.0.0.9:5000', reason: 'wrong' };
    onRefused(r);
    for (let i = 0; i < 5; i++) {
      now += 1000;
      onRefused({ ...r, reason: 'missing' });
    }
    expect(seen).toEqual([{ ...r, refusedCalls: 1 }]);
    now = 11_000;
    onRefused(r);
    expect(seen).toHaveLength(2);
    expect(seen[1].refusedCalls).toBe(6); // the 5 held back and this one
  });
});
