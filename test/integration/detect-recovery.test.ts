/**
 * Spike alerts survive a SIGKILL: a detect job on a real cluster (JobManager, three TaskManager
 * processes with one slot each, one of them spare, a private Redis, checkpoints every 100 ms).
 * tm-1, which runs source-0 and window-0 (the detect subtask; placement as in chaos.test.ts),
 * is started with `FLUXO_FAULTS=crash@alignment:3`: it SIGKILLs itself while window-0 aligns
 * checkpoint 3's barriers from its two input channels. The job fails over, restores checkpoint 2
 * (source positions and watermarks, per key group the detector's pending readings, predecessors
 * and EWMA statistics, the file sink's committed length) and must finish with exactly the alerts
 * of a failure-free run, computed by `runJobLocally` at parallelism 1 in this process.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJobLocally } from '../../core/runtime/local.js';
import { parseJobSpec } from '../../core/spec/schema.js';
import { type FaultCluster, startFaultCluster } from '../support/fault-cluster.js';
import type { TestCluster } from '../support/processes.js';

const SENSORS = 200;
const PER_FILE = 400_000;
const T0 = 1717200000000;
const FAULT = 'crash@alignment:3';

/** Two splits; each reading of a sensor at the same timestamps in both, with other values; spikes now and then. */
function writeInput(dir: string): void {
  for (let f = 0; f < 2; f++) {
    const lines: string[] = [];
    for (let i = 0; i < PER_FILE; i++) {
      const sensor = i % SENSORS;
      const step = Math.floor(i / SENSORS);
      const ts = T0 + step * 5000 - (i % 7 === 0 ? 1500 : 0);
      const spike = (step * 13 + sensor * 7 + f) % 997 === 0 ? 8 : 0;
      lines.push(`s-${sensor},${ts},${(21 + ((i * 37 + f * 11) % 100) / 100 + spike).toFixed(2)}`);
    }
    writeFileSync(join(dir, `in-${f}.csv`), `${lines.join('\n')}\n`);
  }
}

function spec(dir: string, name: string, checkpoints: boolean): Record<string, unknown> {
  return {
    name,
    parallelism: checkpoints ? 2 : 1,
    ...(checkpoints
      ? { checkpoint: { intervalMs: 100 }, restart: { type: 'fixed-delay', attempts: 3, delayMs: 100 } }
      : {}),
    source: {
      type: 'file',
      paths: [join(dir, 'in-0.csv'), join(dir, 'in-1.csv')],
      columns: ['sensor_id:string', 'timestamp_ms:int', 'temperature_c:double'],
      eventTime: { field: 'timestamp_ms', unit: 'ms' },
      watermark: { outOfOrdernessMs: 2000 },
    },
    steps: [
      { keyBy: 'sensor_id' },
      {
        detect: {
          value: 'temperature_c',
          rules: [
            { type: 'jump', minDelta: 3 },
            { type: 'rate', perMinute: 40 },
            { type: 'zscore', k: 5, alpha: 0.05, warmup: 20, minStdDev: 0.05 },
          ],
        },
      },
    ],
    sink: { type: 'file', path: join(dir, `${name}.jsonl`) },
  };
}

const rowsOf = (path: string): string[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .sort();

describe('detect recovery', () => {
  let fc: FaultCluster;
  let cluster: TestCluster;
  let dir: string;

  beforeAll(async () => {
    fc = await startFaultCluster('detect-recovery', FAULT);
    ({ cluster, dir } = fc);
    writeInput(dir);
  }, 120_000);

  afterAll(async () => {
    await fc?.stop();
  });

  it('a detect job SIGKILLed mid-run commits exactly the alerts of a failure-free run', async () => {
    await runJobLocally(parseJobSpec(spec(dir, 'reference', false)));
    const reference = rowsOf(join(dir, 'reference.jsonl'));
    expect(reference.length).toBeGreaterThan(500);
    expect(new Set(reference.map((l) => JSON.parse(l).rule))).toEqual(new Set(['jump', 'rate', 'zscore']));

    const file = join(dir, 'killed.json');
    writeFileSync(file, JSON.stringify(spec(dir, 'killed', true)));
    const sub = await cluster.cli(['submit', file]);
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = sub.stdout.trim();
    const done = await cluster.waitForState(jobId, 'FINISHED', 120_000);

    // the fault fired in tm-1 and killed it; the job failed over once, from a checkpoint
    expect(
      existsSync(join(fc.onceDir, FAULT.replace(/[^A-Za-z0-9_.-]/g, '_'))),
      cluster.tms.get('tm-1')?.describe(),
    ).toBe(true);
    expect(cluster.tms.get('tm-1')?.exited?.signal).toBe('SIGKILL');
    expect(done.job.attempt).toBe(2);
    const exceptions = (done as unknown as { exceptions: { reason: string }[] }).exceptions;
    expect(exceptions).toHaveLength(1);
    expect(exceptions[0].reason).toContain('TaskManager tm-1');
    // attempt 2 resumed from checkpoint 2, so the detector state came from the snapshot
    expect(done.totals.readingsIn).toBeLessThan(2 * PER_FILE);

    // nothing lost, nothing duplicated
    expect(rowsOf(join(dir, 'killed.jsonl'))).toEqual(reference);
    console.log(
      `detect recovery: ${reference.length} alerts; attempt 2 read ${done.totals.readingsIn} of ${2 * PER_FILE} readings`,
    );
  });
});
