/**
 * The detect step through the engine (`runJobLocally`: the same tasks, codec and channels as a
 * cluster, in one thread): rejected readings are not predecessors, alerts do not depend on the
 * parallelism, and the shipped example's precision and recall on the labelled Suthaharan events.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runJobLocally } from '../../../core/runtime/local.js';
import { loadJobSpecFile } from '../../../core/spec/load.js';
import { parseJobSpec } from '../../../core/spec/schema.js';

const T0 = 1717200000000;
const REPO = join(import.meta.dirname, '../../..');

const lines = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

function job(dir: string, files: string[], rules: unknown[], parallelism = 1) {
  return parseJobSpec({
    name: 'spikes',
    parallelism,
    source: {
      type: 'file',
      paths: files.map((f) => join(dir, f)),
      columns: ['sensorId:string', 'timestamp:int', 'temperature:double'],
      eventTime: { field: 'timestamp', unit: 'ms' },
      watermark: { outOfOrdernessMs: 2000 },
    },
    steps: [{ filter: 'temperature < 50.0' }, { keyBy: 'sensorId' }, { detect: { rules } }],
    sink: { type: 'file', path: join(dir, 'alerts.jsonl') },
  });
}

describe('detect through the engine', () => {
  it('filtered, rejected and late readings never become predecessors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fluxo-detect-'));
    writeFileSync(
      join(dir, 'in.csv'),
      [
        `a,${T0 + 1000},20.0`,
        `a,${T0 + 2000},99.0`, // filtered out
        `a,${T0 + 3000},oops`, // dead letter
        `a,${T0 + 4000},21.0`, // 20 → 21: no jump
        `a,${T0 + 9000},22.0`,
        `a,${T0 + 5000},40.0`, // late: the watermark is already 9000 − 2000 = 7000
        `a,${T0 + 10000},27.0`, // 22 → 27: jump
        '',
      ].join('\n'),
    );
    const { counters } = await runJobLocally(job(dir, ['in.csv'], [{ type: 'jump', minDelta: 5 }]));
    expect(lines(join(dir, 'alerts.jsonl')).map((l) => JSON.parse(l))).toEqual([
      { sensor: 'a', ts: T0 + 10000, value: 27, rule: 'jump', detail: 'jump +5 from 22 (1000 ms earlier)' },
    ]);
    expect(lines(join(dir, 'alerts.deadletter.jsonl'))).toHaveLength(1);
    expect(JSON.parse(lines(join(dir, 'alerts.late.jsonl'))[0])).toMatchObject({ sensorId: 'a', temperature: 40 });
    expect(counters['window-0'].late).toBe(1);
  });

  it('gives the same alerts at parallelism 1, 2 and 4, with ties in event time across input splits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fluxo-detect-'));
    // 3 splits; every split has a reading of every sensor at the same timestamps, with other values
    for (let f = 0; f < 3; f++) {
      const out: string[] = [];
      for (let t = 0; t < 400; t++)
        for (let s = 0; s < 25; s++) {
          const spike = (t * 7 + s * 3 + f) % 53 === 0 ? 9 : 0;
          out.push(
            `s${s},${T0 + t * 5000 - (t % 3) * 1000},${(20 + ((t * 31 + s * 17 + f * 13) % 40) / 20 + spike).toFixed(2)}`,
          );
        }
      writeFileSync(join(dir, `in-${f}.csv`), `${out.join('\n')}\n`);
    }
    const rules = [
      { type: 'jump', minDelta: 2.5 },
      { type: 'rate', perMinute: 30 },
      { type: 'zscore', k: 3, alpha: 0.1, warmup: 10, minStdDev: 0.05 },
    ];
    const results: string[][] = [];
    for (const p of [1, 2, 4]) {
      await runJobLocally(job(dir, ['in-0.csv', 'in-1.csv', 'in-2.csv'], rules, p));
      results.push(lines(join(dir, 'alerts.jsonl')).sort());
    }
    expect(results[0].length).toBeGreaterThan(100);
    expect(new Set(results[0].map((l) => JSON.parse(l).rule))).toEqual(new Set(['jump', 'rate', 'zscore']));
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });

  for (const set of ['single_hop', 'multi_hop']) {
    it(`examples/spike-alerts.yaml on the Suthaharan ${set} data: precision and recall against the labelled heat events`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fluxo-detect-'));
      const data = join(REPO, `examples/data/suthaharan_${set}_timed.csv.gz`);
      const spec = loadJobSpecFile(join(REPO, 'examples/spike-alerts.yaml'), [
        `source.path=${data}`,
        `sink.path=${join(dir, 'alerts.jsonl')}`,
      ]);
      await runJobLocally(spec);
      const script = join(REPO, 'scripts/spike-eval.mjs');
      const alerts = join(dir, 'alerts.jsonl');
      console.log(`spike-alerts on ${set}:\n${execFileSync('node', [script, alerts, data], { encoding: 'utf8' })}`);
      const r = JSON.parse(execFileSync('node', [script, alerts, data, '--json'], { encoding: 'utf8' }));
      // 2 labelled events per data set; the figures are in the README
      expect(r.all.events).toBe(2);
      expect(r.all.recall).toBe(1);
      expect(r.all.precision).toBeGreaterThan(0.9);
    });
  }
});
