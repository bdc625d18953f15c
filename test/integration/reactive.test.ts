/**
 * Reactive mode on a real cluster (jobmanager/reactive.ts): a JobManager started with
 * `--scheduler reactive` and one TaskManager of one slot, a private Redis, a keyed tumbling-window
 * job with exactly-once checkpoints every 200 ms and a file sink, reading a followed file the test
 * keeps appending to (700 readings every 50 ms, as sensors would send them), so the job runs as
 * long as the test needs and every rescale lands while readings flow.
 *
 * The job starts at parallelism 1; two TaskManagers join together and it rescales once to 3
 * (restoring its latest checkpoint, key groups redistributed); one of them is stopped (SIGTERM) and it
 * scales down to 2 instead of waiting for the lost slot; then it is stopped with drain. Its
 * committed output must equal, row for row, a run without rescaling (the same job over the whole
 * file on the 1-slot cluster before the others joined), whose rows are checked against an
 * independent window model of the input (test/support/window-oracle.ts).
 *
 * The second test scales in a job with an exactly-once redis sink (one sink per window subtask):
 * the TaskManager of `window-2` dies when a checkpoint's completion notice arrives, before its sink
 * commits (fault `crash@checkpoint-complete`). At parallelism 2 no subtask restores `window-2`'s
 * pending transactions; the JobManager writes them before deploying (jobmanager/orphaned-sinks.ts),
 * else the rows of windows that fired just before that checkpoint would be missing. The hashes
 * must equal those of a run without rescaling.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateCluster, startPrivateCluster } from '../support/private-cluster.js';
import { getJson, type RestJob, type TestCluster, waitFor } from '../support/processes.js';
import { diffRows, type OracleReading, type OracleRow, tumblingOracle } from '../support/window-oracle.js';

const SENSORS = 200;
const READINGS = 240_000;
const T0 = 1717200000000;
const STABILIZATION_MS = 2000;

/** Deterministic readings: each sensor every 10 s of event time, some 1.5 s out of order, in file order. */
function readings(): OracleReading[] {
  const out: OracleReading[] = [];
  for (let i = 0; i < READINGS; i++) {
    const sensor = i % SENSORS;
    const ts = T0 + Math.floor(i / SENSORS) * 10_000 + sensor - (i % 7 === 0 ? 1500 : 0);
    out.push({ key: `s-${sensor}`, ts, value: Number((20 + ((i * 37) % 100) / 10).toFixed(1)) });
  }
  return out;
}

const line = (r: OracleReading): string => `${r.key},${r.ts},${r.value.toFixed(1)}`;

const rowsOf = (path: string): string[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .sort();

type Job = RestJob & {
  checkpoints: { completed: number } | null;
  exceptions: { timeMs: number; attempt: number; reason: string }[];
};

/**
 * The job: keyBy sensor, 1-minute tumbling windows, exactly-once checkpoints every 200 ms (or
 * `o.intervalMs`), parallelism 1 (or `o.parallelism`). Returns the spec file.
 */
function writeSpec(
  dir: string,
  name: string,
  input: string,
  follow: boolean,
  sink?: object,
  o: { intervalMs?: number; parallelism?: number } = {},
): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      name,
      parallelism: o.parallelism ?? 1,
      checkpoint: { intervalMs: o.intervalMs ?? 200, mode: 'exactly-once' },
      restart: { type: 'fixed-delay', attempts: 5, delayMs: 100 },
      source: {
        type: 'file',
        path: input,
        follow,
        columns: ['sensor_id:string', 'timestamp_ms:int', 'temperature_c:double'],
        eventTime: { field: 'timestamp_ms', unit: 'ms' },
        watermark: { outOfOrdernessMs: 2000 },
      },
      steps: [
        { keyBy: 'sensor_id' },
        { window: { type: 'tumbling', sizeMs: 60000 } },
        {
          aggregate: {
            count: 'count()',
            avg: 'avg(temperature_c)',
            min: 'min(temperature_c)',
            max: 'max(temperature_c)',
          },
        },
      ],
      sink: sink ?? { type: 'file', path: join(dir, `${name}.jsonl`) },
    }),
  );
  return file;
}

/** Polls the job until `ok` holds; fails at once when it ends otherwise. */
async function waitForJob(cluster: TestCluster, id: string, what: string, ok: (j: Job) => boolean): Promise<Job> {
  let last: Job | undefined;
  return waitFor(
    async () => {
      last = (await cluster.job(id)) as Job;
      if (['FAILED', 'CANCELED', 'FINISHED'].includes(last.job.state) && !ok(last))
        throw Object.assign(new Error(`job ${id} ended ${last.job.state}: ${last.job.failure}`), { fatal: true });
      return ok(last) ? last : undefined;
    },
    {
      timeoutMs: 60_000,
      message: () =>
        `job ${id}: ${what} not reached: ${last ? JSON.stringify({ job: last.job, exceptions: last.exceptions, checkpoints: last.checkpoints }) : 'no status'}`,
    },
  );
}

const windowParallelism = (j: Job) => j.vertices.find((v) => v.id === 'window')?.parallelism;

/**
 * Writes the first tenth of `data` to `input`, then (once `start` is called) appends 700 readings
 * every 50 ms until all are there, as sensors would send them.
 */
function growingInput(input: string, data: OracleReading[]) {
  const first = Math.floor(data.length / 10);
  writeFileSync(input, `${data.slice(0, first).map(line).join('\n')}\n`);
  let appended = first;
  let timer: NodeJS.Timeout | undefined;
  return {
    first,
    get appended() {
      return appended;
    },
    start() {
      timer = setInterval(() => {
        const next = Math.min(data.length, appended + 700);
        appendFileSync(input, `${data.slice(appended, next).map(line).join('\n')}\n`);
        appended = next;
        if (appended >= data.length) clearInterval(timer);
      }, 50);
    },
    stop() {
      clearInterval(timer);
    },
    /** resolves once every reading was appended */
    done: () =>
      waitFor(() => appended >= data.length, { timeoutMs: 60_000, message: 'the input was not all appended' }),
  };
}

/** Every hash under `prefix:` but the fence, by the rest of its key. */
async function hashes(redisUrl: string, prefix: string): Promise<Map<string, Record<string, string>>> {
  const r = new Redis(redisUrl);
  try {
    const out = new Map<string, Record<string, string>>();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) if (!k.endsWith(':fluxo-fence')) out.set(k.slice(prefix.length + 1), await r.hgetall(k));
    } while (cursor !== '0');
    return out;
  } finally {
    r.disconnect();
  }
}

/** A private Redis, a temp folder with the whole input (`whole.csv`), and a JobManager (reactive by default) with tm-1 (1 slot). */
interface ReactiveFixture extends PrivateCluster {
  data: OracleReading[];
}

function startReactive(clusterId: string, scheduler = 'reactive'): Promise<ReactiveFixture> {
  const data = readings();
  return startPrivateCluster(clusterId, {
    prepare: (dir) => writeFileSync(join(dir, 'whole.csv'), `${data.map(line).join('\n')}\n`),
    cluster: {
      jmArgs: ['--scheduler', scheduler, '--resource-stabilization-timeout', String(STABILIZATION_MS)],
      taskmanagers: [{ id: 'tm-1', slots: 1 }],
    },
  }).then((pc) => ({ ...pc, data }));
}

/**
 * The describe block's fixture: `startReactive` before its tests (`use` gets the fixture, e.g. to
 * set the block's variables), stopped after them.
 */
function useReactive(clusterId: string, scheduler: string, use: (fx: ReactiveFixture) => void): void {
  let fx: ReactiveFixture | undefined;
  beforeAll(async () => {
    fx = await startReactive(clusterId, scheduler);
    use(fx);
  });
  afterAll(async () => {
    await fx?.stop();
  });
}

/** Runs the job over the whole input at parallelism 1 into a redis sink (prefix `ref`): its hashes, the reference. */
async function referenceHashes(fx: ReactiveFixture): Promise<Map<string, Record<string, string>>> {
  const ref = await fx.cluster.cli([
    'submit',
    writeSpec(fx.dir, 'reference', join(fx.dir, 'whole.csv'), false, { type: 'redis', keyPrefix: 'ref' }),
  ]);
  expect(ref.code, ref.stderr).toBe(0);
  await fx.cluster.waitForState(ref.stdout.trim(), 'FINISHED', 120_000);
  return hashes(fx.redis.url, 'ref');
}

describe('reactive mode', () => {
  let cluster: TestCluster;
  let dir: string;
  let data: OracleReading[];
  useReactive('reactive', 'reactive', (f) => {
    ({ cluster, dir, data } = f);
  });

  const spec = (name: string, input: string, follow: boolean, sink?: object) =>
    writeSpec(dir, name, input, follow, sink);

  it('rescales 1 → 3 as two TaskManagers join, 3 → 2 when one stops, and commits the rows of a run without rescaling', async () => {
    // the run without rescaling: the whole file, bounded, on the 1-slot cluster (nobody joins meanwhile)
    const ref = await cluster.cli(['submit', spec('reference', join(dir, 'whole.csv'), false)]);
    expect(ref.code, ref.stderr).toBe(0);
    const refDone = (await cluster.waitForState(ref.stdout.trim(), 'FINISHED', 120_000)) as Job;
    expect(refDone.job.parallelism).toBe(1);
    expect(refDone.exceptions).toEqual([]);
    const reference = rowsOf(join(dir, 'reference.jsonl'));
    // checked against an independent model of the windows
    const oracle = tumblingOracle(data, 60_000, 2000);
    expect(
      diffRows(
        reference.map((l) => JSON.parse(l) as OracleRow),
        oracle.rows,
        1e-9,
      ),
    ).toEqual([]);

    // the reactive job reads a followed file that grows all along (sensors keep sending), so each
    // rescale lands while readings flow: records after the restored checkpoint are replayed
    const input = growingInput(join(dir, 'input.csv'), data);
    const sub = await cluster.cli(['submit', spec('reactive', join(dir, 'input.csv'), true)]);
    expect(sub.code, sub.stderr).toBe(0);
    const id = sub.stdout.trim();
    await waitForJob(
      cluster,
      id,
      'RUNNING at 1 with the first part read and 2 checkpoints',
      (j) =>
        j.job.state === 'RUNNING' &&
        j.job.parallelism === 1 &&
        j.totals.linesRead >= input.first &&
        (j.checkpoints?.completed ?? 0) >= 2,
    );
    input.start();
    try {
      // two TaskManagers join together: one rescale, to 3
      await Promise.all([cluster.startTaskManager('tm-2', 1), cluster.startTaskManager('tm-3', 1)]);
      const joinedAt = Date.now();
      const at3 = await waitForJob(
        cluster,
        id,
        'RUNNING at parallelism 3',
        (j) => j.job.state === 'RUNNING' && j.job.parallelism === 3,
      );
      const scaleUpMs = Date.now() - joinedAt;
      const appendedAtScaleUp = input.appended;
      expect(windowParallelism(at3)).toBe(3);
      expect(new Set(at3.tasks.filter((t) => t.vertex === 'window').map((t) => t.taskmanagerId))).toEqual(
        new Set(['tm-1', 'tm-2', 'tm-3']),
      );
      expect(at3.job.attempt).toBe(2);
      expect(at3.exceptions.map((e) => e.reason)).toEqual(['rescale 1 → 3: TaskManagers joined']);
      // it restored a checkpoint of attempt 1, not started over
      const restore = await getJson<{ latestRestore: { attempt: number; fromSavepoint: boolean } | null }>(
        `${cluster.web}/jobs/${id}/checkpoints`,
      );
      expect(restore.latestRestore).toMatchObject({ attempt: 2, fromSavepoint: false });
      // `fluxo status` shows the parallelism and the rescale
      const status = await cluster.cli(['status', id]);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain('rescale 1 → 3: TaskManagers joined');
      expect(status.stdout).toMatch(/window-2\s+tm-/);

      // it goes on at 3 (two checkpoints of its own), then one TaskManager is stopped (SIGTERM, as
      // an Auto Scaling group's scale-in terminates an instance)
      const completed3 = at3.checkpoints?.completed ?? 0;
      await waitForJob(
        cluster,
        id,
        'checkpoints at parallelism 3',
        (j) => (j.checkpoints?.completed ?? 0) >= completed3 + 2,
      );
      cluster.tms.get('tm-3')?.signal('SIGTERM');
      const stoppedAt = Date.now();
      const appendedAtStop = input.appended;
      const at2 = await waitForJob(
        cluster,
        id,
        'RUNNING at parallelism 2',
        (j) => j.job.state === 'RUNNING' && j.job.parallelism === 2,
      );
      const scaleDownMs = Date.now() - stoppedAt;
      expect(windowParallelism(at2)).toBe(2);
      expect(at2.job.attempt).toBe(3);
      const reasons = at2.exceptions.map((e) => e.reason);
      expect(reasons).toHaveLength(3);
      expect(reasons[1]).toMatch(/^TASKMANAGER_LOST: TaskManager tm-3 /);
      expect(reasons[2]).toBe('rescale 3 → 2: TaskManagers left');

      // the rest of the input, then stop with drain: the job finishes
      await input.done();
      const stop = await cluster.cli(['stop', id]);
      expect(stop.code, stop.stderr).toBe(0);
      const finished = (await cluster.waitForState(id, 'FINISHED', 60_000)) as Job;
      expect(finished.job.parallelism).toBe(2);
      console.log(
        `reactive: ${data.length} readings, ${reference.length} rows; scale-up 1 → 3 RUNNING ${scaleUpMs} ms after both ` +
          `TaskManagers registered (stabilization ${STABILIZATION_MS} ms), ${appendedAtScaleUp} readings appended by then; ` +
          `scale-down 3 → 2 RUNNING ${scaleDownMs} ms after SIGTERM, ${appendedAtStop} appended by then`,
      );
    } finally {
      input.stop();
    }

    // exactly once: nothing lost, nothing twice
    const out = rowsOf(join(dir, 'reactive.jsonl'));
    expect(new Set(out).size).toBe(out.length);
    expect(out).toEqual(reference);
  }, 300_000);
});

describe('reactive mode: scale-in with a redis sink', () => {
  let fx: ReactiveFixture;
  let redis: ReactiveFixture['redis'];
  let cluster: TestCluster;
  let dir: string;
  let data: OracleReading[];
  useReactive('reactive-redis', 'reactive', (f) => {
    fx = f;
    ({ redis, cluster, dir, data } = f);
  });

  it('writes the pending output of a subtask a scale-in removes: the hashes equal a run without rescaling', async () => {
    const reference = await referenceHashes(fx);
    expect(reference.size).toBe(tumblingOracle(data, 60_000, 2000).rows.length);

    const input = growingInput(join(dir, 'input.csv'), data);
    const sub = await cluster.cli([
      'submit',
      writeSpec(dir, 'reactive', join(dir, 'input.csv'), true, { type: 'redis', keyPrefix: 'rx' }),
    ]);
    expect(sub.code, sub.stderr).toBe(0);
    const id = sub.stdout.trim();
    await waitForJob(
      cluster,
      id,
      'RUNNING at 1 with 2 checkpoints',
      (j) => j.job.state === 'RUNNING' && (j.checkpoints?.completed ?? 0) >= 2,
    );
    const { latest } = await getJson<{ latest: { id: number } | null }>(`${cluster.web}/jobs/${id}/checkpoints`);
    // tm-3 (joining last, so it runs window-2 with its redis sink) dies at the first completion
    // notice it gets, before its sink commits: that checkpoint's transaction of window-2 is pending
    const from = (latest?.id ?? 0) + 1;
    const faults = Array.from({ length: 500 }, (_, k) => `crash@checkpoint-complete:${from + k}`).join(',');
    const onceDir = join(dir, 'once');
    mkdirSync(onceDir);
    input.start();
    try {
      await cluster.startTaskManager('tm-2', 1);
      await cluster.startTaskManager('tm-3', 1, { FLUXO_FAULTS: faults, FLUXO_FAULTS_ONCE_DIR: onceDir });
      const at3 = await waitForJob(
        cluster,
        id,
        'RUNNING at parallelism 3',
        (j) => j.job.state === 'RUNNING' && j.job.parallelism === 3,
      );
      expect(at3.tasks.find((t) => t.taskId === 'window-2')?.taskmanagerId).toBe('tm-3');
      const tm3 = cluster.tms.get('tm-3');
      await waitFor(() => tm3?.exited, { timeoutMs: 30_000, message: 'tm-3 did not crash at a checkpoint completion' });
      expect(tm3?.exited?.signal).toBe('SIGKILL');
      const at2 = await waitForJob(
        cluster,
        id,
        'RUNNING at parallelism 2',
        (j) => j.job.state === 'RUNNING' && j.job.parallelism === 2,
      );
      expect(at2.exceptions.map((e) => e.reason).at(-1)).toBe('rescale 3 → 2: TaskManagers left');
      await input.done();
      const stop = await cluster.cli(['stop', id]);
      expect(stop.code, stop.stderr).toBe(0);
      await cluster.waitForState(id, 'FINISHED', 60_000);
    } finally {
      input.stop();
    }
    const out = await hashes(redis.url, 'rx');
    expect(out.size).toBe(reference.size);
    expect(out).toEqual(reference);
  }, 300_000);
});

// The same gap outside reactive mode: a savepoint whose completion notice a redis sink subtask never
// acted on (its TaskManager died first), restored at a lower parallelism by `submit
// --from-savepoint --parallelism`: the JobManager writes the dropped subtask's pending output.
describe('savepoint restored at a lower parallelism with a redis sink', () => {
  let fx: ReactiveFixture;
  let redis: ReactiveFixture['redis'];
  let cluster: TestCluster;
  let dir: string;
  let data: OracleReading[];
  useReactive('savepoint-scale-in', 'default', (f) => {
    fx = f;
    ({ redis, cluster, dir, data } = f);
  });

  it('writes the pending output of the subtask the lower parallelism drops: the hashes equal a run without failure', async () => {
    const reference = await referenceHashes(fx);

    // p = 3 on tm-1..3, no periodic checkpoint: the savepoint is checkpoint 1, and tm-3 (window-2
    // with its redis sink) is SIGKILLed when told it completed, before its sink commits
    const onceDir = join(dir, 'once');
    mkdirSync(onceDir);
    await cluster.startTaskManager('tm-2', 1);
    await cluster.startTaskManager('tm-3', 1, {
      FLUXO_FAULTS: 'crash@checkpoint-complete:1',
      FLUXO_FAULTS_ONCE_DIR: onceDir,
    });
    const input = growingInput(join(dir, 'input.csv'), data);
    const sink = { type: 'redis', keyPrefix: 'sp' };
    const spec = writeSpec(dir, 'sp', join(dir, 'input.csv'), true, sink, { intervalMs: 3_600_000, parallelism: 3 });
    const sub = await cluster.cli(['submit', spec]);
    expect(sub.code, sub.stderr).toBe(0);
    const id = sub.stdout.trim();
    input.start();
    let savepoint: string;
    try {
      const running = await waitForJob(cluster, id, 'RUNNING at 3', (j) => j.job.state === 'RUNNING');
      expect(running.tasks.find((t) => t.taskId === 'window-2')?.taskmanagerId).toBe('tm-3');
      await waitFor(() => input.appended >= data.length / 2, { timeoutMs: 60_000, message: 'input did not grow' });
      const sp = await cluster.cli(['savepoint', id]);
      expect(sp.code, sp.stderr).toBe(0);
      savepoint = sp.stdout.trim();
      expect(savepoint).toBe(`${id}-1`);
      const tm3 = cluster.tms.get('tm-3');
      await waitFor(() => tm3?.exited, {
        timeoutMs: 30_000,
        message: 'tm-3 did not crash at the savepoint completion',
      });
      await input.done();
    } finally {
      input.stop();
    }
    // the job cannot come back at 3 on two slots; it is canceled, its savepoint stays
    const cancel = await cluster.cli(['cancel', id]);
    expect(cancel.code, cancel.stderr).toBe(0);

    const resumed = await cluster.cli([
      'submit',
      writeSpec(dir, 'sp-resumed', join(dir, 'input.csv'), false, sink, { intervalMs: 3_600_000, parallelism: 3 }),
      '--from-savepoint',
      savepoint,
      '--parallelism',
      '2',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    await cluster.waitForState(resumed.stdout.trim(), 'FINISHED', 120_000);
    const out = await hashes(redis.url, 'sp');
    expect(out.size).toBe(reference.size);
    expect(out).toEqual(reference);
  }, 300_000);
});
