/**
 * Scheduling on a real cluster (one JobManager process, two TaskManager processes with 1 slot
 * each): jobs submitted together get distinct slots, a job that needs more slots than are free
 * waits visibly in CREATED and starts as soon as slots free up.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCaseSpec } from '../support/case-spec.js';
import { startCluster, type TestCluster, waitFor } from '../support/processes.js';
import { startRedis } from '../support/redis.js';

describe('scheduling', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let cluster: TestCluster;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fluxo-sched-'));
    writeFileSync(join(dir, 'input.csv'), readFileSync(resolve('test/cases/data/BR-02.csv')));
    cluster = await startCluster({
      redisUrl: redis.url,
      clusterId: 'sched',
      taskmanagers: [
        { id: 'tm-1', slots: 1 },
        { id: 'tm-2', slots: 1 },
      ],
    });
  });

  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const fileJob = (name: string): string => writeCaseSpec({ name, dir, aggregate: { count: 'count()' } });

  function endlessJob(name: string, parallelism: number): string {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      JSON.stringify({
        name,
        parallelism,
        source: { type: 'generator', sensors: 100, count: 1_000_000_000, ratePerSec: 1000, seed: 7 },
        steps: [
          { keyBy: 'sensorId' },
          { window: { type: 'tumbling', sizeMs: 60000 } },
          { aggregate: { count: 'count()' } },
        ],
        sink: { type: 'file', path: join(dir, `${name}.jsonl`) },
      }),
    );
    return file;
  }

  it('two jobs submitted at the same time each get their own slot and run side by side', async () => {
    const [a, b] = await Promise.all([
      cluster.cli(['submit', endlessJob('a', 1)]),
      cluster.cli(['submit', endlessJob('b', 1)]),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const [ja, jb] = await Promise.all([
      cluster.waitForState(a.stdout.trim(), 'RUNNING', 20_000),
      cluster.waitForState(b.stdout.trim(), 'RUNNING', 20_000),
    ]);
    expect(ja.tasks[0].taskmanagerId).not.toBe(jb.tasks[0].taskmanagerId);
    expect((await cluster.taskmanagers()).map((t) => t.slotsUsed)).toEqual([1, 1]);
    expect((await cluster.cli(['cancel', a.stdout.trim()])).code).toBe(0);
    expect((await cluster.cli(['cancel', b.stdout.trim()])).code).toBe(0);
  });

  it('a bounded job runs to FINISHED with its rows', async () => {
    const r = await cluster.cli(['submit', fileJob('bounded')]);
    expect(r.code, r.stderr).toBe(0);
    await cluster.waitForState(r.stdout.trim(), 'FINISHED', 20_000);
    // BR-02 has 8 windows
    expect(readFileSync(join(dir, 'bounded.jsonl'), 'utf8').trim().split('\n')).toHaveLength(8);
  });

  it('a job that needs more slots than are free waits in CREATED, says why, and starts once slots are freed', async () => {
    const busy = await cluster.cli(['submit', endlessJob('busy', 1)]);
    expect(busy.code, busy.stderr).toBe(0);
    const busyId = busy.stdout.trim();
    await cluster.waitForState(busyId, 'RUNNING', 20_000);

    const big = await cluster.cli(['submit', endlessJob('big', 2)]);
    expect(big.code, big.stderr).toBe(0);
    const bigId = big.stdout.trim();
    const waiting = await waitFor(
      async () => {
        const j = await cluster.job(bigId);
        return j.job.state === 'CREATED' && j.job.failure.includes('waiting for slots') ? j : undefined;
      },
      { timeoutMs: 10_000, message: 'the 2-slot job did not report that it waits for slots' },
    );
    expect(waiting.job.failure).toContain('needs 2, 1 free');

    expect((await cluster.cli(['cancel', busyId])).code).toBe(0);
    await cluster.waitForState(bigId, 'RUNNING', 20_000);
    const tms = await cluster.taskmanagers();
    expect(tms.map((t) => t.slotsUsed)).toEqual([1, 1]);
    expect((await cluster.cli(['cancel', bigId])).code).toBe(0);
  });
});
