/**
 * Acceptance cases BR-02 and BR-03 (shared/cases) through the BUILT CLI and real processes:
 * `node dist/client/main.js run <spec> --taskmanagers 2 --slots 1 -p 2` (a JobManager plus two
 * TaskManager processes, Redis from REDIS_URL: a private redis-server per file). Needs
 * `npm run build` first (`npm test` builds). The in-process versions, at parallelism 1, 2 and 4,
 * are in test/cases/engine/.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaseJob, caseInput, cleanup, readOutputs, T0, writeCase } from '../../cases/engine/engine-harness.js';
import { expectSameRows, readExpected } from '../../cases/harness.js';
import { startRedis, type TestRedis } from '../../support/redis.js';

const CLI = fileURLToPath(new URL('../../../dist/client/main.js', import.meta.url));
const tumbling10s: CaseJob = { window: { type: 'tumbling', sizeMs: 10_000 }, outOfOrdernessMs: 2000 };

interface Summary {
  job: { state: string };
  tasks: { taskId: string; vertex: string; state: string; counters?: Record<string, number> }[];
  totals: Record<string, number>;
}

let redis: TestRedis | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: run \`npm run build\` before the integration tests`);
  redis = await startRedis();
});

afterAll(async () => {
  for (const dir of dirs) cleanup({ dir });
  await redis?.stop();
});

/** Runs `fluxo run` on a case to its end; returns exit code, stderr, the summary JSON and the outputs. */
async function runCliCase(name: string, job: CaseJob) {
  const { dir, specPath } = writeCase(caseInput(name), job, name);
  dirs.push(dir);
  const summaryPath = path.join(dir, 'summary.json');
  const args = [
    CLI,
    'run',
    specPath,
    '--taskmanagers',
    '2',
    '--slots',
    '1',
    '-p',
    '2',
    '--summary-json',
    summaryPath,
    '--timeout',
    '60000',
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', REDIS_URL: redis?.url };
  for (const k of Object.keys(env)) if (k.startsWith('FLUXO_')) delete env[k];
  const child = spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fluxo run ${name} did not exit within 90 s\n${stderr}`));
    }, 90_000);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  const summary = existsSync(summaryPath) ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as Summary) : undefined;
  return { code, stderr, summary, ...readOutputs(dir) };
}

function sumOver(summary: Summary | undefined, vertex: string, counter: string): number {
  return (summary?.tasks ?? [])
    .filter((t) => t.vertex === vertex)
    .reduce((s, t) => s + (t.counters?.[counter] ?? 0), 0);
}

describe('acceptance cases through `fluxo run` with two TaskManager processes', () => {
  it('BR-02: the last windows of a bounded file fire at end of input when the job runs on real processes', async () => {
    const r = await runCliCase('BR-02', tumbling10s);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary?.job.state, r.stderr).toBe('FINISHED');
    expectSameRows(r.rows, readExpected('BR-02'));
    expect(r.rows.filter((row) => row.window_start_ms === T0 + 30_000)).toHaveLength(2);
    expect(r.late).toEqual([]);
    expect(r.deadLetters).toEqual([]);
    expect(sumOver(r.summary, 'window', 'late')).toBe(0);
  });

  it('BR-03: three late readings are counted and written to the late output when the job runs on real processes', async () => {
    const r = await runCliCase('BR-03', tumbling10s);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary?.job.state, r.stderr).toBe('FINISHED');
    expectSameRows(r.rows, readExpected('BR-03'));
    expect(sumOver(r.summary, 'window', 'late')).toBe(3);
    const late = r.late
      .map((l) => [l.sensor_id, l.timestamp_ms - T0, l.temperature_c] as const)
      .sort((a, b) => a[1] - b[1]);
    expect(late).toEqual([
      ['kit-2', 9000, 19.0],
      ['liv-1', 9500, 25.0],
      ['liv-1', 19_999, 30.0],
    ]);
    expect(r.deadLetters).toEqual([]);
  });
});
