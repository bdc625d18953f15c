/**
 * Checkpoints on a real cluster (a JobManager process, two TaskManager processes, a private
 * Redis): periodic checkpoints complete while a job runs, their state is in Redis per key group and
 * per source split, only `retained` of them are kept, `fluxo checkpoint` takes one by hand, and
 * taking checkpoints does not change a job's results.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCaseSpec } from '../support/case-spec.js';
import { startCluster, type TestCluster, waitFor } from '../support/processes.js';
import { startRedis } from '../support/redis.js';

describe('checkpoints', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let client: Redis;
  let cluster: TestCluster;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    dir = mkdtempSync(join(tmpdir(), 'fluxo-ckpt-'));
    cluster = await startCluster({
      redisUrl: redis.url,
      clusterId: 'ckpt',
      taskmanagers: [
        { id: 'tm-1', slots: 1 },
        { id: 'tm-2', slots: 1 },
      ],
    });
  });

  afterAll(async () => {
    await cluster?.stop();
    client?.disconnect();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('complete periodically while a job runs, keep `retained` of them, and can be triggered by hand', async () => {
    const spec = join(dir, 'endless.yaml');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'endless',
        parallelism: 2,
        checkpoint: { intervalMs: 200, retained: 2 },
        source: { type: 'generator', sensors: 500, count: 1_000_000_000, ratePerSec: 1000, seed: 3 },
        steps: [
          { keyBy: 'sensorId' },
          { window: { type: 'tumbling', sizeMs: 60000 } },
          { aggregate: { n: 'count()' } },
        ],
        sink: { type: 'file', path: join(dir, 'endless.jsonl') },
      }),
    );
    const sub = await cluster.cli(['submit', spec]);
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = sub.stdout.trim();
    try {
      await checkRunningJob(jobId);
    } finally {
      await cluster.cli(['cancel', jobId]);
    }
  });

  async function checkRunningJob(jobId: string): Promise<void> {
    const ckpts = async () =>
      ((await cluster.job(jobId)) as unknown as { checkpoints: { completed: number; latest: { id: number } | null } })
        .checkpoints;
    await waitFor(async () => (await ckpts()).completed >= 3, {
      timeoutMs: 20_000,
      message: 'fewer than 3 checkpoints completed',
    });

    const manual = await cluster.cli(['checkpoint', jobId]);
    expect(manual.code, manual.stderr).toBe(0);
    const id = Number(/checkpoint (\d+) completed/.exec(manual.stdout)?.[1]);
    expect(id).toBeGreaterThanOrEqual(4);

    // the metadata of the completed checkpoint lists a state part per source split and per key group
    const meta = await client.keys(`fluxo:ckpt:ckpt:${jobId}:*`);
    const parts = meta.filter((k) => k.includes(`:${id}:state:`)).map((k) => k.split(':').slice(-2).join(':'));
    expect(parts).toContain('source-0:source.split-0');
    // 128 key groups split over the 2 window subtasks
    expect(parts.filter((p) => p.startsWith('window-0:window.kg-')).length).toBe(64);
    expect(parts.filter((p) => p.startsWith('window-1:window.kg-')).length).toBe(64);

    // at most `retained` (2) completed checkpoints keep their state; older ones are deleted
    await new Promise((r) => setTimeout(r, 800));
    const withState = new Set(
      (await client.keys(`fluxo:ckpt:ckpt:${jobId}:*:state:*`)).map((k) => Number(k.split(':')[4])),
    );
    const latest = (await ckpts()).latest?.id ?? 0;
    for (const c of withState)
      expect(c, `checkpoint ${c} kept beyond retained=2 (latest ${latest})`).toBeGreaterThanOrEqual(latest - 2);
  }

  it('do not change the results: a bounded job with checkpoints every 50 ms gives the case rows', async () => {
    writeFileSync(join(dir, 'input.csv'), readFileSync(resolve('test/cases/data/BR-02.csv')));
    const spec = writeCaseSpec({ name: 'br02', dir, parallelism: 2, extra: { checkpoint: { intervalMs: 50 } } });
    const r = await cluster.cli(['submit', spec]);
    expect(r.code, r.stderr).toBe(0);
    await cluster.waitForState(r.stdout.trim(), 'FINISHED', 20_000);
    const rows = readFileSync(join(dir, 'br02.jsonl'), 'utf8').trim().split('\n');
    expect(rows).toHaveLength(8);
  });

  it('`fluxo checkpoint` on a job without a checkpoint block says so', async () => {
    const spec = join(dir, 'plain.yaml');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'plain',
        source: { type: 'generator', sensors: 10, count: 1_000_000_000, ratePerSec: 1000, seed: 1 },
        steps: [
          { keyBy: 'sensorId' },
          { window: { type: 'tumbling', sizeMs: 60000 } },
          { aggregate: { n: 'count()' } },
        ],
        sink: { type: 'file', path: join(dir, 'plain.jsonl') },
      }),
    );
    const jobId = (await cluster.cli(['submit', spec])).stdout.trim();
    await cluster.waitForState(jobId, 'RUNNING', 20_000);
    const r = await cluster.cli(['checkpoint', jobId]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('has no checkpoint: block in its spec');
    await cluster.cli(['cancel', jobId]);
  });
});
