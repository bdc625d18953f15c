/**
 * `fluxo run examples/house-rollup.yaml` (sensor → room → house hourly rollups) on a local
 * mini-cluster, checked against an independent computation over the shipped gzip file: own CSV
 * reading and UTC hour buckets; per sensor the hour's readings, then per room the sensors' means,
 * then per house the rooms' means, exactly as the example's comments define them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, REPO_ROOT, requireBuiltCli, runCli } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const SPEC = path.join(REPO_ROOT, 'examples/house-rollup.yaml');
const DATA = path.join(REPO_ROOT, 'examples/data/energydata_complete.csv.gz');
const HOUR = 3_600_000;
// where each sensor is, as the example's map step says
const ROOM_OF: Record<string, string> = {
  T1: 'kitchen',
  T2: 'living-room',
  T3: 'laundry',
  T4: 'office',
  T5: 'bathroom',
  T6: 'outside',
  T7: 'ironing-room',
  T8: 'teenager-room',
  T9: 'parents-room',
  T_out: 'outside',
};

interface Stats {
  n: number;
  sum: number;
  min: number;
  max: number;
}
interface HouseRow {
  key: string;
  windowStart: number;
  windowEnd: number;
  rooms: number;
  readings: number;
  avg: number;
  min: number;
  max: number;
}

function add(m: Map<string, Stats>, k: string, v: number, n = 1, lo = v, hi = v): void {
  const s = m.get(k) ?? { n: 0, sum: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
  s.n += n;
  s.sum += v;
  s.min = Math.min(s.min, lo);
  s.max = Math.max(s.max, hi);
  m.set(k, s);
}

/** The example, computed independently: per hour, sensor stats → room (mean of sensor means) → house. */
function expectedRows(): HouseRow[] {
  const lines = gunzipSync(readFileSync(DATA)).toString('utf8').split(/\r?\n/).filter(Boolean);
  const header = lines[0].split(',').map((h) => h.replace(/^"|"$/g, ''));
  const sensors = Object.keys(ROOM_OF);
  const idx = sensors.map((s) => header.indexOf(s));
  expect(idx.every((i) => i > 0)).toBe(true);
  const bySensor = new Map<string, Stats>(); // `${hour}|${sensor}`
  for (const line of lines.slice(1)) {
    const cells = line.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
    const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(cells[0]);
    if (!m) throw new Error(`unexpected date in ${line.slice(0, 40)}`);
    const ts = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
    const hour = Math.floor(ts / HOUR) * HOUR;
    sensors.forEach((sensor, k) => {
      const v = Number(cells[idx[k]]);
      if (v >= -40 && v <= 85) add(bySensor, `${hour}|${sensor}`, v);
    });
  }
  // rooms: the mean of their sensors' hourly means; readings summed, min of mins, max of maxes
  const byRoom = new Map<string, Stats & { readings: number }>();
  for (const [k, s] of bySensor) {
    const [hour, sensor] = k.split('|');
    const rk = `${hour}|${ROOM_OF[sensor]}`;
    const r = byRoom.get(rk) ?? {
      n: 0,
      sum: 0,
      min: Number.POSITIVE_INFINITY,
      max: Number.NEGATIVE_INFINITY,
      readings: 0,
    };
    r.n++;
    r.sum += s.sum / s.n;
    r.min = Math.min(r.min, s.min);
    r.max = Math.max(r.max, s.max);
    r.readings += s.n;
    byRoom.set(rk, r);
  }
  const byHouse = new Map<number, HouseRow>();
  for (const [k, r] of byRoom) {
    const hour = Number(k.split('|')[0]);
    const h = byHouse.get(hour) ?? {
      key: 'be-house',
      windowStart: hour,
      windowEnd: hour + HOUR,
      rooms: 0,
      readings: 0,
      avg: 0, // the sum of room means until divided below
      min: Number.POSITIVE_INFINITY,
      max: Number.NEGATIVE_INFINITY,
    };
    h.rooms++;
    h.readings += r.readings;
    h.avg += r.sum / r.n;
    h.min = Math.min(h.min, r.min);
    h.max = Math.max(h.max, r.max);
    byHouse.set(hour, h);
  }
  return [...byHouse.values()]
    .map((h) => ({ ...h, avg: h.avg / h.rooms }))
    .sort((a, b) => a.windowStart - b.windowStart);
}

let redis: TestRedis;
let dir: string;

beforeAll(async () => {
  requireBuiltCli();
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-house-rollup-'));
  redis = await startRedis();
});

afterAll(async () => {
  await killAll();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fluxo run examples/house-rollup.yaml', () => {
  it('writes one row per house and hour equal to the rollup computed independently', async () => {
    const expected = expectedRows();
    // 19,735 lines × 10 sensors, 10-minute steps: mostly 6 readings per sensor and hour
    expect(expected.length).toBeGreaterThan(3000);
    expect(expected.every((h) => h.rooms === 9)).toBe(true);

    const out = path.join(dir, 'house.jsonl');
    const r = await runCli(['run', SPEC, '--taskmanagers', '2', '--slots', '1', '--set', `sink.path=${out}`], {
      env: { REDIS_URL: redis.url },
      timeoutMs: 120_000,
    });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).toMatch(/readings read\s+197,350 from 19,736 lines/);
    expect(r.stderr).toMatch(/rejected\s+0\s/);
    expect(r.stderr).toMatch(/late \(dropped\)\s+0\s/);
    expect(r.stderr).toMatch(new RegExp(`rollup windows\\s+${expected.length.toLocaleString('en-US')} by house\\s+->`));

    const rows = readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as HouseRow)
      .sort((a, b) => a.windowStart - b.windowStart);
    expect(rows.length).toBe(expected.length);
    rows.forEach((row, i) => {
      const e = expected[i];
      const at = `hour ${new Date(e.windowStart).toISOString()}`;
      expect({ ...row, avg: 0 }, at).toEqual({ ...e, avg: 0 });
      expect(Math.abs(row.avg - e.avg), at).toBeLessThan(1e-9);
    });
  }, 180_000);
});
