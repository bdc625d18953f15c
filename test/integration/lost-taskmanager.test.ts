/**
 * Losing a TaskManager while a job runs (recovery comes later with checkpoints; today the job
 * must FAIL promptly, with a message saying which TaskManager was lost, and free the slots it
 * held elsewhere).
 *
 * - SIGKILL: the process dies, its heartbeat stream breaks, and the JobManager must notice at once
 *   (the JobManager runs with the default 5 s heartbeat timeout, so a FAILED within 2 s proves it
 *   was the broken stream, not the timeout).
 * - SIGSTOP: the process keeps its sockets but stops heartbeating; only the heartbeat timeout
 *   (FLUXO_HEARTBEAT_TIMEOUT_MS=1500 on that JobManager) can notice it.
 *
 * Each TaskManager has 1 slot so a parallelism-2 job has tasks on both.
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, type RestJob, startCluster, type TestCluster, waitFor } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
let dir: string;
let specFile: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-lost-'));
  specFile = path.join(dir, 'long.yaml');
  writeFileSync(
    specFile,
    `name: long-generator
parallelism: 2
source: { type: generator, sensors: 1000, count: 100000000, ratePerSec: 1000, seed: 1 }
steps:
  - keyBy: sensorId
  - window: { type: tumbling, sizeMs: 60000 }
  - aggregate: { count: "count()", avg: "avg(temperature)" }
sink: { type: file, path: out/long.jsonl }
`,
  );
  redis = await startRedis();
});

afterAll(async () => {
  await killAll();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Submits the long job and waits until it RUNNING with tasks on both TaskManagers. */
async function startLongJob(cluster: TestCluster, tms: [string, string]): Promise<string> {
  const out = path.join(dir, `${tms[0]}.jsonl`);
  const sub = await cluster.cli(['submit', specFile, '--set', `sink.path=${out}`]);
  expect(sub.code, sub.stderr).toBe(0);
  const jobId = sub.stdout.trim();
  const running = await cluster.waitForState(jobId, 'RUNNING', 20_000);
  expect(new Set(running.tasks.map((t) => t.taskmanagerId))).toEqual(new Set(tms));
  await waitFor(async () => ((await cluster.job(jobId)).totals.readingsIn ?? 0) > 0, {
    timeoutMs: 10_000,
    message: `job ${jobId} reads nothing`,
  });
  const tmsNow = await cluster.taskmanagers();
  for (const id of tms)
    expect(tmsNow.find((t) => t.taskmanagerId === id)).toMatchObject({ state: 'ALIVE', slotsUsed: 1, slotsTotal: 1 });
  return jobId;
}

/** Polls REST every 20 ms until the job is FAILED; returns the job and the ms it took from `since`. */
async function waitFailed(
  cluster: TestCluster,
  jobId: string,
  since: number,
  timeoutMs: number,
): Promise<{ job: RestJob; ms: number }> {
  const job = await waitFor(
    async () => {
      const j = await cluster.job(jobId);
      return j.job.state === 'FAILED' ? j : undefined;
    },
    { timeoutMs, intervalMs: 20, message: `job ${jobId} not FAILED within ${timeoutMs} ms` },
  );
  return { job, ms: Date.now() - since };
}

async function expectLostAndOtherFree(cluster: TestCluster, lost: string, other: string): Promise<void> {
  const r = await cluster.cli(['taskmanagers']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`^${lost}\\s+127\\.0\\.0\\.1:\\d+\\s+LOST\\s`, 'm'));
  // the survivor's slot is free again (the job's tasks there were canceled)
  await waitFor(
    async () => {
      const t = await cluster.cli(['taskmanagers']);
      return new RegExp(`^${other}\\s+127\\.0\\.0\\.1:\\d+\\s+ALIVE\\s+0/1\\s`, 'm').test(t.stdout);
    },
    { timeoutMs: 5000, intervalMs: 200, message: `${other} still has a used slot after the job failed` },
  );
  const overview = (await (await fetch(`${cluster.web}/overview`)).json()) as Record<string, number>;
  expect(overview).toMatchObject({ taskmanagers: 1, slotsTotal: 1, slotsFree: 1, jobsRunning: 0, jobsFailed: 1 });
}

describe('a TaskManager killed with SIGKILL (default heartbeat timeout 5 s)', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({
      redisUrl: redis.url,
      clusterId: `lost-kill-${process.pid}`,
      taskmanagers: [
        { id: 'tm-a', slots: 1 },
        { id: 'tm-b', slots: 1 },
      ],
    });
  });
  afterAll(() => cluster?.stop());

  it('fails the job within 2 s naming the lost TaskManager, shows it LOST and frees the other slot', async () => {
    const jobId = await startLongJob(cluster, ['tm-a', 'tm-b']);
    const victim = cluster.tms.get('tm-a');
    if (!victim) throw new Error('no tm-a');
    const killedAt = Date.now();
    victim.signal('SIGKILL');
    const { job, ms } = await waitFailed(cluster, jobId, killedAt, 4000);
    expect(ms, `FAILED after ${ms} ms`).toBeLessThan(2000);
    expect(job.job.failure).toMatch(/tm-a/);
    expect(job.job.failure).toMatch(/lost/i);
    expect(job.job.endedAtMs).toBeGreaterThan(0);

    const st = await cluster.cli(['status', jobId]);
    expect(st.stdout).toContain(`(${jobId}) FAILED`);
    expect(st.stdout).toMatch(/failure: .*tm-a.*lost/i);

    await expectLostAndOtherFree(cluster, 'tm-a', 'tm-b');
    expect(cluster.tms.get('tm-b')?.exited).toBeUndefined(); // the survivor keeps running
  });
});

describe('a TaskManager frozen with SIGSTOP (FLUXO_HEARTBEAT_TIMEOUT_MS=1500 on the JobManager)', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({
      redisUrl: redis.url,
      clusterId: `lost-stop-${process.pid}`,
      jmEnv: { FLUXO_HEARTBEAT_TIMEOUT_MS: '1500' },
      taskmanagers: [
        { id: 'tm-c', slots: 1 },
        { id: 'tm-d', slots: 1 },
      ],
    });
  });
  afterAll(() => cluster?.stop());

  it('is noticed after the heartbeat timeout: FAILED within 3.5 s, LOST, the other slot free', async () => {
    const jobId = await startLongJob(cluster, ['tm-c', 'tm-d']);
    const frozen = cluster.tms.get('tm-c');
    if (!frozen) throw new Error('no tm-c');
    const stoppedAt = Date.now();
    frozen.signal('SIGSTOP');
    try {
      const { job, ms } = await waitFailed(cluster, jobId, stoppedAt, 6000);
      expect(ms, `FAILED after ${ms} ms`).toBeLessThan(3500);
      // not before the timeout: it was the missing heartbeats, not a broken connection
      expect(ms).toBeGreaterThanOrEqual(1500 - 500 /* last heartbeat may predate SIGSTOP by one interval */);
      expect(job.job.failure).toMatch(/tm-c/);
      expect(job.job.failure).toMatch(/lost/i);
      expect(job.job.failure).toMatch(/heartbeat/i);
      await expectLostAndOtherFree(cluster, 'tm-c', 'tm-d');
    } finally {
      frozen.signal('SIGCONT');
      frozen.signal('SIGKILL');
      await frozen.waitForExit();
    }
  });

  // On resume the TaskManager hears `known: false` from the JobManager: it must cancel every task
  // before it re-registers, or the FAILED job's tasks keep writing output (zombie tasks) while the
  // TaskManager is listed ALIVE with its slots free for new work.
  it('a frozen TaskManager that comes back runs nothing of the job that failed because of it', async () => {
    const tm = await cluster.startTaskManager('tm-e', 1);
    const out = path.join(dir, 'zombie', 'out.jsonl');
    const sub = await cluster.cli(['submit', specFile, '--parallelism', '1', '--set', `sink.path=${out}`]);
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = sub.stdout.trim();
    const running = await cluster.waitForState(jobId, 'RUNNING', 20_000);
    const owners = new Set(running.tasks.map((t) => t.taskmanagerId));
    expect(owners.size, JSON.stringify(running.tasks)).toBe(1); // parallelism 1, one slot: the whole job on one TaskManager
    const id = [...owners][0] as string;
    const frozen = cluster.tms.get(id) ?? tm;
    // the job really writes results
    await waitFor(() => existsSync(out) && statSync(out).size > 0, {
      timeoutMs: 10_000,
      message: `no output in ${out}`,
    });

    frozen.signal('SIGSTOP');
    try {
      await waitFailed(cluster, jobId, Date.now(), 6000);
      frozen.signal('SIGCONT');
      // it heartbeats again and is re-admitted
      await waitFor(
        async () => (await cluster.taskmanagers()).some((t) => t.taskmanagerId === id && t.state === 'ALIVE'),
        {
          timeoutMs: 5000,
          message: `${id} did not come back after SIGCONT`,
        },
      );
      const before = statSync(out).size;
      await new Promise((r) => setTimeout(r, 1500)); // a quiet period: nothing may be written for a FAILED job
      const after = statSync(out).size;
      expect(
        after - before,
        `${id} kept writing ${after - before} bytes of output for FAILED job ${jobId} after it came back`,
      ).toBe(0);
      expect((await cluster.taskmanagers()).find((t) => t.taskmanagerId === id)?.slotsUsed).toBe(0);
    } finally {
      frozen.signal('SIGCONT');
      frozen.signal('SIGKILL');
      await frozen.waitForExit();
    }
  });
});
