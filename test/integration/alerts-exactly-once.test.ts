/**
 * Spike alerts delivered exactly once through BullMQ across a failure: the shipped spike job
 * (examples/spike-alerts.yaml, labelled Suthaharan data) with its sink swapped for a bullmq queue
 * runs on a real cluster, and the TaskManager reading the input SIGKILLs itself after 16,000
 * readings (fault injection), after alerts were already queued and before the first checkpoint:
 * the restarted job produces every alert again, and the queue must still hold each alert of a
 * failure-free run exactly once (the deterministic job ids make the repeats no-ops).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { bullConnection, bullJobId } from '../../core/sinks/bullmq-sink.js';
import type { Row } from '../../core/spec/types.js';
import { REPO_ROOT, startCluster, type TestCluster } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

describe('spike alerts through BullMQ, exactly once across a SIGKILL', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fluxo-alerts-'));
    mkdirSync(join(dir, 'once'));
    cluster = await startCluster({
      redisUrl: redis.url,
      clusterId: 'alerts',
      taskmanagers: [
        { id: 'tm-1', slots: 1 },
        { id: 'tm-2', slots: 1 },
        { id: 'tm-3', slots: 1 },
      ],
      // whichever TaskManager reads the input dies once, after 16,000 readings
      tmEnv: { FLUXO_FAULTS: 'crash@records:16000', FLUXO_FAULTS_ONCE_DIR: join(dir, 'once') },
    });
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function spec(name: string, sink: Record<string, unknown>): string {
    const s = parseYaml(readFileSync(join(REPO_ROOT, 'examples/spike-alerts.yaml'), 'utf8')) as Record<
      string,
      unknown
    > & {
      source: Record<string, unknown>;
    };
    const file = join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        ...s,
        name: 'spike-alerts', // the same job name: ids must match across the two runs
        parallelism: 1,
        source: { ...s.source, path: join(REPO_ROOT, 'examples/data', String(s.source.path).replace(/^data\//, '')) },
        checkpoint: { intervalMs: 60_000 },
        restart: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
        sink,
      }),
    );
    return file;
  }

  it('queues each alert of the failure-free run once', async () => {
    const sub = await cluster.cli(['submit', spec('queued', { type: 'bullmq', queue: 'spikes' })]);
    expect(sub.code, sub.stderr).toBe(0);
    const done = (await cluster.waitForState(sub.stdout.trim(), 'FINISHED', 90_000)) as unknown as {
      job: { attempt: number };
      exceptions: { reason: string }[];
    };
    // the fault fired: one restart, from scratch (no checkpoint within 60 s)
    expect(done.job.attempt).toBe(2);
    expect(done.exceptions[0].reason).toContain('TASKMANAGER_LOST');

    // the reference: the same job into a file, no failure (the fault fired once already)
    const out = join(dir, 'reference.jsonl');
    const ref = await cluster.cli(['submit', spec('reference', { type: 'file', path: out })]);
    expect(ref.code, ref.stderr).toBe(0);
    const refDone = await cluster.waitForState(ref.stdout.trim(), 'FINISHED', 90_000);
    expect(refDone.job.attempt).toBe(1);
    const alerts = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Row);
    expect(alerts.length).toBeGreaterThan(10);

    const q = new Queue('spikes', { connection: bullConnection(redis.url) });
    try {
      const counts = await q.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      expect(total).toBe(alerts.length);
      const jobs = await q.getJobs(['waiting']);
      expect(jobs.map((j) => j.id).sort()).toEqual(alerts.map((a) => bullJobId('spike-alerts', a)).sort());
      const byId = new Map(jobs.map((j) => [j.id, j.data as Row]));
      for (const a of alerts) expect(byId.get(bullJobId('spike-alerts', a))).toEqual(a);
      // the replay did add alerts queued before the kill again: BullMQ reported them as duplicates
      const r = new Redis(redis.url);
      try {
        const events = await r.xrange('bull:spikes:events', '-', '+');
        const duplicated = events.filter(([, f]) => f[0] === 'event' && f[1] === 'duplicated').length;
        expect(duplicated).toBeGreaterThan(0);
      } finally {
        r.disconnect();
      }
    } finally {
      await q.close();
    }
  }, 240_000);
});
