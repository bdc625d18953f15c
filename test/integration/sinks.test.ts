/**
 * The redis and stdout sinks, and the job record the JobManager keeps in Redis, on real processes
 * (`fluxo run`: a JobManager plus two TaskManager processes) with a private Redis. Input and
 * expected rows: shared case BR-02 (test/cases/data), computed by hand in the case file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCaseSpec } from '../support/case-spec.js';
import { runCli } from '../support/processes.js';
import { startRedis } from '../support/redis.js';

interface Expected {
  sensor_id: string;
  window_start_ms: number;
  window_end_ms: number;
  count: number;
  avg: number;
  min: number;
  max: number;
}

const expected = JSON.parse(readFileSync(resolve('test/cases/data/BR-02.expected.json'), 'utf8')) as Expected[];

describe('sinks and job records on real processes', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let client: Redis;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    dir = mkdtempSync(join(tmpdir(), 'fluxo-sinks-'));
    writeFileSync(join(dir, 'input.csv'), readFileSync(resolve('test/cases/data/BR-02.csv')));
  });

  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const spec = (name: string, sink: Record<string, unknown>): string =>
    writeCaseSpec({
      name,
      dir,
      parallelism: 2,
      sink,
      extra: {
        deadLetter: { type: 'file', path: join(dir, `${name}.deadletter.jsonl`) },
        lateData: { type: 'file', path: join(dir, `${name}.late.jsonl`) },
      },
    });

  it('the redis sink upserts one hash per key and window, and the job record in Redis ends FINISHED', async () => {
    const env = { REDIS_URL: redis.url, FLUXO_CLUSTER_ID: 'sinks-test' };
    const r = await runCli(['run', spec('to-redis', { type: 'redis', keyPrefix: 'br02' }), '--taskmanagers', '2'], {
      env,
    });
    expect(r.code, r.stderr).toBe(0);
    const keys = (await client.keys('br02:*')).sort();
    expect(keys).toEqual(expected.map((e) => `br02:${e.sensor_id}:${e.window_start_ms}`).sort());
    for (const e of expected) {
      const h = await client.hgetall(`br02:${e.sensor_id}:${e.window_start_ms}`);
      expect(h.key).toBe(e.sensor_id);
      expect(Number(h.windowEnd)).toBe(e.window_end_ms);
      expect(Number(h.count)).toBe(e.count);
      expect(Number(h.min)).toBe(e.min);
      expect(Number(h.max)).toBe(e.max);
      expect(Math.abs(Number(h.avg) - e.avg)).toBeLessThanOrEqual(0.001);
    }
    // running the same job again overwrites the same hashes: still one per key and window
    const again = await runCli(['run', spec('to-redis', { type: 'redis', keyPrefix: 'br02' }), '--taskmanagers', '2'], {
      env,
    });
    expect(again.code, again.stderr).toBe(0);
    expect((await client.keys('br02:*')).length).toBe(expected.length);

    const jobIds = await client.zrange('fluxo:sinks-test:jobs', 0, -1);
    expect(jobIds).toHaveLength(2);
    for (const id of jobIds) {
      const rec = await client.hgetall(`fluxo:sinks-test:job:${id}`);
      expect(rec.state).toBe('FINISHED');
      expect(rec.name).toBe('to-redis');
      // a redis sink without a url writes to the cluster's Redis, filled in at submit
      expect(JSON.parse(rec.spec).sink).toEqual({ type: 'redis', keyPrefix: 'br02', url: redis.url });
    }
  });

  it('the stdout sink prints one JSON row per window on the run command’s stdout, logs stay on stderr', async () => {
    const r = await runCli(['run', spec('to-stdout', { type: 'stdout' }), '--taskmanagers', '2'], {
      env: { REDIS_URL: redis.url },
    });
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { key: string; windowStart: number; windowEnd: number; count: number; avg: number });
    expect(rows.map((x) => `${x.key}|${x.windowStart}|${x.windowEnd}|${x.count}`).sort()).toEqual(
      expected.map((e) => `${e.sensor_id}|${e.window_start_ms}|${e.window_end_ms}|${e.count}`).sort(),
    );
    expect(r.stderr).toContain('FINISHED');
    // an ad-hoc mini-cluster (no FLUXO_CLUSTER_ID) leaves no job records behind in the user's Redis
    expect(await client.keys('fluxo:run-*')).toEqual([]);
  });

  it('a file sink that cannot be opened fails the job at deployment, naming the path (no hang)', async () => {
    const r = await runCli(['run', spec('unopenable', { type: 'file', path: dir }), '--taskmanagers', '1', '-p', '1'], {
      env: { REDIS_URL: redis.url },
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('FAILED');
    expect(r.stderr).toMatch(
      new RegExp(`SINK_IO: cannot open sink file ${dir.replace(/[/.]/g, '\\$&')}: is a directory \\(EISDIR\\)`),
    );
  });

  it('a job whose source is missing leaves the previous file sink output byte for byte; a good run replaces it', async () => {
    const out = join(dir, 'keep.jsonl');
    const old = '{"key":"from-a-good-run","count":1}\n'.repeat(1000);
    writeFileSync(out, old);
    const sink = { type: 'file', path: out };
    const missing = writeCaseSpec({ name: 'keep', dir, paths: [join(dir, 'no-such-input.csv')], sink });
    const failed = await runCli(['run', missing, '--taskmanagers', '1', '-p', '1'], {
      env: { REDIS_URL: redis.url },
      timeoutMs: 30_000,
    });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('ENOENT');
    expect(readFileSync(out, 'utf8')).toBe(old);

    const good = await runCli(['run', writeCaseSpec({ name: 'keep', dir, sink }), '--taskmanagers', '1', '-p', '1'], {
      env: { REDIS_URL: redis.url },
    });
    expect(good.code, good.stderr).toBe(0);
    const rows = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { key: string });
    expect(rows).toHaveLength(expected.length);
    expect(new Set(rows.map((r) => r.key))).toEqual(new Set(expected.map((e) => e.sensor_id)));
  });

  it('a write error (disk full) fails the job instead of reporting success', async () => {
    const r = await runCli(
      ['run', spec('full', { type: 'file', path: '/dev/full' }), '--taskmanagers', '1', '-p', '1'],
      {
        env: { REDIS_URL: redis.url },
        timeoutMs: 30_000,
      },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SINK_IO: cannot write \/dev\/full: no space left on device \(ENOSPC\)/);
  });
});
