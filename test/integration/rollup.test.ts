/**
 * Two-stage rollups, sensor → room → house, on a real cluster (JobManager, three TaskManager
 * processes with one slot each, one spare, a private Redis, exactly-once checkpoints every 100 ms):
 * one job with three keyed stages (vertices window, window-2, window-3). The house-level output
 * must equal an independent computation from the readings themselves (per house and minute: the
 * rooms that reported, the number of readings, their sum and maximum), and a run in which tm-1
 * SIGKILLs itself while aligning checkpoint 2 (`FLUXO_FAULTS=crash@alignment:2`) must write
 * exactly the lines of the failure-free run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultCluster, startFaultCluster } from '../support/fault-cluster.js';
import type { TestCluster } from '../support/processes.js';

const HOUSES = 3;
const ROOMS = 4; // per house
const SENSORS = 3; // per room
const STEPS = 6_000; // readings per sensor and file
const T0 = 1717200000000;
const WINDOW_MS = 60_000;
const FAULT = 'crash@alignment:2';

interface HouseMinute {
  rooms: Set<string>;
  readings: number;
  cents: number;
  maxCents: number;
}

/**
 * Two splits (files) with readings of every sensor every 5 s, values in whole cents, up to 1.5 s
 * out of order (the watermark allows 2 s: none is late). Returns the expected house rows, computed
 * from the readings: key `<house>|<windowStart>`.
 */
function writeInput(dir: string): Map<string, HouseMinute> {
  const expected = new Map<string, HouseMinute>();
  for (let f = 0; f < 2; f++) {
    const lines: string[] = [];
    for (let step = 0; step < STEPS; step++) {
      for (let h = 0; h < HOUSES; h++)
        for (let r = 0; r < ROOMS; r++)
          for (let s = 0; s < SENSORS; s++) {
            const n = ((h * ROOMS + r) * SENSORS + s) * STEPS + step;
            // sensors of file 1 report in a different second; every 7th reading is 1.5 s late
            const ts = T0 + step * 5000 + f * 2000 - (n % 7 === 0 ? 1500 : 0);
            const cents = 1500 + ((n * 37 + f * 11) % 1200);
            const house = `h${h}`;
            const room = `r${r}`;
            lines.push(`${house},${room},s${s}-f${f},${ts},${(cents / 100).toFixed(2)}`);
            const start = Math.floor(ts / WINDOW_MS) * WINDOW_MS;
            const k = `${house}|${start}`;
            let e = expected.get(k);
            if (!e) {
              e = { rooms: new Set(), readings: 0, cents: 0, maxCents: Number.NEGATIVE_INFINITY };
              expected.set(k, e);
            }
            e.rooms.add(room);
            e.readings++;
            e.cents += cents;
            e.maxCents = Math.max(e.maxCents, cents);
          }
    }
    writeFileSync(join(dir, `in-${f}.csv`), `${lines.join('\n')}\n`);
  }
  return expected;
}

describe('rollups sensor → room → house', () => {
  let fc: FaultCluster;
  let cluster: TestCluster;
  let dir: string;
  let expected: Map<string, HouseMinute>;

  beforeAll(async () => {
    fc = await startFaultCluster('rollup', FAULT);
    ({ cluster, dir } = fc);
    expected = writeInput(dir);
  }, 120_000);

  afterAll(async () => {
    await fc?.stop();
  });

  function specFile(name: string): string {
    const file = join(dir, `${name}.json`);
    const window = { type: 'tumbling', sizeMs: WINDOW_MS };
    writeFileSync(
      file,
      JSON.stringify({
        name,
        parallelism: 2,
        checkpoint: { intervalMs: 100, mode: 'exactly-once' },
        restart: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
        source: {
          type: 'file',
          paths: [join(dir, 'in-0.csv'), join(dir, 'in-1.csv')],
          columns: ['house:string', 'room:string', 'sensor:string', 'ts:int', 'temperature:double'],
          eventTime: { field: 'ts', unit: 'ms' },
          watermark: { outOfOrdernessMs: 2000 },
        },
        steps: [
          { keyBy: ['house', 'room', 'sensor'] },
          { window },
          { aggregate: { n: 'count()', sum: 'sum(temperature)', max: 'max(temperature)' } },
          { keyBy: ['house', 'room'] },
          { window },
          { aggregate: { sensors: 'count()', n: 'sum(n)', sum: 'sum(sum)', max: 'max(max)' } },
          { keyBy: 'house' },
          { window },
          { aggregate: { rooms: 'count()', n: 'sum(n)', sum: 'sum(sum)', max: 'max(max)' } },
        ],
        sink: { type: 'file', path: join(dir, `${name}.jsonl`) },
      }),
    );
    return file;
  }

  async function run(name: string): Promise<{ attempt: number; lines: string[] }> {
    const sub = await cluster.cli(['submit', specFile(name)]);
    expect(sub.code, sub.stderr).toBe(0);
    const done = await cluster.waitForState(sub.stdout.trim(), 'FINISHED', 180_000);
    const lines = readFileSync(join(dir, `${name}.jsonl`), 'utf8')
      .split('\n')
      .filter(Boolean);
    return { attempt: done.job.attempt, lines };
  }

  it('writes per house and minute what the readings give, and the same after a SIGKILL', async () => {
    // the fault fires in the first job that aligns checkpoint 2 on tm-1: run that one first
    const killed = await run('killed');
    expect(cluster.tms.get('tm-1')?.exited?.signal, cluster.tms.get('tm-1')?.describe()).toBe('SIGKILL');
    expect(killed.attempt).toBe(2);

    const clean = await run('clean');
    expect(clean.attempt).toBe(1);
    const rows = clean.lines.map(
      (l) =>
        JSON.parse(l) as {
          key: string;
          windowStart: number;
          windowEnd: number;
          rooms: number;
          n: number;
          sum: number;
          max: number;
        },
    );
    expect(rows.length).toBe(expected.size);
    const seen = new Set<string>();
    for (const row of rows) {
      const k = `${row.key}|${row.windowStart}`;
      const e = expected.get(k);
      expect(e, k).toBeDefined();
      if (!e) continue;
      expect(seen.has(k), `${k} twice`).toBe(false);
      seen.add(k);
      expect(row.windowEnd - row.windowStart).toBe(WINDOW_MS);
      expect(row.rooms).toBe(e.rooms.size);
      expect(row.n).toBe(e.readings);
      expect(Math.abs(row.sum - e.cents / 100)).toBeLessThan(1e-6);
      expect(row.max).toBe(e.maxCents / 100);
    }

    expect([...killed.lines].sort()).toEqual([...clean.lines].sort());
  }, 400_000);
});
