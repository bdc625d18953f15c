/**
 * Savepoints and rescaling on a real cluster (JobManager and three TaskManager processes with two
 * slots each, a private Redis), over the real data set the demo ships (UCI energy data, melted to
 * one reading per room, hourly windows).
 *
 * The input is a followed file filled in three parts. Job A (parallelism 2) reads part 1 and is
 * stopped with a savepoint; job B is submitted from it at parallelism 1 (scale in), reads part 2 and
 * is stopped with a savepoint; job C is submitted from that at parallelism 3 (scale out), reads part
 * 3 and is stopped with drain. All three write the same file. Key groups move between subtasks at
 * each restore, so a key's window state lost or restored twice would show as a missing or wrong
 * row. The final file must equal, row for row, the output of one uninterrupted job over the whole
 * input (its row count checked against the (room, hour) windows counted here from the input).
 * Also: `fluxo savepoints` lists them, deleting one works and a deleted one cannot be restored,
 * an incompatible job is refused with every problem listed, and an ended job's checkpoints are
 * deleted while its savepoints stay.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RestJob, startCluster, type TestCluster, waitFor } from '../support/processes.js';
import { startRedis } from '../support/redis.js';

const ROOMS = ['T1', 'T2', 'T3', 'T4', 'T5', 'T6', 'T7', 'T8', 'T9'];
const COLUMNS = [
  'date',
  'Appliances:double',
  'lights:double',
  ...ROOMS.flatMap((r, i) => [`${r}:double`, `RH_${i + 1}:double`]),
  'T_out:double',
  'Press_mm_hg:double',
  'RH_out:double',
  'Windspeed:double',
  'Visibility:double',
  'Tdewpoint:double',
  'rv1:double',
  'rv2:double',
];

function spec(name: string, input: string, out: string, follow: boolean, extra: Record<string, unknown> = {}) {
  return {
    name,
    parallelism: 2,
    source: {
      type: 'file',
      path: input,
      format: 'csv',
      header: true,
      follow,
      columns: COLUMNS,
      melt: { columns: ROOMS, nameField: 'room', valueField: 'temperature' },
      eventTime: { field: 'date', format: 'yyyy-MM-dd HH:mm:ss', timeZone: 'UTC' },
      watermark: { outOfOrdernessMs: 600000 },
    },
    steps: [
      { filter: 'temperature >= -40.0 && temperature <= 85.0' },
      { keyBy: 'room' },
      { window: { type: 'tumbling', sizeMs: 3600000 } },
      { aggregate: { count: 'count()', avg: 'avg(temperature)', min: 'min(temperature)', max: 'max(temperature)' } },
    ],
    sink: { type: 'file', path: out },
    checkpoint: { intervalMs: 300, mode: 'exactly-once' },
    restart: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
    ...extra,
  };
}

const rowsOf = (path: string): string[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .sort();

describe('savepoints and rescaling', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let cluster: TestCluster;
  let dir: string;
  let header: string;
  let lines: string[];

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fluxo-savepoints-'));
    const all = gunzipSync(readFileSync(resolve('examples/data/energydata_complete.csv.gz')))
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
    header = all[0];
    lines = all.slice(1);
    cluster = await startCluster({
      redisUrl: redis.url,
      clusterId: 'savepoints',
      // cluster checkpoint defaults, for jobs without a checkpoint: block (last test)
      jmEnv: { FLUXO_CHECKPOINT_INTERVAL_MS: '250', FLUXO_CHECKPOINT_RETAINED: '2' },
      taskmanagers: [
        { id: 'tm-1', slots: 2 },
        { id: 'tm-2', slots: 2 },
        { id: 'tm-3', slots: 2 },
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const writeSpec = (file: string, s: object): string => {
    const p = join(dir, file);
    writeFileSync(p, JSON.stringify(s));
    return p;
  };

  async function submit(args: string[]): Promise<string> {
    const r = await cluster.cli(['submit', ...args]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  }

  /** Waits until the job's sources have read `n` lines (the header counts) and it is RUNNING. */
  async function waitForLines(jobId: string, n: number): Promise<RestJob> {
    let last: unknown;
    return waitFor(
      async () => {
        const j = (await cluster.job(jobId)) as RestJob & { totals: { linesRead: number } };
        last = {
          state: j.job.state,
          failure: j.job.failure,
          totals: j.totals,
          tasks: j.tasks.map((t) => [t.taskId, t.state, t.counters?.linesRead]),
        };
        if (['FAILED', 'CANCELED', 'FINISHED'].includes(j.job.state))
          throw new Error(`job ${jobId} ended ${j.job.state}: ${j.job.failure}`);
        return j.job.state === 'RUNNING' && j.totals.linesRead >= n ? j : undefined;
      },
      { timeoutMs: 60_000, message: () => `job ${jobId} did not read ${n} lines: ${JSON.stringify(last)}` },
    );
  }

  it('stop with savepoint, restore at parallelism 1 then 3: the output equals one uninterrupted run', async () => {
    // the reference: one job over the whole input, never stopped
    const whole = join(dir, 'whole.csv');
    writeFileSync(whole, `${header}\n${lines.join('\n')}\n`);
    const refOut = join(dir, 'reference.jsonl');
    const ref = await submit([writeSpec('ref.json', spec('reference', whole, refOut, false))]);
    await cluster.waitForState(ref, 'FINISHED', 120_000);
    const reference = rowsOf(refOut);
    // independent count: (room, hour) windows holding at least one accepted reading
    const windows = new Set<string>();
    for (const l of lines) {
      const f = l.split(',').map((x) => x.replace(/^"|"$/g, ''));
      const hour = Math.floor(Date.parse(`${f[0].replace(' ', 'T')}Z`) / 3_600_000);
      ROOMS.forEach((_, i) => {
        const t = Number(f[3 + 2 * i]);
        if (t >= -40 && t <= 85) windows.add(`${i}|${hour}`);
      });
    }
    expect(reference.length).toBe(windows.size);

    // three parts; job A reads the first at parallelism 2
    const input = join(dir, 'input.csv');
    const cut1 = Math.floor(lines.length / 3);
    const cut2 = Math.floor((2 * lines.length) / 3);
    writeFileSync(input, `${header}\n${lines.slice(0, cut1).join('\n')}\n`);
    const out = join(dir, 'out.jsonl');
    const followed = writeSpec('followed.json', spec('followed', input, out, true));
    const a = await submit([followed]);
    await waitForLines(a, cut1 + 1);
    const stopA = await cluster.cli(['stop', a, '--savepoint']);
    expect(stopA.code, stopA.stderr).toBe(0);
    // stdout is the savepoint id alone (sp=$(fluxo stop job --savepoint)); the rest goes to stderr
    const spA = stopA.stdout.trim();
    expect(spA).toMatch(/^[0-9a-f]{16}-\d+$/);
    expect(spA).toMatch(new RegExp(`^${a}-\\d+$`));
    expect(stopA.stderr).toContain(`fluxo: savepoint ${spA} of job`);
    expect(stopA.stderr).toContain('fluxo: FINISHED');
    // what A committed is a subset of the reference (windows fired before the savepoint)
    const afterA = rowsOf(out);
    expect(afterA.length).toBeGreaterThan(0);
    for (const r of afterA) expect(reference).toContain(r);

    // job B from A's savepoint at parallelism 1 reads part 2
    appendFileSync(input, `${lines.slice(cut1, cut2).join('\n')}\n`);
    const b = await submit([followed, '--from-savepoint', spA, '--parallelism', '1']);
    await waitForLines(b, cut2 - cut1); // a restored source counts only what it reads itself (no header)
    const stopB = await cluster.cli(['stop', b, '--savepoint']);
    expect(stopB.code, stopB.stderr).toBe(0);
    const spB = stopB.stdout.trim();
    expect(spB).toMatch(/^[0-9a-f]{16}-\d+$/);
    const jobB = await cluster.job(b);
    expect(jobB.vertices.find((v) => v.id === 'window')?.parallelism).toBe(1);

    // job C from B's savepoint at parallelism 3 reads part 3, then drains
    appendFileSync(input, `${lines.slice(cut2).join('\n')}\n`);
    const c = await submit([followed, '--from-savepoint', spB, '-p', '3']);
    await waitForLines(c, lines.length - cut2);
    const jobC = await cluster.job(c);
    expect(jobC.vertices.find((v) => v.id === 'window')?.parallelism).toBe(3);
    const stopC = await cluster.cli(['stop', c]);
    expect(stopC.code, stopC.stderr).toBe(0);
    await cluster.waitForState(c, 'FINISHED', 60_000);

    const final = rowsOf(out);
    expect(new Set(final).size).toBe(final.length); // no row twice
    expect(final).toEqual(reference);

    // both savepoints are listed, with the job that took them
    const list = await cluster.cli(['savepoints']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(spA);
    expect(list.stdout).toContain(spB);
    expect(list.stdout).toMatch(/^SAVEPOINT ID\s+KIND\s+JOB/);
    expect(list.stdout).toMatch(new RegExp(`^${spA}\\s+savepoint\\s+followed\\s`, 'm'));

    // an ended job keeps its savepoints and loses its checkpoints
    const r = new Redis(redis.url);
    try {
      const idsA = await r.zrange(`fluxo:savepoints:ckpt:${a}:index`, 0, -1);
      expect(idsA).toEqual([spA.split('-')[1]]);
    } finally {
      r.disconnect();
    }

    // deleting a savepoint: gone from the list, and it can no longer be restored
    const del = await cluster.cli(['savepoints', 'delete', spA]);
    expect(del.code, del.stderr).toBe(0);
    expect((await cluster.cli(['savepoints'])).stdout).not.toContain(spA);
    const again = await cluster.cli(['submit', followed, '--from-savepoint', spA]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`no savepoint or retained checkpoint ${spA}`);
    // an empty id is an error naming the option, not a fresh job
    const empty = await cluster.cli(['submit', followed, '--from-savepoint', '']);
    expect(empty.code).not.toBe(0);
    expect(empty.stdout).toBe('');
    expect(empty.stderr).toContain('--from-savepoint needs a savepoint id');
  }, 300_000);

  it('refuses a job whose state does not fit the savepoint, listing every problem', async () => {
    const input = join(dir, 'small.csv');
    writeFileSync(input, `${header}\n${lines.slice(0, 500).join('\n')}\n`);
    const s = writeSpec('small.json', spec('small', input, join(dir, 'small.jsonl'), true));
    const job = await submit([s]);
    await waitForLines(job, 501);
    const sp = await cluster.cli(['savepoint', job]);
    expect(sp.code, sp.stderr).toBe(0);
    const id = sp.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{16}-\d+$/);
    expect(sp.stderr).toContain(`fluxo: savepoint ${id} of job`);
    // the job goes on running after a plain savepoint
    expect((await cluster.job(job)).job.state).toBe('RUNNING');
    await cluster.cli(['cancel', job]);

    const elsewhere = join(dir, 'elsewhere.csv');
    writeFileSync(elsewhere, readFileSync(input));
    const other = spec('other', elsewhere, join(dir, 'other.jsonl'), true, { maxParallelism: 64 });
    (other.steps[2] as { window: { sizeMs: number } }).window.sizeMs = 600000;
    (other.steps[1] as { keyBy: string }).keyBy = 'date';
    const r = await cluster.cli(['submit', writeSpec('other.json', other), '--from-savepoint', id]);
    expect(r.code).not.toBe(0);
    // every difference, one line each
    expect(r.stderr).toContain('maxParallelism: the savepoint has 128 key groups, the job 64');
    expect(r.stderr).toContain(
      `source.paths: the savepoint's positions are offsets in ${input}; the job reads ${elsewhere}`,
    );
    expect(r.stderr).toContain(
      'steps.keyBy: the savepoint\'s keyed state was built with ["room"], the job has ["date"]',
    );
    expect(r.stderr).toContain(
      'steps.window: the savepoint\'s keyed state was built with {"type":"tumbling","sizeMs":3600000',
    );
    expect(r.stderr).not.toContain('steps.aggregate');

    const bad = await cluster.cli(['submit', s, '--from-savepoint', 'nonsense']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('is not a savepoint id');
  }, 120_000);

  it('checkpoints a job without a checkpoint: block with the cluster defaults', async () => {
    const input = join(dir, 'defaults.csv');
    writeFileSync(input, `${header}\n${lines.slice(0, 300).join('\n')}\n`);
    const s = spec('defaults', input, join(dir, 'defaults.jsonl'), true) as Record<string, unknown>;
    delete s.checkpoint;
    delete s.restart;
    const job = await submit([writeSpec('defaults.json', s)]);
    const j = await waitFor(
      async () => {
        const d = (await cluster.job(job)) as RestJob & { checkpoints: { completed: number } | null };
        return d.checkpoints && d.checkpoints.completed >= 2 ? d : undefined;
      },
      { timeoutMs: 30_000, message: () => `job ${job} took no checkpoints with the cluster defaults` },
    );
    expect(j.job.state).toBe('RUNNING');
    await cluster.cli(['cancel', job]);
  }, 60_000);

  it("keeps a FAILED job's checkpoints (listed as retained, deletable) and will not delete a savepoint a job still needs", async () => {
    const input = join(dir, 'retained.csv');
    writeFileSync(input, `${header}\n${lines.slice(0, 400).join('\n')}\n`);
    // restart none: a lost TaskManager fails the job, which keeps its checkpoints
    const failing = spec('failing', input, join(dir, 'failing.jsonl'), true, { restart: { type: 'none' } });
    const f = await submit([writeSpec('failing.json', { ...failing, parallelism: 1 })]);
    const running = await waitFor(
      async () => {
        const d = (await cluster.job(f)) as RestJob & { checkpoints: { completed: number } | null };
        return d.job.state === 'RUNNING' && (d.checkpoints?.completed ?? 0) >= 1 ? d : undefined;
      },
      { timeoutMs: 30_000, message: () => `job ${f} took no checkpoint` },
    );
    const victim = running.tasks.find((t) => t.taskId === 'window-0')?.taskmanagerId as string;
    cluster.tms.get(victim)?.signal('SIGKILL');
    const failed = await waitFor(
      async () => {
        const d = await cluster.job(f);
        return d.job.state === 'FAILED' ? d : undefined;
      },
      { timeoutMs: 30_000, message: () => `job ${f} did not fail` },
    );
    expect(failed.job.failure).toContain('TASKMANAGER_LOST');
    const listed = await cluster.cli(['savepoints', '--job', f]);
    expect(listed.code, listed.stderr).toBe(0);
    const retained = [...listed.stdout.matchAll(new RegExp(`${f}-\\d+`, 'g'))].map((m) => m[0]);
    expect(retained.length).toBeGreaterThan(0);
    expect(listed.stdout).toContain('retained');
    const del = await cluster.cli(['savepoints', 'delete', retained[0]]);
    expect(del.code, del.stderr).toBe(0);
    expect((await cluster.cli(['savepoints', '--job', f])).stdout).not.toContain(retained[0]);

    // a job restored from a savepoint that has no checkpoint of its own yet (it waits for more
    // slots than there are) keeps that savepoint from being deleted
    const g = await submit([writeSpec('g.json', { ...spec('g', input, join(dir, 'g.jsonl'), true), parallelism: 1 })]);
    await waitForLines(g, 401);
    const sp = await cluster.cli(['savepoint', g]);
    expect(sp.code, sp.stderr).toBe(0);
    const id = sp.stdout.trim();
    await cluster.cli(['cancel', g]);
    const h = await submit([
      writeSpec('h.json', spec('h', input, join(dir, 'h.jsonl'), true)),
      '--from-savepoint',
      id,
      '-p',
      '50',
    ]);
    expect((await cluster.job(h)).job.state).toBe('CREATED');
    const refused = await cluster.cli(['savepoints', 'delete', id]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`was restored from ${id} and has no checkpoint of its own yet`);
    await cluster.cli(['cancel', h]);
    const ok = await cluster.cli(['savepoints', 'delete', id]);
    expect(ok.code, ok.stderr).toBe(0);
  }, 120_000);
});
