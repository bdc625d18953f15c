/**
 * `fluxo run`: the shipped example (examples/room-temperature.yaml) on a local mini-cluster,
 * checked against an independent computation over the same gzip file (own CSV reading, UTC
 * date math, test/support/window-oracle.ts), and the private-Redis fallback.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killAll, REPO_ROOT, requireBuiltCli, runCli, startProcess, waitFor } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import {
  diffRows,
  type OracleReading,
  type OracleResult,
  type OracleRow,
  tumblingOracle,
} from '../support/window-oracle.js';

const SPEC = path.join(REPO_ROOT, 'examples/room-temperature.yaml');
const DATA = path.join(REPO_ROOT, 'examples/data/energydata_complete.csv.gz');
const ROOMS: Record<string, string> = {
  T1: 'kitchen',
  T2: 'living-room',
  T3: 'laundry',
  T4: 'office',
  T5: 'bathroom',
  T6: 'outside-north',
  T7: 'ironing-room',
  T8: 'teenager-room',
  T9: 'parents-room',
};

/** The example job, computed independently: melt T1..T9, filter −40..85 °C, hourly windows by room, B = 10 min. */
function independentResult(): OracleResult & { lines: number; readings: number; filtered: number } {
  const lines = gunzipSync(readFileSync(DATA))
    .toString('utf8')
    .split(/\r?\n/)
    .filter((l) => l !== '');
  const header = lines[0]?.split(',').map((h) => h.replace(/^"|"$/g, '')) ?? [];
  expect(header.slice(0, 4)).toEqual(['date', 'Appliances', 'lights', 'T1']);
  const idx = Object.keys(ROOMS).map((t) => header.indexOf(t));
  expect(idx.every((i) => i > 0)).toBe(true);
  const readings: OracleReading[] = [];
  let filtered = 0;
  for (const line of lines.slice(1)) {
    const cells = line.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
    const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(cells[0] as string);
    if (!m) throw new Error(`unexpected date in ${line.slice(0, 40)}`);
    const ts = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
    Object.values(ROOMS).forEach((room, k) => {
      const value = Number(cells[idx[k] as number]);
      if (!(value >= -40 && value <= 85)) {
        filtered++;
        return;
      }
      readings.push({ key: room, ts, value });
    });
  }
  return {
    ...tumblingOracle(readings, 3_600_000, 600_000),
    lines: lines.length,
    readings: (lines.length - 1) * 9,
    filtered,
  };
}

function readRows(file: string): OracleRow[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as OracleRow);
}

/** True if something accepts a TCP connection on 127.0.0.1:port. */
function tcpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

let redis: TestRedis;
let dir: string;
let expected: ReturnType<typeof independentResult>;

beforeAll(async () => {
  requireBuiltCli();
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-run-'));
  expected = independentResult();
  redis = await startRedis();
});

afterAll(async () => {
  await killAll();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fluxo run examples/room-temperature.yaml', () => {
  it('the independent computation has the documented shape (19,735 lines × 9 rooms)', () => {
    expect(expected.readings).toBe(177_615);
    expect(expected.late).toBe(0); // the file is in time order, 10-min steps, B = 10 min
    expect(new Set(expected.rows.map((r) => r.key)).size).toBe(9);
  });

  it('exits 0, prints the summary and writes the hourly rows computed independently', async () => {
    const out = path.join(dir, 'out.jsonl');
    const summaryFile = path.join(dir, 'summary.json');
    const r = await runCli(
      ['run', SPEC, '--taskmanagers', '2', '--slots', '1', '--set', `sink.path=${out}`, '--summary-json', summaryFile],
      {
        env: { REDIS_URL: redis.url },
        timeoutMs: 90_000,
      },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).toMatch(
      /fluxo run: room-temperature on 1 JobManager \(127\.0\.0\.1:\d+\) \+ 2 TaskManager processes × 1 slot, parallelism 2/,
    );
    expect(r.stderr).toContain(`Redis ${redis.url}`);
    expect(r.stderr).not.toMatch(/started a private redis-server/);
    expect(r.stderr).toMatch(/Job room-temperature \([0-9a-f]+\) FINISHED after [\d.]+ s/);
    expect(r.stderr).toMatch(/readings read\s+177,615 from 19,736 lines/);
    expect(r.stderr).toMatch(/sensors \(keys\)\s+9\n/);
    expect(r.stderr).toMatch(new RegExp(`filtered out\\s+${expected.filtered}\\n`));
    expect(r.stderr).toMatch(/late \(dropped\)\s+0\s/);
    expect(r.stderr).toMatch(/rejected\s+0\s/);
    expect(r.stderr).toMatch(
      new RegExp(
        `windows emitted\\s+${expected.rows.length.toLocaleString('en-US')}\\s+-> ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
      ),
    );

    const rows = readRows(out);
    const diff = diffRows(rows, expected.rows, 1e-9);
    expect(diff, diff.join('\n')).toEqual([]);

    const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as {
      job: { state: string };
      totals: Record<string, number>;
      wallMs: number;
    };
    expect(summary.job.state).toBe('FINISHED');
    expect(summary.totals).toMatchObject({
      readingsIn: 177_615,
      sensors: 9,
      late: 0,
      rejected: 0,
      windowsEmitted: expected.rows.length,
    });
    expect(summary.wallMs).toBeGreaterThan(0);
  });

  it('with REDIS_URL at a closed loopback port, starts a private redis-server, says so, exits 0 and stops it', async () => {
    const port = await freePort();
    const out = path.join(dir, 'private-redis', 'out.jsonl');
    const r = await runCli(['run', SPEC, '--taskmanagers', '2', '--slots', '1', '--set', `sink.path=${out}`], {
      env: { REDIS_URL: `redis://127.0.0.1:${port}` },
      timeoutMs: 90_000,
    });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const m = new RegExp(
      `no Redis at redis://127\\.0\\.0\\.1:${port}; started a private redis-server on 127\\.0\\.0\\.1:(\\d+)`,
    ).exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(r.stderr).toMatch(/FINISHED/);
    const diff = diffRows(readRows(out), expected.rows, 1e-9);
    expect(diff, diff.join('\n')).toEqual([]);
    // the private server went away with `fluxo run`
    expect(await tcpAnswers(Number(m?.[1]))).toBe(false);
  });
});

describe('fluxo run interrupted', () => {
  // SIGTERM matters as much as SIGINT: CI timeouts, `timeout`, docker stop and systemd send it.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`on ${sig} stops its TaskManagers and the private redis-server it started`, async () => {
      const spec = path.join(dir, `endless-${sig}.yaml`);
      writeFileSync(
        spec,
        `name: endless
parallelism: 2
source: { type: generator, sensors: 100, count: 100000000, ratePerSec: 1000, seed: 1 }
steps:
  - keyBy: sensorId
  - window: { type: tumbling, sizeMs: 60000 }
  - aggregate: { count: "count()" }
sink: { type: file, path: ${path.join(dir, `endless-${sig}`, 'out.jsonl')} }
`,
      );
      const port = await freePort();
      const run = startProcess(`fluxo run (${sig})`, ['run', spec, '--taskmanagers', '2', '--slots', '1'], {
        REDIS_URL: `redis://127.0.0.1:${port}`,
      });
      const m = await run.waitForOutput(/started a private redis-server on 127\.0\.0\.1:(\d+)/, 20_000);
      const redisPort = Number(m[1]);
      await run.waitForOutput(/fluxo run: submitted job/, 30_000);
      // the JobManager (in-process), 2 TaskManagers and redis-server share the process group
      expect(run.groupMembers().length, JSON.stringify(run.groupMembers())).toBeGreaterThanOrEqual(4);
      run.child.kill(sig); // to fluxo run alone (as `kill <pid>` or a supervisor does), not its process group
      await Promise.race([run.waitForExit(), new Promise((r) => setTimeout(r, 15_000))]);
      expect(run.exited, `fluxo run did not exit on ${sig}\n${run.describe()}`).toBeDefined();
      const left = await waitFor(
        () => {
          const g = run.groupMembers();
          return g.length === 0 ? g : undefined;
        },
        { timeoutMs: 5000, intervalMs: 100, message: `processes left behind by fluxo run after ${sig}` },
      ).catch(() => run.groupMembers());
      expect(
        left.map((p) => p.cmd),
        `left behind after ${sig}`,
      ).toEqual([]);
      expect(await tcpAnswers(redisPort)).toBe(false);
      // the job is canceled with the reason, not reported as a lost TaskManager
      expect(run.stderr).toContain(`CANCELED`);
      expect(run.stderr).toContain(`interrupted by ${sig}`);
      expect(run.exited?.code).toBe(sig === 'SIGINT' ? 130 : 143);
    });
  }
});
