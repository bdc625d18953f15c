/**
 * BR-01 and BR-18 through a real cluster: a JobManager process and a TaskManager process, with
 * followed (unbounded) file sources, so windows must fire while the job is still running, from
 * the watermark alone, and the end-of-input flush comes from `fluxo stop` (drain).
 * Inputs and expected rows: test/cases/data (copied from ../shared/cases by hand).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExpectedRow, expectRows, readRows, writeCaseSpec } from '../support/case-spec.js';
import { freePort } from '../support/processes.js';
import { startRedis } from '../support/redis.js';

const run = promisify(execFile);
const CLI = resolve('dist/client/main.js');
const DATA = resolve('test/cases/data');

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('unbounded sources on a real cluster', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let dir: string;
  let jmAddr: string;
  let webPort: number;
  const procs: ChildProcess[] = [];

  const cli = async (...args: string[]) =>
    (await run(process.execPath, [CLI, ...args, '--jobmanager', jmAddr])).stdout.trim();
  const job = async (id: string) =>
    (await (await fetch(`http://127.0.0.1:${webPort}/jobs/${id}`)).json()) as {
      job: { state: string };
      totals: Record<string, number>;
    };

  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'fluxo-unbounded-'));
    const rpc = await freePort();
    webPort = await freePort();
    jmAddr = `127.0.0.1:${rpc}`;
    const env = { ...process.env, LOG_LEVEL: 'warn', REDIS_URL: redis.url };
    procs.push(
      spawn(
        process.execPath,
        [CLI, 'jobmanager', '--rpc-port', String(rpc), '--web-port', String(webPort), '--redis', redis.url],
        { env, stdio: 'ignore' },
      ),
    );
    procs.push(
      spawn(process.execPath, [CLI, 'taskmanager', '--jobmanager', jmAddr, '--slots', '3', '--id', 'tm-unbounded'], {
        env,
        stdio: 'inherit',
      }),
    );
    await waitFor('the TaskManager to register', () => {
      try {
        return execFileSyncOut(['taskmanagers', '--jobmanager', jmAddr]).includes('tm-unbounded');
      } catch {
        return false;
      }
    });
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const spec = (name: string, paths: string[], idleTimeoutMs: number): string =>
    writeCaseSpec({ name, dir, paths, follow: true, idleTimeoutMs });

  it('BR-18: a sensor that goes quiet still gets its windows emitted while the job runs, with no zero rows', async () => {
    const input = join(dir, 'br18.csv');
    writeFileSync(input, readFileSync(join(DATA, 'BR-18.csv')));
    const id = await cli('submit', spec('br18', [input], 0));
    const expected = JSON.parse(readFileSync(join(DATA, 'BR-18.expected.json'), 'utf8')) as ExpectedRow[];
    const out = join(dir, 'br18.jsonl');
    await waitFor('the 6 rows the watermark alone fires', () => readRows(out).length >= expected.length);
    // give a wrongly eager engine time to emit hall-3 [+40 s, +50 s) or rows for the silent sensor
    await new Promise((r) => setTimeout(r, 500));
    expect((await job(id)).job.state).toBe('RUNNING');
    expectRows(readRows(out), expected);
    await cli('cancel', id);
  });

  it('BR-01: idle partitions stop holding the watermark back; a late reading on a waking partition is dropped; stop flushes the rest', async () => {
    const p0 = join(dir, 'p0.csv');
    const p1 = join(dir, 'p1.csv');
    const p2 = join(dir, 'p2.csv');
    writeFileSync(p0, readFileSync(join(DATA, 'BR-01.a.csv')));
    writeFileSync(p1, '');
    writeFileSync(p2, '');
    const id = await cli('submit', spec('br01', [p0, p1, p2], 5000));
    const out = join(dir, 'br01.jsonl');
    const phaseA = JSON.parse(readFileSync(join(DATA, 'BR-01.a.expected.json'), 'utf8')) as ExpectedRow[];
    const phaseB = JSON.parse(readFileSync(join(DATA, 'BR-01.b.expected.json'), 'utf8')) as ExpectedRow[];
    // nothing can fire before P1 and P2 have been idle for 5 s
    await waitFor('the phase A rows after the idle timeout', () => readRows(out).length >= phaseA.length, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expectRows(readRows(out), phaseA);

    appendFileSync(p1, readFileSync(join(DATA, 'BR-01.b.csv')));
    await waitForAsync('the 2 phase B readings to be read', async () => (await job(id)).totals.readingsIn >= 14);
    expect(readRows(out)).toHaveLength(phaseA.length); // W = 34 s fires nothing

    expect(await cli('stop', id)).toBe('FINISHED');
    expectRows(readRows(out), [...phaseA, ...phaseB]);
    const totals = (await job(id)).totals;
    expect(totals.late).toBe(1);
    expect(totals.rejected).toBe(0);
    expect(readRows(join(dir, 'br01.late.jsonl')).length).toBe(1);
  });
});

async function waitForAsync(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function execFileSyncOut(args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
