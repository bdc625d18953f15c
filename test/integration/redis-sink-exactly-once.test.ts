/**
 * The exactly-once redis sink on a real cluster: a JobManager and three TaskManager processes (one
 * spare slot), a private Redis, checkpoints every 200 ms. Every TaskManager runs with
 * `FLUXO_FAULTS=crash@checkpoint-complete:3` (fire once): the first one to receive the completion
 * notice of checkpoint 3 SIGKILLs itself before its sinks commit, so the restore must write what
 * the sink had pre-committed. The job must fail over and finish with Redis hashes equal to those of
 * a failure-free run of the same job, whose windows are checked against an independent model of
 * the aggregation (test/support/window-oracle.ts). While the jobs run, the test polls Redis: no
 * hash may be visible before a checkpoint has completed, and with checkpoints too rare to happen
 * before the end, none before the job has finished.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../support/processes.js';
import { startRedis } from '../support/redis.js';
import { type OracleReading, type OracleRow, tumblingOracle } from '../support/window-oracle.js';

const SENSORS = 200;
const READINGS = 600_000;
const T0 = 1717200000000;
const WINDOW_MS = 60_000;
const OUT_OF_ORDERNESS_MS = 2000;
const FENCE = 'fluxo-fence';

/** Deterministic input: each sensor every 10 s of event time, a little out of order (never late). */
function readings(): OracleReading[] {
  const out: OracleReading[] = [];
  for (let i = 0; i < READINGS; i++) {
    const sensor = i % SENSORS;
    const ts = T0 + Math.floor(i / SENSORS) * 10_000 + sensor - (i % 7 === 0 ? 1500 : 0);
    out.push({ key: `s-${sensor}`, ts, value: Number((20 + ((i * 37) % 100) / 10).toFixed(1)) });
  }
  return out;
}

type Hashes = Map<string, Record<string, string>>;

describe('exactly-once redis sink', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let cluster: TestCluster;
  let dir: string;
  let expected: OracleRow[];
  let reference: Hashes;

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fluxo-redis-eo-'));
    const input = readings();
    writeFileSync(join(dir, 'input.csv'), `${input.map((r) => `${r.key},${r.ts},${r.value.toFixed(1)}`).join('\n')}\n`);
    const oracle = tumblingOracle(input, WINDOW_MS, OUT_OF_ORDERNESS_MS);
    expect(oracle.late).toBe(0);
    expected = oracle.rows;
    mkdirSync(join(dir, 'once'));
    cluster = await startCluster({
      redisUrl: redis.url,
      clusterId: 'redis-eo',
      taskmanagers: [
        { id: 'tm-1', slots: 1 },
        { id: 'tm-2', slots: 1 },
        { id: 'tm-3', slots: 1 },
      ],
      tmEnv: { FLUXO_FAULTS: 'crash@checkpoint-complete:3', FLUXO_FAULTS_ONCE_DIR: join(dir, 'once') },
    });
  });

  afterAll(async () => {
    await cluster?.stop();
    for (const c of dbs.values()) c.disconnect();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Each job writes to its own Redis database, so a poll can count its keys with DBSIZE. */
  const DB: Record<string, number> = { 'eo-killed': 1, 'eo-clean': 2, 'eo-rare': 3 };
  const dbs = new Map<string, Redis>();
  const db = (name: string): Redis => {
    let c = dbs.get(name);
    if (!c) {
      c = new Redis(`${redis.url}/${DB[name]}`);
      dbs.set(name, c);
    }
    return c;
  };

  function spec(name: string, intervalMs: number): string {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      JSON.stringify({
        name,
        parallelism: 2,
        checkpoint: { intervalMs, mode: 'exactly-once' },
        restart: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
        source: {
          type: 'file',
          path: 'input.csv',
          columns: ['sensor_id:string', 'timestamp_ms:int', 'temperature_c:double'],
          eventTime: { field: 'timestamp_ms', unit: 'ms' },
          watermark: { outOfOrdernessMs: OUT_OF_ORDERNESS_MS },
        },
        steps: [
          { keyBy: 'sensor_id' },
          { window: { type: 'tumbling', sizeMs: WINDOW_MS } },
          {
            aggregate: {
              count: 'count()',
              avg: 'avg(temperature_c)',
              min: 'min(temperature_c)',
              max: 'max(temperature_c)',
            },
          },
        ],
        sink: { type: 'redis', keyPrefix: name, url: `${redis.url}/${DB[name]}` },
      }),
    );
    return file;
  }

  /** The number of data keys of job `name` (its database holds them and the fence), read atomically. */
  async function dataKeyCount(name: string): Promise<number> {
    const res = await db(name).multi().exists(`${name}:${FENCE}`).dbsize().exec();
    const [[, fence], [, size]] = res as [[null, number], [null, number]];
    return size - fence;
  }

  /** Every data hash of job `name`, by key without the prefix. */
  async function hashesOf(name: string): Promise<Hashes> {
    const c = db(name);
    const keys = (await c.keys(`${name}:*`)).filter((k) => k !== `${name}:${FENCE}`).sort();
    const p = c.pipeline();
    for (const k of keys) p.hgetall(k);
    const res = (await p.exec()) ?? [];
    const out: Hashes = new Map();
    keys.forEach((k, i) => {
      out.set(k.slice(name.length + 1), res[i][1] as Record<string, string>);
    });
    return out;
  }

  interface Observed {
    jobId: string;
    done: {
      job: { state: string; attempt: number };
      exceptions: { reason: string }[];
      checkpoints: { completed: number } | null;
      tasks: { taskId: string; taskmanagerId: string; counters?: Record<string, number> }[];
    };
    /** taskmanager → task ids, as seen while RUNNING */
    placement: Map<string, Set<string>>;
    /** polls of the first attempt that saw hashes before the job reported a completed checkpoint */
    earlyPolls: number;
    /** the number of data keys each poll saw while the job was RUNNING */
    runningCounts: number[];
  }

  /**
   * Submits `name`, then polls Redis (first) and the job (second) every 20 ms until it ends. Keys
   * seen while the first attempt runs and reports no completed checkpoint yet were visible before
   * any commit (completions only grow, and a commit follows its completion notice).
   */
  async function runObserved(name: string, intervalMs: number): Promise<Observed> {
    const sub = await cluster.cli(['submit', spec(name, intervalMs)]);
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = sub.stdout.trim();
    const placement = new Map<string, Set<string>>();
    let earlyPolls = 0;
    const runningCounts: number[] = [];
    const deadline = Date.now() + 90_000;
    for (;;) {
      const keys = await dataKeyCount(name);
      const j = (await cluster.job(jobId)) as unknown as Observed['done'];
      // (between attempts the job reports no checkpoint statistics: those polls say nothing)
      if (keys > 0 && j.job.state === 'RUNNING' && j.job.attempt === 1 && j.checkpoints?.completed === 0) earlyPolls++;
      if (j.job.state === 'RUNNING') {
        runningCounts.push(keys);
        for (const t of j.tasks) {
          const set = placement.get(t.taskmanagerId) ?? new Set<string>();
          set.add(t.taskId);
          placement.set(t.taskmanagerId, set);
        }
      }
      if (['FINISHED', 'FAILED', 'CANCELED'].includes(j.job.state)) {
        expect(j.job.state, JSON.stringify(j)).toBe('FINISHED');
        return { jobId, done: j, placement, earlyPolls, runningCounts };
      }
      if (Date.now() > deadline) throw new Error(`job ${name} did not finish: ${JSON.stringify(j.job)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('a TaskManager killed at a completion notice: the hashes equal those of a failure-free run', async () => {
    const killed = await runObserved('eo-killed', 200);
    expect(killed.done.exceptions, JSON.stringify(killed.done.exceptions)).toHaveLength(1);
    const victim = /TaskManager (tm-\d)/.exec(killed.done.exceptions[0].reason)?.[1] as string;
    expect(victim, killed.done.exceptions[0].reason).toBeDefined();
    // the crash hit a TaskManager running a window subtask and its chained redis sink
    expect([...(killed.placement.get(victim) ?? [])].some((t) => t.startsWith('window-'))).toBe(true);
    expect(killed.done.job.attempt).toBe(2);
    expect(killed.earlyPolls).toBe(0);

    const clean = await runObserved('eo-clean', 200);
    expect(clean.done.exceptions).toHaveLength(0);
    expect(clean.earlyPolls).toBe(0);
    reference = await hashesOf('eo-clean');

    // the failure-free run against the independent model
    expect(reference.size).toBe(expected.length);
    for (const w of expected) {
      const h = reference.get(`${w.key}:${w.windowStart}`);
      expect(h, `${w.key}:${w.windowStart}`).toBeDefined();
      expect(Number(h?.count)).toBe(w.count);
      expect(Number(h?.min)).toBe(w.min);
      expect(Number(h?.max)).toBe(w.max);
      expect(Number(h?.avg)).toBeCloseTo(w.avg, 9);
      expect(Number(h?.windowEnd)).toBe(w.windowEnd);
    }

    // nothing lost, nothing doubled, every field equal
    expect(await hashesOf('eo-killed')).toEqual(reference);
    // the fence names the job and its last attempt's epoch
    expect(await db('eo-killed').hgetall(`eo-killed:${FENCE}`)).toEqual({ job: killed.jobId, epoch: '2' });
  });

  it('with no checkpoint before the end of input, each sink shows all its hashes at once at its end', async () => {
    const rare = await runObserved('eo-rare', 600_000);
    expect(rare.done.checkpoints?.completed ?? 0).toBe(0);
    expect(await hashesOf('eo-rare')).toEqual(reference);
    // each window subtask's sink writes its windows in one script at its end of input, so a poll
    // sees none, all of one subtask's, or all: never a part (a direct sink fills in gradually)
    const perTask = rare.done.tasks
      .filter((t) => t.taskId.startsWith('window-'))
      .map((t) => t.counters?.rowsWritten as number);
    expect(perTask).toHaveLength(2);
    expect(perTask[0] + perTask[1]).toBe(reference.size);
    const allowed = new Set([0, perTask[0], perTask[1], reference.size]);
    expect(rare.runningCounts.length).toBeGreaterThan(3);
    expect(rare.runningCounts.filter((n) => !allowed.has(n))).toEqual([]);
    expect(rare.runningCounts[0]).toBe(0);
  });
});
