/**
 * Recovery cases BR-14 (b), BR-15, BR-17 and BR-20 on a real cluster: a JobManager process, two
 * TaskManager processes with one slot each (one can die and the job still finds a free slot), a
 * private Redis. Each job has parallelism 1, so with slot sharing the source, the window and the
 * sinks run on the same TaskManager, and that TaskManager is the one SIGKILLed.
 *
 * "Checkpoint after line N, crash after line M" without sleeps (README of the cases, recovery
 * conventions): the input is a followed file that holds only lines 1..N; once the source has read
 * them (totals.readingsIn), `fluxo checkpoint` takes a checkpoint and returns when it has
 * completed; lines N+1..M are appended and read; the TaskManager running source-0 is SIGKILLed
 * (the file holds nothing past line M, so the crash is right after line M). The job has no
 * periodic checkpoints (interval 1 h) and restarts with fixed-delay; after the failover the
 * remaining lines are appended and `fluxo stop` drains the job. The committed sink file must equal
 * the case's expected table (a set; avg ±0.001; count/min/max exact; no (sensor, window) twice),
 * and a failure-free run of the same job through the same cluster must give the same rows.
 * Inputs and expected rows: test/cases/data/BR-*.csv / BR-*.expected.json (copied from
 * ../shared/cases by hand).
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExpectedRow, expectRows, type OutRow, readRows, writeCaseSpec } from '../../support/case-spec.js';
import { killAll, type RestJob, startCluster, type TestCluster, waitFor } from '../../support/processes.js';
import { startRedis } from '../../support/redis.js';

const DATA = resolve('test/cases/data');

type JobDoc = RestJob & { exceptions: { reason: string }[]; checkpoints: { completed: number } | null };

function readLines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

interface RecoveryCase {
  id: string;
  window?: Record<string, unknown>;
  /** checkpoint after line N */
  checkpointAfter: number;
  /** crash after line M */
  crashAfter: number;
  /** rows the sink has written (uncommitted) by line M; waited for before the kill */
  rowsWrittenByCrash?: number;
  /** rows committed by the checkpoint after line N */
  committedAtCheckpoint: number;
  /** append the lines after M while the job is down (right after the kill) instead of after the restart */
  appendWhileDown?: boolean;
  lateDropped: number;
}

const CASES: RecoveryCase[] = [
  { id: 'BR-14', checkpointAfter: 10, crashAfter: 13, rowsWrittenByCrash: 4, committedAtCheckpoint: 2, lateDropped: 0 },
  { id: 'BR-15', checkpointAfter: 7, crashAfter: 9, rowsWrittenByCrash: 4, committedAtCheckpoint: 2, lateDropped: 0 },
  {
    id: 'BR-17',
    window: { type: 'sliding', sizeMs: 10000, slideMs: 5000 },
    checkpointAfter: 7,
    crashAfter: 12,
    // line 4 fires util-1 [-5,+5); line 7 fires util-1/util-2 [0,+10); line 9 (W 14 s) nothing;
    // line 10 (W 16 s) fires util-1/util-2 [+5,+15); line 12 (W 19 s) nothing
    rowsWrittenByCrash: 5,
    committedAtCheckpoint: 3,
    lateDropped: 1,
  },
  {
    id: 'BR-20',
    checkpointAfter: 6,
    crashAfter: 9,
    // line 6 (W 9 s) nothing; line 7 (W 10 s) fires both [0,+10); line 9 (W 16 s) nothing
    rowsWrittenByCrash: 2,
    committedAtCheckpoint: 0,
    appendWhileDown: true,
    lateDropped: 0,
  },
];

describe('recovery cases on a real cluster (BR-14, BR-15, BR-17, BR-20)', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let cluster: TestCluster;
  let dir: string;
  let tmSeq = 2;

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fluxo-recovery-cases-'));
    cluster = await startCluster({
      redisUrl: redis.url,
      clusterId: 'recovery-cases',
      taskmanagers: [
        { id: 'tm-1', slots: 1 },
        { id: 'tm-2', slots: 1 },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    await killAll();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const job = async (id: string) => (await cluster.job(id)) as JobDoc;

  async function cliOk(args: string[]): Promise<string> {
    const r = await cluster.cli(args);
    if (r.code !== 0) throw new Error(`fluxo ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout.trim();
  }

  async function waitReadings(jobId: string, n: number, what: string, attempt?: number): Promise<JobDoc> {
    let last: JobDoc | undefined;
    return waitFor(
      async () => {
        last = await job(jobId);
        if (['FAILED', 'CANCELED', 'FINISHED'].includes(last.job.state))
          throw new Error(`job ended ${last.job.state}: ${last.job.failure}`);
        if (attempt !== undefined && last.job.attempt !== attempt) return undefined;
        return last.totals.readingsIn >= n ? last : undefined;
      },
      {
        timeoutMs: 20_000,
        message: () => `${what}: readingsIn >= ${n} (${JSON.stringify(last?.totals)} attempt ${last?.job.attempt})`,
      },
    );
  }

  /** Keeps two live TaskManagers with a free slot for the next job (the killed one is replaced). */
  async function ensureTwoTaskManagers(): Promise<void> {
    const alive = [...cluster.tms.values()].filter((t) => !t.exited).length;
    for (let i = alive; i < 2; i++) await cluster.startTaskManager(`tm-${++tmSeq}`, 1);
    await waitFor(
      async () => (await cluster.taskmanagers()).filter((t) => t.state === 'ALIVE' && t.slotsUsed === 0).length >= 2,
      { timeoutMs: 20_000, message: 'two free TaskManagers' },
    );
  }

  async function runCase(c: RecoveryCase, crash: boolean) {
    await ensureTwoTaskManagers();
    const lines = readLines(join(DATA, `${c.id}.csv`));
    const expected = JSON.parse(readFileSync(join(DATA, `${c.id}.expected.json`), 'utf8')) as ExpectedRow[];
    const name = `${c.id.toLowerCase()}-${crash ? 'crash' : 'clean'}`;
    const input = join(dir, `${name}.csv`);
    const out = join(dir, `${name}.jsonl`);
    const lateOut = join(dir, `${name}.late.jsonl`);
    const lineRange = (from: number, to: number) => `${lines.slice(from - 1, to).join('\n')}\n`;
    const started = Date.now();

    writeFileSync(input, lineRange(1, c.checkpointAfter));
    const spec = writeCaseSpec({
      name,
      dir,
      paths: [input],
      follow: true,
      parallelism: 1,
      outOfOrdernessMs: 2000,
      window: c.window,
      extra: {
        checkpoint: { intervalMs: 3_600_000 },
        restart: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
      },
    });
    const jobId = await cliOk(['submit', spec]);
    await waitReadings(jobId, c.checkpointAfter, `${name} lines 1..${c.checkpointAfter}`);
    await cliOk(['checkpoint', jobId]);
    // the checkpoint has completed; its completion notice reaches the sinks just after the CLI
    // returns, and then exactly the rows fired by line N are committed
    await waitFor(async () => readLines(out).length >= c.committedAtCheckpoint || undefined, {
      timeoutMs: 15_000,
      message: () => `${name}: rows of the checkpoint after line ${c.checkpointAfter} not committed`,
    });
    expect(readLines(out), `${name}: committed at the checkpoint after line ${c.checkpointAfter}`).toHaveLength(
      c.committedAtCheckpoint,
    );

    appendFileSync(input, lineRange(c.checkpointAfter + 1, c.crashAfter));
    let before = await waitReadings(jobId, c.crashAfter, `${name} lines ..${c.crashAfter}`);
    if (c.rowsWrittenByCrash !== undefined) {
      const n = c.rowsWrittenByCrash;
      before = await waitFor(async () => ((await job(jobId)).totals.resultsWritten >= n ? job(jobId) : undefined), {
        timeoutMs: 20_000,
        message: `${name}: ${n} rows written by line ${c.crashAfter}`,
      });
      expect(before.totals.resultsWritten).toBe(n);
    }
    // rows written after the checkpoint are staged, not visible
    expect(readLines(out), `${name}: committed before the crash`).toHaveLength(c.committedAtCheckpoint);

    let victim: string | undefined;
    if (crash) {
      victim = before.tasks.find((t) => t.taskId === 'source-0')?.taskmanagerId;
      expect(victim, JSON.stringify(before.tasks)).toBeTruthy();
      // with slot sharing the whole job is on that TaskManager
      expect(new Set(before.tasks.map((t) => t.taskmanagerId))).toEqual(new Set([victim]));
      cluster.tms.get(victim as string)?.signal('SIGKILL');
      if (c.appendWhileDown) appendFileSync(input, lineRange(c.crashAfter + 1, lines.length));
      await waitFor(
        async () => {
          const j = await job(jobId);
          if (['FAILED', 'CANCELED', 'FINISHED'].includes(j.job.state))
            throw new Error(`job ended ${j.job.state}: ${j.job.failure}`);
          return j.job.state === 'RUNNING' && j.job.attempt === 2 && j.tasks.every((t) => t.taskmanagerId !== victim);
        },
        { timeoutMs: 30_000, message: `${name}: job RUNNING again as attempt 2` },
      );
      if (!c.appendWhileDown) appendFileSync(input, lineRange(c.crashAfter + 1, lines.length));
      // the restored attempt reads from the checkpointed position (line N + 1) to the end
      await waitReadings(jobId, lines.length - c.checkpointAfter, `${name} replay`, 2);
    } else {
      appendFileSync(input, lineRange(c.crashAfter + 1, lines.length));
      await waitReadings(jobId, lines.length, `${name} all lines`);
    }

    expect(await cliOk(['stop', jobId])).toBe('FINISHED');
    const done = await cluster.waitForState(jobId, 'FINISHED', 30_000);
    const doc = done as JobDoc;
    if (crash) {
      expect(doc.job.attempt).toBe(2);
      expect(doc.exceptions).toHaveLength(1);
      expect(doc.exceptions[0].reason).toContain(`TaskManager ${victim}`);
    } else {
      expect(doc.job.attempt).toBe(1);
    }
    const rows = readRows(out);
    expectRows(rows, expected, name);
    return { rows, late: readLines(lateOut), totals: doc.totals, ms: Date.now() - started };
  }

  for (const c of CASES) {
    const where = `checkpoint after line ${c.checkpointAfter}, crash after line ${c.crashAfter}`;
    it(`${c.id}: ${where}; the committed output equals the failure-free run, every row once`, async () => {
      const clean = await runCase(c, false);
      const crashed = await runCase(c, true);
      const key = (r: OutRow) => JSON.stringify([r.key, r.windowStart, r.windowEnd, r.count, r.min, r.max]);
      expect(crashed.rows.map(key).sort()).toEqual(clean.rows.map(key).sort());

      // late output is a file sink of the same job, so exactly-once as well: the late reading read
      // before the crash was staged after the checkpoint and is cut at restore; the replay writes it again
      expect(clean.late).toHaveLength(c.lateDropped);
      expect(clean.totals.late).toBe(c.lateDropped);
      expect(crashed.late).toHaveLength(c.lateDropped);
      expect(crashed.late).toEqual(clean.late);
      // the restored attempt counts from the checkpointed position: lines N+1.. are replayed, so it
      // meets the late reading (BR-17 line 11) again, with the restored watermark
      expect(crashed.totals.late).toBe(c.lateDropped);
      console.log(`${c.id}: failure-free ${clean.ms} ms, with crash ${crashed.ms} ms`);
    }, 120_000);
  }
});
