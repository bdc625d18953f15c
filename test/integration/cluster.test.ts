/**
 * A real JobManager process and two real TaskManager processes (2 slots each) run a windowed job
 * over a real data set (Kaggle IOT-temp, /work/shared/data/IOT-temp.csv.gz) at parallelism 1, 2
 * and 4. The results must be the same at every parallelism and equal to an independent
 * computation done here (own CSV reading and date math, test/support/window-oracle.ts).
 *
 * Why this data set: 97,606 rows in REVERSE chronological order, day-first `dd-MM-yyyy HH:mm`
 * dates (49,944 of them ambiguous for a month-first parser), duplicate rows, bursty rate, gaps of
 * days. Because the order is reversed, the watermark is pinned by the first reading
 * (2018-12-08 09:30): W = 09:30 on 2018-12-08 − B for the whole run. B = 52 days + 30 min puts W
 * exactly on an hour boundary, 2018-10-17 09:00, in the middle of the busiest day (20,564 rows):
 * a reading at 09:00 is accepted (window end 10:00 > W), one at 08:59 is late (end 09:00 ≤ W, the
 * inclusive boundary). So about half the readings are late, and the late count must be the same
 * at every parallelism. A validate rule rejects the 2,473 Out readings ≥ 47 °C (dead letters).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, startCluster, type TestCluster, waitFor } from '../support/processes.js';
import { startRedis, type TestRedis, uniquePrefix } from '../support/redis.js';
import {
  diffRows,
  type OracleReading,
  type OracleResult,
  type OracleRow,
  tumblingOracle,
} from '../support/window-oracle.js';

const DATA = '/work/shared/data/IOT-temp.csv.gz';
const HOUR = 3_600_000;
const DAY = 86_400_000;
const B = 52 * DAY + 30 * 60_000;
const REJECT_AT = 47; // validate rule: temp < 47.0

const SPEC = `
name: iot-temp
parallelism: 1
source:
  type: file
  path: iot-temp.csv              # relative to this spec file
  header: true
  # file order: id, room_id/id, noted_date, temp, out/in (names with a slash are renamed here)
  columns: [id, room, noted_date, temp:double, inout]
  eventTime: { field: noted_date, format: "dd-MM-yyyy HH:mm", timeZone: UTC }
  watermark: { outOfOrdernessMs: ${B} }
  validate:
    - { rule: "temp < ${REJECT_AT}.0", reason: "implausible reading" }
steps:
  - keyBy: inout
  - window: { type: tumbling, sizeMs: ${HOUR} }
  - aggregate: { count: "count()", avg: "avg(temp)", min: "min(temp)", max: "max(temp)" }
sink: { type: file, path: out/iot-temp.jsonl }
`;

/** `dd-MM-yyyy HH:mm` read as UTC, by hand. */
function parseDayFirst(s: string): number {
  const m = /^(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2})$/.exec(s);
  if (!m) throw new Error(`unexpected date ${s}`);
  return Date.UTC(Number(m[3]), Number(m[2]) - 1, Number(m[1]), Number(m[4]), Number(m[5]));
}

interface Expected extends OracleResult {
  rejected: number;
  dataRows: number;
}

function independentResult(csv: string): Expected {
  const lines = csv.split('\n').filter((l) => l !== '');
  expect(lines[0]).toBe('id,room_id/id,noted_date,temp,out/in');
  const readings: OracleReading[] = [];
  let rejected = 0;
  for (const line of lines.slice(1)) {
    const [, , date, temp, inout] = line.split(',');
    const value = Number(temp);
    if (!(value < REJECT_AT)) {
      rejected++; // rejected rows change no state and do not move the watermark
      continue;
    }
    readings.push({ key: inout as string, ts: parseDayFirst(date as string), value });
  }
  return { ...tumblingOracle(readings, HOUR, B), rejected, dataRows: lines.length - 1 };
}

function readJsonl<T>(file: string): T[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

let redis: TestRedis;
let cluster: TestCluster;
let dir: string;
let expected: Expected;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-cluster-'));
  const csv = gunzipSync(readFileSync(DATA)).toString('utf8');
  writeFileSync(path.join(dir, 'iot-temp.csv'), csv);
  writeFileSync(path.join(dir, 'iot-temp.yaml'), SPEC);
  expected = independentResult(csv);
  redis = await startRedis();
  cluster = await startCluster({
    redisUrl: redis.url,
    clusterId: uniquePrefix('cluster').replace(/:/g, '_').replace(/_$/, ''),
    taskmanagers: [
      { id: 'tm-1', slots: 2 },
      { id: 'tm-2', slots: 2 },
    ],
  });
});

afterAll(async () => {
  await killAll();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('independent computation over IOT-temp (sanity of the oracle itself)', () => {
  it('has the documented shape: 97,606 rows, 2,473 rejected, a real share of late readings', () => {
    expect(expected.dataRows).toBe(97_606);
    expect(expected.rejected).toBe(2_473); // README: 2,473 Out rows are >= 47 °C
    expect(expected.late + expected.accepted + expected.rejected).toBe(97_606);
    // neither "all on time" nor "all late": lateness is really exercised
    expect(expected.late).toBeGreaterThan(10_000);
    expect(expected.accepted).toBeGreaterThan(10_000);
    expect(new Set(expected.rows.map((r) => r.key))).toEqual(new Set(['In', 'Out']));
    // the W boundary: nothing before 2018-10-17 09:00 UTC was accepted
    const w = Date.UTC(2018, 9, 17, 9, 0);
    expect(Math.min(...expected.rows.map((r) => r.windowStart))).toBe(w);
  });
});

describe('cluster of 1 JobManager + 2 TaskManagers (2 slots each)', () => {
  it('`fluxo taskmanagers` lists both with 0/2 slots and a recent heartbeat', async () => {
    const r = await cluster.cli(['taskmanagers']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+ADDRESS\s+STATE\s+SLOTS USED\/TOTAL\s+LAST HEARTBEAT/);
    for (const id of ['tm-1', 'tm-2']) {
      const row = lines.find((l) => l.startsWith(`${id} `));
      expect(row, r.stdout).toBeDefined();
      const m = /^(\S+)\s+127\.0\.0\.1:\d+\s+ALIVE\s+0\/2\s+([\d.]+) s ago\s+\d+\s+(\d+)$/.exec(row as string);
      expect(m, `row: ${row}`).not.toBeNull();
      expect(Number(m?.[2])).toBeLessThan(2); // heartbeats every 500 ms
      expect(Number(m?.[3])).toBe(cluster.tms.get(id)?.pid);
    }
    expect(lines).toHaveLength(3);
  });

  const jobs = new Map<number, { jobId: string; out: string }>();

  for (const p of [1, 2, 4]) {
    it(`runs the job at parallelism ${p} to FINISHED with the independently computed result`, async () => {
      const out = path.join(dir, `p${p}`, 'iot-temp.jsonl');
      const sub = await cluster.cli([
        'submit',
        path.join(dir, 'iot-temp.yaml'),
        '--parallelism',
        String(p),
        '--set',
        `sink.path=${out}`,
      ]);
      expect(sub.code, sub.stderr).toBe(0);
      const jobId = sub.stdout.trim();
      expect(jobId).toMatch(/^[0-9a-f]{8,}$/);
      jobs.set(p, { jobId, out });

      const done = await cluster.waitForState(jobId, 'FINISHED', 60_000);
      expect(done.job.parallelism).toBe(p);
      expect(done.vertices.find((v) => v.id === 'window')?.parallelism).toBe(p);
      expect(done.vertices.find((v) => v.id === 'source')?.parallelism).toBe(1); // one file, one split

      // REST totals
      expect(done.totals).toMatchObject({
        linesRead: expected.dataRows + 1, // + header
        readingsIn: expected.dataRows - expected.rejected,
        rejected: expected.rejected,
        late: expected.late,
        sensors: 2,
        windowsEmitted: expected.rows.length,
        resultsWritten: expected.rows.length,
        deadLettersWritten: expected.rejected,
        lateWritten: expected.late,
      });
      expect(done.outputs.results).toBe(out);

      // files
      const rows = readJsonl<OracleRow>(out);
      const diff = diffRows(rows, expected.rows, 1e-9);
      expect(diff, diff.join('\n')).toEqual([]);
      expect(Object.keys(rows[0] as object)).toEqual(['key', 'windowStart', 'windowEnd', 'count', 'avg', 'min', 'max']);
      const late = readJsonl<Record<string, unknown>>(out.replace(/\.jsonl$/, '.late.jsonl'));
      expect(late).toHaveLength(expected.late);
      const dead = readJsonl<{ reason: string; source: string; raw: string }>(
        out.replace(/\.jsonl$/, '.deadletter.jsonl'),
      );
      expect(dead).toHaveLength(expected.rejected);
      expect(dead.every((d) => d.reason === 'implausible reading')).toBe(true);

      // `fluxo status` tells the same story
      const st = await cluster.cli(['status', jobId]);
      expect(st.code, st.stderr).toBe(0);
      expect(st.stdout).toContain(`(${jobId}) FINISHED`);
      expect(st.stdout).toMatch(new RegExp(`rejected\\s+${expected.rejected.toLocaleString('en-US')}\\s`));
      expect(st.stdout).toMatch(new RegExp(`late \\(dropped\\)\\s+${expected.late.toLocaleString('en-US')}\\s`));
      expect(st.stdout).toMatch(new RegExp(`windows emitted\\s+${expected.rows.length.toLocaleString('en-US')}\\s`));

      // slots are given back when the job ends
      await waitFor(async () => (await cluster.taskmanagers()).every((t) => t.slotsUsed === 0), {
        timeoutMs: 5000,
        message: `slots not free after job ${jobId} finished`,
      });
    });
  }

  it('gives identical outputs (as sorted sets) at parallelism 1, 2 and 4', () => {
    expect([...jobs.keys()]).toEqual([1, 2, 4]);
    const [one, ...others] = [...jobs.values()].map((j) => readJsonl<OracleRow>(j.out));
    for (const o of others) {
      const diff = diffRows(o, one as OracleRow[], 1e-9);
      expect(diff, diff.join('\n')).toEqual([]);
    }
    // the late side output is the same multiset too (lateness must not depend on parallelism)
    const lateSets = [...jobs.values()].map((j) =>
      readFileSync(j.out.replace(/\.jsonl$/, '.late.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .sort()
        .join('\n'),
    );
    expect(lateSets[1] === lateSets[0] && lateSets[2] === lateSets[0]).toBe(true);
  });

  it('`fluxo list` and GET /jobs show the three jobs FINISHED', async () => {
    const r = await cluster.cli(['list']);
    expect(r.code, r.stderr).toBe(0);
    for (const [p, { jobId }] of jobs) {
      const row = r.stdout.split('\n').find((l) => l.startsWith(jobId));
      expect(row, r.stdout).toMatch(new RegExp(`^${jobId}\\s+iot-temp\\s+FINISHED\\s+${p}\\s`));
    }
    const rest = (await (await fetch(`${cluster.web}/jobs`)).json()) as {
      jobs: { jobId: string; state: string; endedAtMs: number }[];
    };
    for (const { jobId } of jobs.values()) {
      const j = rest.jobs.find((x) => x.jobId === jobId);
      expect(j?.state).toBe('FINISHED');
      expect(j?.endedAtMs).toBeGreaterThan(0);
    }
    const overview = (await (await fetch(`${cluster.web}/overview`)).json()) as Record<string, number>;
    expect(overview).toMatchObject({ taskmanagers: 2, slotsTotal: 4, slotsFree: 4, jobsRunning: 0, jobsFinished: 3 });
  });

  it('a job can be named by a unique prefix; unknown jobs are 404 on REST; cancelling a FINISHED job changes nothing', async () => {
    const { jobId } = jobs.get(2) as { jobId: string };
    const st = await cluster.cli(['status', jobId.slice(0, 8)]);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toContain(`(${jobId}) FINISHED`);

    const res = await fetch(`${cluster.web}/jobs/nosuchjob`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'JOB_NOT_FOUND' });

    const c = await cluster.cli(['cancel', jobId]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout.trim()).toBe('FINISHED');
    expect((await cluster.job(jobId)).job.state).toBe('FINISHED');
  });
});
