/**
 * The cluster token (core/rpc/auth.ts): reading it (file first line over env), comparing it in
 * constant time, finding it in metadata, and throttling the log of refusals.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EngineError } from '../../../core/errors/index.js';
import {
  type AuthRefusal,
  bearerOf,
  isAuthRefusal,
  type RefusalReport,
  readClusterToken,
  refusalMessage,
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
  afterEach(() => {
    vi.useRealTimers();
  });

  it('passes the first refusal, then at most one per interval with the counts held back, by reason', () => {
    vi.useFakeTimers({ now: 1000 });
    const seen: RefusalReport[] = [];
    const onRefused = throttleRefusals((r) => seen.push(r), 10_000);
    const r: AuthRefusal = { method: '/fluxo.v1.JobManagerService/ListJobs', peer: '10.0.0.9:5000', reason: 'wrong' };
    onRefused(r);
    expect(seen).toEqual([{ ...r, refusedCalls: 1, missingToken: 0, wrongToken: 1 }]);
    expect(refusalMessage(seen[0])).toBe('refused calls with a wrong cluster token');
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(1000);
      onRefused({ ...r, reason: 'missing' });
    }
    expect(seen).toHaveLength(1);
    vi.advanceTimersByTime(5000); // at 11 000: the interval is over
    expect(seen[1]).toEqual({ ...r, reason: 'missing', refusedCalls: 5, missingToken: 5, wrongToken: 0 });
    expect(refusalMessage(seen[1])).toBe('refused calls without the cluster token');
    onRefused(r);
    onRefused({ ...r, reason: 'missing' });
    expect(seen).toHaveLength(2);
    vi.advanceTimersByTime(10_000);
    expect(seen[2]).toMatchObject({ refusedCalls: 2, missingToken: 1, wrongToken: 1 });
    expect(refusalMessage(seen[2])).toBe('refused calls without the cluster token or with a wrong one');
    vi.advanceTimersByTime(60_000);
    expect(seen).toHaveLength(3); // nothing held back: no empty report
  });

  it('reports at once when the interval has passed', () => {
    vi.useFakeTimers({ now: 0 });
    const seen: RefusalReport[] = [];
    const onRefused = throttleRefusals((r) => seen.push(r), 10_000);
    const r: AuthRefusal = { method: '/m', peer: 'p', reason: 'missing' };
    onRefused(r);
    vi.advanceTimersByTime(30_000);
    onRefused(r);
    expect(seen.map((x) => x.refusedCalls)).toEqual([1, 1]);
  });
});
