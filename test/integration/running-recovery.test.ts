/**
 * The running-sum job survives a SIGKILL with exactly-once Redis hashes: a real cluster
 * (JobManager, three TaskManager processes with one slot each, one spare, a private Redis,
 * checkpoints every 100 ms). tm-1, which runs source-0 and window-0 (the running subtask, with its
 * chained redis sink), is started with `FLUXO_FAULTS=crash@alignment:3`: it SIGKILLs itself while
 * window-0 aligns checkpoint 3. The job fails over, restores checkpoint 2 (source positions, per
 * key group the running accumulators and pending readings, the redis sink's pre-committed rows)
 * and must finish with hashes `killed:<sensor>` equal to those of a failure-free run of the same
 * job (`clean:<sensor>`), whose sums, counts and latest times match an independent computation.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultCluster, startFaultCluster } from '../support/fault-cluster.js';
import type { TestCluster } from '../support/processes.js';

const SENSORS = 150;
const PER_FILE = 300_000;
const T0 = 1717200000000;
const FAULT = 'crash@alignment:3';

interface Expected {
  cents: number;
  count: number;
  maxTs: number;
}

/** Two splits (files) with readings of every sensor; values with 2 decimals; a little out of order, never late. */
function writeInput(dir: string): Map<string, Expected> {
  const expected = new Map<string, Expected>();
  for (let f = 0; f < 2; f++) {
    const lines: string[] = [];
    for (let i = 0; i < PER_FILE; i++) {
      const sensor = `s-${i % SENSORS}`;
      const ts = T0 + Math.floor(i / SENSORS) * 5000 + f - (i % 7 === 0 ? 1500 : 0);
      const cents = 1800 + ((i * 37 + f * 11) % 900);
      lines.push(`${sensor},${ts},${(cents / 100).toFixed(2)}`);
      const e = expected.get(sensor) ?? { cents: 0, count: 0, maxTs: Number.NEGATIVE_INFINITY };
      e.cents += cents;
      e.count++;
      e.maxTs = Math.max(e.maxTs, ts);
      expected.set(sensor, e);
    }
    writeFileSync(join(dir, `in-${f}.csv`), `${lines.join('\n')}\n`);
  }
  return expected;
}

describe('running-sum recovery', () => {
  let fc: FaultCluster;
  let client: Redis;
  let cluster: TestCluster;
  let dir: string;
  let expected: Map<string, Expected>;

  beforeAll(async () => {
    fc = await startFaultCluster('running-recovery', FAULT);
    ({ cluster, dir } = fc);
    client = new Redis(fc.redis.url);
    expected = writeInput(dir);
  }, 120_000);

  afterAll(async () => {
    client?.disconnect();
    await fc?.stop();
  });

  function specFile(name: string): string {
    const file = join(dir, `${name}.json`);
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
          columns: ['sensor_id:string', 'timestamp_ms:int', 'temperature_c:double'],
          eventTime: { field: 'timestamp_ms', unit: 'ms' },
          watermark: { outOfOrdernessMs: 2000 },
        },
        steps: [
          { keyBy: 'sensor_id' },
          { running: { sum: 'sum(temperature_c)', count: 'count()', max: 'max(temperature_c)' } },
        ],
        sink: { type: 'redis', keyPrefix: name },
      }),
    );
    return file;
  }

  async function hashesOf(prefix: string): Promise<Map<string, Record<string, string>>> {
    const keys = (await client.keys(`${prefix}:*`)).filter((k) => k !== `${prefix}:fluxo-fence`).sort();
    const p = client.pipeline();
    for (const k of keys) p.hgetall(k);
    const res = (await p.exec()) ?? [];
    return new Map(keys.map((k, i) => [k.slice(prefix.length + 1), res[i][1] as Record<string, string>]));
  }

  async function run(name: string): Promise<{ attempt: number; exceptions: { reason: string }[] }> {
    const sub = await cluster.cli(['submit', specFile(name)]);
    expect(sub.code, sub.stderr).toBe(0);
    const done = await cluster.waitForState(sub.stdout.trim(), 'FINISHED', 180_000);
    return {
      attempt: done.job.attempt,
      exceptions: (done as unknown as { exceptions: { reason: string }[] }).exceptions,
    };
  }

  it('a running-sum job SIGKILLed mid-run leaves exactly the hashes of a failure-free run', async () => {
    const killed = await run('killed');
    expect(cluster.tms.get('tm-1')?.exited?.signal, cluster.tms.get('tm-1')?.describe()).toBe('SIGKILL');
    expect(killed.attempt).toBe(2);
    expect(killed.exceptions).toHaveLength(1);
    expect(killed.exceptions[0].reason).toContain('TaskManager tm-1');

    const clean = await run('clean');
    expect(clean.attempt).toBe(1);

    const cleanHashes = await hashesOf('clean');
    const killedHashes = await hashesOf('killed');
    expect(cleanHashes.size).toBe(SENSORS);
    expect(killedHashes).toEqual(cleanHashes);
    for (const [sensor, e] of expected) {
      const h = cleanHashes.get(sensor) as Record<string, string>;
      expect(h.key).toBe(sensor);
      expect(Number(h.count)).toBe(e.count);
      expect(Math.abs(Number(h.sum) - e.cents / 100)).toBeLessThan(1e-6);
      expect(Number(h.updatedAt)).toBe(e.maxTs);
    }
  }, 400_000);
});
