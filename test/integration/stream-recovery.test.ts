/**
 * The redis-stream source on a real cluster (a JobManager, three TaskManagers × 1 slot, a private
 * Redis): the shipped energy data set (examples/data/energydata_complete.csv.gz, UCI "Appliances
 * energy prediction", CC BY 4.0, see examples/data/NOTICE.md) is produced into a 2-partition
 * stream (`fluxo produce --key date`), read by the room-temperature job
 * (examples/stream-room-temperature.yaml: melt T1..T9, hourly windows per room) with exactly-once
 * checkpoints every 250 ms, and:
 *
 * 1. a failure-free run over the stream gives the reference rows;
 * 2. the same job over the file (examples/room-temperature.yaml) gives the same rows: each
 *    partition holds a subset of the file's lines in file (= time) order, so no reading is late in
 *    either job, every (room, hour) window gets the same readings, and sum/avg are exact sums
 *    rounded once (order-independent), so the rows are equal byte for byte;
 * 3. a run where the TaskManager running source-1, window-1 and the sink SIGKILLs itself at the
 *    completion notice of checkpoint 2 (`crash@checkpoint-complete:2`, core/fault/inject.ts)
 *    fails over, restores the sources' entry ids from checkpoint 2 (it reads fewer readings than
 *    the data set holds) and commits exactly the reference rows.
 *
 * As in chaos.test.ts, runs 1 and 3 follow the stream (unbounded) while a feeder appends it: the
 * first fifth before the job starts, the rest in 12 chunks every 200 ms; `fluxo stop` then drains
 * it (sources read to the end of their partitions) once the run's condition holds. Each run has
 * its own stream with the same content (the partitioner is deterministic).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { recordKeyReader, StreamWriter } from '../../core/streams/layout.js';
import {
  killAll,
  REPO_ROOT,
  type RestJob,
  runCli,
  startCluster,
  type TestCluster,
  waitFor,
} from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const STREAM_SPEC = join(REPO_ROOT, 'examples/stream-room-temperature.yaml');
const FILE_SPEC = join(REPO_ROOT, 'examples/room-temperature.yaml');
const DATA = join(REPO_ROOT, 'examples/data/energydata_complete.csv.gz');
const PARTITIONS = 2;
const ROOMS = 9;
const FEED_CHUNKS = 12;
const FEED_INTERVAL_MS = 200;

type JobDoc = RestJob & {
  exceptions: { reason: string }[];
  checkpoints: { completed: number } | null;
};

const rowKey = (line: string): string => {
  const r = JSON.parse(line) as { key: string; windowStart: number };
  return `${r.key}\u0000${String(r.windowStart).padStart(16, '0')}`;
};
function committedRows(path: string): string[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .sort((a, b) => (rowKey(a) < rowKey(b) ? -1 : rowKey(a) > rowKey(b) ? 1 : 0));
}

describe('redis-stream source on a real cluster', () => {
  let redis: TestRedis;
  let client: Redis;
  let dir: string;
  let header: string;
  let lines: string[];
  let cluster: TestCluster | undefined;
  let reference: string[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    dir = mkdtempSync(join(tmpdir(), 'fluxo-stream-'));
    const all = gunzipSync(readFileSync(DATA)).toString('utf8').split('\n');
    header = (all[0] as string).replace(/\r$/, '');
    // the file has CRLF line ends; records are lines without them (as `fluxo produce` reads them)
    lines = all
      .slice(1)
      .filter((l) => l.trim() !== '')
      .map((l) => l.replace(/\r$/, ''));
  });

  afterAll(async () => {
    client?.disconnect();
    await killAll();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function newCluster(id: string, victimEnv?: Record<string, string>): Promise<TestCluster> {
    const c = await startCluster({ redisUrl: redis.url, clusterId: id, taskmanagers: [] });
    for (const tm of ['tm-1', 'tm-2', 'tm-3']) await c.startTaskManager(tm, 1, tm === 'tm-2' ? victimEnv : {});
    return c;
  }

  /** The shipped stream job, reading `stream` (unbounded), with the test's checkpoints and sink. */
  function writeStreamSpec(name: string, stream: string): { spec: string; sink: string } {
    const spec = parseYaml(readFileSync(STREAM_SPEC, 'utf8')) as Record<string, unknown> & {
      source: Record<string, unknown>;
    };
    const sink = join(dir, `${name}.jsonl`);
    const file = join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        ...spec,
        name,
        source: { ...spec.source, stream, partitions: PARTITIONS, bounded: false },
        checkpoint: { intervalMs: 250, mode: 'exactly-once' },
        restart: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
        sink: { type: 'file', path: sink },
      }),
    );
    return { spec: file, sink };
  }

  /**
   * Produces the first fifth of the data set into `stream` with `fluxo produce` (header line
   * first, partitioned by date), submits the job, appends the rest in chunks while it runs, waits
   * for `until`, then `fluxo stop` drains it. Returns the committed rows and the job's status.
   */
  async function runStreamJob(
    c: TestCluster,
    name: string,
    until: (jobId: string) => Promise<unknown>,
  ): Promise<{ rows: string[]; doc: JobDoc }> {
    const stream = `energy-${name}`;
    const cut = Math.ceil(lines.length / 5);
    const first = join(dir, `${name}-first.csv`);
    writeFileSync(first, `${[header, ...lines.slice(0, cut)].join('\n')}\n`);
    const produced = await runCli(
      ['produce', stream, first, '--partitions', String(PARTITIONS), '--key', 'date', '--redis', redis.url],
      { timeoutMs: 60_000 },
    );
    expect(produced.code, produced.stderr).toBe(0);
    expect(produced.stdout.trim()).toBe(String(cut));

    const { spec, sink } = writeStreamSpec(name, stream);
    const sub = await c.cli(['submit', spec]);
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = sub.stdout.trim();

    const columns = header.split(',').map((h) => h.replace(/"/g, ''));
    const writer = new StreamWriter(client, stream, PARTITIONS, { keyOf: recordKeyReader('csv', 'date', columns) });
    const feed = (async () => {
      await waitFor(async () => (await c.job(jobId)).job.state !== 'CREATED', {
        timeoutMs: 60_000,
        intervalMs: 20,
        message: `${name}: deployed`,
      });
      const per = Math.ceil((lines.length - cut) / FEED_CHUNKS);
      for (let k = 0; k < FEED_CHUNKS; k++) {
        await new Promise((r) => setTimeout(r, FEED_INTERVAL_MS));
        for (const l of lines.slice(cut + k * per, cut + (k + 1) * per)) await writer.append(l);
        await writer.flush();
      }
    })();
    await Promise.all([feed, until(jobId)]);
    const stop = await c.cli(['stop', jobId], 60_000);
    expect(stop.code, stop.stderr).toBe(0);
    const doc = (await c.waitForState(jobId, 'FINISHED', 60_000)) as JobDoc;
    return { rows: committedRows(sink), doc };
  }

  const notEnded = (j: JobDoc): void => {
    if (['FAILED', 'CANCELED', 'FINISHED'].includes(j.job.state))
      throw Object.assign(new Error(`job ended ${j.job.state}: ${j.job.failure}`), { fatal: true });
  };

  it('a failure-free run over the stream equals the same job over the file', async () => {
    cluster = await newCluster('stream-ref');
    const c = cluster;
    try {
      const ref = await runStreamJob(c, 'reference', (jobId) =>
        waitFor(
          async () => {
            const j = (await c.job(jobId)) as JobDoc;
            notEnded(j);
            return (j.checkpoints?.completed ?? 0) >= 3;
          },
          { timeoutMs: 60_000, message: 'reference: 3 completed checkpoints' },
        ),
      );
      expect(ref.doc.job.attempt).toBe(1);
      expect(ref.doc.totals.late).toBe(0);
      expect(ref.doc.totals.rejected).toBe(0);
      expect(ref.rows.length).toBeGreaterThan(0);
      const counted = ref.rows.reduce((s, l) => s + (JSON.parse(l) as { count: number }).count, 0);
      expect(counted).toBe(lines.length * ROOMS);
      reference = ref.rows;

      // the file job: the shipped spec with the test's sink
      const fileSpec = parseYaml(readFileSync(FILE_SPEC, 'utf8')) as Record<string, unknown> & {
        source: Record<string, unknown>;
      };
      const fileSink = join(dir, 'file-job.jsonl');
      const fileSpecPath = join(dir, 'file-job.json');
      writeFileSync(
        fileSpecPath,
        JSON.stringify({
          ...fileSpec,
          name: 'file-job',
          source: { ...fileSpec.source, path: DATA },
          sink: { type: 'file', path: fileSink },
        }),
      );
      const sub = await c.cli(['submit', fileSpecPath]);
      expect(sub.code, sub.stderr).toBe(0);
      await c.waitForState(sub.stdout.trim(), 'FINISHED', 120_000);
      const fileRows = committedRows(fileSink);
      expect(fileRows.length).toBe(ref.rows.length);
      expect(fileRows).toEqual(ref.rows);
      console.log(`stream reference: ${ref.rows.length} rows, ${counted} readings; equal to the file job`);
    } finally {
      await c.stop();
    }
  });

  it('SIGKILL of a TaskManager at the completion of checkpoint 2: restored entry ids, exactly the reference rows', async () => {
    expect(reference.length).toBeGreaterThan(0);
    const onceDir = join(dir, 'once');
    mkdirSync(onceDir);
    const fault = 'crash@checkpoint-complete:2';
    const c = await newCluster('stream-chaos', { FLUXO_FAULTS: fault, FLUXO_FAULTS_ONCE_DIR: onceDir });
    const victim = c.tms.get('tm-2');
    let run: { rows: string[]; doc: JobDoc };
    try {
      run = await runStreamJob(c, 'chaos', (jobId) =>
        waitFor(
          async () => {
            const j = (await c.job(jobId)) as JobDoc;
            notEnded(j);
            return j.job.attempt >= 2 && j.job.state === 'RUNNING';
          },
          { timeoutMs: 60_000, message: () => `fault fired and failed over\n${victim?.describe()}` },
        ),
      );
    } finally {
      await c.stop();
    }
    expect(victim?.exited?.signal, victim?.describe()).toBe('SIGKILL');
    expect(run.doc.job.attempt).toBe(2);
    expect(run.doc.exceptions[0]?.reason).toContain('TaskManager tm-2');
    // attempt 2 resumed after the checkpointed entry ids: it read only part of the stream
    expect(run.doc.totals.readingsIn).toBeLessThan(lines.length * ROOMS);
    expect(run.rows).toEqual(reference);
    console.log(
      `stream chaos: ${run.rows.length} rows; attempt 2 read ${run.doc.totals.readingsIn} of ${lines.length * ROOMS} readings`,
    );
  });
});
