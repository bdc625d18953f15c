import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runJobLocally } from '../../../core/runtime/local.js';
import { parseJobSpec } from '../../../core/spec/schema.js';

const T0 = 1717200000000;

function job(dir: string, map: Record<string, string>, filter?: string) {
  return parseJobSpec({
    name: 'ops',
    source: {
      type: 'file',
      path: join(dir, 'in.csv'),
      columns: ['sensorId:string', 'timestamp:int', 'temperature:double', 'divisor:double'],
      eventTime: { field: 'timestamp', unit: 'ms' },
      watermark: { outOfOrdernessMs: 0 },
    },
    steps: [
      ...(filter ? [{ filter }] : []),
      { map },
      { keyBy: 'sensorId' },
      { window: { type: 'tumbling', sizeMs: 10000 } },
      { aggregate: { n: 'count()', s: 'sum(ratio)' } },
    ],
    sink: { type: 'file', path: join(dir, 'out.jsonl') },
  });
}

const lines = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));

describe('map and filter operators', () => {
  it('a map result that is not a finite number (division by zero) goes to the dead-letter output with its reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fluxo-ops-'));
    writeFileSync(join(dir, 'in.csv'), `a,${T0 + 1000},20.0,2.0\na,${T0 + 2000},21.0,0.0\na,${T0 + 3000},22.0,4.0\n`);
    const { counters } = await runJobLocally(job(dir, { ratio: 'temperature / divisor' }));
    // 20/2 + 22/4 = 15.5 from two readings; the third went to the dead letters
    expect(lines(join(dir, 'out.jsonl'))).toEqual([
      { key: 'a', windowStart: T0, windowEnd: T0 + 10000, n: 2, s: 15.5 },
    ]);
    const dead = lines(join(dir, 'out.deadletter.jsonl'));
    expect(dead).toHaveLength(1);
    expect(dead[0].reason).toMatch(/^steps\[0\]\.map: ratio is Infinity, not a finite number/);
    expect(JSON.parse(dead[0].raw)).toMatchObject({ temperature: 21, divisor: 0 });
    expect(counters['source-0'].rejected).toBe(1);
  });

  it('a filter drops readings silently but counts them; filtered readings still move the watermark', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fluxo-ops-'));
    // the filtered 99.0 reading at +15 s closes the first window before the input ends
    writeFileSync(join(dir, 'in.csv'), `a,${T0 + 1000},20.0,1.0\na,${T0 + 15000},99.0,1.0\na,${T0 + 16000},21.0,1.0\n`);
    const { counters } = await runJobLocally(job(dir, { ratio: 'temperature / divisor' }, 'temperature < 50.0'));
    expect(lines(join(dir, 'out.jsonl'))).toEqual([
      { key: 'a', windowStart: T0, windowEnd: T0 + 10000, n: 1, s: 20 },
      { key: 'a', windowStart: T0 + 10000, windowEnd: T0 + 20000, n: 1, s: 21 },
    ]);
    expect(counters['source-0'].filtered).toBe(1);
    expect(counters['source-0'].rejected).toBe(0);
  });
});
