/**
 * Allowed lateness through the whole engine in-process (runJobLocally: file source, tasks, codec,
 * channels, window operator, file sinks) at parallelism 1, 2 and 4: the file sink (an append
 * sink) gets every version of a window with its `update` number; a reading beyond the lateness
 * goes to the late-data output. Expected rows computed by hand.
 *
 * One source split, B = 0, tumbling 10 s, allowedLatenessMs 5 s (times relative to T0, in s):
 * ```
 * line  sensor  ts   t    W after   effect
 *  1    s1       1  20      ~1      [0,10) s1 += 20
 *  2    s2       2  10      ~2      [0,10) s2 += 10
 *  3    s1       4  22      ~4      [0,10) s1 += 22
 *  4    s1      12  21     ~12      [0,10) fires: s1 (2, 22) u0, s2 (1, 10) u0; [10,20) s1 += 21
 *  5    s1       3  25     ~12      lateness of [0,10): s1 (3, 25) u1
 *  6    s1      13  19     ~13      [10,20) s1 += 19
 *  7    s1       6  18     ~13      lateness of [0,10): s1 (4, 25) u2
 *  8    s1      21  30     ~21      [10,20) fires: s1 (2, 21) u0; [0,10) purged (W ≥ 15)
 *  9    s1       7  40     ~21      beyond the lateness of [0,10): late output
 * 10    s1      18  23     ~21      lateness of [10,20): s1 (3, 23) u1
 * end                               [20,30) fires: s1 (1, 30) u0
 * ```
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runJobLocally } from '../../../core/runtime/local.js';
import { parseJobSpec } from '../../../core/spec/schema.js';

const T0 = 1717200000000;
const S = 1000;
const lines: [string, number, number][] = [
  ['s1', 1, 20],
  ['s2', 2, 10],
  ['s1', 4, 22],
  ['s1', 12, 21],
  ['s1', 3, 25],
  ['s1', 13, 19],
  ['s1', 6, 18],
  ['s1', 21, 30],
  ['s1', 7, 40],
  ['s1', 18, 23],
];

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function readJsonl(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function run(parallelism: number) {
  const dir = mkdtempSync(join(tmpdir(), 'fluxo-lateness-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'input.csv'), lines.map(([s, t, v]) => `${s},${T0 + t * S},${v}`).join('\n'));
  const spec = parseJobSpec(
    {
      name: 'lateness',
      source: {
        type: 'file',
        path: 'input.csv',
        columns: ['sensor:string', 'ts:int', 't:double'],
        eventTime: { field: 'ts', unit: 'ms' },
        watermark: { outOfOrdernessMs: 0 },
      },
      steps: [
        { keyBy: 'sensor' },
        { window: { type: 'tumbling', sizeMs: 10 * S, allowedLatenessMs: 5 * S } },
        { aggregate: { count: 'count()', max: 'max(t)' } },
      ],
      sink: { type: 'file', path: 'out/results.jsonl' },
    },
    { baseDir: dir },
  );
  await runJobLocally(spec, { parallelism });
  return {
    rows: readJsonl(join(dir, 'out', 'results.jsonl')),
    late: readJsonl(join(dir, 'out', 'results.late.jsonl')),
  };
}

const r = (key: string, startS: number, count: number, max: number, update: number) => ({
  key,
  windowStart: T0 + startS * S,
  windowEnd: T0 + (startS + 10) * S,
  count,
  max,
  update,
});
const order = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  String(a.key).localeCompare(String(b.key)) ||
  (a.windowStart as number) - (b.windowStart as number) ||
  (a.update as number) - (b.update as number);

describe.each([1, 2, 4])('allowed lateness through the engine, parallelism %i', (p) => {
  it('writes the on-time row and every update with its number to the file sink, and the reading beyond the lateness to the late output', async () => {
    const { rows, late } = await run(p);
    expect(rows.sort(order)).toEqual([
      r('s1', 0, 2, 22, 0),
      r('s1', 0, 3, 25, 1),
      r('s1', 0, 4, 25, 2),
      r('s1', 10, 2, 21, 0),
      r('s1', 10, 3, 23, 1),
      r('s1', 20, 1, 30, 0),
      r('s2', 0, 1, 10, 0),
    ]);
    expect(Object.keys(rows[0] as object)).toEqual(['key', 'windowStart', 'windowEnd', 'count', 'max', 'update']);
    expect(late.map((l) => [l.sensor, l.ts, l.t])).toEqual([['s1', T0 + 7 * S, 40]]);
  });
});
